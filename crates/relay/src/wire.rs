//! The binary frame format spoken over the WebSocket (one frame per binary message).
//!
//! Every frame starts with `version u8 = 1` and `kind u8`; all integers are big-endian.
//! The byte-by-byte layout of each kind is in `docs/relay.md`; this module is its only
//! implementation. Decoding is strict: unknown versions, kinds or flag bits, lengths out of
//! bounds, invalid UTF-8 and trailing bytes are all [`DecodeError`]s.

use std::fmt;

use crate::limits::{MAX_ACK_BATCH, MAX_BATCH_ENVELOPES, MAX_PAYLOAD_LEN, MAX_RECIPIENTS};

/// Wire format version carried in the first byte of every frame.
pub const WIRE_VERSION: u8 = 1;
/// Longest user id in bytes (DESIGN.md: opaque UTF-8, at most 128 bytes).
pub const MAX_USER_ID_LEN: usize = 128;

/// Envelope flag: deliver only to devices connected right now; never stored.
pub const FLAG_ONLINE_ONLY: u8 = 0x01;
const KNOWN_FLAGS: u8 = FLAG_ONLINE_ONLY;

/// Frame kinds, client to relay.
pub mod kind {
    /// A batch of envelopes to store and forward.
    pub const SEND: u8 = 0x01;
    /// Acknowledge deliveries by sequence number (deletes them).
    pub const ACK: u8 = 0x02;
    /// Ask for the presence of a user's devices.
    pub const PRESENCE_QUERY: u8 = 0x03;
    /// Replace the list of users allowed to read this user's presence.
    pub const PRESENCE_ALLOW: u8 = 0x04;
    /// Relay to client: per-envelope outcome of a `SEND`, sent after the durable commit.
    pub const SEND_RESULT: u8 = 0x81;
    /// Relay to client: one envelope for this device.
    pub const DELIVER: u8 = 0x82;
    /// Relay to client: a typed error.
    pub const ERROR: u8 = 0x83;
    /// Relay to client: the stored backlog has been sent; what follows is live.
    pub const QUEUE_DRAINED: u8 = 0x84;
    /// Relay to client: answer to a presence query.
    pub const PRESENCE: u8 = 0x85;
    /// Relay to client: a `PRESENCE_ALLOW` list is stored.
    pub const PRESENCE_ALLOWED: u8 = 0x86;
}

/// A device address: user id plus device id.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    /// Opaque UTF-8, 1..=128 bytes.
    pub user_id: String,
    /// Device number within the user.
    pub device_id: u32,
}

impl Address {
    /// Builds an address.
    pub fn new(user_id: impl Into<String>, device_id: u32) -> Self {
        Self {
            user_id: user_id.into(),
            device_id,
        }
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.user_id, self.device_id)
    }
}

/// One envelope of a `SEND` frame: one ciphertext for one or more recipient devices.
#[derive(Clone, PartialEq, Eq)]
pub struct OutEnvelope {
    /// Flag bits ([`FLAG_ONLINE_ONLY`]).
    pub flags: u8,
    /// Sender-chosen id; a retry with the same (sender, id) is stored once.
    pub msg_id: u64,
    /// 1..=[`MAX_RECIPIENTS`] devices; the payload is stored once for all of them.
    pub recipients: Vec<Address>,
    /// Opaque ciphertext, at most [`MAX_PAYLOAD_LEN`] bytes.
    pub payload: Vec<u8>,
}

