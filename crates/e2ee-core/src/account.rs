//! Account identity, device certificates and signed device lists (multi-device).
//!
//! Each user has one **account identity key** (Ed25519, held by the primary device). It signs
//! a certificate for every device's [`IdentityKey`] and the user's **device list**. Clients
//! encrypt only to devices whose certificate verifies under the account key they trust, so a
//! server cannot add a "ghost device"; a key server stores and serves what the account signed
//! and refuses lists that are not newer than the one it holds.
//!
//! ```text
//! AccountIdentityKey (32)  = Ed25519 public key
//!
//! DeviceCertificate = 0x01 || user_id_len u8 (1..=128) || user_id (UTF-8)
//!                     || device_id u32 || issued_at u64 || IdentityKey (128) || sig (64)
//!   sig = Ed25519(account, "E2EE-v1 device certificate" || every byte before sig)
//!
//! DeviceList        = 0x01 || user_id_len u8 (1..=128) || user_id (UTF-8)
//!                     || version u64 || timestamp u64 || count u8 (0..=64)
//!                     || count * (device_id u32 || IdentityKey (128)) || sig (64)
//!   device ids strictly ascending (canonical: no duplicates, one encoding per list)
//!   sig = Ed25519(account, "E2EE-v1 device list" || every byte before sig)
//! ```
//!
//! All integers are big-endian. Decoding checks the layout and every embedded device
//! identity's binding signature; the account signature is checked by `verify`, which takes
//! the account key the caller trusts.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{
    MAX_USER_ID_LEN, Reader,
    dh::hex_prefix,
    error::{DecodeError, Error, KeyError},
    identity::{IDENTITY_KEY_LEN, IdentityDecodeError, IdentityKey},
};

/// Encoded length of an [`AccountIdentityKey`].
pub const ACCOUNT_IDENTITY_KEY_LEN: usize = 32;
/// Encoded length of an [`AccountIdentityKeyPair`] secret (the Ed25519 seed).
pub const ACCOUNT_IDENTITY_SECRET_LEN: usize = 32;
/// Most devices one device list may name (libsignal allows a few; WhatsApp 5 companions).
pub const MAX_DEVICES_PER_LIST: usize = 64;
/// Version byte of the certificate and device list layouts.
pub const ACCOUNT_FORMAT_VERSION: u8 = 0x01;
/// Longest encoded [`DeviceCertificate`].
pub const MAX_DEVICE_CERTIFICATE_LEN: usize = 2 + MAX_USER_ID_LEN + 4 + 8 + IDENTITY_KEY_LEN + 64;
/// Longest encoded [`DeviceList`].
pub const MAX_DEVICE_LIST_LEN: usize =
    2 + MAX_USER_ID_LEN + 8 + 8 + 1 + MAX_DEVICES_PER_LIST * (4 + IDENTITY_KEY_LEN) + 64;

const DEVICE_CERTIFICATE_CONTEXT: &[u8] = b"E2EE-v1 device certificate";
const DEVICE_LIST_CONTEXT: &[u8] = b"E2EE-v1 device list";

/// An account's public identity: the Ed25519 key that certifies its devices.
#[derive(Clone, Copy)]
pub struct AccountIdentityKey(VerifyingKey);

impl AccountIdentityKey {
    /// Decodes the 32-byte encoding; refuses bytes that are not a curve point.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let array: [u8; ACCOUNT_IDENTITY_KEY_LEN] = bytes
            .try_into()
            .map_err(|_| DecodeError::InvalidField("account identity key length"))?;
        crate::ed25519::decode_public_key(&array)
            .map(Self)
            .ok_or(DecodeError::InvalidField("account identity key"))
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; ACCOUNT_IDENTITY_KEY_LEN] {
        self.0.to_bytes()
    }

    fn verify(
        &self,
        message: &[u8],
        signature: &[u8; 64],
        what: &'static str,
    ) -> Result<(), KeyError> {
        self.0
            .verify_strict(message, &Signature::from_bytes(signature))
            .map_err(|_| KeyError::InvalidSignature(what))
    }
}

impl PartialEq for AccountIdentityKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}
impl Eq for AccountIdentityKey {}

impl fmt::Debug for AccountIdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountIdentityKey({})", hex_prefix(self.0.as_bytes()))
    }
}

/// The account identity with its secret. The Ed25519 key zeroizes itself on drop;
/// `Debug` prints only the public key.
#[derive(Clone)]
pub struct AccountIdentityKeyPair {
    signing: SigningKey,
}

