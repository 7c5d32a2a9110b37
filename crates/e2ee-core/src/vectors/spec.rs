//! Independent checks of the recorded values against the spec formulas (docs/protocol.md),
//! computed with the primitive crates directly rather than through this crate's code.

use std::collections::HashMap;

use aes_gcm::{Aes256Gcm, KeyInit, aead::Aead, aead::Payload};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use super::{
    MessageKeys, RootStep, WireMessage, conversation::ConversationFile, handshake::AddressInput,
    handshake::HandshakeVector, safety::SafetyVector, unh,
};

fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .unwrap();
    out
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn x25519(secret: &[u8], public: &[u8]) -> Vec<u8> {
    x25519_dalek::x25519(secret.try_into().unwrap(), public.try_into().unwrap()).to_vec()
}

fn x25519_public(secret: &[u8]) -> Vec<u8> {
    x25519_dalek::x25519(
        secret.try_into().unwrap(),
        x25519_dalek::X25519_BASEPOINT_BYTES,
    )
    .to_vec()
}

fn leb128(mut value: u32) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn verify(signer: &[u8], message: &[u8], signature: &[u8]) {
    let key = VerifyingKey::from_bytes(signer.try_into().unwrap()).unwrap();
    let signature = Signature::from_bytes(signature.try_into().unwrap());
    key.verify_strict(message, &signature).unwrap();
}

/// IdentityKey (128) = Ed25519 pub || X25519 pub || Ed25519("E2EE-v1 identity dh" || X25519 pub).
fn check_identity(secret: &[u8], encoded: &[u8]) {
    assert_eq!(encoded.len(), 128);
    let seed: [u8; 32] = secret[..32].try_into().unwrap();
    let ed_public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    assert_eq!(&encoded[..32], &ed_public[..]);
    assert_eq!(&encoded[32..64], &x25519_public(&secret[32..])[..]);
    let mut message = b"E2EE-v1 identity dh".to_vec();
    message.extend_from_slice(&encoded[32..64]);
    verify(&encoded[..32], &message, &encoded[64..]);
}

/// `RK', CK = HKDF(salt = RK, ikm = X25519(ours, theirs), "E2EE-v1_Ratchet_Root")`.
fn check_root_step(step: &RootStep, our_secret: &[u8]) {
    assert_eq!(unh(&step.our_ratchet_public), x25519_public(our_secret));
    let dh = x25519(our_secret, &unh(&step.their_ratchet_public));
    assert_eq!(unh(&step.dh_output), dh);
    assert_ne!(dh, vec![0u8; 32]);
    let okm = hkdf(&unh(&step.root_key), &dh, b"E2EE-v1_Ratchet_Root", 64);
    assert_eq!(unh(&step.next_root_key), &okm[..32]);
    assert_eq!(unh(&step.chain_key), &okm[32..]);
}

/// `MK = HMAC(CK, 0x01)`, `CK' = HMAC(CK, 0x02)`, `key || nonce = HKDF(0^32, MK, info)`.
fn check_message_keys(keys: &MessageKeys) {
    let ck = unh(&keys.chain_key);
    let mk = hmac(&ck, &[0x01]);
    assert_eq!(unh(&keys.message_key), mk);
    assert_eq!(unh(&keys.next_chain_key), hmac(&ck, &[0x02]));
    let okm = hkdf(&[0u8; 32], &mk, b"E2EE-v1_Ratchet_MessageKeys", 44);
    assert_eq!(unh(&keys.aes_key), &okm[..32]);
    assert_eq!(unh(&keys.nonce), &okm[32..]);
}

