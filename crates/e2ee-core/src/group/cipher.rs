//! Sender-key message keys: the 1:1 chain step, then an expansion with the group's own label.
//!
//! ```text
//! MK              = HMAC-SHA256(CK_i, 0x01)        CK_{i+1} = HMAC-SHA256(CK_i, 0x02)
//! key(32) || nonce(12) = HKDF-SHA256(salt = 0^32, ikm = MK,
//!                                    info = "E2EE-v1_SenderKey_MessageKeys")
//! ```

use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag, aead::AeadInPlace};
use zeroize::Zeroize;

use super::GroupError;
use crate::{kdf::hkdf, ratchet::MessageKey};

/// HKDF info of the sender-key message key expansion.
pub(crate) const INFO_SENDER_KEY_MESSAGE_KEYS: &[u8] = b"E2EE-v1_SenderKey_MessageKeys";
/// AES-GCM tag length; full 16 bytes.
pub(crate) const TAG_LEN: usize = 16;

fn expand(key: &MessageKey) -> (Aes256Gcm, [u8; 12]) {
    let mut okm: [u8; 44] = hkdf(None, key.seed(), INFO_SENDER_KEY_MESSAGE_KEYS);
    // 32 bytes is always a valid AES-256 key.
    let cipher =
        Aes256Gcm::new_from_slice(&okm[..32]).unwrap_or_else(|_| Aes256Gcm::new(&[0u8; 32].into()));
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&okm[32..]);
    okm.zeroize();
    (cipher, nonce)
}

/// The expanded key and nonce, for test vectors.
#[cfg(test)]
pub(crate) fn expanded_bytes(key: &MessageKey) -> [u8; 44] {
    hkdf(None, key.seed(), INFO_SENDER_KEY_MESSAGE_KEYS)
}

/// Encrypts `buffer[start..]` in place under `ad` and appends the tag.
pub(crate) fn seal(key: &MessageKey, ad: &[u8], buffer: &mut Vec<u8>, start: usize) {
    let (cipher, nonce) = expand(key);
    // AES-GCM only fails for plaintexts over 64 GiB; callers bound them to 64 KiB.
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), ad, &mut buffer[start..])
        .unwrap_or_default();
    buffer.extend_from_slice(&tag);
}

/// Decrypts `ciphertext || tag` under `ad`; the tag is checked before any plaintext is released.
pub(crate) fn open(
    key: &MessageKey,
    ad: &[u8],
    ciphertext_and_tag: &[u8],
) -> Result<Vec<u8>, GroupError> {
    if ciphertext_and_tag.len() < TAG_LEN {
        return Err(GroupError::AuthenticationFailed);
    }
    let (ciphertext, tag) = ciphertext_and_tag.split_at(ciphertext_and_tag.len() - TAG_LEN);
    let (cipher, nonce) = expand(key);
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
            Err(GroupError::AuthenticationFailed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_tamper() {
        let mk = MessageKey::new([7u8; 32], 0);
        let mut buf = b"group".to_vec();
        seal(&mk, b"ad", &mut buf, 0);
        assert_eq!(buf.len(), 5 + TAG_LEN);
        assert_eq!(open(&mk, b"ad", &buf).unwrap(), b"group");
        assert_eq!(
            open(&mk, b"AD", &buf),
            Err(GroupError::AuthenticationFailed)
        );
        let mut bad = buf.clone();
        bad[0] ^= 1;
        assert_eq!(
            open(&mk, b"ad", &bad),
            Err(GroupError::AuthenticationFailed)
        );
        assert_eq!(
            open(&mk, b"ad", &buf[..15]),
            Err(GroupError::AuthenticationFailed)
        );
    }

    #[test]
    fn label_differs_from_the_pairwise_one() {
        // The same MK must not give the same AES key in a group and in a 1:1 session.
        let mk = MessageKey::new([7u8; 32], 0);
        assert_ne!(expanded_bytes(&mk), mk.expanded_bytes());
    }
}
