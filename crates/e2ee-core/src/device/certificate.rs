//! A device certificate: the account's statement "device `d` of user `u` has this identity
//! key", over the device's own binding.
//!
//! ```text
//! DeviceCertificate = 0x01 || DeviceAddress || account key (32) || issued_at u64
//!                     || IdentityKey (128) || binding sig (64) || account sig (64)
//!   binding sig = the device's DeviceBinding signature for (DeviceAddress, account key)
//!   account sig = Ed25519(account, "E2EE-v1 device certificate" || every byte before it)
//! ```
//!
//! Decoding checks every signature in it (identity binding, device binding, account), so a
//! decoded certificate is internally consistent; [`DeviceCertificate::verify`] then says
//! whether the account that signed it is the one the caller trusts.

use crate::{
    Codec, DeviceAddress, Reader,
    device::{AccountIdentityKey, AccountIdentityKeyPair, DeviceBinding, binding::verify_parts},
    error::{DecodeError, KeyError},
    identity::{IDENTITY_KEY_LEN, IdentityDecodeError, IdentityKey},
};

/// Version byte of the certificate layout.
pub const DEVICE_CERTIFICATE_VERSION: u8 = 0x01;
/// Longest encoded [`DeviceCertificate`].
pub const MAX_DEVICE_CERTIFICATE_LEN: usize =
    1 + DeviceAddress::MAX_LEN + 32 + 8 + IDENTITY_KEY_LEN + 64 + 64;

const DEVICE_CERTIFICATE_CONTEXT: &[u8] = b"E2EE-v1 device certificate";

/// The account's certificate for one device.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeviceCertificate {
    identity: IdentityKey,
    binding: DeviceBinding,
    issued_at: u64,
    signature: [u8; 64],
}

impl DeviceCertificate {
    /// Certifies the device whose binding this is. The binding must verify under `identity`
    /// and name `account`'s public key.
    pub fn sign(
        account: &AccountIdentityKeyPair,
        identity: &IdentityKey,
        binding: &DeviceBinding,
        issued_at: u64,
    ) -> Result<Self, KeyError> {
        binding.verify(identity)?;
        if *binding.account() != account.public() {
            return Err(KeyError::InvalidSignature("device binding"));
        }
        let mut cert = Self {
            identity: *identity,
            binding: binding.clone(),
            issued_at,
            signature: [0; 64],
        };
        cert.signature = account.sign(&cert.signed_message());
        Ok(cert)
    }

    fn body(&self, out: &mut Vec<u8>) {
        out.push(DEVICE_CERTIFICATE_VERSION);
        self.binding.address().write(out);
        self.binding.account().write(out);
        self.issued_at.write(out);
        out.extend_from_slice(&self.identity.to_bytes());
        out.extend_from_slice(self.binding.signature());
    }

    fn signed_message(&self) -> Vec<u8> {
        let mut msg = DEVICE_CERTIFICATE_CONTEXT.to_vec();
        self.body(&mut msg);
        msg
    }

    /// Whether `account` (the account key the caller trusts for this user) signed it.
    pub fn verify(&self, account: &AccountIdentityKey) -> Result<(), KeyError> {
        if self.binding.account() != account {
            return Err(KeyError::InvalidSignature("device certificate"));
        }
        Ok(())
    }

    /// The device's own binding (address and account, signed by the device).
    pub fn binding(&self) -> &DeviceBinding {
        &self.binding
    }

    /// The certified device.
    pub fn address(&self) -> &DeviceAddress {
        self.binding.address()
    }

    /// The user the device belongs to.
    pub fn user_id(&self) -> &str {
        self.binding.address().user_id()
    }

    /// The device id.
    pub fn device_id(&self) -> u32 {
        self.binding.address().device_id()
    }

