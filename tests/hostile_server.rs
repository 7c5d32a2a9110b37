//! A hostile server: proxies between real clients and the real all-in-one server that lie.
//! The key server proxy swaps a bundle's identity and serves another account as Bob's; the
//! relay proxy forges a delivery from a device Bob's list does not name, replays and reorders
//! deliveries, and drops every acknowledgement. The clients refuse or deduplicate, and say so
//! with the right error or event. A group: a non-member given copies of its messages reads
//! none, and a change signed by a removed admin on her stale state changes nobody's group.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::result_large_err
)]

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use e2ee_client::{Client, ClientError, ConnectionState, Error, Event};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

mod common;

use common::clients::{
    config_with_relay as config, expect, expect_message, expect_online as online, fresh_server,
    link, temp_dir,
};

/// What the key server proxy answers instead of the server, by request path.
type Lie = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// An HTTP/1.1 proxy in front of the key server (one request per connection, as the client
/// makes them) that answers the paths in `lies` with its own JSON.
async fn keyserver_proxy(backend: String, lies: Lie) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let (backend, lies) = (backend.clone(), Arc::clone(&lies));
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 8192];
                // Head, then the body its Content-Length announces.
                let (head_len, body_len) = loop {
                    let n = client.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&request[..at]).to_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (at + 4, len);
                    }
                };
                while request.len() < head_len + body_len {
                    let n = client.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                let line = String::from_utf8_lossy(&request[..head_len]).into_owned();
                let path = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let lie = lies
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map(|(_, v)| v.clone());
                let response = match lie {
                    Some(body) => {
                        let body = body.to_string();
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .into_bytes()
                    }
                    None => {
                        let mut upstream = tokio::net::TcpStream::connect(&backend).await.unwrap();
                        let text = String::from_utf8_lossy(&request[..head_len]).replacen(
                            "\r\n\r\n",
                            "\r\nconnection: close\r\n\r\n",
                            1,
                        );
                        upstream.write_all(text.as_bytes()).await.unwrap();
                        upstream.write_all(&request[head_len..]).await.unwrap();
                        let mut response = Vec::new();
                        let _ = upstream.read_to_end(&mut response).await;
                        response
                    }
                };
                let _ = client.write_all(&response).await;
                let _ = client.shutdown().await;
            });
        }
    });
    addr
}

/// Group messages a proxy saw delivered: (sender user, sender device, payload).
type Captured = Arc<Mutex<Vec<(String, u32, Vec<u8>)>>>;

/// How the relay proxy misbehaves.
#[derive(Default)]
struct RelayLies {
    /// Deliver every DELIVER twice, and swap each with the next.
    replay_and_reorder: bool,
    /// Never pass the client's ACK frames on.
    drop_acks: bool,
    /// Frames to inject towards the client once it is connected.
    inject: Vec<Vec<u8>>,
    /// Close the next connection after this many deliveries (once).
    cut_after: Option<usize>,
    /// Keep a copy of every group message delivered (sender, device, payload).
    captured: Option<Captured>,
    /// Hold every delivery back (the relay keeps it, the client never sees it).
    swallow: bool,
    /// Lose every delivery: acknowledge it to the relay in the client's name and drop it.
    lose: bool,
}

