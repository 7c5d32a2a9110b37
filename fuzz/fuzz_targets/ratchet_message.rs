#![no_main]
//! `RatchetMessage::decode` is total: a value or a typed error, never a panic.
use e2ee_core::Codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = e2ee_core::message::RatchetMessage::from_bytes(data) {
        // A decoded message re-encodes to exactly its input (canonical encoding).
        assert_eq!(message.as_bytes(), data);
    }
});
