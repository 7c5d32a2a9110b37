//! The encrypted store against real files: what it keeps, what it refuses, what it never
//! does (recreate itself, show a lookup key or a value in the file, open under another key).

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{Dir, key};
use e2ee_client::store::{MAX_VALUE_LEN, Space, StoreError, Vault};

/// The value under `lookup`, as owned bytes.
fn stored(vault: &Vault, space: Space, lookup: &[u8]) -> Option<Vec<u8>> {
    vault.get(space, lookup).unwrap().map(|v| v.to_vec())
}

#[test]
fn values_survive_reopening_and_stay_in_their_space() {
    let dir = Dir::new("store");
    let mut vault = Vault::create(&dir.file("device.db"), &key(1)).unwrap();
    vault.put(Space::SESSIONS, b"bob.1", b"record one").unwrap();
    vault.put(Space::SESSIONS, b"bob.1", b"record two").unwrap();
    vault.put(Space::GROUPS, b"bob.1", b"a group").unwrap();
    vault.put(Space::SESSIONS, b"empty", b"").unwrap();
    drop(vault);
    let mut vault = Vault::open(&dir.file("device.db"), &key(1)).unwrap();
    assert_eq!(
        stored(&vault, Space::SESSIONS, b"bob.1"),
        Some(b"record two".to_vec())
    );
    assert_eq!(
        stored(&vault, Space::GROUPS, b"bob.1"),
        Some(b"a group".to_vec())
    );
    assert_eq!(
        stored(&vault, Space::SESSIONS, b"empty"),
        Some(b"".to_vec())
    );
    assert_eq!(vault.get(Space::OUTBOX, b"bob.1").unwrap(), None);
    assert!(vault.delete(Space::SESSIONS, b"bob.1").unwrap());
    assert!(!vault.delete(Space::SESSIONS, b"bob.1").unwrap());
    assert_eq!(vault.get(Space::SESSIONS, b"bob.1").unwrap(), None);
}

#[test]
fn the_file_holds_no_lookup_key_and_no_value_in_the_clear() {
    let dir = Dir::new("store");
    let mut vault = Vault::create(&dir.file("device.db"), &key(1)).unwrap();
    vault
        .put(
            Space::SESSIONS,
            b"carol-lookup-name.7",
            b"very-secret-session-state",
        )
        .unwrap();
    drop(vault);
    let mut bytes = std::fs::read(dir.file("device.db")).unwrap();
    if let Ok(wal) = std::fs::read(dir.file("device.db").with_extension("db-wal")) {
        bytes.extend(wal);
    }
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(b"carol-lookup-name"));
    assert!(!contains(b"very-secret-session-state"));
}

#[test]
fn a_wrong_key_is_a_typed_error_never_garbage() {
    let dir = Dir::new("store");
    Vault::create(&dir.file("device.db"), &key(1))
        .unwrap()
        .put(Space::IDENTITY, b"me", b"identity")
        .unwrap();
    assert!(matches!(
        Vault::open(&dir.file("device.db"), &key(2)),
        Err(StoreError::WrongKey)
    ));
    // The right key still opens it: a failed open changed nothing.
    let vault = Vault::open(&dir.file("device.db"), &key(1)).unwrap();
    assert!(vault.get(Space::IDENTITY, b"me").unwrap().is_some());
}

#[test]
fn a_store_is_never_recreated() {
    let dir = Dir::new("store");
    assert!(matches!(
        Vault::open(&dir.file("device.db"), &key(1)),
        Err(StoreError::Missing(_))
    ));
    assert!(
        !dir.file("device.db").exists(),
        "open must not create a file"
    );
    let mut vault = Vault::create(&dir.file("device.db"), &key(1)).unwrap();
    vault.put(Space::SESSIONS, b"bob.1", b"kept").unwrap();
    drop(vault);
    assert!(matches!(
        Vault::create(&dir.file("device.db"), &key(1)),
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        Vault::create(&dir.file("device.db"), &key(2)),
        Err(StoreError::AlreadyExists(_))
    ));
    let vault = Vault::open(&dir.file("device.db"), &key(1)).unwrap();
    assert_eq!(
        stored(&vault, Space::SESSIONS, b"bob.1"),
        Some(b"kept".to_vec())
    );
}

