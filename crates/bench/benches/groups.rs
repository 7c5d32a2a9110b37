//! Groups: e2ee-core sender keys side by side with vodozemac 0.11 Megolm, in one run.
//!
//! Run: `cargo bench -p e2ee-bench --bench groups -- --warm-up-time 1 --measurement-time 3`
//!
//! - `group/encrypt`, `group/decrypt`: 100-byte messages, in order, on an existing chain.
//! - `group/decrypt_jump_1000`: a fresh receiver decrypts the message 1,000 iterations ahead.
//! - `fanout/{sender_key,megolm,pairwise}/N`: what the sender computes to send one message
//!   to a group of N devices (itself included): one group ciphertext for sender keys and
//!   Megolm, N-1 1:1 ciphertexts (established sessions, through the store) for pairwise.
//!
//! One run on the shared 2-core machine (2026-11-23, other builds running; medians):
//! encrypt 29.6 us (Megolm 24.7), decrypt 49.8 us (Megolm 63.5), decrypt after a jump of
//! 1,000: 476 us (Megolm 132); fan-out sender key 42.6 / 44.6 / 44.0 / 76.3 us for 2 / 32 /
//! 256 / 1,024 members, pairwise 3.75 us / 126 us / 1.15 ms / 4.45 ms.
//!
//! Sender-key encrypt made flat in the group size (2026-12-02, same session, filter
//! `"fanout/(sender_key|megolm)"`, medians, ours / Megolm): before 36.3 / 39.6 / 62.4 /
//! 159.7 us against 36.3 / 39.5 / 35.9 / 32.6 (1.00x / 1.00x / 1.74x / 4.90x); after 34.6 /
//! 29.4 / 31.3 / 31.3 us against 32.0 / 34.9 / 33.5 / 27.5 (1.08x / 0.84x / 0.93x / 1.14x)
//! for 2 / 32 / 256 / 1,024 members. The cost was a walk over every member to find those
//! still missing our key, now skipped when none is.

// A benchmark has no caller to report an error to: any failure here is a bug in the code
// under test and must stop the run rather than produce a number.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(missing_docs)]

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use e2ee_core::{
    DeviceAddress, IdentityKeyPair, InMemoryStore, KemPreKey, KemPreKeyKind, PreKeyBundle,
    SessionCipher, SignedPreKey,
    device::{AccountIdentityKeyPair, DeviceBinding, VerifiedDevice},
    group::{GroupId, GroupSession},
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use vodozemac::megolm::{
    GroupSession as MegolmOut, InboundGroupSession as MegolmIn, SessionConfig as MegolmConfig,
};

const PLAINTEXT: [u8; 100] = [0x42; 100];
const SIZES: [usize; 4] = [2, 32, 256, 1_024];

fn addr(i: usize) -> DeviceAddress {
    DeviceAddress::new(format!("member-{i}"), 1).unwrap()
}

/// Member `i` as a directory would vouch for it (one identity shared by all members: the
/// group code never looks at it beyond comparing).
fn member(i: usize) -> VerifiedDevice {
    let identity = IdentityKeyPair::from_secret_bytes(&[7; 64]).unwrap();
    VerifiedDevice::assume_verified(addr(i), *identity.public())
}

fn gid() -> GroupId {
    GroupId::new(b"bench-group").unwrap()
}

/// A sender with `n - 1` other members, its key already distributed; and one receiver.
fn ours(n: usize, rng: &mut ChaCha20Rng) -> (GroupSession, GroupSession) {
    let mut sender = GroupSession::new(gid(), addr(0));
    for i in 1..n {
        sender.add_member(member(i)).unwrap();
    }
    let first = sender.encrypt(rng, &PLAINTEXT).unwrap();
    let mut receiver = GroupSession::new(gid(), addr(1));
    receiver.add_member(member(0)).unwrap();
    receiver
        .process_distribution(&member(0), first.distribution.as_ref().unwrap())
        .unwrap();
    receiver.decrypt(&addr(0), &first.message).unwrap();
    (sender, receiver)
}

fn megolm() -> (MegolmOut, MegolmIn) {
    let out = MegolmOut::new(MegolmConfig::version_1());
    let inbound = MegolmIn::new(&out.session_key(), MegolmConfig::version_1());
    (out, inbound)
}

fn print_wire_sizes() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let (mut s, _) = ours(2, &mut rng);
    let (mut m, _) = megolm();
    for len in [5usize, 100] {
        let text = vec![0x41; len];
        println!(
            "wire: group message for {len} plaintext bytes: ours {} B, megolm {} B",
            s.encrypt(&mut rng, &text).unwrap().message.len(),
            m.encrypt(&text).to_bytes().len()
        );
    }
}

