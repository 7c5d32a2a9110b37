//! PostgreSQL back end (scale-out): any number of relay nodes share one database.
//!
//! Sequence numbers come from the `mailbox_seq` sequence, so nodes never collide. The relay
//! lives in its own schema (default `relay`) so its migration history cannot clash with the
//! key server's in a shared database.

mod commit;

use std::{str::FromStr, sync::Arc, time::Duration};

use sqlx::{
    Postgres,
    postgres::{PgConnectOptions, PgPool, PgPoolOptions},
};

use super::{MailboxCounts, StoreError, reads::shared_reads};
use crate::migrations;

/// Nodes share mailboxes, so cached mailbox sizes are recounted often.
const PG_COUNTS_MAX_AGE: Duration = Duration::from_secs(5);

/// PostgreSQL mailboxes.
#[derive(Debug, Clone)]
pub(crate) struct PgStore {
    pool: PgPool,
    /// Mailbox sizes counted by this node's group commit (only the writer locks it).
    counts: Arc<tokio::sync::Mutex<MailboxCounts>>,
}

fn valid_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl PgStore {
    /// Connects, creates `schema` if needed, uses it as the search path and migrates it.
    pub(crate) async fn open(url: &str, schema: &str) -> Result<Self, StoreError> {
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
            let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(&pool)
                .await;
            pool.close().await;
            match created {
                // Two nodes starting at once both pass PostgreSQL's "if not exists" check and
                // one insert then trips the catalog's unique index: the schema exists, which
                // is all this step wants.
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {}
                other => {
                    other?;
                }
            }
        }
        let options = base.options([("search_path", schema)]);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        e2ee_migrations::migrator(migrations::POSTGRES)
            .await?
            .run(&pool)
            .await?;
        Ok(Self {
            pool,
            counts: Arc::new(tokio::sync::Mutex::new(MailboxCounts::new(
                PG_COUNTS_MAX_AGE,
            ))),
        })
    }

    /// Forgets the counted mailbox sizes (after the expiry sweep removed rows).
    pub(crate) async fn forget_counts(&self) {
        self.counts.lock().await.clear();
    }

    /// Drops `schema` and everything in it (tests clean up with this).
    pub(crate) async fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
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

shared_reads!(PgStore, Postgres);
