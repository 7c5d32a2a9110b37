#![no_main]
//! The multi-device decoders (account identity key, device binding, device certificate,
//! device list) are total and canonical; the first byte picks which one.
use e2ee_core::{
    Codec,
    device::{AccountIdentityKey, DeviceBinding, DeviceCertificate, DeviceList},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => {
            if let Ok(key) = AccountIdentityKey::from_bytes(rest) {
                assert_eq!(key.to_bytes(), rest);
            }
        }
        1 => {
            if let Ok(binding) = DeviceBinding::from_bytes(rest) {
                assert_eq!(binding.to_bytes(), rest);
            }
        }
        2 => {
            if let Ok(certificate) = DeviceCertificate::from_bytes(rest) {
                assert_eq!(certificate.to_bytes(), rest);
            }
        }
        _ => {
            if let Ok(list) = DeviceList::from_bytes(rest) {
                assert_eq!(list.to_bytes(), rest);
            }
        }
    }
});
