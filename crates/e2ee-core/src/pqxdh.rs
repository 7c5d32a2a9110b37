//! PQXDH session set-up (Signal's PQXDH spec, revision 3), with Ed25519 signatures.
//!
//! ```text
//! Initiator A (identity IK_A, fresh ephemeral EK_A); responder B's bundle:
//!   IK_B, SPK_B (signed), OPK_B (optional), PQPK_B (signed ML-KEM-768, one-time or last-resort)
//!
//! DH1 = X25519(IK_A, SPK_B)     DH2 = X25519(EK_A, IK_B)
//! DH3 = X25519(EK_A, SPK_B)     DH4 = X25519(EK_A, OPK_B)        (if OPK_B)
//! (CT, SS) = ML-KEM-768.Encaps(PQPK_B)
//! SK = HKDF-SHA256(salt = 0^32,
//!                  ikm  = 0xFF^32 || DH1 || DH2 || DH3 [|| DH4] || SS,
//!                  info = "E2EE-v1_PQXDH_X25519_SHA-256_ML-KEM-768"
//!                         || SHA-256(PQPK_B) || SHA-256(CT)
//!                         || DeviceAddress(A) || account key A || DeviceAddress(B) || account key B)
//! AD = IK_A.public (Ed25519 || X25519, 64) || IK_B.public (64)
//! ```
//!
//! The addresses and account keys come from both devices' own signed bindings (the bundle's
//! for B, the first message's for A), so both sides derive the same key only if each is the
//! device, of the user and account, that the other believes it is talking to.
//!
//! Plain X3DH (no KEM prekey) drops `SS`, uses info `"E2EE-v1_X3DH_X25519_SHA-256"`, and is
//! only performed when the caller opted in on both sides. Every DH refuses a non-contributory
//! output, so low-order points fail the handshake.

use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{
    Codec,
    device::DeviceBinding,
    dh::{DhKeyPair, DhPublicKey},
    error::HandshakeError,
    identity::{IdentityKey, IdentityKeyPair},
    kdf::{INFO_PQXDH, INFO_X3DH, ZERO_SALT, hkdf},
    kem::{KEM_CIPHERTEXT_LEN, KemPublicKey},
    message::PreKeyMessageParts,
    prekeys::{KemPreKey, OneTimePreKey, PreKeyBundle, SignedPreKey},
};

/// What a handshake derives: the shared key and, in test builds only (for the vectors),
/// the intermediate secrets, which production code never keeps.
pub(crate) struct HandshakeSecrets {
    /// The DH outputs, in the order of the KDF input.
    #[cfg(test)]
    pub(crate) dh: Vec<Zeroizing<[u8; 32]>>,
    /// The ML-KEM shared secret, if a KEM prekey was used.
    #[cfg(test)]
    pub(crate) kem_shared_secret: Option<Zeroizing<[u8; 32]>>,
    /// SK.
    pub(crate) shared_key: Zeroizing<[u8; 32]>,
}

/// The initiator's result: the secrets and the first message's handshake fields.
pub(crate) struct Initiated {
    pub(crate) secrets: HandshakeSecrets,
    pub(crate) parts: PreKeyMessageParts,
    pub(crate) associated_data: [u8; 128],
}

/// Initiator side. Verifies every bundle signature first.
pub(crate) fn initiate(
    rng: &mut (impl RngCore + CryptoRng),
    ours: &IdentityKeyPair,
    local: &DeviceBinding,
    bundle: &PreKeyBundle,
    allow_plain_x3dh: bool,
) -> Result<Initiated, HandshakeError> {
    bundle.verify()?;
    if bundle.kem_prekey.is_none() && !allow_plain_x3dh {
        return Err(HandshakeError::MissingKemPreKey);
    }
    let ephemeral = DhKeyPair::generate(rng);
    let spk = &bundle.signed_prekey.key;
    let mut dh = vec![
        ours.dh().agree(spk)?,
        ephemeral.agree(bundle.identity.dh())?,
        ephemeral.agree(spk)?,
    ];
    if let Some(otk) = &bundle.one_time_prekey {
        dh.push(ephemeral.agree(&otk.key)?);
    }
    let (kem, kem_shared_secret) = match &bundle.kem_prekey {
        Some(kem) => {
            let (ciphertext, shared) = kem.key.encapsulate(rng);
            (Some((kem.id, ciphertext)), Some(shared))
        }
        None => (None, None),
    };
    let info = kdf_info(
        bundle
            .kem_prekey
            .as_ref()
            .zip(kem.as_ref())
            .map(|(prekey, (_, ciphertext))| (&prekey.key, &**ciphertext)),
        local,
        &bundle.binding,
    );
    let shared_key = derive_shared_key(&dh, kem_shared_secret.as_deref(), &info);
    Ok(Initiated {
        secrets: HandshakeSecrets {
            #[cfg(test)]
            dh,
            #[cfg(test)]
            kem_shared_secret,
            shared_key,
        },
        parts: PreKeyMessageParts {
            identity: *ours.public(),
            binding: local.clone(),
            responder: bundle.binding.address().clone(),
            base_key: ephemeral.public(),
            signed_prekey_id: bundle.signed_prekey.id,
            one_time_prekey_id: bundle.one_time_prekey.map(|k| k.id),
            kem,
        },
        associated_data: associated_data(ours.public(), &bundle.identity),
    })
}

