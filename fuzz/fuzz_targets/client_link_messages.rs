#![no_main]
//! The link messages (what arrives on the provisioning channel, once opened) decode totally;
//! the offer and the welcome canonically (the acceptance's identity key may be re-encoded).
use e2ee_client::{LinkAcceptance, LinkOffer, LinkWelcome};
use e2ee_core::Codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(offer) = LinkOffer::from_bytes(data) {
        assert_eq!(offer.to_bytes(), data);
    }
    if let Ok(welcome) = LinkWelcome::from_bytes(data) {
        assert_eq!(welcome.to_bytes(), data);
    }
    if let Ok(acceptance) = LinkAcceptance::from_bytes(data) {
        let again = LinkAcceptance::from_bytes(&acceptance.to_bytes());
        assert!(again.is_ok());
    }
});
