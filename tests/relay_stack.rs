//! Whole stack: the all-in-one `e2ee` binary serves the key server and the relay on one
//! port, and the relay accepts exactly the tickets that key server signs.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::{
    process::Stdio,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use e2ee_relay::wire::{ClientFrame, DeviceAddress, OutEnvelope, SendStatus, ServerFrame};
use e2ee_ticket::Ticket;
use e2ee_tools::RelayClient;
use ed25519_dalek::SigningKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;

use common::{http_json, register_two_devices};

fn ticket(key: &SigningKey, user: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Ticket {
        device: DeviceAddress::new(user, 1).unwrap(),
        issued_at: now,
        expires_at: now + 600,
    }
    .sign_to_text(key)
}

async fn http_get_status(addr: &str, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn all_in_one_binary_serves_key_server_and_relay_on_one_port() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = std::env::temp_dir().join(format!("e2ee-stack-{}", std::process::id()));
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_e2ee"))
            .arg("--listen")
            .arg(&addr)
            .arg("--keyserver-data-dir")
            .arg(&dir)
            .arg("--relay-data-dir")
            .arg(&dir)
            .arg("--keyserver-ticket-key")
            .arg(STANDARD.encode(key.to_bytes()))
            .args(["--http-header-read-timeout-secs", "2"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut up = false;
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(&addr).await.is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(up, "server did not start");
        // A connection that never sends a byte is closed (issue 10, item 4).
        let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let mut sink = Vec::new();
        tokio::time::timeout(Duration::from_secs(15), silent.read_to_end(&mut sink))
            .await
            .expect("a silent connection stayed open")
            .unwrap();

        // Key server on this port.
        assert!(
            http_get_status(&addr, "/openapi.json")
                .await
                .contains("200")
        );
        // Relay on the same port, trusting the key server's ticket key without configuration.
        let forged = ticket(&SigningKey::from_bytes(&[8u8; 32]), "mallory");
        assert_eq!(
            RelayClient::connect(&addr, &forged)
                .await
                .unwrap_err()
                .status(),
            Some(401)
        );
        let mut alice = RelayClient::connect(&addr, &ticket(&key, "alice"))
            .await
            .unwrap();
        let mut bob = RelayClient::connect(&addr, &ticket(&key, "bob"))
            .await
            .unwrap();
        assert_eq!(
            alice.recv().await.unwrap(),
            ServerFrame::QueueDrained { count: 0 }
        );
        assert_eq!(
            bob.recv().await.unwrap(),
            ServerFrame::QueueDrained { count: 0 }
        );
        alice
            .send(&ClientFrame::Send(vec![OutEnvelope {
                flags: 0,
                msg_id: 1,
                recipients: vec![DeviceAddress::new("bob", 1).unwrap()],
                payload: b"ciphertext".to_vec(),
            }]))
            .await
            .unwrap();
        assert_eq!(
            alice.recv().await.unwrap(),
            ServerFrame::SendResult(vec![(1, SendStatus::Stored)])
        );
        match bob.recv().await.unwrap() {
            ServerFrame::Deliver(d) => assert_eq!(&d.payload[..], b"ciphertext"),
            other => panic!("{other:?}"),
        }
        // A device removed at the key server is disconnected from the relay at once.
        let (first, second) = register_two_devices(&addr, "carol").await;
        let (st, issued) = http_json(
            &addr,
            "POST",
            "/v1/tickets",
            Some(&second),
            Some(&serde_json::json!({})),
        )
        .await;
        assert_eq!(st, 200, "{issued}");
        let mut doomed = RelayClient::connect(&addr, issued["ticket"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(
            doomed.recv().await.unwrap(),
            ServerFrame::QueueDrained { count: 0 }
        );
        let (st, body) = http_json(
            &addr,
            "DELETE",
            "/v1/accounts/carol/devices/2",
            Some(&first),
            None,
        )
        .await;
        assert_eq!(st, 204, "{body}");
        match doomed.recv().await {
            Err(e2ee_tools::ClientError::Closed(Some(code))) => {
                assert_eq!(code, e2ee_relay::CLOSE_REVOKED)
            }
            other => panic!("expected close 4005, got {other:?}"),
        }
        // Its ticket, signed and unexpired, no longer opens the relay (issue 10, item 2).
        let err = RelayClient::connect(&addr, issued["ticket"].as_str().unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(401), "{err}");
        // Both databases live under the one data directory.
        assert!(dir.join("relay.db").exists());
        assert!(std::fs::read_dir(&dir).unwrap().count() >= 2);
        child.start_kill().unwrap();
        let _ = child.wait().await;
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await
    .expect("test timed out");
}

#[test]
fn demo_subcommand_runs_three_users_through_an_in_process_server() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_e2ee"))
        .arg("demo")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("safety numbers match: true"), "{text}");
    assert!(text.contains("bob got from alice.1: Hi Bob"), "{text}");
    assert!(text.contains("alice sees it read"), "{text}");
    assert!(
        text.contains("carol caught up: We are at the usual place"),
        "{text}"
    );
    assert!(
        text.contains("alice.2 got in the group from bob.1: Who brings dessert?"),
        "{text}"
    );
    assert!(
        text.contains("carol sees the group with alice, bob and can no longer"),
        "{text}"
    );
}

/// Issue 10, item 7: every option the help text names (in a description too) is one the
/// binary takes; the key server's and the relay's flags are all flattened into this one.
#[test]
fn every_option_the_help_names_exists() {
    let help = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_e2ee"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    for text in [help(&["--help"]), help(&["serve", "--help"])] {
        if !text.contains("--relay-") {
            // `serve --help` lists only its own option.
            assert!(text.contains("--listen"), "{text}");
            continue;
        }
        let defined: std::collections::HashSet<&str> = text
            .lines()
            .map(str::trim_start)
            .filter_map(|line| {
                let line = line
                    .strip_prefix("-h, ")
                    .or(line.strip_prefix("-V, "))
                    .unwrap_or(line);
                line.starts_with("--")
                    .then(|| line.split([' ', '=', '[']).next().unwrap())
            })
            .collect();
        assert!(defined.contains("--relay-ticket-public-key"), "{text}");
        for (i, _) in text.match_indices("--") {
            let named: String = text[i + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if named.is_empty() {
                continue;
            }
            let flag = format!("--{named}");
            assert!(
                defined.contains(flag.as_str()),
                "help names {flag}, which is not an option"
            );
        }
    }
}