impl fmt::Debug for OutEnvelope {
    // Never print ciphertext: the relay logs routing metadata only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutEnvelope")
            .field("flags", &self.flags)
            .field("msg_id", &self.msg_id)
            .field("recipients", &self.recipients.len())
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// One envelope delivered to a device.
#[derive(Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Mailbox sequence number to ack; 0 for online-only envelopes (nothing to ack).
    pub seq: u64,
    /// Flag bits as sent.
    pub flags: u8,
    /// When the relay accepted the envelope, unix milliseconds.
    pub server_ts_ms: u64,
    /// Authenticated sender.
    pub sender: Address,
    /// Sender-chosen id (clients deduplicate on (sender, msg_id)).
    pub msg_id: u64,
    /// Opaque ciphertext.
    pub payload: std::sync::Arc<[u8]>,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("seq", &self.seq)
            .field("flags", &self.flags)
            .field("sender", &self.sender)
            .field("msg_id", &self.msg_id)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// Outcome of one envelope of a `SEND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SendStatus {
    /// Durably stored for every recipient (or, online-only, handed to at least one online one).
    Stored = 0,
    /// Already stored by an earlier send with the same (sender, msg_id); nothing changed.
    Duplicate = 1,
    /// Online-only and no recipient online: dropped, as asked.
    DroppedOffline = 2,
    /// Stored for some recipients; the others' mailboxes are full.
    PartialMailboxFull = 3,
    /// Every recipient's mailbox is full: not stored.
    MailboxFull = 4,
}

impl SendStatus {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Stored,
            1 => Self::Duplicate,
            2 => Self::DroppedOffline,
            3 => Self::PartialMailboxFull,
            4 => Self::MailboxFull,
            _ => return None,
        })
    }
}

/// Typed error codes of an `ERROR` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame could not be decoded. The connection is closed after this frame.
    Malformed = 1,
    /// Unknown wire version. The connection is closed after this frame.
    UnsupportedVersion = 2,
    /// An envelope's payload exceeds the limit. Batch refused, nothing stored.
    PayloadTooLarge = 3,
    /// An envelope names too many recipients. Batch refused, nothing stored.
    TooManyRecipients = 4,
    /// Too many envelopes in one frame. Batch refused, nothing stored.
    BatchTooLarge = 5,
    /// The sender's token bucket is empty; retry after `retry_after_ms`. Batch refused.
    RateLimited = 6,
    /// The relay could not store the batch (storage unavailable). Retry later; nothing acked.
    Unavailable = 7,
    /// A client frame kind the relay does not handle. The connection is closed.
    UnknownKind = 8,
}

impl ErrorCode {
    fn from_u16(v: u16) -> Option<Self> {
        Some(match v {
            1 => Self::Malformed,
            2 => Self::UnsupportedVersion,
            3 => Self::PayloadTooLarge,
            4 => Self::TooManyRecipients,
            5 => Self::BatchTooLarge,
            6 => Self::RateLimited,
            7 => Self::Unavailable,
            8 => Self::UnknownKind,
            _ => return None,
        })
    }
}

/// Presence of one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevicePresence {
    /// Device id.
    pub device_id: u32,
    /// Connected to a relay right now.
    pub online: bool,
    /// Last time the device connected or disconnected, unix milliseconds (0 = never seen).
    pub last_seen_ms: u64,
}

/// Client-to-relay frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// Store and forward these envelopes.
    Send(Vec<OutEnvelope>),
    /// These deliveries were processed; delete them.
    Ack(Vec<u64>),
    /// Presence of a user's devices.
    PresenceQuery(String),
    /// Replace the users (besides the sender's own devices) allowed to read the sender's
    /// user's presence; at most [`MAX_PRESENCE_VIEWERS`], empty = nobody else.
    PresenceAllow(Vec<String>),
}

/// Most users one user may allow to see its presence.
pub const MAX_PRESENCE_VIEWERS: usize = 1024;

