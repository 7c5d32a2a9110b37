//! # e2ee-relay-wire
//!
//! The relay's binary frame format spoken over the WebSocket (one frame per binary message),
//! shared by the relay (`e2ee-relay`, which re-exports it as `e2ee_relay::wire`) and the
//! client SDK, which must not pull in a server.
//!
//! Every frame starts with `version u8 = 1` and `kind u8`; all integers are big-endian and
//! addresses use the one [`DeviceAddress`] encoding of `e2ee-encoding`. The byte-by-byte
//! layout of each kind is in `docs/relay.md`; this module is its only implementation. Frames
//! are [`Codec`] values: decoding is strict, so unknown versions, kinds or flag bits, lengths
//! out of bounds, invalid UTF-8 and trailing bytes are all [`DecodeError`]s.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod error;
pub mod limits;
mod server;

pub use client::{ClientFrame, OutEnvelope};
pub use e2ee_encoding::{Codec, DeviceAddress, UserId};
pub use error::{DecodeError, ErrorCode};
pub use server::{Delivery, DevicePresence, MAX_ERROR_DETAIL_LEN, SendStatus, ServerFrame};

use e2ee_encoding::Reader;

/// Wire format version carried in the first byte of every frame.
pub const WIRE_VERSION: u8 = 1;

/// Envelope flag: deliver only to devices connected right now; never stored.
pub const FLAG_ONLINE_ONLY: u8 = 0x01;
const KNOWN_FLAGS: u8 = FLAG_ONLINE_ONLY;

/// Most users one user may allow to see its presence.
pub const MAX_PRESENCE_VIEWERS: usize = 1024;

/// Frame kinds, client to relay (`0x0_`) and relay to client (`0x8_`).
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

fn write_header(out: &mut Vec<u8>, kind: u8) {
    out.push(WIRE_VERSION);
    out.push(kind);
}

/// Checks the version byte and returns the kind byte.
fn read_kind(r: &mut Reader<'_>) -> Result<u8, DecodeError> {
    let version = r.u8()?;
    if version != WIRE_VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    Ok(r.u8()?)
}

#[cfg(test)]
mod tests;
