#![no_main]
//! `PreKeyMessage::decode` is total.
use e2ee_core::Codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = e2ee_core::message::PreKeyMessage::from_bytes(data);
});
