#![no_main]
//! The chat message decoder (what a peer's decrypted content carries) is total and canonical.
use e2ee_client::ChatMessage;
use e2ee_core::Codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = ChatMessage::from_bytes(data) {
        assert_eq!(message.to_bytes(), data);
    }
});
