//! The provisioning channel (docs/keyserver.md, "Linking a device"): each slot is written once
//! and read any number of times until it expires, paths and sizes are checked, and nothing
//! needs a credential (the new device has none yet).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{B64, Backend, Engine, Server};
use hyper::{Method, StatusCode};
use serde_json::json;

on_both_backends!(slots_are_written_once_and_read_back);

async fn slots_are_written_once_and_read_back(backend: Backend) {
    let server = Server::start(backend).await;
    let channel = "0f".repeat(32);
    let path = format!("/v1/provisioning/{channel}/1");
    let (status, body) = server.get(&path, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let message = json!({ "message": B64.encode(b"sealed offer") });
    let (status, body) = server.send(Method::PUT, &path, None, &message).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Written once: a second writer (an attacker who guessed nothing, or a retry) is refused.
    let other = json!({ "message": B64.encode(b"another offer") });
    let (status, body) = server.send(Method::PUT, &path, None, &other).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("slot_taken"))
    );
    for _ in 0..2 {
        let (status, body) = server.get(&path, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            B64.decode(body["message"].as_str().unwrap()).unwrap(),
            b"sealed offer"
        );
    }
    // The other slots of the channel, and other channels, are separate.
    let (status, _) = server
        .get(&format!("/v1/provisioning/{channel}/2"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .get(&format!("/v1/provisioning/{}/1", "1f".repeat(32)), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Malformed channels and slots, and a message over 32 KiB.
    for bad in [
        format!("/v1/provisioning/{}/1", "0F".repeat(32)),
        format!("/v1/provisioning/{}/1", "0f".repeat(31)),
        format!("/v1/provisioning/{channel}/0"),
        format!("/v1/provisioning/{channel}/4"),
        format!("/v1/provisioning/{channel}/x"),
    ] {
        let (status, body) = server.send(Method::PUT, &bad, None, &message).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_path")),
            "{bad}"
        );
    }
    let big = json!({ "message": B64.encode(vec![0u8; 32 * 1024 + 1]) });
    let (status, body) = server
        .send(
            Method::PUT,
            &format!("/v1/provisioning/{channel}/3"),
            None,
            &big,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large"))
    );
    let at_limit = json!({ "message": B64.encode(vec![0u8; 32 * 1024]) });
    let (status, _) = server
        .send(
            Method::PUT,
            &format!("/v1/provisioning/{channel}/3"),
            None,
            &at_limit,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    server.stop().await;
}
