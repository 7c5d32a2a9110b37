//! Relay-to-client frames: `SEND_RESULT`, `DELIVER`, `ERROR`, `QUEUE_DRAINED`, `PRESENCE`,
//! `PRESENCE_ALLOWED`.

use std::{fmt, sync::Arc};

use e2ee_encoding::{Codec, DeviceAddress, Reader, UserId};

use super::{
    error::{DecodeError, ErrorCode, invalid},
    kind, read_kind, write_header,
};
use crate::limits::MAX_FRAME_LEN;

/// Longest detail text of an `ERROR` frame, in bytes (one length byte).
pub const MAX_ERROR_DETAIL_LEN: usize = 255;

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
    pub sender: DeviceAddress,
    /// Sender-chosen id (clients deduplicate on (sender, msg_id)).
    pub msg_id: u64,
    /// Opaque ciphertext.
    pub payload: Arc<[u8]>,
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

impl Delivery {
    /// Bytes of the `DELIVER` frame after the header, so callers can reserve exactly.
    fn body_len(&self) -> usize {
        8 + 1 + 8 + 1 + self.sender.user_id().len() + 4 + 8 + 4 + self.payload.len()
    }

    /// Writes the `DELIVER` frame of this delivery (the hot path: one per delivered
    /// envelope, and inside node-to-node batches, so without a clone).
    pub fn write_frame(&self, out: &mut Vec<u8>) {
        out.reserve(2 + self.body_len());
        write_header(out, kind::DELIVER);
        self.seq.write(out);
        out.push(self.flags);
        self.server_ts_ms.write(out);
        self.sender.write(out);
        self.msg_id.write(out);
        (self.payload.len() as u32).write(out);
        out.extend_from_slice(&self.payload);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let seq = r.u64()?;
        let flags = r.u8()?;
        let server_ts_ms = r.u64()?;
        let sender = DeviceAddress::read(r)?;
        let msg_id = r.u64()?;
        let len = r.u32()? as usize;
        let payload = r.take(len)?.into();
        Ok(Self {
            seq,
            flags,
            server_ts_ms,
            sender,
            msg_id,
            payload,
        })
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
        /// Human-readable detail (ASCII, at most [`MAX_ERROR_DETAIL_LEN`] bytes, never
        /// payload bytes; longer text is cut when encoded).
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
        user: UserId,
        /// Its known devices.
        devices: Vec<DevicePresence>,
    },
    /// The allow list sent with `PRESENCE_ALLOW` is stored and in effect.
    PresenceAllowed {
        /// Number of users now allowed.
        count: u16,
    },
}

impl Codec for ServerFrame {
    type Error = DecodeError;
    const MAX_LEN: usize = MAX_FRAME_LEN;

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            ServerFrame::SendResult(items) => {
                write_header(out, kind::SEND_RESULT);
                (items.len() as u16).write(out);
                for (id, status) in items {
                    id.write(out);
                    out.push(*status as u8);
                }
            }
            ServerFrame::Deliver(delivery) => delivery.write_frame(out),
            ServerFrame::Error {
                code,
                msg_id,
                retry_after_ms,
                detail,
            } => {
                write_header(out, kind::ERROR);
                (*code as u16).write(out);
                msg_id.write(out);
                retry_after_ms.write(out);
                let detail = detail.as_bytes();
                let n = detail.len().min(MAX_ERROR_DETAIL_LEN);
                out.push(n as u8);
                out.extend_from_slice(&detail[..n]);
            }
            ServerFrame::QueueDrained { count } => {
                write_header(out, kind::QUEUE_DRAINED);
                count.write(out);
            }
            ServerFrame::Presence { user, devices } => {
                write_header(out, kind::PRESENCE);
                user.write(out);
                (devices.len() as u16).write(out);
                for device in devices {
                    device.device_id.write(out);
                    out.push(u8::from(device.online));
                    device.last_seen_ms.write(out);
                }
            }
            ServerFrame::PresenceAllowed { count } => {
                write_header(out, kind::PRESENCE_ALLOWED);
                count.write(out);
            }
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match read_kind(r)? {
            kind::SEND_RESULT => {
                let n = usize::from(r.u16()?);
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    let id = r.u64()?;
                    let status = SendStatus::from_u8(r.u8()?).ok_or(invalid("status"))?;
                    items.push((id, status));
                }
                ServerFrame::SendResult(items)
            }
            kind::DELIVER => ServerFrame::Deliver(Delivery::read(r)?),
            kind::ERROR => {
                let code = ErrorCode::from_u16(r.u16()?).ok_or(invalid("code"))?;
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
                let user = UserId::read(r)?;
                let n = usize::from(r.u16()?);
                let mut devices = Vec::with_capacity(n);
                for _ in 0..n {
                    let device_id = r.u32()?;
                    let online = r.flag()?;
                    let last_seen_ms = r.u64()?;
                    devices.push(DevicePresence {
                        device_id,
                        online,
                        last_seen_ms,
                    });
                }
                ServerFrame::Presence { user, devices }
            }
            kind::PRESENCE_ALLOWED => ServerFrame::PresenceAllowed { count: r.u16()? },
            other => return Err(DecodeError::UnknownKind(other)),
        })
    }
}
