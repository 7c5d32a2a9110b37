//! The per-attachment key: 32 random bytes, carried only inside an end-to-end encrypted
//! message, never printed, wiped on drop.

use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of a [`MediaKey`].
pub const MEDIA_KEY_LEN: usize = 32;

/// One attachment's key. Forwarding an attachment reuses its blob and its key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MediaKey([u8; MEDIA_KEY_LEN]);

impl MediaKey {
    /// A fresh random key.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut key = [0u8; MEDIA_KEY_LEN];
        rng.fill_bytes(&mut key);
        Self(key)
    }

    /// A key received in a pointer (or recorded in a test vector).
    pub fn from_bytes(bytes: [u8; MEDIA_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key's bytes, for sealing it into a message or a store.
    pub fn as_bytes(&self) -> &[u8; MEDIA_KEY_LEN] {
        &self.0
    }
}

/// Constant-time, so comparing keys leaks no prefix length.
impl PartialEq for MediaKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for MediaKey {}

impl std::fmt::Debug for MediaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MediaKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    #[test]
    fn keys_are_random_compare_by_value_and_never_print() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let a = MediaKey::generate(&mut rng);
        let b = MediaKey::generate(&mut rng);
        assert_ne!(a, b);
        assert_eq!(a, MediaKey::from_bytes(*a.as_bytes()));
        assert_eq!(format!("{a:?}"), "MediaKey(..)");
    }
}
