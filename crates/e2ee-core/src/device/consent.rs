//! An account consent: the account key's fresh, signed "yes" to one change of its devices at
//! a server, for the changes a device credential alone must not make.
//!
//! ```text
//! AccountConsent = 0x01 || action u8 || SHA-256(DeviceCertificate) (32) || issued_at_ms u64
//!                  || account sig (64)
//!   action      = 0x01 enrol the certified device, 0x02 remove it
//!   account sig = Ed25519(account, "E2EE-v1 account consent" || every byte before it)
//! ```
//!
//! Device certificates are public and never expire, so a certificate alone cannot say "add
//! this device now": anyone who saw it could re-post it after the device was removed. A
//! consent names one certificate (by its digest), one action and the moment the account
//! signed it, so a server can refuse a consent older than its window or older than the
//! device's removal (docs/keyserver.md). It is sent to the server only, never published.

use sha2::{Digest, Sha256};

use crate::{
    Codec, Reader,
    device::{AccountIdentityKey, AccountIdentityKeyPair, DeviceCertificate},
    error::{DecodeError, KeyError},
};

/// Version byte of the consent layout.
pub const ACCOUNT_CONSENT_VERSION: u8 = 0x01;
/// Encoded length of an [`AccountConsent`].
pub const ACCOUNT_CONSENT_LEN: usize = 1 + 1 + 32 + 8 + 64;

const ACCOUNT_CONSENT_CONTEXT: &[u8] = b"E2EE-v1 account consent";

/// What the account consents to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ConsentAction {
    /// Register the certified device (again, after a removal, or for the first time).
    Enrol,
    /// Remove the certified device (needed for the device that holds the account key).
    Remove,
}

impl ConsentAction {
    fn to_byte(self) -> u8 {
        match self {
            Self::Enrol => 0x01,
            Self::Remove => 0x02,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0x01 => Some(Self::Enrol),
            0x02 => Some(Self::Remove),
            _ => None,
        }
    }
}

/// The account key's signed consent to one action on one certified device.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AccountConsent {
    action: ConsentAction,
    certificate_digest: [u8; 32],
    issued_at_ms: u64,
    signature: [u8; 64],
}

fn certificate_digest(certificate: &DeviceCertificate) -> [u8; 32] {
    Sha256::digest(certificate.to_bytes()).into()
}

impl AccountConsent {
    /// Signs `action` on `certificate` at `issued_at_ms` (Unix milliseconds).
    pub fn sign(
        account: &AccountIdentityKeyPair,
        action: ConsentAction,
        certificate: &DeviceCertificate,
        issued_at_ms: u64,
    ) -> Self {
        let mut consent = Self {
            action,
            certificate_digest: certificate_digest(certificate),
            issued_at_ms,
            signature: [0; 64],
        };
        consent.signature = account.sign(&consent.signed_message());
        consent
    }

    fn body(&self, out: &mut Vec<u8>) {
        out.push(ACCOUNT_CONSENT_VERSION);
        out.push(self.action.to_byte());
        out.extend_from_slice(&self.certificate_digest);
        self.issued_at_ms.write(out);
    }

    fn signed_message(&self) -> Vec<u8> {
        let mut msg = ACCOUNT_CONSENT_CONTEXT.to_vec();
        self.body(&mut msg);
        msg
    }

    /// Whether `account` signed exactly `action` on exactly `certificate`. Freshness is the
    /// verifier's policy: compare [`AccountConsent::issued_at_ms`] with its own clock.
    pub fn verify(
        &self,
        account: &AccountIdentityKey,
        action: ConsentAction,
        certificate: &DeviceCertificate,
    ) -> Result<(), KeyError> {
        if self.action != action || self.certificate_digest != certificate_digest(certificate) {
            return Err(KeyError::InvalidSignature("account consent"));
        }
        account.verify(&self.signed_message(), &self.signature, "account consent")
    }

