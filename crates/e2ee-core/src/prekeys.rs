//! Prekeys a device publishes so others can start sessions while it is offline.
//!
//! ```text
//! SignedPreKeyPublic (108)  = id u32 || created_at u64 || X25519 pub (32) || sig (64)
//!   sig = Ed25519(identity, "E2EE-v1 signed prekey" || id || created_at || X25519 pub)
//! OneTimePreKeyPublic (36)  = id u32 || X25519 pub (32)
//! KemPreKeyPublic (1261)    = id u32 || kind u8 || created_at u64 || ML-KEM-768 pub (1184) || sig (64)
//!   kind: 1 = one-time, 2 = last-resort
//!   sig = Ed25519(identity, "E2EE-v1 kem prekey" || id || kind || created_at || ML-KEM pub)
//! PreKeyBundle = 0x01 || flags u8 || IdentityKey (128) || DeviceBinding || SignedPreKeyPublic
//!                [|| OneTimePreKeyPublic if flags & 1] [|| KemPreKeyPublic if flags & 2]
//! ```

use std::fmt;

use rand_core::{CryptoRng, RngCore};

use crate::{
    Codec, Reader,
    device::DeviceBinding,
    dh::{DhKeyPair, DhPublicKey},
    error::{DecodeError, KeyError},
    identity::{IdentityDecodeError, IdentityKey, IdentityKeyPair},
    kem::{KEM_PUBLIC_KEY_LEN, KemKeyPair, KemPublicKey},
    limits::MAX_PREKEY_BATCH,
};

/// Encoded length of a [`SignedPreKeyPublic`].
pub const SIGNED_PREKEY_LEN: usize = 4 + 8 + 32 + 64;
/// Encoded length of a [`OneTimePreKeyPublic`].
pub const ONE_TIME_PREKEY_LEN: usize = 4 + 32;
/// Encoded length of a [`KemPreKeyPublic`].
pub const KEM_PREKEY_LEN: usize = 4 + 1 + 8 + KEM_PUBLIC_KEY_LEN + 64;

const SIGNED_PREKEY_CONTEXT: &[u8] = b"E2EE-v1 signed prekey";
const KEM_PREKEY_CONTEXT: &[u8] = b"E2EE-v1 kem prekey";
const BUNDLE_VERSION: u8 = 0x01;
const BUNDLE_HAS_ONE_TIME: u8 = 0x01;
const BUNDLE_HAS_KEM: u8 = 0x02;

/// The public half of a signed X25519 prekey.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedPreKeyPublic {
    /// Identifier chosen by the owner.
    pub id: u32,
    /// Unix seconds; lets clients and servers retire old keys.
    pub created_at: u64,
    /// The X25519 key.
    pub key: DhPublicKey,
    /// Ed25519 signature by the owner's identity.
    pub signature: [u8; 64],
}

impl SignedPreKeyPublic {
    fn signed_message(id: u32, created_at: u64, key: &DhPublicKey) -> Vec<u8> {
        let mut msg = Vec::with_capacity(SIGNED_PREKEY_CONTEXT.len() + 44);
        msg.extend_from_slice(SIGNED_PREKEY_CONTEXT);
        msg.extend_from_slice(&id.to_be_bytes());
        msg.extend_from_slice(&created_at.to_be_bytes());
        msg.extend_from_slice(&key.0);
        msg
    }

    /// Verifies the signature against the owner's identity.
    pub fn verify(&self, owner: &IdentityKey) -> Result<(), KeyError> {
        owner.verify(
            &Self::signed_message(self.id, self.created_at, &self.key),
            &self.signature,
            "signed prekey",
        )
    }
}

/// The 108-byte encoding; decoding does not check the signature ([`SignedPreKeyPublic::verify`]
/// does).
impl Codec for SignedPreKeyPublic {
    type Error = DecodeError;
    const MAX_LEN: usize = SIGNED_PREKEY_LEN;

