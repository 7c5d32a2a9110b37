//! What the client tells the app, as it happens.

use std::time::Duration;

use crate::{GroupInfo, LoggedMessage};

/// The relay connection's state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Getting a ticket and opening the WebSocket.
    Connecting,
    /// Connected: the outbox is being sent and envelopes arrive.
    Online,
    /// Disconnected; the next attempt is in `retry_in`.
    Offline {
        /// Why the last attempt or connection ended.
        reason: String,
        /// When the next attempt starts.
        retry_in: Duration,
    },
    /// The key server no longer accepts this device (it was removed): the client stops.
    Removed,
}

/// Something the app may want to show.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A message arrived (from another user, or a sent transcript from one of our devices:
    /// `outgoing`); it is in the log and its delivery receipt is on its way.
    Message(LoggedMessage),
    /// One of our messages moved on: the relay stored it, or receipts say it was delivered
    /// to or read on every recipient device.
    StatusChanged(LoggedMessage),
    /// `user` started or stopped typing in our conversation.
    Typing {
        /// Who.
        user: String,
        /// Started (`true`) or stopped.
        started: bool,
    },
    /// `user`'s account key is not the one we trust (a reinstall, or an attack): compare the
    /// new safety number, then `accept_account_change`. Their messages wait at the relay.
    IdentityChanged {
        /// Whose key changed.
        user: String,
    },
    /// `user`'s verified device list changed.
    DevicesChanged {
        /// Whose list.
        user: String,
        /// Device ids added.
        added: Vec<u32>,
        /// Device ids removed.
        removed: Vec<u32>,
    },
    /// A group we are in changed (a member added or removed, a role, the name, the
    /// settings), or we were added to one: its state as it stands now. A group that no
    /// longer lists our user means we left or were removed.
    GroupChanged(GroupInfo),
    /// The relay connection changed state.
    Connection(ConnectionState),
    /// Everything that waited at the relay while we were offline has been received.
    CaughtUp,
    /// The outbox cannot make progress right now (it keeps retrying; it never gives up).
    OutboxWedged {
        /// Why.
        reason: String,
        /// When the next attempt is.
        retry_in: Duration,
    },
    /// An envelope that cannot be accepted (undecryptable, a replay, not from a listed device)
    /// was dropped and acknowledged, so it does not come back.
    Dropped {
        /// The device the relay says sent it, as `user.device`.
        from: String,
        /// Why.
        reason: String,
    },
}
