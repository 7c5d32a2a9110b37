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
    /// The ticket's device was removed after the ticket was issued.
    #[error("ticket revoked: the device was removed after it was issued")]
    TicketRevoked,
    /// The connection limit is reached.
    #[error("too many connections")]
    TooManyConnections,
    /// The request is not a WebSocket upgrade the relay can accept (wrong method, missing
    /// or wrong upgrade headers); the status is the one the WebSocket layer chose.
    #[error("not a WebSocket upgrade: {reason}")]
    NotWebSocket {
        /// 400, 405 or 426.
        status: StatusCode,
        /// What the WebSocket layer said.
        reason: String,
    },
    /// The query string does not parse.
    #[error("invalid query string: {0}")]
    BadQuery(String),
    /// No such endpoint (the standalone relay; the all-in-one server's key server answers).
    #[error("no such endpoint")]
    NotFound,
    /// The endpoint does not take this method.
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
}

/// The JSON body of every refused request: `{"code": "...", "message": "..."}`.
#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    code: &'static str,
    message: &'a str,
}

impl ApiError {
    /// The HTTP status and the stable, machine-readable code.
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::MissingTicket => (StatusCode::UNAUTHORIZED, "missing_ticket"),
            ApiError::BadTicket(_) => (StatusCode::UNAUTHORIZED, "invalid_ticket"),
            ApiError::TicketRevoked => (StatusCode::UNAUTHORIZED, "ticket_revoked"),
            ApiError::TooManyConnections => {
                (StatusCode::SERVICE_UNAVAILABLE, "too_many_connections")
            }
            ApiError::NotWebSocket { status, .. } => (*status, "not_websocket"),
            ApiError::BadQuery(_) => (StatusCode::BAD_REQUEST, "invalid_query"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        tracing::debug!(error = %self, "upgrade refused");
        let message = self.to_string();
        (
            status,
            axum::Json(ErrorBody {
                code,
                message: &message,
            }),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_body_is_json_with_code_and_escaped_message() {
        let response =
            ApiError::BadTicket(e2ee_ticket::TicketError::Malformed("a \"quoted\" field"))
                .into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["code"], "invalid_ticket");
        assert_eq!(
            body["message"],
            "invalid ticket: malformed ticket: a \"quoted\" field"
        );
    }
}
