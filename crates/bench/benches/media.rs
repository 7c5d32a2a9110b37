//! The attachment stream (e2ee_core::media) against its floor: raw AES-256-GCM over the same
//! plaintext bytes in one call, same run, same buffers.
//!
//! Run (docs/benchmarks.md, "Attachments", has the results):
//! `cargo bench -p e2ee-bench --bench media -- --warm-up-time 1 --measurement-time 3`
//!
//! - `media_encrypt/{ours,raw_gcm}/SIZE`: the streaming encryptor fed 64 KiB pieces (what
//!   the client reads from a file), padding and final chunk included; the floor seals the
//!   whole plaintext at once under one nonce.
//! - `media_decrypt/{ours,raw_gcm}/SIZE`: the streaming decryptor fed 64 KiB pieces (what
//!   a download delivers); the floor opens the one-call ciphertext.
//!
//! Throughput is in plaintext bytes for both, so the padding (up to 5%) counts against us.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(missing_docs)]

use std::hint::black_box;

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce, Tag,
    aead::{AeadInPlace, generic_array::GenericArray},
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use e2ee_core::media::{MediaDecryptor, MediaEncryptor, MediaKey, encrypt_attachment};

const SIZES: [(usize, &str); 2] = [(1024 * 1024, "1MiB"), (16 * 1024 * 1024, "16MiB")];
const PIECE: usize = 64 * 1024;

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn encrypt(c: &mut Criterion) {
    let key = MediaKey::from_bytes([7; 32]);
    let raw = Aes256Gcm::new(GenericArray::from_slice(&[7; 32]));
    let mut group = c.benchmark_group("media_encrypt");
    for (len, name) in SIZES {
        let data = plaintext(len);
        group.throughput(Throughput::Bytes(len as u64));
        let mut out = Vec::with_capacity(2 * PIECE);
        group.bench_function(format!("ours/{name}"), |b| {
            b.iter(|| {
                let mut encryptor = MediaEncryptor::new(&key, len as u64).unwrap();
                for piece in data.chunks(PIECE) {
                    out.clear();
                    encryptor.update(piece, &mut out).unwrap();
                    black_box(&out);
                }
                loop {
                    out.clear();
                    if encryptor.finish_chunk(&mut out).unwrap() {
                        break;
                    }
                }
                black_box(&out);
            })
        });
        let mut buffer = data.clone();
        group.bench_function(format!("raw_gcm/{name}"), |b| {
            b.iter(|| {
                buffer.copy_from_slice(&data);
                let tag = raw
                    .encrypt_in_place_detached(Nonce::from_slice(&[1; 12]), b"", &mut buffer)
                    .unwrap();
                black_box((&buffer, tag));
            })
        });
    }
    group.finish();
}

fn decrypt(c: &mut Criterion) {
    let key = MediaKey::from_bytes([7; 32]);
    let raw = Aes256Gcm::new(GenericArray::from_slice(&[7; 32]));
    let mut group = c.benchmark_group("media_decrypt");
    for (len, name) in SIZES {
        let data = plaintext(len);
        let blob = encrypt_attachment(&key, &data).unwrap();
        group.throughput(Throughput::Bytes(len as u64));
        let mut out = Vec::with_capacity(2 * PIECE);
        group.bench_function(format!("ours/{name}"), |b| {
            b.iter(|| {
                let mut decryptor = MediaDecryptor::new(&key, len as u64).unwrap();
                for piece in blob.chunks(PIECE) {
                    out.clear();
                    decryptor.update(piece, &mut out).unwrap();
                    black_box(&out);
                }
                decryptor.finish().unwrap();
            })
        });
        let mut sealed = data.clone();
        let tag = raw
            .encrypt_in_place_detached(Nonce::from_slice(&[1; 12]), b"", &mut sealed)
            .unwrap();
        let mut buffer = sealed.clone();
        group.bench_function(format!("raw_gcm/{name}"), |b| {
            b.iter(|| {
                buffer.copy_from_slice(&sealed);
                raw.decrypt_in_place_detached(
                    Nonce::from_slice(&[1; 12]),
                    b"",
                    &mut buffer,
                    Tag::from_slice(&tag),
                )
                .unwrap();
                black_box(&buffer);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, encrypt, decrypt);
criterion_main!(benches);
