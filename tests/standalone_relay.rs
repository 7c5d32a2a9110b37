//! Whole stack, separate processes' view: a key server and a relay that share no process,
//! only the relay cluster's Redis (the real one on loopback, under a fresh key prefix). The
//! relay trusts the ticket key exactly as the key server publishes it, and a device removed
//! at the key server is refused and disconnected by the relay within seconds (issue 10,
//! items 2 and 7).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use e2ee_tools::RelayClient;
use rand_core::{OsRng, RngCore};

mod common;

use common::{http_json, register_two_devices};

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_relay_refuses_a_removed_devices_tickets_within_seconds() {
    let prefix = format!("stack-test-{:016x}", OsRng.next_u64());
    let dir = std::env::temp_dir().join(format!("e2ee-standalone-{prefix}"));
    tokio::time::timeout(Duration::from_secs(60), async {
        let mut ks_config = e2ee_keyserver::Config {
            data_dir: dir.join("keyserver"),
            ..Default::default()
        };
        ks_config.redis_url = Some(common::redis_url());
        ks_config.redis_prefix = prefix.clone();
        let keyserver = e2ee_keyserver::Keyserver::start(&ks_config).await.unwrap();
        let ks = serve(keyserver.router()).await;

        // The relay is configured with the key text exactly as the key server serves it.
        let (status, published) = http_json(&ks, "GET", "/v1/ticket-key", None, None).await;
        assert_eq!(status, 200, "{published}");
        let mut relay_config =
            e2ee_relay::Config::with_ticket_key(published["public_key"].as_str().unwrap());
        relay_config.data_dir = dir.join("relay");
        relay_config.redis_url = Some(common::redis_url());
        relay_config.redis_prefix = prefix.clone();
        let relay = e2ee_relay::Relay::start(&relay_config).await.unwrap();
        let relay_addr = serve(e2ee_relay::standalone_router(relay)).await;

        let (first, second) = register_two_devices(&ks, "carol").await;
        let (status, issued) = http_json(&ks, "POST", "/v1/tickets", Some(&second), None).await;
        assert_eq!(status, 200, "{issued}");
        let old_ticket = issued["ticket"].as_str().unwrap().to_owned();
        let mut doomed = RelayClient::connect(&relay_addr, &old_ticket)
            .await
            .unwrap();
        doomed.recv().await.unwrap();

        let (status, body) = http_json(
            &ks,
            "DELETE",
            "/v1/accounts/carol/devices/2",
            Some(&first),
            None,
        )
        .await;
        assert_eq!(status, 204, "{body}");
        let removed = Instant::now();
        match doomed.recv().await {
            Err(e2ee_tools::ClientError::Closed(Some(code))) => {
                assert_eq!(code, e2ee_relay::CLOSE_REVOKED)
            }
            other => panic!("expected close 4005, got {other:?}"),
        }
        let closed_after = removed.elapsed();
        assert!(
            closed_after <= e2ee_relay::REVOCATION_POLL * 3,
            "closed after {closed_after:?}"
        );
        let err = RelayClient::connect(&relay_addr, &old_ticket)
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(401), "{err}");
        // The other device still connects.
        let (status, issued) = http_json(&ks, "POST", "/v1/tickets", Some(&first), None).await;
        assert_eq!(status, 200, "{issued}");
        RelayClient::connect(&relay_addr, issued["ticket"].as_str().unwrap())
            .await
            .unwrap();
    })
    .await
    .expect("test timed out");
    common::delete_redis_keys(&prefix).await;
    let _ = std::fs::remove_dir_all(&dir);
}
