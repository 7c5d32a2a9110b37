//! Whole stack, groups: the real all-in-one server (a child process on loopback) and real
//! clients. Alice creates a group with Bob and Carol; each sees it (an event) and the same
//! members; messages go both ways and their status waits for every member device; Bob's
//! linked laptop is welcomed by his phone and gets the group's messages (the phone's as a
//! sent transcript);
//! Carol, removed, learns it and receives nothing sent after; Carol offline while a change
//! and a message happen catches up on her return.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use e2ee_client::{Client, ConversationId, GroupEdit, GroupInfo, MessageStatus};

mod common;

use common::clients::*;

fn member_names(info: &GroupInfo) -> Vec<&str> {
    info.members.iter().map(|m| m.user.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_chats_changes_and_catches_up_through_the_real_server() {
    let dir = temp_dir("groups");
    let (_server, url) = fresh_server(&dir, &[]).await;
    let (alice, bob) = online_pair(&dir, &url).await;
    let carol = Client::register(config(&dir, "carol", &url), "carol")
        .await
        .unwrap();
    carol.start();
    expect_online(&carol).await;

    let id = alice
        .create_group("climbing", &["bob", "carol"])
        .await
        .unwrap();
    for client in [&bob, &carol] {
        let info = expect_group(client, 1).await;
        assert_eq!(info.name, "climbing");
        assert_eq!(member_names(&info), vec!["alice", "bob", "carol"]);
        assert_eq!(info.id, id);
    }

    // One message, every member device; delivered once both said so.
    let hello = alice.send_group(&id, b"hello all").await.unwrap();
    for client in [&bob, &carol] {
        let got = expect_message(client).await;
        assert_eq!((got.id, got.body.as_slice()), (hello, &b"hello all"[..]));
        assert_eq!(got.conversation, ConversationId::Group(id.clone()));
    }
    expect_status(&alice, hello, MessageStatus::Delivered).await;
    let reply = bob.send_group(&id, b"hi").await.unwrap();
    assert_eq!(expect_message(&alice).await.id, reply);
    assert_eq!(expect_message(&carol).await.id, reply);

    // Bob links a laptop: his phone welcomes it to the group, and the others send to it
    // once they have fetched Bob's new device list.
    let laptop = link(&bob, config(&dir, "bob-laptop", &url)).await;
    assert_eq!(
        member_names(&expect_group(&laptop, 1).await),
        vec!["alice", "bob", "carol"]
    );
    assert_eq!(alice.devices("bob").await.unwrap(), vec![1, 2]);
    let to_both = alice.send_group(&id, b"to all devices").await.unwrap();
    assert_eq!(expect_message(&bob).await.id, to_both);
    assert_eq!(expect_message(&laptop).await.id, to_both);
    assert_eq!(expect_message(&carol).await.id, to_both);
    // The phone's message reaches the others and, as a sent transcript, the laptop.
    let from_phone = bob.send_group(&id, b"from the phone").await.unwrap();
    assert_eq!(expect_message(&alice).await.id, from_phone);
    let transcript = expect_message(&laptop).await;
    assert_eq!(transcript.id, from_phone);
    assert!(transcript.outgoing);
    assert_eq!(expect_message(&carol).await.id, from_phone);

    // Carol is removed: she hears of it and gets nothing sent after.
    let info = alice
        .change_group(&id, GroupEdit::Remove("carol".into()))
        .await
        .unwrap();
    assert_eq!(member_names(&info), vec!["alice", "bob"]);
    let seen = expect_group(&carol, 2).await;
    assert_eq!(member_names(&seen), vec!["alice", "bob"]);
    assert_eq!(
        member_names(&expect_group(&bob, 2).await),
        vec!["alice", "bob"]
    );
    let after = alice.send_group(&id, b"after carol").await.unwrap();
    assert_eq!(expect_message(&bob).await.id, after);
    assert_eq!(expect_message(&laptop).await.id, after);
    assert!(matches!(
        carol.send_group(&id, b"hello?").await,
        Err(e2ee_client::ClientError::Device(
            e2ee_client::Error::NotPermitted { .. }
        ))
    ));

    // Bob offline while alice renames and writes: both reach him when he is back.
    bob.stop().await;
    drop(bob);
    alice
        .change_group(&id, GroupEdit::Rename("crag".into()))
        .await
        .unwrap();
    let while_away = alice.send_group(&id, b"while you were out").await.unwrap();
    let bob = Client::open(config(&dir, "bob", &url)).unwrap();
    bob.start();
    assert_eq!(expect_group(&bob, 3).await.name, "crag");
    assert_eq!(expect_message(&bob).await.id, while_away);
    assert_eq!(bob.group(&id).unwrap().name, "crag");
    let page = bob.group_messages(&id, None, 10).unwrap();
    assert!(page.messages.iter().any(|m| m.id == while_away));

    // Nothing sent after her removal is in Carol's log.
    let carols = carol.group_messages(&id, None, 50).unwrap();
    assert!(
        carols
            .messages
            .iter()
            .all(|m| m.id != after && m.id != while_away)
    );
    assert!(carols.messages.iter().any(|m| m.id == from_phone));

    for client in [&alice, &bob, &carol, &laptop] {
        client.stop().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_users_create_a_group_chat_in_it_and_remove_a_member() {
    let dir = temp_dir("groups-cli");
    let (_server, url) = fresh_server(&dir, &[]).await;
    let store = |name: &str| dir.join(format!("{name}.db"));
    for name in ["alice", "bob", "carol"] {
        let (ok, out) = cli(&url, &store(name), &["register", name]).await;
        assert!(ok, "{out}");
    }
    let (ok, out) = cli(
        &url,
        &store("alice"),
        &["group", "create", "hikers", "bob", "carol"],
    )
    .await;
    assert!(ok, "{out}");
    assert!(
        out.contains("\"hikers\" version 1: alice (admin), bob, carol"),
        "{out}"
    );
    let id = out.split_whitespace().next().unwrap().to_owned();
    let (ok, out) = cli(
        &url,
        &store("alice"),
        &["group", "send", &id, "summit at 9"],
    )
    .await;
    assert!(ok, "{out}");
    for name in ["bob", "carol"] {
        let (ok, out) = cli(&url, &store(name), &["listen", "--count", "1"]).await;
        assert!(ok && out.contains("[alice.1] summit at 9"), "{name}: {out}");
        let (_, out) = cli(&url, &store(name), &["group", "list"]).await;
        assert!(out.contains(&id) && out.contains("hikers"), "{name}: {out}");
    }
    // A member may not remove anyone; an admin may.
    let (ok, out) = cli(&url, &store("bob"), &["group", "remove", &id, "carol"]).await;
    assert!(!ok && out.contains("group change refused"), "{out}");
    let (ok, out) = cli(&url, &store("alice"), &["group", "remove", &id, "carol"]).await;
    assert!(ok && out.contains("version 2: alice (admin), bob"), "{out}");
    let (ok, out) = cli(&url, &store("carol"), &["listen", "--until-caught-up"]).await;
    assert!(ok && out.contains("version 2 with 2 members"), "{out}");
    let (ok, out) = cli(&url, &store("carol"), &["group", "send", &id, "hello?"]).await;
    assert!(!ok && out.contains("not permitted"), "{out}");
    let (_, out) = cli(&url, &store("bob"), &["group", "history", &id]).await;
    assert!(out.contains("alice.1: summit at 9"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
