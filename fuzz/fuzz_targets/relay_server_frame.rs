#![no_main]
//! The decoder of relay-to-client frames is total.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = e2ee_relay::wire::ServerFrame::decode(data);
});
