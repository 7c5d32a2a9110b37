//! Every limit and every kind of bad input gets a clear error or close code, nothing already
//! acknowledged is lost, and the relay keeps serving everybody else.

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use e2ee_relay::{
    CLOSE_PROTOCOL, CLOSE_TICKET_EXPIRED, CLOSE_TOO_BIG,
    limits::{MAX_BATCH_ENVELOPES, MAX_FRAME_LEN, MAX_INFLIGHT, MAX_PAYLOAD_LEN, MAX_RECIPIENTS},
    wire::{ClientFrame, Codec, ErrorCode, OutEnvelope, SendStatus, ServerFrame},
};
use e2ee_ticket::Ticket;
use e2ee_tools::{ClientError, RelayClient};

macro_rules! bounded {
    ($body:expr) => {
        tokio::time::timeout(Duration::from_secs(90), $body)
            .await
            .expect("test timed out")
    };
}

fn error_code(f: ServerFrame) -> ErrorCode {
    error_of(f).0
}

/// The code and the msg id of an `ERROR` frame.
fn error_of(f: ServerFrame) -> (ErrorCode, u64) {
    match f {
        ServerFrame::Error { code, msg_id, .. } => (code, msg_id),
        other => panic!("expected ERROR, got {other:?}"),
    }
}

async fn expect_close(c: &mut RelayClient, code: u16) {
    loop {
        match c.recv().await {
            Ok(ServerFrame::Error { .. }) => continue,
            Err(ClientError::Closed(Some(got))) => {
                assert_eq!(got, code);
                return;
            }
            other => panic!("expected close {code}, got {other:?}"),
        }
    }
}

/// Proves the relay still works for others: a fresh pair exchanges a message.
async fn still_serving(r: &TestRelay, tag: &str) {
    let mut a = r.connect_empty(&format!("probe-a-{tag}"), 1).await;
    let mut b = r.connect_empty(&format!("probe-b-{tag}"), 1).await;
    let to = format!("probe-b-{tag}");
    send_ok(&mut a, vec![env(1, &[(to.as_str(), 1)], b"ping")]).await;
    assert_eq!(&recv_delivery(&mut b).await.payload[..], b"ping");
}

#[tokio::test]
async fn unauthenticated_forged_and_expired_upgrades_get_401() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        let r = start(config(&key, &dir), key).await;
        let err = RelayClient::connect_query(&r.addr, None).await.unwrap_err();
        assert_eq!(err.status(), Some(401));
        let forged = ticket(&signing_key(), "bob", 1);
        let err = RelayClient::connect(&r.addr, &forged).await.unwrap_err();
        assert_eq!(err.status(), Some(401));
        let err = RelayClient::connect(&r.addr, "not-a-ticket")
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(401));
        let expired = Ticket {
            device: addr("bob", 1),
            issued_at: now_secs() - 7200,
            expires_at: now_secs() - 3600,
        }
        .sign_to_text(&r.key);
        let err = RelayClient::connect(&r.addr, &expired).await.unwrap_err();
        assert_eq!(err.status(), Some(401));
        // The query parameter works for clients that cannot set headers.
        let mut ok = RelayClient::connect_query(&r.addr, Some(&r.ticket("bob", 1)))
            .await
            .unwrap();
        assert_eq!(
            ok.recv().await.unwrap(),
            ServerFrame::QueueDrained { count: 0 }
        );
        r.stop().await;
    });
}

#[tokio::test]
async fn a_connection_is_closed_when_its_ticket_expires() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        let r = start(config(&key, &dir), key).await;
        let short = Ticket {
            device: addr("brief", 1),
            issued_at: now_secs(),
            expires_at: now_secs() + 2,
        }
        .sign_to_text(&r.key);
        let mut c = RelayClient::connect(&r.addr, &short).await.unwrap();
        assert_eq!(
            c.recv().await.unwrap(),
            ServerFrame::QueueDrained { count: 0 }
        );
        // Usable until the expiry...
        let mut peer = r.connect_empty("peer", 1).await;
        send_ok(&mut c, vec![env(1, &[("peer", 1)], b"before expiry")]).await;
        assert_eq!(
            &recv_delivery(&mut peer).await.payload[..],
            b"before expiry"
        );
        // ...then closed with 4004 (within 3 s of connecting, not later).
        let closed = tokio::time::timeout(
            Duration::from_secs(4),
            expect_close(&mut c, CLOSE_TICKET_EXPIRED),
        )
        .await;
        assert!(closed.is_ok(), "not closed at ticket expiry");
        // A fresh ticket reconnects; others were served throughout.
        r.connect_empty("brief", 1).await;
        still_serving(&r, "expiry").await;
        r.stop().await;
    });
}

