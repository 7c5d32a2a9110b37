#![no_main]
//! `ReceiptTracker::from_bytes` (the stored receipt state) is total and canonical.
use e2ee_core::{Codec, control::ReceiptTracker};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tracker) = ReceiptTracker::from_bytes(data) {
        assert_eq!(tracker.to_bytes(), data);
    }
});
