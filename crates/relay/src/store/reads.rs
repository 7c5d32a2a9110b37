//! Reads and the rarer writes (expiry, presence lists), the same SQL on both back ends.

/// The reads and rarer writes, one SQL text for both back ends, stamped out per database type
/// (`$store` must have a `pool` field). A macro rather than functions generic over
/// `sqlx::Database`, whose bounds would be longer than the statements.
macro_rules! shared_reads {
    ($store:ty, $db:ty) => {
        impl $store {
            pub(crate) async fn count(
                &self,
                device: &$crate::wire::DeviceAddress,
            ) -> Result<u64, $crate::store::StoreError> {
                let mut conn = self.pool.acquire().await?;
                Self::count_on(&mut conn, device).await
            }

            async fn count_on(
                conn: &mut <$db as sqlx::Database>::Connection,
                device: &$crate::wire::DeviceAddress,
            ) -> Result<u64, $crate::store::StoreError> {
                use sqlx::Row as _;
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT COUNT(*) FROM mailbox WHERE user_id = ",
                );
                qb.push_bind(device.user_id());
                qb.push(" AND device_id = ");
                qb.push_bind(i64::from(device.device));
                let row = qb.build().fetch_one(&mut *conn).await?;
                let n: i64 = row.try_get(0)?;
                Ok($crate::store::from_db(n))
            }

            pub(crate) async fn fetch(
                &self,
                device: &$crate::wire::DeviceAddress,
                after: u64,
                limit: usize,
                now_ms: u64,
            ) -> Result<Vec<$crate::wire::Delivery>, $crate::store::StoreError> {
                use sqlx::Row as _;

                use $crate::store::{from_db, to_db};

                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT m.seq, m.flags, m.created_ms, m.sender_user, m.sender_device, m.msg_id, \
                     COALESCE(m.body, p.body) FROM mailbox m LEFT JOIN payloads p ON p.id = m.payload_id \
                     WHERE m.user_id = ",
                );
                qb.push_bind(device.user_id());
                qb.push(" AND m.device_id = ");
                qb.push_bind(i64::from(device.device));
                qb.push(" AND m.seq > ");
                qb.push_bind(to_db(after));
                qb.push(" AND m.expires_at > ");
                qb.push_bind(to_db(now_ms));
                qb.push(" ORDER BY m.seq LIMIT ");
                qb.push_bind(limit as i64);
                let rows = qb.build().fetch_all(&self.pool).await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    let body: Option<Vec<u8>> = row.try_get(6)?;
                    let Some(body) = body else { continue };
                    let flags: i64 = row.try_get(1)?;
                    let sender_device: i64 = row.try_get(4)?;
                    out.push($crate::wire::Delivery {
                        seq: from_db(row.try_get(0)?),
                        flags: flags as u8,
                        server_ts_ms: from_db(row.try_get(2)?),
                        sender: $crate::wire::DeviceAddress::new(
                            row.try_get::<String, _>(3)?,
                            sender_device as u32,
                        )?,
                        msg_id: from_db(row.try_get(5)?),
                        payload: body.into(),
                    });
                }
                Ok(out)
            }

            pub(crate) async fn expire(&self, now_ms: u64) -> Result<u64, $crate::store::StoreError> {
                let now = $crate::store::to_db(now_ms);
                let mut tx = self.pool.begin().await?;
                // The mailbox has no index on expires_at (it would cost two B-tree writes per
                // message). Rows expire in sequence order when the TTL is constant, so the
                // sweep deletes the expired rows below the oldest unexpired one: a primary-key
                // range, not a scan of every waiting envelope while the write lock is held. An
                // expired row above it (after the TTL was lowered) is never delivered (reads
                // filter on expires_at) and goes in a later sweep.
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "DELETE FROM mailbox WHERE expires_at <= ",
                );
                qb.push_bind(now);
                qb.push(" AND seq < COALESCE((SELECT seq FROM mailbox WHERE expires_at > ");
                qb.push_bind(now);
                qb.push(" ORDER BY seq LIMIT 1), 9223372036854775807)");
                let removed = qb.build().execute(&mut *tx).await?.rows_affected();
                for table in ["payloads", "dedup"] {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                        "DELETE FROM {table} WHERE expires_at <= "
                    ));
                    qb.push_bind(now);
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(removed)
            }

            pub(crate) async fn set_presence_allow(
                &self,
                owner: &$crate::wire::UserId,
                viewers: &[$crate::wire::UserId],
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                let mut qb =
                    sqlx::QueryBuilder::<$db>::new("DELETE FROM presence_allow WHERE owner = ");
                qb.push_bind(owner.as_str());
                qb.build().execute(&mut *tx).await?;
                if !viewers.is_empty() {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO presence_allow (owner, viewer) ",
                    );
                    qb.push_values(viewers, |mut b, v| {
                        b.push_bind(owner.as_str()).push_bind(v.as_str());
                    });
                    qb.push(" ON CONFLICT DO NOTHING");
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn presence_allowed(
                &self,
                owner: &$crate::wire::UserId,
                viewer: &$crate::wire::UserId,
            ) -> Result<bool, $crate::store::StoreError> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT 1 FROM presence_allow WHERE owner = ",
                );
                qb.push_bind(owner.as_str());
                qb.push(" AND viewer = ");
                qb.push_bind(viewer.as_str());
                Ok(qb.build().fetch_optional(&self.pool).await?.is_some())
            }

            pub(crate) async fn last_seen(
                &self,
                user: &$crate::wire::UserId,
            ) -> Result<Vec<(u32, u64)>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT device_id, seen_ms FROM last_seen WHERE user_id = ",
                );
                qb.push_bind(user.as_str());
                qb.push(" ORDER BY device_id");
                let mut out = Vec::new();
                for row in qb.build().fetch_all(&self.pool).await? {
                    let d: i64 = row.try_get(0)?;
                    let s: i64 = row.try_get(1)?;
                    out.push((d as u32, $crate::store::from_db(s)));
                }
                Ok(out)
            }
        }
    };
}

pub(crate) use shared_reads;
