#![no_main]
//! `SessionRecord::from_bytes` is total and canonical.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = e2ee_core::SessionRecord::from_bytes(data) {
        assert_eq!(&record.to_bytes()[..], data);
    }
});
