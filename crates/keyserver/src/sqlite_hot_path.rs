//! The statements every bundle fetch runs on SQLite (the credential check and the bundle
//! consumption) on one dedicated connection and thread, in batches.
//!
//! SQLite is a library: a statement costs microseconds. What cost the time through sqlx was
//! the hop to the connection's worker thread and back for each of the four or five
//! statements of a fetch (a profile of the load benchmark showed the kernel's scheduler,
//! not SQLite, on top). Here a fetch costs one message to this thread and one reply, and
//! every request queued meanwhile shares one `BEGIN IMMEDIATE` transaction and its commit.
//! Consumption stays one `DELETE ... RETURNING` per key in a single writer, so a one-time key
//! is still served at most once; the replies go out only after the commit.

use std::{
    path::Path,
    sync::mpsc::{self, Receiver, Sender, TryRecvError},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::Duration,
};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use tokio::sync::oneshot;

use e2ee_encoding::DeviceAddress;

use crate::{
    error::KeyserverError,
    sqlite_checkpointer::Checkpointer,
    storage::{BundleParts, StoreError},
};

/// Requests run in one transaction at most (a bound on the time the write lock is held).
pub(crate) const MAX_BATCH: usize = 64;

/// How long a statement waits for another connection's write lock (as the pool's).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Prepared statements kept (the five below, with room to spare).
const STATEMENT_CACHE: usize = 16;

/// A salt and hash of a device credential.
pub(crate) type Credential = (Vec<u8>, Vec<u8>);

/// One request waiting in the queue: what to run in the batch's transaction, and where its
/// answer goes once the transaction has committed.
trait Job: Send {
    /// Runs the request in `tx`, keeping its result for [`Job::answer`].
    fn run(&mut self, tx: &Transaction<'_>) -> Result<(), rusqlite::Error>;
    /// Sends the kept result (`Ok` after a commit) or the error.
    fn answer(self: Box<Self>, outcome: Result<(), StoreError>);
}

struct Request<A, T> {
    args: A,
    work: fn(&Transaction<'_>, &A) -> Result<T, rusqlite::Error>,
    result: Option<T>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<A: Send, T: Send> Job for Request<A, T> {
    fn run(&mut self, tx: &Transaction<'_>) -> Result<(), rusqlite::Error> {
        self.result = Some((self.work)(tx, &self.args)?);
        Ok(())
    }

    fn answer(self: Box<Self>, outcome: Result<(), StoreError>) {
        let Request { result, reply, .. } = *self;
        let result = outcome.and_then(|()| result.ok_or_else(gone));
        // A requester that went away (its connection dropped) needs no answer; what its
        // request consumed stays consumed, as for a fetch whose response was lost.
        let _ = reply.send(result);
    }
}

/// The handle: cheap to clone; the thread ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct SqliteHotPath {
    jobs: Sender<Box<dyn Job>>,
    /// The most requests one transaction has run (at most [`MAX_BATCH`]).
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "read by the tests; to be a metric with /metrics")
    )]
    largest_batch: Arc<AtomicUsize>,
    /// Writes the WAL back, which this connection never does itself; held so its thread
    /// runs as long as the fetch path does.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "held, not read, outside the tests")
    )]
    checkpointer: Arc<Checkpointer>,
}

impl SqliteHotPath {
    /// Opens its own connection to the (migrated, WAL) database file and starts its thread.
    pub(crate) fn open(path: &Path) -> Result<Self, KeyserverError> {
        Self::open_waiting(path, BUSY_TIMEOUT)
    }

    /// As [`Self::open`], waiting at most `busy_timeout` for another connection's lock.
    fn open_waiting(path: &Path, busy_timeout: Duration) -> Result<Self, KeyserverError> {
        let conn = connect_waiting(path, busy_timeout)
            .map_err(|e| KeyserverError::SqliteFetchPath(e.to_string()))?;
        let checkpointer = Arc::new(Checkpointer::start(path, busy_timeout)?);
        let (jobs, queue) = mpsc::channel();
        let largest_batch = Arc::new(AtomicUsize::new(0));
        let largest = largest_batch.clone();
        thread::Builder::new()
            .name("keyserver-sqlite".into())
            .spawn(move || serve(conn, queue, &largest))?;
        Ok(Self {
            jobs,
            largest_batch,
            checkpointer,
        })
    }

