#![no_main]
//! `control::Content::from_bytes` is total and canonical (padding included).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(content) = e2ee_core::control::Content::from_bytes(data) {
        let again = content.to_bytes();
        assert!(matches!(again, Ok(ref bytes) if &bytes[..] == data));
    }
});
