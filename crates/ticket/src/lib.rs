//! Relay connection tickets.
//!
//! The key server authenticates a device (it holds the device credentials) and hands it a
//! short-lived ticket signed with the key server's Ed25519 ticket key. The relay holds only
//! the matching public key, so it authenticates devices without a shared database.
//!
//! Byte layout (all integers big-endian):
//!
//! ```text
//! version      u8      = 1
//! device       DeviceAddress (user id len u8 1..=128 || UTF-8 without NUL || device id u32)
//! issued_at    u64     unix seconds
//! expires_at   u64     unix seconds
//! signature    [u8;64] Ed25519 over  "E2EE-v1 relay ticket" || all bytes above
//! ```
//!
//! Text form (HTTP header or query parameter): unpadded base64url of those bytes.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod removals;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use e2ee_encoding::{Codec, DeviceAddress, Reader};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// Version byte of the ticket layout.
pub const TICKET_VERSION: u8 = 1;
/// Longest lifetime a relay accepts, whatever the ticket says: 24 hours.
pub const MAX_TICKET_LIFETIME_SECS: u64 = 24 * 60 * 60;
/// Tolerated clock skew between key server and relay.
pub const CLOCK_SKEW_SECS: u64 = 60;
/// Largest encoded ticket.
pub const MAX_TICKET_LEN: usize = 1 + DeviceAddress::MAX_LEN + 8 + 8 + 64;

const SIGNATURE_CONTEXT: &[u8] = b"E2EE-v1 relay ticket";

/// Why a ticket was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    /// The bytes or text are not a ticket.
    #[error("malformed ticket: {0}")]
    Malformed(&'static str),
    /// The signature does not verify under the configured key server key.
    #[error("ticket signature invalid")]
    BadSignature,
    /// The ticket's validity window does not contain `now`.
    #[error("ticket expired or not yet valid")]
    Expired,
    /// The ticket claims a lifetime longer than [`MAX_TICKET_LIFETIME_SECS`].
    #[error("ticket lifetime too long")]
    LifetimeTooLong,
}

/// The claims a ticket carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The device it admits.
    pub device: DeviceAddress,
    /// Unix seconds.
    pub issued_at: u64,
    /// Unix seconds; the ticket is valid while `now < expires_at`.
    pub expires_at: u64,
}

/// The signed part: `version || device || issued_at || expires_at`.
impl Codec for Ticket {
    type Error = TicketError;
    const MAX_LEN: usize = MAX_TICKET_LEN - 64;

    fn write(&self, out: &mut Vec<u8>) {
        out.push(TICKET_VERSION);
        self.device.write(out);
        self.issued_at.write(out);
        self.expires_at.write(out);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, TicketError> {
        let version = r.u8()?;
        if version != TICKET_VERSION {
            return Err(TicketError::Malformed("unknown version"));
        }
        let device = DeviceAddress::read(r).map_err(|e| match e {
            e2ee_encoding::DecodeError::Truncated => TicketError::Malformed("truncated"),
            _ => TicketError::Malformed("user id"),
        })?;
        Ok(Ticket {
            device,
            issued_at: r.u64()?,
            expires_at: r.u64()?,
        })
    }
}

impl Ticket {
    /// Signs the ticket with the key server's ticket key and returns its bytes.
    pub fn sign(&self, key: &SigningKey) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_TICKET_LEN);
        self.write(&mut out);
        let signature = key.sign(&signed_message(&out));
        out.extend_from_slice(&signature.to_bytes());
        out
    }

    /// Signs the ticket and returns its text form (unpadded base64url).
    pub fn sign_to_text(&self, key: &SigningKey) -> String {
        URL_SAFE_NO_PAD.encode(self.sign(key))
    }

    /// Parses and verifies ticket bytes: layout, signature, then validity window at `now`.
    pub fn verify(bytes: &[u8], key: &VerifyingKey, now: u64) -> Result<Ticket, TicketError> {
        if bytes.len() > MAX_TICKET_LEN {
            return Err(TicketError::Malformed("too long"));
        }
        let (ticket, signature) = Reader::decode_exact(bytes, |r| {
            let ticket = Ticket::read(r)?;
            let signature = Signature::from_bytes(&r.array()?);
            Ok::<_, TicketError>((ticket, signature))
        })?;
        key.verify_strict(&signed_message(&bytes[..bytes.len() - 64]), &signature)
            .map_err(|_| TicketError::BadSignature)?;
        if ticket.expires_at.saturating_sub(ticket.issued_at) > MAX_TICKET_LIFETIME_SECS {
            return Err(TicketError::LifetimeTooLong);
        }
        if now.saturating_add(CLOCK_SKEW_SECS) < ticket.issued_at || now >= ticket.expires_at {
            return Err(TicketError::Expired);
        }
        Ok(ticket)
    }

    /// Parses and verifies the text form.
    pub fn verify_text(text: &str, key: &VerifyingKey, now: u64) -> Result<Ticket, TicketError> {
        if text.len() > MAX_TICKET_LEN * 4 / 3 + 4 {
            return Err(TicketError::Malformed("too long"));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| TicketError::Malformed("not base64url"))?;
        Self::verify(&bytes, key, now)
    }
}

