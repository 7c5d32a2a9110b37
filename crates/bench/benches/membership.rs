//! Authenticated group membership: what a member pays to check and apply one signed change,
//! and what a new member pays to verify a whole group from its creation, at 2 and 1,024
//! member users; beside the floor those operations cannot avoid (the Ed25519 verifications
//! a change needs and the SHA-256 over the state its successor names).
//!
//! Run: `cargo bench -p e2ee-bench --bench membership -- --warm-up-time 1 --measurement-time 3`
//!
//! - `apply/N`: decode a rename (certificate and change signatures checked) and apply it.
//! - `sync/N`: decode a welcome holding the creation of an N-member group (in changes of at
//!   most 256 operations) and verify and apply every change.
//! - `floor/verify4`: four Ed25519 verifications (the certificate's three, the change's one).
//! - `floor/state_hash/N`: encode and hash the state of N members.
//! - `floor/decode_keys/1024`: decode (decompress and check) 1,024 account keys, as a full
//!   sync of 1,024 members must.
//!
//! Sizes (state, change, welcome) are printed before the timings.
//!
//! One run on the shared 2-core machine (2026-12-02, medians): apply 293.6 us at 2 members
//! and 377.0 us at 1,024, against a floor of 253.3 us (four verifications) + 0.6 / 65.9 us
//! (state hash): 1.16x and 1.18x the floor. Full sync of a 1,024-member group (5 changes,
//! 50,480 B welcome): 9.87 ms, against 6.27 ms decoding 1,024 account keys + 5 x 253 us of
//! verifications + the hashes (about 7.7 ms): 1.28x. State of 1,024 members: 55,387 B; a
//! rename: 457 B (the signer's certificate is most of it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use e2ee_core::{
    Codec, DeviceAddress, IdentityKeyPair, UserId,
    device::{AccountIdentityKeyPair, DeviceBinding, DeviceCertificate},
    group::{
        GroupId,
        membership::{
            GroupChange, GroupHistory, GroupSigner, GroupWelcome, MAX_CHANGE_OPERATIONS, Operation,
            Role,
        },
    },
};
use ed25519_dalek::{Signer, SigningKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const SIZES: [usize; 2] = [2, 1_024];

struct Admin {
    account: AccountIdentityKeyPair,
    identity: IdentityKeyPair,
    certificate: DeviceCertificate,
}

fn admin() -> Admin {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let account = AccountIdentityKeyPair::generate(&mut rng);
    let identity = IdentityKeyPair::generate(&mut rng);
    let binding = DeviceBinding::sign(
        &identity,
        DeviceAddress::new("admin", 1).unwrap(),
        account.public(),
    );
    let certificate =
        DeviceCertificate::sign(&account, identity.public(), &binding, 1_700_000_000).unwrap();
    Admin {
        account,
        identity,
        certificate,
    }
}

/// A group of `n` member users created by `admin`, and the changes that created it.
fn group(admin: &Admin, n: usize) -> (GroupHistory, Vec<GroupChange>) {
    let signer = GroupSigner::new(&admin.identity, admin.certificate.clone()).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let mut history = GroupHistory::new(GroupId::new(&[9; 32]).unwrap());
    let mut ops = vec![
        Operation::Add {
            user: UserId::new("admin").unwrap(),
            account: admin.account.public(),
            role: Role::Admin,
        },
        Operation::SetName("benchmark group".into()),
    ];
    let mut changes = Vec::new();
    for i in 1..n {
        ops.push(Operation::Add {
            user: UserId::new(format!("member-{i:05}")).unwrap(),
            account: AccountIdentityKeyPair::generate(&mut rng).public(),
            role: Role::Member,
        });
        if ops.len() == MAX_CHANGE_OPERATIONS {
            changes.push(history.commit(&signer, std::mem::take(&mut ops)).unwrap().0);
        }
    }
    if !ops.is_empty() {
        changes.push(history.commit(&signer, ops).unwrap().0);
    }
    (history, changes)
}

fn membership(c: &mut Criterion) {
    let admin = admin();
    let signer = GroupSigner::new(&admin.identity, admin.certificate.clone()).unwrap();
    let mut g = c.benchmark_group("membership");
    for n in SIZES {
        let (history, creation) = group(&admin, n);
        let mut ahead = history.clone();
        let (rename, _) = ahead
            .commit(&signer, vec![Operation::SetName("renamed".into())])
            .unwrap();
        let rename_bytes = rename.to_bytes();
        let welcome = GroupWelcome {
            state: e2ee_core::group::membership::GroupState::empty(history.group_id().clone()),
            changes: creation.clone(),
        }
        .to_bytes();
        println!(
            "size: {n} members: state {} B, rename change {} B, creation {} changes {} B, welcome {} B",
            history.state().to_bytes().len(),
            rename_bytes.len(),
            creation.len(),
            creation.iter().map(|c| c.to_bytes().len()).sum::<usize>(),
            welcome.len()
        );
        g.bench_with_input(BenchmarkId::new("apply", n), &n, |b, _| {
            b.iter_batched(
                || history.clone(),
                |mut h| {
                    let change = GroupChange::from_bytes(&rename_bytes).unwrap();
                    black_box(h.receive(change).unwrap());
                    h
                },
                BatchSize::LargeInput,
            )
        });
        if n > 2 {
            g.sample_size(10);
        }
        g.bench_with_input(BenchmarkId::new("sync", n), &n, |b, _| {
            b.iter(|| {
                let decoded = GroupWelcome::from_bytes(&welcome).unwrap();
                black_box(GroupHistory::from_welcome(decoded).unwrap())
            })
        });
        g.sample_size(100);
        let state = history.state().clone();
        g.bench_with_input(BenchmarkId::new("floor/state_hash", n), &n, |b, _| {
            b.iter(|| black_box(state.hash()))
        });
    }
    let key = SigningKey::from_bytes(&[5; 32]);
    let message = [0x42u8; 400];
    let signature = key.sign(&message);
    let verifying = key.verifying_key();
    // Every added member's account key is a point the decoder checks (decompression).
    let keys: Vec<[u8; 32]> = (0..1_024u32)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&i.to_be_bytes());
            SigningKey::from_bytes(&seed).verifying_key().to_bytes()
        })
        .collect();
    g.bench_function("floor/decode_keys/1024", |b| {
        b.iter(|| {
            for k in &keys {
                black_box(ed25519_dalek::VerifyingKey::from_bytes(k).unwrap());
            }
        })
    });
    g.bench_function("floor/verify4", |b| {
        b.iter(|| {
            for _ in 0..4 {
                verifying.verify_strict(&message, &signature).unwrap();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, membership);
criterion_main!(benches);
