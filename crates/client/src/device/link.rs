//! Linking a new device to an account: the new device shows a one-time code, the primary
//! (the holder of the account key) scans it, and the two talk through the key server's
//! provisioning channel, every message sealed under a key only they know.
//!
//! ```text
//! code     = "e2ee-link:" || base64url-nopad(0x01 || secret 32)
//! channel  = hex(SHA-256("E2EE-v1 link channel" || secret))            the server's only view
//! key      = HKDF-SHA256(salt = none, ikm = secret, info = "E2EE-v1 link key"), 32 bytes
//! sealed   = AES-256-GCM(key, nonce = 11 zero bytes || slot,
//!                        ad = "E2EE-v1 link" || channel || slot, message)  each slot once
//! slot 1 Offer      (primary)    = 0x01 || DeviceAddress (the new device's) || account key 32
//! slot 2 Acceptance (new device) = 0x01 || IdentityKey || DeviceBinding
//! slot 3 Welcome    (primary)    = 0x01 || bytes32(certificate) || bytes16(credential)
//!                                  || bytes32(our device list)
//!                                  || count u16 (<= MAX_LINK_CONTACTS)
//!                                  || count × (account key 32 || bytes32(device list))
//! bytesN(x) = len uN || x, each at most MAX_LINK_FIELD_LEN
//! ```
//!
//! The server cannot read or forge a message (it never learns the secret); someone who saw
//! the code could, which is why the code is shown on the new device's screen and scanned, and
//! the primary checks the acceptance's binding against the identity it carries.

use aes_gcm::{Aes256Gcm, KeyInit, aead::Aead, aead::Payload};
use e2ee_core::{Codec, DecodeError, DeviceAddress, IdentityKey, device::DeviceBinding};
use e2ee_encoding::Reader;
use hkdf::Hkdf;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{Error, now_secs};

const LINK_VERSION: u8 = 0x01;
const CODE_PREFIX: &str = "e2ee-link:";
/// Largest opaque field (a certificate, a credential, a device list) in a link message.
pub const MAX_LINK_FIELD_LEN: usize = 16 * 1024;
/// Most contacts a welcome carries (the rest are learned on first contact).
pub const MAX_LINK_CONTACTS: usize = 64;

/// The secret of one linking, from the code the new device shows.
pub(crate) struct LinkSecret(Zeroizing<[u8; 32]>);