#[tokio::test]
async fn limit_violations_get_typed_errors_and_the_connection_survives() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        let r = start(config(&key, &dir), key).await;
        let mut alice = r.connect_empty("alice", 1).await;
        let mut bob = r.connect_empty("bob", 1).await;
        // Acked before the violations: must survive them.
        send_ok(&mut alice, vec![env(1, &[("bob", 1)], b"before")]).await;
        assert_eq!(recv_delivery(&mut bob).await.msg_id, 1);

        let big = env(2, &[("bob", 1)], &vec![0u8; MAX_PAYLOAD_LEN + 1]);
        alice.send(&ClientFrame::Send(vec![big])).await.unwrap();
        // The ERROR names the refused batch's first envelope (issue 10, item 5).
        assert_eq!(
            error_of(alice.recv().await.unwrap()),
            (ErrorCode::PayloadTooLarge, 2)
        );

        let many: Vec<(String, u32)> = (0..=MAX_RECIPIENTS as u32)
            .map(|i| ("x".to_string(), i))
            .collect();
        let many_ref: Vec<(&str, u32)> = many.iter().map(|(u, d)| (u.as_str(), *d)).collect();
        alice
            .send(&ClientFrame::Send(vec![env(3, &many_ref, b"x")]))
            .await
            .unwrap();
        assert_eq!(
            error_of(alice.recv().await.unwrap()),
            (ErrorCode::TooManyRecipients, 3)
        );
        let too_many: Vec<OutEnvelope> = (10..=10 + MAX_BATCH_ENVELOPES as u64)
            .map(|i| env(i, &[("bob", 1)], b"x"))
            .collect();
        alice.send(&ClientFrame::Send(too_many)).await.unwrap();
        assert_eq!(
            error_of(alice.recv().await.unwrap()),
            (ErrorCode::BatchTooLarge, 10)
        );

        // The same connection still sends.
        let res = send_ok(&mut alice, vec![env(4, &[("bob", 1)], b"after")]).await;
        assert_eq!(res, vec![(4, SendStatus::Stored)]);
        assert_eq!(recv_delivery(&mut bob).await.msg_id, 4);
        assert_silent(&mut bob, 200).await;
        r.stop().await;
    });
}

#[tokio::test]
async fn token_bucket_rate_limits_a_sender_with_retry_after() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        let mut cfg = config(&key, &dir);
        // 1/s: slow enough that a loaded machine cannot refill a token during the burst.
        cfg.send_rate = 1;
        cfg.send_burst = 5;
        let r = start(cfg, key).await;
        let mut alice = r.connect_empty("alice", 1).await;
        for i in 0..5 {
            let res = send_ok(&mut alice, vec![env(i, &[("bob", 1)], b"x")]).await;
            assert_eq!(res[0].1, SendStatus::Stored);
        }
        alice
            .send(&ClientFrame::Send(vec![env(5, &[("bob", 1)], b"x")]))
            .await
            .unwrap();
        match alice.recv().await.unwrap() {
            ServerFrame::Error {
                code,
                msg_id,
                retry_after_ms,
                ..
            } => {
                assert_eq!(code, ErrorCode::RateLimited);
                assert_eq!(msg_id, 5);
                assert!((1..=1000).contains(&retry_after_ms), "{retry_after_ms}");
            }
            other => panic!("{other:?}"),
        }
        // Reconnecting does not refill the bucket (it belongs to the device, not the socket).
        alice.close().await;
        let mut alice = r.connect_empty("alice", 1).await;
        alice
            .send(&ClientFrame::Send(vec![env(5, &[("bob", 1)], b"x")]))
            .await
            .unwrap();
        let wait = match alice.recv().await.unwrap() {
            ServerFrame::Error {
                code: ErrorCode::RateLimited,
                retry_after_ms,
                ..
            } => retry_after_ms,
            other => panic!("{other:?}"),
        };
        // Waiting does.
        tokio::time::sleep(Duration::from_millis(u64::from(wait) + 20)).await;
        let res = send_ok(&mut alice, vec![env(5, &[("bob", 1)], b"x")]).await;
        assert_eq!(res[0].1, SendStatus::Stored);
        // Refused sends were not stored: exactly 6 envelopes.
        assert_eq!(r.relay.mailbox_len(&addr("bob", 1)).await.unwrap(), 6);
        // Others are not limited by alice's bucket.
        still_serving(&r, "rate").await;
        r.stop().await;
    });
}