impl AccountIdentityKeyPair {
    /// A fresh account identity.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut seed = Zeroizing::new([0u8; ACCOUNT_IDENTITY_SECRET_LEN]);
        rng.fill_bytes(seed.as_mut());
        Self {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// Rebuilds the key pair from [`Self::secret_bytes`].
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let seed = Zeroizing::new(reader.array::<ACCOUNT_IDENTITY_SECRET_LEN>()?);
        reader.finish()?;
        Ok(Self {
            signing: SigningKey::from_bytes(&seed),
        })
    }

    /// The Ed25519 seed, for a store to persist. Handle with care.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; ACCOUNT_IDENTITY_SECRET_LEN]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// The public account identity.
    pub fn public(&self) -> AccountIdentityKey {
        AccountIdentityKey(self.signing.verifying_key())
    }

    fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

impl fmt::Debug for AccountIdentityKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountIdentityKeyPair")
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

fn check_user_id(user_id: &str) -> Result<(), Error> {
    if user_id.is_empty() || user_id.len() > MAX_USER_ID_LEN {
        return Err(Error::InvalidArgument("user id must be 1..=128 bytes"));
    }
    Ok(())
}

fn put_header(out: &mut Vec<u8>, user_id: &str) {
    out.push(ACCOUNT_FORMAT_VERSION);
    // Callers checked 1..=128 bytes.
    out.push(u8::try_from(user_id.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(user_id.as_bytes());
}

fn read_header(reader: &mut Reader<'_>) -> Result<String, DecodeError> {
    let version = reader.u8()?;
    if version != ACCOUNT_FORMAT_VERSION {
        return Err(DecodeError::UnknownVersion(version));
    }
    let len = usize::from(reader.u8()?);
    if len == 0 {
        return Err(DecodeError::InvalidField("empty user id"));
    }
    if len > MAX_USER_ID_LEN {
        return Err(DecodeError::TooLarge);
    }
    let bytes = reader.take(len)?;
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| DecodeError::InvalidField("user id not UTF-8"))
}

fn signed_message(context: &[u8], body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(context.len() + body.len());
    msg.extend_from_slice(context);
    msg.extend_from_slice(body);
    msg
}

/// The account identity's statement "device `device_id` of `user_id` has this identity key".
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeviceCertificate {
    user_id: String,
    device_id: u32,
    issued_at: u64,
    identity: IdentityKey,
    signature: [u8; 64],
}

impl DeviceCertificate {
    /// Certifies a device's identity key with the account identity.
    pub fn sign(
        account: &AccountIdentityKeyPair,
        user_id: &str,
        device_id: u32,
        identity: &IdentityKey,
        issued_at: u64,
    ) -> Result<Self, Error> {
        check_user_id(user_id)?;
        let mut cert = Self {
            user_id: user_id.to_owned(),
            device_id,
            issued_at,
            identity: *identity,
            signature: [0; 64],
        };
        cert.signature = account.sign(&signed_message(DEVICE_CERTIFICATE_CONTEXT, &cert.body()));
        Ok(cert)
    }

    fn body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_DEVICE_CERTIFICATE_LEN);
        put_header(&mut out, &self.user_id);
        out.extend_from_slice(&self.device_id.to_be_bytes());
        out.extend_from_slice(&self.issued_at.to_be_bytes());
        out.extend_from_slice(&self.identity.to_bytes());
        out
    }

    /// Checks the account signature. Call it with the account key you trust for this user.
    pub fn verify(&self, account: &AccountIdentityKey) -> Result<(), KeyError> {
        account.verify(
            &signed_message(DEVICE_CERTIFICATE_CONTEXT, &self.body()),
            &self.signature,
            "device certificate",
        )
    }

    /// The canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.body();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes a certificate and the device identity's binding signature; the account
    /// signature is checked by [`Self::verify`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdentityDecodeError> {
        if bytes.len() > MAX_DEVICE_CERTIFICATE_LEN {
            return Err(DecodeError::TooLarge.into());
        }
        let mut reader = Reader::new(bytes);
        let user_id = read_header(&mut reader)?;
        let device_id = reader.u32()?;
        let issued_at = reader.u64()?;
        let identity = IdentityKey::read(&mut reader)?;
        let signature = reader.array()?;
        reader.finish()?;
        Ok(Self {
            user_id,
            device_id,
            issued_at,
            identity,
            signature,
        })
    }

    /// The user the device belongs to.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The device id.
    pub fn device_id(&self) -> u32 {
        self.device_id
    }

    /// Unix seconds at which the account signed it.
    pub fn issued_at(&self) -> u64 {
        self.issued_at
    }

    /// The certified device identity.
    pub fn identity(&self) -> &IdentityKey {
        &self.identity
    }
}

