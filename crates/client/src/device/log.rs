//! The local message log: every chat message this device sent or received, by conversation,
//! with the delivery state of each recipient device. History lives on the device only.
//!
//! Lookup keys are blinded, so nothing can be range-scanned: a conversation is a header
//! (its message count) and index pages of [`LOG_PAGE_LEN`] message references, and a page of
//! history is read by position.
//!
//! ```text
//! LogRecord  = 0x01 || id u64 || author DeviceAddress || conversation ConversationKey
//!              || sent_at_ms u64 || received_at_ms u64 || flags u8 || body_len u32 || body
//!              || count u16 (<= MAX_OUTBOX_RECIPIENTS) || count × (DeviceAddress || state u8)
//!   flags: bit 0 outgoing (we wrote it), bit 1 the relay stored it, bit 2 read here;
//!   state: 0x00 waiting, 0x01 delivered, 0x02 read
//! Header     = 0x01 || count u64 || last_at_ms u64 || ConversationKey
//! IndexPage  = count u16 (1..=LOG_PAGE_LEN) || count × (author UserId || id u64)
//! ```

use e2ee_core::{Codec, DecodeError, DeviceAddress, UserId};
use e2ee_encoding::Reader;

use super::MAX_OUTBOX_RECIPIENTS;
use super::chat::MAX_MESSAGE_BODY_LEN;
use super::conversation::{ConversationId, ConversationKey};
use crate::store::{Items, Space, StoreError};

const LOG_RECORD_VERSION: u8 = 0x01;
const HEADER_VERSION: u8 = 0x01;
/// Message references per index page of a conversation.
pub const LOG_PAGE_LEN: u64 = 128;
/// Most messages one [`crate::Device::messages`] call returns.
pub const MAX_PAGE_MESSAGES: usize = 500;

const FLAG_OUTGOING: u8 = 0x01;
const FLAG_STORED: u8 = 0x02;
const FLAG_READ_HERE: u8 = 0x04;
const KNOWN_FLAGS: u8 = FLAG_OUTGOING | FLAG_STORED | FLAG_READ_HERE;

/// Lookup prefix of a message record in [`Space::MESSAGES`].
const RECORD: u8 = 0x02;

/// Where one recipient device stands with a message we sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecipientState {
    /// No receipt yet.
    Waiting,
    /// The device received and decrypted it.
    Delivered,
    /// The user read it on that device.
    Read,
}

/// Where a message stands, as an app shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MessageStatus {
    /// Ours, in the outbox: the relay has not confirmed it.
    Pending,
    /// Ours, stored by the relay.
    Sent,
    /// Ours, delivered to a device of the recipient (in a group: to every member device).
    Delivered,
    /// Ours, read by the recipient on one of their devices (in a group: by every member
    /// device).
    Read,
    /// Theirs, received here and not yet marked read.
    Received,
    /// Theirs, marked read here.
    ReadHere,
}

/// One message of the log.
#[derive(Clone, PartialEq, Eq)]
pub struct LoggedMessage {
    /// The author's message id (receipts name it).
    pub id: u64,
    /// The conversation: the other user of a 1:1 conversation, or the group.
    pub conversation: ConversationId,
    /// The device that wrote it (one of ours for outgoing messages and sent transcripts).
    pub author: DeviceAddress,
    /// Whether our user wrote it (on this device or, as a sent transcript, another one).
    pub outgoing: bool,
    /// The author's clock when it was written (Unix ms; the author's claim).
    pub sent_at_ms: u64,
    /// This device's clock when it arrived (Unix ms; 0 for what this device wrote).
    pub received_at_ms: u64,
    /// The app's bytes.
    pub body: Vec<u8>,
    /// Status, as the app shows it.
    pub status: MessageStatus,
    /// For outgoing messages, each recipient device's state.
    pub recipients: Vec<(DeviceAddress, RecipientState)>,
    stored: bool,
    read_here: bool,
}

