//! e2ee-core side by side with vodozemac 0.11 (Olm), and the primitives both are built on.
//!
//! Run (docs/benchmarks.md has the results and how the floors are summed):
//! `cargo bench -p e2ee-bench --bench protocol -- --warm-up-time 1 --measurement-time 3`
//! then `python3 crates/bench/summarize.py` for the table.
//!
//! Groups (all in one run, so the ratios compare figures taken on the same machine state):
//! - `setup`: session set-up, initiator and responder, ours (PQXDH) and vodozemac (3DH).
//! - `encrypt`, `decrypt`: 100-byte messages on an existing chain.
//! - `pingpong`: one round trip (A->B, B->A) where each message is a DH ratchet step.
//! - `primitive`: each primitive operation alone, for the floors.
//!
//! Wire sizes are printed once at start-up and asserted in `tests/wire_size.rs`.

// A benchmark has no caller to report an error to: any failure here is a bug in the code
// under test and must stop the run rather than produce a number.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(missing_docs)]

use std::{
    cell::RefCell,
    hint::black_box,
    time::{Duration, Instant},
};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
mod common;
mod floor;

use common::{Olm, Ours, PLAINTEXT, wire_sizes};
use e2ee_core::{Codec, PreKeyBundle, SessionCipher, message::RatchetMessage};
use ed25519_dalek::Signer;
use floor::Floor;
use libcrux_ml_kem::mlkem768;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use vodozemac::olm::{OlmMessage, SessionConfig as OlmConfig};

