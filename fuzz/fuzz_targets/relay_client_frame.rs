#![no_main]
//! The decoder of client-to-relay frames is total, and what it accepts is canonical.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = e2ee_relay::wire::ClientFrame::decode(data) {
        assert_eq!(f.encode(), data);
    }
});
