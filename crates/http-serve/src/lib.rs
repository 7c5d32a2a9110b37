//! # e2ee-http-serve
//!
//! The accept loop every server of the SDK serves its `axum::Router` with (the all-in-one
//! server, the key server and the relay alone). `axum::serve` has no limits of its own: a
//! connection that never sends a byte, or stops inside its headers, stays open forever, and
//! any number of them exhaust the process's file descriptors. Here:
//!
//! * **Header-read timeout** ([`HttpLimits::header_read_timeout_secs`]): the request line and
//!   headers must arrive within it. hyper arms it whenever it waits for a request head, so it
//!   is also the **keep-alive idle timeout**: a connection that sends no next request within
//!   it is closed. (A WebSocket, once upgraded, is the relay's: it lives as long as its
//!   ticket.)
//! * **Connection caps**, counted from accept until the socket closes (an upgraded WebSocket
//!   included): at most [`HttpLimits::max_connections`] per process (past it: 503
//!   `too_many_connections`) and [`HttpLimits::max_connections_per_peer`] per peer IP address
//!   (past it: 429 `too_many_connections_from_peer`). The refusal is written at once, with a
//!   JSON body, and the socket closed without reading the request.
//! * **Request size**: a request line over [`MAX_URI_BYTES`] is answered 414 `uri_too_long`,
//!   headers over [`MAX_HEADERS`] or [`MAX_HEADER_BYTES`] 431 `headers_too_large`, with JSON
//!   bodies like every other refusal. Only what hyper itself refuses before any handler runs
//!   (a malformed or conflicting `Content-Length`: 400; over twice these limits: 414 or 431) is
//!   answered with an empty body, and the connection closed.
//! * **Graceful shutdown**: on the shutdown signal the listener closes, idle connections close,
//!   requests in flight finish (for at most [`SHUTDOWN_GRACE`]).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod limits;
mod request_size;
mod tracker;

use std::{future::Future, net::SocketAddr, time::Duration};

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{io::AsyncWriteExt, net::TcpListener, sync::watch};

pub use limits::{
    DEFAULT_HEADER_READ_TIMEOUT_SECS, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_PEER,
    HttpLimits,
};
pub use request_size::{MAX_HEADER_BYTES, MAX_HEADERS, MAX_URI_BYTES};
use tracker::{Admission, Tracker};

/// The `code` of every JSON refusal the accept loop writes.
pub mod codes {
    /// 414: the request target is too long.
    pub const URI_TOO_LONG: &str = "uri_too_long";
    /// 431: the header section is too large.
    pub const HEADERS_TOO_LARGE: &str = "headers_too_large";
    /// 503: the process holds `--http-max-connections`.
    pub const TOO_MANY_CONNECTIONS: &str = "too_many_connections";
    /// 429: the peer address holds `--http-max-connections-per-peer`.
    pub const TOO_MANY_CONNECTIONS_FROM_PEER: &str = "too_many_connections_from_peer";
}

/// Longest wait for requests in flight at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Longest time spent writing a refusal to a connection over a cap.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause after an accept error (out of file descriptors, say) before accepting again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` under `limits` until `shutdown` resolves, then shuts down
/// gracefully. Returns once every connection has closed (or [`SHUTDOWN_GRACE`] passed).
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let tracker = Tracker::new(limits.max_connections, limits.max_connections_per_peer);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs))
        // hyper's own limits (empty-bodied refusals) sit above ours (JSON refusals).
        .max_headers(2 * MAX_HEADERS)
        .max_buf_size(request_size::HYPER_MAX_BUF);
    let router = router.layer(axum::middleware::from_fn(request_size::refuse_oversized));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before accept: keep
                    // serving the connections we have.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let guard = match tracker.admit(peer.ip()) {
            Admission::Admitted(guard) => guard,
            refused => {
                tokio::spawn(refuse(stream, peer, refused));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let conn = builder
            .serve_connection(TokioIo::new(tracker::Tracked::new(stream, guard)), service)
            .with_upgrades();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                    return;
                }
                _ = stop.wait_for(|stop| *stop) => conn.as_mut().graceful_shutdown(),
            }
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait_for_none()).await;
    if drained.is_err() {
        tracing::warn!(
            open = tracker.open(),
            "shutdown: connections still open after the grace period"
        );
    }
    Ok(())
}

/// Ctrl-C, or SIGTERM (what container runtimes and systemd send) on Unix: the shutdown signal
/// the binaries pass to [`serve`].
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutting down");
}

/// Answers a connection over a cap with a JSON refusal and closes it, without reading.
async fn refuse(mut stream: tokio::net::TcpStream, peer: SocketAddr, why: Admission) {
    let (status, code, message) = match why {
        Admission::ProcessFull => (
            "503 Service Unavailable",
            codes::TOO_MANY_CONNECTIONS,
            "the server holds as many connections as it allows",
        ),
        _ => (
            "429 Too Many Requests",
            codes::TOO_MANY_CONNECTIONS_FROM_PEER,
            "this address holds as many connections as the server allows one address",
        ),
    };
    tracing::debug!(%peer, code, "connection refused");
    let body = request_size::json_body(code, message);
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\nretry-after: 1\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}
