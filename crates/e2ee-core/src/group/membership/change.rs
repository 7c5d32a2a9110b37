//! A signed change: version n+1 of a group, built on the hash of state n, made of operations,
//! signed by one device of the acting member.
//!
//! ```text
//! GroupChange = 0x01 || GroupId || version u64 || previous state hash [32]
//!               || signer DeviceCertificate || count u16 (1..=256) || Operation*
//!               || signature [64]
//!   signature   = Ed25519(signer device identity key,
//!                         "E2EE-v1 group change" || every byte before the signature)
//!   change hash = SHA-256("E2EE-v1 group change hash" || GroupChange)
//! ```
//!
//! The certificate proves that the account key the group pinned for the signer's user
//! certified the signing device, so every member checks a change the same way, whatever
//! device lists it holds. Decoding checks the certificate and the signature; whether the
//! signer may make the change is decided against the state it builds on
//! ([`super::rules`]).

use sha2::{Digest, Sha256};

use super::{MAX_CHANGE_OPERATIONS, MAX_GROUP_CHANGE_LEN, MembershipError, Operation};
use crate::{
    Codec, IdentityKeyPair, Reader,
    device::DeviceCertificate,
    error::{DecodeError, KeyError},
    group::GroupId,
};

/// Version byte of [`GroupChange`].
pub const GROUP_CHANGE_VERSION: u8 = 0x01;
const CHANGE_SIGNATURE_CONTEXT: &[u8] = b"E2EE-v1 group change";
const CHANGE_HASH_CONTEXT: &[u8] = b"E2EE-v1 group change hash";

/// What signs our changes: this device's identity and the certificate our account gave it.
/// `Debug` shows the certificate only (the identity's `Debug` never prints its secret).
#[derive(Debug)]
pub struct GroupSigner<'a> {
    identity: &'a IdentityKeyPair,
    certificate: DeviceCertificate,
}

impl<'a> GroupSigner<'a> {
    /// A signer; the certificate must certify this identity.
    pub fn new(
        identity: &'a IdentityKeyPair,
        certificate: DeviceCertificate,
    ) -> Result<Self, MembershipError> {
        if certificate.identity() != identity.public() {
            return Err(MembershipError::InvalidArgument(
                "the certificate is for another identity",
            ));
        }
        Ok(Self {
            identity,
            certificate,
        })
    }

    /// The signing device's certificate.
    pub fn certificate(&self) -> &DeviceCertificate {
        &self.certificate
    }
}

/// A decoded change whose signature verified.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupChange {
    group_id: GroupId,
    version: u64,
    previous: [u8; 32],
    signer: DeviceCertificate,
    operations: Vec<Operation>,
    bytes: Vec<u8>,
    hash: [u8; 32],
}

impl std::fmt::Debug for GroupChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupChange")
            .field("version", &self.version)
            .field("signer", self.signer.address())
            .field("operations", &self.operations.len())
            .field("hash", &crate::debug_hex::hex_prefix(&self.hash))
            .finish()
    }
}

impl GroupChange {
    /// Signs `operations` as version `previous_version + 1` on the state whose hash is
    /// `previous`. Only the layout is checked here; [`super::GroupHistory::commit`] also
    /// checks that the change applies.
    pub(crate) fn sign(
        signer: &GroupSigner<'_>,
        group_id: &GroupId,
        previous_version: u64,
        previous: [u8; 32],
        operations: Vec<Operation>,
    ) -> Result<Self, MembershipError> {
        if operations.is_empty() || operations.len() > MAX_CHANGE_OPERATIONS {
            return Err(MembershipError::InvalidArgument(
                "a change holds 1..=256 operations",
            ));
        }
        for operation in &operations {
            operation
                .check()
                .map_err(MembershipError::InvalidArgument)?;
        }
        let version = previous_version
            .checked_add(1)
            .ok_or(MembershipError::InvalidArgument("version overflow"))?;
        let mut bytes = body(
            group_id,
            version,
            &previous,
            &signer.certificate,
            &operations,
        );
        if bytes.len() + 64 > MAX_GROUP_CHANGE_LEN {
            return Err(MembershipError::InvalidArgument("change over 48 KiB"));
        }
        let signature = signer.identity.sign(&signed_message(&bytes));
        bytes.extend_from_slice(&signature);
        Ok(Self {
            group_id: group_id.clone(),
            version,
            previous,
            signer: signer.certificate.clone(),
            operations,
            hash: change_hash(&bytes),
            bytes,
        })
    }

    /// The group.
    pub fn group_id(&self) -> &GroupId {
        &self.group_id
    }

    /// The version this change creates.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The hash of the state it builds on.
    pub fn previous_hash(&self) -> &[u8; 32] {
        &self.previous
    }

    /// The signing device's certificate.
    pub fn signer(&self) -> &DeviceCertificate {
        &self.signer
    }

    /// The operations, in the order they apply.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// SHA-256 over the encoding (the conflict rule orders competing changes by it).
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }
}

fn body(
    group_id: &GroupId,
    version: u64,
    previous: &[u8; 32],
    signer: &DeviceCertificate,
    operations: &[Operation],
) -> Vec<u8> {
    let mut out = vec![GROUP_CHANGE_VERSION];
    group_id.write(&mut out);
    version.write(&mut out);
    out.extend_from_slice(previous);
    signer.write(&mut out);
    // 1..=MAX_CHANGE_OPERATIONS, checked by `sign` and the decoder.
    out.extend_from_slice(
        &u16::try_from(operations.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    for operation in operations {
        operation.write(&mut out);
    }
    out
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(CHANGE_SIGNATURE_CONTEXT.len() + body.len());
    message.extend_from_slice(CHANGE_SIGNATURE_CONTEXT);
    message.extend_from_slice(body);
    message
}

fn change_hash(bytes: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(CHANGE_HASH_CONTEXT);
    hasher.update(bytes);
    hasher.finalize().into()
}

impl Codec for GroupChange {
    type Error = MembershipError;
    const MAX_LEN: usize = MAX_GROUP_CHANGE_LEN;

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bytes);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, MembershipError> {
        let version_byte = reader.u8()?;
        if version_byte != GROUP_CHANGE_VERSION {
            return Err(DecodeError::UnknownVersion(version_byte).into());
        }
        let group_id = GroupId::read(reader)?;
        let version = reader.u64()?;
        if version == 0 {
            return Err(DecodeError::InvalidField("change version 0").into());
        }
        let previous = reader.array()?;
        let signer = DeviceCertificate::read(reader)?;
        let count = usize::from(reader.u16()?);
        if count == 0 {
            return Err(DecodeError::InvalidField("change without operations").into());
        }
        if count > MAX_CHANGE_OPERATIONS {
            return Err(DecodeError::TooLarge.into());
        }
        let mut operations = Vec::with_capacity(count);
        for _ in 0..count {
            operations.push(Operation::read(reader)?);
        }
        // Every field decodes canonically, so the re-encoding is the bytes that were read.
        let body = body(&group_id, version, &previous, &signer, &operations);
        let signature: [u8; 64] = reader.array()?;
        if body.len() + 64 > MAX_GROUP_CHANGE_LEN {
            return Err(DecodeError::TooLarge.into());
        }
        signer
            .identity()
            .verify(&signed_message(&body), &signature, "group change")
            .map_err(|e: KeyError| MembershipError::Key(e))?;
        let mut bytes = body;
        bytes.extend_from_slice(&signature);
        Ok(Self {
            group_id,
            version,
            previous,
            signer,
            operations,
            hash: change_hash(&bytes),
            bytes,
        })
    }
}