/// Relay-to-client frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFrame {
    /// Per-envelope outcome of a `SEND`, in the order sent.
    SendResult(Vec<(u64, SendStatus)>),
    /// One envelope.
    Deliver(Delivery),
    /// An error.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// Message id the error refers to (the first of the batch), or 0.
        msg_id: u64,
        /// When to retry, for [`ErrorCode::RateLimited`]; else 0.
        retry_after_ms: u32,
        /// Human-readable detail (ASCII, at most 255 bytes, never payload bytes).
        detail: String,
    },
    /// The backlog is delivered; `count` envelopes came from the mailbox.
    QueueDrained {
        /// Number of stored envelopes delivered on this connection before going live.
        count: u32,
    },
    /// Presence of a user's devices.
    Presence {
        /// The user asked about.
        user_id: String,
        /// Its known devices.
        devices: Vec<DevicePresence>,
    },
    /// The allow list sent with `PRESENCE_ALLOW` is stored and in effect.
    PresenceAllowed {
        /// Number of users now allowed.
        count: u16,
    },
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Wrong version byte.
    #[error("unsupported wire version {0}")]
    UnsupportedVersion(u8),
    /// Unknown kind byte.
    #[error("unknown frame kind {0:#04x}")]
    UnknownKind(u8),
    /// The frame ended early.
    #[error("truncated frame")]
    Truncated,
    /// Bytes after the end of the frame.
    #[error("trailing bytes")]
    TrailingBytes,
    /// A field is out of its allowed range.
    #[error("invalid field: {0}")]
    Invalid(&'static str),
    /// Payload larger than [`MAX_PAYLOAD_LEN`].
    #[error("payload too large")]
    PayloadTooLarge,
    /// More recipients than [`MAX_RECIPIENTS`].
    #[error("too many recipients")]
    TooManyRecipients,
    /// More envelopes than [`MAX_BATCH_ENVELOPES`] or acks than [`MAX_ACK_BATCH`].
    #[error("batch too large")]
    BatchTooLarge,
}

impl DecodeError {
    /// The error code reported to the client.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
            Self::UnknownKind(_) => ErrorCode::UnknownKind,
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Self::TooManyRecipients => ErrorCode::TooManyRecipients,
            Self::BatchTooLarge => ErrorCode::BatchTooLarge,
            Self::Truncated | Self::TrailingBytes | Self::Invalid(_) => ErrorCode::Malformed,
        }
    }

    /// Whether the connection survives: limit violations keep it, garbage closes it.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            Self::PayloadTooLarge | Self::TooManyRecipients | Self::BatchTooLarge
        )
    }
}

/// Bounded reader over a frame.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn user_id(&mut self) -> Result<String, DecodeError> {
        let len = usize::from(self.u8()?);
        if len == 0 || len > MAX_USER_ID_LEN {
            return Err(DecodeError::Invalid("user id length"));
        }
        let b = self.take(len)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DecodeError::Invalid("user id not UTF-8"))
    }
    fn address(&mut self) -> Result<Address, DecodeError> {
        let user_id = self.user_id()?;
        let device_id = self.u32()?;
        Ok(Address { user_id, device_id })
    }
    fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

fn header<'a>(bytes: &'a [u8]) -> Result<(u8, Reader<'a>), DecodeError> {
    let mut r = Reader { buf: bytes };
    let version = r.u8()?;
    if version != WIRE_VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let kind = r.u8()?;
    Ok((kind, r))
}

fn put_user_id(out: &mut Vec<u8>, user_id: &str) {
    // Callers validated the length (decoded or authenticated ids are <= 128 bytes); clamp
    // anyway so the encoder can never emit an inconsistent length byte.
    let b = user_id.as_bytes();
    let n = b.len().min(MAX_USER_ID_LEN);
    out.push(n as u8);
    out.extend_from_slice(&b[..n]);
}

fn put_address(out: &mut Vec<u8>, a: &Address) {
    put_user_id(out, &a.user_id);
    out.extend_from_slice(&a.device_id.to_be_bytes());
}

