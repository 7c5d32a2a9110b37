//! The group-layer decoders over random bytes, mutated valid encodings and the fuzz seed
//! corpora (fuzz/corpus/group_*), on stable Rust. Each must return a value or a typed error,
//! never panic, and re-encode any value it accepts to exactly its input.

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use e2ee_core::{
    Codec, DeviceAddress, IdentityKeyPair,
    control::{Content, Receipt, ReceiptKind, ReceiptTracker, Typing},
    device::VerifiedDevice,
    group::{GroupId, GroupMessage, GroupSession, MessageId, SenderKeyDistribution},
};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

const TARGETS: [&str; 5] = [
    "group_message",
    "group_distribution",
    "group_content",
    "group_session",
    "receipt_tracker",
];

fn member(user: &str, seed: u8) -> VerifiedDevice {
    let identity = IdentityKeyPair::from_secret_bytes(&[seed; 64]).unwrap();
    VerifiedDevice::assume_verified(DeviceAddress::new(user, 1).unwrap(), *identity.public())
}

fn decode(target: &str, data: &[u8]) {
    match target {
        "group_message" => {
            if let Ok(m) = GroupMessage::from_bytes(data) {
                assert_eq!(m.as_bytes(), data);
            }
        }
        "group_distribution" => {
            if let Ok(d) = SenderKeyDistribution::from_bytes(data) {
                assert_eq!(&d.to_bytes()[..], data);
            }
        }
        "group_content" => {
            if let Ok(c) = Content::from_bytes(data) {
                assert_eq!(&c.to_bytes().unwrap()[..], data);
            }
        }
        "group_session" => {
            if let Ok(s) = GroupSession::from_bytes(data) {
                assert_eq!(&s.to_bytes()[..], data);
            }
        }
        "receipt_tracker" => {
            if let Ok(t) = ReceiptTracker::from_bytes(data) {
                assert_eq!(t.to_bytes(), data);
            }
        }
        other => panic!("unknown target {other}"),
    }
}

fn valid_inputs() -> Vec<(&'static str, Vec<u8>)> {
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    let group = GroupId::new(b"decoder-group").unwrap();
    let mut session = GroupSession::new(group.clone(), DeviceAddress::new("alice", 1).unwrap());
    session.add_member(member("bob", 2)).unwrap();
    let send = session.encrypt(&mut rng, b"hello").unwrap();
    let distribution = send.distribution.clone().unwrap();
    let contents = [
        Content::Message(b"hi".to_vec()),
        Content::from(distribution.clone()),
        Content::Receipt(Receipt {
            kind: ReceiptKind::Read,
            message_ids: vec![MessageId(1), MessageId(2)],
        }),
        Content::Typing(Typing {
            started: true,
            group_id: Some(group),
        }),
    ];
    // Bob's side, with a sender key from Alice and a skipped key, and his own outbound key.
    let mut bob = GroupSession::new(
        GroupId::new(b"decoder-group").unwrap(),
        DeviceAddress::new("bob", 1).unwrap(),
    );
    let alice = DeviceAddress::new("alice", 1).unwrap();
    bob.add_member(member("alice", 1)).unwrap();
    bob.process_distribution(&member("alice", 1), &distribution)
        .unwrap();
    let later = session.encrypt(&mut rng, b"later").unwrap();
    bob.decrypt(&alice, &later.message).unwrap();
    let from_bob = bob.encrypt(&mut rng, b"from bob").unwrap();
    let mut tracker = ReceiptTracker::new();
    tracker
        .track(
            from_bob.message_id,
            [alice.clone(), DeviceAddress::new("carol", 2).unwrap()],
        )
        .unwrap();
    tracker.track(later.message_id, [alice.clone()]).unwrap();
    tracker.record(
        &alice,
        &Receipt {
            kind: ReceiptKind::Read,
            message_ids: vec![from_bob.message_id, later.message_id],
        },
    );
    let mut out = vec![
        ("receipt_tracker", tracker.to_bytes()),
        ("group_session", bob.to_bytes().to_vec()),
        ("group_message", send.message),
        ("group_distribution", distribution.to_bytes().to_vec()),
    ];
    out.extend(
        contents
            .iter()
            .map(|c| ("group_content", c.to_bytes().unwrap().to_vec())),
    );
    out
}

#[test]
fn group_decoders_survive_random_bytes() {
    let mut rng = ChaCha20Rng::seed_from_u64(17);
    for target in TARGETS {
        for len in (0..300).chain([384, 1_000, 4_000]) {
            for _ in 0..8 {
                let mut data = vec![0u8; len];
                rng.fill_bytes(&mut data);
                if len > 0 && rng.next_u32() % 2 == 0 {
                    data[0] = [0x00, 0x01, 0x02, 0x03][rng.next_u32() as usize % 4];
                }
                decode(target, &data);
            }
        }
    }
}

#[test]
fn group_decoders_survive_mutations_of_valid_encodings() {
    let mut rng = ChaCha20Rng::seed_from_u64(18);
    for (target, valid) in valid_inputs() {
        common::decode_mutations(&mut rng, &valid, usize::MAX, |data| decode(target, data));
    }
}

/// Replays fuzz/corpus/group_*; `E2EE_WRITE_FUZZ_SEEDS=1` rewrites the seeds.
#[test]
fn group_seed_corpora_replay() {
    let replayed = common::replay_corpora(&TARGETS, valid_inputs(), decode);
    assert!(
        replayed >= TARGETS.len(),
        "seed corpora missing under fuzz/corpus/group_* ({replayed} files)"
    );
}
