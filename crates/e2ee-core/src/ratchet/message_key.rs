//! Message keys: expanded into an AES-256-GCM key and nonce, used once.

use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag, aead::AeadInPlace};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{
    error::DecryptError,
    kdf::{INFO_MESSAGE_KEYS, hkdf},
};

/// AES-GCM tag length; full 16 bytes, never truncated.
pub(crate) const TAG_LEN: usize = 16;

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

    /// `key || nonce = HKDF(0^32, MK, info)`. The nonce is unique because MK is.
    fn expand(&self) -> (Aes256Gcm, [u8; 12]) {
        let mut okm: [u8; 44] = hkdf(None, self.seed.as_slice(), INFO_MESSAGE_KEYS);
        let cipher = Aes256Gcm::new_from_slice(&okm[..32]);
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&okm[32..]);
        let cipher = match cipher {
            Ok(cipher) => cipher,
            // 32 bytes is always a valid AES-256 key.
            Err(_) => Aes256Gcm::new(&[0u8; 32].into()),
        };
        okm.zeroize();
        (cipher, nonce)
    }

    /// The derived AES key and nonce, for test vectors.
    #[cfg(test)]
    #[allow(dead_code)]
    pub(crate) fn expanded_bytes(&self) -> [u8; 44] {
        hkdf(None, self.seed.as_slice(), INFO_MESSAGE_KEYS)
    }

    /// Encrypts `buffer` in place and appends the tag.
    pub(crate) fn encrypt(&self, ad: &[u8], buffer: &mut Vec<u8>, start: usize) {
        let (cipher, nonce) = self.expand();
        let tag = cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), ad, &mut buffer[start..])
            .unwrap_or_default();
        buffer.extend_from_slice(&tag);
    }

    /// Decrypts `ciphertext || tag`; the tag is checked (in constant time) before any
    /// plaintext is released.
    pub(crate) fn decrypt(
        &self,
        ad: &[u8],
        ciphertext_and_tag: &[u8],
    ) -> Result<Vec<u8>, DecryptError> {
        if ciphertext_and_tag.len() < TAG_LEN {
            return Err(DecryptError::AuthenticationFailed);
        }
        let (ciphertext, tag) = ciphertext_and_tag.split_at(ciphertext_and_tag.len() - TAG_LEN);
        let (cipher, nonce) = self.expand();
        let mut plaintext = ciphertext.to_vec();
        match cipher.decrypt_in_place_detached(
            Nonce::from_slice(&nonce),
            ad,
            &mut plaintext,
            Tag::from_slice(tag),
        ) {
            Ok(()) => Ok(plaintext),
            Err(_) => {
                plaintext.zeroize();
                Err(DecryptError::AuthenticationFailed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_tamper() {
        let mk = MessageKey::new([9u8; 32], 0);
        let mut buf = b"hello".to_vec();
        mk.encrypt(b"ad", &mut buf, 0);
        assert_eq!(buf.len(), 5 + TAG_LEN);
        assert_eq!(mk.decrypt(b"ad", &buf).unwrap(), b"hello");
        assert_eq!(
            mk.decrypt(b"AD", &buf),
            Err(DecryptError::AuthenticationFailed)
        );
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 1;
            assert_eq!(
                mk.decrypt(b"ad", &bad),
                Err(DecryptError::AuthenticationFailed)
            );
        }
        assert_eq!(
            mk.decrypt(b"ad", &buf[..15]),
            Err(DecryptError::AuthenticationFailed)
        );
    }
}
