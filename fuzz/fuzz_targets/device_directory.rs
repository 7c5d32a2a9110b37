#![no_main]
//! `DeviceDirectory::from_bytes` (the stored account trust and device lists) is total and
//! canonical.
use e2ee_core::{Codec, device::DeviceDirectory};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(directory) = DeviceDirectory::from_bytes(data) {
        assert_eq!(directory.to_bytes(), data);
    }
});
