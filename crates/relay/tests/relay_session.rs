//! The session logic driven over in-memory channels instead of a socket (it is written over
//! any `Sink`/`Stream` of WebSocket messages).

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

use std::{convert::Infallible, time::Duration};

use axum::extract::ws::Message;
use common::*;
use e2ee_relay::{
    Relay, SessionEnd, run_session,
    wire::{ClientFrame, Codec, DeviceAddress, SendStatus, ServerFrame},
};
use futures_util::{sink, stream};
use tokio::sync::mpsc;

struct Channels {
    to_session: mpsc::Sender<Message>,
    from_session: mpsc::Receiver<Message>,
    task: tokio::task::JoinHandle<SessionEnd>,
}

fn spawn_session(relay: std::sync::Arc<Relay>, device: DeviceAddress) -> Channels {
    let (to_session, rx) = mpsc::channel::<Message>(16);
    let (tx, from_session) = mpsc::channel::<Message>(16);
    let out = Box::pin(sink::unfold(tx, |tx, msg: Message| async move {
        tx.send(msg).await.map_err(|_| "closed")?;
        Ok::<_, &'static str>(tx)
    }));
    let input = Box::pin(stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|m| (Ok::<_, Infallible>(m), rx))
    }));
    let task = tokio::spawn(run_session(relay, device, now_secs() + 3600, out, input));
    Channels {
        to_session,
        from_session,
        task,
    }
}

async fn next_frame(c: &mut Channels) -> ServerFrame {
    let msg = tokio::time::timeout(Duration::from_secs(10), c.from_session.recv())
        .await
        .unwrap()
        .unwrap();
    match msg {
        Message::Binary(b) => ServerFrame::from_bytes(&b).unwrap(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn session_over_channels_sends_delivers_and_ends_when_the_client_goes() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = TempDir::new();
        let key = signing_key();
        let relay = Relay::start(&config(&key, &dir)).await.unwrap();
        let mut alice = spawn_session(relay.clone(), addr("alice", 1));
        let mut bob = spawn_session(relay.clone(), addr("bob", 1));
        assert_eq!(
            next_frame(&mut alice).await,
            ServerFrame::QueueDrained { count: 0 }
        );
        assert_eq!(
            next_frame(&mut bob).await,
            ServerFrame::QueueDrained { count: 0 }
        );

        let send = ClientFrame::Send(vec![env(3, &[("bob", 1)], b"over channels")]);
        alice
            .to_session
            .send(Message::Binary(send.to_bytes().into()))
            .await
            .unwrap();
        assert_eq!(
            next_frame(&mut alice).await,
            ServerFrame::SendResult(vec![(3, SendStatus::Stored)])
        );
        match next_frame(&mut bob).await {
            ServerFrame::Deliver(d) => assert_eq!(&d.payload[..], b"over channels"),
            other => panic!("{other:?}"),
        }
        // Garbage: an ERROR frame, a close frame, and the session ends as a protocol error.
        bob.to_session
            .send(Message::Binary(vec![1u8, 0x7f].into()))
            .await
            .unwrap();
        assert!(matches!(
            next_frame(&mut bob).await,
            ServerFrame::Error { .. }
        ));
        assert!(matches!(
            bob.from_session.recv().await,
            Some(Message::Close(Some(_)))
        ));
        assert_eq!(bob.task.await.unwrap(), SessionEnd::ProtocolError);
        // The client going away ends the session cleanly.
        drop(alice.to_session);
        assert_eq!(alice.task.await.unwrap(), SessionEnd::ClientGone);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn writes_in_flight_are_bounded_and_answered_in_order() {
    use e2ee_relay::limits::MAX_PIPELINED_WRITES;
    use sqlx::{Connection as _, Executor as _};

    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = TempDir::new();
        let key = signing_key();
        let cfg = config(&key, &dir);
        let relay = Relay::start(&cfg).await.unwrap();
        let mut alice = spawn_session(relay.clone(), addr("alice", 1));
        assert_eq!(
            next_frame(&mut alice).await,
            ServerFrame::QueueDrained { count: 0 }
        );

        // Another connection holds SQLite's write lock, so no group commit can finish.
        let mut blocker = sqlx::SqliteConnection::connect(&cfg.database_url())
            .await
            .unwrap();
        blocker.execute("BEGIN IMMEDIATE").await.unwrap();

        // Offer far more SEND frames than the session may have in flight. It takes
        // MAX_PIPELINED_WRITES into the writer, then stops reading: the test channel (16
        // frames) fills up and refuses the rest.
        let offered = 4 * MAX_PIPELINED_WRITES + 64;
        let mut accepted = 0;
        for id in 0..offered as u64 {
            let send = ClientFrame::Send(vec![env(id, &[("bob", 1)], b"queued")]);
            let mut msg = Message::Binary(send.to_bytes().into());
            let mut taken = false;
            for _ in 0..20 {
                match alice.to_session.try_send(msg) {
                    Ok(()) => {
                        taken = true;
                        break;
                    }
                    Err(mpsc::error::TrySendError::Full(m)) => {
                        msg = m;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            if !taken {
                break;
            }
            accepted += 1;
        }
        // Pipelined writes + the channel's 16 + at most one frame being handed over.
        assert!(accepted >= MAX_PIPELINED_WRITES, "accepted {accepted}");
        assert!(accepted <= MAX_PIPELINED_WRITES + 17, "accepted {accepted}");
        // Nothing was answered while the commit could not happen.
        assert!(alice.from_session.try_recv().is_err());

        blocker.execute("ROLLBACK").await.unwrap();
        for id in 0..accepted as u64 {
            assert_eq!(
                next_frame(&mut alice).await,
                ServerFrame::SendResult(vec![(id, SendStatus::Stored)])
            );
        }
        assert_eq!(
            relay.mailbox_len(&addr("bob", 1)).await.unwrap(),
            accepted as u64
        );
        drop(alice.to_session);
        assert_eq!(alice.task.await.unwrap(), SessionEnd::ClientGone);
    })
    .await
    .expect("test timed out");
}