impl std::fmt::Debug for LoggedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggedMessage")
            .field("id", &self.id)
            .field("conversation", &self.conversation)
            .field("author", &self.author)
            .field("status", &self.status)
            .field("len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl LoggedMessage {
    /// A message this device writes now, waiting for the relay.
    pub(crate) fn outgoing(
        id: u64,
        author: DeviceAddress,
        conversation: &ConversationKey,
        sent_at_ms: u64,
        body: Vec<u8>,
        recipients: Vec<DeviceAddress>,
    ) -> Self {
        let mut message = Self {
            id,
            conversation: conversation.public(),
            author,
            outgoing: true,
            sent_at_ms,
            received_at_ms: 0,
            body,
            status: MessageStatus::Pending,
            recipients: recipients
                .into_iter()
                .map(|d| (d, RecipientState::Waiting))
                .collect(),
            stored: false,
            read_here: false,
        };
        message.status = message.derive_status();
        message
    }

    /// A message that arrived: from another user, or a sent transcript of our own device
    /// (`outgoing`; the relay stored it, or it would not be here).
    pub(crate) fn arrived(
        id: u64,
        author: DeviceAddress,
        conversation: &ConversationKey,
        sent_at_ms: u64,
        received_at_ms: u64,
        body: Vec<u8>,
        outgoing: bool,
    ) -> Self {
        let mut message = Self {
            id,
            conversation: conversation.public(),
            author,
            outgoing,
            sent_at_ms,
            received_at_ms,
            body,
            status: MessageStatus::Received,
            recipients: Vec::new(),
            stored: outgoing,
            read_here: false,
        };
        message.status = message.derive_status();
        message
    }

    fn derive_status(&self) -> MessageStatus {
        if !self.outgoing {
            return if self.read_here {
                MessageStatus::ReadHere
            } else {
                MessageStatus::Received
            };
        }
        // A 1:1 message is delivered once one of the recipient's devices has it and read
        // once the recipient read it on one of them (their devices sync what was read). A
        // group message is delivered (read) once every member device says so.
        let reached = match self.conversation {
            ConversationId::User(_) => self.recipients.iter().map(|(_, s)| *s).max(),
            ConversationId::Group(_) => self.recipients.iter().map(|(_, s)| *s).min(),
        };
        match reached {
            Some(RecipientState::Read) => MessageStatus::Read,
            Some(RecipientState::Delivered) => MessageStatus::Delivered,
            _ if self.stored => MessageStatus::Sent,
            _ => MessageStatus::Pending,
        }
    }

    /// The relay stored it.
    pub(crate) fn mark_stored(&mut self) {
        self.stored = true;
        self.status = self.derive_status();
    }

    /// Our user read it here.
    pub(crate) fn mark_read_here(&mut self) {
        self.read_here = true;
        self.status = self.derive_status();
    }

    /// A receipt from `device`; a device a sent transcript did not name is added (our other
    /// device knew the recipients, this one learns them from their receipts). Returns whether
    /// anything changed.
    pub(crate) fn apply_receipt(&mut self, device: &DeviceAddress, state: RecipientState) -> bool {
        match self.recipients.iter_mut().find(|(d, _)| d == device) {
            Some((_, held)) if *held >= state => return false,
            Some((_, held)) => *held = state,
            None if self.received_at_ms == 0 => return false,
            None => {
                if self.recipients.len() >= MAX_OUTBOX_RECIPIENTS {
                    return false;
                }
                self.recipients.push((device.clone(), state));
            }
        }
        self.stored = true;
        self.status = self.derive_status();
        true
    }
}

impl LoggedMessage {
    /// The checked key of its conversation.
    pub(crate) fn key(&self) -> Result<ConversationKey, StoreError> {
        let bad = |_| StoreError::Corrupt("conversation");
        Ok(match &self.conversation {
            ConversationId::User(user) => ConversationKey::User(UserId::new(user).map_err(bad)?),
            ConversationId::Group(id) => ConversationKey::Group(
                e2ee_core::group::GroupId::new(id).map_err(|_| StoreError::Corrupt("group id"))?,
            ),
        })
    }
}

impl Codec for LoggedMessage {
    type Error = DecodeError;

