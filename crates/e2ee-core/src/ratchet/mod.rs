//! The Double Ratchet's key schedule (Signal's Double Ratchet spec, section 5.2):
//!
//! ```text
//! root step:   RK', CK = HKDF-SHA256(salt = RK, ikm = X25519(ours, theirs),
//!                                    info = "E2EE-v1_Ratchet_Root")          (64 bytes)
//! chain step:  MK  = HMAC-SHA256(CK, 0x01)
//!              CK' = HMAC-SHA256(CK, 0x02)
//! message key: key(32) || nonce(12) = HKDF-SHA256(salt = 0^32, ikm = MK,
//!                                    info = "E2EE-v1_Ratchet_MessageKeys")   (44 bytes)
//! ```
//!
//! The session state machine that drives these lives in `crate::session`.

mod chain_key;
mod message_key;
mod receiver_chain;
mod root_key;
mod skipped_keys;

pub(crate) use chain_key::ChainKey;
#[cfg(test)]
pub(crate) use chain_key::DERIVATIONS;
pub(crate) use message_key::MessageKey;
pub(crate) use receiver_chain::ReceiverChain;
pub(crate) use root_key::RootKey;
pub(crate) use skipped_keys::SkippedKeys;