    fn write(&self, out: &mut Vec<u8>) {
        self.id.write(out);
        self.created_at.write(out);
        out.extend_from_slice(&self.key.0);
        out.extend_from_slice(&self.signature);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: reader.u32()?,
            created_at: reader.u64()?,
            key: DhPublicKey::read(reader)?,
            signature: reader.array()?,
        })
    }
}

/// A signed X25519 prekey with its secret.
#[derive(Clone)]
pub struct SignedPreKey {
    key: DhKeyPair,
    public: SignedPreKeyPublic,
}

impl SignedPreKey {
    /// Generates and signs a prekey.
    pub fn generate(
        rng: &mut (impl RngCore + CryptoRng),
        identity: &IdentityKeyPair,
        id: u32,
        created_at: u64,
    ) -> Self {
        let key = DhKeyPair::generate(rng);
        let signature = identity.sign(&SignedPreKeyPublic::signed_message(
            id,
            created_at,
            &key.public(),
        ));
        let public = SignedPreKeyPublic {
            id,
            created_at,
            key: key.public(),
            signature,
        };
        Self { key, public }
    }

    /// Rebuilds from the secret bytes and public encoding a store kept.
    pub fn from_parts(secret: [u8; 32], public: SignedPreKeyPublic) -> Result<Self, DecodeError> {
        let key = DhKeyPair::from_secret_bytes(secret);
        if key.public() != public.key {
            return Err(DecodeError::InvalidField(
                "signed prekey secret does not match",
            ));
        }
        Ok(Self { key, public })
    }

    /// The identifier.
    pub fn id(&self) -> u32 {
        self.public.id
    }

    /// The public half, to upload.
    pub fn public(&self) -> &SignedPreKeyPublic {
        &self.public
    }

    /// The key pair.
    pub fn key_pair(&self) -> &DhKeyPair {
        &self.key
    }
}

impl fmt::Debug for SignedPreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedPreKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// The public half of a one-time X25519 prekey (unsigned, as in X3DH).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OneTimePreKeyPublic {
    /// Identifier chosen by the owner.
    pub id: u32,
    /// The X25519 key.
    pub key: DhPublicKey,
}

/// The 36-byte encoding.
impl Codec for OneTimePreKeyPublic {
    type Error = DecodeError;
    const MAX_LEN: usize = ONE_TIME_PREKEY_LEN;

    fn write(&self, out: &mut Vec<u8>) {
        self.id.write(out);
        out.extend_from_slice(&self.key.0);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: reader.u32()?,
            key: DhPublicKey::read(reader)?,
        })
    }
}

/// A one-time X25519 prekey with its secret.
#[derive(Clone)]
pub struct OneTimePreKey {
    id: u32,
    key: DhKeyPair,
}

impl OneTimePreKey {
    /// Generates `count` (at most [`MAX_PREKEY_BATCH`]) keys with ids `first_id..`, wrapping.
    pub fn generate_batch(
        rng: &mut (impl RngCore + CryptoRng),
        first_id: u32,
        count: usize,
    ) -> Vec<Self> {
        (0..count.min(MAX_PREKEY_BATCH))
            .map(|i| Self {
                id: first_id.wrapping_add(i as u32),
                key: DhKeyPair::generate(rng),
            })
            .collect()
    }

    /// Rebuilds from a stored id and secret.
    pub fn from_parts(id: u32, secret: [u8; 32]) -> Self {
        Self {
            id,
            key: DhKeyPair::from_secret_bytes(secret),
        }
    }

    /// The identifier.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The public half, to upload.
    pub fn public(&self) -> OneTimePreKeyPublic {
        OneTimePreKeyPublic {
            id: self.id,
            key: self.key.public(),
        }
    }

    /// The key pair.
    pub fn key_pair(&self) -> &DhKeyPair {
        &self.key
    }
}

impl fmt::Debug for OneTimePreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneTimePreKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Whether a KEM prekey is used once or is the fallback kept until replaced.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum KemPreKeyKind {
    /// Served once, then deleted by the server and, after use, by the owner.
    OneTime = 1,
    /// Served when one-time keys run out; the owner refuses a (key, base key) pair twice.
    LastResort = 2,
}

