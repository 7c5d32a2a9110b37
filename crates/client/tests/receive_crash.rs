//! Real `kill -9` while a device receives: a child process receives 200 envelopes (a relay
//! redelivering everything unacked after each restart) and is killed at random moments.
//! After every kill and at the end: no message lost (each is in the store with its
//! plaintext), none reported new twice, and the session still works both ways.

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

const CHILD_ENV: &str = "E2EE_RECEIVE_CRASH_CHILD";
const TEST: &str = "no_message_is_lost_or_shown_twice_across_kill_9";
const MESSAGES: usize = 200;
const KILLS: usize = 10;

fn alice() -> DeviceAddress {
    DeviceAddress::new("alice", 1).unwrap()
}

fn plaintext(i: usize) -> Vec<u8> {
    format!("message {i}").into_bytes()
}

/// The ciphertexts, one per line in hex.
fn read_envelopes(path: &Path) -> Vec<Vec<u8>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| hex::decode(l).unwrap())
        .collect()
}

/// The receiver: every envelope from the start (as a relay redelivers what was not acked),
/// printing `i new` or `i again` after each commit.
fn run_child(dir: &Path) {
    let mut bob = Device::open(&dir.join("bob.db"), &key(2)).unwrap();
    let mut out = std::io::stdout().lock();
    for (i, ciphertext) in read_envelopes(&dir.join("envelopes")).iter().enumerate() {
        let got = bob.receive(&alice(), i as u64, ciphertext).unwrap();
        match got {
            Some(m) => {
                assert_eq!(body(Some(m)), plaintext(i));
                writeln!(out, "{i} new").unwrap();
            }
            None => writeln!(out, "{i} again").unwrap(),
        }
        out.flush().unwrap();
    }
    writeln!(out, "done").unwrap();
}

fn run_receiver(dir: &Path, lines: Option<usize>, new: &mut HashMap<usize, usize>) -> bool {
    let (child, mut reader) = spawn_child(TEST, CHILD_ENV, dir);
    let mut seen = 0;
    let mut done = false;
    while lines.is_none_or(|n| seen < n) {
        let Some(line) = reader.next() else { break };
        let line = line.unwrap();
        if line.trim() == "done" {
            done = true;
            break;
        }
        let mut words = line.split_whitespace();
        let (Some(i), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(i) = i.parse::<usize>() else { continue };
        if what == "new" {
            *new.entry(i).or_default() += 1;
        }
        seen += 1;
    }
    kill_9(child);
    done
}

#[test]
fn no_message_is_lost_or_shown_twice_across_kill_9() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        run_child(Path::new(&dir));
        return;
    }
    let dir: PathBuf =
        std::env::temp_dir().join(format!("e2ee-receive-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    {
        let (mut alice, _) = paired_devices(&dir);
        let mut file = String::new();
        for i in 0..MESSAGES {
            let sent = alice.send_message("bob", &plaintext(i)).unwrap();
            file.push_str(&hex::encode(&sent.entry.envelopes[0].1));
            file.push('\n');
        }
        std::fs::write(dir.join("envelopes"), file).unwrap();
    }

    let mut new = HashMap::new();
    for _ in 0..KILLS {
        let lines = 1 + (OsRng.next_u32() as usize % 80);
        run_receiver(&dir, Some(lines), &mut new);
    }
    assert!(
        run_receiver(&dir, None, &mut new),
        "the last run did not finish"
    );
    assert!(
        new.values().all(|&n| n == 1 || n == 0),
        "an envelope was reported new twice: {new:?}"
    );

    // Nothing lost: every message is in the store, including ones whose commit the killed
    // process never got to report.
    // process never got to report, in order, each once.
    let mut bob = Device::open(&dir.join("bob.db"), &key(2)).unwrap();
    let history = bob.messages("alice", None, MESSAGES + 1).unwrap();
    let bodies: Vec<Vec<u8>> = history.messages.into_iter().map(|m| m.body).collect();
    assert_eq!(bodies, (0..MESSAGES).map(plaintext).collect::<Vec<_>>());
    // And the session works both ways.
    let mut alice_device = Device::open(&dir.join("alice.db"), &key(1)).unwrap();
    let reply = bob.send_message("alice", b"got them all").unwrap();
    let bob_address = DeviceAddress::new("bob", 1).unwrap();
    let got = alice_device
        .receive(&bob_address, reply.id, &reply.entry.envelopes[0].1)
        .unwrap();
    assert_eq!(body(got), b"got them all");
    let _ = std::fs::remove_dir_all(&dir);
}
