//! AES-256-GCM over one chunk, with the key and nonce prefix expanded from the media key and
//! the chunk's position in the nonce.

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce, Tag,
    aead::{AeadInPlace, generic_array::GenericArray},
};

use super::{CHUNK_TAG_LEN, MediaError, MediaKey};
use crate::kdf::{INFO_ATTACHMENT, ZERO_SALT, hkdf};

/// Length of the nonce prefix the key expansion yields.
const NONCE_PREFIX_LEN: usize = 7;

/// The cipher of one attachment.
pub(super) struct ChunkCipher {
    aead: Aes256Gcm,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
}

impl ChunkCipher {
    pub(super) fn new(key: &MediaKey) -> Self {
        let okm = expand(key);
        let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
        nonce_prefix.copy_from_slice(&okm[32..]);
        Self {
            aead: Aes256Gcm::new(GenericArray::from_slice(&okm[..32])),
            nonce_prefix,
        }
    }

    fn nonce(&self, index: u32, last: bool) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        nonce[..NONCE_PREFIX_LEN].copy_from_slice(&self.nonce_prefix);
        nonce[NONCE_PREFIX_LEN..11].copy_from_slice(&index.to_be_bytes());
        nonce[11] = u8::from(last);
        nonce
    }

    /// Encrypts `buffer[start..]` in place as chunk `index` and appends its tag.
    pub(super) fn seal(
        &self,
        index: u32,
        last: bool,
        buffer: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), MediaError> {
        let tag = self
            .aead
            .encrypt_in_place_detached(
                Nonce::from_slice(&self.nonce(index, last)),
                b"",
                &mut buffer[start..],
            )
            .map_err(|_| MediaError::SealFailed)?;
        buffer.extend_from_slice(&tag);
        Ok(())
    }

    /// Decrypts the sealed chunk `index` (ciphertext || tag) in place; on success the first
    /// `sealed.len() - 16` bytes are the chunk's plaintext. The tag is checked before any
    /// plaintext is written.
    pub(super) fn open(&self, index: u32, last: bool, sealed: &mut [u8]) -> Result<(), MediaError> {
        let Some(split) = sealed.len().checked_sub(CHUNK_TAG_LEN) else {
            return Err(MediaError::ChunkRejected { index });
        };
        let (ciphertext, tag) = sealed.split_at_mut(split);
        self.aead
            .decrypt_in_place_detached(
                Nonce::from_slice(&self.nonce(index, last)),
                b"",
                ciphertext,
                Tag::from_slice(tag),
            )
            .map_err(|_| MediaError::ChunkRejected { index })
    }
}

/// `aes_key || nonce_prefix` of a media key (also what the test vectors record).
pub(crate) fn expand(key: &MediaKey) -> zeroize::Zeroizing<[u8; 39]> {
    hkdf(&ZERO_SALT, key.as_bytes(), INFO_ATTACHMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_and_flag_are_in_the_nonce() {
        let cipher = ChunkCipher::new(&MediaKey::from_bytes([3; 32]));
        let mut sealed = b"chunk".to_vec();
        cipher.seal(5, false, &mut sealed, 0).unwrap();
        for (index, last) in [(4, false), (6, false), (5, true)] {
            let mut copy = sealed.clone();
            assert_eq!(
                cipher.open(index, last, &mut copy),
                Err(MediaError::ChunkRejected { index })
            );
        }
        cipher.open(5, false, &mut sealed).unwrap();
        assert_eq!(&sealed[..5], b"chunk");
        assert_eq!(
            cipher.open(0, false, &mut [0u8; CHUNK_TAG_LEN - 1]),
            Err(MediaError::ChunkRejected { index: 0 })
        );
    }
}