impl KemPreKeyKind {
    fn from_byte(byte: u8) -> Result<Self, DecodeError> {
        match byte {
            1 => Ok(Self::OneTime),
            2 => Ok(Self::LastResort),
            _ => Err(DecodeError::InvalidField("KEM prekey kind")),
        }
    }
}

/// The public half of a signed ML-KEM-768 prekey.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct KemPreKeyPublic {
    /// Identifier chosen by the owner.
    pub id: u32,
    /// One-time or last-resort.
    pub kind: KemPreKeyKind,
    /// Unix seconds.
    pub created_at: u64,
    /// The ML-KEM-768 encapsulation key.
    pub key: KemPublicKey,
    /// Ed25519 signature by the owner's identity.
    pub signature: [u8; 64],
}

impl KemPreKeyPublic {
    fn signed_message(
        id: u32,
        kind: KemPreKeyKind,
        created_at: u64,
        key: &KemPublicKey,
    ) -> Vec<u8> {
        let mut msg = Vec::with_capacity(KEM_PREKEY_CONTEXT.len() + 13 + KEM_PUBLIC_KEY_LEN);
        msg.extend_from_slice(KEM_PREKEY_CONTEXT);
        msg.extend_from_slice(&id.to_be_bytes());
        msg.push(kind as u8);
        msg.extend_from_slice(&created_at.to_be_bytes());
        msg.extend_from_slice(key.as_bytes());
        msg
    }

    /// Verifies the signature against the owner's identity.
    pub fn verify(&self, owner: &IdentityKey) -> Result<(), KeyError> {
        let msg = Self::signed_message(self.id, self.kind, self.created_at, &self.key);
        owner.verify(&msg, &self.signature, "KEM prekey")
    }
}

/// The 1261-byte encoding; decoding validates the ML-KEM key but not the signature
/// ([`KemPreKeyPublic::verify`] does).
impl Codec for KemPreKeyPublic {
    type Error = DecodeError;
    const MAX_LEN: usize = KEM_PREKEY_LEN;

    fn write(&self, out: &mut Vec<u8>) {
        self.id.write(out);
        out.push(self.kind as u8);
        self.created_at.write(out);
        out.extend_from_slice(self.key.as_bytes());
        out.extend_from_slice(&self.signature);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: reader.u32()?,
            kind: KemPreKeyKind::from_byte(reader.u8()?)?,
            created_at: reader.u64()?,
            key: KemPublicKey::from_bytes(reader.take(KEM_PUBLIC_KEY_LEN)?)?,
            signature: reader.array()?,
        })
    }
}

/// A signed ML-KEM-768 prekey with its secret.
#[derive(Clone)]
pub struct KemPreKey {
    key: KemKeyPair,
    public: KemPreKeyPublic,
}

impl KemPreKey {
    /// Generates and signs a KEM prekey.
    pub fn generate(
        rng: &mut (impl RngCore + CryptoRng),
        identity: &IdentityKeyPair,
        id: u32,
        kind: KemPreKeyKind,
        created_at: u64,
    ) -> Self {
        let key = KemKeyPair::generate(rng);
        let signature = identity.sign(&KemPreKeyPublic::signed_message(
            id,
            kind,
            created_at,
            key.public(),
        ));
        let public = KemPreKeyPublic {
            id,
            kind,
            created_at,
            key: key.public().clone(),
            signature,
        };
        Self { key, public }
    }

    /// Rebuilds from the stored secret and public encoding.
    pub fn from_parts(secret: &[u8], public: KemPreKeyPublic) -> Result<Self, DecodeError> {
        let key = KemKeyPair::from_bytes(secret, public.key.as_bytes())?;
        Ok(Self { key, public })
    }

    /// The identifier.
    pub fn id(&self) -> u32 {
        self.public.id
    }

    /// One-time or last-resort.
    pub fn kind(&self) -> KemPreKeyKind {
        self.public.kind
    }

    /// The public half, to upload.
    pub fn public(&self) -> &KemPreKeyPublic {
        &self.public
    }

