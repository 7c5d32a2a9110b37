//! The cost of the worst forged 1:1 message (docs/protocol.md, "Denial of service").
//!
//! The victim holds a full session record for the sender: the current state and the
//! `MAX_PREVIOUS_STATES` = 40 archived ones, each with a receiving chain. The forged ratchet
//! message needs no key: a fresh ratchet key, `PN` and `N` both at `MAX_FORWARD_JUMP`, and a
//! garbage tag. Every state it is tried against may derive chain keys before the tag check
//! fails; the figure is what one such message costs the receiver.
//!
//! `cargo bench -p e2ee-bench --bench forged -- --warm-up-time 1 --measurement-time 10`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
mod common;

use common::Ours;
use e2ee_core::{
    DhKeyPair, SessionCipher,
    limits::{MAX_FORWARD_JUMP, MAX_PREVIOUS_STATES},
};
use e2ee_encoding::put_varint;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn forged(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let cipher = SessionCipher::default();
    let ours = Ours::new(&mut rng);
    let mut victim = ours.victim_store(&mut rng, MAX_PREVIOUS_STATES + 1);
    let record = cipher.session(&victim, &ours.bob_address).unwrap().unwrap();
    assert_eq!(record.previous_state_count(), MAX_PREVIOUS_STATES);

    let mut message = vec![0x11];
    message.extend_from_slice(&DhKeyPair::generate(&mut rng).public().to_bytes());
    put_varint(&mut message, MAX_FORWARD_JUMP);
    put_varint(&mut message, MAX_FORWARD_JUMP);
    message.extend_from_slice(&[0u8; 16]);

    let mut group = c.benchmark_group("forged");
    group.sample_size(10);
    group.bench_function("ratchet_message_full_record", |b| {
        b.iter(|| {
            let result = cipher.decrypt(&mut victim, &ours.bob_address, &message);
            assert!(result.is_err());
        })
    });
    group.finish();
}

criterion_group!(benches, forged);
criterion_main!(benches);
