#![no_main]
//! The decoder of relay-to-client frames is total, and what it accepts is canonical (error
//! details, decoded lossily as UTF-8, aside).
use e2ee_relay::wire::{Codec, ServerFrame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = ServerFrame::from_bytes(data) {
        if !matches!(f, ServerFrame::Error { .. }) {
            assert_eq!(f.to_bytes(), data);
        }
    }
});
