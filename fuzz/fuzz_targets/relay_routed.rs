#![no_main]
//! The decoder of node-to-node routing messages (Redis) is total.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = e2ee_relay::wire::decode_routed(data);
});
