//! [`LinkRequest`]: a new device joining an existing account (a second phone, a desktop).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{Client, ClientConfig, E2eeError, runtime::runtime};

/// A device waiting to be linked: show [`LinkRequest::code`] (as text or a QR code) on its
/// screen, have the account's primary device call `Client.linkDevice(code)`, then call
/// [`LinkRequest::complete`] here.
#[derive(uniffi::Object)]
pub struct LinkRequest {
    code: String,
    // Taken by `complete` (it consumes the request).
    request: Mutex<Option<e2ee_client::LinkRequest>>,
}

// The code is a secret: never printed.
impl std::fmt::Debug for LinkRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkRequest").finish_non_exhaustive()
    }
}

#[uniffi::export]
impl LinkRequest {
    /// Starts linking a device whose store will be at `config.storePath` (which must not
    /// exist).
    #[uniffi::constructor]
    pub fn new(config: ClientConfig) -> Result<Arc<Self>, E2eeError> {
        let request = e2ee_client::LinkRequest::new(config.try_into()?)?;
        Ok(Arc::new(Self {
            code: request.code(),
            request: Mutex::new(Some(request)),
        }))
    }

    /// The one-time code to show. Whoever holds it can read the linking (the server cannot):
    /// show it on this device's screen only.
    pub fn code(&self) -> String {
        self.code.clone()
    }

    /// Waits at most `timeout_ms` for the primary device, then creates this device's store
    /// and returns it connected. A second call raises `Closed`.
    pub fn complete(&self, timeout_ms: u64) -> Result<Arc<Client>, E2eeError> {
        let request = self
            .request
            .lock()
            .map_err(|_| E2eeError::Closed)?
            .take()
            .ok_or(E2eeError::Closed)?;
        let timeout = Duration::from_millis(timeout_ms);
        let client = runtime()?.block_on(request.complete(timeout))?;
        Client::started(client)
    }
}