    /// The most requests one transaction has run so far.
    #[cfg(test)]
    fn largest_batch(&self) -> usize {
        self.largest_batch.load(Ordering::Relaxed)
    }

    /// Salt and hash of a device's credential.
    pub(crate) async fn credential(
        &self,
        device: &DeviceAddress,
    ) -> Result<Option<Credential>, StoreError> {
        self.call(device.clone(), credential).await
    }

    /// As [`crate::storage::Store::take_bundle`].
    pub(crate) async fn take_bundle(
        &self,
        device: &DeviceAddress,
        consume: bool,
    ) -> Result<Option<BundleParts>, StoreError> {
        self.call((device.clone(), consume), |tx, (device, consume)| {
            take_bundle(tx, device, *consume)
        })
        .await
    }

    async fn call<A: Send + 'static, T: Send + 'static>(
        &self,
        args: A,
        work: fn(&Transaction<'_>, &A) -> Result<T, rusqlite::Error>,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Request {
            args,
            work,
            result: None,
            reply,
        };
        self.jobs.send(Box::new(job)).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// A connection for the fetch path's statements (the floor benchmark uses one too).
pub(crate) fn connect(path: &Path) -> Result<Connection, rusqlite::Error> {
    connect_waiting(path, BUSY_TIMEOUT)
}

fn connect_waiting(path: &Path, busy_timeout: Duration) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // The checkpointer thread does this connection's checkpoints (`sqlite_checkpointer`).
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn gone() -> StoreError {
    StoreError::HotPath("the SQLite thread has stopped".into())
}

fn serve(mut conn: Connection, queue: Receiver<Box<dyn Job>>, largest_batch: &AtomicUsize) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        largest_batch.fetch_max(batch.len(), Ordering::Relaxed);
        run_batch(&mut conn, batch);
    }
}

fn in_transaction(conn: &mut Connection, jobs: &mut [Box<dyn Job>]) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for job in jobs.iter_mut() {
        job.run(&tx)?;
    }
    tx.commit()
}

