//! Whole stack: the real all-in-one server (a child process on loopback, SQLite) and real
//! `e2ee_client::Client`s: registration, 1:1 messages with receipts, an offline user catching
//! up, a server killed with SIGKILL and restarted while the outbox holds messages, and the
//! same over TLS through a terminating proxy with a generated certificate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{path::Path, process::Stdio, sync::Arc, time::Duration};

use e2ee_client::{Client, ClientConfig, ConnectionState, Event, MessageStatus};

mod common;

use common::clients::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_chat_with_receipts_catch_up_and_survive_a_server_kill() {
    let dir = temp_dir("chat");
    let (mut server, url) = fresh_server(&dir, &[]).await;

    let (alice, bob) = online_pair(&dir, &url).await;

    // 1:1 with receipts: sent, delivered, read.
    let id = alice.send("bob", b"hello bob").await.unwrap();
    let got = expect_message(&bob).await;
    assert_eq!((got.id, got.body.as_slice()), (id, &b"hello bob"[..]));
    assert_eq!(got.conversation, "alice");
    expect_status(&alice, id, MessageStatus::Delivered).await;
    bob.mark_read("alice", &[id]).await.unwrap();
    expect_status(&alice, id, MessageStatus::Read).await;
    assert_eq!(
        alice.message("alice", id).unwrap().unwrap().status,
        MessageStatus::Read
    );
    let reply = bob.send("alice", b"hi alice").await.unwrap();
    assert_eq!(expect_message(&alice).await.id, reply);
    assert_eq!(
        alice.safety_number("bob").await.unwrap().displayable,
        bob.safety_number("alice").await.unwrap().displayable,
        "both see one number"
    );

    // Bob goes offline; Alice's messages wait at the relay and arrive in order when Bob's
    // app opens the store again.
    bob.stop().await;
    drop(bob);
    let sent = send_numbered(&alice, "bob", "offline ", 20).await;
    expect_statuses(&alice, &sent, MessageStatus::Sent).await;
    let bob = Client::open(config(&dir, "bob", &url)).unwrap();
    bob.start();
    let received = receive_ids(&bob, sent.len()).await;
    assert_eq!(received, sent, "every message once, in order");
    expect(&bob, "caught up", |e| {
        matches!(e, Event::CaughtUp).then_some(())
    })
    .await;

    // The server dies (SIGKILL) while Alice sends: the message waits in her outbox, both
    // clients reconnect with backoff once it is back, and it arrives once.
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();
    expect(&alice, "offline", |e| {
        matches!(e, Event::Connection(ConnectionState::Offline { .. })).then_some(())
    })
    .await;
    let during = alice
        .send("bob", b"while the server was down")
        .await
        .unwrap();
    assert_eq!(alice.outbox_len().unwrap(), 1);
    let server = start_server(&dir.join("server"), &server.addr).await;
    let got = expect_message(&bob).await;
    assert_eq!(
        (got.id, got.body.as_slice()),
        (during, &b"while the server was down"[..])
    );
    expect_status(&alice, during, MessageStatus::Delivered).await;
    assert_eq!(alice.outbox_len().unwrap(), 0);

    // The log has the whole conversation on both sides.
    let history = bob.messages("alice", None, 100).unwrap();
    assert_eq!(history.messages.len(), 1 + 1 + 20 + 1);
    assert!(
        history
            .messages
            .iter()
            .all(|m| m.status != MessageStatus::Pending)
    );

    alice.stop().await;
    bob.stop().await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A TLS-terminating proxy in front of the plain server, with a certificate for
/// `localhost` from a generated CA the client is told to trust.
async fn tls_proxy(backend: String) -> (u16, Vec<u8>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let backend = backend.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(&backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (port, ca.der().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_talk_over_https_and_wss_with_a_private_ca() {
    let dir = temp_dir("tls");
    let addr = format!("127.0.0.1:{}", free_port());
    let server = start_server(&dir.join("server"), &addr).await;
    let (port, ca) = tls_proxy(addr.clone()).await;
    let url = format!("https://localhost:{port}");
    let with_ca = |name: &str| ClientConfig {
        extra_root_certificates: vec![ca.clone()],
        ..config(&dir, name, &url)
    };

    // Without the CA the certificate is not trusted: a typed TLS error, nothing registered.
    let refused = Client::register(config(&dir, "mallory", &url), "mallory").await;
    assert!(
        matches!(refused, Err(e2ee_client::ClientError::Tls(_))),
        "{refused:?}"
    );

    let alice = Client::register(with_ca("alice"), "alice").await.unwrap();
    let bob = Client::register(with_ca("bob"), "bob").await.unwrap();
    alice.start();
    bob.start();
    expect_online(&alice).await;
    expect_online(&bob).await;
    let id = alice.send("bob", b"over TLS").await.unwrap();
    let got = expect_message(&bob).await;
    assert_eq!((got.id, got.body.as_slice()), (id, &b"over TLS"[..]));
    expect_status(&alice, id, MessageStatus::Delivered).await;
    alice.stop().await;
    bob.stop().await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cli_users_chat() {
    let dir = temp_dir("cli");
    let (server, url) = fresh_server(&dir, &[]).await;
    let (alice, bob) = (dir.join("alice.db"), dir.join("bob.db"));
    let (ok, out) = cli(&url, &alice, &["register", "alice"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("registered alice.1"), "{out}");
    let key = std::fs::metadata(dir.join("alice.db.key")).unwrap();
    assert_eq!(key.len(), 32);
    #[cfg(unix)]
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key.permissions()) & 0o777,
        0o600
    );
    assert!(cli(&url, &bob, &["register", "bob"]).await.0);
    // Registering again is refused, and leaves the store as it was.
    let (ok, out) = cli(&url, &alice, &["register", "alice"]).await;
    assert!(!ok, "{out}");

    let (ok, out) = cli(&url, &alice, &["send", "bob", "hello from the CLI"]).await;
    assert!(ok, "{out}");
    let (ok, out) = cli(&url, &bob, &["listen", "--count", "1", "--read"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("[alice.1] hello from the CLI"), "{out}");
    let (ok, out) = cli(&url, &bob, &["history", "alice"]).await;
    assert!(
        ok && out.contains("alice.1: hello from the CLI (ReadHere)"),
        "{out}"
    );
    let (_, alice_number) = cli(&url, &alice, &["safety-number", "bob"]).await;
    let (_, bob_number) = cli(&url, &bob, &["safety-number", "alice"]).await;
    assert_eq!(alice_number, bob_number);
    assert_eq!(alice_number.trim().len(), 60 + 11, "{alice_number}");
    // Alice's history shows the read receipt once her client has heard it.
    let (ok, out) = cli(&url, &alice, &["listen", "--until-caught-up"]).await;
    assert!(ok && out.contains("is Read"), "{out}");
    let (_, out) = cli(&url, &alice, &["history", "bob"]).await;
    assert!(out.contains("me: hello from the CLI (Read)"), "{out}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

fn postgres_url() -> String {
    std::env::var("E2EE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_devices_on_two_nodes_over_postgresql_and_redis_chat_and_catch_up() {
    use rand_core::RngCore;
    let dir = temp_dir("nodes");
    let run = format!("{:08x}", rand_core::OsRng.next_u32());
    let (ks_schema, relay_schema, prefix) = (
        format!("ks_client_{run}"),
        format!("relay_client_{run}"),
        format!("e2ee-client-{run}"),
    );
    let admin = sqlx::PgPool::connect(&postgres_url())
        .await
        .expect("PostgreSQL must be reachable (E2EE_TEST_DATABASE_URL)");
    sqlx::query(&format!("CREATE SCHEMA {ks_schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let sep = if postgres_url().contains('?') {
        '&'
    } else {
        '?'
    };
    let ticket_key = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        [run.len() as u8; 32],
    );
    let flags = vec![
        "--keyserver-database-url".to_owned(),
        format!("{}{sep}options=-csearch_path%3D{ks_schema}", postgres_url()),
        "--keyserver-ticket-key".to_owned(),
        ticket_key,
        "--relay-database-url".to_owned(),
        postgres_url(),
        "--relay-database-schema".to_owned(),
        relay_schema.clone(),
        "--relay-redis-url".to_owned(),
        common::redis_url(),
        "--relay-redis-prefix".to_owned(),
        prefix.clone(),
    ];
    let (addr_a, addr_b) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let node_a = start_server_with(&dir.join("a"), &addr_a, &flags).await;
    let node_b = start_server_with(&dir.join("b"), &addr_b, &flags).await;
    let (url_a, url_b) = (format!("http://{addr_a}"), format!("http://{addr_b}"));

    let (alice, bob) = online_pair_on(&dir, &url_a, &url_b).await;
    let id = alice.send("bob", b"across nodes").await.unwrap();
    let got = expect_message(&bob).await;
    assert_eq!((got.id, got.body.as_slice()), (id, &b"across nodes"[..]));
    expect_status(&alice, id, MessageStatus::Delivered).await;

    // Bob goes offline; what Alice sends through node A waits in the shared mailbox and
    // reaches Bob when he comes back on node A this time.
    bob.stop().await;
    drop(bob);
    let sent = send_numbered(&alice, "bob", "while away ", 10).await;
    expect_statuses(&alice, &sent, MessageStatus::Sent).await;
    let bob = Client::open(config(&dir, "bob", &url_a)).unwrap();
    bob.start();
    let received = receive_ids(&bob, sent.len()).await;
    assert_eq!(received, sent);
    let reply = bob.send("alice", b"back").await.unwrap();
    assert_eq!(expect_message(&alice).await.id, reply);

    // Alice links a laptop through node B while her phone is on node A: one user's devices
    // on two nodes, both reached by one send.
    let laptop = link(&alice, config(&dir, "alice-laptop", &url_b)).await;
    assert_eq!(bob.devices("alice").await.unwrap(), vec![1, 2]);
    let both = bob.send("alice", b"to both nodes").await.unwrap();
    assert_eq!(expect_message(&alice).await.id, both);
    assert_eq!(expect_message(&laptop).await.id, both);
    // The phone's message reaches Bob and, as a transcript, the laptop on the other node.
    let from_phone = alice.send("bob", b"from node A").await.unwrap();
    assert_eq!(expect_message(&bob).await.id, from_phone);
    assert_eq!(expect_message(&laptop).await.id, from_phone);

    // A group across the nodes: alice's phone creates it on A; bob and alice's laptop, on
    // B, are welcomed; bob's message reaches both of alice's devices.
    let group = alice.create_group("two nodes", &["bob"]).await.unwrap();
    assert_eq!(expect_group(&bob, 1).await.id, group);
    assert_eq!(expect_group(&laptop, 1).await.id, group);
    let in_group = bob
        .send_group(&group, b"across nodes, to a group")
        .await
        .unwrap();
    assert_eq!(expect_message(&alice).await.id, in_group);
    assert_eq!(expect_message(&laptop).await.id, in_group);

    for client in [&alice, &bob, &laptop] {
        client.stop().await;
    }
    drop((node_a, node_b));
    for schema in [&ks_schema, &relay_schema] {
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&admin)
            .await;
    }
    admin.close().await;
    common::delete_redis_keys(&prefix).await;
    let _ = std::fs::remove_dir_all(&dir);
}

const DRAIN_CHILD: &str = "E2EE_DRAIN_CHILD";

/// The notification extension: a second process draining Bob's store, printing
/// `held` or `got <id> <id> ...`.
async fn drain_in_child(dir: &Path, url: &str) -> String {
    let out = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "a_notification_process_drains_the_store_only_while_the_app_does_not_hold_it",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DRAIN_CHILD, format!("{}|{url}", dir.display()))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    stdout
        .lines()
        .find_map(|l| l.split_once("DRAINED ").map(|(_, result)| result))
        .unwrap_or_else(|| {
            panic!(
                "the child printed no result: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_process_drains_the_store_only_while_the_app_does_not_hold_it() {
    if let Ok(spec) = std::env::var(DRAIN_CHILD) {
        let (dir, url) = spec.split_once('|').unwrap();
        let result =
            Client::drain(config(Path::new(dir), "bob", url), Duration::from_secs(10)).await;
        match result {
            Err(e2ee_client::ClientError::LeaseHeld) => println!("DRAINED held"),
            Ok(messages) => {
                let ids: Vec<String> = messages.iter().map(|m| m.id.to_string()).collect();
                println!("DRAINED got {}", ids.join(" "));
            }
            Err(e) => println!("DRAINED error {e}"),
        }
        return;
    }
    let dir = temp_dir("drain");
    let (server, url) = fresh_server(&dir, &[]).await;
    let (alice, bob) = online_pair(&dir, &url).await;
    let first = alice.send("bob", b"while the app runs").await.unwrap();
    assert_eq!(expect_message(&bob).await.id, first);

    // The app is connected and holds the lease: the extension leaves the store alone.
    assert_eq!(drain_in_child(&dir, &url).await, "held");

    // The app is suspended (it stops and gives the lease back); a push wakes the extension,
    // which receives and commits what waits.
    bob.stop().await;
    drop(bob);
    let sent = send_numbered(&alice, "bob", "while suspended ", 5).await;
    expect_statuses(&alice, &sent, MessageStatus::Sent).await;
    let ids: Vec<String> = sent.iter().map(u64::to_string).collect();
    assert_eq!(
        drain_in_child(&dir, &url).await,
        format!("got {}", ids.join(" "))
    );

    // The app comes back: what the extension committed is in its history, nothing is shown
    // again, and the conversation goes on.
    let bob = Client::open(config(&dir, "bob", &url)).unwrap();
    bob.start();
    let last = alice.send("bob", b"after").await.unwrap();
    let got = expect_message(&bob).await;
    assert_eq!(got.id, last, "only the new message is shown");
    let history: Vec<u64> = bob
        .messages("alice", None, 50)
        .unwrap()
        .messages
        .iter()
        .map(|m| m.id)
        .collect();
    let mut expected = vec![first];
    expected.extend(&sent);
    expected.push(last);
    assert_eq!(history, expected);
    expect_statuses(&alice, &sent, MessageStatus::Delivered).await;
    alice.stop().await;
    bob.stop().await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wedged_outbox_says_why_and_keeps_retrying_and_typing_reaches_online_users() {
    let dir = temp_dir("wedged");
    // Mailboxes of three envelopes: the fourth message to an offline user cannot be stored.
    let (server, url) =
        fresh_server(&dir, &["--relay-max-mailbox".to_owned(), "3".to_owned()]).await;
    let (alice, bob) = online_pair(&dir, &url).await;

    // Typing is online-only: it reaches Bob while he is connected.
    alice.typing("bob", true).await.unwrap();
    let typing = expect(&bob, "typing", |e| match e {
        Event::Typing { user, started } => Some((user.clone(), *started)),
        _ => None,
    })
    .await;
    assert_eq!(typing, ("alice".to_owned(), true));

    bob.stop().await;
    drop(bob);
    let sent = send_numbered(&alice, "bob", "m", 5).await;
    let reason = expect(&alice, "outbox wedged", |e| match e {
        Event::OutboxWedged { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(reason.contains("full"), "{reason}");
    assert_eq!(alice.outbox_len().unwrap(), 2, "three stored, two waiting");
    // A wedged outbox is not a dead one: once Bob drains his mailbox, the rest goes through.
    let bob = Client::open(config(&dir, "bob", &url)).unwrap();
    bob.start();
    let received = receive_ids(&bob, sent.len()).await;
    assert_eq!(received, sent, "in order, each once");
    expect_statuses(&alice, &sent, MessageStatus::Delivered).await;
    assert_eq!(alice.outbox_len().unwrap(), 0);
    alice.stop().await;
    bob.stop().await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_device_gets_the_account_contacts_transcripts_and_replies() {
    let dir = temp_dir("link");
    let (server, url) = fresh_server(&dir, &[]).await;
    let (alice, bob) = online_pair(&dir, &url).await;
    let hello = alice.send("bob", b"hello bob").await.unwrap();
    assert_eq!(expect_message(&bob).await.id, hello);

    // Alice's laptop shows a code; her phone (the primary) links it.
    let request = e2ee_client::LinkRequest::new(config(&dir, "alice-laptop", &url)).unwrap();
    let code = request.code();
    assert!(code.starts_with("e2ee-link:"), "{code}");
    let laptop = tokio::spawn(request.complete(Duration::from_secs(30)));
    let linked = alice
        .link_device(&code, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(linked.to_string(), "alice.2");
    let laptop = laptop.await.unwrap().unwrap();
    assert_eq!(laptop.address().to_string(), "alice.2");
    // A code is good once: the channel's slots are taken.
    assert!(
        alice
            .link_device(&code, Duration::from_secs(1))
            .await
            .is_err()
    );
    laptop.start();
    expect_online(&laptop).await;
    // The laptop knows Bob already (the primary handed over the contacts): same number.
    assert_eq!(
        laptop.safety_number("bob").await.unwrap().displayable,
        alice.safety_number("bob").await.unwrap().displayable
    );

    // What the phone sends reaches the laptop as a sent transcript.
    let from_phone = alice.send("bob", b"sent from the phone").await.unwrap();
    assert_eq!(expect_message(&bob).await.id, from_phone);
    let transcript = expect_message(&laptop).await;
    assert!(transcript.outgoing);
    assert_eq!(
        (transcript.id, transcript.conversation.user().unwrap()),
        (from_phone, "bob")
    );
    // The laptop writes to Bob; Bob learns the new device from it and verifies it against
    // Alice's new list (device added); the phone gets the transcript.
    let from_laptop = laptop.send("bob", b"sent from the laptop").await.unwrap();
    let got = expect_message(&bob).await;
    assert_eq!(
        (got.id, got.author.to_string()),
        (from_laptop, "alice.2".to_owned())
    );
    let transcript = expect_message(&alice).await;
    assert!(transcript.outgoing && transcript.id == from_laptop);
    // Bob's reply reaches both of Alice's devices.
    let reply = bob.send("alice", b"hi to both").await.unwrap();
    assert_eq!(expect_message(&alice).await.id, reply);
    assert_eq!(expect_message(&laptop).await.id, reply);
    // Read on the phone: the laptop marks it read too, and Bob sees it read.
    alice.mark_read("bob", &[reply]).await.unwrap();
    let synced = expect(&laptop, "read sync", |e| match e {
        Event::StatusChanged(m) if m.id == reply => Some(m.status),
        _ => None,
    })
    .await;
    assert_eq!(synced, MessageStatus::ReadHere);
    expect_status(&bob, reply, MessageStatus::Read).await;

    // The laptop is lost: the phone removes it. Its connection is closed and it may not come
    // back; the phone's own list no longer names it.
    alice.remove_device(2).await.unwrap();
    let removed = expect(&alice, "devices changed", |e| match e {
        Event::DevicesChanged { user, removed, .. } if user == "alice" => Some(removed.clone()),
        _ => None,
    })
    .await;
    assert_eq!(removed, vec![2]);
    expect(&laptop, "removed", |e| {
        matches!(e, Event::Connection(ConnectionState::Removed)).then_some(())
    })
    .await;
    assert!(matches!(
        alice.remove_device(1).await,
        Err(e2ee_client::ClientError::Device(
            e2ee_client::Error::Refused(_)
        ))
    ));
    let after = alice.send("bob", b"the laptop is gone").await.unwrap();
    assert_eq!(expect_message(&bob).await.id, after);
    for client in [&alice, &bob, &laptop] {
        client.stop().await;
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_links_a_second_device() {
    use tokio::io::AsyncBufReadExt;
    let dir = temp_dir("cli-link");
    let (server, url) = fresh_server(&dir, &[]).await;
    let (phone, laptop) = (dir.join("phone.db"), dir.join("laptop.db"));
    assert!(cli(&url, &phone, &["register", "alice"]).await.0);
    let mut request = tokio::process::Command::new(env!("CARGO_BIN_EXE_e2ee"))
        .args(["client", "--server", &url, "--store"])
        .arg(&laptop)
        .arg("link-request")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(request.stdout.take().unwrap()).lines();
    let code = tokio::time::timeout(EVENT_WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("e2ee-link:") {
                return line;
            }
        }
        panic!("no code printed")
    })
    .await
    .unwrap();
    let (ok, out) = cli(&url, &phone, &["link", &code]).await;
    assert!(ok && out.contains("linked alice.2"), "{out}");
    let done = tokio::time::timeout(EVENT_WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap_or_default();
    assert_eq!(done, "linked as alice.2");
    assert!(request.wait().await.unwrap().success());
    let (ok, out) = cli(&url, &laptop, &["devices", "alice"]).await;
    assert!(ok && out.contains("alice.1\nalice.2"), "{out}");
    let (ok, out) = cli(&url, &phone, &["remove-device", "2"]).await;
    assert!(ok && out.contains("removed device 2"), "{out}");
    let (ok, out) = cli(&url, &phone, &["devices", "alice"]).await;
    assert!(ok && out.trim() == "alice.1", "{out}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_tops_its_prekeys_up_when_others_used_them() {
    let dir = temp_dir("prekeys");
    let limits: Vec<String> = [
        "--keyserver-bundle-burst",
        "1000",
        "--keyserver-one-time-burst",
        "1000",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (server, url) = fresh_server(&dir, &limits).await;
    let bob = Client::register(config(&dir, "bob", &url), "bob")
        .await
        .unwrap();
    drop(bob);
    let (mallory, _) = common::register_two_devices(&server.addr, "mallory").await;
    let fetch = || async {
        let (status, body) = common::http_json(
            &server.addr,
            "GET",
            "/v1/bundles/bob/1",
            Some(&mallory),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        !body["one_time_prekey"].is_null()
    };
    // Every one-time key Bob uploaded at registration is used up by others' first contacts.
    let mut used = 0;
    while fetch().await {
        used += 1;
        assert!(
            used <= e2ee_client::MAX_PREKEYS_PER_UPLOAD,
            "more keys than uploaded"
        );
    }
    assert_eq!(used, e2ee_client::MAX_PREKEYS_PER_UPLOAD);
    // Bob's app comes online: it sees the count under PREKEY_LOW_WATER and uploads more.
    let bob = Client::open(config(&dir, "bob", &url)).unwrap();
    bob.start();
    expect_online(&bob).await;
    let refilled = tokio::time::timeout(EVENT_WAIT, async {
        while !fetch().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(refilled.is_ok(), "no one-time keys after coming online");
    bob.stop().await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
