//! `vectors/client_link.json`: the link code, channel id, channel key and sealed link
//! messages from a fixed secret, checked against the code and against the formulas of
//! `docs/keyserver.md` ("Linking a device") computed here step by step.
//! `E2EE_REGENERATE_VECTORS=1 cargo test -p e2ee-client vectors` rewrites the file.

#![allow(clippy::unwrap_used, clippy::panic)]

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use base64::Engine;
use e2ee_core::{Codec, DeviceAddress};
use hkdf::Hkdf;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::link::{LinkOffer, LinkSecret, LinkWelcome};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../vectors/client_link.json"
);

fn secret_bytes() -> [u8; 32] {
    core::array::from_fn(|i| 0x40 + i as u8)
}

fn generate() -> Value {
    let mut code_bytes = vec![0x01];
    code_bytes.extend_from_slice(&secret_bytes());
    let code = format!(
        "e2ee-link:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&code_bytes)
    );
    let secret = LinkSecret::from_code(&code).unwrap();
    assert_eq!(secret.code(), code);
    let offer = LinkOffer {
        address: DeviceAddress::new("alice", 2).unwrap(),
        account_key: [7; 32],
    }
    .to_bytes();
    let welcome = LinkWelcome {
        certificate: b"certificate bytes".to_vec(),
        credential: "dc1.YWxpY2U.2.c2VjcmV0".into(),
        device_list: b"device list bytes".to_vec(),
        contacts: vec![([9; 32], b"bob's list".to_vec())],
    }
    .to_bytes();
    let messages: Vec<Value> = [(1u8, offer), (3u8, welcome)]
        .into_iter()
        .map(|(slot, message)| {
            json!({
                "slot": slot,
                "message": hex::encode(&message),
                "sealed": hex::encode(secret.seal(slot, &message).unwrap()),
            })
        })
        .collect();
    json!({
        "description": "Linking a device (docs/keyserver.md, Linking a device): the link code of a fixed secret, the channel id the key server sees, and link messages sealed under the channel key (slot 1: an offer of alice.2 under account key 07..07; slot 3: a welcome with placeholder certificate and list bytes).",
        "secret": hex::encode(secret_bytes()),
        "code": code,
        "channel": secret.channel(),
        "messages": messages,
    })
}

use crate::vector_file::hex_field as h;

#[test]
fn client_link_vectors_match_the_code_and_the_spec() {
    let v = crate::vector_file::matches_file(PATH, &generate());

    // The formulas, step by step.
    let secret = h(&v["secret"]);
    let mut hash = Sha256::new();
    hash.update(b"E2EE-v1 link channel");
    hash.update(&secret);
    assert_eq!(hex::encode(hash.finalize()), v["channel"].as_str().unwrap());
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(None, &secret)
        .expand(b"E2EE-v1 link key", &mut key)
        .unwrap();
    for item in v["messages"].as_array().unwrap() {
        let slot = u8::try_from(item["slot"].as_u64().unwrap()).unwrap();
        let mut nonce = [0u8; 12];
        nonce[11] = slot;
        let mut aad = b"E2EE-v1 link".to_vec();
        aad.extend_from_slice(v["channel"].as_str().unwrap().as_bytes());
        aad.push(slot);
        let opened = Aes256Gcm::new((&key).into())
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &h(&item["sealed"]),
                    aad: &aad,
                },
            )
            .unwrap();
        assert_eq!(opened, h(&item["message"]));
    }
}
