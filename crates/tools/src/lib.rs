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

/// What a key server would serve for a registered client device: its identity and binding
/// (from its certificate), its signed prekey and its first one-time keys of each kind.
pub fn bundle_bytes(
    registration: &e2ee_client::Registration,
    upload: &e2ee_client::PreKeyUpload,
) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
    use e2ee_core::{
        Codec, KemPreKeyPublic, OneTimePreKeyPublic, PreKeyBundle, SignedPreKeyPublic,
        device::DeviceCertificate,
    };
    let cert = DeviceCertificate::from_bytes(&registration.device_certificate)?;
    let first = |keys: &[Vec<u8>]| keys.first().cloned().unwrap_or_default();
    Ok(PreKeyBundle {
        identity: *cert.identity(),
        binding: cert.binding().clone(),
        signed_prekey: SignedPreKeyPublic::from_bytes(&upload.signed_prekey)?,
        one_time_prekey: Some(OneTimePreKeyPublic::from_bytes(&first(
            &upload.one_time_prekeys,
        ))?),
        kem_prekey: Some(KemPreKeyPublic::from_bytes(&first(&upload.kem_prekeys))?),
    }
    .to_bytes())
}
