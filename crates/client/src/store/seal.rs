//! Sealing values and blinding lookup keys.
//!
//! ```text
//! blinded = HMAC-SHA256(blind key, space u8 || lookup)
//! AD      = "E2EE-v1 client store" || format version u8 || space u8 || blinded
//! sealed  = nonce (12, random) || AES-256-GCM(seal key, nonce, value, AD)
//! ```
//!
//! The AD ties a sealed value to its row: moved under another lookup key or space, it no
//! longer opens. Nonces are random: at a billion writes in a store's life the chance of a
//! repeated nonce stays below 2^-37.

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{STORE_FORMAT_VERSION, StoreError, keys::DerivedKeys};

/// Largest value the store seals (a session record with its archived states is a few KiB;
/// a group session with 1,024 members' chains under 1 MiB).
pub const MAX_VALUE_LEN: usize = 16 * 1024 * 1024;
/// Length of a blinded lookup key.
pub(crate) const BLINDED_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const AD_LABEL: &[u8] = b"E2EE-v1 client store";

/// The blinded form of `lookup` in `space`.
pub(crate) fn blind(keys: &DerivedKeys, space: u8, lookup: &[u8]) -> [u8; BLINDED_LEN] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(keys.blind.as_slice())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(&[space]);
    mac.update(lookup);
    mac.finalize().into_bytes().into()
}

fn associated_data(space: u8, blinded: &[u8; BLINDED_LEN]) -> Vec<u8> {
    let mut ad = Vec::with_capacity(AD_LABEL.len() + 2 + BLINDED_LEN);
    ad.extend_from_slice(AD_LABEL);
    ad.push(STORE_FORMAT_VERSION);
    ad.push(space);
    ad.extend_from_slice(blinded);
    ad
}

fn cipher(keys: &DerivedKeys) -> Aes256Gcm {
    Aes256Gcm::new(keys.seal.as_slice().into())
}

/// Seals `value` for the row (`space`, `blinded`) with a fresh random nonce.
pub(crate) fn seal(
    keys: &DerivedKeys,
    rng: &mut (impl RngCore + CryptoRng),
    space: u8,
    blinded: &[u8; BLINDED_LEN],
    value: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    seal_with_nonce(keys, &nonce, space, blinded, value)
}

pub(crate) fn seal_with_nonce(
    keys: &DerivedKeys,
    nonce: &[u8; NONCE_LEN],
    space: u8,
    blinded: &[u8; BLINDED_LEN],
    value: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let ad = associated_data(space, blinded);
    let body = cipher(keys)
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: value,
                aad: &ad,
            },
        )
        // Only a value over AES-GCM's 64 GiB limit fails; the vault refuses any value over
        // MAX_VALUE_LEN before it gets here.
        .map_err(|_| StoreError::ValueTooLarge {
            len: value.len(),
            max: MAX_VALUE_LEN,
        })?;
    let mut sealed = Vec::with_capacity(NONCE_LEN + body.len());
    sealed.extend_from_slice(nonce);
    sealed.extend_from_slice(&body);
    Ok(sealed)
}

/// Opens a sealed value of the row (`space`, `blinded`), or [`StoreError::Corrupt`].
pub(crate) fn open(
    keys: &DerivedKeys,
    space: u8,
    blinded: &[u8; BLINDED_LEN],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(StoreError::Corrupt("sealed value too short"));
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let ad = associated_data(space, blinded);
    cipher(keys)
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: body,
                aad: &ad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| StoreError::Corrupt("a value does not authenticate"))
}
