//! The provisioning channel for linking a device: a blind, unauthenticated mailbox of a few
//! sealed messages per channel. The new device and the account's primary device share a
//! secret (the link code the new device shows); the channel id is a hash of it and every
//! message is sealed under a key derived from it, so the server learns neither the secret
//! nor anything in the messages, and cannot write a message either side would open.

use axum::{Router, extract::State, http::StatusCode, routing::get};
use serde::{Deserialize, Serialize};

use super::{ApiJson, ApiPath, AppState, b64, enc};
use crate::{
    clock::now_secs,
    error::{ApiError, ErrorCode},
};

/// Largest sealed provisioning message.
pub(crate) const MAX_PROVISIONING_MESSAGE_LEN: usize = 32 * 1024;
/// Slots per channel: 1 offer (primary), 2 acceptance (new device), 3 welcome (primary).
pub(crate) const PROVISIONING_SLOTS: u8 = 3;
/// How long a provisioning message is kept.
pub(crate) const PROVISIONING_TTL_SECS: u64 = 10 * 60;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/provisioning/{channel}/{slot}", get(take).put(put))
}

#[derive(Deserialize)]
struct Put {
    message: String,
}

#[derive(Serialize)]
struct Message {
    message: String,
}

/// (channel, slot) from the path: 64 lowercase hex characters and 1..=3.
fn parse(channel: &str, slot: &str) -> Result<(String, u8), ApiError> {
    let valid_channel = channel.len() == 64
        && channel
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let slot = slot
        .parse::<u8>()
        .ok()
        .filter(|s| (1..=PROVISIONING_SLOTS).contains(s));
    match (valid_channel, slot) {
        (true, Some(slot)) => Ok((channel.to_owned(), slot)),
        _ => Err(ApiError::new(
            ErrorCode::InvalidPath,
            "a channel is 64 lowercase hex characters and a slot 1, 2 or 3",
        )),
    }
}

fn now() -> i64 {
    i64::try_from(now_secs()).unwrap_or(i64::MAX)
}

async fn put(
    State(state): State<AppState>,
    ApiPath((channel, slot)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<Put>,
) -> Result<StatusCode, ApiError> {
    let (channel, slot) = parse(&channel, &slot)?;
    let message = b64("message", &body.message)?;
    if message.len() > MAX_PROVISIONING_MESSAGE_LEN {
        return Err(ApiError::new(
            ErrorCode::BodyTooLarge,
            format!("a provisioning message is at most {MAX_PROVISIONING_MESSAGE_LEN} bytes"),
        ));
    }
    let now = now();
    let expires = now.saturating_add(PROVISIONING_TTL_SECS as i64);
    if state
        .0
        .store
        .put_provisioning(&channel, slot, &message, now, expires)
        .await?
    {
        Ok(StatusCode::CREATED)
    } else {
        Err(ApiError::new(
            ErrorCode::SlotTaken,
            "this slot holds a message already",
        ))
    }
}

async fn take(
    State(state): State<AppState>,
    ApiPath((channel, slot)): ApiPath<(String, String)>,
) -> Result<ApiJson<Message>, ApiError> {
    let (channel, slot) = parse(&channel, &slot)?;
    match state.0.store.provisioning(&channel, slot, now()).await? {
        Some(message) => Ok(ApiJson(Message {
            message: enc(&message),
        })),
        None => Err(ApiError::new(
            ErrorCode::NotFound,
            "no message in this slot (yet)",
        )),
    }
}
