//! The root key and the DH ratchet step.

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::ChainKey;
use crate::{
    dh::{DhKeyPair, DhPublicKey},
    error::KeyError,
    kdf::{INFO_ROOT, hkdf},
};

/// The root key `RK`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct RootKey(Box<[u8; 32]>);

impl RootKey {
    pub(crate) fn new(bytes: [u8; 32]) -> Self {
        Self(Box::new(bytes))
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// `RK', CK = KDF_RK(RK, DH(ours, theirs))`; the new chain starts at index 0.
    pub(crate) fn step(
        &self,
        ours: &DhKeyPair,
        theirs: &DhPublicKey,
    ) -> Result<(RootKey, ChainKey), KeyError> {
        let shared = ours.agree(theirs)?;
        let out = hkdf::<64>(&self.0, shared.as_ref(), INFO_ROOT);
        let mut root = [0u8; 32];
        let mut chain = [0u8; 32];
        root.copy_from_slice(&out[..32]);
        chain.copy_from_slice(&out[32..]);
        let next = (RootKey::new(root), ChainKey::new(chain, 0));
        root.zeroize();
        chain.zeroize();
        Ok(next)
    }
}
