//! The blind ciphertext relay.
//!
//! Devices connect over WebSocket with a connection ticket from the key server, send batches
//! of encrypted envelopes, and receive theirs from a durable per-device mailbox. The relay
//! sees routing metadata (sender and recipient addresses, sizes, times) and opaque bytes,
//! nothing else, and logs only the former. The wire format is in `docs/relay.md`.
//!
//! ```text
//!  sender ──SEND──► session ──► writer (group commit: one transaction, many senders)
//!                      ▲          │ commit ok
//!         SEND_RESULT ─┘          ├──► SEND_RESULT to every waiting sender
//!                                 └──► hub ──► recipient session ──DELIVER──► recipient
//!                                       └─► (multi-node) Redis ──► node holding the socket
//!  recipient ──ACK──► writer: rows deleted
//! ```
//!
//! Embedded default: SQLite (WAL) in a data directory. Scale-out: PostgreSQL mailboxes and
//! Redis for presence and cross-node routing.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod clock;
mod cluster;
mod config;
mod error;
mod http;
mod hub;
pub mod limits;
mod migrations;
mod pipeline;
mod ratelimit;
mod relay;
mod revocations;
mod routing;
mod session;
mod store;
pub use e2ee_relay_wire as wire;

pub use cluster::Routed;
mod writer;

pub use config::{Config, SqliteSync};
pub use error::ApiError;
pub use http::{WS_PATH, router, standalone_router};
pub use relay::{Relay, StartError, parse_ticket_key};
pub use revocations::REVOCATION_POLL;
pub use session::{
    CLOSE_GOING_AWAY, CLOSE_PROTOCOL, CLOSE_REPLACED, CLOSE_REVOKED, CLOSE_TICKET_EXPIRED,
    CLOSE_TOO_BIG, CLOSE_UNAVAILABLE, SessionEnd, run_session,
};
pub use store::StoreError;

/// Starts a relay from `config` and serves it on `listen` until `shutdown` resolves.
pub async fn serve(
    listen: std::net::SocketAddr,
    config: Config,
    http: e2ee_http_serve::HttpLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let relay = Relay::start(&config).await?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "relay listening");
    e2ee_http_serve::serve(listener, standalone_router(relay), http, shutdown).await?;
    Ok(())
}

/// Why [`serve`] stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Start-up failed.
    #[error(transparent)]
    Start(#[from] StartError),
    /// Binding or serving failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Drops a PostgreSQL schema the relay created, and everything in it (tests and the load
/// tool clean up with this). The name must be one [`Config::database_schema`] accepts.
pub async fn drop_postgres_schema(url: &str, schema: &str) -> Result<(), StoreError> {
    store::PgStore::drop_schema(url, schema).await
}