    fn write(&self, out: &mut Vec<u8>) {
        out.push(LOG_RECORD_VERSION);
        self.id.write(out);
        self.author.write(out);
        // Built from a checked key wherever a record is made.
        if let Ok(key) = self.key() {
            key.write(out);
        }
        self.sent_at_ms.write(out);
        self.received_at_ms.write(out);
        let mut flags = 0;
        if self.outgoing {
            flags |= FLAG_OUTGOING;
        }
        if self.stored {
            flags |= FLAG_STORED;
        }
        if self.read_here {
            flags |= FLAG_READ_HERE;
        }
        out.push(flags);
        (self.body.len() as u32).write(out);
        out.extend_from_slice(&self.body);
        (self.recipients.len() as u16).write(out);
        for (device, state) in &self.recipients {
            device.write(out);
            out.push(match state {
                RecipientState::Waiting => 0,
                RecipientState::Delivered => 1,
                RecipientState::Read => 2,
            });
        }
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = reader.u8()?;
        if version != LOG_RECORD_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let id = reader.u64()?;
        let author = DeviceAddress::read(reader)?;
        let conversation = ConversationKey::read(reader)?.public();
        let sent_at_ms = reader.u64()?;
        let received_at_ms = reader.u64()?;
        let flags = reader.u8()?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(DecodeError::NonCanonical);
        }
        let len = reader.u32()? as usize;
        if len > MAX_MESSAGE_BODY_LEN {
            return Err(DecodeError::TooLarge);
        }
        let body = reader.take(len)?.to_vec();
        let count = usize::from(reader.u16()?);
        if count > MAX_OUTBOX_RECIPIENTS {
            return Err(DecodeError::TooLarge);
        }
        let mut recipients = Vec::with_capacity(count);
        for _ in 0..count {
            let device = DeviceAddress::read(reader)?;
            let state = match reader.u8()? {
                0 => RecipientState::Waiting,
                1 => RecipientState::Delivered,
                2 => RecipientState::Read,
                _ => return Err(DecodeError::InvalidField("recipient state")),
            };
            recipients.push((device, state));
        }
        let mut message = Self {
            id,
            conversation,
            author,
            outgoing: flags & FLAG_OUTGOING != 0,
            sent_at_ms,
            received_at_ms,
            body,
            status: MessageStatus::Pending,
            recipients,
            stored: flags & FLAG_STORED != 0,
            read_here: flags & FLAG_READ_HERE != 0,
        };
        message.status = message.derive_status();
        Ok(message)
    }
}

/// A page of one conversation's history, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePage {
    /// The messages.
    pub messages: Vec<LoggedMessage>,
    /// Pass this as `before` for the page of older messages; `None` at the beginning.
    pub older: Option<u64>,
}

/// A conversation and how much it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The other user, or the group.
    pub id: ConversationId,
    /// Messages in the log.
    pub messages: u64,
    /// When the newest message was written or arrived (Unix ms).
    pub last_at_ms: u64,
}

fn record_lookup(author: &UserId, id: u64) -> Vec<u8> {
    let mut lookup = vec![RECORD];
    author.write(&mut lookup);
    id.write(&mut lookup);
    lookup
}

fn page_lookup(conversation: &ConversationKey, page: u64) -> Vec<u8> {
    let mut lookup = conversation.to_bytes();
    page.write(&mut lookup);
    lookup
}

fn corrupt(_: DecodeError) -> StoreError {
    StoreError::Corrupt("message log")
}

/// The record of message `id` by `author`'s user.
pub(crate) fn get(
    items: &impl Items,
    author: &UserId,
    id: u64,
) -> Result<Option<LoggedMessage>, StoreError> {
    items
        .get(Space::MESSAGES, &record_lookup(author, id))?
        .map(|bytes| LoggedMessage::from_bytes(&bytes).map_err(corrupt))
        .transpose()
}

/// Writes a record that is already in its conversation's index.
pub(crate) fn update(items: &mut impl Items, message: &LoggedMessage) -> Result<(), StoreError> {
    items.put(
        Space::MESSAGES,
        &record_lookup(&message.author.user, message.id),
        &message.to_bytes(),
    )
}

