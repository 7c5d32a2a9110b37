#![no_main]
//! The message log record decoder is total and canonical.
use e2ee_client::LoggedMessage;
use e2ee_core::Codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = LoggedMessage::from_bytes(data) {
        assert_eq!(record.to_bytes(), data);
    }
});
