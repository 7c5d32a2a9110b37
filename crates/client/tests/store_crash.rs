//! Real `kill -9` of a process writing the store, at random moments: after each kill every
//! transaction the writer reported committed is there, and no transaction is there in part.
//! (A process kill leaves the OS's buffers intact; `synchronous = FULL`, which covers power
//! loss, is not exercised here.) The writer is this test binary run again as a child
//! process (`E2EE_STORE_CRASH_CHILD`).

#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::{
    io::Write,
    path::{Path, PathBuf},
};

mod common;

use common::{kill_9, spawn_child};
use e2ee_client::store::{Space, StoreError, StoreKey, Vault};
use rand_core::{OsRng, RngCore};

const CHILD_ENV: &str = "E2EE_STORE_CRASH_CHILD";
const KILLS: usize = 12;

fn key() -> StoreKey {
    StoreKey::from_bytes([42; 32])
}

fn counter(vault: &Vault) -> Option<u64> {
    vault
        .get(Space::SESSIONS, b"counter")
        .unwrap()
        .map(|v| u64::from_be_bytes(v.as_slice().try_into().unwrap()))
}

/// The writer: each transaction advances the counter and logs one message for it; it prints
/// the counter after the commit returns, then goes on until killed.
fn run_child(path: &Path) {
    let mut vault = match Vault::open(path, &key()) {
        Ok(v) => v,
        Err(StoreError::Missing(_)) => Vault::create(path, &key()).unwrap(),
        Err(e) => panic!("{e}"),
    };
    let mut next = counter(&vault).map_or(0, |c| c + 1);
    let mut out = std::io::stdout().lock();
    loop {
        vault
            .transaction(|tx| -> Result<(), StoreError> {
                tx.put(Space::SESSIONS, b"counter", &next.to_be_bytes())?;
                tx.put(
                    Space::MESSAGES,
                    format!("m{next}").as_bytes(),
                    &vec![7u8; 1_000],
                )?;
                tx.delete(Space::OUTBOX, format!("o{next}").as_bytes())?;
                Ok(())
            })
            .unwrap();
        writeln!(out, "{next}").unwrap();
        out.flush().unwrap();
        next += 1;
    }
}

#[test]
fn committed_transactions_survive_kill_9_and_none_is_half_there() {
    if let Some(path) = std::env::var_os(CHILD_ENV) {
        run_child(Path::new(&path));
        return;
    }
    let dir = std::env::temp_dir().join(format!("e2ee-store-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join("device.db");
    for round in 0..KILLS {
        let (child, mut lines) = spawn_child(
            "committed_transactions_survive_kill_9_and_none_is_half_there",
            CHILD_ENV,
            &path,
        );
        // Let it commit a random number of transactions, then kill it mid-stream.
        let wanted = 1 + (OsRng.next_u32() % 60) as usize;
        let mut acknowledged = None;
        let mut seen = 0;
        while seen < wanted {
            let Some(line) = lines.next() else { break };
            let line = line.unwrap();
            // The test harness prints its own lines too; only numbers are commits.
            if let Ok(n) = line.trim().parse::<u64>() {
                acknowledged = Some(n);
                seen += 1;
            }
        }
        kill_9(child);
        let acknowledged = acknowledged.expect("the writer committed nothing");

        let vault = Vault::open(&path, &key()).unwrap();
        let last = counter(&vault).unwrap();
        assert!(
            last >= acknowledged,
            "round {round}: commit {acknowledged} was reported, the store has {last}"
        );
        for n in 0..=last {
            assert!(
                vault
                    .get(Space::MESSAGES, format!("m{n}").as_bytes())
                    .unwrap()
                    .is_some(),
                "round {round}: message {n} of a committed transaction is missing"
            );
        }
        assert!(
            vault
                .get(Space::MESSAGES, format!("m{}", last + 1).as_bytes())
                .unwrap()
                .is_none(),
            "round {round}: a message beyond the committed counter"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
