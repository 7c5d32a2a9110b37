//! The message log as the app reads it: [`Message`], its [`MessageStatus`], pages and
//! conversations.

use e2ee_client::{ConversationId, LoggedMessage, RecipientState};

use crate::Address;

/// Which conversation: the 1:1 conversation with a user, or a group.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Conversation {
    /// The 1:1 conversation with this user.
    User {
        /// The other user.
        user: String,
    },
    /// The group with this id.
    Group {
        /// The group id.
        id: Vec<u8>,
    },
}

impl From<&ConversationId> for Conversation {
    fn from(id: &ConversationId) -> Self {
        match id {
            ConversationId::User(user) => Conversation::User { user: user.clone() },
            ConversationId::Group(id) => Conversation::Group { id: id.clone() },
        }
    }
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MessageStatus {
    /// Ours, in the outbox: the relay has not confirmed it.
    Pending,
    /// Ours, stored by the relay.
    Sent,
    /// Ours, delivered (in a group: to every member device).
    Delivered,
    /// Ours, read (in a group: by every member device).
    Read,
    /// Theirs, not yet marked read here.
    Received,
    /// Theirs, marked read here.
    ReadHere,
}

impl From<e2ee_client::MessageStatus> for MessageStatus {
    fn from(status: e2ee_client::MessageStatus) -> Self {
        use e2ee_client::MessageStatus as S;
        match status {
            S::Pending => MessageStatus::Pending,
            S::Sent => MessageStatus::Sent,
            S::Delivered => MessageStatus::Delivered,
            S::Read => MessageStatus::Read,
            S::Received => MessageStatus::Received,
            S::ReadHere => MessageStatus::ReadHere,
        }
    }
}

/// One recipient device of one of our messages, and what its receipts said.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RecipientStatus {
    /// The device.
    pub device: Address,
    /// Whether it received the message.
    pub delivered: bool,
    /// Whether its user read it there.
    pub read: bool,
}

/// One message of the log.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct Message {
    /// The author's message id (receipts and `markRead` name it).
    pub id: u64,
    /// The conversation.
    pub conversation: Conversation,
    /// The device that wrote it.
    pub author: Address,
    /// Whether our user wrote it (here, or on another of our devices: a sent transcript).
    pub outgoing: bool,
    /// The author's clock when written (Unix ms; the author's claim).
    pub sent_at_ms: u64,
    /// This device's clock when it arrived (Unix ms; 0 for what this device wrote).
    pub received_at_ms: u64,
    /// The app's bytes.
    pub body: Vec<u8>,
    /// Its status.
    pub status: MessageStatus,
    /// For our messages, every recipient device.
    pub recipients: Vec<RecipientStatus>,
}

// The body is the user's message: never in logs.
impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("id", &self.id)
            .field("conversation", &self.conversation)
            .field("author", &self.author)
            .field("status", &self.status)
            .field("len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl From<LoggedMessage> for Message {
    fn from(m: LoggedMessage) -> Self {
        Self {
            id: m.id,
            conversation: (&m.conversation).into(),
            author: (&m.author).into(),
            outgoing: m.outgoing,
            sent_at_ms: m.sent_at_ms,
            received_at_ms: m.received_at_ms,
            status: m.status.into(),
            recipients: m
                .recipients
                .iter()
                .map(|(device, state)| RecipientStatus {
                    device: device.into(),
                    delivered: *state != RecipientState::Waiting,
                    read: *state == RecipientState::Read,
                })
                .collect(),
            body: m.body,
        }
    }
}

/// Converts a list of log records.
pub(crate) fn messages(list: Vec<LoggedMessage>) -> Vec<Message> {
    list.into_iter().map(Message::from).collect()
}

/// Names one message: its author's user and the author's id for it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct MessageRef {
    /// The author's user id.
    pub author: String,
    /// The message id.
    pub id: u64,
}

/// A page of a conversation, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct MessagePage {
    /// The messages.
    pub messages: Vec<Message>,
    /// Pass as `before` for the older page; `null`/`None` at the beginning.
    pub older: Option<u64>,
}

impl From<e2ee_client::MessagePage> for MessagePage {
    fn from(page: e2ee_client::MessagePage) -> Self {
        Self {
            messages: messages(page.messages),
            older: page.older,
        }
    }
}

/// A conversation and how much it holds.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ConversationSummary {
    /// Which.
    pub conversation: Conversation,
    /// Messages in the log.
    pub messages: u64,
    /// When the newest message was written or arrived (Unix ms).
    pub last_at_ms: u64,
}

impl From<e2ee_client::Conversation> for ConversationSummary {
    fn from(c: e2ee_client::Conversation) -> Self {
        Self {
            conversation: (&c.id).into(),
            messages: c.messages,
            last_at_ms: c.last_at_ms,
        }
    }
}

/// The safety number two users compare to verify each other.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SafetyNumber {
    /// 60 digits in 12 groups of 5: the same on both users' devices.
    pub displayable: String,
    /// This device's QR code bytes.
    pub scannable: Vec<u8>,
}

impl From<e2ee_client::SafetyNumber> for SafetyNumber {
    fn from(s: e2ee_client::SafetyNumber) -> Self {
        Self {
            displayable: s.displayable,
            scannable: s.scannable,
        }
    }
}
