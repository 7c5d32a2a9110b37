#![no_main]
//! The client's outbox entry decoder is total and canonical.
use e2ee_client::OutboxEntry;
use e2ee_core::Codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = OutboxEntry::from_bytes(data) {
        assert_eq!(entry.to_bytes(), data);
    }
});
