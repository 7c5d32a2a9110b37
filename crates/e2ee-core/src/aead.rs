//! The one AEAD of the protocol: AES-256-GCM with key and nonce expanded from a message key,
//! used by pairwise messages and sender-key messages alike, each with its own label:
//!
//! ```text
//! key (32) || nonce (12) = HKDF-SHA256(salt = 0^32, ikm = MK, info)      (44 bytes)
//!   info = "E2EE-v1_Ratchet_MessageKeys"    pairwise   (docs/protocol.md K6)
//!          "E2EE-v1_SenderKey_MessageKeys"  sender key (docs/protocol-groups.md section 2)
//! ```
//!
//! Each message key is used for exactly one message, so each (key, nonce) pair once. Tags are
//! always the full 16 bytes and are checked (in constant time, by `aes-gcm`) before any
//! plaintext is released.

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce, Tag,
    aead::{AeadInPlace, generic_array::GenericArray},
};
use zeroize::{Zeroize, Zeroizing};

use crate::{
    kdf::{INFO_MESSAGE_KEYS, INFO_SENDER_KEY_MESSAGE_KEYS, ZERO_SALT, hkdf},
    ratchet::MessageKey,
};

/// AES-GCM tag length; full 16 bytes, never truncated.
pub(crate) const TAG_LEN: usize = 16;

/// The AEAD refused to encrypt: only possible for a plaintext over AES-GCM's 64 GiB bound,
/// which every caller's own limit rules out. Callers turn it into their typed error; the
/// buffer is then left without a tag and must not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SealFailed;

/// The tag did not verify. Deliberately carries nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenFailed;

/// AES-256-GCM under one message key.
pub(crate) struct MessageCipher {
    aead: Aes256Gcm,
    nonce: [u8; 12],
}

impl MessageCipher {
    /// The cipher of a pairwise (Double Ratchet) message key.
    pub(crate) fn pairwise(key: &MessageKey) -> Self {
        Self::expand(key, INFO_MESSAGE_KEYS)
    }

    /// The cipher of a sender-key (group) message key.
    pub(crate) fn sender_key(key: &MessageKey) -> Self {
        Self::expand(key, INFO_SENDER_KEY_MESSAGE_KEYS)
    }

    fn expand(key: &MessageKey, info: &[u8]) -> Self {
        let okm = expanded(key, info);
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&okm[32..]);
        Self {
            aead: Aes256Gcm::new(GenericArray::from_slice(&okm[..32])),
            nonce,
        }
    }

    /// Encrypts `buffer[start..]` in place under `ad` and appends the tag.
    pub(crate) fn seal(
        &self,
        ad: &[u8],
        buffer: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), SealFailed> {
        let tag = self
            .aead
            .encrypt_in_place_detached(Nonce::from_slice(&self.nonce), ad, &mut buffer[start..])
            .map_err(|_| SealFailed)?;
        buffer.extend_from_slice(&tag);
        Ok(())
    }

    /// Decrypts `ciphertext || tag` under `ad`.
    pub(crate) fn open(&self, ad: &[u8], ciphertext_and_tag: &[u8]) -> Result<Vec<u8>, OpenFailed> {
        let Some(split) = ciphertext_and_tag.len().checked_sub(TAG_LEN) else {
            return Err(OpenFailed);
        };
        let (ciphertext, tag) = ciphertext_and_tag.split_at(split);
        let mut plaintext = ciphertext.to_vec();
        match self.aead.decrypt_in_place_detached(
            Nonce::from_slice(&self.nonce),
            ad,
            &mut plaintext,
            Tag::from_slice(tag),
        ) {
            Ok(()) => Ok(plaintext),
            Err(_) => {
                plaintext.zeroize();
                Err(OpenFailed)
            }
        }
    }
}

/// `key || nonce` for `key` under `info` (also what the test vectors record).
pub(crate) fn expanded(key: &MessageKey, info: &[u8]) -> Zeroizing<[u8; 44]> {
    hkdf(&ZERO_SALT, key.seed(), info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_tamper() {
        let mk = MessageKey::new([9u8; 32], 0);
        for cipher in [MessageCipher::pairwise(&mk), MessageCipher::sender_key(&mk)] {
            let mut buf = b"hello".to_vec();
            cipher.seal(b"ad", &mut buf, 0).unwrap();
            assert_eq!(buf.len(), 5 + TAG_LEN);
            assert_eq!(cipher.open(b"ad", &buf).unwrap(), b"hello");
            assert_eq!(cipher.open(b"AD", &buf), Err(OpenFailed));
            for i in 0..buf.len() {
                let mut bad = buf.clone();
                bad[i] ^= 1;
                assert_eq!(cipher.open(b"ad", &bad), Err(OpenFailed));
            }
            assert_eq!(cipher.open(b"ad", &buf[..TAG_LEN - 1]), Err(OpenFailed));
            assert_eq!(cipher.open(b"ad", &[]), Err(OpenFailed));
        }
    }

    #[test]
    fn the_two_labels_give_different_keys() {
        // The same MK must not give the same AES key in a group and in a 1:1 session.
        let mk = MessageKey::new([7u8; 32], 0);
        assert_ne!(
            *expanded(&mk, INFO_MESSAGE_KEYS),
            *expanded(&mk, INFO_SENDER_KEY_MESSAGE_KEYS)
        );
        let mut one = b"same".to_vec();
        let mut other = one.clone();
        MessageCipher::pairwise(&mk).seal(b"", &mut one, 0).unwrap();
        MessageCipher::sender_key(&mk)
            .seal(b"", &mut other, 0)
            .unwrap();
        assert_ne!(one, other);
    }

    #[test]
    fn only_the_prefix_before_start_stays_clear() {
        let mk = MessageKey::new([3u8; 32], 0);
        let cipher = MessageCipher::pairwise(&mk);
        let mut buf = b"headerplaintext".to_vec();
        cipher.seal(b"", &mut buf, 6).unwrap();
        assert_eq!(&buf[..6], b"header");
        assert_ne!(&buf[6..15], b"plaintext");
        assert_eq!(cipher.open(b"", &buf[6..]).unwrap(), b"plaintext");
    }
}
