//! The database floor of a bundle fetch, for the load benchmark (`e2ee-keyserver-bench`):
//! the statements a fetch must run (the requester's credential, then the bundle and its
//! one-time keys consumed) straight against the database, with no HTTP, no routing and no
//! queue to a worker in between. The key server's fetch rate is reported beside it.

use std::{path::Path, sync::Arc, time::Duration, time::Instant};

use e2ee_encoding::DeviceAddress;
use rusqlite::TransactionBehavior;

use crate::{
    KeyserverError,
    sqlite_hot_path::{self, MAX_BATCH},
    storage::{Store, StoreError},
};

/// Where the floor runs: the key server's own database.
#[derive(Debug, Clone, Copy)]
pub enum FloorDatabase<'a> {
    /// The SQLite file, through one connection of its own (SQLite has one writer).
    Sqlite {
        /// The database file.
        path: &'a Path,
        /// Fetches per transaction: 1, or the key server's own batch (64, `MAX_BATCH`).
        batched: bool,
    },
    /// PostgreSQL, through a pool of its own of `connections`.
    Postgres {
        /// The database URL (as the key server's).
        url: &'a str,
        /// Pool size, and concurrent fetchers.
        connections: u32,
    },
}

/// What a floor run did.
#[derive(Debug, Clone, Copy)]
pub struct FloorRun {
    /// Fetches run.
    pub fetches: usize,
    /// Of them, those that consumed a one-time prekey.
    pub with_one_time_prekey: usize,
    /// Wall time of them all.
    pub elapsed: Duration,
}

/// Runs `fetches` bundle fetches by `requester`, round-robin over `targets`, directly on the
/// database (each consumes keys, as the benchmark's HTTP fetches do).
pub async fn measure_fetch_floor(
    database: FloorDatabase<'_>,
    requester: &DeviceAddress,
    targets: &[DeviceAddress],
    fetches: usize,
) -> Result<FloorRun, KeyserverError> {
    if targets.is_empty() {
        return Err(KeyserverError::Floor("no targets".into()));
    }
    match database {
        FloorDatabase::Sqlite { path, batched } => {
            let (path, requester, targets) = (path.to_owned(), requester.clone(), targets.to_vec());
            let batch = if batched { MAX_BATCH } else { 1 };
            tokio::task::spawn_blocking(move || {
                sqlite_floor(&path, &requester, &targets, fetches, batch)
            })
            .await
            .map_err(|e| KeyserverError::Floor(format!("its thread failed: {e}")))?
        }
        FloorDatabase::Postgres { url, connections } => {
            postgres_floor(url, connections, requester, targets, fetches).await
        }
    }
}

fn sqlite_floor(
    path: &Path,
    requester: &DeviceAddress,
    targets: &[DeviceAddress],
    fetches: usize,
    batch: usize,
) -> Result<FloorRun, KeyserverError> {
    let failed = |e: rusqlite::Error| KeyserverError::Floor(e.to_string());
    let mut conn = sqlite_hot_path::connect(path).map_err(failed)?;
    let mut with_one_time_prekey = 0;
    let started = Instant::now();
    let mut done = 0;
    while done < fetches {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed)?;
        for i in done..fetches.min(done + batch) {
            sqlite_hot_path::credential(&tx, requester).map_err(failed)?;
            let bundle = sqlite_hot_path::take_bundle(&tx, &targets[i % targets.len()], true)
                .map_err(failed)?;
            with_one_time_prekey +=
                usize::from(bundle.is_some_and(|b| b.one_time_prekey.is_some()));
        }
        tx.commit().map_err(failed)?;
        done = fetches.min(done + batch);
    }
    Ok(FloorRun {
        fetches,
        with_one_time_prekey,
        elapsed: started.elapsed(),
    })
}

fn store_error(e: StoreError) -> KeyserverError {
    match e {
        StoreError::Db(e) => KeyserverError::Database(e),
        other => KeyserverError::Floor(other.to_string()),
    }
}

async fn postgres_floor(
    url: &str,
    connections: u32,
    requester: &DeviceAddress,
    targets: &[DeviceAddress],
    fetches: usize,
) -> Result<FloorRun, KeyserverError> {
    let store = Arc::new(Store::open(Some(url), Path::new("."), connections).await?);
    let targets: Arc<[DeviceAddress]> = targets.into();
    let fetchers = connections.max(1) as usize;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(fetchers);
    for fetcher in 0..fetchers {
        let (store, targets, requester) = (store.clone(), targets.clone(), requester.clone());
        tasks.push(tokio::spawn(async move {
            let mut with_one_time_prekey = 0;
            for i in (fetcher..fetches).step_by(fetchers) {
                store.credential(&requester).await?;
                let bundle = store.take_bundle(&targets[i % targets.len()], true).await?;
                with_one_time_prekey +=
                    usize::from(bundle.is_some_and(|b| b.one_time_prekey.is_some()));
            }
            Ok::<_, StoreError>(with_one_time_prekey)
        }));
    }
    let mut with_one_time_prekey = 0;
    for task in tasks {
        with_one_time_prekey += task
            .await
            .map_err(|e| KeyserverError::Floor(format!("a task failed: {e}")))?
            .map_err(store_error)?;
    }
    let elapsed = started.elapsed();
    store.close().await;
    Ok(FloorRun {
        fetches,
        with_one_time_prekey,
        elapsed,
    })
}
