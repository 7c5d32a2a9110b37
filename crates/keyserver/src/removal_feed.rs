//! Tells relays outside this process about device removals, through the relay cluster's
//! Redis (the sorted set `e2ee_ticket::removals` describes; relays read it every second).
//!
//! The removal is committed to the database before it is written here. If Redis is down the
//! removal still stands (credential gone, keys gone); the relays then refuse the device's
//! old tickets only when they expire, and the failure is logged as an error.

use e2ee_ticket::removals::{REMOVAL_RETENTION_MS, removal_member, removals_key};
use redis::aio::MultiplexedConnection;

use crate::{DeviceRemoval, error::KeyserverError};

/// The connection to the relay cluster's Redis.
#[derive(Clone)]
pub(crate) struct RemovalFeed {
    con: MultiplexedConnection,
    key: String,
}

impl std::fmt::Debug for RemovalFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemovalFeed")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl RemovalFeed {
    /// Connects to Redis at `url`; removals go under the relay cluster's `prefix`.
    pub(crate) async fn connect(url: &str, prefix: &str) -> Result<Self, KeyserverError> {
        let redis = |e: redis::RedisError| KeyserverError::Redis(e.to_string());
        let client = redis::Client::open(url).map_err(redis)?;
        let con = client
            .get_multiplexed_async_connection()
            .await
            .map_err(redis)?;
        Ok(Self {
            con,
            key: removals_key(prefix),
        })
    }

    /// Adds the removal (keeping the later time if the device is there already) and trims
    /// removals whose tickets have all expired.
    pub(crate) async fn publish(&self, removal: &DeviceRemoval) {
        let mut con = self.con.clone();
        let horizon = removal.removed_at_ms.saturating_sub(REMOVAL_RETENTION_MS);
        let result: Result<(), redis::RedisError> = redis::pipe()
            .cmd("ZADD")
            .arg(&self.key)
            .arg("GT")
            .arg(removal.removed_at_ms)
            .arg(removal_member(&removal.device))
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&self.key)
            .arg("-inf")
            .arg(format!("({horizon}"))
            .ignore()
            .query_async(&mut con)
            .await;
        if let Err(e) = result {
            tracing::error!(
                error = %e,
                device = %removal.device,
                "could not tell relays about a device removal; its tickets stay valid until they expire"
            );
        }
    }
}
