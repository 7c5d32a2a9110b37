//! Symmetric-key ratchet: one HMAC for the message key, one for the next chain key.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::MessageKey;
use crate::kdf::{CHAIN_MESSAGE_KEY_SEED, CHAIN_NEXT_KEY_SEED};

/// A chain key `CK` and the index of the next message key it yields.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct ChainKey {
    key: Box<[u8; 32]>,
    #[zeroize(skip)]
    index: u32,
}

impl ChainKey {
    pub(crate) fn new(key: [u8; 32], index: u32) -> Self {
        Self {
            key: Box::new(key),
            index,
        }
    }

    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// Returns the message key for `self.index` and advances the chain.
    ///
    /// Both HMACs share one keyed state, so the key pads are hashed once.
    pub(crate) fn step(&mut self) -> MessageKey {
        let (message, next) = self.derive();
        let index = self.index;
        *self.key = next;
        self.index = index.wrapping_add(1);
        MessageKey::new(message, index)
    }

    fn derive(&self) -> ([u8; 32], [u8; 32]) {
        // HMAC takes keys of any length; new_from_slice cannot fail for 32 bytes.
        let keyed = match <Hmac<Sha256> as Mac>::new_from_slice(self.key.as_slice()) {
            Ok(mac) => mac,
            Err(_) => return ([0; 32], [0; 32]),
        };
        let mut message = keyed.clone();
        message.update(&[CHAIN_MESSAGE_KEY_SEED]);
        let mut next = keyed;
        next.update(&[CHAIN_NEXT_KEY_SEED]);
        (
            message.finalize().into_bytes().into(),
            next.finalize().into_bytes().into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kdf::hmac_byte;

    #[test]
    fn step_matches_the_spec_formula() {
        let mut chain = ChainKey::new([3u8; 32], 7);
        let mk = chain.step();
        assert_eq!(mk.index(), 7);
        assert_eq!(mk.seed(), &hmac_byte(&[3u8; 32], 0x01));
        assert_eq!(chain.as_bytes(), &hmac_byte(&[3u8; 32], 0x02));
        assert_eq!(chain.index(), 8);
    }
}
