//! [`BlockingClient`]: the [`Client`] for callers without an async runtime (an app's UI
//! thread, a binding). It owns a small tokio runtime; every method blocks the calling thread
//! until done and may be called from any thread.

use std::time::Duration;

use super::{Client, ClientConfig, ClientError, Event};
use crate::{Conversation, LoggedMessage, MessagePage, SafetyNumber};

/// Worker threads of the client's own runtime: the connection task and the caller's
/// requests are I/O-bound.
const RUNTIME_THREADS: usize = 2;

/// A [`Client`] with its own runtime.
#[derive(Debug)]
pub struct BlockingClient {
    // Dropped before the runtime (fields drop in order), so its tasks end first.
    client: Client,
    runtime: tokio::runtime::Runtime,
}

fn runtime() -> Result<tokio::runtime::Runtime, ClientError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RUNTIME_THREADS)
        .thread_name("e2ee-client")
        .enable_all()
        .build()
        .map_err(|e| ClientError::Network(format!("runtime: {e}")))
}

impl BlockingClient {
    /// [`Client::register`], then [`Client::start`].
    pub fn register(config: ClientConfig, user: &str) -> Result<Self, ClientError> {
        let runtime = runtime()?;
        let client = runtime.block_on(Client::register(config, user))?;
        Ok(Self::started(client, runtime))
    }

    /// [`Client::open`], then [`Client::start`].
    pub fn open(config: ClientConfig) -> Result<Self, ClientError> {
        let runtime = runtime()?;
        let client = Client::open(config)?;
        Ok(Self::started(client, runtime))
    }

    /// [`Client::drain`]: notification mode, on a runtime of its own for the call.
    pub fn drain(
        config: ClientConfig,
        budget: Duration,
    ) -> Result<Vec<LoggedMessage>, ClientError> {
        runtime()?.block_on(Client::drain(config, budget))
    }

    fn started(client: Client, runtime: tokio::runtime::Runtime) -> Self {
        {
            let _guard = runtime.enter();
            client.start();
        }
        Self { client, runtime }
    }

    /// The async client, for use inside [`BlockingClient::runtime`].
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The runtime the client runs on.
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// This device's address.
    pub fn address(&self) -> crate::DeviceAddress {
        self.client.address()
    }

    /// [`Client::send`].
    pub fn send(&self, user: &str, body: &[u8]) -> Result<u64, ClientError> {
        self.runtime.block_on(self.client.send(user, body))
    }

    /// [`Client::mark_read`].
    pub fn mark_read(&self, user: &str, ids: &[u64]) -> Result<(), ClientError> {
        self.runtime.block_on(self.client.mark_read(user, ids))
    }

    /// [`Client::typing`].
    pub fn typing(&self, user: &str, started: bool) -> Result<(), ClientError> {
        self.runtime.block_on(self.client.typing(user, started))
    }

    /// The next event, waiting at most `timeout`; `None` if none came.
    pub fn next_event(&self, timeout: Duration) -> Option<Event> {
        self.runtime
            .block_on(async { tokio::time::timeout(timeout, self.client.next_event()).await })
            .ok()
            .flatten()
    }

    /// [`Client::messages`].
    pub fn messages(
        &self,
        user: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<MessagePage, ClientError> {
        self.client.messages(user, before, limit)
    }

    /// [`Client::message`].
    pub fn message(&self, author: &str, id: u64) -> Result<Option<LoggedMessage>, ClientError> {
        self.client.message(author, id)
    }

    /// [`Client::conversations`].
    pub fn conversations(&self) -> Result<Vec<Conversation>, ClientError> {
        self.client.conversations()
    }

    /// [`Client::safety_number`].
    pub fn safety_number(&self, user: &str) -> Result<SafetyNumber, ClientError> {
        self.runtime.block_on(self.client.safety_number(user))
    }

    /// [`Client::devices`].
    pub fn devices(&self, user: &str) -> Result<Vec<u32>, ClientError> {
        self.runtime.block_on(self.client.devices(user))
    }

    /// [`Client::accept_account_change`].
    pub fn accept_account_change(&self, user: &str) -> Result<(), ClientError> {
        self.runtime
            .block_on(self.client.accept_account_change(user))
    }

    /// [`Client::outbox_len`].
    pub fn outbox_len(&self) -> Result<usize, ClientError> {
        self.client.outbox_len()
    }

    /// Closes the connection (also done on drop, without waiting).
    pub fn stop(&self) {
        self.runtime.block_on(self.client.stop());
    }
}
