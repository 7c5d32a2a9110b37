#![no_main]
//! `GroupMessage::from_bytes` is total, and a decoded message verifies or fails with a typed
//! error against a fixed group state (never a panic, never a state change on failure).
use e2ee_core::Codec;
use e2ee_core::{
    DeviceAddress, IdentityKeyPair,
    device::VerifiedDevice,
    group::{GroupId, GroupMessage, GroupSession},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = GroupMessage::from_bytes(data) {
        assert_eq!(message.as_bytes(), data);
    }
    let (Ok(group), Ok(me), Ok(peer), Ok(identity)) = (
        GroupId::new(b"fuzz"),
        DeviceAddress::new("me", 1),
        DeviceAddress::new("peer", 1),
        IdentityKeyPair::from_secret_bytes(&[7; 64]),
    ) else {
        return;
    };
    let mut session = GroupSession::new(group, me);
    let member = VerifiedDevice::assume_verified(peer.clone(), *identity.public());
    if session.add_member(member).is_ok() {
        let _ = session.decrypt(&peer, data);
    }
});