impl LinkSecret {
    pub(crate) fn generate() -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(secret.as_mut());
        Self(secret)
    }

    /// The code to show (text; put it in a QR code as is).
    pub(crate) fn code(&self) -> String {
        let mut bytes = vec![LINK_VERSION];
        bytes.extend_from_slice(self.0.as_ref());
        format!("{CODE_PREFIX}{}", base64url(&bytes))
    }

    pub(crate) fn from_code(code: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidInput { what: "link code" };
        let text = code.trim().strip_prefix(CODE_PREFIX).ok_or_else(invalid)?;
        let bytes = unbase64url(text).ok_or_else(invalid)?;
        match bytes.split_first() {
            Some((&LINK_VERSION, secret)) if secret.len() == 32 => {
                let mut out = Zeroizing::new([0u8; 32]);
                out.copy_from_slice(secret);
                Ok(Self(out))
            }
            _ => Err(invalid()),
        }
    }

    /// The channel id the key server files the messages under.
    pub(crate) fn channel(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(b"E2EE-v1 link channel");
        hash.update(self.0.as_ref());
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn cipher(&self) -> Aes256Gcm {
        let mut key = Zeroizing::new([0u8; 32]);
        // 32 bytes is a valid HKDF-SHA256 output length.
        let _ =
            Hkdf::<Sha256>::new(None, self.0.as_ref()).expand(b"E2EE-v1 link key", key.as_mut());
        Aes256Gcm::new(key.as_ref().into())
    }

    fn aad(&self, slot: u8) -> Vec<u8> {
        let mut aad = b"E2EE-v1 link".to_vec();
        aad.extend_from_slice(self.channel().as_bytes());
        aad.push(slot);
        aad
    }

    pub(crate) fn seal(&self, slot: u8, message: &[u8]) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; 12];
        nonce[11] = slot;
        self.cipher()
            .encrypt(
                (&nonce).into(),
                Payload {
                    msg: message,
                    aad: &self.aad(slot),
                },
            )
            .map_err(|_| Error::Refused("link message too large to seal".into()))
    }

    pub(crate) fn open(&self, slot: u8, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        let mut nonce = [0u8; 12];
        nonce[11] = slot;
        self.cipher()
            .decrypt(
                (&nonce).into(),
                Payload {
                    msg: sealed,
                    aad: &self.aad(slot),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| Error::Undecryptable)
    }
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unbase64url(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}

fn write_u32_field(out: &mut Vec<u8>, field: &[u8]) {
    // At most MAX_LINK_FIELD_LEN, checked where messages are made.
    (field.len() as u32).write(out);
    out.extend_from_slice(field);
}

fn read_u32_field(reader: &mut Reader<'_>) -> Result<Vec<u8>, DecodeError> {
    let len = reader.u32()? as usize;
    if len > MAX_LINK_FIELD_LEN {
        return Err(DecodeError::TooLarge);
    }
    Ok(reader.take(len)?.to_vec())
}

fn version(reader: &mut Reader<'_>) -> Result<(), DecodeError> {
    match reader.u8()? {
        LINK_VERSION => Ok(()),
        v => Err(DecodeError::UnknownVersion(v)),
    }
}

/// A contact handed to a new device: (account key, device list bytes).
pub type LinkContact = ([u8; 32], Vec<u8>);

/// Slot 1: the primary offers the new device its address and the account key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkOffer {
    /// The new device's address (the primary chose its device id).
    pub address: DeviceAddress,
    /// The account identity key (32 bytes).
    pub account_key: [u8; 32],
}

impl Codec for LinkOffer {
    type Error = DecodeError;

    fn write(&self, out: &mut Vec<u8>) {
        out.push(LINK_VERSION);
        self.address.write(out);
        out.extend_from_slice(&self.account_key);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        version(reader)?;
        Ok(Self {
            address: DeviceAddress::read(reader)?,
            account_key: reader.array()?,
        })
    }
}

/// Slot 2: the new device answers with its identity and its binding to the offered address
/// under the account key.
#[derive(Debug, Clone)]
pub struct LinkAcceptance {
    /// The new device's identity key (its signature verified on decoding).
    pub identity: IdentityKey,
    /// Its binding, signed by that identity.
    pub binding: DeviceBinding,
}

impl Codec for LinkAcceptance {
    type Error = DecodeError;

    fn write(&self, out: &mut Vec<u8>) {
        out.push(LINK_VERSION);
        self.identity.write(out);
        self.binding.write(out);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        version(reader)?;
        let identity =
            IdentityKey::read(reader).map_err(|_| DecodeError::InvalidField("identity key"))?;
        Ok(Self {
            identity,
            binding: DeviceBinding::read(reader)?,
        })
    }
}

/// Slot 3: the primary welcomes the new device: its certificate and key server credential,
/// the account's device list with it, and the account's contacts.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkWelcome {
    /// The new device's certificate (`DeviceCertificate`).
    pub certificate: Vec<u8>,
    /// The new device's key server credential.
    pub credential: String,
    /// The account's device list naming the new device (`DeviceList`).
    pub device_list: Vec<u8>,
    /// Contacts: (account key, device list), verified by the primary.
    pub contacts: Vec<LinkContact>,
}

impl std::fmt::Debug for LinkWelcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkWelcome")
            .field("contacts", &self.contacts.len())
            .finish_non_exhaustive()
    }
}

impl Codec for LinkWelcome {
    type Error = DecodeError;

