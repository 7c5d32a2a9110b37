//! The SQLite group commit: one transaction on a dedicated connection, run on a blocking
//! thread, one cached single-row statement per row.
//!
//! SQLite is a library, so a statement costs microseconds, not a round trip; what is
//! expensive through an async driver is the hop to its worker thread for every statement and
//! every returned row. Running the whole commit as one blocking call keeps that to one hop
//! per commit, and single-row statements stay prepared across commits (multi-row `VALUES`
//! lists would be new SQL text for every batch size).
//!
//! The rules are those of the batched commit used for PostgreSQL (`batched_commit!`): acks
//! delete only the acking device's rows and release group payload references; presence is
//! upserted; sends are deduplicated on (sender, msg id) within the dedup window, checked
//! against the mailbox limit, given sequence numbers and stored, group ciphertext once.

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{Committed, MailboxCounts, NewEnvelope, StoreLimits, WriteBatch, from_db, to_db};
use crate::wire::{DeviceAddress, SendStatus};

/// Prepared statements kept per connection (every statement below, with room to spare).
const STATEMENT_CACHE: usize = 32;

/// The writer's own connection and the mailbox sizes it has counted.
#[derive(Debug)]
pub(super) struct CommitConnection {
    conn: Connection,
    pub(super) counts: MailboxCounts,
}

impl CommitConnection {
    /// Opens the (already migrated) database file for writing.
    pub(super) fn open(
        path: &Path,
        full_sync: bool,
        counts: MailboxCounts,
    ) -> Result<Self, rusqlite::Error> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(
            None,
            "synchronous",
            if full_sync { "FULL" } else { "NORMAL" },
        )?;
        conn.pragma_update(None, "cache_size", -65536)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Self { conn, counts })
    }

    /// Commits `batch` in one transaction; returns one `Vec<Committed>` per send. On error
    /// nothing is committed and the cached counts are dropped.
    pub(super) fn commit(
        &mut self,
        batch: &WriteBatch,
        limits: StoreLimits,
        next_seq: &AtomicU64,
    ) -> Result<Vec<Vec<Committed>>, rusqlite::Error> {
        let result = commit(&mut self.conn, &mut self.counts, batch, limits, next_seq);
        if result.is_err() {
            self.counts.clear();
        }
        result
    }
}

fn commit(
    conn: &mut Connection,
    counts: &mut MailboxCounts,
    batch: &WriteBatch,
    limits: StoreLimits,
    next_seq: &AtomicU64,
) -> Result<Vec<Vec<Committed>>, rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    delete_acked(&tx, counts, &batch.acks)?;
    {
        let mut seen = tx.prepare_cached(
            "INSERT INTO last_seen (user_id, device_id, seen_ms) VALUES (?1, ?2, ?3) \
             ON CONFLICT (user_id, device_id) DO UPDATE SET seen_ms = excluded.seen_ms",
        )?;
        for (a, ms) in &batch.seen {
            seen.execute(params![a.user_id(), a.device, to_db(*ms)])?;
        }
    }
    let results = store_sends(&tx, counts, batch, limits, next_seq)?;
    tx.prepare_cached(
        "INSERT INTO relay_meta (key, value) VALUES ('next_seq', ?1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([to_db(next_seq.load(Ordering::SeqCst))])?;
    tx.commit()?;
    Ok(results)
}

/// Deletes acknowledged rows of each acking device's own mailbox, then releases the group
/// payloads they referenced (deleting those nobody references any more).
fn delete_acked(
    tx: &Connection,
    counts: &mut MailboxCounts,
    acks: &[(DeviceAddress, Vec<u64>)],
) -> Result<(), rusqlite::Error> {
    let mut released: HashMap<i64, i64> = HashMap::new();
    let mut delete = tx.prepare_cached(
        "DELETE FROM mailbox WHERE seq = ?1 AND user_id = ?2 AND device_id = ?3 \
         RETURNING payload_id",
    )?;
    for (device, seqs) in acks {
        let mut gone = 0i64;
        for seq in seqs {
            let row: Option<Option<i64>> = delete
                .query_row(params![to_db(*seq), device.user_id(), device.device], |r| {
                    r.get(0)
                })
                .optional()?;
            if let Some(payload) = row {
                gone += 1;
                if let Some(id) = payload {
                    *released.entry(id).or_default() += 1;
                }
            }
        }
        counts.add(device, -gone);
    }
    let mut release = tx.prepare_cached("UPDATE payloads SET refs = refs - ?1 WHERE id = ?2")?;
    let mut drop_unused = tx.prepare_cached("DELETE FROM payloads WHERE id = ?1 AND refs <= 0")?;
    for (id, n) in released {
        release.execute(params![n, id])?;
        drop_unused.execute([id])?;
    }
    Ok(())
}

