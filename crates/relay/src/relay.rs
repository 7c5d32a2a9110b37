//! The relay's shared state and its start-up.

use std::{sync::Arc, time::Duration};

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use ed25519_dalek::VerifyingKey;

use crate::{
    clock::now_ms,
    config::Config,
    ratelimit::RateLimiter,
    routing::{ClusterConfig, Routing},
    store::{Store, StoreError, StoreLimits},
    wire::DeviceAddress,
    writer::Writer,
};

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The ticket public key is not 32 bytes of hex or base64url, or not a valid point.
    #[error("invalid ticket public key: {0}")]
    TicketKey(&'static str),
    /// Storage could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Redis could not be reached.
    #[error("redis: {0}")]
    Redis(String),
    /// The data directory could not be created.
    #[error("data directory: {0}")]
    DataDir(#[from] std::io::Error),
}

/// Limits and switches sessions consult.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) max_connections: usize,
    pub(crate) presence_public: bool,
}

/// Everything a running relay shares between its connections.
#[derive(Debug)]
pub struct Relay {
    pub(crate) settings: Settings,
    pub(crate) routing: Arc<Routing>,
    pub(crate) store: Store,
    pub(crate) writer: Writer,
    pub(crate) limiter: RateLimiter,
    pub(crate) ticket_key: VerifyingKey,
}

/// Parses a 32-byte Ed25519 public key given as 64 hex digits, standard base64 with padding
/// (what the key server's `GET /v1/ticket-key` returns, so its `public_key` can be passed as
/// is) or unpadded base64url.
pub fn parse_ticket_key(text: &str) -> Result<VerifyingKey, StartError> {
    let text = text.trim();
    let bytes = if text.len() == 64 {
        hex::decode(text).map_err(|_| StartError::TicketKey("bad hex"))?
    } else {
        STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text))
            .map_err(|_| {
                StartError::TicketKey("neither 64 hex digits, standard base64 nor base64url")
            })?
    };
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StartError::TicketKey("not 32 bytes"))?;
    VerifyingKey::from_bytes(&arr).map_err(|_| StartError::TicketKey("not a valid Ed25519 key"))
}

impl Relay {
    /// Opens storage (running migrations), connects to Redis if configured, and starts the
    /// writer and the expiry sweeper. Serve it with [`crate::router`].
    pub async fn start(config: &Config) -> Result<Arc<Self>, StartError> {
        let text = config
            .ticket_public_key
            .as_deref()
            .ok_or(StartError::TicketKey(
                "--relay-ticket-public-key is required",
            ))?;
        Self::start_with_ticket_key(config, parse_ticket_key(text)?).await
    }

    /// Like [`Relay::start`], with the ticket key given directly (the all-in-one server
    /// passes its own key server's key; `config.ticket_public_key` is ignored).
    pub async fn start_with_ticket_key(
        config: &Config,
        ticket_key: VerifyingKey,
    ) -> Result<Arc<Self>, StartError> {
        let url = config.database_url();
        if config.database_url.is_none() {
            std::fs::create_dir_all(&config.data_dir)?;
        }
        let store = Store::open(&url, &config.database_schema, config.sqlite_sync).await?;
        let routing = match &config.redis_url {
            Some(url) => Routing::join(ClusterConfig {
                url,
                prefix: &config.redis_prefix,
                node_id: config.node_id.as_deref(),
            })
            .await
            .map_err(|e| StartError::Redis(e.to_string()))?,
            None => Routing::local(),
        };
        let limits = StoreLimits {
            max_mailbox: config.max_mailbox,
            ttl_ms: config.ttl_secs.saturating_mul(1000),
            dedup_ms: config
                .dedup_window_secs
                .min(config.ttl_secs)
                .saturating_mul(1000),
        };
        let writer = Writer::spawn(store.clone(), routing.clone(), limits);
        let relay = Arc::new(Relay {
            settings: Settings {
                max_connections: config.max_connections,
                presence_public: config.presence_public,
            },
            routing,
            store,
            writer,
            limiter: RateLimiter::new(config.send_rate, config.send_burst),
            ticket_key,
        });
        let weak = Arc::downgrade(&relay);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(relay) = weak.upgrade() else { break };
                relay.writer.expire(now_ms()).await;
                relay.limiter.prune(std::time::Instant::now());
                relay.routing.revocations.prune(now_ms());
            }
        });
        Ok(relay)
    }

    /// Number of rows in a device's mailbox (operations and tests).
    pub async fn mailbox_len(&self, device: &DeviceAddress) -> Result<u64, StoreError> {
        self.store.mailbox_len(device).await
    }

    /// A device was removed at `removed_at_ms` (Unix ms): from now on its tickets issued
    /// until then are refused at the upgrade (401 `ticket_revoked`), and its connection on
    /// this process is closed at once (close code 4005). The all-in-one server calls this
    /// when its key server removes a device; relays in a cluster learn removals from Redis.
    /// Returns whether the removal was news.
    pub fn revoke_device(&self, device: &DeviceAddress, removed_at_ms: u64) -> bool {
        self.routing.revoke(device, removed_at_ms)
    }

    /// Open WebSocket connections on this process.
    pub fn connections(&self) -> usize {
        self.routing.hub.open_connections()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ticket_key_parses_as_the_key_server_publishes_it_and_as_hex_or_base64url() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key();
        let bytes = key.to_bytes();
        for text in [
            STANDARD.encode(bytes),
            format!("  {}\n", STANDARD.encode(bytes)),
            hex::encode(bytes),
            URL_SAFE_NO_PAD.encode(bytes),
        ] {
            assert_eq!(parse_ticket_key(&text).unwrap(), key, "{text:?}");
        }
        for bad in [
            String::new(),
            "zz".repeat(32),
            STANDARD.encode([9u8; 31]),
            STANDARD.encode([9u8; 33]),
            "not a key".to_owned(),
        ] {
            assert!(parse_ticket_key(&bad).is_err(), "{bad:?}");
        }
    }
}