    fn write(&self, out: &mut Vec<u8>) {
        out.push(LINK_VERSION);
        write_u32_field(out, &self.certificate);
        // A credential is under 200 bytes.
        (self.credential.len() as u16).write(out);
        out.extend_from_slice(self.credential.as_bytes());
        write_u32_field(out, &self.device_list);
        // At most MAX_LINK_CONTACTS, checked where welcomes are made.
        (self.contacts.len() as u16).write(out);
        for (account, list) in &self.contacts {
            out.extend_from_slice(account);
            write_u32_field(out, list);
        }
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        version(reader)?;
        let certificate = read_u32_field(reader)?;
        let len = usize::from(reader.u16()?);
        let credential = String::from_utf8(reader.take(len)?.to_vec())
            .map_err(|_| DecodeError::InvalidField("credential"))?;
        let device_list = read_u32_field(reader)?;
        let count = usize::from(reader.u16()?);
        if count > MAX_LINK_CONTACTS {
            return Err(DecodeError::TooLarge);
        }
        let mut contacts = Vec::with_capacity(count);
        for _ in 0..count {
            contacts.push((reader.array()?, read_u32_field(reader)?));
        }
        Ok(Self {
            certificate,
            credential,
            device_list,
            contacts,
        })
    }
}

#[cfg(test)]
mod tests {
    use e2ee_encoding::check_codec;

    use super::*;

    #[test]
    fn codes_round_trip_and_bad_codes_are_refused() {
        let secret = LinkSecret::generate();
        let code = secret.code();
        assert!(code.starts_with("e2ee-link:"));
        let again = LinkSecret::from_code(&code).unwrap();
        assert_eq!(again.channel(), secret.channel());
        assert_eq!(secret.channel().len(), 64);
        for bad in [
            "",
            "e2ee-link:",
            "e2ee-link:AAAA",
            "link:xyz",
            &code[..code.len() - 2],
        ] {
            assert!(LinkSecret::from_code(bad).is_err(), "{bad}");
        }
        let sealed = secret.seal(1, b"offer").unwrap();
        assert_eq!(again.open(1, &sealed).unwrap().as_slice(), b"offer");
        // Another slot, another secret or a flipped byte: nothing opens.
        assert!(again.open(2, &sealed).is_err());
        assert!(LinkSecret::generate().open(1, &sealed).is_err());
        let mut flipped = sealed.clone();
        flipped[0] ^= 1;
        assert!(again.open(1, &flipped).is_err());
    }

    #[test]
    fn messages_round_trip_and_limits_hold() {
        check_codec(&LinkOffer {
            address: DeviceAddress::new("alice", 2).unwrap(),
            account_key: [7; 32],
        });
        let welcome = LinkWelcome {
            certificate: vec![1; 300],
            credential: "dc1.x.2.y".into(),
            device_list: vec![2; 500],
            contacts: vec![([3; 32], vec![4; 200]), ([5; 32], vec![])],
        };
        check_codec(&welcome);
        let mut many = welcome.clone();
        many.contacts = vec![([0; 32], vec![]); MAX_LINK_CONTACTS + 1];
        assert_eq!(
            LinkWelcome::from_bytes(&many.to_bytes()),
            Err(DecodeError::TooLarge)
        );
        let mut big = welcome;
        big.certificate = vec![0; MAX_LINK_FIELD_LEN + 1];
        assert_eq!(
            LinkWelcome::from_bytes(&big.to_bytes()),
            Err(DecodeError::TooLarge)
        );
    }
}

/// What the primary signs for a new device.
#[derive(Debug, Clone)]
pub(crate) struct LinkApproval {
    pub(crate) certificate: Vec<u8>,
    pub(crate) consent: Vec<u8>,
    pub(crate) device_list: Vec<u8>,
}

impl super::Device {
    fn account_key_pair(&mut self) -> Result<e2ee_core::device::AccountIdentityKeyPair, Error> {
        let secret = self
            .vault()
            .get(crate::store::Space::IDENTITY, super::ACCOUNT)?
            .ok_or(Error::Refused(
                "only the device holding the account key can link devices".into(),
            ))?;
        e2ee_core::device::AccountIdentityKeyPair::from_secret_bytes(&secret)
            .map_err(|_| crate::store::StoreError::Corrupt("account key").into())
    }

