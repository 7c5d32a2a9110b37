//! JSON refusals for request lines and header sections over the servers' limits, before
//! hyper's own, empty-bodied ones.

use axum::{
    extract::Request,
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};

/// Longest request target (path and query) in bytes: no route needs more than a user id and a
/// device id, or a ticket.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header fields in one request.
pub const MAX_HEADERS: usize = 64;
/// Largest header section (names, values and their separators) in bytes.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// hyper's read buffer: it refuses a head larger than this itself (431, empty body). Twice
/// our limits, so every head up to there gets our JSON answer.
pub(crate) const HYPER_MAX_BUF: usize = 2 * (MAX_URI_BYTES + MAX_HEADER_BYTES);

/// The JSON body of every refusal the accept loop writes (codes and messages are our own
/// constants: nothing to escape).
pub(crate) fn json_body(code: &str, message: &str) -> String {
    format!(r#"{{"code":"{code}","message":"{message}"}}"#)
}

fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json_body(code, message),
    )
        .into_response()
}

/// Answers 414 or 431 for an oversized request line or header section; passes the rest on.
pub(crate) async fn refuse_oversized(request: Request, next: Next) -> Response {
    let uri_len = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return refusal(
            StatusCode::URI_TOO_LONG,
            crate::codes::URI_TOO_LONG,
            "the request target is longer than the server accepts",
        );
    }
    let headers = request.headers();
    // Each field as sent: name, ": ", value, CRLF.
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return refusal(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            crate::codes::HEADERS_TOO_LARGE,
            "the request's headers are larger than the server accepts",
        );
    }
    next.run(request).await
}
