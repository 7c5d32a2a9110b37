#![no_main]
//! The decoder of node-to-node routing messages (Redis) is total, and what it accepts is
//! canonical.
use e2ee_relay::{Routed, wire::Codec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Routed::from_bytes(data) {
        assert_eq!(m.to_bytes(), data);
    }
});
