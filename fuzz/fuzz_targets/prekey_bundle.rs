#![no_main]
//! `PreKeyBundle::from_bytes` is total and canonical; `verify` never panics.
use e2ee_core::Codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = e2ee_core::PreKeyBundle::from_bytes(data) {
        assert_eq!(bundle.to_bytes(), data);
        let _ = bundle.verify();
    }
});
