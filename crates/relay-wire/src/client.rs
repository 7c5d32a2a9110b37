//! Client-to-relay frames: `SEND`, `ACK`, `PRESENCE_QUERY`, `PRESENCE_ALLOW`.

use std::fmt;

use e2ee_encoding::{Codec, DeviceAddress, Reader, UserId};

use super::{
    KNOWN_FLAGS, MAX_PRESENCE_VIEWERS,
    error::{DecodeError, invalid},
    kind, read_kind, write_header,
};
use crate::limits::{
    MAX_ACK_BATCH, MAX_BATCH_ENVELOPES, MAX_FRAME_LEN, MAX_PAYLOAD_LEN, MAX_RECIPIENTS,
};

/// One envelope of a `SEND` frame: one ciphertext for one or more recipient devices.
#[derive(Clone, PartialEq, Eq)]
pub struct OutEnvelope {
    /// Flag bits ([`super::FLAG_ONLINE_ONLY`]).
    pub flags: u8,
    /// Sender-chosen id; a retry with the same (sender, id) is stored once.
    pub msg_id: u64,
    /// 1..=[`MAX_RECIPIENTS`] devices; the payload is stored once for all of them.
    pub recipients: Vec<DeviceAddress>,
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

impl OutEnvelope {
    fn write(&self, out: &mut Vec<u8>) {
        out.push(self.flags);
        self.msg_id.write(out);
        (self.recipients.len() as u16).write(out);
        for recipient in &self.recipients {
            recipient.write(out);
        }
        (self.payload.len() as u32).write(out);
        out.extend_from_slice(&self.payload);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flags = r.u8()?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(invalid("unknown flag bits"));
        }
        let msg_id = r.u64()?;
        let n = usize::from(r.u16()?);
        if n == 0 {
            return Err(invalid("no recipients"));
        }
        if n > MAX_RECIPIENTS {
            return Err(DecodeError::TooManyRecipients);
        }
        let mut recipients = Vec::with_capacity(n);
        for _ in 0..n {
            recipients.push(DeviceAddress::read(r)?);
        }
        let len = r.u32()? as usize;
        if len > MAX_PAYLOAD_LEN {
            return Err(DecodeError::PayloadTooLarge);
        }
        let payload = r.take(len)?.to_vec();
        Ok(Self {
            flags,
            msg_id,
            recipients,
            payload,
        })
    }
}

/// Client-to-relay frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// Store and forward these envelopes.
    Send(Vec<OutEnvelope>),
    /// These deliveries were processed; delete them.
    Ack(Vec<u64>),
    /// Presence of a user's devices.
    PresenceQuery(UserId),
    /// Replace the users (besides the sender's own devices) allowed to read the sender's
    /// user's presence; at most [`MAX_PRESENCE_VIEWERS`], empty = nobody else.
    PresenceAllow(Vec<UserId>),
}

impl ClientFrame {
    /// The msg id of the first envelope of bytes that start like a `SEND` frame, or 0. A
    /// refused batch's `ERROR` names it, even when the frame did not decode.
    pub fn first_msg_id(bytes: &[u8]) -> u64 {
        // version u8, kind u8, count u16, flags u8, then the first envelope's msg_id u64.
        match bytes {
            [super::WIRE_VERSION, kind::SEND, _, _, _, rest @ ..] if rest.len() >= 8 => {
                let mut id = [0u8; 8];
                id.copy_from_slice(&rest[..8]);
                u64::from_be_bytes(id)
            }
            _ => 0,
        }
    }
}

/// A `u16` count of a list, 1..=`max` (or 0..=`max` when `may_be_empty`).
fn read_count(
    r: &mut Reader<'_>,
    max: usize,
    may_be_empty: bool,
    empty: &'static str,
) -> Result<usize, DecodeError> {
    let count = usize::from(r.u16()?);
    if count == 0 && !may_be_empty {
        return Err(invalid(empty));
    }
    if count > max {
        return Err(DecodeError::BatchTooLarge);
    }
    Ok(count)
}

impl Codec for ClientFrame {
    type Error = DecodeError;
    const MAX_LEN: usize = MAX_FRAME_LEN;

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            ClientFrame::Send(envelopes) => {
                write_header(out, kind::SEND);
                (envelopes.len() as u16).write(out);
                for envelope in envelopes {
                    envelope.write(out);
                }
            }
            ClientFrame::Ack(seqs) => {
                write_header(out, kind::ACK);
                (seqs.len() as u16).write(out);
                for seq in seqs {
                    seq.write(out);
                }
            }
            ClientFrame::PresenceQuery(user) => {
                write_header(out, kind::PRESENCE_QUERY);
                user.write(out);
            }
            ClientFrame::PresenceAllow(users) => {
                write_header(out, kind::PRESENCE_ALLOW);
                (users.len() as u16).write(out);
                for user in users {
                    user.write(out);
                }
            }
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match read_kind(r)? {
            kind::SEND => {
                let count = read_count(r, MAX_BATCH_ENVELOPES, false, "empty batch")?;
                let mut envelopes = Vec::with_capacity(count);
                for _ in 0..count {
                    envelopes.push(OutEnvelope::read(r)?);
                }
                ClientFrame::Send(envelopes)
            }
            kind::ACK => {
                let count = read_count(r, MAX_ACK_BATCH, false, "empty ack")?;
                let mut seqs = Vec::with_capacity(count);
                for _ in 0..count {
                    seqs.push(r.u64()?);
                }
                ClientFrame::Ack(seqs)
            }
            kind::PRESENCE_QUERY => ClientFrame::PresenceQuery(UserId::read(r)?),
            kind::PRESENCE_ALLOW => {
                let count = read_count(r, MAX_PRESENCE_VIEWERS, true, "")?;
                let mut users = Vec::with_capacity(count);
                for _ in 0..count {
                    users.push(UserId::read(r)?);
                }
                ClientFrame::PresenceAllow(users)
            }
            other => return Err(DecodeError::UnknownKind(other)),
        })
    }
}
