//! The SQLite commit phases: one transaction on a dedicated connection, run on a blocking
//! thread, one cached single-row statement per row.
//!
//! SQLite is a library, so a statement costs microseconds, not a round trip; what is
//! expensive through an async driver is the hop to its worker thread for every statement and
//! every returned row. Running the whole commit as one blocking call keeps that to one hop
//! per commit, and single-row statements stay prepared across commits (multi-row `VALUES`
//! lists would be new SQL text for every batch size). The rules are in `store/plan.rs`.

use std::{
    borrow::Cow,
    path::Path,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::{
    store::{
        Committed, MailboxCounts, NewEnvelope, SqliteSync, StoreError, StoreLimits, WriteBatch,
        commit::{self, CommitPhases},
        from_db,
        plan::{CommitPlan, DeletedRow},
        to_db,
    },
    wire::DeviceAddress,
};

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
        sync: SqliteSync,
        counts: MailboxCounts,
    ) -> Result<Self, rusqlite::Error> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "synchronous", sync.pragma())?;
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
    ) -> Result<Vec<Vec<Committed>>, StoreError> {
        let result =
            commit_in_transaction(&mut self.conn, &mut self.counts, batch, limits, next_seq);
        if result.is_err() {
            self.counts.clear();
        }
        result
    }
}

fn commit_in_transaction(
    conn: &mut Connection,
    counts: &mut MailboxCounts,
    batch: &WriteBatch,
    limits: StoreLimits,
    next_seq: &AtomicU64,
) -> Result<Vec<Vec<Committed>>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut phases = SqlitePhases { tx: &tx, next_seq };
    let outcomes = commit::run_ready(commit::run(&mut phases, batch, counts, limits))?;
    // The high-water mark of the numbers handed out, in the transaction that uses them.
    tx.prepare_cached(
        "INSERT INTO relay_meta (key, value) VALUES ('next_seq', ?1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([to_db(next_seq.load(Ordering::SeqCst))])?;
    tx.commit()?;
    Ok(outcomes)
}

struct SqlitePhases<'t> {
    tx: &'t Transaction<'t>,
    next_seq: &'t AtomicU64,
}

impl CommitPhases for SqlitePhases<'_> {
    async fn delete_acked<'b>(
        &mut self,
        acks: &'b [(DeviceAddress, Vec<u64>)],
    ) -> Result<Vec<DeletedRow<'b>>, StoreError> {
        let mut delete = self.tx.prepare_cached(
            "DELETE FROM mailbox WHERE seq = ?1 AND user_id = ?2 AND device_id = ?3 \
             RETURNING payload_id",
        )?;
        let mut deleted = Vec::new();
        for (device, seqs) in acks {
            for seq in seqs {
                let payload: Option<Option<i64>> = delete
                    .query_row(params![to_db(*seq), device.user_id(), device.device], |r| {
                        r.get(0)
                    })
                    .optional()?;
                if let Some(payload) = payload {
                    deleted.push((Cow::Borrowed(device), payload));
                }
            }
        }
        Ok(deleted)
    }

    async fn release_payloads(&mut self, released: &[(i64, i64)]) -> Result<(), StoreError> {
        let mut release = self
            .tx
            .prepare_cached("UPDATE payloads SET refs = refs - ?1 WHERE id = ?2")?;
        let mut drop_unused = self
            .tx
            .prepare_cached("DELETE FROM payloads WHERE id = ?1 AND refs <= 0")?;
        for (id, n) in released {
            release.execute(params![n, id])?;
            drop_unused.execute([id])?;
        }
        Ok(())
    }

    async fn upsert_seen(&mut self, seen: &[(DeviceAddress, u64)]) -> Result<(), StoreError> {
        let mut upsert = self.tx.prepare_cached(
            "INSERT INTO last_seen (user_id, device_id, seen_ms) VALUES (?1, ?2, ?3) \
             ON CONFLICT (user_id, device_id) DO UPDATE SET seen_ms = excluded.seen_ms",
        )?;
        for (device, ms) in seen {
            upsert.execute(params![device.user_id(), device.device, to_db(*ms)])?;
        }
        Ok(())
    }

    async fn claim_dedup(
        &mut self,
        envelopes: &[&NewEnvelope],
        dedup_ms: u64,
    ) -> Result<Vec<bool>, StoreError> {
        let mut claim = self.tx.prepare_cached(
            "INSERT INTO dedup (sender_user, sender_device, msg_id, expires_at) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (sender_user, sender_device, msg_id) DO UPDATE \
             SET expires_at = excluded.expires_at WHERE dedup.expires_at <= ?5",
        )?;
        let mut claimed = Vec::with_capacity(envelopes.len());
        for e in envelopes {
            let changed = claim.execute(params![
                e.sender.user_id(),
                e.sender.device,
                to_db(e.msg_id),
                to_db(e.now_ms.saturating_add(dedup_ms)),
                to_db(e.now_ms),
            ])?;
            claimed.push(changed == 1);
        }
        Ok(claimed)
    }

    async fn count_mailboxes(
        &mut self,
        mailboxes: &[&DeviceAddress],
    ) -> Result<Vec<u64>, StoreError> {
        let mut count = self
            .tx
            .prepare_cached("SELECT COUNT(*) FROM mailbox WHERE user_id = ?1 AND device_id = ?2")?;
        let mut sizes = Vec::with_capacity(mailboxes.len());
        for to in mailboxes {
            let n: i64 = count.query_row(params![to.user_id(), to.device], |r| r.get(0))?;
            sizes.push(from_db(n));
        }
        Ok(sizes)
    }

    async fn allocate_seqs(&mut self, n: usize) -> Result<Vec<u64>, StoreError> {
        // The only writer of the file: numbers come from memory, their high-water mark is
        // persisted by the commit (see `SqliteStore`).
        let first = self.next_seq.fetch_add(n as u64, Ordering::SeqCst);
        Ok((first..first + n as u64).collect())
    }

    async fn write_plan(&mut self, plan: &CommitPlan<'_>) -> Result<(), StoreError> {
        let mut insert_payload = self.tx.prepare_cached(
            "INSERT INTO payloads (id, refs, expires_at, body) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for p in &plan.payloads {
            insert_payload.execute(params![p.id, p.refs, to_db(p.expires_at), p.body])?;
        }
        let mut insert_row = self.tx.prepare_cached(
            "INSERT INTO mailbox (seq, user_id, device_id, sender_user, sender_device, msg_id, \
             flags, created_ms, expires_at, body, payload_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for row in &plan.rows {
            let e = row.envelope;
            insert_row.execute(params![
                to_db(row.seq),
                row.to.user_id(),
                row.to.device,
                e.sender.user_id(),
                e.sender.device,
                to_db(e.msg_id),
                e.flags,
                to_db(e.now_ms),
                to_db(row.expires_at),
                row.body(),
                row.payload_id,
            ])?;
        }
        let mut unclaim = self.tx.prepare_cached(
            "DELETE FROM dedup WHERE sender_user = ?1 AND sender_device = ?2 AND msg_id = ?3",
        )?;
        for e in &plan.unclaim {
            unclaim.execute(params![
                e.sender.user_id(),
                e.sender.device,
                to_db(e.msg_id)
            ])?;
        }
        Ok(())
    }
}