#[tokio::test]
async fn full_mailbox_refuses_new_envelopes_and_keeps_old_ones() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        let mut cfg = config(&key, &dir);
        cfg.max_mailbox = 3;
        let r = start(cfg, key).await;
        let mut alice = r.connect_empty("alice", 1).await;
        for i in 0..3 {
            let res = send_ok(&mut alice, vec![env(i, &[("bob", 1)], b"x")]).await;
            assert_eq!(res[0].1, SendStatus::Stored);
        }
        let res = send_ok(&mut alice, vec![env(3, &[("bob", 1)], b"x")]).await;
        assert_eq!(res[0].1, SendStatus::MailboxFull);
        let res = send_ok(&mut alice, vec![env(4, &[("bob", 1), ("carol", 1)], b"g")]).await;
        assert_eq!(res[0].1, SendStatus::PartialMailboxFull);
        let mut bob = r.connect("bob", 1).await;
        let mut seqs = Vec::new();
        for i in 0..3 {
            let d = recv_delivery(&mut bob).await;
            assert_eq!(d.msg_id, i);
            seqs.push(d.seq);
        }
        assert_eq!(
            bob.recv().await.unwrap(),
            ServerFrame::QueueDrained { count: 3 }
        );
        bob.send(&ClientFrame::Ack(seqs)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Room again; the refused id was not remembered as a duplicate.
        let res = send_ok(&mut alice, vec![env(3, &[("bob", 1)], b"x")]).await;
        assert_eq!(res[0].1, SendStatus::Stored);
        assert_eq!(recv_delivery(&mut bob).await.msg_id, 3);
        r.stop().await;
    });
}

#[tokio::test]
async fn connection_limit_answers_503_and_frees_slots() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        let mut cfg = config(&key, &dir);
        cfg.max_connections = 2;
        let r = start(cfg, key).await;
        let a = r.connect_empty("a", 1).await;
        let _b = r.connect_empty("b", 1).await;
        let err = RelayClient::connect(&r.addr, &r.ticket("c", 1))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(503));
        a.close().await;
        let mut ok = None;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if let Ok(c) = RelayClient::connect(&r.addr, &r.ticket("c", 1)).await {
                ok = Some(c);
                break;
            }
        }
        assert!(ok.is_some(), "slot was not freed");
        r.stop().await;
    });
}

#[tokio::test]
async fn malformed_truncated_text_and_oversized_frames_close_with_codes() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        let r = start(config(&key, &dir), key).await;

        let mut c = r.connect_empty("m", 1).await;
        c.send_raw(vec![1, 0x7f]).await.unwrap();
        assert_eq!(error_code(c.recv().await.unwrap()), ErrorCode::UnknownKind);
        expect_close(&mut c, CLOSE_PROTOCOL).await;

        let mut c = r.connect_empty("m", 2).await;
        let mut bytes = ClientFrame::Send(vec![env(1, &[("bob", 1)], b"abcdef")]).to_bytes();
        bytes.truncate(bytes.len() - 3);
        c.send_raw(bytes).await.unwrap();
        assert_eq!(error_code(c.recv().await.unwrap()), ErrorCode::Malformed);
        expect_close(&mut c, CLOSE_PROTOCOL).await;

        let mut c = r.connect_empty("m", 3).await;
        c.send_raw(vec![9, 1]).await.unwrap();
        assert_eq!(
            error_code(c.recv().await.unwrap()),
            ErrorCode::UnsupportedVersion
        );
        expect_close(&mut c, CLOSE_PROTOCOL).await;

        let mut c = r.connect_empty("m", 4).await;
        c.send_text("hello").await.unwrap();
        assert_eq!(error_code(c.recv().await.unwrap()), ErrorCode::Malformed);
        expect_close(&mut c, CLOSE_PROTOCOL).await;

        let mut c = r.connect_empty("m", 5).await;
        let _ = c.send_raw(vec![0u8; MAX_FRAME_LEN + 1]).await;
        // The relay answers before reading the rest of the frame.
        match c.recv().await {
            Err(ClientError::Closed(Some(code))) => assert_eq!(code, CLOSE_TOO_BIG),
            other => panic!("expected close {CLOSE_TOO_BIG}, got {other:?}"),
        }
        // Nothing was stored for bob, and everybody else is still served.
        assert_eq!(r.relay.mailbox_len(&addr("bob", 1)).await.unwrap(), 0);
        still_serving(&r, "malformed").await;
        r.stop().await;
    });
}

/// Sends `total` one-byte envelopes to bob.1 in SENDs of 200, each answered before the next.
async fn send_to_bob_1(alice: &mut RelayClient, total: usize) {
    let mut next = 0u64;
    while (next as usize) < total {
        let batch: Vec<OutEnvelope> = (next..(next + 200).min(total as u64))
            .map(|i| env(i, &[("bob", 1)], b"m"))
            .collect();
        next += batch.len() as u64;
        alice.send(&ClientFrame::Send(batch)).await.unwrap();
        assert!(matches!(
            alice.recv().await.unwrap(),
            ServerFrame::SendResult(_)
        ));
    }
}

