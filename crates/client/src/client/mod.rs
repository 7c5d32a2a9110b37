//! [`Client`]: a [`Device`] plus the transport to the key server (HTTP) and the relay
//! (WebSocket): registration, prekey top-ups, bundles and device lists fetched when a
//! session needs them, a persistent outbox sent on every connection until the relay stores
//! it, envelopes received and acknowledged only after their commit, receipts, reconnects with
//! backoff and jitter, and [`Event`]s for the app. [`BlockingClient`] is the same for callers
//! without an async runtime.

mod blocking;
mod connection;
mod error;
mod events;
mod groups;
mod keyserver;
mod link;
mod transport;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::mpsc;

pub use blocking::BlockingClient;
pub use error::ClientError;
pub use events::{ConnectionState, Event};
pub use link::{GROUP_WELCOME_WAIT, LinkRequest};

use crate::{
    Conversation, Device, Error, LoggedMessage, MessagePage, OutboxEntry, Registration,
    SafetyNumber,
    store::{Space, StoreError, StoreKey},
};
use keyserver::KeyServer;
use transport::Endpoint;

/// Events queued for the app before the client waits for it to take them (the relay keeps
/// what the client has not acknowledged, so a slow app costs no memory beyond this).
pub const EVENT_QUEUE_LEN: usize = 1024;
/// One-time prekeys of each kind the key server should hold at least; below this the client
/// uploads [`crate::MAX_PREKEYS_PER_UPLOAD`] more.
pub const PREKEY_LOW_WATER: u64 = 25;
/// Attempts to set up the sessions a message needs (learn the user, fetch bundles) before
/// the send fails.
const SESSION_ATTEMPTS: usize = 3;

/// In [`Space::IDENTITY`]: the key server credential, and the registration to retry.
const CREDENTIAL: &[u8] = b"keyserver credential";
const REGISTRATION: &[u8] = b"registration";

/// Where the servers are and where the device's store is.
#[derive(Clone)]
pub struct ClientConfig {
    /// The key server's base URL (`http://host:port` or `https://...`); the all-in-one
    /// server serves both on one port.
    pub server_url: String,
    /// The relay's base URL, if not the key server's (`ws`/`http` or `wss`/`https`).
    pub relay_url: Option<String>,
    /// The device's store file.
    pub store_path: PathBuf,
    /// The store key (from the platform keystore).
    pub store_key: StoreKey,
    /// Extra trusted root certificates (DER), beside the Mozilla roots: for a private CA.
    pub extra_root_certificates: Vec<Vec<u8>>,
    /// The app's registration token, if the key server requires one.
    pub app_token: Option<String>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("server_url", &self.server_url)
            .field("relay_url", &self.relay_url)
            .field("store_path", &self.store_path)
            .finish_non_exhaustive()
    }
}

/// What the connection task is asked to do.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send this new outbox entry.
    Send(OutboxEntry),
    /// Send these ciphertexts online-only (typing).
    Online(Vec<(crate::DeviceAddress, Vec<u8>)>),
    /// Close the connection and end.
    Stop,
}

/// What the client and its connection task share.
pub(crate) struct Shared {
    device: Mutex<Device>,
    /// This process's claim on the store's writer lease (who holds the relay connection).
    lease: crate::Lease,
    keyserver: KeyServer,
    relay: Endpoint,
    tls: Arc<rustls::ClientConfig>,
    events: mpsc::Sender<Event>,
    /// When each user's device list was last fetched by this process.
    refreshed: Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

/// A user's device list is fetched again before sending to them once it is this old (their
/// new devices are also learned at once when a message from one arrives).
pub const LIST_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);

impl Shared {
    /// Fetches `user`'s device list again if this process has not within [`LIST_REFRESH`];
    /// a failure (offline) leaves the list as it is: sending goes on with what is known.
    pub(crate) async fn refresh_if_stale(&self, user: &str) {
        let stale = self
            .refreshed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(user)
            .is_none_or(|at| at.elapsed() >= LIST_REFRESH);
        if stale {
            let _ = self.refresh_user(user).await;
        }
    }

