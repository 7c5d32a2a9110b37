#![no_main]
//! What a peer's decrypted content carries between our clients (a chat message, or between
//! one's own devices a read sync) decodes totally and canonically.
use e2ee_client::{ChatMessage, ReadSync};
use e2ee_core::Codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = ChatMessage::from_bytes(data) {
        assert_eq!(message.to_bytes(), data);
    }
    if let Ok(sync) = ReadSync::from_bytes(data) {
        assert_eq!(sync.to_bytes(), data);
    }
});