/// Header layout, AEAD with `AD || header`, and the plaintext.
fn check_wire(message: &WireMessage, keys: &MessageKeys, ad: &[u8], plaintext: &str) {
    assert_eq!(message.counter, keys.chain_index);
    let mut header = vec![0x11];
    header.extend_from_slice(&unh(&message.ratchet_key));
    header.extend_from_slice(&leb128(message.previous_counter));
    header.extend_from_slice(&leb128(message.counter));
    assert_eq!(unh(&message.header), header);
    let ciphertext = unh(&message.ciphertext);
    let mut inner = header.clone();
    inner.extend_from_slice(&ciphertext);
    assert_eq!(unh(&message.ratchet_message), inner);
    assert_eq!(ciphertext.len(), plaintext.len() + 16);
    let cipher = Aes256Gcm::new_from_slice(&unh(&keys.aes_key)).unwrap();
    let mut aad = ad.to_vec();
    aad.extend_from_slice(&header);
    let nonce = unh(&keys.nonce);
    let opened = cipher
        .decrypt(
            aes_gcm::Nonce::from_slice(&nonce),
            Payload {
                msg: &ciphertext,
                aad: &aad,
            },
        )
        .unwrap();
    assert_eq!(opened, plaintext.as_bytes());
    let wire = unh(&message.wire);
    match message.kind.as_str() {
        "ratchet" => assert_eq!(wire, inner),
        "prekey" => {
            assert_eq!(wire[0], 0x12);
            assert!(wire.ends_with(&inner));
        }
        other => panic!("unknown kind {other:?}"),
    }
}