    /// The consented action.
    pub fn action(&self) -> ConsentAction {
        self.action
    }

    /// Unix milliseconds at which the account signed it.
    pub fn issued_at_ms(&self) -> u64 {
        self.issued_at_ms
    }
}

impl Codec for AccountConsent {
    type Error = DecodeError;
    const MAX_LEN: usize = ACCOUNT_CONSENT_LEN;

    fn write(&self, out: &mut Vec<u8>) {
        self.body(out);
        out.extend_from_slice(&self.signature);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = reader.u8()?;
        if version != ACCOUNT_CONSENT_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let action = ConsentAction::from_byte(reader.u8()?)
            .ok_or(DecodeError::InvalidField("consent action"))?;
        Ok(Self {
            action,
            certificate_digest: reader.array()?,
            issued_at_ms: reader.u64()?,
            signature: reader.array()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use e2ee_encoding::check_codec;
    use rand_core::OsRng;

    use super::*;
    use crate::{DeviceAddress, device::DeviceBinding, identity::IdentityKeyPair};

    fn certificate(account: &AccountIdentityKeyPair, device_id: u32) -> DeviceCertificate {
        let device = IdentityKeyPair::generate(&mut OsRng);
        let address = DeviceAddress::new("alice", device_id).unwrap();
        let binding = DeviceBinding::sign(&device, address, account.public());
        DeviceCertificate::sign(account, device.public(), &binding, 1_700_000_000).unwrap()
    }

    #[test]
    fn a_consent_round_trips_and_verifies_for_its_action_and_certificate_only() {
        let account = AccountIdentityKeyPair::generate(&mut OsRng);
        let cert = certificate(&account, 2);
        let consent = AccountConsent::sign(&account, ConsentAction::Enrol, &cert, 1_234);
        check_codec(&consent);
        assert_eq!(consent.to_bytes().len(), ACCOUNT_CONSENT_LEN);
        assert_eq!(consent.issued_at_ms(), 1_234);
        assert_eq!(consent.action(), ConsentAction::Enrol);
        consent
            .verify(&account.public(), ConsentAction::Enrol, &cert)
            .unwrap();

        let refused = Err(KeyError::InvalidSignature("account consent"));
        assert_eq!(
            consent.verify(&account.public(), ConsentAction::Remove, &cert),
            refused
        );
        let other_cert = certificate(&account, 3);
        assert_eq!(
            consent.verify(&account.public(), ConsentAction::Enrol, &other_cert),
            refused
        );
        let other_account = AccountIdentityKeyPair::generate(&mut OsRng);
        assert_eq!(
            consent.verify(&other_account.public(), ConsentAction::Enrol, &cert),
            refused
        );
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let account = AccountIdentityKeyPair::generate(&mut OsRng);
        let cert = certificate(&account, 2);
        let bytes = AccountConsent::sign(&account, ConsentAction::Remove, &cert, 99).to_bytes();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                let accepted = AccountConsent::from_bytes(&bad).is_ok_and(|c| {
                    c.verify(&account.public(), ConsentAction::Remove, &cert)
                        .is_ok()
                });
                assert!(!accepted, "flip of bit {bit} in byte {i} accepted");
            }
        }
    }

    #[test]
    fn unknown_versions_and_actions_do_not_decode() {
        let account = AccountIdentityKeyPair::generate(&mut OsRng);
        let cert = certificate(&account, 2);
        let bytes = AccountConsent::sign(&account, ConsentAction::Enrol, &cert, 5).to_bytes();
        let mut bad = bytes.clone();
        bad[0] = 0x02;
        assert_eq!(
            AccountConsent::from_bytes(&bad),
            Err(DecodeError::UnknownVersion(0x02))
        );
        for action in [0x00, 0x03, 0xff] {
            let mut bad = bytes.clone();
            bad[1] = action;
            assert_eq!(
                AccountConsent::from_bytes(&bad),
                Err(DecodeError::InvalidField("consent action"))
            );
        }
    }
}