    /// The key pair.
    pub fn key_pair(&self) -> &KemKeyPair {
        &self.key
    }
}

impl fmt::Debug for KemPreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KemPreKey")
            .field("id", &self.public.id)
            .field("kind", &self.public.kind)
            .finish_non_exhaustive()
    }
}

/// What a key server hands out for one device: everything needed to start a session.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PreKeyBundle {
    /// The device's identity (its binding signature already verified by decoding).
    pub identity: IdentityKey,
    /// The device's own statement of its address and account (checked by [`Self::verify`]).
    pub binding: DeviceBinding,
    /// The signed X25519 prekey.
    pub signed_prekey: SignedPreKeyPublic,
    /// A one-time X25519 prekey, if the server had one left.
    pub one_time_prekey: Option<OneTimePreKeyPublic>,
    /// A KEM prekey (one-time, or the last-resort one). Absent only for legacy devices.
    pub kem_prekey: Option<KemPreKeyPublic>,
}

impl PreKeyBundle {
    /// Verifies every signature in the bundle against its identity: the device binding, the
    /// signed prekey and the KEM prekey.
    pub fn verify(&self) -> Result<(), KeyError> {
        self.binding.verify(&self.identity)?;
        self.signed_prekey.verify(&self.identity)?;
        if let Some(kem) = &self.kem_prekey {
            kem.verify(&self.identity)?;
        }
        Ok(())
    }
}

/// A bundle's parts in their own canonical encodings, as a key server stores them.
#[derive(Debug, Clone, Copy)]
pub struct EncodedBundleParts<'a> {
    /// An [`IdentityKey`].
    pub identity: &'a [u8],
    /// A [`DeviceBinding`].
    pub binding: &'a [u8],
    /// A [`SignedPreKeyPublic`].
    pub signed_prekey: &'a [u8],
    /// A [`OneTimePreKeyPublic`], if any.
    pub one_time_prekey: Option<&'a [u8]>,
    /// A [`KemPreKeyPublic`], if any.
    pub kem_prekey: Option<&'a [u8]>,
}

impl PreKeyBundle {
    /// The canonical encoding of the bundle whose parts have these encodings, without
    /// decoding them: for a key server that decoded and verified every part at upload and
    /// serves it many times (decoding an identity key verifies a signature, which would cost
    /// more than the rest of serving a bundle). The receiver decodes and verifies the result
    /// as any bundle, so a wrong part only makes it unusable; a part of the wrong length is
    /// refused here.
    pub fn encode_parts(parts: EncodedBundleParts<'_>) -> Result<Vec<u8>, DecodeError> {
        let exact = |part: &[u8], len: usize, what: &'static str| {
            if part.len() == len {
                Ok(())
            } else {
                Err(DecodeError::InvalidField(what))
            }
        };
        exact(
            parts.identity,
            crate::identity::IDENTITY_KEY_LEN,
            "identity key",
        )?;
        if parts.binding.is_empty() || parts.binding.len() > DeviceBinding::MAX_LEN {
            return Err(DecodeError::InvalidField("device binding"));
        }
        exact(parts.signed_prekey, SIGNED_PREKEY_LEN, "signed prekey")?;
        let mut flags = 0;
        if let Some(otk) = parts.one_time_prekey {
            exact(otk, ONE_TIME_PREKEY_LEN, "one-time prekey")?;
            flags |= BUNDLE_HAS_ONE_TIME;
        }
        if let Some(kem) = parts.kem_prekey {
            exact(kem, KEM_PREKEY_LEN, "KEM prekey")?;
            flags |= BUNDLE_HAS_KEM;
        }
        let mut out = Vec::with_capacity(MAX_BUNDLE_LEN);
        out.extend_from_slice(&[BUNDLE_VERSION, flags]);
        for part in [parts.identity, parts.binding, parts.signed_prekey] {
            out.extend_from_slice(part);
        }
        for part in [parts.one_time_prekey, parts.kem_prekey]
            .into_iter()
            .flatten()
        {
            out.extend_from_slice(part);
        }
        Ok(out)
    }
}

