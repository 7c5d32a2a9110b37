//! # e2ee-keyserver
//!
//! The prekey server of the E2EE SDK: accounts (with their account identity key), devices
//! (each admitted by an account-signed [`e2ee_core::device::DeviceCertificate`]), signed
//! X25519 prekeys, one-time X25519 prekeys, signed ML-KEM prekeys (one-time and last-resort),
//! signed device lists and relay connection tickets, over HTTP + JSON. Every key and
//! signature is checked with `e2ee-core` on upload; bundles are served as canonical
//! [`e2ee_core::PreKeyBundle`] bytes (base64) plus their parts, consuming one one-time key of
//! each kind per device atomically. `docs/keyserver.md` describes the API and operations; the
//! server serves its OpenAPI document at `GET /openapi.json`.
//!
//! ```text
//!  client ──HTTP/JSON──▶ axum router ──▶ handlers (verify with e2ee-core) ──▶ Store
//!                         │ body limit, trace, timeout, catch-panic           ├─ SQLite (default, WAL)
//!                         └ rate limiter (bundle fetches per account→user)    └─ PostgreSQL (by URL)
//! ```
//!
//! ## Embedding (the all-in-one binary)
//!
//! * [`Config`]: `clap::Args` (flatten it into your parser; every flag is prefixed
//!   `--keyserver-` and has an `E2EE_KEYSERVER_*` environment fallback).
//! * [`Keyserver::start`] opens the database, runs the migrations, loads or creates the
//!   ticket signing key and returns a [`Keyserver`]: [`Keyserver::router`] is the
//!   `axum::Router` to serve, [`Keyserver::ticket_verifying_key`] the key the relay in the
//!   same process verifies tickets with.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = e2ee_keyserver::Config::default();
//! let keyserver = e2ee_keyserver::Keyserver::start(&config).await?;
//! let relay_key = keyserver.ticket_verifying_key();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, keyserver.router()).await?;
//! # let _ = relay_key; Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod auth;
mod clock;
mod config;
mod consent;
mod error;
mod fetch_floor;
mod http;
mod jwt;
mod openapi;
mod ratelimit;
mod removal_feed;
mod sqlite_checkpointer;
mod sqlite_hot_path;
mod storage;

use std::path::Path;

use base64::{Engine, engine::general_purpose::STANDARD};
use e2ee_encoding::DeviceAddress;
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand_core::OsRng;
use zeroize::Zeroizing;

pub use crate::{
    config::Config,
    error::KeyserverError,
    fetch_floor::{FloorDatabase, FloorRun, measure_fetch_floor},
    jwt::sign_app_token,
};
use crate::{
    http::{AppState, Inner},
    jwt::{AppKey, JwtVerifier},
    ratelimit::RateLimiter,
    storage::Store,
};

/// File under the data directory holding the generated ticket signing seed (base64).
pub const TICKET_KEY_FILE: &str = "ticket_signing_key";

/// A device the key server removed, and when: relays refuse its tickets issued until then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRemoval {
    /// The removed device.
    pub device: DeviceAddress,
    /// Unix milliseconds of the removal.
    pub removed_at_ms: u64,
}

/// A started key server: its router and its ticket verifying key.
#[derive(Debug, Clone)]
pub struct Keyserver {
    router: axum::Router,
    ticket_key: VerifyingKey,
    state: AppState,
}

impl Keyserver {
    /// Opens storage (running migrations), loads the ticket key and builds the router.
    pub async fn start(config: &Config) -> Result<Self, KeyserverError> {
        let ticket_key = load_ticket_key(config).await?;
        let jwt = match config.jwt_public_key.as_deref() {
            Some(text) => {
                let bytes = STANDARD
                    .decode(text.trim())
                    .map_err(|_| KeyserverError::Config("JWT public key is not base64".into()))?;
                let key = AppKey::from_bytes(&bytes).ok_or_else(|| {
                    KeyserverError::Config(
                        "JWT public key must be a 32-byte Ed25519 key or a SEC1 P-256 point".into(),
                    )
                })?;
                Some(JwtVerifier {
                    key,
                    issuer: config.jwt_issuer.clone(),
                    audience: config.jwt_audience.clone(),
                })
            }
            None => None,
        };
        let store = Store::open(
            config.database_url.as_deref(),
            &config.data_dir,
            config.db_max_connections,
        )
        .await?;
        let removal_feed = match config.redis_url.as_deref() {
            Some(url) => Some(removal_feed::RemovalFeed::connect(url, &config.redis_prefix).await?),
            None => None,
        };
        let state = AppState::new(Inner {
            store,
            ticket_key: ticket_key.clone(),
            ticket_lifetime_secs: config.ticket_lifetime_secs,
            limiter: RateLimiter::per_minute(config.bundle_burst, config.bundle_per_minute),
            one_time_limiter: RateLimiter::per_hour(
                config.one_time_burst,
                config.one_time_per_hour,
            ),
            jwt,
            max_stored_prekeys: i64::from(config.max_stored_prekeys),
            device_removed: std::sync::OnceLock::new(),
            removal_feed,
        });
        Ok(Self {
            router: http::router(state.clone(), config.max_body_bytes),
            ticket_key: ticket_key.verifying_key(),
            state,
        })
    }

    /// The router to serve (it carries its own state and layers).
    pub fn router(&self) -> axum::Router {
        self.router.clone()
    }

    /// The public key relays verify connection tickets with.
    pub fn ticket_verifying_key(&self) -> VerifyingKey {
        self.ticket_key
    }

    /// Runs `hook(removal)` after every device removal, so a relay in the same process can
    /// refuse the device's tickets and close its connection at once. Only the first hook set
    /// is kept.
    pub fn on_device_removed(&self, hook: impl Fn(&DeviceRemoval) + Send + Sync + 'static) {
        let _ = self
            .state
            .device_removed
            .set(http::DeviceRemovedHook(Box::new(hook)));
    }

    /// Closes the database pool (after serving has stopped).
    pub async fn close(&self) {
        self.state.store.close().await;
    }
}

fn decode_key32(text: &str, what: &str) -> Result<Zeroizing<[u8; 32]>, KeyserverError> {
    let bytes = Zeroizing::new(
        STANDARD
            .decode(text.trim())
            .map_err(|_| KeyserverError::Config(format!("{what} is not base64")))?,
    );
    let array: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| KeyserverError::Config(format!("{what} must be 32 bytes")))?;
    Ok(Zeroizing::new(array))
}

/// The ticket signing key: from the configuration, else from the data directory, else newly
/// generated and written there (readable by the owner only).
async fn load_ticket_key(config: &Config) -> Result<SigningKey, KeyserverError> {
    if let Some(text) = config.ticket_key.as_deref() {
        return Ok(SigningKey::from_bytes(&*decode_key32(text, "ticket key")?));
    }
    let path = config.data_dir.join(TICKET_KEY_FILE);
    match tokio::fs::read_to_string(&path).await {
        Ok(text) => Ok(SigningKey::from_bytes(&*decode_key32(
            &text,
            "ticket key file",
        )?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate(&mut OsRng);
            write_secret(&config.data_dir, &path, &STANDARD.encode(key.to_bytes())).await?;
            tracing::info!(path = %path.display(), "generated ticket signing key");
            Ok(key)
        }
        Err(e) => Err(e.into()),
    }
}

async fn write_secret(dir: &Path, path: &Path, text: &str) -> Result<(), KeyserverError> {
    tokio::fs::create_dir_all(dir).await?;
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).await?;
    tokio::io::AsyncWriteExt::write_all(&mut file, text.as_bytes()).await?;
    file.sync_all().await?;
    Ok(())
}
