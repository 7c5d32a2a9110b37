//! PostgreSQL back end (scale-out): any number of relay nodes share one database.
//!
//! Sequence numbers come from the `mailbox_seq` sequence, so nodes never collide. The relay
//! lives in its own schema (default `relay`) so its migration history cannot clash with the
//! key server's in a shared database.

use std::{str::FromStr, time::Duration};

use sqlx::{
    Postgres, Row as _, Transaction,
    postgres::{PgConnectOptions, PgPool, PgPoolOptions},
};

use super::{StoreError, batched_commit, from_db, store_ops};
use crate::migrations::Embedded;

/// PostgreSQL mailboxes.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

fn valid_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl PgStore {
    /// Connects, creates `schema` if needed, uses it as the search path and migrates it.
    pub async fn open(url: &str, schema: &str) -> Result<Self, StoreError> {
        if !valid_schema(schema) {
            return Err(StoreError::Config(
                "schema must be 1-63 characters of a-z, 0-9, _".into(),
            ));
        }
        let base = PgConnectOptions::from_str(url)?;
        {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(base.clone())
                .await?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(&pool)
                .await?;
            pool.close().await;
        }
        let options = base.options([("search_path", schema)]);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate::Migrator::new(Embedded::Postgres)
            .await?
            .run(&pool)
            .await?;
        Ok(Self { pool })
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

    async fn persist_seq(&self, _tx: &mut Transaction<'_, Postgres>) -> Result<(), StoreError> {
        Ok(())
    }

    /// Drops `schema` and everything in it (tests clean up with this).
    pub async fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
        if !valid_schema(schema) {
            return Err(StoreError::Config("invalid schema".into()));
        }
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(PgConnectOptions::from_str(url)?)
            .await?;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&pool)
            .await?;
        pool.close().await;
        Ok(())
    }
}

store_ops!(PgStore, Postgres);
batched_commit!(PgStore, Postgres);
