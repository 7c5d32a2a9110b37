//! The router: the WebSocket endpoint (authenticated at the upgrade) and a health check.

use std::sync::Arc;

use axum::{
    Router,
    extract::{
        Query, State, WebSocketUpgrade, rejection::QueryRejection,
        ws::rejection::WebSocketUpgradeRejection,
    },
    http::{HeaderMap, header::AUTHORIZATION},
    response::{IntoResponse, Response},
    routing::get,
};
use e2ee_ticket::Ticket;
use futures_util::StreamExt;

use crate::{error::ApiError, limits::MAX_FRAME_LEN, relay::Relay, session};

const READ_BUFFER: usize = 2 * 1024;
const WRITE_BUFFER: usize = 8 * 1024;

/// Path of the WebSocket endpoint.
pub const WS_PATH: &str = "/v1/relay/ws";

/// Builds the relay's router (mount it as is, or merge it into a bigger app: it has no
/// fallback of its own, see [`standalone_router`]).
pub fn router(relay: Arc<Relay>) -> Router {
    Router::new()
        .route(WS_PATH, get(upgrade))
        .route("/v1/relay/health", get(health))
        .with_state(relay)
}

/// [`router`] plus JSON answers for unknown paths and methods: what a relay serving alone
/// mounts.
pub fn standalone_router(relay: Arc<Relay>) -> Router {
    router(relay)
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
}

async fn health(State(relay): State<Arc<Relay>>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "connections": relay.routing.hub.open_connections() }))
}

#[derive(Debug, serde::Deserialize)]
struct TicketQuery {
    ticket: Option<String>,
}

fn ticket_text<'a>(headers: &'a HeaderMap, query: &'a TicketQuery) -> Option<&'a str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .or(query.ticket.as_deref())
}

async fn upgrade(
    State(relay): State<Arc<Relay>>,
    headers: HeaderMap,
    query: Result<Query<TicketQuery>, QueryRejection>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadQuery(e.body_text()))?;
    let ws = ws.map_err(|e| ApiError::NotWebSocket {
        status: e.status(),
        reason: e.body_text(),
    })?;
    let text = ticket_text(&headers, &query).ok_or(ApiError::MissingTicket)?;
    let now = crate::clock::now_secs();
    let ticket = Ticket::verify_text(text, &relay.ticket_key, now)?;
    if relay.routing.revocations.revokes(&ticket) {
        return Err(ApiError::TicketRevoked);
    }
    let slot = relay
        .routing
        .hub
        .try_open(relay.settings.max_connections)
        .ok_or(ApiError::TooManyConnections)?;
    let device = ticket.device;
    let expires_at = ticket.expires_at;
    Ok(ws
        .max_message_size(MAX_FRAME_LEN)
        .max_frame_size(MAX_FRAME_LEN)
        // Small buffers: most connections are idle, and memory per idle connection is a
        // target (DESIGN.md). Buffers grow on demand for big frames.
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            let (sink, stream) = socket.split();
            session::run_session(relay, device, expires_at, sink, stream).await;
        })
        .into_response())
}
