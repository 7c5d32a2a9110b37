#![no_main]
//! The attachment pointer decoder is total and canonical: whatever decodes re-encodes to the
//! same bytes.
use e2ee_core::{Codec, media::MediaPointer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(pointer) = MediaPointer::from_bytes(data) {
        assert_eq!(pointer.to_bytes(), data);
    }
});