/// Longest bundle encoding: every optional key present.
pub const MAX_BUNDLE_LEN: usize = 2
    + crate::identity::IDENTITY_KEY_LEN
    + DeviceBinding::MAX_LEN
    + SIGNED_PREKEY_LEN
    + ONE_TIME_PREKEY_LEN
    + KEM_PREKEY_LEN;

/// The canonical encoding. Decoding verifies the identity's own binding signature; the
/// other signatures are checked by [`PreKeyBundle::verify`], which session set-up always
/// calls.
impl Codec for PreKeyBundle {
    type Error = IdentityDecodeError;
    const MAX_LEN: usize = MAX_BUNDLE_LEN;

    fn write(&self, out: &mut Vec<u8>) {
        out.reserve(MAX_BUNDLE_LEN);
        out.push(BUNDLE_VERSION);
        let mut flags = 0;
        if self.one_time_prekey.is_some() {
            flags |= BUNDLE_HAS_ONE_TIME;
        }
        if self.kem_prekey.is_some() {
            flags |= BUNDLE_HAS_KEM;
        }
        out.push(flags);
        self.identity.write(out);
        self.binding.write(out);
        self.signed_prekey.write(out);
        if let Some(otk) = &self.one_time_prekey {
            otk.write(out);
        }
        if let Some(kem) = &self.kem_prekey {
            kem.write(out);
        }
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, IdentityDecodeError> {
        let version = reader.u8()?;
        if version != BUNDLE_VERSION {
            return Err(DecodeError::UnknownVersion(version).into());
        }
        let flags = reader.u8()?;
        if flags & !(BUNDLE_HAS_ONE_TIME | BUNDLE_HAS_KEM) != 0 {
            return Err(DecodeError::NonCanonical.into());
        }
        let identity = IdentityKey::read(reader)?;
        let binding = DeviceBinding::read(reader)?;
        let signed_prekey = SignedPreKeyPublic::read(reader)?;
        let one_time_prekey = if flags & BUNDLE_HAS_ONE_TIME != 0 {
            Some(OneTimePreKeyPublic::read(reader)?)
        } else {
            None
        };
        let kem_prekey = if flags & BUNDLE_HAS_KEM != 0 {
            Some(KemPreKeyPublic::read(reader)?)
        } else {
            None
        };
        Ok(Self {
            identity,
            binding,
            signed_prekey,
            one_time_prekey,
            kem_prekey,
        })
    }
}

#[cfg(test)]
mod tests {
    use rand_core::OsRng;

    use super::*;

    fn make_bundle() -> (IdentityKeyPair, PreKeyBundle) {
        let id = IdentityKeyPair::generate(&mut OsRng);
        let spk = SignedPreKey::generate(&mut OsRng, &id, 1, 1_700_000_000);
        let otk = OneTimePreKey::generate_batch(&mut OsRng, 10, 1).remove(0);
        let kem = KemPreKey::generate(&mut OsRng, &id, 5, KemPreKeyKind::LastResort, 1_700_000_000);
        let account = crate::device::AccountIdentityKeyPair::generate(&mut OsRng);
        let binding = DeviceBinding::sign(
            &id,
            crate::DeviceAddress::new("bob", 1).unwrap(),
            account.public(),
        );
        let bundle = PreKeyBundle {
            identity: *id.public(),
            binding,
            signed_prekey: spk.public().clone(),
            one_time_prekey: Some(otk.public()),
            kem_prekey: Some(kem.public().clone()),
        };
        (id, bundle)
    }

    #[test]
    fn bundle_round_trips_and_verifies() {
        let (_, bundle) = make_bundle();
        bundle.verify().unwrap();
        let bytes = bundle.to_bytes();
        assert_eq!(PreKeyBundle::from_bytes(&bytes).unwrap(), bundle);
        assert_eq!(
            SignedPreKeyPublic::from_bytes(&bundle.signed_prekey.to_bytes())
                .unwrap()
                .to_bytes()
                .len(),
            SIGNED_PREKEY_LEN
        );
        let kem = bundle.kem_prekey.as_ref().unwrap();
        assert_eq!(KemPreKeyPublic::from_bytes(&kem.to_bytes()).unwrap(), *kem);
        assert_eq!(kem.to_bytes().len(), KEM_PREKEY_LEN);
    }

