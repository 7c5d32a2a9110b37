//! [`ClientConfig`]: where the servers are and where the device's store is.

use zeroize::Zeroize;

use e2ee_client::store::StoreKey;

use crate::E2eeError;

/// Where the servers are and where the device's store is.
#[derive(Clone, uniffi::Record)]
pub struct ClientConfig {
    /// The key server's base URL (`http://host:port` or `https://...`); the all-in-one
    /// server serves the relay on the same port.
    pub server_url: String,
    /// The relay's base URL if it is elsewhere (`ws`/`http` or `wss`/`https`).
    #[uniffi(default = None)]
    pub relay_url: Option<String>,
    /// The device's store file.
    pub store_path: String,
    /// The 32-byte store key, from the platform keystore (Android Keystore, iOS Keychain).
    pub store_key: Vec<u8>,
    /// Extra trusted root certificates (DER) beside the Mozilla roots, for a private CA.
    #[uniffi(default = [])]
    pub extra_root_certificates: Vec<Vec<u8>>,
    /// The app's registration token, if the key server requires one.
    #[uniffi(default = None)]
    pub app_token: Option<String>,
}

// The store key never prints.
impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("server_url", &self.server_url)
            .field("relay_url", &self.relay_url)
            .field("store_path", &self.store_path)
            .finish_non_exhaustive()
    }
}

/// The store key from the bytes the app passed, which are wiped.
pub(crate) fn store_key_from(mut bytes: Vec<u8>) -> Result<StoreKey, E2eeError> {
    let key = <[u8; 32]>::try_from(bytes.as_slice()).map(StoreKey::from_bytes);
    let len = bytes.len();
    bytes.zeroize();
    key.map_err(|_| E2eeError::InvalidStoreKey {
        len: u32::try_from(len).unwrap_or(u32::MAX),
    })
}

impl TryFrom<ClientConfig> for e2ee_client::ClientConfig {
    type Error = E2eeError;

    fn try_from(config: ClientConfig) -> Result<Self, E2eeError> {
        Ok(Self {
            server_url: config.server_url,
            relay_url: config.relay_url,
            store_path: config.store_path.into(),
            store_key: store_key_from(config.store_key)?,
            extra_root_certificates: config.extra_root_certificates,
            app_token: config.app_token,
        })
    }
}