/// A WebSocket proxy in front of the relay.
async fn relay_proxy(backend: String, lies: Arc<Mutex<RelayLies>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let (backend, lies) = (backend.clone(), Arc::clone(&lies));
            tokio::spawn(async move {
                let auth = Arc::new(Mutex::new(None));
                let seen = Arc::clone(&auth);
                let callback =
                    move |request: &tokio_tungstenite::tungstenite::handshake::server::Request,
                          response| {
                        *seen.lock().unwrap() = request.headers().get("authorization").cloned();
                        Ok(response)
                    };
                let Ok(downstream) = tokio_tungstenite::accept_hdr_async(socket, callback).await
                else {
                    return;
                };
                let mut request = format!("ws://{backend}/v1/relay/ws")
                    .into_client_request()
                    .unwrap();
                if let Some(value) = auth.lock().unwrap().clone() {
                    request.headers_mut().insert("authorization", value);
                }
                let Ok((upstream, _)) = tokio_tungstenite::connect_async(request).await else {
                    return;
                };
                let (mut down_tx, mut down_rx) = downstream.split();
                let (up_tx, mut up_rx) = upstream.split();
                let up_tx = Arc::new(tokio::sync::Mutex::new(up_tx));
                let up_for_lies = Arc::clone(&up_tx);
                let inject: Vec<Vec<u8>> = std::mem::take(&mut lies.lock().unwrap().inject);
                for frame in inject {
                    let _ = down_tx.send(Message::Binary(frame.into())).await;
                }
                let client_to_relay = {
                    let lies = Arc::clone(&lies);
                    async move {
                        while let Some(Ok(message)) = down_rx.next().await {
                            let is_ack =
                                matches!(&message, Message::Binary(b) if b.get(1) == Some(&0x02));
                            if is_ack && lies.lock().unwrap().drop_acks {
                                continue;
                            }
                            if up_tx.lock().await.send(message).await.is_err() {
                                break;
                            }
                        }
                    }
                };
                let relay_to_client = async move {
                    let mut held: Option<Message> = None;
                    let mut delivered = 0;
                    loop {
                        let next = tokio::time::timeout(Duration::from_millis(30), up_rx.next());
                        let message = match next.await {
                            Err(_) => {
                                if let Some(frame) = held.take() {
                                    let _ = down_tx.send(frame.clone()).await;
                                    let _ = down_tx.send(frame).await;
                                }
                                continue;
                            }
                            Ok(Some(Ok(message))) => message,
                            Ok(_) => break,
                        };
                        let (reorder, cut) = {
                            let lies = lies.lock().unwrap();
                            (lies.replay_and_reorder, lies.cut_after)
                        };
                        let is_delivery =
                            matches!(&message, Message::Binary(b) if b.get(1) == Some(&0x82));
                        if is_delivery {
                            delivered += 1;
                            let (captured, swallow, lose) = {
                                let lies = lies.lock().unwrap();
                                (lies.captured.clone(), lies.swallow, lies.lose)
                            };
                            if let (Some(captured), Message::Binary(bytes)) = (captured, &message) {
                                capture_group_message(&captured, bytes);
                            }
                            if lose && let Message::Binary(bytes) = &message {
                                let ack = ack_for(bytes);
                                let _ = up_for_lies.lock().await.send(ack).await;
                                continue;
                            }
                            if swallow {
                                continue;
                            }
                        }
                        if is_delivery && reorder {
                            match held.take() {
                                None => held = Some(message),
                                Some(earlier) => {
                                    let _ = down_tx.send(message.clone()).await;
                                    let _ = down_tx.send(earlier.clone()).await;
                                    let _ = down_tx.send(earlier).await;
                                    let _ = down_tx.send(message).await;
                                }
                            }
                        } else {
                            if let Some(frame) = held.take() {
                                let _ = down_tx.send(frame.clone()).await;
                                let _ = down_tx.send(frame).await;
                            }
                            if down_tx.send(message).await.is_err() {
                                break;
                            }
                        }
                        if cut.is_some_and(|n| delivered >= n) {
                            lies.lock().unwrap().cut_after = None;
                            let _ = down_tx.close().await;
                            break;
                        }
                    }
                };
                tokio::select! {
                    () = client_to_relay => {}
                    () = relay_to_client => {}
                }
            });
        }
    });
    addr
}

/// The `ACK` frame a client would send for a `DELIVER` frame.
fn ack_for(frame: &[u8]) -> Message {
    use e2ee_relay::wire::{ClientFrame, Codec, ServerFrame};
    let seq = match ServerFrame::from_bytes(frame) {
        Ok(ServerFrame::Deliver(delivery)) => delivery.seq,
        _ => 0,
    };
    Message::Binary(ClientFrame::Ack(vec![seq]).to_bytes().into())
}

