//! The one tokio runtime every client of the process runs on (the foreign side has none):
//! created on first use, never shut down.

use std::sync::OnceLock;

use crate::E2eeError;

/// Worker threads: the clients' work is I/O-bound, and phones have few cores to spare.
const WORKER_THREADS: usize = 2;

static RUNTIME: OnceLock<std::io::Result<tokio::runtime::Runtime>> = OnceLock::new();

/// The runtime, or why it could not start.
pub(crate) fn runtime() -> Result<&'static tokio::runtime::Runtime, E2eeError> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(WORKER_THREADS)
                .thread_name("e2ee-sdk")
                .enable_all()
                .build()
        })
        .as_ref()
        .map_err(|e| E2eeError::Other {
            detail: format!("the SDK's runtime did not start: {e}"),
        })
}
