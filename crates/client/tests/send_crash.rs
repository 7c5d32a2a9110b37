//! Real `kill -9` while a device sends: a child process commits messages to its outbox
//! and is killed at random moments, 10 times. Every message it reported committed is in the
//! outbox; every outbox entry, delivered (twice, as a retry would) in order, decrypts once at
//! the receiver with the right plaintext; the session still works both ways.

#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
};

mod common;

use common::{body, key, kill_9, paired_devices, spawn_child};
use e2ee_client::Device;
use e2ee_core::DeviceAddress;
use rand_core::{OsRng, RngCore};

const CHILD_ENV: &str = "E2EE_SEND_CRASH_CHILD";
const TEST: &str = "every_committed_send_is_in_the_outbox_and_decrypts_once_across_kill_9";
const KILLS: usize = 10;

fn plaintext(i: usize) -> Vec<u8> {
    format!("message {i}").into_bytes()
}

/// The sender: message `i` where `i` is the number of messages already in its outbox (none
/// is ever acknowledged here), printing `i msg_id` after each commit, until killed.
fn run_child(dir: &Path) {
    let mut alice = Device::open(&dir.join("alice.db"), &key(1)).unwrap();
    let mut out = std::io::stdout().lock();
    let mut i = alice.outbox().unwrap().len();
    loop {
        let sent = alice.send_message("bob", &plaintext(i)).unwrap();
        writeln!(out, "{i} {}", sent.id).unwrap();
        out.flush().unwrap();
        i += 1;
    }
}

#[test]
fn every_committed_send_is_in_the_outbox_and_decrypts_once_across_kill_9() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        run_child(Path::new(&dir));
        return;
    }
    let dir: PathBuf = std::env::temp_dir().join(format!("e2ee-send-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let alice_address = DeviceAddress::new("alice", 1).unwrap();
    let bob_address = DeviceAddress::new("bob", 1).unwrap();
    paired_devices(&dir);

    // Message index -> msg_id, as the killed processes reported them.
    let mut reported: HashMap<usize, u64> = HashMap::new();
    for _ in 0..KILLS {
        let (child, mut lines) = spawn_child(TEST, CHILD_ENV, &dir);
        let wanted = 1 + (OsRng.next_u32() as usize % 40);
        let mut seen = 0;
        while seen < wanted {
            let Some(line) = lines.next() else { break };
            let line = line.unwrap();
            let mut words = line.split_whitespace();
            let (Some(Ok(i)), Some(Ok(id))) = (
                words.next().map(str::parse::<usize>),
                words.next().map(str::parse::<u64>),
            ) else {
                continue;
            };
            assert!(reported.insert(i, id).is_none(), "message {i} sent twice");
            seen += 1;
        }
        kill_9(child);
    }

    let mut alice = Device::open(&dir.join("alice.db"), &key(1)).unwrap();
    let outbox = alice.outbox().unwrap();
    for (i, id) in &reported {
        assert_eq!(
            outbox[*i].msg_id, *id,
            "reported message {i} is not in the outbox"
        );
    }
    let mut bob = Device::open(&dir.join("bob.db"), &key(2)).unwrap();
    for (i, entry) in outbox.iter().enumerate() {
        assert_eq!(entry.seq, i as u64);
        let (to, ciphertext) = &entry.envelopes[0];
        assert_eq!(*to, bob_address);
        let got = bob
            .receive(&alice_address, entry.msg_id, ciphertext)
            .unwrap();
        assert_eq!(body(got), plaintext(i), "entry {i}");
        // A retry after a lost ack: the receiver already has it.
        assert_eq!(
            bob.receive(&alice_address, entry.msg_id, ciphertext)
                .unwrap(),
            None
        );
        assert_eq!(
            alice.acknowledged(entry.msg_id).unwrap().map(|m| m.body),
            Some(plaintext(i))
        );
    }
    assert!(alice.outbox().unwrap().is_empty());
    let reply = bob.send_message("alice", b"all of them").unwrap();
    let got = alice
        .receive(&bob_address, reply.id, &reply.entry.envelopes[0].1)
        .unwrap();
    assert_eq!(body(got), b"all of them");
    let _ = std::fs::remove_dir_all(&dir);
}