/// Runs `batch` in one transaction and answers after its commit. If anything fails, the
/// whole transaction is rolled back and each job runs again alone, so one failing request
/// fails only itself; but if the database stayed locked for the whole busy timeout, every
/// job gets that error at once (alone, each would wait the timeout again).
fn run_batch(conn: &mut Connection, mut batch: Vec<Box<dyn Job>>) {
    let error = match in_transaction(conn, &mut batch) {
        Ok(()) => {
            for job in batch {
                job.answer(Ok(()));
            }
            return;
        }
        Err(e) => e,
    };
    if is_busy(&error) {
        let message = error.to_string();
        for job in batch {
            job.answer(Err(StoreError::HotPath(message.clone())));
        }
        return;
    }
    for mut job in batch {
        let alone = in_transaction(conn, std::slice::from_mut(&mut job));
        job.answer(alone.map_err(StoreError::from));
    }
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

pub(crate) fn credential(
    tx: &Transaction<'_>,
    device: &DeviceAddress,
) -> Result<Option<Credential>, rusqlite::Error> {
    tx.prepare_cached(
        "SELECT credential_salt, credential_hash FROM ks_devices \
         WHERE user_id = ?1 AND device_id = ?2",
    )?
    .query_row(params![device.user_id(), device.device], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .optional()
}

pub(crate) fn take_bundle(
    tx: &Transaction<'_>,
    device: &DeviceAddress,
    consume: bool,
) -> Result<Option<BundleParts>, rusqlite::Error> {
    let key = params![device.user_id(), device.device];
    let Some((identity_key, certificate, signed_prekey, binding)) = tx
        .prepare_cached(
            "SELECT d.identity_key, d.certificate, s.encoded, d.binding FROM ks_devices d \
             JOIN ks_signed_prekeys s ON s.user_id = d.user_id AND s.device_id = d.device_id \
             WHERE d.user_id = ?1 AND d.device_id = ?2",
        )?
        .query_row(key, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?
    else {
        return Ok(None);
    };
    let take = |sql: &str| -> Result<Option<Vec<u8>>, rusqlite::Error> {
        tx.prepare_cached(sql)?
            .query_row(key, |r| r.get(0))
            .optional()
    };
    let (mut one_time_prekey, mut kem_prekey) = (None, None);
    if consume {
        one_time_prekey = take(
            "DELETE FROM ks_one_time_prekeys WHERE user_id = ?1 AND device_id = ?2 AND \
             key_id = (SELECT key_id FROM ks_one_time_prekeys WHERE user_id = ?1 AND \
             device_id = ?2 ORDER BY key_id LIMIT 1) RETURNING encoded",
        )?;
        kem_prekey = take(
            "DELETE FROM ks_kem_prekeys WHERE user_id = ?1 AND device_id = ?2 AND \
             key_id = (SELECT key_id FROM ks_kem_prekeys WHERE user_id = ?1 AND \
             device_id = ?2 ORDER BY key_id LIMIT 1) RETURNING encoded",
        )?;
    }
    if kem_prekey.is_none() {
        kem_prekey = take(
            "SELECT encoded FROM ks_last_resort_kem_prekeys WHERE user_id = ?1 AND device_id = ?2",
        )?;
    }
    Ok(Some(BundleParts {
        identity_key,
        binding,
        certificate,
        signed_prekey,
        one_time_prekey,
        kem_prekey,
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::storage::Store;

    /// A fresh migrated database with one device holding `one_time` one-time prekeys,
    /// `kem` one-time KEM prekeys and a last-resort KEM prekey.
    async fn database(name: &str, one_time: u32, kem: u32) -> (std::path::PathBuf, Store) {
        let dir = std::env::temp_dir().join(format!("ks-hot-path-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(None, &dir, 2).await.unwrap();
        let conn = Connection::open(dir.join("keyserver.db")).unwrap();
        conn.execute_batch(
            "INSERT INTO ks_accounts (user_id, account_key, created_at) VALUES ('alice', x'01', 0);
             INSERT INTO ks_devices (user_id, device_id, identity_key, certificate,
                 credential_salt, credential_hash, created_at)
                 VALUES ('alice', 1, x'02', x'03', x'04', x'05', 0);
             INSERT INTO ks_signed_prekeys VALUES ('alice', 1, 1, x'06');
             INSERT INTO ks_last_resort_kem_prekeys VALUES ('alice', 1, 1, x'07');",
        )
        .unwrap();
        for id in 0..one_time {
            conn.execute(
                "INSERT INTO ks_one_time_prekeys VALUES ('alice', 1, ?1, ?2)",
                params![id, id.to_be_bytes().to_vec()],
            )
            .unwrap();
        }
        for id in 0..kem {
            conn.execute(
                "INSERT INTO ks_kem_prekeys VALUES ('alice', 1, ?1, ?2)",
                params![id, id.to_be_bytes().to_vec()],
            )
            .unwrap();
        }
        (dir, store)
    }

    #[tokio::test]
    async fn full_batches_serve_each_key_once_and_stop_at_max_batch() {
        const ONE_TIME: u32 = 2 * MAX_BATCH as u32 + 10;
        const KEM: u32 = MAX_BATCH as u32;
        const FETCHES: usize = 3 * MAX_BATCH + 5;
        let (dir, store) = database("batches", ONE_TIME, KEM).await;
        let Store::Sqlite(_, hot_path) = &store else {
            unreachable!("Store::open(None, ..) opens SQLite")
        };
        let alice = DeviceAddress::new("alice", 1).unwrap();

        // Another connection holds the write lock while every request queues up, so the
        // thread finds them all waiting: full batches, then the rest.
        let blocker = Connection::open(dir.join("keyserver.db")).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let fetches = futures_util::future::join_all(
            (0..FETCHES).map(|_| hot_path.take_bundle(&alice, true)),
        );
        let release = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            blocker.execute_batch("COMMIT").unwrap();
        };
        let (bundles, ()) = tokio::join!(fetches, release);

        let mut one_time = HashSet::new();
        let (mut kem, mut last_resort) = (HashSet::new(), 0);
        for bundle in bundles {
            let bundle = bundle.unwrap().expect("the device has a bundle");
            if let Some(key) = bundle.one_time_prekey {
                assert!(one_time.insert(key), "a one-time prekey served twice");
            }
            match bundle.kem_prekey.as_deref() {
                Some([0x07]) => last_resort += 1,
                Some(key) => assert!(kem.insert(key.to_vec()), "a KEM prekey served twice"),
                None => panic!("no KEM prekey at all"),
            }
        }
        assert_eq!(
            one_time.len(),
            ONE_TIME as usize,
            "every one-time prekey served once"
        );
        assert_eq!(kem.len(), KEM as usize);
        assert_eq!(last_resort, FETCHES - KEM as usize);
        assert_eq!(
            hot_path.largest_batch(),
            MAX_BATCH,
            "a batch never exceeds MAX_BATCH"
        );

        let unknown = DeviceAddress::new("bob", 1).unwrap();
        assert!(
            hot_path
                .take_bundle(&unknown, true)
                .await
                .unwrap()
                .is_none()
        );
        let credential = hot_path.credential(&alice).await.unwrap();
        assert_eq!(credential, Some((vec![0x04], vec![0x05])));
        store.close().await;
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn the_checkpointer_writes_the_wal_back_off_the_fetch_path() {
        let (dir, store) = database("checkpoint", 200, 0).await;
        let Store::Sqlite(_, hot_path) = &store else {
            unreachable!("Store::open(None, ..) opens SQLite")
        };
        let alice = DeviceAddress::new("alice", 1).unwrap();
        for _ in 0..200 {
            hot_path.take_bundle(&alice, true).await.unwrap();
        }
        let deadline =
            std::time::Instant::now() + crate::sqlite_checkpointer::CHECKPOINT_INTERVAL * 5;
        while hot_path.checkpointer.frames() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint within 5 intervals"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        store.close().await;
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_database_locked_past_the_busy_timeout_fails_the_batch_at_once() {
        const WAIT: Duration = Duration::from_millis(200);
        const FETCHES: usize = 30;
        let (dir, store) = database("busy", 40, 0).await;
        let hot_path = SqliteHotPath::open_waiting(&dir.join("keyserver.db"), WAIT).unwrap();
        let alice = DeviceAddress::new("alice", 1).unwrap();
        let blocker = Connection::open(dir.join("keyserver.db")).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let started = std::time::Instant::now();
        let results = futures_util::future::join_all(
            (0..FETCHES).map(|_| hot_path.take_bundle(&alice, true)),
        )
        .await;
        // Retried one by one, the batch would wait the timeout once per fetch.
        assert!(started.elapsed() < WAIT * 5, "took {:?}", started.elapsed());
        for result in results {
            assert!(matches!(result, Err(StoreError::HotPath(_))), "{result:?}");
        }
        blocker.execute_batch("COMMIT").unwrap();
        // Nothing was consumed: the next fetch gets the first key.
        let bundle = hot_path.take_bundle(&alice, true).await.unwrap().unwrap();
        assert_eq!(bundle.one_time_prekey, Some(0u32.to_be_bytes().to_vec()));
        drop(hot_path);
        store.close().await;
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn an_in_memory_database_is_refused() {
        let result = Store::open(Some("sqlite::memory:"), Path::new("/nonexistent"), 1).await;
        assert!(
            matches!(result, Err(KeyserverError::Config(ref m)) if m.contains("must be a file")),
            "{result:?}"
        );
    }
}
