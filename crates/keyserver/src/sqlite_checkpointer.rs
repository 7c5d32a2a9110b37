//! WAL checkpoints of the key server's SQLite file, off the fetch path.
//!
//! A connection whose commit takes the WAL past `wal_autocheckpoint` pages checkpoints
//! inline, writing pages back and syncing the database file inside that commit. On the fetch
//! path's one thread (`sqlite_hot_path`) that stalled every queued fetch: paced at a fifth of
//! saturation, p99 went from 3.5 ms to 50-160 ms in two runs of three. So that connection
//! never checkpoints; this thread does, in `PASSIVE` mode (writers carry on meanwhile),
//! every [`CHECKPOINT_INTERVAL`].

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc::{self, RecvTimeoutError, Sender},
    },
    thread,
    time::Duration,
};

use rusqlite::Connection;

/// How often the WAL is written back into the database file.
pub(crate) const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// The running checkpointer; its thread stops when this is dropped.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    _stop: Sender<()>,
    /// Sum of the frames each checkpoint reported as in the database file (a frame counts
    /// again at every checkpoint until a writer restarts the WAL).
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "read by the tests; to be a metric with /metrics")
    )]
    frames: Arc<AtomicU64>,
}

impl Checkpointer {
    /// Opens its own connection to `path` and starts checkpointing.
    pub(crate) fn start(path: &Path, busy_timeout: Duration) -> std::io::Result<Self> {
        let conn = Connection::open(path)
            .and_then(|c| c.busy_timeout(busy_timeout).map(|()| c))
            .map_err(std::io::Error::other)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let frames = Arc::new(AtomicU64::new(0));
        let counted = frames.clone();
        thread::Builder::new()
            .name("keyserver-sqlite-checkpoint".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_INTERVAL)
                {
                    match checkpoint(&conn) {
                        Ok(n) => {
                            counted.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(e) => tracing::warn!(error = %e, "SQLite WAL checkpoint failed"),
                    }
                }
            })?;
        Ok(Self {
            _stop: stop,
            frames,
        })
    }

    /// See the field.
    #[cfg(test)]
    pub(crate) fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }
}

/// One passive checkpoint; returns the WAL frames now in the database file.
fn checkpoint(conn: &Connection) -> Result<u64, rusqlite::Error> {
    let written: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(2))?;
    Ok(u64::try_from(written).unwrap_or(0))
}
