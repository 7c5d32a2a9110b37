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
//! user_id_len  u8      1..=128
//! user_id      bytes   UTF-8
//! device_id    u32
//! issued_at    u64     unix seconds
//! expires_at   u64     unix seconds
//! signature    [u8;64] Ed25519 over  "E2EE-v1 relay ticket" || all bytes above
//! ```
//!
//! Text form (HTTP header or query parameter): unpadded base64url of those bytes.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// Version byte of the ticket layout.
pub const TICKET_VERSION: u8 = 1;
/// Longest user id in bytes (DESIGN.md: opaque UTF-8, at most 128 bytes).
pub const MAX_USER_ID_LEN: usize = 128;
/// Longest lifetime a relay accepts, whatever the ticket says: 24 hours.
pub const MAX_TICKET_LIFETIME_SECS: u64 = 24 * 60 * 60;
/// Tolerated clock skew between key server and relay.
pub const CLOCK_SKEW_SECS: u64 = 60;
/// Largest encoded ticket.
pub const MAX_TICKET_LEN: usize = 1 + 1 + MAX_USER_ID_LEN + 4 + 8 + 8 + 64;

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
    /// Caller error when issuing: user id empty or too long.
    #[error("invalid user id")]
    InvalidUserId,
}

/// The claims a ticket carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// User id, opaque UTF-8, at most [`MAX_USER_ID_LEN`] bytes.
    pub user_id: String,
    /// Device id of the user.
    pub device_id: u32,
    /// Unix seconds.
    pub issued_at: u64,
    /// Unix seconds; the ticket is valid while `now < expires_at`.
    pub expires_at: u64,
}

impl Ticket {
    fn body(&self) -> Result<Vec<u8>, TicketError> {
        let uid = self.user_id.as_bytes();
        if uid.is_empty() || uid.len() > MAX_USER_ID_LEN {
            return Err(TicketError::InvalidUserId);
        }
        let mut out = Vec::with_capacity(MAX_TICKET_LEN);
        out.push(TICKET_VERSION);
        out.push(uid.len() as u8);
        out.extend_from_slice(uid);
        out.extend_from_slice(&self.device_id.to_be_bytes());
        out.extend_from_slice(&self.issued_at.to_be_bytes());
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        Ok(out)
    }

    /// Signs the ticket with the key server's ticket key and returns its bytes.
    pub fn sign(&self, key: &SigningKey) -> Result<Vec<u8>, TicketError> {
        let mut out = self.body()?;
        let signature = key.sign(&signed_message(&out));
        out.extend_from_slice(&signature.to_bytes());
        Ok(out)
    }

    /// Signs the ticket and returns its text form (unpadded base64url).
    pub fn sign_to_text(&self, key: &SigningKey) -> Result<String, TicketError> {
        Ok(URL_SAFE_NO_PAD.encode(self.sign(key)?))
    }

    /// Parses and verifies ticket bytes: layout, signature, then validity window at `now`.
    pub fn verify(bytes: &[u8], key: &VerifyingKey, now: u64) -> Result<Ticket, TicketError> {
        if bytes.len() > MAX_TICKET_LEN {
            return Err(TicketError::Malformed("too long"));
        }
        let (&version, rest) = bytes.split_first().ok_or(TicketError::Malformed("empty"))?;
        if version != TICKET_VERSION {
            return Err(TicketError::Malformed("unknown version"));
        }
        let (&uid_len, rest) = rest
            .split_first()
            .ok_or(TicketError::Malformed("truncated"))?;
        let uid_len = usize::from(uid_len);
        if uid_len == 0 || uid_len > MAX_USER_ID_LEN {
            return Err(TicketError::Malformed("user id length"));
        }
        if rest.len() != uid_len + 4 + 8 + 8 + 64 {
            return Err(TicketError::Malformed("length"));
        }
        let (uid, rest) = rest.split_at(uid_len);
        let (device, rest) = rest.split_at(4);
        let (issued, rest) = rest.split_at(8);
        let (expires, sig) = rest.split_at(8);
        let signed_len = bytes.len() - 64;
        let signature = Signature::from_slice(sig).map_err(|_| TicketError::BadSignature)?;
        key.verify_strict(&signed_message(&bytes[..signed_len]), &signature)
            .map_err(|_| TicketError::BadSignature)?;
        let user_id = std::str::from_utf8(uid)
            .map_err(|_| TicketError::Malformed("user id not UTF-8"))?
            .to_owned();
        let ticket = Ticket {
            user_id,
            device_id: u32::from_be_bytes(
                device
                    .try_into()
                    .map_err(|_| TicketError::Malformed("device"))?,
            ),
            issued_at: u64::from_be_bytes(
                issued
                    .try_into()
                    .map_err(|_| TicketError::Malformed("issued"))?,
            ),
            expires_at: u64::from_be_bytes(
                expires
                    .try_into()
                    .map_err(|_| TicketError::Malformed("expires"))?,
            ),
        };
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
            user_id: "alice".into(),
            device_id: 7,
            issued_at: 1_000,
            expires_at: 1_600,
        }
    }

    #[test]
    fn round_trip_bytes_and_text() {
        let key = SigningKey::generate(&mut OsRng);
        let bytes = ticket().sign(&key).unwrap();
        assert_eq!(
            Ticket::verify(&bytes, &key.verifying_key(), 1_100).unwrap(),
            ticket()
        );
        let text = ticket().sign_to_text(&key).unwrap();
        assert_eq!(
            Ticket::verify_text(&text, &key.verifying_key(), 1_100).unwrap(),
            ticket()
        );
    }

    #[test]
    fn forged_and_tampered_tickets_fail() {
        let key = SigningKey::generate(&mut OsRng);
        let other = SigningKey::generate(&mut OsRng);
        let bytes = ticket().sign(&other).unwrap();
        assert_eq!(
            Ticket::verify(&bytes, &key.verifying_key(), 1_100),
            Err(TicketError::BadSignature)
        );
        let mut bytes = ticket().sign(&key).unwrap();
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
        let bytes = ticket().sign(&key).unwrap();
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
        let bytes = long.sign(&key).unwrap();
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
        let uid = Ticket {
            user_id: "x".repeat(129),
            ..ticket()
        };
        assert_eq!(
            uid.sign(&SigningKey::generate(&mut OsRng)),
            Err(TicketError::InvalidUserId)
        );
    }
}