    /// The account that signed it.
    pub fn account(&self) -> &AccountIdentityKey {
        self.binding.account()
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

impl Codec for DeviceCertificate {
    type Error = IdentityDecodeError;
    const MAX_LEN: usize = MAX_DEVICE_CERTIFICATE_LEN;

    fn write(&self, out: &mut Vec<u8>) {
        self.body(out);
        out.extend_from_slice(&self.signature);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, IdentityDecodeError> {
        let version = reader.u8()?;
        if version != DEVICE_CERTIFICATE_VERSION {
            return Err(DecodeError::UnknownVersion(version).into());
        }
        let address = DeviceAddress::read(reader)?;
        let account = AccountIdentityKey::read(reader)?;
        let issued_at = reader.u64()?;
        let identity = IdentityKey::read(reader)?;
        let binding_signature = reader.array()?;
        verify_parts(&identity, &address, &account, &binding_signature)?;
        let cert = Self {
            identity,
            binding: DeviceBinding::from_parts(address, account, binding_signature),
            issued_at,
            signature: reader.array()?,
        };
        account.verify(
            &cert.signed_message(),
            &cert.signature,
            "device certificate",
        )?;
        Ok(cert)
    }
}

#[cfg(test)]
mod tests {
    use e2ee_encoding::check_codec;
    use rand_core::OsRng;

    use super::*;
    use crate::identity::IdentityKeyPair;

    fn certified(user: &str) -> (AccountIdentityKeyPair, IdentityKeyPair, DeviceCertificate) {
        let account = AccountIdentityKeyPair::generate(&mut OsRng);
        let device = IdentityKeyPair::generate(&mut OsRng);
        let binding = DeviceBinding::sign(
            &device,
            DeviceAddress::new(user, 3).unwrap(),
            account.public(),
        );
        let cert =
            DeviceCertificate::sign(&account, device.public(), &binding, 1_700_000_000).unwrap();
        (account, device, cert)
    }

    #[test]
    fn certificate_round_trips_and_verifies() {
        let (account, device, cert) = certified("alice");
        cert.verify(&account.public()).unwrap();
        check_codec(&cert);
        assert_eq!(cert.user_id(), "alice");
        assert_eq!(cert.device_id(), 3);
        assert_eq!(cert.issued_at(), 1_700_000_000);
        assert_eq!(cert.identity(), device.public());
        let (_, _, longest) = certified(&"x".repeat(crate::MAX_USER_ID_LEN));
        assert_eq!(longest.to_bytes().len(), MAX_DEVICE_CERTIFICATE_LEN);
    }

    #[test]
    fn every_flipped_bit_and_another_account_fail() {
        let (_, _, cert) = certified("alice");
        let other = AccountIdentityKeyPair::generate(&mut OsRng);
        assert_eq!(
            cert.verify(&other.public()),
            Err(KeyError::InvalidSignature("device certificate"))
        );
        let bytes = cert.to_bytes();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            assert!(
                DeviceCertificate::from_bytes(&bad).is_err(),
                "flip in byte {i} accepted"
            );
        }
    }

    /// F3: an account cannot certify a device key that did not bind itself to that account.
    #[test]
    fn an_account_cannot_certify_another_users_device() {
        let (_, victim, victim_cert) = certified("alice");
        let mallory = AccountIdentityKeyPair::generate(&mut OsRng);
        // Alice's own binding names Alice's account, not Mallory's.
        assert_eq!(
            DeviceCertificate::sign(&mallory, victim.public(), victim_cert.binding(), 1),
            Err(KeyError::InvalidSignature("device binding"))
        );
        // A binding with Mallory's address and account would need Alice's device key.
        let forged = DeviceBinding::from_parts(
            DeviceAddress::new("mallory", 1).unwrap(),
            mallory.public(),
            *victim_cert.binding().signature(),
        );
        assert_eq!(
            DeviceCertificate::sign(&mallory, victim.public(), &forged, 1),
            Err(KeyError::InvalidSignature("device binding"))
        );
    }
}
