//! Every public binary format of the core through the one generic check
//! (`e2ee_encoding::check_codec`): it round-trips byte for byte, re-encodes exactly, and
//! refuses every cut and a trailing byte (formats ending in a ciphertext: the empty input).

use e2ee_encoding::check_codec;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::harness::{Device, established};
use crate::{
    Codec, DeviceAddress, IdentityStore,
    device::AccountIdentityKeyPair,
    group::{GroupId, GroupSession},
    message::{PreKeyMessage, RatchetMessage},
};

#[test]
fn every_key_and_bundle_format_passes_the_generic_codec_check() {
    let mut bob = Device::new("bob", 11);
    let identity = bob.store.identity_key_pair().unwrap();
    check_codec(identity.public());
    let full = bob.bundle();
    check_codec(&full);
    check_codec(&full.signed_prekey);
    check_codec(full.one_time_prekey.as_ref().unwrap());
    check_codec(full.kem_prekey.as_ref().unwrap());
    check_codec(&full.binding);
    check_codec(&bob.last_resort_bundle());
    let account = AccountIdentityKeyPair::generate(&mut ChaCha20Rng::seed_from_u64(12));
    check_codec(&account.public());
}

#[test]
fn every_message_format_passes_the_generic_codec_check() {
    let mut alice = Device::new("alice", 21);
    let mut bob = Device::new("bob", 22);
    alice.start_session(&mut bob);
    let first = alice.encrypt(&bob.address.clone(), b"first");
    check_codec(&PreKeyMessage::from_bytes(&first).unwrap());

    let (mut alice, bob) = established(23);
    let next = alice.encrypt(&bob.address.clone(), b"next");
    check_codec(&RatchetMessage::from_bytes(&next).unwrap());

    let group = GroupId::new(b"g").unwrap();
    check_codec(&group);
    let mut session = GroupSession::new(group, DeviceAddress::new("alice", 1).unwrap());
    let send = session
        .encrypt(&mut ChaCha20Rng::seed_from_u64(24), b"to all")
        .unwrap();
    check_codec(&crate::group::GroupMessage::from_bytes(&send.message).unwrap());
}