fn group(c: &mut Criterion) {
    print_wire_sizes();
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let mut g = c.benchmark_group("group");

    let (mut sender, _) = ours(2, &mut rng);
    g.bench_function("encrypt/ours", |b| {
        b.iter(|| black_box(sender.encrypt(&mut rng, &PLAINTEXT).unwrap()))
    });
    let (mut m_out, _) = megolm();
    g.bench_function("encrypt/megolm", |b| {
        b.iter(|| black_box(m_out.encrypt(PLAINTEXT)))
    });

    // In-order decryption: the messages are made up front, only decrypt is timed.
    g.bench_function("decrypt/ours", |b| {
        b.iter_custom(|iters| {
            let (mut s, mut r) = ours(2, &mut rng);
            let messages: Vec<Vec<u8>> = (0..iters)
                .map(|_| s.encrypt(&mut rng, &PLAINTEXT).unwrap().message)
                .collect();
            let from = addr(0);
            let start = Instant::now();
            for m in &messages {
                black_box(r.decrypt(&from, m).unwrap());
            }
            start.elapsed()
        })
    });
    g.bench_function("decrypt/megolm", |b| {
        b.iter_custom(|iters| {
            let (mut out, mut inbound) = megolm();
            let messages: Vec<_> = (0..iters).map(|_| out.encrypt(PLAINTEXT)).collect();
            let start = Instant::now();
            for m in &messages {
                black_box(inbound.decrypt(m).unwrap());
            }
            start.elapsed()
        })
    });

    // A fresh receiver (key at iteration 0) decrypts iteration 1,000.
    g.bench_function("decrypt_jump_1000/ours", |b| {
        let mut s = GroupSession::new(gid(), addr(0));
        s.add_member(member(1)).unwrap();
        let mut sends: Vec<_> = (0..=1_000)
            .map(|_| s.encrypt(&mut rng, &PLAINTEXT).unwrap())
            .collect();
        let distribution = sends[0].distribution.take().unwrap();
        let target = sends.pop().unwrap().message;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut r = GroupSession::new(gid(), addr(1));
                r.add_member(member(0)).unwrap();
                r.process_distribution(&member(0), &distribution).unwrap();
                let start = Instant::now();
                black_box(r.decrypt(&addr(0), &target).unwrap());
                total += start.elapsed();
            }
            total
        })
    });
    g.bench_function("decrypt_jump_1000/megolm", |b| {
        let mut out = MegolmOut::new(MegolmConfig::version_1());
        let key = out.session_key();
        let target = (0..=1_000).map(|_| out.encrypt(PLAINTEXT)).last().unwrap();
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut inbound = MegolmIn::new(&key, MegolmConfig::version_1());
                let start = Instant::now();
                black_box(inbound.decrypt(&target).unwrap());
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

/// A device with a store, for pairwise sessions.
fn device(i: usize, rng: &mut ChaCha20Rng) -> (InMemoryStore, PreKeyBundle) {
    let identity = IdentityKeyPair::generate(rng);
    let account = AccountIdentityKeyPair::generate(rng);
    let binding = DeviceBinding::sign(&identity, addr(i), account.public());
    let mut store = InMemoryStore::new(identity.clone(), binding.clone());
    let signed = SignedPreKey::generate(rng, &identity, 1, 1_700_000_000);
    let kem = KemPreKey::generate(rng, &identity, 1, KemPreKeyKind::LastResort, 1_700_000_000);
    let bundle = PreKeyBundle {
        identity: *identity.public(),
        binding,
        signed_prekey: signed.public().clone(),
        one_time_prekey: None,
        kem_prekey: Some(kem.public().clone()),
    };
    store.add_signed_prekey(signed);
    store.add_kem_prekey(kem);
    (store, bundle)
}

/// The sender's store with an established (answered) session to each of `n - 1` members.
fn pairwise(n: usize, rng: &mut ChaCha20Rng) -> (InMemoryStore, Vec<DeviceAddress>) {
    let cipher = SessionCipher::default();
    let (mut sender, _) = device(0, rng);
    let me = addr(0);
    let mut members = Vec::new();
    for i in 1..n {
        let (mut store, bundle) = device(i, rng);
        let a = addr(i);
        cipher
            .process_bundle(&mut sender, rng, &a, &bundle)
            .unwrap();
        let first = cipher.encrypt(&mut sender, rng, &a, b"hi").unwrap();
        cipher.decrypt(&mut store, &me, &first).unwrap();
        let reply = cipher.encrypt(&mut store, rng, &me, b"hi").unwrap();
        cipher.decrypt(&mut sender, &a, &reply).unwrap();
        members.push(a);
    }
    (sender, members)
}

fn fanout(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let cipher = SessionCipher::default();
    let mut g = c.benchmark_group("fanout");
    for n in SIZES {
        let (mut sender, _) = ours(n, &mut rng);
        g.bench_with_input(BenchmarkId::new("sender_key", n), &n, |b, _| {
            b.iter(|| black_box(sender.encrypt(&mut rng, &PLAINTEXT).unwrap()))
        });
        let (mut m_out, _) = megolm();
        g.bench_with_input(BenchmarkId::new("megolm", n), &n, |b, _| {
            b.iter(|| black_box(m_out.encrypt(PLAINTEXT)))
        });
        let (mut store, members) = pairwise(n, &mut rng);
        if n >= 256 {
            g.sample_size(10);
        }
        g.bench_with_input(BenchmarkId::new("pairwise", n), &n, |b, _| {
            b.iter(|| {
                for m in &members {
                    black_box(cipher.encrypt(&mut store, &mut rng, m, &PLAINTEXT).unwrap());
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, group, fanout);
criterion_main!(benches);