    /// Takes our account's new device list (after the key server accepted it), verified
    /// under the account key our directory trusts. Returns the devices added and removed.
    pub(crate) fn adopt_own_list(
        &mut self,
        list: &[u8],
    ) -> Result<(Vec<DeviceAddress>, Vec<DeviceAddress>), Error> {
        let account_key = self
            .directory
            .account(self.address.user.as_str())
            .ok_or(crate::store::StoreError::Corrupt("own account missing"))?
            .to_bytes();
        let user = self.address.user.to_string();
        self.learn_user(&user, &account_key, list)
    }

    fn own_list(&self) -> Result<&e2ee_core::device::DeviceList, Error> {
        self.directory
            .device_list(self.address.user.as_str())
            .ok_or(crate::store::StoreError::Corrupt("own device list missing").into())
    }

    /// Primary: the offer for a new device, with the next free device id.
    pub(crate) fn link_offer(&mut self) -> Result<LinkOffer, Error> {
        let account = self.account_key_pair()?.public();
        let next = self
            .own_list()?
            .devices()
            .iter()
            .map(|d| d.device_id())
            .max()
            .unwrap_or(0)
            .checked_add(1)
            .ok_or(Error::Refused("no device id left".into()))?;
        let mut account_key = [0u8; 32];
        account_key.copy_from_slice(&account.to_bytes());
        Ok(LinkOffer {
            address: DeviceAddress {
                user: self.address.user.clone(),
                device: next,
            },
            account_key,
        })
    }

    /// Primary: checks the new device's binding to the offered address and signs its
    /// certificate, the account's consent to enrol it and the device list naming it. Nothing
    /// is stored: the list is learned once the key server has it.
    pub(crate) fn approve_link(
        &mut self,
        offer: &LinkOffer,
        acceptance: &LinkAcceptance,
    ) -> Result<LinkApproval, Error> {
        use e2ee_core::device::{
            AccountConsent, ConsentAction, DeviceCertificate, DeviceEntry, DeviceList,
        };
        let account = self.account_key_pair()?;
        acceptance
            .binding
            .verify(&acceptance.identity)
            .map_err(|_| Error::InvalidSignature { what: "binding" })?;
        if *acceptance.binding.address() != offer.address
            || acceptance.binding.account() != &account.public()
        {
            return Err(Error::InvalidInput {
                what: "a binding to another address or account",
            });
        }
        let now = now_secs();
        let certificate =
            DeviceCertificate::sign(&account, &acceptance.identity, &acceptance.binding, now)
                .map_err(|_| Error::InvalidSignature { what: "binding" })?;
        let consent = AccountConsent::sign(
            &account,
            ConsentAction::Enrol,
            &certificate,
            super::now_ms(),
        );
        let own = self.own_list()?;
        let mut devices = own.devices().to_vec();
        devices.push(DeviceEntry::new(acceptance.identity, &acceptance.binding));
        let list = DeviceList::sign(
            &account,
            &self.address.user,
            own.version() + 1,
            now,
            devices,
        )?;
        Ok(LinkApproval {
            certificate: certificate.to_bytes(),
            consent: consent.to_bytes(),
            device_list: list.to_bytes(),
        })
    }

    /// Primary: the device list without `device_id` (a lost or retired device), signed;
    /// nothing is stored until the key server has it.
    pub(crate) fn list_without(&mut self, device_id: u32) -> Result<Vec<u8>, Error> {
        let account = self.account_key_pair()?;
        if device_id == self.address.device {
            return Err(Error::Refused(
                "the device holding the account key cannot remove itself".into(),
            ));
        }
        let own = self.own_list()?;
        if own.identity_of(device_id).is_none() {
            return Err(Error::NotListed {
                device: format!("{}.{device_id}", self.address.user),
            });
        }
        let devices = own
            .devices()
            .iter()
            .filter(|d| d.device_id() != device_id)
            .cloned()
            .collect();
        let list = e2ee_core::device::DeviceList::sign(
            &account,
            &self.address.user,
            own.version() + 1,
            now_secs(),
            devices,
        )?;
        Ok(list.to_bytes())
    }