pub(super) fn check_handshake(vector: &HandshakeVector) {
    let inputs = &vector.inputs;
    let derived = &vector.derived;
    let a_secret = unh(&inputs.initiator_identity_secret);
    let b_secret = unh(&inputs.responder_identity_secret);
    let a_ik = unh(&derived.initiator_identity_key);
    let b_ik = unh(&derived.responder_identity_key);
    check_identity(&a_secret, &a_ik);
    check_identity(&b_secret, &b_ik);
    let a_binding = check_binding(
        &a_ik,
        &inputs.initiator_address,
        &inputs.initiator_account_secret,
        &derived.initiator_account_key,
        &derived.initiator_binding,
    );
    let b_binding = check_binding(
        &b_ik,
        &inputs.responder_address,
        &inputs.responder_account_secret,
        &derived.responder_account_key,
        &derived.responder_binding,
    );

    // SignedPreKeyPublic = id u32 || created_at u64 || key || sig over context || the same.
    let spk = unh(&derived.signed_prekey_public);
    let spk_secret = unh(&inputs.signed_prekey.secret);
    assert_eq!(spk[..4], inputs.signed_prekey.id.to_be_bytes());
    assert_eq!(spk[4..12], inputs.signed_prekey.created_at.to_be_bytes());
    assert_eq!(spk[12..44], x25519_public(&spk_secret)[..]);
    let mut signed = b"E2EE-v1 signed prekey".to_vec();
    signed.extend_from_slice(&spk[..44]);
    verify(&b_ik[..32], &signed, &spk[44..]);
    let spk_public = &spk[12..44];

    let ek = unh(&inputs.initiator_ephemeral_secret);
    let ek_public = x25519_public(&ek);
    assert_eq!(unh(&derived.initiator_ephemeral_public), ek_public);
    let mut dh = vec![
        x25519(&a_secret[32..], spk_public),
        x25519(&ek, &b_ik[32..64]),
        x25519(&ek, spk_public),
    ];
    let mut bundle = vec![0x01, 0x00];
    let mut otk_id = None;
    if let Some(otk) = &inputs.one_time_prekey {
        let secret = unh(&otk.secret);
        let public = unh(derived.one_time_prekey_public.as_deref().unwrap());
        assert_eq!(public[..4], otk.id.to_be_bytes());
        assert_eq!(public[4..], x25519_public(&secret)[..]);
        dh.push(x25519(&ek, &public[4..]));
        bundle[1] |= 0x01;
        otk_id = Some(otk.id);
    } else {
        assert!(derived.one_time_prekey_public.is_none() && derived.dh4.is_none());
    }
    let recorded_dh: Vec<Option<&String>> = vec![
        Some(&derived.dh1),
        Some(&derived.dh2),
        Some(&derived.dh3),
        derived.dh4.as_ref(),
    ];
    for (i, out) in dh.iter().enumerate() {
        assert_eq!(unh(recorded_dh[i].unwrap()), *out, "DH{}", i + 1);
        assert_ne!(*out, vec![0u8; 32]);
    }

    let mut ikm = vec![0xffu8; 32];
    for out in &dh {
        ikm.extend_from_slice(out);
    }
    let mut kem_part = None;
    let mut info: Vec<u8> = if let Some(kem) = &inputs.kem_prekey {
        // FIPS 203 KeyGen from d || z, Encaps from m; the signature covers
        // "E2EE-v1 kem prekey" || id || kind || created_at || encapsulation key.
        use libcrux_ml_kem::mlkem768;
        let seed: [u8; 64] = unh(&kem.keygen_seed).try_into().unwrap();
        let pair = mlkem768::generate_key_pair(seed);
        let encoded = unh(derived.kem_prekey_public.as_deref().unwrap());
        assert_eq!(encoded.len(), 4 + 1 + 8 + 1184 + 64);
        assert_eq!(encoded[..4], kem.id.to_be_bytes());
        let kind = match kem.kind.as_str() {
            "one-time" => 1,
            "last-resort" => 2,
            other => panic!("kind {other}"),
        };
        assert_eq!(encoded[4], kind);
        assert_eq!(encoded[5..13], kem.created_at.to_be_bytes());
        assert_eq!(&encoded[13..13 + 1184], pair.pk());
        assert_eq!(
            unh(derived.kem_decapsulation_key.as_deref().unwrap()),
            pair.sk()
        );
        let mut signed = b"E2EE-v1 kem prekey".to_vec();
        signed.extend_from_slice(&encoded[..13 + 1184]);
        verify(&b_ik[..32], &signed, &encoded[13 + 1184..]);
        let randomness: [u8; 32] = unh(inputs.kem_encapsulation_randomness.as_deref().unwrap())
            .try_into()
            .unwrap();
        let (ciphertext, shared) = mlkem768::encapsulate(pair.public_key(), randomness);
        assert_eq!(
            unh(derived.kem_ciphertext.as_deref().unwrap()),
            ciphertext.as_slice()
        );
        assert_eq!(
            unh(derived.kem_shared_secret.as_deref().unwrap()),
            shared.to_vec()
        );
        assert_eq!(
            mlkem768::decapsulate(pair.private_key(), &ciphertext),
            shared
        );
        ikm.extend_from_slice(&shared);
        bundle[1] |= 0x02;
        let mut info = b"E2EE-v1_PQXDH_X25519_SHA-256_ML-KEM-768".to_vec();
        info.extend_from_slice(&Sha256::digest(pair.pk()));
        info.extend_from_slice(&Sha256::digest(ciphertext.as_slice()));
        kem_part = Some((kem.id, ciphertext.as_slice().to_vec(), encoded));
        info
    } else {
        assert!(derived.kem_ciphertext.is_none() && derived.kem_shared_secret.is_none());
        b"E2EE-v1_X3DH_X25519_SHA-256".to_vec()
    };
    // Both devices' addresses and account keys: the first 1 + len + 4 + 32 bytes of each
    // binding (its signature is not part of the info).
    for binding in [&a_binding, &b_binding] {
        info.extend_from_slice(&binding[..binding.len() - 64]);
    }
    assert_eq!(unh(&derived.kdf_info), info);
    assert_eq!(unh(&derived.kdf_input), ikm);
    let sk = hkdf(&[0u8; 32], &ikm, &info, 32);
    assert_eq!(unh(&derived.shared_key), sk);
    let mut ad = a_ik[..64].to_vec();
    ad.extend_from_slice(&b_ik[..64]);
    assert_eq!(unh(&derived.associated_data), ad);

    // Bundle = 0x01 || flags || IK_B || binding_B || SPK [|| OPK] [|| KEM prekey].
    bundle.extend_from_slice(&b_ik);
    bundle.extend_from_slice(&b_binding);
    bundle.extend_from_slice(&spk);
    if let Some(otk) = &derived.one_time_prekey_public {
        bundle.extend_from_slice(&unh(otk));
    }
    if let Some((_, _, encoded)) = &kem_part {
        bundle.extend_from_slice(encoded);
    }
    assert_eq!(unh(&derived.bundle), bundle);

    // Initial root step (RK = SK, DH(ratchet, SPK_B)) and the first message.
    let step = &derived.initial_root_step;
    assert_eq!(unh(&step.root_key), sk);
    assert_eq!(unh(&step.their_ratchet_public), spk_public);
    check_root_step(step, &unh(&inputs.initiator_ratchet_secret));
    let keys = &derived.first_message_keys;
    assert_eq!((keys.chain_index, &keys.chain_key), (0, &step.chain_key));
    check_message_keys(keys);
    let message = &derived.first_message;
    assert_eq!(message.kind, "prekey");
    assert_eq!(message.ratchet_key, step.our_ratchet_public);
    assert_eq!(message.previous_counter, 0);
    check_wire(message, keys, &ad, &inputs.first_plaintext);
    // 0x12 || flags || IK_A || binding_A || DeviceAddress(B) || EK_A || SPK id [|| OPK id]
    // [|| KEM id || CT] || ratchet message.
    let mut wire = vec![0x12, bundle[1]];
    wire.extend_from_slice(&a_ik);
    wire.extend_from_slice(&a_binding);
    wire.extend_from_slice(&address_bytes(&inputs.responder_address));
    wire.extend_from_slice(&ek_public);
    wire.extend_from_slice(&inputs.signed_prekey.id.to_be_bytes());
    if let Some(id) = otk_id {
        wire.extend_from_slice(&id.to_be_bytes());
    }
    if let Some((id, ciphertext, _)) = &kem_part {
        wire.extend_from_slice(&id.to_be_bytes());
        wire.extend_from_slice(ciphertext);
    }
    let header_len = wire.len();
    wire.extend_from_slice(&unh(&message.ratchet_message));
    assert_eq!(unh(&message.wire), wire);
    // The handshake digest covers every byte before the wrapped message; the handshake id
    // is SHA-256(CT), or the base key without a KEM part.
    assert_eq!(
        unh(&derived.handshake_digest),
        Sha256::digest(&wire[..header_len]).to_vec()
    );
    let id = match &kem_part {
        Some((_, ciphertext, _)) => Sha256::digest(ciphertext).to_vec(),
        None => ek_public.clone(),
    };
    assert_eq!(unh(&derived.handshake_id), id);

    // Session records (section 10): version, a current state, its role, both identities and
    // the root key after the first root step, the same on both sides.
    for (record, role, local, remote) in [
        (&derived.initiator_record, 1u8, &a_ik, &b_ik),
        (&derived.responder_record, 2u8, &b_ik, &a_ik),
    ] {
        let record = unh(record);
        assert_eq!(&record[..3], &[0x01, 0x01, role]);
        assert_eq!(&record[3..131], &local[..]);
        assert_eq!(&record[131..259], &remote[..]);
        assert_eq!(&record[259..291], &unh(&step.next_root_key)[..]);
    }
}

