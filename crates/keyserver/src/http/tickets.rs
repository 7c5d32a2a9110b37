//! Relay connection tickets and the key that verifies them.

use axum::{
    Router,
    extract::State,
    routing::{get, post},
};
use e2ee_ticket::{MAX_TICKET_LIFETIME_SECS, Ticket};
use serde::Serialize;

use super::{ApiJson, AppState, AuthDevice, enc};
use crate::{clock::now_secs, error::ApiError};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tickets", post(issue))
        .route("/v1/ticket-key", get(ticket_key))
}

#[derive(Serialize)]
struct Issued {
    ticket: String,
    expires_at: u64,
}

#[derive(Serialize)]
struct TicketKey {
    public_key: String,
}

async fn issue(
    State(state): State<AppState>,
    AuthDevice(device): AuthDevice,
) -> Result<ApiJson<Issued>, ApiError> {
    let now = now_secs();
    let expires_at = now + state.ticket_lifetime_secs.min(MAX_TICKET_LIFETIME_SECS);
    let ticket = Ticket {
        device,
        issued_at: now,
        expires_at,
    }
    .sign_to_text(&state.ticket_key);
    Ok(ApiJson(Issued { ticket, expires_at }))
}

async fn ticket_key(State(state): State<AppState>) -> ApiJson<TicketKey> {
    ApiJson(TicketKey {
        public_key: enc(state.ticket_key.verifying_key().as_bytes()),
    })
}