    /// Primary: the contacts a new device starts with: the users of our conversations, with
    /// the account keys and device lists this device verified (at most [`MAX_LINK_CONTACTS`]).
    pub(crate) fn link_contacts(&mut self) -> Result<Vec<LinkContact>, Error> {
        let mut contacts = Vec::new();
        for conversation in self.conversations()? {
            let Some(user) = conversation.id.user() else {
                continue;
            };
            let (Some(account), Some(list)) = (
                self.directory.account(user),
                self.directory.device_list(user),
            ) else {
                continue;
            };
            let mut key = [0u8; 32];
            key.copy_from_slice(&account.to_bytes());
            contacts.push((key, list.to_bytes()));
            if contacts.len() == MAX_LINK_CONTACTS {
                break;
            }
        }
        Ok(contacts)
    }

    /// New device: creates its store from the primary's welcome: checks that the
    /// certificate and the device list name this identity under the offered account, trusts
    /// the account and the contacts, and keeps the credential for the client.
    pub(crate) fn create_linked(
        path: &std::path::Path,
        key: &crate::store::StoreKey,
        identity: &e2ee_core::IdentityKeyPair,
        binding: &DeviceBinding,
        offer: &LinkOffer,
        welcome: &LinkWelcome,
    ) -> Result<Self, Error> {
        use e2ee_core::device::{
            AccountIdentityKey, DeviceCertificate, DeviceDirectory, DeviceList,
        };
        let account = AccountIdentityKey::from_bytes(&offer.account_key).map_err(|_| {
            Error::InvalidInput {
                what: "account key",
            }
        })?;
        let certificate = DeviceCertificate::from_bytes(&welcome.certificate).map_err(|_| {
            Error::InvalidInput {
                what: "certificate",
            }
        })?;
        certificate
            .verify(&account)
            .map_err(|_| Error::InvalidSignature {
                what: "certificate",
            })?;
        if certificate.identity() != identity.public() || certificate.binding() != binding {
            return Err(Error::InvalidInput {
                what: "a certificate of another device",
            });
        }
        let mut directory = DeviceDirectory::new();
        directory.trust_account(&offer.address.user, account)?;
        let list =
            DeviceList::from_bytes(&welcome.device_list).map_err(|_| Error::InvalidInput {
                what: "device list",
            })?;
        if list.identity_of(offer.address.device) != Some(identity.public()) {
            return Err(Error::InvalidInput {
                what: "a device list without this device",
            });
        }
        directory.update_device_list(&list)?;
        for (account_key, list_bytes) in &welcome.contacts {
            let account = AccountIdentityKey::from_bytes(account_key)
                .map_err(|_| Error::InvalidInput { what: "contact" })?;
            let list = DeviceList::from_bytes(list_bytes)
                .map_err(|_| Error::InvalidInput { what: "contact" })?;
            directory.trust_account(list.user_id(), account)?;
            directory.update_device_list(&list)?;
        }
        let mut store = crate::store::DeviceStore::create(path, key, identity, binding)?;
        store
            .vault()
            .transaction(|tx| -> Result<(), crate::store::StoreError> {
                tx.put(
                    crate::store::Space::IDENTITY,
                    super::ADDRESS,
                    &offer.address.to_bytes(),
                )?;
                tx.put(
                    crate::store::Space::IDENTITY,
                    super::CERTIFICATE,
                    &certificate.to_bytes(),
                )?;
                tx.put(
                    crate::store::Space::DIRECTORY,
                    super::DIRECTORY,
                    &directory.to_bytes(),
                )
            })?;
        Ok(Self {
            store,
            address: offer.address.clone(),
            directory,
            cipher: e2ee_core::SessionCipher::default(),
        })
    }
}