/// `len u8 || user id || device id u32`.
fn address_bytes(address: &AddressInput) -> Vec<u8> {
    let mut out = vec![address.user_id.len() as u8];
    out.extend_from_slice(address.user_id.as_bytes());
    out.extend_from_slice(&address.device_id.to_be_bytes());
    out
}

/// DeviceBinding = DeviceAddress || account key || Ed25519(IK.sig, "E2EE-v1 device binding"
/// || IK.public (64) || DeviceAddress || account key). Returns the encoding.
fn check_binding(
    identity: &[u8],
    address: &AddressInput,
    account_secret: &str,
    account_key: &str,
    encoded: &str,
) -> Vec<u8> {
    let seed: [u8; 32] = unh(account_secret).try_into().unwrap();
    let account = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    assert_eq!(unh(account_key), account);
    let mut body = address_bytes(address);
    body.extend_from_slice(&account);
    let encoded = unh(encoded);
    assert_eq!(&encoded[..body.len()], &body[..]);
    assert_eq!(encoded.len(), body.len() + 64);
    let mut signed = b"E2EE-v1 device binding".to_vec();
    signed.extend_from_slice(&identity[..64]);
    signed.extend_from_slice(&body);
    verify(&identity[..32], &signed, &encoded[body.len()..]);
    encoded
}