/// One entry of a [`DeviceList`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DeviceEntry {
    /// The device id.
    pub device_id: u32,
    /// Its identity key.
    pub identity: IdentityKey,
}

/// The account's signed statement of which devices it has, versioned so that a server
/// cannot roll it back to an older list.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeviceList {
    user_id: String,
    version: u64,
    timestamp: u64,
    devices: Vec<DeviceEntry>,
    signature: [u8; 64],
}

impl DeviceList {
    /// Signs a device list. Entries are sorted by device id; duplicates or more than
    /// [`MAX_DEVICES_PER_LIST`] entries are refused.
    pub fn sign(
        account: &AccountIdentityKeyPair,
        user_id: &str,
        version: u64,
        timestamp: u64,
        mut devices: Vec<DeviceEntry>,
    ) -> Result<Self, Error> {
        check_user_id(user_id)?;
        if devices.len() > MAX_DEVICES_PER_LIST {
            return Err(Error::InvalidArgument("too many devices in list"));
        }
        devices.sort_by_key(|d| d.device_id);
        if devices.windows(2).any(|w| w[0].device_id == w[1].device_id) {
            return Err(Error::InvalidArgument("duplicate device id in list"));
        }
        let mut list = Self {
            user_id: user_id.to_owned(),
            version,
            timestamp,
            devices,
            signature: [0; 64],
        };
        list.signature = account.sign(&signed_message(DEVICE_LIST_CONTEXT, &list.body()));
        Ok(list)
    }