fn setup(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let cipher = SessionCipher::default();
    let ours = Ours::new(&mut rng);
    let bundle_bytes = ours.bob.bundle.to_bytes();
    let first_message = ours.first_message(&mut rng);

    let mut group = c.benchmark_group("setup");
    group.bench_function("ours_initiator", |b| {
        b.iter_batched(
            || ours.alice_store(),
            |mut store| {
                cipher
                    .process_bundle(&mut store, &mut rng, &ours.bob_address, &ours.bob.bundle)
                    .unwrap();
                store
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("ours_initiator_from_bytes", |b| {
        b.iter_batched(
            || ours.alice_store(),
            |mut store| {
                let bundle = PreKeyBundle::from_bytes(black_box(&bundle_bytes)).unwrap();
                cipher
                    .process_bundle(&mut store, &mut rng, &ours.bob_address, &bundle)
                    .unwrap();
                store
            },
            BatchSize::SmallInput,
        )
    });
    // The first message consumes Bob's one-time keys: a fresh store for every iteration.
    group.bench_function("ours_responder", |b| {
        b.iter_batched(
            || ours.bob.fresh_store(),
            |mut store| {
                let plaintext = cipher
                    .decrypt(&mut store, &ours.alice_address, black_box(&first_message))
                    .unwrap();
                (store, plaintext)
            },
            BatchSize::SmallInput,
        )
    });

    let alice = vodozemac::olm::Account::new();
    let (bob_key, bob_otk) = {
        let mut bob = vodozemac::olm::Account::new();
        bob.generate_one_time_keys(1);
        let otk = *bob.one_time_keys().values().next().unwrap();
        (bob.curve25519_key(), otk)
    };
    group.bench_function("vodozemac_initiator", |b| {
        b.iter_with_large_drop(|| {
            alice
                .create_outbound_session(OlmConfig::version_1(), bob_key, bob_otk)
                .unwrap()
        })
    });
    // create_inbound_session removes the one-time key: a fresh account for every iteration.
    group.bench_function("vodozemac_responder", |b| {
        b.iter_batched(
            || {
                let mut bob = vodozemac::olm::Account::new();
                bob.generate_one_time_keys(1);
                let otk = *bob.one_time_keys().values().next().unwrap();
                bob.mark_keys_as_published();
                let mut session = alice
                    .create_outbound_session(OlmConfig::version_1(), bob.curve25519_key(), otk)
                    .unwrap();
                let OlmMessage::PreKey(message) = session.encrypt(PLAINTEXT).unwrap() else {
                    panic!("the first Olm message is a pre-key message");
                };
                (bob, message)
            },
            |(mut bob, message)| {
                let created = bob
                    .create_inbound_session(
                        OlmConfig::version_1(),
                        alice.curve25519_key(),
                        black_box(&message),
                    )
                    .unwrap();
                (bob, created)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn encrypt(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let cipher = SessionCipher::default();
    let mut ours = Ours::new(&mut rng);
    ours.establish(&mut rng);
    let mut olm = Olm::established();

    let mut group = c.benchmark_group("encrypt");
    let mut alice = ours.alice_session();
    group.bench_function("ours_session", |b| {
        b.iter(|| alice.encrypt(&mut rng, black_box(&PLAINTEXT)).unwrap())
    });
    group.bench_function("ours_store", |b| {
        b.iter(|| {
            cipher
                .encrypt(
                    &mut ours.alice,
                    &mut rng,
                    &ours.bob_address,
                    black_box(&PLAINTEXT),
                )
                .unwrap()
        })
    });
    // Both produce wire bytes: Olm's message is encoded too.
    group.bench_function("vodozemac", |b| {
        b.iter(|| olm.alice.encrypt(black_box(&PLAINTEXT)).unwrap().to_parts())
    });
    group.finish();
}

fn decrypt(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let cipher = SessionCipher::default();
    let mut ours = Ours::new(&mut rng);
    ours.establish(&mut rng);
    let mut olm = Olm::established();

    // Every message decrypts once: the set-up closure encrypts the next one in chain order
    // (criterion runs a batch's routine over its inputs in the order they were made). The
    // timed part goes from wire bytes to plaintext on both sides.
    let mut group = c.benchmark_group("decrypt");
    let mut alice = ours.alice_session();
    let mut bob = ours.bob_session();
    group.bench_function("ours_session", |b| {
        b.iter_batched(
            || alice.encrypt(&mut rng, &PLAINTEXT).unwrap(),
            |bytes| {
                let message = RatchetMessage::from_bytes(black_box(&bytes)).unwrap();
                bob.decrypt(&message).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    let mut store_rng = ChaCha20Rng::seed_from_u64(4);
    group.bench_function("ours_store", |b| {
        b.iter_batched(
            || {
                cipher
                    .encrypt(
                        &mut ours.alice,
                        &mut store_rng,
                        &ours.bob_address,
                        &PLAINTEXT,
                    )
                    .unwrap()
            },
            |bytes| {
                cipher
                    .decrypt(&mut ours.bob.store, &ours.alice_address, black_box(&bytes))
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("vodozemac", |b| {
        b.iter_batched(
            || olm.alice.encrypt(PLAINTEXT).unwrap().to_parts(),
            |(kind, bytes)| {
                let message = OlmMessage::from_parts(kind, black_box(&bytes)).unwrap();
                olm.bob.decrypt(&message).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn pingpong(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let mut ours = Ours::new(&mut rng);
    ours.establish(&mut rng);
    let mut olm = Olm::established();

    // Both set-ups end with A->B, so B's next message starts a new DH ratchet step and so
    // does every message after it: one iteration is B->A then A->B, two DH ratchet steps.
    let mut group = c.benchmark_group("pingpong");
    let mut alice = ours.alice_session();
    let mut bob = ours.bob_session();
    group.bench_function("ours_round_trip", |b| {
        b.iter(|| {
            let bytes = bob.encrypt(&mut rng, black_box(&PLAINTEXT)).unwrap();
            alice
                .decrypt(&RatchetMessage::from_bytes(&bytes).unwrap())
                .unwrap();
            let bytes = alice.encrypt(&mut rng, black_box(&PLAINTEXT)).unwrap();
            bob.decrypt(&RatchetMessage::from_bytes(&bytes).unwrap())
                .unwrap()
        })
    });
    group.bench_function("vodozemac_round_trip", |b| {
        b.iter(|| {
            let (kind, bytes) = olm.bob.encrypt(black_box(PLAINTEXT)).unwrap().to_parts();
            olm.alice
                .decrypt(&OlmMessage::from_parts(kind, &bytes).unwrap())
                .unwrap();
            let (kind, bytes) = olm.alice.encrypt(black_box(PLAINTEXT)).unwrap().to_parts();
            olm.bob
                .decrypt(&OlmMessage::from_parts(kind, &bytes).unwrap())
                .unwrap()
        })
    });
    group.finish();
}

/// Each primitive alone, called the way e2ee-core calls it, on inputs of the sizes it uses.
fn primitives(c: &mut Criterion) {
    let mut floor = Floor::new(6);
    let mut group = c.benchmark_group("primitive");
    group.bench_function("x25519_keygen", |b| b.iter(|| floor.keygen()));
    group.bench_function("x25519_dh", |b| b.iter(|| floor.dh()));
    group.bench_function("ed25519_sign_65B", |b| {
        b.iter(|| floor.signing.sign(black_box(&floor.prekey_message)))
    });
    group.bench_function("ed25519_verify_strict_65B", |b| {
        b.iter(|| floor.verify_prekey())
    });
    group.bench_function("ed25519_verify_strict_1215B", |b| {
        b.iter(|| floor.verify_kem_prekey())
    });
    // Decoding an identity key decompresses its Ed25519 point.
    group.bench_function("ed25519_decode_public_key", |b| {
        b.iter(|| floor.decode_identity())
    });
    let seed = [7u8; 64];
    group.bench_function("mlkem768_keygen", |b| {
        b.iter(|| mlkem768::generate_key_pair(black_box(seed)))
    });
    group.bench_function("mlkem768_encapsulate", |b| b.iter(|| floor.encapsulate()));
    group.bench_function("mlkem768_decapsulate", |b| b.iter(|| floor.decapsulate()));
    // Decoding a KEM prekey validates the encapsulation key (FIPS 203 modulus check).
    group.bench_function("mlkem768_validate_public_key", |b| {
        b.iter(|| floor.validate_kem_key())
    });
    let key = [1u8; 32];
    let ikm = [2u8; 32];
    let handshake_ikm = [3u8; 192];
    group.bench_function("hkdf_sha256_32B_to_64B", |b| {
        b.iter(|| Floor::root_kdf(&key, black_box(&ikm)))
    });
    group.bench_function("hkdf_sha256_32B_to_44B", |b| {
        b.iter(|| Floor::message_kdf(black_box(&ikm)))
    });
    group.bench_function("hkdf_sha256_192B_to_32B", |b| {
        b.iter(|| Floor::handshake_kdf(black_box(&handshake_ikm)))
    });
    group.bench_function("hmac_sha256_chain_step", |b| {
        b.iter(|| Floor::chain_step(black_box(&key)))
    });
    let (aes_key, nonce) = floor.fixture_message_keys();
    group.bench_function("aes256gcm_seal_100B", |b| {
        b.iter(|| Floor::seal(black_box(&aes_key), &nonce))
    });
    group.bench_function("aes256gcm_open_100B", |b| {
        b.iter(|| floor.open(black_box(&aes_key), &nonce))
    });
    group.finish();
}

/// Runs `a` and `b` alternately (inputs made untimed), so both see the same machine load,
/// reports `a`'s time to criterion and prints the median over samples of time(a) / time(b).
/// On a shared machine this ratio is the one to trust: the load drifts between benchmarks
/// taken seconds apart, not between two calls microseconds apart.
#[allow(clippy::too_many_arguments)]
fn paired<I, O, J, P>(
    c: &mut Criterion,
    name: &str,
    mut make_a: impl FnMut() -> I,
    mut run_a: impl FnMut(I) -> O,
    mut make_b: impl FnMut() -> J,
    mut run_b: impl FnMut(J) -> P,
) {
    let mut ratios = Vec::new();
    c.benchmark_group("paired").bench_function(name, |bencher| {
        bencher.iter_custom(|iters| {
            let (mut time_a, mut time_b) = (Duration::ZERO, Duration::ZERO);
            for i in 0..iters {
                let (input_a, input_b) = (make_a(), make_b());
                // Alternate the order so neither side always runs on a warmer cache.
                if i % 2 == 0 {
                    time_a += timed(&mut run_a, input_a);
                    time_b += timed(&mut run_b, input_b);
                } else {
                    time_b += timed(&mut run_b, input_b);
                    time_a += timed(&mut run_a, input_a);
                }
            }
            ratios.push(time_a.as_secs_f64() / time_b.as_secs_f64());
            time_a
        })
    });
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!(
        "paired/{name}: ratio {median:.3} (median of {} samples)",
        ratios.len()
    );
}

/// Times one call; the output is dropped after the clock stops.
fn timed<I, O>(run: &mut impl FnMut(I) -> O, input: I) -> Duration {
    let start = Instant::now();
    let output = black_box(run(black_box(input)));
    let elapsed = start.elapsed();
    drop(output);
    elapsed
}

/// Each set-up and message operation against its floor and against vodozemac, interleaved.
fn paired_ratios(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let cipher = SessionCipher::default();
    let mut floor = Floor::new(8);

    // Set-up against its floor.
    let ours = Ours::new(&mut rng);
    let bundle_bytes = ours.bob.bundle.to_bytes();
    let first_message = ours.first_message(&mut rng);
    paired(
        c,
        "setup_initiator_vs_floor",
        || ours.alice_store(),
        |mut store| {
            cipher
                .process_bundle(&mut store, &mut rng, &ours.bob_address, &ours.bob.bundle)
                .unwrap();
            store
        },
        || (),
        |()| floor.initiator(),
    );
    let mut rng2 = ChaCha20Rng::seed_from_u64(9);
    paired(
        c,
        "setup_initiator_from_bytes_vs_floor",
        || ours.alice_store(),
        |mut store| {
            let bundle = PreKeyBundle::from_bytes(&bundle_bytes).unwrap();
            cipher
                .process_bundle(&mut store, &mut rng2, &ours.bob_address, &bundle)
                .unwrap();
            store
        },
        || (),
        |()| floor.initiator_from_bytes(),
    );
    paired(
        c,
        "setup_responder_vs_floor",
        || ours.bob.fresh_store(),
        |mut store| {
            let plaintext = cipher
                .decrypt(&mut store, &ours.alice_address, &first_message)
                .unwrap();
            (store, plaintext)
        },
        || (),
        |()| floor.responder(),
    );

    // Messages against vodozemac and against the floor.
    let mut ours = Ours::new(&mut rng);
    ours.establish(&mut rng);
    let mut olm = Olm::established();
    let mut alice = ours.alice_session();
    let mut rng3 = ChaCha20Rng::seed_from_u64(10);
    paired(
        c,
        "encrypt_session_vs_vodozemac",
        || (),
        |()| alice.encrypt(&mut rng, &PLAINTEXT).unwrap(),
        || (),
        |()| olm.alice.encrypt(PLAINTEXT).unwrap().to_parts(),
    );
    paired(
        c,
        "encrypt_store_vs_vodozemac",
        || (),
        |()| {
            cipher
                .encrypt(&mut ours.alice, &mut rng3, &ours.bob_address, &PLAINTEXT)
                .unwrap()
        },
        || (),
        |()| olm.alice.encrypt(PLAINTEXT).unwrap().to_parts(),
    );
    paired(
        c,
        "encrypt_session_vs_floor",
        || (),
        |()| alice.encrypt(&mut rng, &PLAINTEXT).unwrap(),
        || (),
        |()| floor.encrypt(),
    );
    // Decrypt: the senders run untimed in the input closures, in chain order. Fresh
    // sessions: the encrypt benchmarks above ran the senders far past any receiver's limit.
    let mut ours = Ours::new(&mut rng);
    ours.establish(&mut rng);
    let mut olm = Olm::established();
    let mut alice = ours.alice_session();
    let mut bob = ours.bob_session();
    let olm_alice = RefCell::new(olm.alice);
    paired(
        c,
        "decrypt_session_vs_vodozemac",
        || alice.encrypt(&mut rng, &PLAINTEXT).unwrap(),
        |bytes| {
            bob.decrypt(&RatchetMessage::from_bytes(&bytes).unwrap())
                .unwrap()
        },
        || {
            olm_alice
                .borrow_mut()
                .encrypt(PLAINTEXT)
                .unwrap()
                .to_parts()
        },
        |(kind, bytes)| {
            olm.bob
                .decrypt(&OlmMessage::from_parts(kind, &bytes).unwrap())
                .unwrap()
        },
    );
    paired(
        c,
        "decrypt_store_vs_vodozemac",
        || {
            cipher
                .encrypt(&mut ours.alice, &mut rng3, &ours.bob_address, &PLAINTEXT)
                .unwrap()
        },
        |bytes| {
            cipher
                .decrypt(&mut ours.bob.store, &ours.alice_address, &bytes)
                .unwrap()
        },
        || {
            olm_alice
                .borrow_mut()
                .encrypt(PLAINTEXT)
                .unwrap()
                .to_parts()
        },
        |(kind, bytes)| {
            olm.bob
                .decrypt(&OlmMessage::from_parts(kind, &bytes).unwrap())
                .unwrap()
        },
    );
    paired(
        c,
        "decrypt_session_vs_floor",
        || alice.encrypt(&mut rng, &PLAINTEXT).unwrap(),
        |bytes| {
            bob.decrypt(&RatchetMessage::from_bytes(&bytes).unwrap())
                .unwrap()
        },
        || (),
        |()| floor.decrypt(),
    );

    // Ping-pong (each message a DH ratchet step; see `pingpong`).
    let mut olm = Olm::established();
    let mut ours = Ours::new(&mut rng);
    ours.establish(&mut rng);
    let mut alice = ours.alice_session();
    let mut bob = ours.bob_session();
    let mut round_trip = move || {
        let bytes = bob.encrypt(&mut rng, &PLAINTEXT).unwrap();
        alice
            .decrypt(&RatchetMessage::from_bytes(&bytes).unwrap())
            .unwrap();
        let bytes = alice.encrypt(&mut rng, &PLAINTEXT).unwrap();
        bob.decrypt(&RatchetMessage::from_bytes(&bytes).unwrap())
            .unwrap()
    };
    paired(
        c,
        "pingpong_vs_vodozemac",
        || (),
        |()| round_trip(),
        || (),
        |()| {
            let (kind, bytes) = olm.bob.encrypt(PLAINTEXT).unwrap().to_parts();
            olm.alice
                .decrypt(&OlmMessage::from_parts(kind, &bytes).unwrap())
                .unwrap();
            let (kind, bytes) = olm.alice.encrypt(PLAINTEXT).unwrap().to_parts();
            olm.bob
                .decrypt(&OlmMessage::from_parts(kind, &bytes).unwrap())
                .unwrap()
        },
    );
    paired(
        c,
        "pingpong_vs_floor",
        || (),
        |()| round_trip(),
        || (),
        |()| floor.round_trip(),
    );
}

fn print_wire_sizes(_: &mut Criterion) {
    let (ours, olm) = wire_sizes();
    println!("wire size of a 5-byte message: ours {ours} bytes, vodozemac Olm {olm} bytes");
}

criterion_group!(
    benches,
    print_wire_sizes,
    setup,
    encrypt,
    decrypt,
    pingpong,
    primitives,
    paired_ratios
);
criterion_main!(benches);
