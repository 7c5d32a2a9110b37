#![no_main]
//! The account decoders (account identity key, device certificate, device list) are total and
//! canonical; the first byte picks which one.
use e2ee_core::account::{AccountIdentityKey, DeviceCertificate, DeviceList};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            let _ = AccountIdentityKey::from_bytes(rest);
        }
        1 => {
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
