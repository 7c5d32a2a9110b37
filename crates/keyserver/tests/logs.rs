//! Logs never contain credentials. Alone in its own test binary: tracing caches per-callsite
//! interest process-wide, so a capturing subscriber racing other tests' threads could miss
//! events and make the check vacuous.

// Panicking on failure is what test helpers are for (see api.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Account, Backend, Server, key_upload};
use hyper::StatusCode;
use serde_json::json;

/// Everything the server logs at TRACE level while registering, authenticating, uploading
/// and fetching contains neither the device credential nor its secret. A current-thread
/// runtime keeps every server task on this thread, under the capturing subscriber.
#[tokio::test(flavor = "current_thread")]
async fn logs_never_contain_credentials() {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = Server::start(Backend::Sqlite).await;
    let alice = Account::register(&server, "alice").await;
    let bob = Account::register(&server, "bob").await;
    let upload = key_upload(&alice.devices[0].identity, 1, 2, 1, true);
    let (s, _) = server.post("/v1/keys", Some(alice.token(0)), &upload).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = server
        .get(
            &format!("/v1/bundles/{}/1", alice.user_id),
            Some(bob.token(0)),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = server
        .post("/v1/tickets", Some(alice.token(0)), &json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = server.get("/v1/keys/counts", Some("dc1.bad.1.token")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    server.stop().await;

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("/v1/keys"),
        "the capture saw nothing:\n{logs}"
    );
    for account in [&alice, &bob] {
        let token = account.token(0);
        let secret = token.rsplit('.').next().unwrap();
        assert!(!logs.contains(secret), "credential secret logged");
        assert!(!logs.contains(token), "credential logged");
    }
    assert!(
        !logs.contains("dc1.bad.1.token"),
        "presented credential logged"
    );
}
