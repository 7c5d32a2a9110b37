#![no_main]
//! `GroupMessage::decode` is total, and a decoded message verifies or fails with a typed
//! error against a fixed group state (never a panic, never a state change on failure).
use e2ee_core::{
    Address,
    group::{GroupId, GroupMessage, GroupSession},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = GroupMessage::decode(data) {
        assert_eq!(message.as_bytes(), data);
    }
    let (Ok(group), Ok(me), Ok(peer)) = (
        GroupId::new(b"fuzz"),
        Address::new("me", 1),
        Address::new("peer", 1),
    ) else {
        return;
    };
    let mut session = GroupSession::new(group, me);
    if session.add_member(peer.clone()).is_ok() {
        let _ = session.decrypt(&peer, data);
    }
});
