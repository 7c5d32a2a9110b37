//! Issue 10, item 4: silent, stalled and idle connections are closed, and connections over
//! the caps (per process, per peer address, upgraded ones included) are refused with JSON.
//! Real sockets on loopback.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, Instant};

use axum::{
    Router, body::Body, extract::Request, http::StatusCode, response::Response, routing::get,
};
use e2ee_http_serve::{HttpLimits, serve};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// A handler that upgrades to a raw byte stream and holds it until the peer closes it.
async fn upgrade(mut req: Request) -> Response {
    tokio::spawn(async move {
        if let Ok(upgraded) = hyper::upgrade::on(&mut req).await {
            let mut io = TokioIo::new(upgraded);
            let mut buf = [0u8; 1];
            let _ = io.read(&mut buf).await;
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "test")
        .body(Body::empty())
        .unwrap()
}

async fn start(limits: HttpLimits) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let router = Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/upgrade", get(upgrade));
    tokio::spawn(serve(listener, router, limits, std::future::pending()));
    addr
}

fn limits(timeout_secs: u64, max: usize, per_peer: usize) -> HttpLimits {
    HttpLimits {
        header_read_timeout_secs: timeout_secs,
        max_connections: max,
        max_connections_per_peer: per_peer,
    }
}

/// Reads until the server closes the connection; returns what it sent and when it closed.
async fn read_until_closed(stream: &mut TcpStream, bound: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let result = tokio::time::timeout(bound, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(result.is_ok(), "connection still open after {bound:?}");
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";

#[tokio::test]
async fn a_connection_that_never_sends_a_byte_is_closed() {
    let addr = start(limits(1, 100, 100)).await;
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    let (_, after) = read_until_closed(&mut silent, Duration::from_secs(10)).await;
    assert!(
        after >= Duration::from_millis(900),
        "closed after {after:?}"
    );
}

#[tokio::test]
async fn a_connection_that_stops_inside_its_headers_is_closed() {
    let addr = start(limits(1, 100, 100)).await;
    let mut stalled = TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nx-slow: ")
        .await
        .unwrap();
    read_until_closed(&mut stalled, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_its_last_answer() {
    let addr = start(limits(1, 100, 100)).await;
    let mut client = TcpStream::connect(&addr).await.unwrap();
    // Two requests on one connection, each well inside the timeout: both answered.
    for _ in 0..2 {
        client.write_all(REQUEST).await.unwrap();
        let mut buf = [0u8; 256];
        let n = client.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    read_until_closed(&mut client, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn connections_over_the_per_peer_cap_get_a_json_429() {
    let addr = start(limits(30, 100, 2)).await;
    let first = TcpStream::connect(&addr).await.unwrap();
    let mut second = TcpStream::connect(&addr).await.unwrap();
    let mut third = TcpStream::connect(&addr).await.unwrap();
    let (refusal, _) = read_until_closed(&mut third, Duration::from_secs(5)).await;
    assert!(refusal.starts_with("HTTP/1.1 429"), "{refusal}");
    assert!(refusal.contains("application/json"), "{refusal}");
    assert!(
        refusal.ends_with(r#""code":"too_many_connections_from_peer","message":"this address holds as many connections as the server allows one address"}"#),
        "{refusal}"
    );
    // The admitted ones work; closing one makes room.
    second.write_all(REQUEST).await.unwrap();
    let mut buf = [0u8; 256];
    let n = second.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    drop(first);
    let mut again = None;
    for _ in 0..50 {
        let mut next = TcpStream::connect(&addr).await.unwrap();
        next.write_all(REQUEST).await.unwrap();
        let n = next.read(&mut buf).await.unwrap_or(0);
        if String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200") {
            again = Some(next);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "no room after a connection closed");
}

#[tokio::test]
async fn connections_over_the_process_cap_get_a_json_503_and_upgraded_ones_count() {
    let addr = start(limits(30, 1, 100)).await;
    let mut upgraded = TcpStream::connect(&addr).await.unwrap();
    upgraded
        .write_all(
            b"GET /upgrade HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: test\r\n\r\n",
        )
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = upgraded.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 101"));
    // The upgraded socket still holds the one place.
    let mut refused = TcpStream::connect(&addr).await.unwrap();
    let (refusal, _) = read_until_closed(&mut refused, Duration::from_secs(5)).await;
    assert!(refusal.starts_with("HTTP/1.1 503"), "{refusal}");
    assert!(
        refusal.contains(r#""code":"too_many_connections""#),
        "{refusal}"
    );
}

#[tokio::test]
async fn shutdown_stops_accepting_and_returns_once_connections_close() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        Router::new().route("/", get(|| async { "ok" })),
        limits(30, 100, 100),
        async {
            let _ = stopped.await;
        },
    ));
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(REQUEST).await.unwrap();
    let mut buf = [0u8; 256];
    let _ = idle.read(&mut buf).await.unwrap();
    stop.send(()).unwrap();
    // The idle keep-alive connection is closed by the graceful shutdown, and serve returns.
    read_until_closed(&mut idle, Duration::from_secs(5)).await;
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(&addr).await.is_err());
}

/// Sends `head` on a fresh connection and returns the whole answer (the server closes it or
/// answers with `connection: close`).
async fn answer(addr: &str, head: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let (text, _) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    text
}

#[tokio::test]
async fn oversized_request_lines_and_headers_get_json_refusals() {
    use e2ee_http_serve::{MAX_HEADER_BYTES, MAX_HEADERS, MAX_URI_BYTES};
    let addr = start(limits(30, 100, 100)).await;
    let ok = answer(
        &addr,
        "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");

    let long_path = format!("/{}", "a".repeat(MAX_URI_BYTES));
    let text = answer(
        &addr,
        &format!("GET {long_path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 414"), "{text}");
    assert!(text.contains(r#""code":"uri_too_long""#), "{text}");

    let many: String = (0..=MAX_HEADERS)
        .map(|i| format!("x-h{i}: v\r\n"))
        .collect();
    let text = answer(
        &addr,
        &format!("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{many}\r\n"),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    assert!(text.contains(r#""code":"headers_too_large""#), "{text}");

    let big = "v".repeat(MAX_HEADER_BYTES);
    let text = answer(
        &addr,
        &format!("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-big: {big}\r\n\r\n"),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    assert!(text.contains(r#""code":"headers_too_large""#), "{text}");

    // What hyper refuses before any handler runs: an empty-bodied 400, connection closed.
    let text = answer(
        &addr,
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: nope\r\n\r\n",
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    let text = answer(
        &addr,
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
}
