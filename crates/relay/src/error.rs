//! Every HTTP-level failure becomes a response here, and only here. Internal details are
//! logged, never returned.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

/// Why an upgrade request was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No ticket in the `Authorization: Bearer` header or the `ticket` query parameter.
    #[error("missing ticket")]
    MissingTicket,
    /// The ticket did not verify (forged, expired, malformed).
    #[error("invalid ticket: {0}")]
    BadTicket(#[from] e2ee_ticket::TicketError),
    /// The connection limit is reached.
    #[error("too many connections")]
    TooManyConnections,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::MissingTicket => (StatusCode::UNAUTHORIZED, "missing_ticket"),
            ApiError::BadTicket(_) => (StatusCode::UNAUTHORIZED, "invalid_ticket"),
            ApiError::TooManyConnections => {
                (StatusCode::SERVICE_UNAVAILABLE, "too_many_connections")
            }
        };
        tracing::debug!(error = %self, "upgrade refused");
        let body = format!("{{\"code\":\"{code}\",\"message\":\"{self}\"}}");
        (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}