#[tokio::test]
async fn slow_reader_that_never_acks_gets_a_bounded_window_then_the_rest() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        let mut cfg = config(&key, &dir);
        cfg.send_rate = 1_000_000;
        cfg.send_burst = 1_000_000;
        let r = start(cfg, key).await;
        let mut alice = r.connect_empty("alice", 1).await;
        let mut bob = r.connect_empty("bob", 1).await;
        send_to_bob_1(&mut alice, MAX_INFLIGHT + 300).await;
        // Bob never acks: he gets exactly the window, then silence.
        let mut seqs = Vec::new();
        for _ in 0..MAX_INFLIGHT {
            seqs.push(recv_delivery(&mut bob).await.seq);
        }
        assert_silent(&mut bob, 500).await;
        // Others are unaffected meanwhile.
        still_serving(&r, "slow").await;
        // Acking opens the window and the rest arrives, each once.
        bob.send(&ClientFrame::Ack(seqs.clone())).await.unwrap();
        let mut rest = std::collections::HashSet::new();
        while rest.len() < 300 {
            let d = recv_delivery(&mut bob).await;
            assert!(!seqs.contains(&d.seq));
            assert!(rest.insert(d.seq), "duplicate delivery");
        }
        assert_silent(&mut bob, 300).await;
        r.stop().await;
    });
}

/// Issue 10, item 5: a reader with a full window that acks some deliveries gets as many new
/// ones at once, not only after it acked half the window.
#[tokio::test]
async fn the_window_reopens_as_acks_arrive() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        let mut cfg = config(&key, &dir);
        cfg.send_rate = 1_000_000;
        cfg.send_burst = 1_000_000;
        let r = start(cfg, key).await;
        let mut alice = r.connect_empty("alice", 1).await;
        let mut bob = r.connect_empty("bob", 1).await;
        send_to_bob_1(&mut alice, MAX_INFLIGHT + 300).await;
        let mut window = Vec::new();
        for _ in 0..MAX_INFLIGHT {
            window.push(recv_delivery(&mut bob).await.seq);
        }
        assert_silent(&mut bob, 300).await;
        let mut seen: std::collections::HashSet<u64> = window.iter().copied().collect();
        // Ack 100, then 50: exactly that many new deliveries each time, none seen before.
        for acked in [100usize, 50] {
            let ack: Vec<u64> = window.drain(..acked).collect();
            bob.send(&ClientFrame::Ack(ack)).await.unwrap();
            for _ in 0..acked {
                let d = recv_delivery(&mut bob).await;
                assert!(seen.insert(d.seq), "delivered twice: {}", d.seq);
                window.push(d.seq);
            }
            assert_silent(&mut bob, 300).await;
        }
        // And the rest once everything is acked.
        bob.send(&ClientFrame::Ack(std::mem::take(&mut window)))
            .await
            .unwrap();
        let mut rest = 0;
        while seen.len() < MAX_INFLIGHT + 300 {
            let d = recv_delivery(&mut bob).await;
            assert!(seen.insert(d.seq), "delivered twice: {}", d.seq);
            rest += 1;
        }
        assert_eq!(rest, 150);
        assert_silent(&mut bob, 300).await;
        r.stop().await;
    });
}

/// One raw HTTP/1.1 request; returns the status, the content type and the body.
async fn raw_http(addr: &str, request: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or("")
        .to_owned();
    (status, content_type, body.to_owned())
}

/// Issue 10, item 6: refusals that are not about the ticket are JSON too, and so is health.
#[tokio::test]
async fn every_refusal_and_the_health_check_are_json() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        let r = start(config(&key, &dir), key).await;
        let ticket = r.ticket("bob", 1);
        let cases = [
            // A plain GET with a valid ticket but no upgrade headers.
            (
                format!(
                    "GET {} HTTP/1.1\r\nHost: r\r\nAuthorization: Bearer {ticket}\r\nConnection: close\r\n\r\n",
                    e2ee_relay::WS_PATH
                ),
                "not_websocket",
            ),
            (
                format!(
                    "GET {}?ticket=a&ticket=b HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n",
                    e2ee_relay::WS_PATH
                ),
                "invalid_query",
            ),
            (
                "GET /nowhere HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n".to_owned(),
                "not_found",
            ),
            (
                format!(
                    "POST {} HTTP/1.1\r\nHost: r\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    e2ee_relay::WS_PATH
                ),
                "method_not_allowed",
            ),
        ];
        for (request, code) in cases {
            let (status, content_type, body) = raw_http(&r.addr, &request).await;
            assert!((400..500).contains(&status), "{code}: {status}");
            assert_eq!(content_type, "application/json", "{code}");
            let body: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["code"], code, "{body}");
        }
        let (status, content_type, body) = raw_http(
            &r.addr,
            "GET /v1/relay/health HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!((status, content_type.as_str()), (200, "application/json"));
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["connections"], 0);
        r.stop().await;
    });
}
