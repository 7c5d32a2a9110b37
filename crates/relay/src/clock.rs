//! The wall clock, read in one place: mailbox timestamps and expiry are unix milliseconds,
//! tickets unix seconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in milliseconds (0 if the clock is before 1970).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Unix time in seconds.
pub(crate) fn now_secs() -> u64 {
    now_ms() / 1000
}
