#![no_main]
//! The account consent decoder is total and canonical.
use e2ee_core::{Codec, device::AccountConsent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(consent) = AccountConsent::from_bytes(data) {
        assert_eq!(consent.to_bytes(), data);
    }
});
