#![no_main]
//! `IdentityKey::from_bytes` (with its binding signature check) is total.
use e2ee_core::Codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = e2ee_core::IdentityKey::from_bytes(data) {
        assert_eq!(&key.to_bytes()[..], data);
    }
});
