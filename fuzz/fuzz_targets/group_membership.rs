#![no_main]
//! The membership decoders are total and canonical, and a decoded change either joins a
//! fixed group's history or fails with a typed error leaving it as it was.
//!
//! The first byte picks the decoder: 0 change, 1 state, 2 welcome, 3 history record,
//! 4 sync request, 5 state reference.
use std::sync::OnceLock;

use e2ee_core::{
    Codec, DeviceAddress, IdentityKeyPair,
    device::{AccountIdentityKeyPair, DeviceBinding, DeviceCertificate},
    group::{
        GroupId,
        membership::{
            GroupChange, GroupHistory, GroupSigner, GroupState, GroupSyncRequest, GroupWelcome,
            Operation, Role, StateRef,
        },
    },
};
use libfuzzer_sys::fuzz_target;

/// A group "alice" created, with "bob" as a member.
fn base() -> Option<&'static GroupHistory> {
    static BASE: OnceLock<Option<GroupHistory>> = OnceLock::new();
    BASE.get_or_init(|| {
        let account = AccountIdentityKeyPair::from_secret_bytes(&[3; 32]).ok()?;
        let identity = IdentityKeyPair::from_secret_bytes(&[4; 64]).ok()?;
        let binding = DeviceBinding::sign(
            &identity,
            DeviceAddress::new("alice", 1).ok()?,
            account.public(),
        );
        let certificate = DeviceCertificate::sign(&account, identity.public(), &binding, 1).ok()?;
        let signer = GroupSigner::new(&identity, certificate).ok()?;
        let bob = AccountIdentityKeyPair::from_secret_bytes(&[5; 32]).ok()?;
        let mut history = GroupHistory::new(GroupId::new(b"fuzz-group").ok()?);
        history
            .commit(
                &signer,
                vec![
                    Operation::Add {
                        user: "alice".try_into().ok()?,
                        account: account.public(),
                        role: Role::Admin,
                    },
                    Operation::Add {
                        user: "bob".try_into().ok()?,
                        account: bob.public(),
                        role: Role::Member,
                    },
                ],
            )
            .ok()?;
        Some(history)
    })
    .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    match kind {
        0 => {
            if let Ok(change) = GroupChange::from_bytes(bytes) {
                assert_eq!(change.to_bytes(), bytes);
                if let Some(base) = base() {
                    let mut history = base.clone();
                    let before = history.state_hash();
                    if history.receive(change).is_err() {
                        assert_eq!(history.state_hash(), before);
                    }
                }
            }
        }
        1 => {
            if let Ok(state) = GroupState::from_bytes(bytes) {
                assert_eq!(state.to_bytes(), bytes);
            }
        }
        2 => {
            if let Ok(welcome) = GroupWelcome::from_bytes(bytes) {
                assert_eq!(welcome.to_bytes(), bytes);
                let _ = GroupHistory::from_welcome(welcome);
            }
        }
        3 => {
            let _ = GroupHistory::from_bytes(bytes);
        }
        4 => {
            if let Ok(request) = GroupSyncRequest::from_bytes(bytes) {
                assert_eq!(request.to_bytes(), bytes);
            }
        }
        _ => {
            if let Ok(at) = StateRef::from_bytes(bytes) {
                assert_eq!(at.to_bytes(), bytes);
            }
        }
    }
});