impl ClientFrame {
    /// Decodes one client frame.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (k, mut r) = header(bytes)?;
        let frame = match k {
            kind::SEND => {
                let count = usize::from(r.u16()?);
                if count == 0 {
                    return Err(DecodeError::Invalid("empty batch"));
                }
                if count > MAX_BATCH_ENVELOPES {
                    return Err(DecodeError::BatchTooLarge);
                }
                let mut envs = Vec::with_capacity(count);
                for _ in 0..count {
                    let flags = r.u8()?;
                    if flags & !KNOWN_FLAGS != 0 {
                        return Err(DecodeError::Invalid("unknown flag bits"));
                    }
                    let msg_id = r.u64()?;
                    let n = usize::from(r.u16()?);
                    if n == 0 {
                        return Err(DecodeError::Invalid("no recipients"));
                    }
                    if n > MAX_RECIPIENTS {
                        return Err(DecodeError::TooManyRecipients);
                    }
                    let mut recipients = Vec::with_capacity(n);
                    for _ in 0..n {
                        recipients.push(r.address()?);
                    }
                    let len = r.u32()? as usize;
                    if len > MAX_PAYLOAD_LEN {
                        return Err(DecodeError::PayloadTooLarge);
                    }
                    let payload = r.take(len)?.to_vec();
                    envs.push(OutEnvelope {
                        flags,
                        msg_id,
                        recipients,
                        payload,
                    });
                }
                ClientFrame::Send(envs)
            }
            kind::ACK => {
                let count = usize::from(r.u16()?);
                if count == 0 {
                    return Err(DecodeError::Invalid("empty ack"));
                }
                if count > MAX_ACK_BATCH {
                    return Err(DecodeError::BatchTooLarge);
                }
                let mut seqs = Vec::with_capacity(count);
                for _ in 0..count {
                    seqs.push(r.u64()?);
                }
                ClientFrame::Ack(seqs)
            }
            kind::PRESENCE_QUERY => ClientFrame::PresenceQuery(r.user_id()?),
            kind::PRESENCE_ALLOW => {
                let count = usize::from(r.u16()?);
                if count > MAX_PRESENCE_VIEWERS {
                    return Err(DecodeError::BatchTooLarge);
                }
                let mut users = Vec::with_capacity(count);
                for _ in 0..count {
                    users.push(r.user_id()?);
                }
                ClientFrame::PresenceAllow(users)
            }
            other => return Err(DecodeError::UnknownKind(other)),
        };
        r.finish()?;
        Ok(frame)
    }

    /// Encodes the frame (used by clients, tests and the load tool).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(WIRE_VERSION);
        match self {
            ClientFrame::Send(envs) => {
                out.push(kind::SEND);
                out.extend_from_slice(&(envs.len() as u16).to_be_bytes());
                for e in envs {
                    out.push(e.flags);
                    out.extend_from_slice(&e.msg_id.to_be_bytes());
                    out.extend_from_slice(&(e.recipients.len() as u16).to_be_bytes());
                    for a in &e.recipients {
                        put_address(&mut out, a);
                    }
                    out.extend_from_slice(&(e.payload.len() as u32).to_be_bytes());
                    out.extend_from_slice(&e.payload);
                }
            }
            ClientFrame::Ack(seqs) => {
                out.push(kind::ACK);
                out.extend_from_slice(&(seqs.len() as u16).to_be_bytes());
                for s in seqs {
                    out.extend_from_slice(&s.to_be_bytes());
                }
            }
            ClientFrame::PresenceQuery(user_id) => {
                out.push(kind::PRESENCE_QUERY);
                put_user_id(&mut out, user_id);
            }
            ClientFrame::PresenceAllow(users) => {
                out.push(kind::PRESENCE_ALLOW);
                out.extend_from_slice(&(users.len() as u16).to_be_bytes());
                for u in users {
                    put_user_id(&mut out, u);
                }
            }
        }
        out
    }
}

