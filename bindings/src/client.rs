//! [`Client`]: a registered device connected to its key server and relay, callable from any
//! thread. Every method blocks its caller until done (call it off the UI thread); events come
//! from [`Client::next_event`] or an [`EventListener`].

use std::sync::{Arc, Mutex, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::group::group_infos;
use crate::{
    Address, ClientConfig, ConversationSummary, E2eeError, Event, EventListener, GroupEdit,
    GroupInfo, Message, MessagePage, MessageRef, SafetyNumber, event::event, runtime::runtime,
};

/// How long a listener thread waits for an event before it checks whether the client was
/// shut down or dropped.
const LISTENER_POLL: Duration = Duration::from_millis(200);

/// A device of a registered user, connected (it reconnects by itself with backoff).
#[derive(Debug, uniffi::Object)]
pub struct Client {
    // `None` once shut down. Calls clone the `Arc` and release the lock, so a call blocked on
    // the network never holds up another thread's call.
    inner: RwLock<Option<Arc<e2ee_client::Client>>>,
    // The thread handing events to the app's listener, joined by `shutdown` so that no
    // callback runs after it returns (Python aborts if a native thread enters it while the
    // interpreter exits).
    listener: Mutex<Option<JoinHandle<()>>>,
}

impl Client {
    /// Wraps and starts a client (its connection task runs on the SDK's runtime).
    pub(crate) fn started(client: e2ee_client::Client) -> Result<Arc<Self>, E2eeError> {
        let _context = runtime()?.enter();
        client.start();
        Ok(Arc::new(Self {
            inner: RwLock::new(Some(Arc::new(client))),
            listener: Mutex::new(None),
        }))
    }

    fn client(&self) -> Result<Arc<e2ee_client::Client>, E2eeError> {
        self.inner
            .read()
            .map_err(|_| E2eeError::Closed)?
            .clone()
            .ok_or(E2eeError::Closed)
    }

    /// Runs an async client call on the SDK's runtime, blocking the caller.
    fn block_on<T, F>(
        &self,
        call: impl FnOnce(Arc<e2ee_client::Client>) -> F,
    ) -> Result<T, E2eeError>
    where
        F: Future<Output = Result<T, e2ee_client::ClientError>>,
    {
        let client = self.client()?;
        Ok(runtime()?.block_on(call(client))?)
    }

    fn next_event_within(&self, timeout: Duration) -> Result<Option<Event>, E2eeError> {
        let client = self.client()?;
        let deadline = tokio::time::Instant::now() + timeout;
        runtime()?.block_on(async {
            // Skip events these bindings do not carry, within the same wait.
            while let Ok(next) = tokio::time::timeout_at(deadline, client.next_event()).await {
                match next {
                    Some(e) => {
                        if let Some(e) = event(e) {
                            return Ok(Some(e));
                        }
                    }
                    None => return Err(E2eeError::Closed),
                }
            }
            Ok(None)
        })
    }
}

#[uniffi::export]
impl Client {
    /// Registers a new account `user` with this device as its first device, creating the
    /// store at `config.storePath` (which must not exist), and connects.
    #[uniffi::constructor]
    pub fn register(config: ClientConfig, user: String) -> Result<Arc<Self>, E2eeError> {
        let config = config.try_into()?;
        let client = runtime()?.block_on(e2ee_client::Client::register(config, &user))?;
        Self::started(client)
    }

    /// Opens the store of a registered device and connects.
    #[uniffi::constructor]
    pub fn open(config: ClientConfig) -> Result<Arc<Self>, E2eeError> {
        let client = e2ee_client::Client::open(config.try_into()?)?;
        Self::started(client)
    }

    /// This device's address.
    pub fn address(&self) -> Result<Address, E2eeError> {
        Ok((&self.client()?.address()).into())
    }

    /// Sends `body` to every device of `user` and our other devices. Returns the message id
    /// once the message is in the outbox (it survives a crash; `StatusChanged` follows).
    pub fn send(&self, user: String, body: Vec<u8>) -> Result<u64, E2eeError> {
        self.block_on(|c| async move { c.send(&user, &body).await })
    }

    /// Marks messages of `user` read here (read receipts go to them, read-sync to our other
    /// devices).
    pub fn mark_read(&self, user: String, ids: Vec<u64>) -> Result<(), E2eeError> {
        self.block_on(|c| async move { c.mark_read(&user, &ids).await })
    }

    /// Tells `user` we started or stopped typing (online only: never stored).
    pub fn typing(&self, user: String, started: bool) -> Result<(), E2eeError> {
        self.block_on(|c| async move { c.typing(&user, started).await })
    }

    /// The next event, waiting at most `timeout_ms`; `null`/`None` if none came. Use either
    /// this or [`Client::set_event_listener`], not both.
    pub fn next_event(&self, timeout_ms: u64) -> Result<Option<Event>, E2eeError> {
        self.next_event_within(Duration::from_millis(timeout_ms))
    }

    /// Hands every event from now on to `listener`, on a thread of the SDK's own, until the
    /// client is shut down or dropped. One listener per client: a second raises
    /// `InvalidInput`.
    pub fn set_event_listener(
        self: Arc<Self>,
        listener: Box<dyn EventListener>,
    ) -> Result<(), E2eeError> {
        let mut slot = self.listener.lock().map_err(|_| E2eeError::Closed)?;
        if slot.is_some() {
            return Err(E2eeError::InvalidInput {
                what: "a second event listener".into(),
            });
        }
        self.client()?;
        let client: Weak<Self> = Arc::downgrade(&self);
        let thread = std::thread::Builder::new()
            .name("e2ee-events".into())
            .spawn(move || {
                while let Some(client) = client.upgrade() {
                    match client.next_event_within(LISTENER_POLL) {
                        Ok(Some(event)) => listener.on_event(event),
                        Ok(None) => {}
                        Err(_) => return,
                    }
                }
            })
            .map_err(|e| E2eeError::Other {
                detail: format!("no event thread: {e}"),
            })?;
        *slot = Some(thread);
        Ok(())
    }

    /// A page of the 1:1 conversation with `user`, oldest first: up to `limit` messages
    /// before position `before` (`null`/`None`: the newest).
    pub fn messages(
        &self,
        user: String,
        before: Option<u64>,
        limit: u32,
    ) -> Result<MessagePage, E2eeError> {
        Ok(self
            .client()?
            .messages(&user, before, limit as usize)?
            .into())
    }

    /// One message of the log, by its author's user and id.
    pub fn message(&self, author: String, id: u64) -> Result<Option<Message>, E2eeError> {
        Ok(self.client()?.message(&author, id)?.map(Message::from))
    }

    /// Every conversation, newest first.
    pub fn conversations(&self) -> Result<Vec<ConversationSummary>, E2eeError> {
        let list = self.client()?.conversations()?;
        Ok(list.into_iter().map(ConversationSummary::from).collect())
    }

    /// The safety number with `user`.
    pub fn safety_number(&self, user: String) -> Result<SafetyNumber, E2eeError> {
        let number = self.block_on(|c| async move { c.safety_number(&user).await })?;
        Ok(number.into())
    }

    /// The device numbers of `user`'s verified device list.
    pub fn devices(&self, user: String) -> Result<Vec<u32>, E2eeError> {
        self.block_on(|c| async move { c.devices(&user).await })
    }

    /// Trusts `user`'s new account key (after the user compared the new safety number).
    pub fn accept_account_change(&self, user: String) -> Result<(), E2eeError> {
        self.block_on(|c| async move { c.accept_account_change(&user).await })
    }

    /// Messages the relay has not confirmed yet.
    pub fn outbox_len(&self) -> Result<u64, E2eeError> {
        Ok(self.client()?.outbox_len()? as u64)
    }

    /// Creates a group with us as its admin and `members` as members; returns its id.
    pub fn create_group(&self, name: String, members: Vec<String>) -> Result<Vec<u8>, E2eeError> {
        self.block_on(|c| async move {
            let members: Vec<&str> = members.iter().map(String::as_str).collect();
            c.create_group(&name, &members).await
        })
    }

    /// Changes a group (we must be allowed to); returns its state after the change.
    pub fn change_group(&self, id: Vec<u8>, edit: GroupEdit) -> Result<GroupInfo, E2eeError> {
        let info = self.block_on(|c| async move { c.change_group(&id, edit.into()).await })?;
        Ok(info.into())
    }

    /// Sends `body` to every member device of the group; returns the message id.
    pub fn send_group(&self, id: Vec<u8>, body: Vec<u8>) -> Result<u64, E2eeError> {
        self.block_on(|c| async move { c.send_group(&id, &body).await })
    }

    /// Marks messages of the group read here.
    pub fn mark_group_read(&self, id: Vec<u8>, messages: Vec<MessageRef>) -> Result<(), E2eeError> {
        let messages: Vec<(String, u64)> = messages.into_iter().map(|m| (m.author, m.id)).collect();
        self.block_on(|c| async move { c.mark_group_read(&id, &messages).await })
    }

    /// A group's state.
    pub fn group(&self, id: Vec<u8>) -> Result<GroupInfo, E2eeError> {
        Ok(self.client()?.group(&id)?.into())
    }

    /// Every group we hold.
    pub fn groups(&self) -> Result<Vec<GroupInfo>, E2eeError> {
        Ok(group_infos(self.client()?.groups()?))
    }

    /// A page of a group's conversation, as [`Client::messages`].
    pub fn group_messages(
        &self,
        id: Vec<u8>,
        before: Option<u64>,
        limit: u32,
    ) -> Result<MessagePage, E2eeError> {
        Ok(self
            .client()?
            .group_messages(&id, before, limit as usize)?
            .into())
    }

    /// On the device holding the account key: links the new device showing `code`, waiting
    /// at most `timeout_ms` for it. Returns its address.
    pub fn link_device(&self, code: String, timeout_ms: u64) -> Result<Address, E2eeError> {
        let timeout = Duration::from_millis(timeout_ms);
        let address = self.block_on(|c| async move { c.link_device(&code, timeout).await })?;
        Ok((&address).into())
    }

    /// On the device holding the account key: removes another device of the account.
    pub fn remove_device(&self, device: u32) -> Result<(), E2eeError> {
        self.block_on(|c| async move { c.remove_device(device).await })
    }

    /// Disconnects, waiting for the connection task to end, releases the store, and stops
    /// the event listener (once this returns, it is never called again, unless this is
    /// called from the listener itself); every later call raises `Closed`. Open the store
    /// again with [`Client::open`]. Dropping the object (Kotlin `close()`/`use {}`, Swift
    /// release, Python `del`) disconnects without waiting. Python apps: shut clients down
    /// before the interpreter exits.
    pub fn shutdown(&self) -> Result<(), E2eeError> {
        let taken = self.inner.write().map_err(|_| E2eeError::Closed)?.take();
        if let Some(client) = taken {
            runtime()?.block_on(client.stop());
        }
        let thread = self.listener.lock().map_err(|_| E2eeError::Closed)?.take();
        if let Some(thread) = thread {
            // The listener thread sees `Closed` at its next wait and ends.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
        Ok(())
    }
}

/// Notification mode, for an app extension or background worker woken by a push: opens the
/// store, and unless the app holds the writer lease (`LeaseHeld`), receives what waits at the
/// relay for at most `budget_ms`, then disconnects. Returns the messages that arrived.
#[uniffi::export]
pub fn drain(config: ClientConfig, budget_ms: u64) -> Result<Vec<Message>, E2eeError> {
    let config = config.try_into()?;
    let budget = Duration::from_millis(budget_ms);
    let list = runtime()?.block_on(e2ee_client::Client::drain(config, budget))?;
    Ok(crate::messages(list))
}