    fn body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            2 + self.user_id.len() + 17 + self.devices.len() * (4 + IDENTITY_KEY_LEN),
        );
        put_header(&mut out, &self.user_id);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        // At most MAX_DEVICES_PER_LIST, enforced by both constructors.
        out.push(u8::try_from(self.devices.len()).unwrap_or(u8::MAX));
        for entry in &self.devices {
            out.extend_from_slice(&entry.device_id.to_be_bytes());
            out.extend_from_slice(&entry.identity.to_bytes());
        }
        out
    }

    /// Checks the account signature. Call it with the account key you trust for this user.
    pub fn verify(&self, account: &AccountIdentityKey) -> Result<(), KeyError> {
        account.verify(
            &signed_message(DEVICE_LIST_CONTEXT, &self.body()),
            &self.signature,
            "device list",
        )
    }

    /// The canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.body();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes a list and every device identity's binding signature; the account signature
    /// is checked by [`Self::verify`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdentityDecodeError> {
        if bytes.len() > MAX_DEVICE_LIST_LEN {
            return Err(DecodeError::TooLarge.into());
        }
        let mut reader = Reader::new(bytes);
        let user_id = read_header(&mut reader)?;
        let version = reader.u64()?;
        let timestamp = reader.u64()?;
        let count = usize::from(reader.u8()?);
        if count > MAX_DEVICES_PER_LIST {
            return Err(DecodeError::TooLarge.into());
        }
        let mut devices: Vec<DeviceEntry> = Vec::with_capacity(count);
        for _ in 0..count {
            let device_id = reader.u32()?;
            if devices
                .last()
                .is_some_and(|last| last.device_id >= device_id)
            {
                return Err(DecodeError::NonCanonical.into());
            }
            let identity = IdentityKey::read(&mut reader)?;
            devices.push(DeviceEntry {
                device_id,
                identity,
            });
        }
        let signature = reader.array()?;
        reader.finish()?;
        Ok(Self {
            user_id,
            version,
            timestamp,
            devices,
            signature,
        })
    }

    /// The user whose devices these are.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// Monotonic version: a newer list has a strictly greater one.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Unix seconds at which the account signed it.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// The devices, sorted by device id.
    pub fn devices(&self) -> &[DeviceEntry] {
        &self.devices
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand_core::OsRng;

    use super::*;
    use crate::identity::IdentityKeyPair;

    fn device() -> IdentityKey {
        *IdentityKeyPair::generate(&mut OsRng).public()
    }

    #[test]
    fn certificate_round_trips_and_verifies() {
        let account = AccountIdentityKeyPair::generate(&mut OsRng);
        let identity = device();
        let cert = DeviceCertificate::sign(&account, "alice", 3, &identity, 1_700_000_000).unwrap();
        cert.verify(&account.public()).unwrap();
        let bytes = cert.to_bytes();
        let back = DeviceCertificate::from_bytes(&bytes).unwrap();
        assert_eq!(back, cert);
        assert_eq!(back.user_id(), "alice");
        assert_eq!(back.device_id(), 3);
        assert_eq!(back.issued_at(), 1_700_000_000);
        assert_eq!(*back.identity(), identity);
        back.verify(&account.public()).unwrap();
    }

    #[test]
    fn certificate_tamper_and_wrong_account_fail() {
        let account = AccountIdentityKeyPair::generate(&mut OsRng);
        let other = AccountIdentityKeyPair::generate(&mut OsRng);
        let cert = DeviceCertificate::sign(&account, "alice", 3, &device(), 42).unwrap();
        assert_eq!(
            cert.verify(&other.public()),
            Err(KeyError::InvalidSignature("device certificate"))
        );
        let bytes = cert.to_bytes();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            let ok = DeviceCertificate::from_bytes(&bad)
                .map(|c| c.verify(&account.public()).is_ok())
                .unwrap_or(false);
            assert!(!ok, "flip in byte {i} accepted");
        }
        assert!(DeviceCertificate::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            DeviceCertificate::from_bytes(&long),
            Err(IdentityDecodeError::Decode(DecodeError::TrailingBytes))
        );
    }

    #[test]
    fn user_id_bounds_are_enforced() {
        let account = AccountIdentityKeyPair::generate(&mut OsRng);
        let id = device();
        let longest = "u".repeat(MAX_USER_ID_LEN);
        let cert = DeviceCertificate::sign(&account, &longest, 1, &id, 0).unwrap();
        assert_eq!(cert.to_bytes().len(), MAX_DEVICE_CERTIFICATE_LEN);
        assert!(DeviceCertificate::from_bytes(&cert.to_bytes()).is_ok());
        assert!(
            DeviceCertificate::sign(&account, &"u".repeat(MAX_USER_ID_LEN + 1), 1, &id, 0).is_err()
        );
        assert!(DeviceCertificate::sign(&account, "", 1, &id, 0).is_err());
        assert!(DeviceList::sign(&account, "", 1, 0, vec![]).is_err());
        // A length byte of 129 is refused even if the bytes are there.
        let mut bytes = vec![ACCOUNT_FORMAT_VERSION, 129];
        bytes.extend(std::iter::repeat_n(b'u', 129));
        assert_eq!(
            DeviceCertificate::from_bytes(&bytes),
            Err(IdentityDecodeError::Decode(DecodeError::TooLarge))
        );
        assert_eq!(
            DeviceCertificate::from_bytes(&[ACCOUNT_FORMAT_VERSION, 0]),
            Err(IdentityDecodeError::Decode(DecodeError::InvalidField(
                "empty user id"
            )))
        );
        assert_eq!(
            DeviceCertificate::from_bytes(&[7, 1, b'a']),
            Err(IdentityDecodeError::Decode(DecodeError::UnknownVersion(7)))
        );
        assert_eq!(
            DeviceCertificate::from_bytes(&[ACCOUNT_FORMAT_VERSION, 1, 0xff]),
            Err(IdentityDecodeError::Decode(DecodeError::InvalidField(
                "user id not UTF-8"
            )))
        );
    }

    #[test]
    fn device_list_round_trips_sorted_and_verifies() {
        let account = AccountIdentityKeyPair::generate(&mut OsRng);
        let (a, b) = (device(), device());
        let list = DeviceList::sign(
            &account,
            "bob",
            7,
            1_700_000_000,
            vec![
                DeviceEntry {
                    device_id: 9,
                    identity: a,
                },
                DeviceEntry {
                    device_id: 2,
                    identity: b,
                },
            ],
        )
        .unwrap();
        assert_eq!(list.devices()[0].device_id, 2);
        assert_eq!(list.devices()[1].identity, a);
        list.verify(&account.public()).unwrap();
        let back = DeviceList::from_bytes(&list.to_bytes()).unwrap();
        assert_eq!(back, list);
        assert_eq!(
            (back.user_id(), back.version(), back.timestamp()),
            ("bob", 7, 1_700_000_000)
        );
        back.verify(&account.public()).unwrap();
        let empty = DeviceList::sign(&account, "bob", 8, 0, vec![]).unwrap();
        assert!(
            DeviceList::from_bytes(&empty.to_bytes())
                .unwrap()
                .devices()
                .is_empty()
        );
    }

    #[test]
    fn device_list_tamper_and_wrong_account_fail() {
        let account = AccountIdentityKeyPair::generate(&mut OsRng);
        let other = AccountIdentityKeyPair::generate(&mut OsRng);
        let list = DeviceList::sign(
            &account,
            "bob",
            1,
            5,
            vec![DeviceEntry {
                device_id: 1,
                identity: device(),
            }],
        )
        .unwrap();
        assert_eq!(
            list.verify(&other.public()),
            Err(KeyError::InvalidSignature("device list"))
        );
        let bytes = list.to_bytes();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            let ok = DeviceList::from_bytes(&bad)
                .map(|l| l.verify(&account.public()).is_ok())
                .unwrap_or(false);
            assert!(!ok, "flip in byte {i} accepted");
        }
    }

    #[test]
    fn device_list_bounds_and_canonical_order() {
        let account = AccountIdentityKeyPair::generate(&mut OsRng);
        let id = device();
        let entries = |n: u32| {
            (0..n)
                .map(|i| DeviceEntry {
                    device_id: i,
                    identity: id,
                })
                .collect::<Vec<_>>()
        };
        let full = DeviceList::sign(
            &account,
            &"x".repeat(MAX_USER_ID_LEN),
            1,
            0,
            entries(MAX_DEVICES_PER_LIST as u32),
        )
        .unwrap();
        assert_eq!(full.to_bytes().len(), MAX_DEVICE_LIST_LEN);
        assert!(DeviceList::from_bytes(&full.to_bytes()).is_ok());
        assert!(
            DeviceList::sign(
                &account,
                "x",
                1,
                0,
                entries(MAX_DEVICES_PER_LIST as u32 + 1)
            )
            .is_err()
        );
        let dup = vec![
            DeviceEntry {
                device_id: 1,
                identity: id,
            },
            DeviceEntry {
                device_id: 1,
                identity: id,
            },
        ];
        assert!(DeviceList::sign(&account, "x", 1, 0, dup).is_err());

        // Hand-built encodings: count over the limit, and entries out of order.
        let two = DeviceList::sign(&account, "x", 1, 0, entries(2)).unwrap();
        let mut bytes = two.to_bytes();
        let count_at = 2 + 1 + 16;
        bytes[count_at] = MAX_DEVICES_PER_LIST as u8 + 1;
        assert_eq!(
            DeviceList::from_bytes(&bytes),
            Err(IdentityDecodeError::Decode(DecodeError::TooLarge))
        );
        let mut bytes = two.to_bytes();
        let second = count_at + 1 + 4 + IDENTITY_KEY_LEN;
        bytes[second..second + 4].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(
            DeviceList::from_bytes(&bytes),
            Err(IdentityDecodeError::Decode(DecodeError::NonCanonical))
        );
        let mut oversized = full.to_bytes();
        oversized.push(0);
        assert_eq!(
            DeviceList::from_bytes(&oversized),
            Err(IdentityDecodeError::Decode(DecodeError::TooLarge))
        );
    }

    #[test]
    fn account_key_encoding() {
        let pair = AccountIdentityKeyPair::generate(&mut OsRng);
        let public = pair.public();
        assert_eq!(
            AccountIdentityKey::from_bytes(&public.to_bytes()).unwrap(),
            public
        );
        assert!(AccountIdentityKey::from_bytes(&[0u8; 31]).is_err());
        let again =
            AccountIdentityKeyPair::from_secret_bytes(pair.secret_bytes().as_ref()).unwrap();
        assert_eq!(again.public(), public);
        assert!(AccountIdentityKeyPair::from_secret_bytes(&[1u8; 33]).is_err());
    }

    #[test]
    fn debug_never_prints_secrets() {
        let pair = AccountIdentityKeyPair::from_secret_bytes(&[0x42; 32]).unwrap();
        let text = format!("{pair:?}");
        assert!(!text.contains("4242"), "{text}");
        assert!(!text.contains("66, 66"), "{text}");
        assert!(text.contains("AccountIdentityKey("), "{text}");
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = DeviceCertificate::from_bytes(&bytes);
            let _ = DeviceList::from_bytes(&bytes);
            let _ = AccountIdentityKey::from_bytes(&bytes);
        }
    }

    #[test]
    fn every_truncation_is_refused() {
        let account = AccountIdentityKeyPair::generate(&mut OsRng);
        let cert = DeviceCertificate::sign(&account, "alice", 1, &device(), 9).unwrap();
        let bytes = cert.to_bytes();
        for cut in 0..bytes.len() {
            assert!(
                DeviceCertificate::from_bytes(&bytes[..cut]).is_err(),
                "{cut}"
            );
        }
        let entry = DeviceEntry {
            device_id: 1,
            identity: device(),
        };
        let list = DeviceList::sign(&account, "alice", 1, 9, vec![entry]).unwrap();
        let bytes = list.to_bytes();
        for cut in 0..bytes.len() {
            assert!(DeviceList::from_bytes(&bytes[..cut]).is_err(), "{cut}");
        }
    }
}
