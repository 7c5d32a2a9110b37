//! Tools around the servers, kept out of the server crates so their clients (WebSocket,
//! HTTP) are not server dependencies:
//!
//! - `relay-load` (`src/bin/relay-load.rs`): load generator and benchmark for the relay.
//! - `e2ee-keyserver-bench` (`src/bin/keyserver-bench.rs`): the key server's benchmark.
//! - [`relay_client::RelayClient`]: a minimal relay client that speaks only the wire format,
//!   for the relay's and the whole stack's tests. Apps use the SDK's client.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod clock;
pub mod relay_client;

pub use relay_client::{ClientError, RelayClient};