impl ServerFrame {
    /// Encodes the frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(WIRE_VERSION);
        match self {
            ServerFrame::SendResult(items) => {
                out.push(kind::SEND_RESULT);
                out.extend_from_slice(&(items.len() as u16).to_be_bytes());
                for (id, status) in items {
                    out.extend_from_slice(&id.to_be_bytes());
                    out.push(*status as u8);
                }
            }
            ServerFrame::Deliver(d) => {
                out.reserve(40 + d.sender.user_id.len() + d.payload.len());
                out.push(kind::DELIVER);
                out.extend_from_slice(&d.seq.to_be_bytes());
                out.push(d.flags);
                out.extend_from_slice(&d.server_ts_ms.to_be_bytes());
                put_address(&mut out, &d.sender);
                out.extend_from_slice(&d.msg_id.to_be_bytes());
                out.extend_from_slice(&(d.payload.len() as u32).to_be_bytes());
                out.extend_from_slice(&d.payload);
            }
            ServerFrame::Error {
                code,
                msg_id,
                retry_after_ms,
                detail,
            } => {
                out.push(kind::ERROR);
                out.extend_from_slice(&(*code as u16).to_be_bytes());
                out.extend_from_slice(&msg_id.to_be_bytes());
                out.extend_from_slice(&retry_after_ms.to_be_bytes());
                let d = detail.as_bytes();
                let n = d.len().min(255);
                out.push(n as u8);
                out.extend_from_slice(&d[..n]);
            }
            ServerFrame::QueueDrained { count } => {
                out.push(kind::QUEUE_DRAINED);
                out.extend_from_slice(&count.to_be_bytes());
            }
            ServerFrame::Presence { user_id, devices } => {
                out.push(kind::PRESENCE);
                put_user_id(&mut out, user_id);
                out.extend_from_slice(&(devices.len() as u16).to_be_bytes());
                for d in devices {
                    out.extend_from_slice(&d.device_id.to_be_bytes());
                    out.push(u8::from(d.online));
                    out.extend_from_slice(&d.last_seen_ms.to_be_bytes());
                }
            }
            ServerFrame::PresenceAllowed { count } => {
                out.push(kind::PRESENCE_ALLOWED);
                out.extend_from_slice(&count.to_be_bytes());
            }
        }
        out
    }

    /// Decodes a relay frame (used by clients, tests and the load tool).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (k, mut r) = header(bytes)?;
        let frame = match k {
            kind::SEND_RESULT => {
                let n = usize::from(r.u16()?);
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    let id = r.u64()?;
                    let status =
                        SendStatus::from_u8(r.u8()?).ok_or(DecodeError::Invalid("status"))?;
                    items.push((id, status));
                }
                ServerFrame::SendResult(items)
            }
            kind::DELIVER => {
                let seq = r.u64()?;
                let flags = r.u8()?;
                let server_ts_ms = r.u64()?;
                let sender = r.address()?;
                let msg_id = r.u64()?;
                let len = r.u32()? as usize;
                let payload = r.take(len)?.into();
                ServerFrame::Deliver(Delivery {
                    seq,
                    flags,
                    server_ts_ms,
                    sender,
                    msg_id,
                    payload,
                })
            }
            kind::ERROR => {
                let code = ErrorCode::from_u16(r.u16()?).ok_or(DecodeError::Invalid("code"))?;
                let msg_id = r.u64()?;
                let retry_after_ms = r.u32()?;
                let n = usize::from(r.u8()?);
                let detail = String::from_utf8_lossy(r.take(n)?).into_owned();
                ServerFrame::Error {
                    code,
                    msg_id,
                    retry_after_ms,
                    detail,
                }
            }
            kind::QUEUE_DRAINED => ServerFrame::QueueDrained { count: r.u32()? },
            kind::PRESENCE => {
                let user_id = r.user_id()?;
                let n = usize::from(r.u16()?);
                let mut devices = Vec::with_capacity(n);
                for _ in 0..n {
                    let device_id = r.u32()?;
                    let online = match r.u8()? {
                        0 => false,
                        1 => true,
                        _ => return Err(DecodeError::Invalid("online flag")),
                    };
                    let last_seen_ms = r.u64()?;
                    devices.push(DevicePresence {
                        device_id,
                        online,
                        last_seen_ms,
                    });
                }
                ServerFrame::Presence { user_id, devices }
            }
            kind::PRESENCE_ALLOWED => ServerFrame::PresenceAllowed { count: r.u16()? },
            other => return Err(DecodeError::UnknownKind(other)),
        };
        r.finish()?;
        Ok(frame)
    }
}

/// Node-to-node message kinds (multi-node routing over Redis; not part of the client protocol).
pub mod routed {
    /// Deliveries for devices connected to the receiving node.
    pub const DELIVERIES: u8 = 1;
    /// Close the device's connection: it connected to another node.
    pub const KICK: u8 = 2;
}

