#![no_main]
//! Ticket parsing and verification is total (bytes and text forms).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    let _ = e2ee_ticket::Ticket::verify(data, &key, 1_000);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = e2ee_ticket::Ticket::verify_text(text, &key, 1_000);
    }
});
