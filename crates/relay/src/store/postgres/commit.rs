//! The PostgreSQL commit phases: batched multi-row statements, because every statement is a
//! network round trip. The rules are in `store/plan.rs`.

use std::{borrow::Cow, collections::HashSet};

use sqlx::{Postgres, QueryBuilder, Row as _, Transaction};

use super::PgStore;
use crate::{
    store::{
        Committed, MAX_BINDS, NewEnvelope, StoreError, StoreLimits, WriteBatch,
        commit::{self, CommitPhases},
        from_db,
        plan::{CommitPlan, DeletedRow},
        to_db,
    },
    wire::{DeviceAddress, UserId},
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
        let mut tx = self.pool.begin().await?;
        let result = commit::run(&mut PgPhases { tx: &mut tx }, batch, &mut counts, limits).await;
        let result = match result {
            Ok(outcomes) => tx
                .commit()
                .await
                .map(|()| outcomes)
                .map_err(StoreError::from),
            Err(e) => Err(e),
        };
        if result.is_err() {
            counts.clear();
        }
        result
    }
}

struct PgPhases<'a, 't> {
    tx: &'a mut Transaction<'t, Postgres>,
}

impl CommitPhases for PgPhases<'_, '_> {
    async fn delete_acked<'b>(
        &mut self,
        acks: &'b [(DeviceAddress, Vec<u64>)],
    ) -> Result<Vec<DeletedRow<'b>>, StoreError> {
        // One statement for every device's acks (not one per device): the join keeps each
        // device to rows of its own mailbox.
        let acks: Vec<(&DeviceAddress, u64)> = acks
            .iter()
            .flat_map(|(device, seqs)| seqs.iter().map(move |s| (device, *s)))
            .collect();
        let mut deleted = Vec::new();
        for chunk in acks.chunks(MAX_BINDS / 3) {
            let mut qb = QueryBuilder::<Postgres>::new(
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
            for row in qb.build().fetch_all(&mut **self.tx).await? {
                let user: String = row.try_get(0)?;
                let device: i64 = row.try_get(1)?;
                let payload: Option<i64> = row.try_get(2)?;
                deleted.push((
                    Cow::Owned(DeviceAddress::new(user, device as u32)?),
                    payload,
                ));
            }
        }
        Ok(deleted)
    }

    async fn release_payloads(&mut self, released: &[(i64, i64)]) -> Result<(), StoreError> {
        for (id, n) in released {
            let mut qb = QueryBuilder::<Postgres>::new("UPDATE payloads SET refs = refs - ");
            qb.push_bind(*n);
            qb.push(" WHERE id = ");
            qb.push_bind(*id);
            qb.build().execute(&mut **self.tx).await?;
        }
        for chunk in released.chunks(MAX_BINDS) {
            let mut qb =
                QueryBuilder::<Postgres>::new("DELETE FROM payloads WHERE refs <= 0 AND id IN (");
            let mut ids = qb.separated(", ");
            for (id, _) in chunk {
                ids.push_bind(*id);
            }
            qb.push(")");
            qb.build().execute(&mut **self.tx).await?;
        }
        Ok(())
    }

    async fn upsert_seen(&mut self, seen: &[(DeviceAddress, u64)]) -> Result<(), StoreError> {
        for chunk in seen.chunks(MAX_BINDS / 3) {
            let mut qb = QueryBuilder::<Postgres>::new(
                "INSERT INTO last_seen (user_id, device_id, seen_ms) ",
            );
            qb.push_values(chunk, |mut b, (device, ms)| {
                b.push_bind(device.user_id())
                    .push_bind(i64::from(device.device))
                    .push_bind(to_db(*ms));
            });
            qb.push(" ON CONFLICT (user_id, device_id) DO UPDATE SET seen_ms = excluded.seen_ms");
            qb.build().execute(&mut **self.tx).await?;
        }
        Ok(())
    }

    async fn claim_dedup(
        &mut self,
        envelopes: &[&NewEnvelope],
        dedup_ms: u64,
    ) -> Result<Vec<bool>, StoreError> {
        let mut new: HashSet<(UserId, u32, u64)> = HashSet::new();
        for chunk in envelopes.chunks(MAX_BINDS / 4) {
            let mut qb = QueryBuilder::<Postgres>::new(
                "INSERT INTO dedup (sender_user, sender_device, msg_id, expires_at) ",
            );
            qb.push_values(chunk, |mut b, e| {
                b.push_bind(e.sender.user_id())
                    .push_bind(i64::from(e.sender.device))
                    .push_bind(to_db(e.msg_id))
                    .push_bind(to_db(e.now_ms.saturating_add(dedup_ms)));
            });
            // A pair whose window has passed counts as new even before the expiry sweep
            // removed it.
            let now = chunk.iter().map(|e| e.now_ms).min().unwrap_or(0);
            qb.push(
                " ON CONFLICT (sender_user, sender_device, msg_id) DO UPDATE \
                 SET expires_at = excluded.expires_at WHERE dedup.expires_at <= ",
            );
            qb.push_bind(to_db(now));
            qb.push(" RETURNING sender_user, sender_device, msg_id");
            for row in qb.build().fetch_all(&mut **self.tx).await? {
                let user = UserId::new(row.try_get::<String, _>(0)?)?;
                let device: i64 = row.try_get(1)?;
                let msg_id: i64 = row.try_get(2)?;
                new.insert((user, device as u32, from_db(msg_id)));
            }
        }
        Ok(envelopes
            .iter()
            .map(|e| new.contains(&(e.sender.user.clone(), e.sender.device, e.msg_id)))
            .collect())
    }

    async fn count_mailboxes(
        &mut self,
        mailboxes: &[&DeviceAddress],
    ) -> Result<Vec<u64>, StoreError> {
        let mut sizes = Vec::with_capacity(mailboxes.len());
        for to in mailboxes {
            sizes.push(PgStore::count_on(&mut *self.tx, to).await?);
        }
        Ok(sizes)
    }

    async fn allocate_seqs(&mut self, n: usize) -> Result<Vec<u64>, StoreError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        // From the shared sequence, so nodes never collide.
        let rows = sqlx::query("SELECT nextval('mailbox_seq') FROM generate_series(1, $1)")
            .bind(n as i64)
            .fetch_all(&mut **self.tx)
            .await?;
        let mut seqs = Vec::with_capacity(n);
        for row in rows {
            seqs.push(from_db(row.try_get::<i64, _>(0)?));
        }
        seqs.sort_unstable();
        Ok(seqs)
    }

    async fn write_plan(&mut self, plan: &CommitPlan<'_>) -> Result<(), StoreError> {
        for chunk in plan.payloads.chunks(MAX_BINDS / 4) {
            let mut qb =
                QueryBuilder::<Postgres>::new("INSERT INTO payloads (id, refs, expires_at, body) ");
            qb.push_values(chunk, |mut b, p| {
                b.push_bind(p.id)
                    .push_bind(p.refs)
                    .push_bind(to_db(p.expires_at))
                    .push_bind(p.body);
            });
            qb.build().execute(&mut **self.tx).await?;
        }
        for chunk in plan.rows.chunks(MAX_BINDS / 11) {
            let mut qb = QueryBuilder::<Postgres>::new(
                "INSERT INTO mailbox (seq, user_id, device_id, sender_user, sender_device, \
                 msg_id, flags, created_ms, expires_at, body, payload_id) ",
            );
            qb.push_values(chunk, |mut b, row| {
                let e = row.envelope;
                b.push_bind(to_db(row.seq))
                    .push_bind(row.to.user_id())
                    .push_bind(i64::from(row.to.device))
                    .push_bind(e.sender.user_id())
                    .push_bind(i64::from(e.sender.device))
                    .push_bind(to_db(e.msg_id))
                    .push_bind(i64::from(e.flags))
                    .push_bind(to_db(e.now_ms))
                    .push_bind(to_db(row.expires_at))
                    .push_bind(row.body())
                    .push_bind(row.payload_id);
            });
            qb.build().execute(&mut **self.tx).await?;
        }
        for e in &plan.unclaim {
            let mut qb = QueryBuilder::<Postgres>::new("DELETE FROM dedup WHERE sender_user = ");
            qb.push_bind(e.sender.user_id());
            qb.push(" AND sender_device = ");
            qb.push_bind(i64::from(e.sender.device));
            qb.push(" AND msg_id = ");
            qb.push_bind(to_db(e.msg_id));
            qb.build().execute(&mut **self.tx).await?;
        }
        Ok(())
    }
}
