//! Attachment vectors (`vectors/media.json`, docs/media.md): key expansion, size buckets,
//! every chunk's nonce, whole blobs, tampered blobs with the error they give, and pointer
//! encodings. [`generate`] builds the file (the drift test of `vectors/mod.rs` compares it with
//! the committed one); `media_vectors_match_the_spec` re-derives every blob with the `hkdf`
//! and `aes-gcm` crates directly, following the spec's formulas rather than this crate's code.

use std::path::PathBuf;

use aes_gcm::{Aes256Gcm, KeyInit, aead::Aead};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{draw, h, seeded, unh, unh32};
use crate::{
    Codec,
    media::{
        CHUNK_LEN, MAX_ATTACHMENT_LEN, MediaDecryptor, MediaKey, MediaPointer, SEALED_CHUNK_LEN,
        encrypt_attachment, padded_len,
    },
};

fn path() -> PathBuf {
    super::vectors_dir().join("media.json")
}

/// The plaintext of a vector: byte `i` is `i mod 251`.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

const BUCKET_SIZES: [u64; 12] = [
    0,
    1,
    541,
    542,
    568,
    569,
    65_536,
    1_000_000,
    10 * 1024 * 1024,
    100 * 1024 * 1024,
    1024 * 1024 * 1024,
    MAX_ATTACHMENT_LEN,
];

fn decrypt(key: &MediaKey, size: u64, blob: &[u8]) -> String {
    let result = MediaDecryptor::new(key, size).and_then(|mut decryptor| {
        let mut out = Vec::new();
        decryptor.update(blob, &mut out)?;
        decryptor.finish()?;
        Ok(out)
    });
    match result {
        Ok(out) => format!("ok:{}", h(&Sha256::digest(&out))),
        Err(e) => format!("{e:?}"),
    }
}

/// Tampered copies of a three-chunk blob.
fn rejections(blob: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let s = SEALED_CHUNK_LEN;
    let mut flipped = blob.to_vec();
    flipped[s + 7] ^= 0x01;
    let mut swapped = blob.to_vec();
    swapped[..2 * s].rotate_left(s);
    let mut extended = blob.to_vec();
    extended.push(0);
    vec![
        ("one bit flipped in chunk 1", flipped),
        ("chunks 0 and 1 swapped", swapped),
        ("final chunk dropped", blob[..2 * s].to_vec()),
        ("one byte appended", extended),
        ("final tag cut short", blob[..blob.len() - 1].to_vec()),
    ]
}

pub(super) fn generate() -> Value {
    let mut rng = seeded(0x006d_6564_6961);
    let attachments: Vec<Value> = [0usize, 1, 541, 542, 2 * CHUNK_LEN + 1000]
        .into_iter()
        .map(|len| {
            let key = MediaKey::from_bytes(draw(&mut rng));
            let expanded = crate::media::chunk_cipher_expand(&key);
            let plaintext = pattern(len);
            let blob = encrypt_attachment(&key, &plaintext).unwrap();
            let layout = crate::media::MediaLayout::new(len as u64).unwrap();
            let nonces: Vec<String> = (0..layout.chunk_count())
                .map(|i| {
                    let mut nonce = expanded[32..].to_vec();
                    nonce.extend_from_slice(&i.to_be_bytes());
                    nonce.push(u8::from(layout.is_last(i)));
                    h(&nonce)
                })
                .collect();
            let rejected: Vec<Value> = if layout.chunk_count() >= 3 {
                rejections(&blob)
                    .into_iter()
                    .map(|(name, bad)| {
                        json!({"name": name, "blob_sha256": h(&Sha256::digest(&bad)), "result": decrypt(&key, len as u64, &bad)})
                    })
                    .collect()
            } else {
                Vec::new()
            };
            json!({
                "size": len,
                "media_key": h(key.as_bytes()),
                "aes_key": h(&expanded[..32]),
                "nonce_prefix": h(&expanded[32..]),
                "padded_len": layout.padded_len(),
                "chunk_nonces": nonces,
                "blob": h(&blob),
                "blob_sha256": h(&Sha256::digest(&blob)),
                "result": decrypt(&key, len as u64, &blob),
                "rejections": rejected,
            })
        })
        .collect();
    let buckets: Vec<Value> = BUCKET_SIZES
        .iter()
        .map(|&size| json!({"size": size, "padded_len": padded_len(size).unwrap()}))
        .collect();
    let key = MediaKey::from_bytes(draw(&mut rng));
    let minimal = MediaPointer::new(
        "q1w2e3r4t5y6u7i8o9p0aa",
        key.clone(),
        70_000,
        draw(&mut rng),
        "image/jpeg",
    )
    .unwrap();
    let full = minimal
        .clone()
        .with_file_name("beach.jpg")
        .unwrap()
        .with_dimensions(1024, 768)
        .unwrap()
        .with_duration_ms(12_500)
        .with_thumbnail(vec![0xAB; 32])
        .unwrap();
    let pointers: Vec<Value> = [("minimal", &minimal), ("every optional field", &full)]
        .into_iter()
        .map(|(name, p)| json!({"name": name, "bytes": h(&p.to_bytes())}))
        .collect();
    json!({
        "description": "Encrypted attachments (docs/media.md): HKDF-SHA256 key expansion, size buckets, chunk nonces, whole blobs of plaintexts whose byte i is i mod 251, tampered blobs and the error each gives, and attachment pointers. Results are 'ok:' and the SHA-256 of the decrypted plaintext, or the error. Generated by crates/e2ee-core/src/vectors/media.rs.",
        "buckets": buckets,
        "attachments": attachments,
        "pointers": pointers,
    })
}