impl From<e2ee_encoding::DecodeError> for TicketError {
    fn from(e: e2ee_encoding::DecodeError) -> Self {
        match e {
            e2ee_encoding::DecodeError::Truncated => TicketError::Malformed("truncated"),
            e2ee_encoding::DecodeError::TrailingBytes => TicketError::Malformed("length"),
            _ => TicketError::Malformed("invalid field"),
        }
    }
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGNATURE_CONTEXT.len() + body.len());
    msg.extend_from_slice(SIGNATURE_CONTEXT);
    msg.extend_from_slice(body);
    msg
}

#[cfg(test)]
mod tests {
    use rand_core::OsRng;

    use super::*;

    fn ticket() -> Ticket {
        Ticket {
            device: DeviceAddress::new("alice", 7).unwrap(),
            issued_at: 1_000,
            expires_at: 1_600,
        }
    }

    #[test]
    fn the_signed_part_passes_the_generic_codec_check() {
        e2ee_encoding::check_codec(&ticket());
        let longest = Ticket {
            device: DeviceAddress::new("u".repeat(e2ee_encoding::MAX_USER_ID_LEN), 1).unwrap(),
            ..ticket()
        };
        e2ee_encoding::check_codec(&longest);
        let key = SigningKey::generate(&mut OsRng);
        assert_eq!(longest.sign(&key).len(), MAX_TICKET_LEN);
    }

    #[test]
    fn round_trip_bytes_and_text() {
        let key = SigningKey::generate(&mut OsRng);
        let bytes = ticket().sign(&key);
        assert_eq!(
            Ticket::verify(&bytes, &key.verifying_key(), 1_100).unwrap(),
            ticket()
        );
        let text = ticket().sign_to_text(&key);
        assert_eq!(
            Ticket::verify_text(&text, &key.verifying_key(), 1_100).unwrap(),
            ticket()
        );
    }

    #[test]
    fn forged_and_tampered_tickets_fail() {
        let key = SigningKey::generate(&mut OsRng);
        let other = SigningKey::generate(&mut OsRng);
        let bytes = ticket().sign(&other);
        assert_eq!(
            Ticket::verify(&bytes, &key.verifying_key(), 1_100),
            Err(TicketError::BadSignature)
        );
        let mut bytes = ticket().sign(&key);
        for i in 0..bytes.len() {
            bytes[i] ^= 1;
            assert!(
                Ticket::verify(&bytes, &key.verifying_key(), 1_100).is_err(),
                "byte {i}"
            );
            bytes[i] ^= 1;
        }
    }

    #[test]
    fn expiry_and_lifetime_are_enforced() {
        let key = SigningKey::generate(&mut OsRng);
        let bytes = ticket().sign(&key);
        assert_eq!(
            Ticket::verify(&bytes, &key.verifying_key(), 1_600),
            Err(TicketError::Expired)
        );
        assert_eq!(
            Ticket::verify(&bytes, &key.verifying_key(), 900),
            Err(TicketError::Expired)
        );
        let long = Ticket {
            expires_at: 1_000 + MAX_TICKET_LIFETIME_SECS + 1,
            ..ticket()
        };
        let bytes = long.sign(&key);
        assert_eq!(
            Ticket::verify(&bytes, &key.verifying_key(), 1_100),
            Err(TicketError::LifetimeTooLong)
        );
    }

    #[test]
    fn garbage_never_panics() {
        let key = SigningKey::generate(&mut OsRng).verifying_key();
        for len in 0..MAX_TICKET_LEN + 3 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            assert!(Ticket::verify(&bytes, &key, 0).is_err());
        }
        assert!(Ticket::verify_text("!!!", &key, 0).is_err());
    }
}
