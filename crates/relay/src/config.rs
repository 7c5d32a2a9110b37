//! Configuration: command-line flags with environment fallbacks (`--help` lists them all).
//!
//! Every flag is prefixed `--relay-` (environment `E2EE_RELAY_*`) so the all-in-one server can
//! flatten this next to the key server's `--keyserver-*` flags.

pub use crate::store::SqliteSync;
use std::path::PathBuf;

use crate::limits::{
    DEFAULT_DEDUP_WINDOW_SECS, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_MAILBOX, DEFAULT_SEND_BURST,
    DEFAULT_SEND_RATE_PER_SEC, DEFAULT_TTL_SECS,
};

/// Relay settings. Every flag can also be given as the environment variable shown in `--help`.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "relay")]
pub struct Config {
    /// Directory for the embedded SQLite database (created if missing). Ignored when
    /// --relay-database-url is given.
    #[arg(
        id = "relay_data_dir",
        long = "relay-data-dir",
        env = "E2EE_RELAY_DATA_DIR",
        default_value = "data"
    )]
    pub data_dir: PathBuf,

    /// Mailbox database: `sqlite://PATH` or `postgres://USER@HOST/DB`. Default: the SQLite file
    /// relay.db under --relay-data-dir.
    #[arg(
        id = "relay_database_url",
        long = "relay-database-url",
        env = "E2EE_RELAY_DATABASE_URL"
    )]
    pub database_url: Option<String>,

    /// PostgreSQL schema holding the relay's tables (created if missing), so the relay and
    /// the key server can share one database without their migrations colliding.
    #[arg(
        id = "relay_database_schema",
        long = "relay-database-schema",
        env = "E2EE_RELAY_DATABASE_SCHEMA",
        default_value = "relay"
    )]
    pub database_schema: String,

    /// SQLite durability: `full` fsyncs the WAL on every commit (survives power loss);
    /// `normal` survives process crashes only. Group commit amortises the fsync either way.
    #[arg(
        id = "relay_sqlite_sync",
        long = "relay-sqlite-sync",
        env = "E2EE_RELAY_SQLITE_SYNC",
        value_enum,
        default_value_t = SqliteSync::Full
    )]
    pub sqlite_sync: SqliteSync,

    /// Redis URL for multi-node operation (presence and routing to the node holding a
    /// recipient's socket), e.g. redis://127.0.0.1:6379. Without it the relay is single-node.
    #[arg(
        id = "relay_redis_url",
        long = "relay-redis-url",
        env = "E2EE_RELAY_REDIS_URL"
    )]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key and channel, so several deployments (or test runs) can share
    /// one Redis.
    #[arg(
        id = "relay_redis_prefix",
        long = "relay-redis-prefix",
        env = "E2EE_RELAY_REDIS_PREFIX",
        default_value = "e2ee-relay"
    )]
    pub redis_prefix: String,

    /// This node's id in the cluster (default: random). Must be unique among live nodes.
    #[arg(
        id = "relay_node_id",
        long = "relay-node-id",
        env = "E2EE_RELAY_NODE_ID"
    )]
    pub node_id: Option<String>,

    /// The key server's Ed25519 ticket public key, 32 bytes: the `public_key` of its
    /// `GET /v1/ticket-key` as is (standard base64, 44 characters), hex (64) or unpadded
    /// base64url (43). Connections must present a ticket it signed.
    /// Required by the standalone relay; the all-in-one server uses its own key server's key.
    #[arg(
        id = "relay_ticket_public_key",
        long = "relay-ticket-public-key",
        env = "E2EE_RELAY_TICKET_PUBLIC_KEY"
    )]
    pub ticket_public_key: Option<String>,

    /// Most envelopes one device mailbox holds; sends to a full mailbox are refused for it.
    #[arg(id = "relay_max_mailbox", long = "relay-max-mailbox", env = "E2EE_RELAY_MAX_MAILBOX", default_value_t = DEFAULT_MAX_MAILBOX)]
    pub max_mailbox: u64,

    /// Sustained deliveries per second a device may send (token bucket refill rate).
    #[arg(id = "relay_send_rate", long = "relay-send-rate", env = "E2EE_RELAY_SEND_RATE", default_value_t = DEFAULT_SEND_RATE_PER_SEC)]
    pub send_rate: u32,

    /// Token bucket capacity: the burst of deliveries a device may send at once.
    #[arg(id = "relay_send_burst", long = "relay-send-burst", env = "E2EE_RELAY_SEND_BURST", default_value_t = DEFAULT_SEND_BURST)]
    pub send_burst: u32,

    /// Most concurrent WebSocket connections; more are refused with HTTP 503.
    #[arg(id = "relay_max_connections", long = "relay-max-connections", env = "E2EE_RELAY_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Seconds an undelivered envelope is kept before it expires (default 30 days).
    #[arg(id = "relay_ttl_secs", long = "relay-ttl-secs", env = "E2EE_RELAY_TTL_SECS", default_value_t = DEFAULT_TTL_SECS)]
    pub ttl_secs: u64,

    /// Seconds a (sender, message id) pair is remembered to drop retried sends (default 7
    /// days, never longer than the TTL). A retry later than this is stored again; recipients'
    /// sessions refuse the replayed ciphertext.
    #[arg(id = "relay_dedup_window_secs", long = "relay-dedup-window-secs", env = "E2EE_RELAY_DEDUP_WINDOW_SECS", default_value_t = DEFAULT_DEDUP_WINDOW_SECS)]
    pub dedup_window_secs: u64,

    /// Let any authenticated device read any user's presence. Off by default: a device sees
    /// only the presence of its own user's devices.
    #[arg(
        id = "relay_presence_public",
        long = "relay-presence-public",
        env = "E2EE_RELAY_PRESENCE_PUBLIC",
        default_value_t = false
    )]
    pub presence_public: bool,
}

impl Config {
    /// The effective database URL.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}", self.data_dir.join("relay.db").display()),
        }
    }

    /// A configuration with defaults for everything but the ticket key (tests, embedding).
    pub fn with_ticket_key(ticket_public_key: impl Into<String>) -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            database_url: None,
            database_schema: "relay".into(),
            sqlite_sync: SqliteSync::Full,
            redis_url: None,
            redis_prefix: "e2ee-relay".into(),
            node_id: None,
            ticket_public_key: Some(ticket_public_key.into()),
            max_mailbox: DEFAULT_MAX_MAILBOX,
            send_rate: DEFAULT_SEND_RATE_PER_SEC,
            send_burst: DEFAULT_SEND_BURST,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            ttl_secs: DEFAULT_TTL_SECS,
            dedup_window_secs: DEFAULT_DEDUP_WINDOW_SECS,
            presence_public: false,
        }
    }
}