    /// The device. A panic while it was held rolled its transaction back, so the state
    /// behind a poisoned lock is consistent and is used as is.
    pub(crate) fn device(&self) -> MutexGuard<'_, Device> {
        self.device
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) async fn emit(&self, event: Event) {
        // The app dropped its client: nobody is listening.
        let _ = self.events.send(event).await;
    }

    /// Tells the app that `user`'s verified device list gained or lost devices (if it did).
    pub(crate) async fn devices_changed(
        &self,
        user: &str,
        added: &[crate::DeviceAddress],
        removed: &[crate::DeviceAddress],
    ) {
        if !added.is_empty() || !removed.is_empty() {
            self.emit(Event::DevicesChanged {
                user: user.to_owned(),
                added: added.iter().map(|d| d.device).collect(),
                removed: removed.iter().map(|d| d.device).collect(),
            })
            .await;
        }
    }

    /// Fetches `user`'s account key and device list and verifies them. A changed account
    /// key is [`Event::IdentityChanged`] and an error; a changed list is
    /// [`Event::DevicesChanged`].
    pub(crate) async fn refresh_user(&self, user: &str) -> Result<(), ClientError> {
        let (account_key, list) = self.keyserver.user_state(user).await?;
        self.refreshed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(user.to_owned(), std::time::Instant::now());
        let result = self.device().learn_user(user, &account_key, &list);
        match result {
            Ok((added, removed)) => {
                self.devices_changed(user, &added, &removed).await;
                Ok(())
            }
            Err(Error::AccountKeyChanged { user }) => {
                self.emit(Event::IdentityChanged { user: user.clone() })
                    .await;
                Err(Error::AccountKeyChanged { user }.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Runs `op` on the device, learning unknown users and fetching the bundles of devices
    /// without a session until it stops asking, at most [`SESSION_ATTEMPTS`] times.
    pub(crate) async fn with_sessions<T>(
        &self,
        mut op: impl FnMut(&mut Device) -> Result<T, Error>,
    ) -> Result<T, ClientError> {
        let mut last = None;
        for _ in 0..SESSION_ATTEMPTS {
            let result = op(&mut self.device());
            match result {
                Err(Error::UnknownUser { user: unknown }) => {
                    self.refresh_user(&unknown).await?;
                    last = Some(Error::UnknownUser { user: unknown });
                }
                Err(Error::NeedsBundles { devices }) => {
                    for device in &devices {
                        match self
                            .keyserver
                            .bundle(device.user.as_str(), device.device)
                            .await
                        {
                            Ok(bundle) => self.device().add_bundle(device, &bundle)?,
                            // The device is gone (or has no keys): the list must be newer.
                            Err(ClientError::Server { status: 404, .. }) => {
                                self.refresh_user(device.user.as_str()).await?;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    last = Some(Error::NeedsBundles { devices });
                }
                other => return other.map_err(ClientError::from),
            }
        }
        Err(last.map_or(
            ClientError::Protocol("no session".into()),
            ClientError::from,
        ))
    }

    /// Uploads prekeys if the key server holds fewer than [`PREKEY_LOW_WATER`].
    pub(crate) async fn top_up_prekeys(&self) -> Result<(), ClientError> {
        let counts = self.keyserver.prekey_counts().await?;
        if counts.one_time >= PREKEY_LOW_WATER
            && counts.kem_one_time >= PREKEY_LOW_WATER
            && counts.has_signed_prekey
            && counts.has_last_resort_kem
        {
            return Ok(());
        }
        let upload = self
            .device()
            .generate_prekeys(crate::MAX_PREKEYS_PER_UPLOAD)?;
        self.keyserver.upload_prekeys(&upload).await
    }

    /// Commits the receipts owed to the outbox and returns them (a user whose sessions
    /// cannot be set up now is tried again on the next call).
    pub(crate) async fn send_due_receipts(&self) -> Result<Vec<OutboxEntry>, ClientError> {
        let users = self.device().receipts_due()?;
        let mut sent = Vec::new();
        for user in users {
            match self
                .with_sessions(|device| device.send_receipts(&user))
                .await
            {
                Ok(entries) => sent.extend(entries),
                Err(ClientError::Device(Error::AccountKeyChanged { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    }
}

/// A device connected to its servers. Cheap to share behind an `Arc`; every method may be
/// called from any task.
pub struct Client {
    shared: Arc<Shared>,
    events: tokio::sync::Mutex<mpsc::Receiver<Event>>,
    commands: mpsc::UnboundedSender<Command>,
    /// The connection task's commands, until `start` hands them to it.
    connection: Mutex<Option<mpsc::UnboundedReceiver<Command>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

fn endpoints(
    config: &ClientConfig,
) -> Result<(KeyServer, Endpoint, Arc<rustls::ClientConfig>), ClientError> {
    let tls = transport::tls_config(&config.extra_root_certificates)?;
    let server = Endpoint::parse(&config.server_url)?;
    let relay = match &config.relay_url {
        Some(url) => Endpoint::parse(url)?,
        None => server.clone(),
    };
    let keyserver = KeyServer::new(server, Arc::clone(&tls), config.app_token.clone());
    Ok((keyserver, relay, tls))
}

impl Client {
    /// Registers a new account for `user` with this device as its first device (the holder
    /// of the account key), creating the store: the account, the device list and the first
    /// prekeys reach the key server before this returns. If it failed half-way, calling it
    /// again resumes with the same keys.
    pub async fn register(config: ClientConfig, user: &str) -> Result<Self, ClientError> {
        let (keyserver, relay, tls) = endpoints(&config)?;
        let (mut device, registration) = if config.store_path.exists() {
            let mut device = Device::open(&config.store_path, &config.store_key)?;
            if device.vault().get(Space::IDENTITY, CREDENTIAL)?.is_some() {
                return Err(ClientError::AlreadyRegistered);
            }
            let bytes = device
                .vault()
                .get(Space::IDENTITY, REGISTRATION)?
                .ok_or(StoreError::Corrupt("registration missing"))?;
            let registration = Registration::from_stored(&bytes)?;
            if registration.user_id != user {
                return Err(ClientError::AlreadyRegistered);
            }
            (device, registration)
        } else {
            let (mut device, registration) =
                Device::create_primary(&config.store_path, &config.store_key, user, 1)?;
            device
                .vault()
                .put(Space::IDENTITY, REGISTRATION, &registration.to_stored())?;
            (device, registration)
        };
        let registered = keyserver.register_account(&registration).await?;
        device.vault().put(
            Space::IDENTITY,
            CREDENTIAL,
            registered.credential.as_bytes(),
        )?;
        let keyserver = keyserver.with_credential(registered.credential);
        keyserver.put_device_list(&registration.device_list).await?;
        let client = Self::assemble(device, keyserver, relay, tls);
        client.shared.top_up_prekeys().await?;
        Ok(client)
    }

    /// Opens a registered device's store. Nothing touches the network until [`Client::start`].
    pub fn open(config: ClientConfig) -> Result<Self, ClientError> {
        let (keyserver, relay, tls) = endpoints(&config)?;
        let mut device = Device::open(&config.store_path, &config.store_key)?;
        let credential = device
            .vault()
            .get(Space::IDENTITY, CREDENTIAL)?
            .ok_or(ClientError::NotRegistered)?;
        let credential = String::from_utf8(credential.to_vec())
            .map_err(|_| StoreError::Corrupt("credential"))?;
        Ok(Self::assemble(
            device,
            keyserver.with_credential(credential),
            relay,
            tls,
        ))
    }

    fn assemble(
        device: Device,
        keyserver: KeyServer,
        relay: Endpoint,
        tls: Arc<rustls::ClientConfig>,
    ) -> Self {
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE_LEN);
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            device: Mutex::new(device),
            lease: crate::Lease::new(),
            refreshed: Mutex::default(),
            keyserver,
            relay,
            tls,
            events: events_tx,
        });
        Self {
            connection: Mutex::new(Some(commands_rx)),
            shared,
            events: tokio::sync::Mutex::new(events_rx),
            commands: commands_tx,
            task: Mutex::new(None),
        }
    }

    /// Starts the connection to the relay in the background (on the current tokio runtime):
    /// it sends the outbox, receives, and reconnects with backoff until [`Client::stop`].
    /// Starting twice does nothing.
    pub fn start(&self) {
        let taken = self
            .connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(commands) = taken {
            let handle = tokio::spawn(connection::run(Arc::clone(&self.shared), commands));
            *self
                .task
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(handle);
        }
    }

    /// Closes the connection and waits for the background task to end.
    pub async fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
        let handle = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }

    /// This device's address.
    pub fn address(&self) -> crate::DeviceAddress {
        self.shared.device().address().clone()
    }

    /// The next event; `None` once the client is gone.
    pub async fn next_event(&self) -> Option<Event> {
        self.events.lock().await.recv().await
    }

    /// Sends a chat message to `user` (all their verified devices and our own other ones):
    /// learns the user and fetches bundles as needed, commits the message to the log and the
    /// outbox, and hands it to the connection. Returns its id. From the moment this returns
    /// the message is sent eventually, across crashes and restarts.
    pub async fn send(&self, user: &str, body: &[u8]) -> Result<u64, ClientError> {
        let own = self.shared.device().address().user.to_string();
        self.shared.refresh_if_stale(user).await;
        self.shared.refresh_if_stale(&own).await;
        let sent = self
            .shared
            .with_sessions(|device| device.send_message(user, body))
            .await?;
        let _ = self.commands.send(Command::Send(sent.entry));
        Ok(sent.id)
    }

    /// Marks messages of the conversation with `user` read, sends read receipts, and tells
    /// our other devices (a crash between the two commits loses that last notice, not the
    /// receipts).
    pub async fn mark_read(&self, user: &str, ids: &[u64]) -> Result<(), ClientError> {
        let read: Vec<u64> = self
            .shared
            .device()
            .mark_read(user, ids)?
            .iter()
            .map(|m| m.id)
            .collect();
        for entry in self.shared.send_due_receipts().await? {
            let _ = self.commands.send(Command::Send(entry));
        }
        if read.is_empty() {
            return Ok(());
        }
        // Our other devices mark them read too (none: nothing to tell).
        match self
            .shared
            .with_sessions(|device| device.send_read_sync(user, &read))
            .await
        {
            Ok(entries) => {
                for entry in entries {
                    let _ = self.commands.send(Command::Send(entry));
                }
                Ok(())
            }
            Err(ClientError::Device(Error::NoRecipients)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Tells `user` we started or stopped typing (online-only: dropped if they are offline).
    pub async fn typing(&self, user: &str, started: bool) -> Result<(), ClientError> {
        let out = self
            .shared
            .with_sessions(|device| {
                let out = device.typing(user, started)?;
                if out.needs_bundle.is_empty() {
                    Ok(out)
                } else {
                    Err(Error::NeedsBundles {
                        devices: out.needs_bundle,
                    })
                }
            })
            .await?;
        let _ = self.commands.send(Command::Online(out.envelopes));
        Ok(())
    }

    /// A page of the conversation with `user` (see [`Device::messages`]).
    pub fn messages(
        &self,
        user: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<MessagePage, ClientError> {
        Ok(self.shared.device().messages(user, before, limit)?)
    }

    /// One message of the log, by its author's user and id.
    pub fn message(&self, author: &str, id: u64) -> Result<Option<LoggedMessage>, ClientError> {
        Ok(self.shared.device().message(author, id)?)
    }

    /// Every conversation, the most recently active first.
    pub fn conversations(&self) -> Result<Vec<Conversation>, ClientError> {
        Ok(self.shared.device().conversations()?)
    }

    /// The safety number with `user` (learning them first if needed).
    pub async fn safety_number(&self, user: &str) -> Result<SafetyNumber, ClientError> {
        self.shared
            .with_sessions(|device| device.safety_number(user))
            .await
    }

    /// `user`'s devices, fetched from the key server now and verified: a list not signed by
    /// the account key we trust is [`Error::AccountKeyChanged`], one older than the list we
    /// hold (a server rolling a device removal back) [`Error::StaleDeviceList`].
    pub async fn devices(&self, user: &str) -> Result<Vec<u32>, ClientError> {
        self.shared.refresh_user(user).await?;
        Ok(self.shared.device().devices(user)?)
    }

    /// After the user compared the new safety number: trust `user`'s new account key.
    pub async fn accept_account_change(&self, user: &str) -> Result<(), ClientError> {
        let (account_key, list) = self.shared.keyserver.user_state(user).await?;
        self.shared
            .device()
            .accept_account_change(user, &account_key, &list)?;
        Ok(())
    }

    /// Notification mode, for an app extension or background worker woken by a push while
    /// the app may be running: opens the store, and unless the app holds the writer lease
    /// ([`ClientError::LeaseHeld`]: it is connected and receiving itself), connects, receives
    /// and commits what waits at the relay until it has caught up or `budget` has passed,
    /// then disconnects and gives the lease back. Returns the messages that arrived.
    pub async fn drain(
        config: ClientConfig,
        budget: std::time::Duration,
    ) -> Result<Vec<LoggedMessage>, ClientError> {
        let client = Self::open(config)?;
        let lease = client.shared.lease;
        if !client
            .shared
            .device()
            .acquire_lease(lease, budget + crate::LEASE_TTL)?
        {
            return Err(ClientError::LeaseHeld);
        }
        client.start();
        let mut messages = Vec::new();
        let _ = tokio::time::timeout(budget, async {
            while let Some(event) = client.next_event().await {
                match event {
                    Event::Message(message) => messages.push(message),
                    Event::CaughtUp => break,
                    _ => {}
                }
            }
        })
        .await;
        client.stop().await;
        Ok(messages)
    }

    /// Messages waiting for the relay.
    pub fn outbox_len(&self) -> Result<usize, ClientError> {
        Ok(self.shared.device().outbox()?.len())
    }
}
