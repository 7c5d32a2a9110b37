//! What the client tells the app: [`Event`]s, pulled with `Client.nextEvent` or pushed to an
//! [`EventListener`].

use crate::{GroupInfo, Message};

/// The relay connection's state.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ConnectionState {
    /// Getting a ticket and opening the WebSocket.
    Connecting,
    /// Connected: the outbox is sent and envelopes arrive.
    Online,
    /// Disconnected; the next attempt is in `retry_in_ms`.
    Offline {
        /// Why.
        reason: String,
        /// When the next attempt starts.
        retry_in_ms: u64,
    },
    /// The key server no longer accepts this device (it was removed): the client stops.
    Removed,
}

/// Something the app may want to show.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Event {
    /// A message arrived (or a sent transcript from another of our devices: `outgoing`).
    Message {
        /// It, as logged.
        message: Message,
    },
    /// One of our messages moved on (stored by the relay, delivered, read).
    StatusChanged {
        /// It, as logged now.
        message: Message,
    },
    /// `user` started or stopped typing to us.
    Typing {
        /// Who.
        user: String,
        /// Started or stopped.
        started: bool,
    },
    /// `user`'s account key is not the one we trust: compare the safety number, then
    /// `acceptAccountChange`. Their messages wait at the relay meanwhile.
    IdentityChanged {
        /// Whose key changed.
        user: String,
    },
    /// `user`'s verified device list changed.
    DevicesChanged {
        /// Whose list.
        user: String,
        /// Device numbers added.
        added: Vec<u32>,
        /// Device numbers removed.
        removed: Vec<u32>,
    },
    /// A group we are in changed, or we were added to one (a group that no longer lists our
    /// user: we left or were removed).
    GroupChanged {
        /// Its state now.
        group: GroupInfo,
    },
    /// The relay connection changed state.
    Connection {
        /// The new state.
        state: ConnectionState,
    },
    /// Everything that waited at the relay while we were offline has arrived.
    CaughtUp,
    /// The outbox cannot make progress now; it keeps retrying and never gives up.
    OutboxWedged {
        /// Why.
        reason: String,
        /// When the next attempt is.
        retry_in_ms: u64,
    },
    /// An envelope that cannot be accepted was dropped (and acknowledged).
    Dropped {
        /// The sending device the relay named, as `user.device`.
        from: String,
        /// Why.
        reason: String,
    },
}

/// Receives the client's events, on a thread of the SDK's own, one at a time and in order.
/// Return quickly (hand the event to the UI thread); calling the client from here is fine.
#[uniffi::export(callback_interface)]
pub trait EventListener: Send + Sync {
    /// One event.
    fn on_event(&self, event: Event);
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl From<e2ee_client::ConnectionState> for ConnectionState {
    fn from(state: e2ee_client::ConnectionState) -> Self {
        use e2ee_client::ConnectionState as C;
        match state {
            C::Connecting => ConnectionState::Connecting,
            C::Online => ConnectionState::Online,
            C::Offline { reason, retry_in } => ConnectionState::Offline {
                reason,
                retry_in_ms: millis(retry_in),
            },
            C::Removed => ConnectionState::Removed,
            // A state this version of the bindings does not name: treat it as a reconnect.
            _ => ConnectionState::Connecting,
        }
    }
}

/// The binding's event for a client event; `None` for a kind these bindings do not carry yet.
pub(crate) fn event(event: e2ee_client::Event) -> Option<Event> {
    use e2ee_client::Event as E;
    Some(match event {
        E::Message(message) => Event::Message {
            message: message.into(),
        },
        E::StatusChanged(message) => Event::StatusChanged {
            message: message.into(),
        },
        E::Typing { user, started } => Event::Typing { user, started },
        E::IdentityChanged { user } => Event::IdentityChanged { user },
        E::DevicesChanged {
            user,
            added,
            removed,
        } => Event::DevicesChanged {
            user,
            added,
            removed,
        },
        E::GroupChanged(group) => Event::GroupChanged {
            group: group.into(),
        },
        E::Connection(state) => Event::Connection {
            state: state.into(),
        },
        E::CaughtUp => Event::CaughtUp,
        E::OutboxWedged { reason, retry_in } => Event::OutboxWedged {
            reason,
            retry_in_ms: millis(retry_in),
        },
        E::Dropped { from, reason } => Event::Dropped { from, reason },
        _ => return None,
    })
}