/// Adds a new record at the end of its conversation. Returns `false`, changing nothing, if
/// the author's user already has a message with this id (a replayed or colliding id).
pub(crate) fn append(items: &mut impl Items, message: &LoggedMessage) -> Result<bool, StoreError> {
    if get(items, &message.author.user, message.id)?.is_some() {
        return Ok(false);
    }
    let conversation = message.key()?;
    let (count, _) = header(items, &conversation)?;
    let page = count / LOG_PAGE_LEN;
    let mut references = read_page(items, &conversation, page)?;
    references.push((message.author.user.clone(), message.id));
    let mut bytes = Vec::new();
    (references.len() as u16).write(&mut bytes);
    for (author, id) in &references {
        author.write(&mut bytes);
        id.write(&mut bytes);
    }
    items.put(Space::LOG_INDEX, &page_lookup(&conversation, page), &bytes)?;
    let at = message.received_at_ms.max(message.sent_at_ms);
    let mut head = vec![HEADER_VERSION];
    (count + 1).write(&mut head);
    at.write(&mut head);
    head.extend_from_slice(&conversation.to_bytes());
    items.put(Space::CONVERSATIONS, &conversation.to_bytes(), &head)?;
    update(items, message)?;
    Ok(true)
}

/// (message count, last activity) of a conversation.
fn header(items: &impl Items, conversation: &ConversationKey) -> Result<(u64, u64), StoreError> {
    match items.get(Space::CONVERSATIONS, &conversation.to_bytes())? {
        None => Ok((0, 0)),
        Some(bytes) => {
            let (count, at, _) = decode_header(&bytes).map_err(corrupt)?;
            Ok((count, at))
        }
    }
}

fn decode_header(bytes: &[u8]) -> Result<(u64, u64, ConversationKey), DecodeError> {
    let mut reader = Reader::new(bytes);
    if reader.u8()? != HEADER_VERSION {
        return Err(DecodeError::UnknownVersion(bytes[0]));
    }
    let count = reader.u64()?;
    let at = reader.u64()?;
    let conversation = ConversationKey::read(&mut reader)?;
    reader.finish()?;
    Ok((count, at, conversation))
}

fn read_page(
    items: &impl Items,
    conversation: &ConversationKey,
    page: u64,
) -> Result<Vec<(UserId, u64)>, StoreError> {
    let Some(bytes) = items.get(Space::LOG_INDEX, &page_lookup(conversation, page))? else {
        return Ok(Vec::new());
    };
    let mut reader = Reader::new(&bytes);
    let decode = |reader: &mut Reader<'_>| -> Result<Vec<(UserId, u64)>, DecodeError> {
        let count = u64::from(reader.u16()?);
        if count > LOG_PAGE_LEN {
            return Err(DecodeError::TooLarge);
        }
        let mut references = Vec::new();
        for _ in 0..count {
            references.push((UserId::read(reader)?, reader.u64()?));
        }
        Ok(references)
    };
    let references = decode(&mut reader).map_err(corrupt)?;
    reader.finish().map_err(corrupt)?;
    Ok(references)
}

/// Up to `limit` messages of `conversation` before position `before` (all the newest with
/// `None`), oldest first.
pub(crate) fn page(
    items: &impl Items,
    conversation: &ConversationKey,
    before: Option<u64>,
    limit: usize,
) -> Result<MessagePage, StoreError> {
    let (count, _) = header(items, conversation)?;
    let end = before.map_or(count, |b| b.min(count));
    let limit = limit.min(MAX_PAGE_MESSAGES) as u64;
    let start = end.saturating_sub(limit);
    let mut messages = Vec::new();
    let mut position = start;
    while position < end {
        let page_no = position / LOG_PAGE_LEN;
        let references = read_page(items, conversation, page_no)?;
        let from = (position % LOG_PAGE_LEN) as usize;
        let to = ((end - page_no * LOG_PAGE_LEN).min(LOG_PAGE_LEN)) as usize;
        for (author, id) in references.get(from..to).unwrap_or_default() {
            messages.push(
                get(items, author, *id)?.ok_or(StoreError::Corrupt("message log reference"))?,
            );
        }
        position = (page_no + 1) * LOG_PAGE_LEN;
    }
    Ok(MessagePage {
        messages,
        older: (start > 0).then_some(start),
    })
}

/// Every conversation, the most recently active first.
pub(crate) fn conversations(items: &crate::store::Vault) -> Result<Vec<Conversation>, StoreError> {
    let mut all = Vec::new();
    for bytes in items.values(Space::CONVERSATIONS)? {
        let (messages, last_at_ms, key) = decode_header(&bytes).map_err(corrupt)?;
        all.push(Conversation {
            id: key.public(),
            messages,
            last_at_ms,
        });
    }
    all.sort_by(|a, b| b.last_at_ms.cmp(&a.last_at_ms).then(a.id.cmp(&b.id)));
    Ok(all)
}

