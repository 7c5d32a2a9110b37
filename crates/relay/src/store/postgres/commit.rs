//! The PostgreSQL group commit: batched multi-row statements, because every statement is a
//! network round trip. (SQLite has its own, `sqlite_commit.rs`, where statements are cheap.)

use std::collections::{HashMap, HashSet};

use sqlx::{Postgres, Row as _, Transaction};

use super::PgStore;
use crate::{
    store::{
        Committed, MAX_BINDS, MailboxCounts, NewEnvelope, StoreError, StoreLimits, WriteBatch,
        from_db, to_db,
    },
    wire::{DeviceAddress, SendStatus, UserId},
};

impl PgStore {
    /// Commits a batch in one transaction; returns one `Vec<Committed>` per send. On error
    /// nothing is committed and the cached mailbox counts are dropped.
    pub(crate) async fn commit(
        &self,
        batch: &WriteBatch,
        limits: StoreLimits,
    ) -> Result<Vec<Vec<Committed>>, StoreError> {
        let mut counts = self.counts.lock().await;
        let result = self.commit_with(batch, &mut counts, limits).await;
        if result.is_err() {
            counts.clear();
        }
        result
    }

    async fn commit_with(
        &self,
        batch: &WriteBatch,
        counts: &mut MailboxCounts,
        limits: StoreLimits,
    ) -> Result<Vec<Vec<Committed>>, StoreError> {
        let mut tx = self.pool.begin().await?;

        // 1. Acks: delete the rows, then release group payload references. One
        //    statement for every device's acks (not one per device): the join keeps
        //    each device to rows of its own mailbox.
        let mut released: HashMap<i64, i64> = HashMap::new();
        let acks: Vec<(&DeviceAddress, u64)> = batch
            .acks
            .iter()
            .flat_map(|(device, seqs)| seqs.iter().map(move |s| (device, *s)))
            .collect();
        for chunk in acks.chunks(MAX_BINDS / 3) {
            let mut qb = sqlx::QueryBuilder::<Postgres>::new(
                "DELETE FROM mailbox WHERE seq IN (SELECT v.column1 FROM (",
            );
            qb.push_values(chunk, |mut b, (device, seq)| {
                b.push_bind(to_db(*seq))
                    .push_bind(device.user_id())
                    .push_bind(i64::from(device.device));
            });
            qb.push(
                ") AS v JOIN mailbox o ON o.seq = v.column1 AND o.user_id = v.column2 \
                 AND o.device_id = v.column3) RETURNING user_id, device_id, payload_id",
            );
            for row in qb.build().fetch_all(&mut *tx).await? {
                let user_id: String = row.try_get(0)?;
                let device_id: i64 = row.try_get(1)?;
                counts.add(&DeviceAddress::new(user_id, device_id as u32)?, -1);
                let pid: Option<i64> = row.try_get(2)?;
                if let Some(pid) = pid {
                    *released.entry(pid).or_default() += 1;
                }
            }
        }
        if !released.is_empty() {
            for (pid, n) in &released {
                let mut qb =
                    sqlx::QueryBuilder::<Postgres>::new("UPDATE payloads SET refs = refs - ");
                qb.push_bind(*n);
                qb.push(" WHERE id = ");
                qb.push_bind(*pid);
                qb.build().execute(&mut *tx).await?;
            }
            let ids: Vec<i64> = released.keys().copied().collect();
            for chunk in ids.chunks(MAX_BINDS) {
                let mut qb = sqlx::QueryBuilder::<Postgres>::new(
                    "DELETE FROM payloads WHERE refs <= 0 AND id IN (",
                );
                let mut sep = qb.separated(", ");
                for id in chunk {
                    sep.push_bind(*id);
                }
                qb.push(")");
                qb.build().execute(&mut *tx).await?;
            }
        }

        // 2. Presence.
        for chunk in batch.seen.chunks(MAX_BINDS / 3) {
            let mut qb = sqlx::QueryBuilder::<Postgres>::new(
                "INSERT INTO last_seen (user_id, device_id, seen_ms) ",
            );
            qb.push_values(chunk, |mut b, (a, ms)| {
                b.push_bind(a.user_id())
                    .push_bind(i64::from(a.device))
                    .push_bind(to_db(*ms));
            });
            qb.push(" ON CONFLICT (user_id, device_id) DO UPDATE SET seen_ms = excluded.seen_ms");
            qb.build().execute(&mut *tx).await?;
        }

        // 3. Deduplicate sends on (sender, msg_id): first within the batch, then
        //    against the table. The dedup row outlives the mailbox rows (dedup window).
        let mut results = batch.outcomes_before_dedup();
        let mut seen_keys: HashSet<(&str, u32, u64)> = HashSet::new();
        let mut candidates: Vec<(usize, usize)> = Vec::new();
        for (si, envs) in batch.sends.iter().enumerate() {
            for (ei, e) in envs.iter().enumerate() {
                if seen_keys.insert((e.sender.user_id(), e.sender.device, e.msg_id)) {
                    candidates.push((si, ei));
                }
            }
        }
        let mut fresh: HashSet<(UserId, u32, u64)> = HashSet::new();
        for chunk in candidates.chunks(MAX_BINDS / 4) {
            let mut qb = sqlx::QueryBuilder::<Postgres>::new(
                "INSERT INTO dedup (sender_user, sender_device, msg_id, expires_at) ",
            );
            qb.push_values(chunk, |mut b, (si, ei)| {
                let e = &batch.sends[*si][*ei];
                b.push_bind(e.sender.user_id())
                    .push_bind(i64::from(e.sender.device))
                    .push_bind(to_db(e.msg_id))
                    .push_bind(to_db(e.now_ms.saturating_add(limits.dedup_ms)));
            });
            // A pair whose window has passed counts as new even before the expiry
            // sweep removed it.
            let now = chunk
                .iter()
                .map(|(si, ei)| batch.sends[*si][*ei].now_ms)
                .min()
                .unwrap_or(0);
            qb.push(
                " ON CONFLICT (sender_user, sender_device, msg_id) DO UPDATE \
                 SET expires_at = excluded.expires_at WHERE dedup.expires_at <= ",
            );
            qb.push_bind(to_db(now));
            qb.push(" RETURNING sender_user, sender_device, msg_id");
            for row in qb.build().fetch_all(&mut *tx).await? {
                let u = UserId::new(row.try_get::<String, _>(0)?)?;
                let d: i64 = row.try_get(1)?;
                let m: i64 = row.try_get(2)?;
                fresh.insert((u, d as u32, from_db(m)));
            }
        }

        // 4. Mailbox limits, sequence numbers, rows.
        struct Row<'a> {
            seq: u64,
            to: &'a DeviceAddress,
            env: &'a NewEnvelope,
            payload_id: Option<i64>,
        }
        let mut rows: Vec<Row<'_>> = Vec::new();
        let mut group_payloads: Vec<(i64, i64, &NewEnvelope)> = Vec::new();
        let mut refused: Vec<&NewEnvelope> = Vec::new();
        let mut pending: Vec<(usize, usize, Vec<&DeviceAddress>)> = Vec::new();
        let mut total = 0usize;
        for (si, ei) in &candidates {
            let e = &batch.sends[*si][*ei];
            let key = (e.sender.user.clone(), e.sender.device, e.msg_id);
            if !fresh.contains(&key) {
                continue;
            }
            for to in &e.recipients {
                if counts.needs_count(to) {
                    let n = Self::count_on(&mut tx, to).await?;
                    counts.set(to, n);
                }
            }
            let accepted = counts.admit(&e.recipients, limits.max_mailbox);
            if accepted.is_empty() {
                refused.push(e);
                results[*si][*ei].status = SendStatus::MailboxFull;
                continue;
            }
            results[*si][*ei].status = if accepted.len() == e.recipients.len() {
                SendStatus::Stored
            } else {
                SendStatus::PartialMailboxFull
            };
            total += accepted.len();
            pending.push((*si, *ei, accepted));
        }
        let seqs = self.alloc_seqs(&mut tx, total).await?;
        let mut next = seqs.into_iter();
        for (si, ei, accepted) in pending {
            let e = &batch.sends[si][ei];
            let mut payload_id = None;
            for to in accepted {
                let Some(seq) = next.next() else {
                    return Err(StoreError::Config(
                        "sequence allocation returned too few numbers".into(),
                    ));
                };
                if e.recipients.len() > 1 && payload_id.is_none() {
                    // The group payload takes the id of its first mailbox row.
                    payload_id = Some(to_db(seq));
                    group_payloads.push((to_db(seq), 0, e));
                }
                if let Some((_, refs, _)) =
                    group_payloads.last_mut().filter(|_| payload_id.is_some())
                {
                    *refs += 1;
                }
                results[si][ei].stored.push((to.clone(), seq));
                rows.push(Row {
                    seq,
                    to,
                    env: e,
                    payload_id,
                });
            }
        }
        for chunk in group_payloads.chunks(MAX_BINDS / 4) {
            let mut qb = sqlx::QueryBuilder::<Postgres>::new(
                "INSERT INTO payloads (id, refs, expires_at, body) ",
            );
            qb.push_values(chunk, |mut b, (id, refs, e)| {
                b.push_bind(*id)
                    .push_bind(*refs)
                    .push_bind(to_db(e.now_ms.saturating_add(limits.ttl_ms)))
                    .push_bind(&e.payload[..]);
            });
            qb.build().execute(&mut *tx).await?;
        }
        for chunk in rows.chunks(MAX_BINDS / 11) {
            let mut qb = sqlx::QueryBuilder::<Postgres>::new(
                "INSERT INTO mailbox (seq, user_id, device_id, sender_user, sender_device, \
                 msg_id, flags, created_ms, expires_at, body, payload_id) ",
            );
            qb.push_values(chunk, |mut b, r| {
                let e = r.env;
                b.push_bind(to_db(r.seq))
                    .push_bind(r.to.user_id())
                    .push_bind(i64::from(r.to.device))
                    .push_bind(e.sender.user_id())
                    .push_bind(i64::from(e.sender.device))
                    .push_bind(to_db(e.msg_id))
                    .push_bind(i64::from(e.flags))
                    .push_bind(to_db(e.now_ms))
                    .push_bind(to_db(e.now_ms.saturating_add(limits.ttl_ms)))
                    .push_bind(if r.payload_id.is_some() {
                        None
                    } else {
                        Some(&e.payload[..])
                    })
                    .push_bind(r.payload_id);
            });
            qb.build().execute(&mut *tx).await?;
        }
        // An envelope refused everywhere must not block its own retry as a duplicate.
        for e in refused {
            let mut qb =
                sqlx::QueryBuilder::<Postgres>::new("DELETE FROM dedup WHERE sender_user = ");
            qb.push_bind(e.sender.user_id());
            qb.push(" AND sender_device = ");
            qb.push_bind(i64::from(e.sender.device));
            qb.push(" AND msg_id = ");
            qb.push_bind(to_db(e.msg_id));
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(results)
    }

    async fn alloc_seqs(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        n: usize,
    ) -> Result<Vec<u64>, StoreError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query("SELECT nextval('mailbox_seq') FROM generate_series(1, $1)")
            .bind(n as i64)
            .fetch_all(&mut **tx)
            .await?;
        let mut seqs = Vec::with_capacity(n);
        for row in rows {
            let v: i64 = row.try_get(0)?;
            seqs.push(from_db(v));
        }
        seqs.sort_unstable();
        Ok(seqs)
    }
}