    #[test]
    fn a_bundle_encoded_from_its_parts_equals_its_encoding() {
        let (_, full) = make_bundle();
        let mut without_one_time = full.clone();
        without_one_time.one_time_prekey = None;
        let mut without_kem = full.clone();
        without_kem.kem_prekey = None;
        for bundle in [full, without_one_time, without_kem] {
            let (identity, binding) = (bundle.identity.to_bytes(), bundle.binding.to_bytes());
            let signed_prekey = bundle.signed_prekey.to_bytes();
            let one_time = bundle.one_time_prekey.as_ref().map(Codec::to_bytes);
            let kem = bundle.kem_prekey.as_ref().map(Codec::to_bytes);
            let parts = EncodedBundleParts {
                identity: &identity,
                binding: &binding,
                signed_prekey: &signed_prekey,
                one_time_prekey: one_time.as_deref(),
                kem_prekey: kem.as_deref(),
            };
            assert_eq!(
                PreKeyBundle::encode_parts(parts).unwrap(),
                bundle.to_bytes()
            );
            // A part cut by one byte is refused, each by name.
            let cut = |part: &[u8]| part[..part.len() - 1].to_vec();
            let (short_identity, short_spk) = (cut(&identity), cut(&signed_prekey));
            let wrong = [
                (
                    EncodedBundleParts {
                        identity: &short_identity,
                        ..parts
                    },
                    "identity key",
                ),
                (
                    EncodedBundleParts {
                        binding: &[],
                        ..parts
                    },
                    "device binding",
                ),
                (
                    EncodedBundleParts {
                        signed_prekey: &short_spk,
                        ..parts
                    },
                    "signed prekey",
                ),
            ];
            for (parts, what) in wrong {
                assert_eq!(
                    PreKeyBundle::encode_parts(parts),
                    Err(DecodeError::InvalidField(what))
                );
            }
        }
    }

    #[test]
    fn signatures_by_another_identity_fail() {
        let (_, mut bundle) = make_bundle();
        let (_, other) = make_bundle();
        bundle.signed_prekey = other.signed_prekey.clone();
        assert_eq!(
            bundle.verify(),
            Err(KeyError::InvalidSignature("signed prekey"))
        );
        let (_, mut bundle2) = make_bundle();
        bundle2.kem_prekey = other.kem_prekey.clone();
        assert_eq!(
            bundle2.verify(),
            Err(KeyError::InvalidSignature("KEM prekey"))
        );
    }

    #[test]
    fn tampered_prekey_fields_fail_verification() {
        let (_, bundle) = make_bundle();
        let mut spk = bundle.signed_prekey.clone();
        spk.created_at += 1;
        assert!(spk.verify(&bundle.identity).is_err());
        let mut kem = bundle.kem_prekey.clone().unwrap();
        kem.kind = KemPreKeyKind::OneTime;
        assert!(kem.verify(&bundle.identity).is_err());
    }

    #[test]
    fn batches_are_bounded() {
        assert_eq!(
            OneTimePreKey::generate_batch(&mut OsRng, 0, MAX_PREKEY_BATCH + 50).len(),
            MAX_PREKEY_BATCH
        );
    }

    #[test]
    fn unknown_bundle_flags_are_refused() {
        let (_, bundle) = make_bundle();
        let mut bytes = bundle.to_bytes();
        bytes[1] |= 0x80;
        assert_eq!(
            PreKeyBundle::from_bytes(&bytes),
            Err(IdentityDecodeError::Decode(DecodeError::NonCanonical))
        );
        bytes[0] = 9;
        assert_eq!(
            PreKeyBundle::from_bytes(&bytes),
            Err(IdentityDecodeError::Decode(DecodeError::UnknownVersion(9)))
        );
    }
}