#[cfg(test)]
mod tests {
    use e2ee_encoding::check_codec;

    use super::*;

    fn address(user: &str, device: u32) -> DeviceAddress {
        DeviceAddress::new(user, device).unwrap()
    }

    fn sent() -> LoggedMessage {
        LoggedMessage::outgoing(
            9,
            address("alice", 1),
            &ConversationKey::User(UserId::new("bob").unwrap()),
            1_000,
            b"hello".to_vec(),
            vec![address("bob", 1), address("bob", 2)],
        )
    }

    #[test]
    fn records_round_trip_and_every_cut_is_refused() {
        let mut message = sent();
        check_codec(&message);
        message.mark_stored();
        message.apply_receipt(&address("bob", 1), RecipientState::Read);
        check_codec(&message);
        let mut arrived = LoggedMessage::arrived(
            3,
            address("bob", 2),
            &ConversationKey::User(UserId::new("bob").unwrap()),
            5,
            6,
            vec![1; 40],
            false,
        );
        arrived.mark_read_here();
        check_codec(&arrived);
    }

    #[test]
    fn the_status_is_the_furthest_recipient_device() {
        let mut message = sent();
        assert_eq!(message.status, MessageStatus::Pending);
        message.mark_stored();
        assert_eq!(message.status, MessageStatus::Sent);
        assert!(message.apply_receipt(&address("bob", 2), RecipientState::Delivered));
        assert_eq!(message.status, MessageStatus::Delivered);
        // A receipt never goes backwards, and a device we did not send to changes nothing.
        assert!(!message.apply_receipt(&address("bob", 2), RecipientState::Delivered));
        assert!(!message.apply_receipt(&address("mallory", 1), RecipientState::Read));
        assert_eq!(message.status, MessageStatus::Delivered);
        assert!(message.apply_receipt(&address("bob", 1), RecipientState::Read));
        assert_eq!(message.status, MessageStatus::Read);
        assert_eq!(
            message.recipients,
            vec![
                (address("bob", 1), RecipientState::Read),
                (address("bob", 2), RecipientState::Delivered)
            ]
        );
    }

    #[test]
    fn a_group_message_is_delivered_and_read_when_every_member_device_says_so() {
        let group = ConversationKey::Group(e2ee_core::group::GroupId::new(&[7; 32]).unwrap());
        let mut message = LoggedMessage::outgoing(
            4,
            address("alice", 1),
            &group,
            1_000,
            b"hi all".to_vec(),
            vec![address("bob", 1), address("carol", 1)],
        );
        check_codec(&message);
        assert_eq!(message.conversation, ConversationId::Group(vec![7; 32]));
        message.mark_stored();
        assert!(message.apply_receipt(&address("bob", 1), RecipientState::Read));
        assert_eq!(message.status, MessageStatus::Sent);
        assert!(message.apply_receipt(&address("carol", 1), RecipientState::Delivered));
        assert_eq!(message.status, MessageStatus::Delivered);
        assert!(message.apply_receipt(&address("carol", 1), RecipientState::Read));
        assert_eq!(message.status, MessageStatus::Read);
        check_codec(&message);
        // A 1:1 record's bytes are what they were before groups existed.
        let user = sent().to_bytes();
        assert_eq!(
            user[1 + 8 + 10],
            3,
            "the conversation starts with its length"
        );
    }

    #[test]
    fn unknown_flags_and_states_are_refused() {
        let bytes = sent().to_bytes();
        let flags_at = 1 + 8 + (1 + 5 + 4) + (1 + 3) + 8 + 8;
        let mut bad = bytes.clone();
        bad[flags_at] = 0x80;
        assert_eq!(
            LoggedMessage::from_bytes(&bad),
            Err(DecodeError::NonCanonical)
        );
        let mut bad = bytes;
        let last = bad.len() - 1;
        bad[last] = 7;
        assert_eq!(
            LoggedMessage::from_bytes(&bad),
            Err(DecodeError::InvalidField("recipient state"))
        );
    }
}