/// Encodes deliveries for another node: `1 || count u32 || (address || len u32 || DELIVER frame)*`.
pub fn encode_routed(items: &[(Address, Delivery)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 * items.len());
    out.push(routed::DELIVERIES);
    out.extend_from_slice(&(items.len() as u32).to_be_bytes());
    for (to, d) in items {
        put_address(&mut out, to);
        let frame = ServerFrame::Deliver(d.clone()).encode();
        out.extend_from_slice(&(frame.len() as u32).to_be_bytes());
        out.extend_from_slice(&frame);
    }
    out
}

/// Encodes a kick for another node: `2 || address`.
pub fn encode_kick(device: &Address) -> Vec<u8> {
    let mut out = vec![routed::KICK];
    put_address(&mut out, device);
    out
}

/// A decoded node-to-node message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// Deliveries for devices connected to the receiving node.
    Deliveries(Vec<(Address, Delivery)>),
    /// Close this device's connection on the receiving node.
    Kick(Address),
}

/// Decodes a node-to-node message.
pub fn decode_routed(bytes: &[u8]) -> Result<Routed, DecodeError> {
    let mut r = Reader { buf: bytes };
    let msg = match r.u8()? {
        routed::DELIVERIES => {
            let n = r.u32()? as usize;
            let mut items = Vec::with_capacity(n.min(4096));
            for _ in 0..n {
                let to = r.address()?;
                let len = r.u32()? as usize;
                match ServerFrame::decode(r.take(len)?)? {
                    ServerFrame::Deliver(d) => items.push((to, d)),
                    _ => return Err(DecodeError::Invalid("routed frame is not DELIVER")),
                }
            }
            Routed::Deliveries(items)
        }
        routed::KICK => Routed::Kick(r.address()?),
        other => return Err(DecodeError::UnknownKind(other)),
    };
    r.finish()?;
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(n_recipients: usize, len: usize) -> OutEnvelope {
        OutEnvelope {
            flags: 0,
            msg_id: 7,
            recipients: (0..n_recipients)
                .map(|i| Address::new("bob", i as u32))
                .collect(),
            payload: vec![0xAB; len],
        }
    }

    #[test]
    fn send_round_trips_and_matches_documented_bytes() {
        let f = ClientFrame::Send(vec![OutEnvelope {
            flags: FLAG_ONLINE_ONLY,
            msg_id: 0x0102030405060708,
            recipients: vec![Address::new("bob", 2)],
            payload: vec![0xCA, 0xFE],
        }]);
        let bytes = f.encode();
        // The example in docs/relay.md, "SEND".
        let expected: Vec<u8> = vec![
            0x01, 0x01, 0x00, 0x01, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0x00, 0x01, 0x03, b'b', b'o',
            b'b', 0, 0, 0, 2, 0, 0, 0, 2, 0xCA, 0xFE,
        ];
        assert_eq!(bytes, expected);
        assert_eq!(ClientFrame::decode(&bytes).unwrap(), f);
    }

    #[test]
    fn server_frames_round_trip() {
        let frames = vec![
            ServerFrame::SendResult(vec![(1, SendStatus::Stored), (2, SendStatus::Duplicate)]),
            ServerFrame::Deliver(Delivery {
                seq: 9,
                flags: 0,
                server_ts_ms: 1234,
                sender: Address::new("alice", 1),
                msg_id: 77,
                payload: vec![1u8, 2, 3].into(),
            }),
            ServerFrame::Error {
                code: ErrorCode::RateLimited,
                msg_id: 5,
                retry_after_ms: 250,
                detail: "slow down".into(),
            },
            ServerFrame::QueueDrained { count: 3 },
            ServerFrame::Presence {
                user_id: "bob".into(),
                devices: vec![DevicePresence {
                    device_id: 1,
                    online: true,
                    last_seen_ms: 99,
                }],
            },
            ServerFrame::PresenceAllowed { count: 2 },
        ];
        for f in frames {
            assert_eq!(ServerFrame::decode(&f.encode()).unwrap(), f);
        }
        let ack = ClientFrame::Ack(vec![1, 2, u64::MAX]);
        assert_eq!(ClientFrame::decode(&ack.encode()).unwrap(), ack);
        let allow = ClientFrame::PresenceAllow(vec!["alice".into(), "carol".into()]);
        assert_eq!(ClientFrame::decode(&allow.encode()).unwrap(), allow);
        let too_many = ClientFrame::PresenceAllow(vec!["x".into(); MAX_PRESENCE_VIEWERS + 1]);
        assert_eq!(
            ClientFrame::decode(&too_many.encode()),
            Err(DecodeError::BatchTooLarge)
        );
    }

    #[test]
    fn every_truncation_is_rejected() {
        let bytes = ClientFrame::Send(vec![env(2, 10)]).encode();
        for cut in 0..bytes.len() {
            assert!(ClientFrame::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(ClientFrame::decode(&long), Err(DecodeError::TrailingBytes));
    }

    #[test]
    fn payload_limit_is_enforced() {
        let ok = ClientFrame::Send(vec![env(1, MAX_PAYLOAD_LEN)]).encode();
        assert!(ClientFrame::decode(&ok).is_ok());
        let big = ClientFrame::Send(vec![env(1, MAX_PAYLOAD_LEN + 1)]).encode();
        let err = ClientFrame::decode(&big).unwrap_err();
        assert_eq!(err, DecodeError::PayloadTooLarge);
        assert!(!err.is_fatal());
    }

    #[test]
    fn recipient_limit_is_enforced() {
        assert!(
            ClientFrame::decode(&ClientFrame::Send(vec![env(MAX_RECIPIENTS, 1)]).encode()).is_ok()
        );
        let err =
            ClientFrame::decode(&ClientFrame::Send(vec![env(MAX_RECIPIENTS + 1, 1)]).encode())
                .unwrap_err();
        assert_eq!(err, DecodeError::TooManyRecipients);
    }

    #[test]
    fn batch_limits_are_enforced() {
        let envs: Vec<_> = (0..=MAX_BATCH_ENVELOPES).map(|_| env(1, 1)).collect();
        assert_eq!(
            ClientFrame::decode(&ClientFrame::Send(envs).encode()),
            Err(DecodeError::BatchTooLarge)
        );
        let acks: Vec<u64> = (0..=MAX_ACK_BATCH as u64).collect();
        assert_eq!(
            ClientFrame::decode(&ClientFrame::Ack(acks).encode()),
            Err(DecodeError::BatchTooLarge)
        );
    }

    #[test]
    fn routed_messages_round_trip() {
        let d = Delivery {
            seq: 3,
            flags: 0,
            server_ts_ms: 5,
            sender: Address::new("a", 1),
            msg_id: 9,
            payload: vec![1u8, 2].into(),
        };
        let bytes = encode_routed(&[(Address::new("b", 2), d.clone())]);
        match decode_routed(&bytes).unwrap() {
            Routed::Deliveries(items) => assert_eq!(items, vec![(Address::new("b", 2), d)]),
            other => panic!("{other:?}"),
        }
        match decode_routed(&encode_kick(&Address::new("b", 2))).unwrap() {
            Routed::Kick(a) => assert_eq!(a, Address::new("b", 2)),
            other => panic!("{other:?}"),
        }
        assert!(decode_routed(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(
            ClientFrame::decode(&[2, 1]),
            Err(DecodeError::UnsupportedVersion(2))
        );
        assert_eq!(
            ClientFrame::decode(&[1, 0x7f]),
            Err(DecodeError::UnknownKind(0x7f))
        );
        assert_eq!(ClientFrame::decode(&[]), Err(DecodeError::Truncated));
        // Unknown flag bit.
        let mut bytes = ClientFrame::Send(vec![env(1, 1)]).encode();
        bytes[4] = 0x80;
        assert_eq!(
            ClientFrame::decode(&bytes),
            Err(DecodeError::Invalid("unknown flag bits"))
        );
        // Invalid UTF-8 in a user id.
        let mut bytes = ClientFrame::PresenceQuery("ab".into()).encode();
        bytes[3] = 0xff;
        assert!(ClientFrame::decode(&bytes).is_err());
    }
}
