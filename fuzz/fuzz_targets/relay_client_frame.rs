#![no_main]
//! The decoder of client-to-relay frames is total, and what it accepts is canonical.
use e2ee_relay::wire::{ClientFrame, Codec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = ClientFrame::from_bytes(data) {
        assert_eq!(f.to_bytes(), data);
    }
});
