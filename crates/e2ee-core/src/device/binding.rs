//! The device's own statement of whose device it is (proof of possession).
//!
//! ```text
//! DeviceBinding = DeviceAddress || account key (32) || sig (64)
//!   sig = Ed25519(device identity IK.sig, "E2EE-v1 device binding" || IK.public (64)
//!                 || DeviceAddress || account key)
//! ```
//!
//! An account key certifies device keys, but only the device itself can say "I am device
//! `d` of user `u` under account `A`". Certificates and device lists carry this signature
//! for every device they name, bundles and first messages carry the whole binding, and both
//! enter the handshake's key derivation. So no account can list, republish or answer for
//! another user's device key (the unknown-key-share attack of X3DH section 4.8).

use crate::{
    Codec, DeviceAddress, Reader,
    device::AccountIdentityKey,
    error::{DecodeError, KeyError},
    identity::{IdentityKey, IdentityKeyPair},
};

const DEVICE_BINDING_CONTEXT: &[u8] = b"E2EE-v1 device binding";

/// A device's signed claim to be `address` under `account`. It says nothing until checked
/// with [`Self::verify`] against the device's identity key; every decoder that carries one
/// next to an identity key checks it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeviceBinding {
    address: DeviceAddress,
    account: AccountIdentityKey,
    signature: [u8; 64],
}

impl DeviceBinding {
    /// The device `identity` signs that it is `address` of `account`.
    pub fn sign(
        identity: &IdentityKeyPair,
        address: DeviceAddress,
        account: AccountIdentityKey,
    ) -> Self {
        let signature = identity.sign(&signed_message(identity.public(), &address, &account));
        Self {
            address,
            account,
            signature,
        }
    }

    /// Checks the signature against the device's identity key.
    pub fn verify(&self, identity: &IdentityKey) -> Result<(), KeyError> {
        verify_parts(identity, &self.address, &self.account, &self.signature)
    }

    pub(crate) fn from_parts(
        address: DeviceAddress,
        account: AccountIdentityKey,
        signature: [u8; 64],
    ) -> Self {
        Self {
            address,
            account,
            signature,
        }
    }

    /// The device it names.
    pub fn address(&self) -> &DeviceAddress {
        &self.address
    }

    /// The account it names.
    pub fn account(&self) -> &AccountIdentityKey {
        &self.account
    }

    /// The device's signature.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }
}

/// Checks a binding signature given as parts (certificates and lists carry the address and
/// account once, and only the signature per device).
pub(crate) fn verify_parts(
    identity: &IdentityKey,
    address: &DeviceAddress,
    account: &AccountIdentityKey,
    signature: &[u8; 64],
) -> Result<(), KeyError> {
    identity.verify(
        &signed_message(identity, address, account),
        signature,
        "device binding",
    )
}

fn signed_message(
    identity: &IdentityKey,
    address: &DeviceAddress,
    account: &AccountIdentityKey,
) -> Vec<u8> {
    let mut msg = Vec::with_capacity(DEVICE_BINDING_CONTEXT.len() + 64 + 133 + 32);
    msg.extend_from_slice(DEVICE_BINDING_CONTEXT);
    msg.extend_from_slice(&identity.public_bytes());
    address.write(&mut msg);
    account.write(&mut msg);
    msg
}

impl Codec for DeviceBinding {
    type Error = DecodeError;
    const MAX_LEN: usize = DeviceAddress::MAX_LEN + 32 + 64;

    fn write(&self, out: &mut Vec<u8>) {
        self.address.write(out);
        self.account.write(out);
        out.extend_from_slice(&self.signature);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            address: DeviceAddress::read(reader)?,
            account: AccountIdentityKey::read(reader)?,
            signature: reader.array()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use e2ee_encoding::check_codec;
    use rand_core::OsRng;

    use super::*;
    use crate::device::AccountIdentityKeyPair;

    #[test]
    fn binds_the_identity_to_one_address_and_account() {
        let device = IdentityKeyPair::generate(&mut OsRng);
        let other = IdentityKeyPair::generate(&mut OsRng);
        let account = AccountIdentityKeyPair::generate(&mut OsRng).public();
        let address = DeviceAddress::new("alice", 2).unwrap();
        let binding = DeviceBinding::sign(&device, address.clone(), account);
        binding.verify(device.public()).unwrap();
        check_codec(&binding);
        assert_eq!(
            binding.verify(other.public()),
            Err(KeyError::InvalidSignature("device binding"))
        );
        let moved = DeviceBinding::from_parts(
            DeviceAddress::new("mallory", 2).unwrap(),
            account,
            *binding.signature(),
        );
        assert!(moved.verify(device.public()).is_err());
        let reaccounted = DeviceBinding::from_parts(
            address,
            AccountIdentityKeyPair::generate(&mut OsRng).public(),
            *binding.signature(),
        );
        assert!(reaccounted.verify(device.public()).is_err());
    }
}
