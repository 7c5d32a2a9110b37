#![no_main]
//! The three public prekey decoders are total; the first byte picks which one.
use e2ee_core::Codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    match which % 3 {
        0 => {
            if let Ok(key) = e2ee_core::SignedPreKeyPublic::from_bytes(rest) {
                assert_eq!(key.to_bytes(), rest);
            }
        }
        1 => {
            if let Ok(key) = e2ee_core::OneTimePreKeyPublic::from_bytes(rest) {
                assert_eq!(&key.to_bytes()[..], rest);
            }
        }
        _ => {
            if let Ok(key) = e2ee_core::KemPreKeyPublic::from_bytes(rest) {
                assert_eq!(key.to_bytes(), rest);
            }
        }
    }
});