pub(super) fn check_conversation(file: &ConversationFile) {
    let ad = unh(&file.handshake.derived.associated_data);
    let mut root = file
        .handshake
        .derived
        .initial_root_step
        .next_root_key
        .clone();
    // Per ratchet key: the next chain index and chain key.
    let mut chains: HashMap<String, (u32, String)> = HashMap::new();
    let first = &file.handshake.derived.first_message_keys;
    chains.insert(
        file.handshake.derived.first_message.ratchet_key.clone(),
        (0, first.chain_key.clone()),
    );
    for message in &file.messages {
        let keys = &message.keys;
        check_message_keys(keys);
        check_wire(&message.message, keys, &ad, &message.plaintext);
        if let Some(step) = &message.dh_ratchet_step {
            // The root chain: each DH step continues from the previous one (the two sides
            // alternate in this conversation, each having received the other's newest key).
            assert_eq!(step.root_key, root, "message {}", message.id);
            check_root_step(step, &unh(message.ratchet_secret.as_deref().unwrap()));
            root = step.next_root_key.clone();
            assert_eq!(message.message.ratchet_key, step.our_ratchet_public);
            chains.insert(step.our_ratchet_public.clone(), (0, step.chain_key.clone()));
        } else {
            assert!(message.ratchet_secret.is_none());
        }
        assert_eq!(message.sender_root_key, root, "message {}", message.id);
        let chain = chains
            .get_mut(&message.message.ratchet_key)
            .unwrap_or_else(|| panic!("message {} on an unknown chain", message.id));
        assert_eq!(
            (chain.0, &chain.1),
            (keys.chain_index, &keys.chain_key),
            "message {}: the chain key continues the sender's chain",
            message.id
        );
        *chain = (keys.chain_index + 1, keys.next_chain_key.clone());
    }
    // Every delivery decrypts except the recorded duplicate; 19 is never delivered.
    let mut delivered = vec![0usize; file.messages.len()];
    for event in file.events.iter().filter(|e| e.action == "deliver") {
        delivered[event.message] += 1;
        let outcome = event.outcome.as_deref().unwrap();
        if delivered[event.message] == 1 {
            assert_eq!(outcome, "ok", "message {}", event.message);
        } else {
            let counter = file.messages[event.message].message.counter;
            assert_eq!(
                outcome,
                format!("Decrypt(Duplicate {{ counter: {counter} }})")
            );
        }
    }
    assert_eq!(delivered.iter().filter(|&&n| n == 0).count(), 1);
    assert!(delivered.contains(&2));
    let dh_steps = file
        .messages
        .iter()
        .filter(|m| m.dh_ratchet_step.is_some())
        .count();
    assert!(dh_steps >= 6, "{dh_steps} DH ratchet steps");
}

/// `H_1 = SHA-512(0x0000 || key || id || key)`, `H_i = SHA-512(H_{i-1} || key)` up to `H_5200`
/// (libsignal's structure),
/// `F = H[..32]`; digits: six 5-byte big-endian chunks mod 100000; the lower half first.
pub(super) fn check_safety_number(vector: &SafetyVector) {
    fn fingerprint(id: &str, key: &[u8]) -> Vec<u8> {
        let mut hash = Sha512::new()
            .chain_update([0u8, 0u8])
            .chain_update(key)
            .chain_update(id.as_bytes())
            .chain_update(key)
            .finalize();
        for _ in 1..5200 {
            hash = Sha512::new()
                .chain_update(hash)
                .chain_update(key)
                .finalize();
        }
        hash[..32].to_vec()
    }
    fn digits(fingerprint: &[u8]) -> String {
        fingerprint[..30]
            .chunks(5)
            .map(|c| {
                let value = c.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
                format!("{:05}", value % 100_000)
            })
            .collect()
    }
    let local = fingerprint(&vector.local_id, &unh(&vector.local_key));
    let remote = fingerprint(&vector.remote_id, &unh(&vector.remote_key));
    assert_eq!(unh(&vector.local_fingerprint), local);
    assert_eq!(unh(&vector.remote_fingerprint), remote);
    let (a, b) = (digits(&local), digits(&remote));
    let displayable = if a <= b { a + &b } else { b + &a };
    assert_eq!(vector.displayable, displayable);
    let mut scannable = vec![0x01];
    scannable.extend_from_slice(&local);
    scannable.extend_from_slice(&remote);
    assert_eq!(unh(&vector.scannable), scannable);
}