#[test]
fn media_vectors_match_the_spec() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    // Buckets: B(0) = 541, B(k+1) = floor(B(k) * 21 / 20), the smallest B(k) >= size.
    for bucket in v["buckets"].as_array().unwrap() {
        let size = bucket["size"].as_u64().unwrap();
        let mut b = 541u64;
        while b < size {
            b = b * 21 / 20;
        }
        assert_eq!(bucket["padded_len"].as_u64().unwrap(), b);
    }
    for case in v["attachments"].as_array().unwrap() {
        let size = case["size"].as_u64().unwrap() as usize;
        let media_key = unh32(case["media_key"].as_str().unwrap());
        let mut okm = [0u8; 39];
        hkdf::Hkdf::<Sha256>::new(Some(&[0u8; 32]), &media_key)
            .expand(b"E2EE-v1_Attachment", &mut okm)
            .unwrap();
        assert_eq!(h(&okm[..32]), case["aes_key"].as_str().unwrap());
        assert_eq!(h(&okm[32..]), case["nonce_prefix"].as_str().unwrap());
        // Pad with zeros, cut into 64 KiB chunks, seal each under prefix || be32(i) || last.
        let padded_len = case["padded_len"].as_u64().unwrap() as usize;
        let mut padded = pattern(size);
        padded.resize(padded_len, 0);
        let chunks: Vec<&[u8]> = padded.chunks(CHUNK_LEN).collect();
        let cipher = Aes256Gcm::new_from_slice(&okm[..32]).unwrap();
        let mut blob = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut nonce = okm[32..].to_vec();
            nonce.extend_from_slice(&(i as u32).to_be_bytes());
            nonce.push(u8::from(i + 1 == chunks.len()));
            assert_eq!(h(&nonce), case["chunk_nonces"][i].as_str().unwrap());
            blob.extend(cipher.encrypt(nonce.as_slice().into(), *chunk).unwrap());
        }
        assert_eq!(h(&blob), case["blob"].as_str().unwrap());
        assert_eq!(
            h(&Sha256::digest(&blob)),
            case["blob_sha256"].as_str().unwrap()
        );
        assert_eq!(
            case["result"].as_str().unwrap(),
            format!("ok:{}", h(&Sha256::digest(pattern(size))))
        );
        // The code opens the recorded blob and refuses every recorded tampering.
        let key = MediaKey::from_bytes(media_key);
        assert_eq!(
            decrypt(&key, size as u64, &unh(case["blob"].as_str().unwrap())),
            case["result"].as_str().unwrap()
        );
        let recorded = case["rejections"].as_array().unwrap();
        let tampered = if chunks.len() >= 3 {
            rejections(&blob)
        } else {
            Vec::new()
        };
        assert_eq!(recorded.len(), tampered.len());
        for (expected, (name, bad)) in recorded.iter().zip(tampered) {
            assert_eq!(expected["name"], name);
            assert_eq!(
                expected["blob_sha256"].as_str().unwrap(),
                h(&Sha256::digest(&bad))
            );
            assert!(
                !expected["result"].as_str().unwrap().starts_with("ok"),
                "{name}"
            );
            assert_eq!(
                decrypt(&key, size as u64, &bad),
                expected["result"].as_str().unwrap()
            );
        }
    }
    for pointer in v["pointers"].as_array().unwrap() {
        let bytes = unh(pointer["bytes"].as_str().unwrap());
        let decoded = MediaPointer::from_bytes(&bytes).unwrap();
        assert_eq!(decoded.to_bytes(), bytes);
        // 0x01 || id len || id || key || size u64 || digest || type len || type || flags ...
        assert_eq!(bytes[0], 0x01);
        let id_len = usize::from(bytes[1]);
        assert_eq!(&bytes[2..2 + id_len], decoded.blob_id().as_bytes());
        let size_at = 2 + id_len + 32;
        assert_eq!(&bytes[size_at..size_at + 8], &70_000u64.to_be_bytes());
    }
}
