#![no_main]
//! `SenderKeyDistribution::from_bytes` is total and canonical.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = e2ee_core::group::SenderKeyDistribution::from_bytes(data) {
        assert_eq!(&d.to_bytes()[..], data);
    }
});