/// Deduplicates, applies the mailbox limit and stores every send of the batch.
fn store_sends(
    tx: &Connection,
    counts: &mut MailboxCounts,
    batch: &WriteBatch,
    limits: StoreLimits,
    next_seq: &AtomicU64,
) -> Result<Vec<Vec<Committed>>, rusqlite::Error> {
    let mut results = batch.outcomes_before_dedup();
    let mut claim = tx.prepare_cached(
        "INSERT INTO dedup (sender_user, sender_device, msg_id, expires_at) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (sender_user, sender_device, msg_id) DO UPDATE \
         SET expires_at = excluded.expires_at WHERE dedup.expires_at <= ?5",
    )?;
    let mut unclaim = tx.prepare_cached(
        "DELETE FROM dedup WHERE sender_user = ?1 AND sender_device = ?2 AND msg_id = ?3",
    )?;
    let mut count =
        tx.prepare_cached("SELECT COUNT(*) FROM mailbox WHERE user_id = ?1 AND device_id = ?2")?;
    let mut insert_payload = tx.prepare_cached(
        "INSERT INTO payloads (id, refs, expires_at, body) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut insert_row = tx.prepare_cached(
        "INSERT INTO mailbox (seq, user_id, device_id, sender_user, sender_device, msg_id, \
         flags, created_ms, expires_at, body, payload_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    let mut in_batch: HashSet<(&str, u32, u64)> = HashSet::new();
    for (si, envs) in batch.sends.iter().enumerate() {
        for (ei, e) in envs.iter().enumerate() {
            if !in_batch.insert((e.sender.user_id(), e.sender.device, e.msg_id)) {
                continue;
            }
            // A pair whose window has passed counts as new even before the expiry sweep.
            let fresh = claim.execute(params![
                e.sender.user_id(),
                e.sender.device,
                to_db(e.msg_id),
                to_db(e.now_ms.saturating_add(limits.dedup_ms)),
                to_db(e.now_ms),
            ])? == 1;
            if !fresh {
                continue;
            }
            for to in &e.recipients {
                if counts.needs_count(to) {
                    let n: i64 = count.query_row(params![to.user_id(), to.device], |r| r.get(0))?;
                    counts.set(to, from_db(n));
                }
            }
            let accepted = counts.admit(&e.recipients, limits.max_mailbox);
            let result = &mut results[si][ei];
            if accepted.is_empty() {
                // Refused everywhere: must not block its own retry as a duplicate.
                result.status = SendStatus::MailboxFull;
                unclaim.execute(params![
                    e.sender.user_id(),
                    e.sender.device,
                    to_db(e.msg_id)
                ])?;
                continue;
            }
            result.status = if accepted.len() == e.recipients.len() {
                SendStatus::Stored
            } else {
                SendStatus::PartialMailboxFull
            };
            let first = next_seq.fetch_add(accepted.len() as u64, Ordering::SeqCst);
            let expires_at = to_db(e.now_ms.saturating_add(limits.ttl_ms));
            // A group envelope's ciphertext is stored once, under its first row's seq.
            let payload_id = (e.recipients.len() > 1).then_some(to_db(first));
            if let Some(id) = payload_id {
                insert_payload.execute(params![
                    id,
                    accepted.len() as i64,
                    expires_at,
                    &e.payload[..]
                ])?;
            }
            for (seq, to) in (first..).zip(accepted) {
                insert_row.execute(params![
                    to_db(seq),
                    to.user_id(),
                    to.device,
                    e.sender.user_id(),
                    e.sender.device,
                    to_db(e.msg_id),
                    e.flags,
                    to_db(e.now_ms),
                    expires_at,
                    inline_body(e, payload_id),
                    payload_id,
                ])?;
                result.stored.push((to.clone(), seq));
            }
        }
    }
    Ok(results)
}

/// A single-recipient envelope keeps its ciphertext in its mailbox row.
fn inline_body(e: &NewEnvelope, payload_id: Option<i64>) -> Option<&[u8]> {
    payload_id.is_none().then_some(&e.payload[..])
}
