//! Message keys: one per message, expanded into an AES-256-GCM key and nonce by
//! [`crate::aead::MessageCipher`] and then dropped.

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A message key `MK` and the chain index it belongs to.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageKey {
    seed: Box<[u8; 32]>,
    #[zeroize(skip)]
    index: u32,
}

impl MessageKey {
    pub(crate) fn new(seed: [u8; 32], index: u32) -> Self {
        Self {
            seed: Box::new(seed),
            index,
        }
    }

    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    pub(crate) fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    pub(crate) fn seed_mut(&mut self) -> &mut [u8; 32] {
        &mut self.seed
    }
}
