//! `vectors/client_store.json`: the store's key derivation, blinding and sealing from fixed
//! inputs, checked against the code and against the formulas of `docs/client-store.md`
//! computed here step by step. `E2EE_REGENERATE_VECTORS=1 cargo test -p e2ee-client vectors`
//! rewrites the file.

#![allow(clippy::unwrap_used, clippy::panic)]

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{
    STORE_FORMAT_VERSION,
    keys::{DerivedKeys, StoreKey},
    seal,
    vault::{self, Space},
};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../vectors/client_store.json"
);

struct Case {
    space: Space,
    lookup: &'static [u8],
    value: &'static [u8],
    nonce: [u8; 12],
}

fn inputs() -> ([u8; 32], [u8; 16], Vec<Case>) {
    let app_key: [u8; 32] = core::array::from_fn(|i| i as u8);
    let salt: [u8; 16] = core::array::from_fn(|i| 0xa0 + i as u8);
    let cases = vec![
        // The key check every store holds (docs/client-store.md).
        Case {
            space: Space::META,
            lookup: vault::KEY_CHECK_LOOKUP,
            value: vault::KEY_CHECK_VALUE,
            nonce: [0x33; 12],
        },
        Case {
            space: Space::SESSIONS,
            lookup: b"bob\x00\x00\x00\x02",
            value: b"a session record",
            nonce: [0x11; 12],
        },
        Case {
            space: Space::GROUPS,
            lookup: b"bob\x00\x00\x00\x02",
            value: b"",
            nonce: [0x22; 12],
        },
    ];
    (app_key, salt, cases)
}

fn generate() -> Value {
    let (app_key, salt, cases) = inputs();
    let keys = DerivedKeys::derive(&StoreKey::from_bytes(app_key), &salt);
    let items: Vec<Value> = cases
        .iter()
        .map(|c| {
            let blinded = seal::blind(&keys, c.space.id(), c.lookup);
            let sealed =
                seal::seal_with_nonce(&keys, &c.nonce, c.space.id(), &blinded, c.value).unwrap();
            json!({
                "space": c.space.id(),
                "lookup": hex::encode(c.lookup),
                "value": hex::encode(c.value),
                "nonce": hex::encode(c.nonce),
                "blinded": hex::encode(blinded),
                "sealed": hex::encode(sealed),
            })
        })
        .collect();
    json!({
        "description": "Client store (docs/client-store.md): the keys one store derives from the app's key and its salt, and values blinded and sealed under them with fixed nonces.",
        "format_version": STORE_FORMAT_VERSION,
        "app_key": hex::encode(app_key),
        "salt": hex::encode(salt),
        "seal_key": hex::encode(keys.seal.as_slice()),
        "blind_key": hex::encode(keys.blind.as_slice()),
        "items": items,
    })
}

use crate::vector_file::hex_field as h;

#[test]
fn client_store_vectors_match_the_code_and_the_spec() {
    let v = crate::vector_file::matches_file(PATH, &generate());

    // The formulas, step by step.
    let hkdf = Hkdf::<Sha256>::new(Some(&h(&v["salt"])), &h(&v["app_key"]));
    let mut seal_key = [0u8; 32];
    let mut blind_key = [0u8; 32];
    hkdf.expand(b"E2EE-v1 client store seal", &mut seal_key)
        .unwrap();
    hkdf.expand(b"E2EE-v1 client store blind", &mut blind_key)
        .unwrap();
    assert_eq!(seal_key.to_vec(), h(&v["seal_key"]));
    assert_eq!(blind_key.to_vec(), h(&v["blind_key"]));
    for item in v["items"].as_array().unwrap() {
        let space = u8::try_from(item["space"].as_u64().unwrap()).unwrap();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&blind_key).unwrap();
        mac.update(&[space]);
        mac.update(&h(&item["lookup"]));
        let blinded = mac.finalize().into_bytes().to_vec();
        assert_eq!(blinded, h(&item["blinded"]));
        let mut ad = b"E2EE-v1 client store".to_vec();
        ad.push(STORE_FORMAT_VERSION);
        ad.push(space);
        ad.extend_from_slice(&blinded);
        let sealed = h(&item["sealed"]);
        assert_eq!(&sealed[..12], h(&item["nonce"]).as_slice());
        let opened = Aes256Gcm::new((&seal_key).into())
            .decrypt(
                Nonce::from_slice(&sealed[..12]),
                Payload {
                    msg: &sealed[12..],
                    aad: &ad,
                },
            )
            .unwrap();
        assert_eq!(opened, h(&item["value"]));
    }
}
