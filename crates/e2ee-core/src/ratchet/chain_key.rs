//! Symmetric-key ratchet: one HMAC for the message key, one for the next chain key.

use hmac::{
    Hmac, Mac,
    digest::{FixedOutput, generic_array::GenericArray},
};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::MessageKey;
use crate::kdf::{CHAIN_MESSAGE_KEY_SEED, CHAIN_NEXT_KEY_SEED, hmac_sha256};

#[cfg(test)]
thread_local! {
    /// Chain steps derived on this thread, for tests that bound derivation work.
    pub(crate) static DERIVATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

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
    /// Both HMACs share one keyed state, so the key pads are hashed once, and both outputs
    /// are written where they live (no stack copies to wipe).
    pub(crate) fn step(&mut self) -> MessageKey {
        let (message, next) = self.macs();
        let mut key = MessageKey::new([0u8; 32], self.index);
        message.finalize_into(GenericArray::from_mut_slice(key.seed_mut()));
        next.finalize_into(GenericArray::from_mut_slice(self.key.as_mut_slice()));
        self.index = self.index.wrapping_add(1);
        key
    }

    /// Hands the message key for `self.index` to `use_key` and advances the chain only if it
    /// succeeds: a failure leaves the chain where it was.
    pub(crate) fn step_with<T, E>(
        &mut self,
        use_key: impl FnOnce(&MessageKey) -> Result<T, E>,
    ) -> Result<T, E> {
        let (message, next) = self.macs();
        let mut key = MessageKey::new([0u8; 32], self.index);
        message.finalize_into(GenericArray::from_mut_slice(key.seed_mut()));
        let result = use_key(&key);
        if result.is_ok() {
            next.finalize_into(GenericArray::from_mut_slice(self.key.as_mut_slice()));
            self.index = self.index.wrapping_add(1);
        }
        result
    }

    /// `HMAC(CK, 0x01)` and `HMAC(CK, 0x02)`, not yet finalized.
    fn macs(&self) -> (Hmac<Sha256>, Hmac<Sha256>) {
        #[cfg(test)]
        DERIVATIONS.with(|count| count.set(count.get() + 1));
        let keyed = hmac_sha256(&self.key);
        let mut message = keyed.clone();
        message.update(&[CHAIN_MESSAGE_KEY_SEED]);
        let mut next = keyed;
        next.update(&[CHAIN_NEXT_KEY_SEED]);
        (message, next)
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
