#![no_main]
//! `GroupSession::from_bytes` is total and canonical (a stored group state re-encodes to
//! exactly its input).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(session) = e2ee_core::group::GroupSession::from_bytes(data) {
        assert_eq!(&session.to_bytes()[..], data);
    }
});
