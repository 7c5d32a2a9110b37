//! Configuration: flags with environment fallbacks (clap). Every default starts a working
//! embedded server; the all-in-one binary flattens [`Config`] into its own arguments, which is
//! why every flag carries the `keyserver` prefix where a relay flag could share its name.

use std::path::PathBuf;

/// Key server configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Directory for the embedded SQLite database (`keyserver.db`, WAL mode) and the
    /// generated ticket signing key (`ticket_signing_key`). Created if missing.
    #[arg(
        long = "keyserver-data-dir",
        env = "E2EE_KEYSERVER_DATA_DIR",
        default_value = "data"
    )]
    pub data_dir: PathBuf,

    /// Database URL. `postgres://user@host:5432/db` selects PostgreSQL (scale-out: any number
    /// of key server processes can share it); `sqlite:path.db` a SQLite file. Unset: the
    /// SQLite file under the data directory.
    #[arg(long = "keyserver-database-url", env = "E2EE_KEYSERVER_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Largest number of database connections in the pool.
    #[arg(
        long = "keyserver-db-max-connections",
        env = "E2EE_KEYSERVER_DB_MAX_CONNECTIONS",
        default_value_t = 16
    )]
    pub db_max_connections: u32,

    /// Ed25519 seed (32 bytes, base64) signing relay connection tickets. Give the same seed to
    /// every key server process of a deployment. Unset: read from, or generated into,
    /// `<data dir>/ticket_signing_key` on first start.
    #[arg(
        long = "keyserver-ticket-key",
        env = "E2EE_KEYSERVER_TICKET_KEY",
        hide_env_values = true
    )]
    pub ticket_key: Option<String>,

    /// Lifetime of relay connection tickets, in seconds (at most 86400).
    #[arg(
        long = "keyserver-ticket-lifetime",
        env = "E2EE_KEYSERVER_TICKET_LIFETIME",
        default_value_t = 3600
    )]
    pub ticket_lifetime_secs: u64,

    /// Public key (base64) of the app's own login service: 32-byte Ed25519 (JWT alg EdDSA) or
    /// SEC1 P-256 point, 33 or 65 bytes (alg ES256). When set, registering an account or a
    /// device also requires `Authorization: Bearer <JWT>` signed with it whose `sub` is the
    /// user id, so devices bind to the app's users.
    #[arg(
        long = "keyserver-jwt-public-key",
        env = "E2EE_KEYSERVER_JWT_PUBLIC_KEY"
    )]
    pub jwt_public_key: Option<String>,

    /// Required `iss` claim of app JWTs (unchecked when unset).
    #[arg(long = "keyserver-jwt-issuer", env = "E2EE_KEYSERVER_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Required `aud` claim of app JWTs (unchecked when unset).
    #[arg(long = "keyserver-jwt-audience", env = "E2EE_KEYSERVER_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Bundle fetches one account may make for one target user in a burst (token bucket size).
    #[arg(
        long = "keyserver-bundle-burst",
        env = "E2EE_KEYSERVER_BUNDLE_BURST",
        default_value_t = 20
    )]
    pub bundle_burst: u32,

    /// Sustained bundle fetches per minute one account may make for one target user.
    #[arg(
        long = "keyserver-bundle-per-minute",
        env = "E2EE_KEYSERVER_BUNDLE_PER_MINUTE",
        default_value_t = 10
    )]
    pub bundle_per_minute: u32,

    /// One-time prekeys (of each kind) one account may consume from one target user in a
    /// burst. Past this, bundles are served without one-time keys (last-resort KEM prekey).
    #[arg(
        long = "keyserver-one-time-burst",
        env = "E2EE_KEYSERVER_ONE_TIME_BURST",
        default_value_t = 5
    )]
    pub one_time_burst: u32,

    /// Sustained one-time prekey consumptions per hour one account may make per target user.
    #[arg(
        long = "keyserver-one-time-per-hour",
        env = "E2EE_KEYSERVER_ONE_TIME_PER_HOUR",
        default_value_t = 4
    )]
    pub one_time_per_hour: u32,

    /// Largest request body in bytes (a full batch of 100 KEM prekeys is about 170 KB).
    #[arg(
        long = "keyserver-max-body",
        env = "E2EE_KEYSERVER_MAX_BODY",
        default_value_t = 512 * 1024
    )]
    pub max_body_bytes: usize,

    /// Most one-time prekeys (of each kind) stored per device; uploads beyond are refused.
    #[arg(
        long = "keyserver-max-stored-prekeys",
        env = "E2EE_KEYSERVER_MAX_STORED_PREKEYS",
        default_value_t = 1000
    )]
    pub max_stored_prekeys: u32,

    /// Redis URL of the relay cluster, e.g. redis://127.0.0.1:6379. When set, every device
    /// removal is also written there, so relays outside this process refuse the removed
    /// device's earlier tickets within about a second instead of when they expire.
    #[arg(long = "keyserver-redis-url", env = "E2EE_KEYSERVER_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Key prefix of the relay cluster in Redis (the relays' --relay-redis-prefix).
    #[arg(
        long = "keyserver-redis-prefix",
        env = "E2EE_KEYSERVER_REDIS_PREFIX",
        default_value = "e2ee-relay"
    )]
    pub redis_prefix: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            database_url: None,
            db_max_connections: 16,
            ticket_key: None,
            ticket_lifetime_secs: 3600,
            jwt_public_key: None,
            jwt_issuer: None,
            jwt_audience: None,
            bundle_burst: 20,
            bundle_per_minute: 10,
            one_time_burst: 5,
            one_time_per_hour: 4,
            max_body_bytes: 512 * 1024,
            max_stored_prekeys: 1000,
            redis_url: None,
            redis_prefix: "e2ee-relay".into(),
        }
    }
}