/// Records a `DELIVER` frame's envelope if it is a group message (payload type 0x21).
fn capture_group_message(captured: &Captured, frame: &[u8]) {
    use e2ee_relay::wire::{Codec, ServerFrame};
    if let Ok(ServerFrame::Deliver(delivery)) = ServerFrame::from_bytes(frame)
        && delivery.payload.first() == Some(&0x21)
    {
        captured.lock().unwrap().push((
            delivery.sender.user_id().to_owned(),
            delivery.sender.device_id(),
            delivery.payload.to_vec(),
        ));
    }
}

/// A forged `DELIVER` frame: an envelope the relay claims `sender` sent.
fn forged_delivery(sender: &str, device: u32, payload: &[u8]) -> Vec<u8> {
    use e2ee_relay::wire::{Codec, Delivery, DeviceAddress, ServerFrame};
    ServerFrame::Deliver(Delivery {
        seq: 999_999,
        flags: 0,
        server_ts_ms: 1,
        sender: DeviceAddress::new(sender, device).unwrap(),
        msg_id: 77,
        payload: payload.to_vec().into(),
    })
    .to_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_key_server_cannot_swap_a_bundle_or_an_account() {
    let dir = temp_dir("keys");
    let (server, url) = fresh_server(&dir, &[]).await;
    let addr = server.addr.clone();
    // The attacker's own server, with an impostor "bob" and an account to read it with.
    let (other, _) = fresh_server(&dir.join("other"), &[]).await;
    let other_addr = other.addr.clone();
    let impostor = Client::register(
        config(&dir, "impostor", &format!("http://{other_addr}"), None),
        "bob",
    )
    .await
    .unwrap();
    drop(impostor);
    let (mallory, _) = common::register_two_devices(&other_addr, "mallory").await;
    let served = |path: &'static str| {
        let (other_addr, mallory) = (other_addr.clone(), mallory.clone());
        async move {
            let (status, body) =
                common::http_json(&other_addr, "GET", path, Some(&mallory), None).await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };

    let bob = Client::register(config(&dir, "bob", &url, None), "bob")
        .await
        .unwrap();
    bob.start();
    online(&bob).await;
    // Alice reaches the key server and the relay through the attacker's proxies.
    let lies: Lie = Arc::default();
    let keys_proxy = keyserver_proxy(addr.clone(), Arc::clone(&lies)).await;
    let relay_lies = Arc::new(Mutex::new(RelayLies::default()));
    let relay = relay_proxy(addr.clone(), Arc::clone(&relay_lies)).await;
    let alice = Client::register(
        config(
            &dir,
            "alice",
            &format!("http://{keys_proxy}"),
            Some(format!("http://{relay}")),
        ),
        "alice",
    )
    .await
    .unwrap();
    alice.start();
    online(&alice).await;

    // 1. Bob's bundle replaced by the impostor's (a genuine bundle of another identity):
    // refused, and nothing is encrypted to it.
    let bundle = served("/v1/bundles/bob/1").await;
    lies.lock()
        .unwrap()
        .push(("/v1/bundles/bob/1".into(), bundle));
    let refused = alice.send("bob", b"for bob only").await;
    assert!(
        matches!(
            refused,
            Err(ClientError::Device(
                Error::NotListed { .. } | Error::InvalidSignature { .. }
            ))
        ),
        "{refused:?}"
    );
    assert_eq!(alice.outbox_len().unwrap(), 0);
    lies.lock().unwrap().clear();
    let id = alice.send("bob", b"for bob only").await.unwrap();
    assert_eq!(expect_message(&bob).await.id, id);
    let before = alice.safety_number("bob").await.unwrap();

    // 2. The impostor's account served as Bob's, and a forged envelope from an unlisted
    // "bob.2" to make Alice refresh Bob's list: the account key changed, Alice says so and
    // keeps trusting the key she had; the forged envelope stays unacknowledged.
    let list = served("/v1/device-list/bob").await;
    lies.lock()
        .unwrap()
        .push(("/v1/device-list/bob".into(), list));
    relay_lies.lock().unwrap().inject = vec![forged_delivery("bob", 2, b"\x11forged")];
    // Reconnect Alice so the proxy injects on the new connection.
    alice.stop().await;
    drop(alice);
    let alice = Client::open(config(
        &dir,
        "alice",
        &format!("http://{keys_proxy}"),
        Some(format!("http://{relay}")),
    ))
    .unwrap();
    alice.start();
    let user = expect(&alice, "identity changed", |e| match e {
        Event::IdentityChanged { user } => Some(user.clone()),
        _ => None,
    })
    .await;
    assert_eq!(user, "bob");
    assert_eq!(alice.safety_number("bob").await.unwrap(), before);
    let id = alice.send("bob", b"still the real bob").await.unwrap();
    let got = expect_message(&bob).await;
    assert_eq!(
        (got.id, got.body.as_slice()),
        (id, &b"still the real bob"[..])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_reordered_and_unacknowledged_deliveries_are_shown_once() {
    let dir = temp_dir("relay");
    let (server, url) = fresh_server(&dir, &[]).await;
    let addr = server.addr.clone();
    let lies = Arc::new(Mutex::new(RelayLies {
        replay_and_reorder: true,
        drop_acks: true,
        cut_after: Some(12),
        ..RelayLies::default()
    }));
    let proxy = relay_proxy(addr.clone(), Arc::clone(&lies)).await;
    let alice = Client::register(config(&dir, "alice", &url, None), "alice")
        .await
        .unwrap();
    alice.start();
    online(&alice).await;
    let bob = Client::register(
        config(&dir, "bob", &url, Some(format!("http://{proxy}"))),
        "bob",
    )
    .await
    .unwrap();
    bob.start();
    online(&bob).await;
    let mut sent = HashSet::new();
    for i in 0..20 {
        sent.insert(alice.send("bob", format!("m{i}").as_bytes()).await.unwrap());
    }
    // Every message once, though each came twice, out of order, and the first twelve again
    // after the connection was cut (no ack ever reached the relay).
    let mut seen = HashSet::new();
    while seen.len() < sent.len() {
        let message = expect_message(&bob).await;
        assert!(
            seen.insert(message.id),
            "message {} shown twice",
            message.id
        );
    }
    assert_eq!(seen, sent);
    // Let the proxy pass acks again: the mailbox drains and nothing more is shown.
    {
        let mut lies = lies.lock().unwrap();
        lies.drop_acks = false;
        lies.cut_after = Some(0);
    }
    // The next frame cuts the connection; on the next one the relay redelivers everything
    // (no ack reached it), the client shows none of it again, and its acks now pass.
    let _ = alice.send("bob", b"last").await.unwrap();
    let (mut last, mut reconnected, mut drained) = (false, false, false);
    while !(last && drained) {
        match expect(&bob, "events", |e| Some(e.clone())).await {
            Event::Message(m) => {
                assert_eq!(m.body, b"last", "an earlier message was shown again");
                assert!(!last, "shown twice");
                last = true;
            }
            Event::Connection(ConnectionState::Online) => reconnected = true,
            Event::CaughtUp if reconnected => drained = true,
            _ => {}
        }
    }
    let quiet = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if let Some(Event::Message(m)) = bob.next_event().await {
                return m;
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "a message was shown again: {quiet:?}");
    assert_eq!(bob.messages("alice", None, 100).unwrap().messages.len(), 21);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_server_cannot_roll_a_device_list_back() {
    let dir = temp_dir("rollback");
    let (server, url) = fresh_server(&dir, &[]).await;
    let addr = server.addr.clone();
    let (mallory, _) = common::register_two_devices(&addr, "mallory").await;
    let alice = Client::register(config(&dir, "alice", &url, None), "alice")
        .await
        .unwrap();
    alice.start();
    online(&alice).await;
    // Alice's list as it is now (version 1: her phone alone), kept by the attacker.
    let (status, old_list) =
        common::http_json(&addr, "GET", "/v1/device-list/alice", Some(&mallory), None).await;
    assert_eq!(status, 200);
    // Bob reaches the key server through the attacker's proxy.
    let lies: Lie = Arc::default();
    let proxy = keyserver_proxy(addr.clone(), Arc::clone(&lies)).await;
    let bob = Client::register(
        config(&dir, "bob", &format!("http://{proxy}"), Some(url.clone())),
        "bob",
    )
    .await
    .unwrap();
    bob.start();
    online(&bob).await;
    assert_eq!(bob.devices("alice").await.unwrap(), vec![1]);

    // Alice links her laptop: version 2 names both devices; Bob verifies it.
    let laptop = link(&alice, config(&dir, "alice-laptop", &url, None)).await;
    assert_eq!(bob.devices("alice").await.unwrap(), vec![1, 2]);

    // The server serves version 1 again (to hide the laptop, or to bring back a removed
    // device): refused as stale, and Bob keeps encrypting to both devices.
    lies.lock()
        .unwrap()
        .push(("/v1/device-list/alice".into(), old_list));
    let refused = bob.devices("alice").await;
    assert!(
        matches!(
            refused,
            Err(ClientError::Device(Error::StaleDeviceList {
                have: 2,
                got: 1
            }))
        ),
        "{refused:?}"
    );
    let id = bob.send("alice", b"to both of you").await.unwrap();
    assert_eq!(expect_message(&alice).await.id, id);
    assert_eq!(expect_message(&laptop).await.id, id);
    for client in [&alice, &bob, &laptop] {
        client.stop().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A server that copies a group's messages to a non-member (a ghost in the fan-out) and
/// delivers a change signed by a removed admin on the state she was removed from: the ghost
/// reads nothing, the change loses to the removal, and no member shows the ghost or sends it
/// anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_cannot_add_a_ghost_to_a_group_or_pass_a_forged_change() {
    use e2ee_client::GroupEdit;

    let dir = temp_dir("groups");
    let (server, url) = fresh_server(&dir, &[]).await;
    let captured = Arc::new(Mutex::new(Vec::new()));
    let bob_lies = Arc::new(Mutex::new(RelayLies {
        captured: Some(Arc::clone(&captured)),
        ..RelayLies::default()
    }));
    let mallory_lies = Arc::new(Mutex::new(RelayLies::default()));
    let bob_proxy = relay_proxy(server.addr.clone(), bob_lies).await;
    let mallory_proxy = relay_proxy(server.addr.clone(), Arc::clone(&mallory_lies)).await;
    let register = |name: &'static str, relay: Option<String>| {
        let config = config(&dir, name, &url, relay);
        async move {
            let client = Client::register(config, name).await.unwrap();
            client.start();
            online(&client).await;
            client
        }
    };
    let alice = register("alice", None).await;
    let bob = register("bob", Some(format!("http://{bob_proxy}"))).await;
    let carol = register("carol", None).await;
    let ghost = register("ghost", None).await;
    let mallory = register("mallory", Some(format!("http://{mallory_proxy}"))).await;

    let id = alice.create_group("team", &["bob", "carol"]).await.unwrap();
    let first = alice.send_group(&id, b"members only").await.unwrap();
    assert_eq!(expect_message(&bob).await.id, first);
    assert_eq!(expect_message(&carol).await.id, first);

    // The ghost in the fan-out: the message bob got, copied into mallory's stream.
    let copies: Vec<Vec<u8>> = captured
        .lock()
        .unwrap()
        .iter()
        .map(|(user, device, payload)| forged_delivery(user, *device, payload))
        .collect();
    assert!(!copies.is_empty(), "the proxy saw the group message");
    mallory.stop().await;
    drop(mallory);
    mallory_lies.lock().unwrap().inject = copies;
    let mallory = Client::open(config(
        &dir,
        "mallory",
        &url,
        Some(format!("http://{mallory_proxy}")),
    ))
    .unwrap();
    mallory.start();
    let reason = expect(&mallory, "the copy dropped", |e| match e {
        Event::Dropped { reason, .. } => Some(reason.clone()),
        Event::Message(m) => panic!("the ghost read a group message: {m:?}"),
        _ => None,
    })
    .await;
    assert!(reason.contains("no such group"), "{reason}");

    // The forged change: mallory is made an admin, then removed; the server keeps the
    // removal from her, and passes on what she then signs on her stale state.
    alice
        .change_group(
            &id,
            GroupEdit::Add {
                user: "mallory".into(),
                admin: true,
            },
        )
        .await
        .unwrap();
    expect(&mallory, "the welcome", |e| {
        matches!(e, Event::GroupChanged(info) if info.version == 2).then_some(())
    })
    .await;
    mallory_lies.lock().unwrap().swallow = true;
    alice
        .change_group(&id, GroupEdit::Remove("mallory".into()))
        .await
        .unwrap();
    for member in [&bob, &carol] {
        expect(member, "the removal", |e| {
            matches!(e, Event::GroupChanged(info) if info.version == 3).then_some(())
        })
        .await;
    }
    let stale = mallory
        .change_group(
            &id,
            GroupEdit::Add {
                user: "ghost".into(),
                admin: true,
            },
        )
        .await
        .unwrap();
    assert!(
        stale.members.iter().any(|m| m.user == "ghost"),
        "her own view"
    );
    // Every member holds the change and keeps the removal: bob's next message, sent after
    // hers arrived, goes to the signed state's devices only.
    tokio::time::timeout(Duration::from_secs(20), async {
        while mallory.outbox_len().unwrap() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the relay stored mallory's change");
    // Bob's next message is sent after the change reached him (the relay delivers in order
    // to an online device; a second of slack for the commit).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let names = |c: &Client| -> Vec<String> {
        c.group(&id)
            .unwrap()
            .members
            .into_iter()
            .map(|m| m.user)
            .collect()
    };
    for member in [&alice, &bob, &carol] {
        assert_eq!(names(member), vec!["alice", "bob", "carol"]);
    }
    let last = bob.send_group(&id, b"who is here?").await.unwrap();
    assert_eq!(expect_message(&alice).await.id, last);
    let record = bob
        .group_messages(&id, None, 10)
        .unwrap()
        .messages
        .into_iter()
        .find(|m| m.id == last)
        .unwrap();
    let to: Vec<&str> = record
        .recipients
        .iter()
        .map(|(d, _)| d.user.as_str())
        .collect();
    assert_eq!(to, vec!["alice", "carol"]);
    let ghost_saw = ghost
        .group_messages(&id, None, 10)
        .map(|p| p.messages.len())
        .unwrap_or(0);
    assert_eq!(ghost_saw, 0, "the ghost received no group message");

    for client in [&alice, &bob, &carol, &ghost, &mallory] {
        client.stop().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A change the server loses for one member (it acknowledges the delivery in the member's
/// name and drops it) reaches that member anyway: the next group message names a state it
/// does not hold, it asks the sender, and the sender's answer brings the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_change_the_server_loses_is_fetched_from_the_next_sender() {
    use e2ee_client::GroupEdit;

    let dir = temp_dir("groups-lost");
    let (server, url) = fresh_server(&dir, &[]).await;
    let lies = Arc::new(Mutex::new(RelayLies::default()));
    let proxy = relay_proxy(server.addr.clone(), Arc::clone(&lies)).await;
    let alice = Client::register(config(&dir, "alice", &url, None), "alice")
        .await
        .unwrap();
    alice.start();
    online(&alice).await;
    let carol = Client::register(
        config(&dir, "carol", &url, Some(format!("http://{proxy}"))),
        "carol",
    )
    .await
    .unwrap();
    carol.start();
    online(&carol).await;
    let id = alice.create_group("trip", &["carol"]).await.unwrap();
    expect(&carol, "the welcome", |e| {
        matches!(e, Event::GroupChanged(info) if info.version == 1).then_some(())
    })
    .await;

    lies.lock().unwrap().lose = true;
    alice
        .change_group(&id, GroupEdit::Rename("road trip".into()))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        while alice.outbox_len().unwrap() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the relay stored the change");
    // The relay hands the change to the proxy, which acks and drops it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    lies.lock().unwrap().lose = false;
    assert_eq!(carol.group(&id).unwrap().version, 1, "the change was lost");

    let message = alice.send_group(&id, b"leaving at 8").await.unwrap();
    assert_eq!(expect_message(&carol).await.id, message);
    let info = expect(&carol, "the fetched change", |e| match e {
        Event::GroupChanged(info) if info.version == 2 => Some(info.clone()),
        _ => None,
    })
    .await;
    assert_eq!(info.name, "road trip");
    for client in [&alice, &carol] {
        client.stop().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