#[test]
fn foreign_and_damaged_files_are_typed_errors() {
    let dir = Dir::new("store");
    // Not SQLite at all.
    std::fs::write(dir.file("device.db"), vec![0x5a; 8192]).unwrap();
    assert!(matches!(
        Vault::open(&dir.file("device.db"), &key(1)),
        Err(StoreError::NotAStore)
    ));
    // Another application's SQLite database.
    std::fs::remove_file(dir.file("device.db")).unwrap();
    let other = rusqlite::Connection::open(dir.file("device.db")).unwrap();
    other.execute_batch("CREATE TABLE t (x INTEGER);").unwrap();
    drop(other);
    assert!(matches!(
        Vault::open(&dir.file("device.db"), &key(1)),
        Err(StoreError::NotAStore)
    ));
    // Our store, a format from the future.
    std::fs::remove_file(dir.file("device.db")).unwrap();
    drop(Vault::create(&dir.file("device.db"), &key(1)).unwrap());
    let raw = rusqlite::Connection::open(dir.file("device.db")).unwrap();
    raw.execute(
        "UPDATE e2ee_meta SET value = x'02' WHERE name = 'format'",
        [],
    )
    .unwrap();
    assert!(matches!(
        Vault::open(&dir.file("device.db"), &key(1)),
        Err(StoreError::UnsupportedFormat(2))
    ));
    raw.execute("DELETE FROM e2ee_meta WHERE name = 'salt'", [])
        .unwrap();
    raw.execute(
        "UPDATE e2ee_meta SET value = x'01' WHERE name = 'format'",
        [],
    )
    .unwrap();
    assert!(matches!(
        Vault::open(&dir.file("device.db"), &key(1)),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn a_damaged_or_moved_value_does_not_open() {
    let dir = Dir::new("store");
    let mut vault = Vault::create(&dir.file("device.db"), &key(1)).unwrap();
    vault
        .put(Space::SESSIONS, b"bob.1", b"bob's record")
        .unwrap();
    vault
        .put(Space::SESSIONS, b"eve.1", b"eve's record")
        .unwrap();
    vault.put(Space::GROUPS, b"g", b"a group").unwrap();
    let raw = rusqlite::Connection::open(dir.file("device.db")).unwrap();
    // Copy Bob's sealed value over Eve's row, and over the group's (another space).
    let bob_sealed: Vec<u8> = raw
        .query_row(
            "SELECT sealed FROM e2ee_items WHERE space = 3 ORDER BY blinded LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    raw.execute("UPDATE e2ee_items SET sealed = ?1", [&bob_sealed])
        .unwrap();
    let opened: Vec<_> = [
        (Space::SESSIONS, &b"bob.1"[..]),
        (Space::SESSIONS, b"eve.1"),
        (Space::GROUPS, b"g"),
    ]
    .into_iter()
    .map(|(space, lookup)| vault.get(space, lookup))
    .collect();
    // Exactly the row the value was sealed for opens; the others are corrupt, not swapped.
    let ok = opened.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{opened:?}");
    assert!(
        opened
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, StoreError::Corrupt(_)))
    );
    // A flipped byte.
    let mut flipped = bob_sealed.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    raw.execute("UPDATE e2ee_items SET sealed = ?1", [&flipped])
        .unwrap();
    assert!(matches!(
        vault.get(Space::SESSIONS, b"bob.1"),
        Err(StoreError::Corrupt(_))
    ));
    raw.execute("UPDATE e2ee_items SET sealed = x'00'", [])
        .unwrap();
    assert!(matches!(
        vault.get(Space::SESSIONS, b"bob.1"),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn a_transaction_commits_everything_or_nothing() {
    let dir = Dir::new("store");
    let mut vault = Vault::create(&dir.file("device.db"), &key(1)).unwrap();
    vault.put(Space::SESSIONS, b"bob.1", b"before").unwrap();
    let failed: Result<(), StoreError> = vault.transaction(|tx| {
        tx.put(Space::SESSIONS, b"bob.1", b"after")?;
        tx.put(Space::MESSAGES, b"m1", b"hello")?;
        assert_eq!(
            tx.get(Space::SESSIONS, b"bob.1")?.map(|v| v.to_vec()),
            Some(b"after".to_vec())
        );
        Err(StoreError::Corrupt("the caller gave up"))
    });
    assert!(failed.is_err());
    assert_eq!(
        stored(&vault, Space::SESSIONS, b"bob.1"),
        Some(b"before".to_vec())
    );
    assert_eq!(vault.get(Space::MESSAGES, b"m1").unwrap(), None);
    vault
        .transaction(|tx| -> Result<(), StoreError> {
            tx.put(Space::SESSIONS, b"bob.1", b"after")?;
            tx.put(Space::MESSAGES, b"m1", b"hello")?;
            assert!(tx.delete(Space::SESSIONS, b"nobody").ok() == Some(false));
            Ok(())
        })
        .unwrap();
    drop(vault);
    let vault = Vault::open(&dir.file("device.db"), &key(1)).unwrap();
    assert_eq!(
        stored(&vault, Space::SESSIONS, b"bob.1"),
        Some(b"after".to_vec())
    );
    assert_eq!(
        stored(&vault, Space::MESSAGES, b"m1"),
        Some(b"hello".to_vec())
    );
}

#[test]
fn a_value_over_the_limit_is_refused_and_nothing_is_written() {
    let dir = Dir::new("store");
    let mut vault = Vault::create(&dir.file("device.db"), &key(1)).unwrap();
    let big = vec![0u8; MAX_VALUE_LEN + 1];
    assert!(matches!(
        vault.put(Space::MESSAGES, b"big", &big),
        Err(StoreError::ValueTooLarge { len, max }) if len == MAX_VALUE_LEN + 1 && max == MAX_VALUE_LEN
    ));
    assert_eq!(vault.get(Space::MESSAGES, b"big").unwrap(), None);
    vault
        .put(Space::MESSAGES, b"at limit", &big[..MAX_VALUE_LEN])
        .unwrap();
    assert_eq!(
        vault
            .get(Space::MESSAGES, b"at limit")
            .unwrap()
            .unwrap()
            .len(),
        MAX_VALUE_LEN
    );
}

#[test]
fn two_connections_see_each_others_commits() {
    // An app and its notification extension open one file; a commit of one is seen by the
    // other (WAL), and writers wait for each other instead of failing at once.
    let dir = Dir::new("store");
    let mut app = Vault::create(&dir.file("device.db"), &key(1)).unwrap();
    let mut extension = Vault::open(&dir.file("device.db"), &key(1)).unwrap();
    extension.put(Space::PROCESSED, b"env-1", b"").unwrap();
    assert!(app.get(Space::PROCESSED, b"env-1").unwrap().is_some());
    app.put(Space::PROCESSED, b"env-2", b"").unwrap();
    assert!(extension.get(Space::PROCESSED, b"env-2").unwrap().is_some());
}
