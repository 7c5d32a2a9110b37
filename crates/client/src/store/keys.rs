//! The app's store key and the two keys each store derives from it.
//!
//! ```text
//! prk        = HKDF-Extract(salt = the store's 16-byte salt, ikm = StoreKey)
//! seal key   = HKDF-Expand(prk, "E2EE-v1 client store seal", 32)    AES-256-GCM
//! blind key  = HKDF-Expand(prk, "E2EE-v1 client store blind", 32)   HMAC-SHA256
//! ```

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

/// Length of the per-store salt kept in the file's metadata.
pub(crate) const SALT_LEN: usize = 16;

const SEAL_INFO: &[u8] = b"E2EE-v1 client store seal";
const BLIND_INFO: &[u8] = b"E2EE-v1 client store blind";

/// The 32-byte key an app passes in, from its platform keystore (Android Keystore-wrapped,
/// iOS Keychain). It never reaches the file; it is wiped when dropped and never printed.
#[derive(Clone)]
pub struct StoreKey(Zeroizing<[u8; 32]>);

impl StoreKey {
    /// Wraps the app's key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(..)")
    }
}

/// The keys of one store.
pub(crate) struct DerivedKeys {
    pub(crate) seal: Zeroizing<[u8; 32]>,
    pub(crate) blind: Zeroizing<[u8; 32]>,
}

impl DerivedKeys {
    pub(crate) fn derive(key: &StoreKey, salt: &[u8; SALT_LEN]) -> Self {
        let hkdf = Hkdf::<Sha256>::new(Some(salt), key.0.as_slice());
        let mut seal = Zeroizing::new([0u8; 32]);
        let mut blind = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's 8,160-byte limit: expand cannot fail.
        let (Ok(()), Ok(())) = (
            hkdf.expand(SEAL_INFO, seal.as_mut_slice()),
            hkdf.expand(BLIND_INFO, blind.as_mut_slice()),
        ) else {
            unreachable!("HKDF-SHA256 expands 32 bytes")
        };
        Self { seal, blind }
    }
}