/// Responder side. The caller looked up the prekeys the message names.
pub(crate) fn respond(
    ours: &IdentityKeyPair,
    local: &DeviceBinding,
    parts: &PreKeyMessageParts,
    signed_prekey: &SignedPreKey,
    one_time_prekey: Option<&OneTimePreKey>,
    kem: Option<(&KemPreKey, &[u8; KEM_CIPHERTEXT_LEN])>,
    allow_plain_x3dh: bool,
) -> Result<(HandshakeSecrets, [u8; 128]), HandshakeError> {
    if kem.is_none() && !allow_plain_x3dh {
        return Err(HandshakeError::PlainX3dhRefused);
    }
    let base: &DhPublicKey = &parts.base_key;
    let spk = signed_prekey.key_pair();
    let mut dh = vec![
        spk.agree(parts.identity.dh())?,
        ours.dh().agree(base)?,
        spk.agree(base)?,
    ];
    if let Some(otk) = one_time_prekey {
        dh.push(otk.key_pair().agree(base)?);
    }
    let kem_shared_secret = kem.map(|(key, ciphertext)| key.key_pair().decapsulate(ciphertext));
    let info = kdf_info(
        kem.map(|(key, ciphertext)| (&key.public().key, ciphertext)),
        &parts.binding,
        local,
    );
    let shared_key = derive_shared_key(&dh, kem_shared_secret.as_deref(), &info);
    Ok((
        HandshakeSecrets {
            #[cfg(test)]
            dh,
            #[cfg(test)]
            kem_shared_secret,
            shared_key,
        },
        associated_data(&parts.identity, ours.public()),
    ))
}

/// `info = label [|| SHA-256(PQPK) || SHA-256(CT)] || DeviceAddress(A) || account A
/// || DeviceAddress(B) || account B`: the KEM binding (robust to a future KEM swap) and both
/// devices' signed claims of who they are.
pub(crate) fn kdf_info(
    kem: Option<(&KemPublicKey, &[u8; KEM_CIPHERTEXT_LEN])>,
    initiator: &DeviceBinding,
    responder: &DeviceBinding,
) -> Vec<u8> {
    let mut info = Vec::with_capacity(INFO_PQXDH.len() + 64 + 2 * DeviceBinding::MAX_LEN);
    match kem {
        Some((public_key, ciphertext)) => {
            info.extend_from_slice(INFO_PQXDH);
            info.extend_from_slice(&Sha256::digest(public_key.as_bytes()));
            info.extend_from_slice(&Sha256::digest(ciphertext));
        }
        None => info.extend_from_slice(INFO_X3DH),
    }
    for party in [initiator, responder] {
        party.address().write(&mut info);
        party.account().write(&mut info);
    }
    info
}

fn derive_shared_key(
    dh: &[Zeroizing<[u8; 32]>],
    kem: Option<&[u8; 32]>,
    info: &[u8],
) -> Zeroizing<[u8; 32]> {
    let mut ikm = Zeroizing::new(Vec::with_capacity(32 * 6));
    ikm.extend_from_slice(&[0xff; 32]);
    for out in dh {
        ikm.extend_from_slice(out.as_ref());
    }
    if let Some(ss) = kem {
        ikm.extend_from_slice(ss);
    }
    hkdf(&ZERO_SALT, &ikm, info)
}

/// `AD = initiator identity public bytes || responder identity public bytes`.
pub(crate) fn associated_data(initiator: &IdentityKey, responder: &IdentityKey) -> [u8; 128] {
    let mut ad = [0u8; 128];
    ad[..64].copy_from_slice(&initiator.public_bytes());
    ad[64..].copy_from_slice(&responder.public_bytes());
    ad
}
