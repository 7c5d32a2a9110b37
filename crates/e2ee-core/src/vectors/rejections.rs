//! (d) Inputs that must be rejected, with the expected error.

use serde::{Deserialize, Serialize};

use super::{ScriptedRng, alice, bob, draw, h, handshake, record_bytes, seeded, unh};
use crate::{
    Codec, DhKeyPair, PreKeyBundle, SessionCipher, SessionConfig, SessionRecord,
    limits::MAX_FORWARD_JUMP,
    message::{PreKeyMessage, RATCHET_MESSAGE_TYPE},
    put_varint,
    store::SessionStore,
};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(super) struct RejectionFile {
    pub(super) description: String,
    pub(super) vectors: Vec<Rejection>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(super) struct Rejection {
    pub(super) name: String,
    pub(super) description: String,
    /// The handshakes.json vector whose keys (and, for "process_bundle", randomness) are used.
    pub(super) handshake: String,
    /// "process_bundle": Alice (the handshake's initiator, fresh store) processes `input` as
    /// a bundle from Bob. "deliver": Bob (the handshake's responder, a fresh store holding
    /// exactly the handshake's prekeys) decrypts `input` from Alice.
    pub(super) action: String,
    /// The acting party's `SessionConfig::allow_plain_x3dh`.
    pub(super) allow_plain_x3dh: bool,
    /// "deliver" only: messages from Alice Bob decrypts successfully first, in order.
    pub(super) deliver_first: Vec<String>,
    /// "deliver" only: after those, Bob deletes his session with Alice (prekeys stay used).
    pub(super) delete_session_first: bool,
    /// The rejected bytes.
    pub(super) input: String,
    /// `Debug` of the `e2ee_core::Error` returned; Bob's session record and prekeys are
    /// unchanged by the failed call.
    pub(super) expected_error: String,
}

const LOW_ORDER_POINT: [u8; 32] = [
    0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
    0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
];

/// Runs one case; returns the error's Debug form.
fn evaluate(case: &Rejection, handshakes: &handshake::HandshakeFile) -> String {
    let vector = handshakes
        .vectors
        .iter()
        .find(|v| v.name == case.handshake)
        .unwrap_or_else(|| panic!("no handshake vector {:?}", case.handshake));
    let keys = vector.inputs.keys();
    let cipher = SessionCipher::new(SessionConfig {
        allow_plain_x3dh: case.allow_plain_x3dh,
    });
    let input = unh(&case.input);
    match case.action.as_str() {
        "process_bundle" => {
            assert!(case.deliver_first.is_empty() && !case.delete_session_first);
            let bundle = PreKeyBundle::from_bytes(&input).unwrap();
            let mut store = keys.initiator_store();
            let mut rng = vector.inputs.initiator_rng();
            let error = cipher
                .process_bundle(&mut store, &mut rng, &bob(), &bundle)
                .unwrap_err();
            assert!(store.load_session(&bob()).unwrap().is_none());
            format!("{error:?}")
        }
        "deliver" => {
            let mut store = keys.responder_store();
            for wire in &case.deliver_first {
                cipher.decrypt(&mut store, &alice(), &unh(wire)).unwrap();
            }
            if case.delete_session_first {
                store
                    .store_session(&alice(), &SessionRecord::new())
                    .unwrap();
            }
            let before = record_bytes(&store, &alice());
            let prekeys_before = store.one_time_prekey_count();
            let error = cipher.decrypt(&mut store, &alice(), &input).unwrap_err();
            assert_eq!(record_bytes(&store, &alice()), before, "{}", case.name);
            assert_eq!(store.one_time_prekey_count(), prekeys_before);
            format!("{error:?}")
        }
        other => panic!("unknown action {other:?}"),
    }
}

/// A ratchet message with a chosen header and a 16-byte all-zero "tag".
fn crafted_ratchet_message(ratchet_key: [u8; 32], previous_counter: u32, counter: u32) -> Vec<u8> {
    let mut out = vec![RATCHET_MESSAGE_TYPE];
    out.extend_from_slice(&ratchet_key);
    put_varint(&mut out, previous_counter);
    put_varint(&mut out, counter);
    out.extend_from_slice(&[0u8; 16]);
    out
}

/// Re-signs a signed prekey message the way the owner would (context || id || created_at || key).
fn signed_prekey_message(id: u32, created_at: u64, key: &[u8; 32]) -> Vec<u8> {
    let mut msg = b"E2EE-v1 signed prekey".to_vec();
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&created_at.to_be_bytes());
    msg.extend_from_slice(key);
    msg
}

pub(super) fn generate(handshakes: &handshake::HandshakeFile) -> RejectionFile {
    let find = |name: &str| {
        handshakes
            .vectors
            .iter()
            .find(|v| v.name == name)
            .unwrap()
            .clone()
    };
    let otk = find("pqxdh_one_time_prekey");
    let last_resort = find("pqxdh_last_resort");
    let plain = find("x3dh_plain");
    let keys = otk.inputs.keys();
    let good_bundle = keys.bundle();
    let first = super::unh(&otk.derived.first_message.wire);
    // Alice's second message (a prekey message again: she has not heard back).
    let (_, mut alice_state, first_again) = handshake::initiate(&otk.inputs);
    assert_eq!(first_again, first);
    let second = alice_state
        .encrypt(&mut ScriptedRng::new(&[]), b"second message")
        .unwrap();
    let second_inner = PreKeyMessage::from_bytes(&second)
        .unwrap()
        .message
        .as_bytes()
        .to_vec();
    let alice_ratchet = alice_state.our_ratchet.public().to_bytes();
    let mut rng = seeded(400);
    let fresh_ratchet_key = DhKeyPair::from_secret_bytes(draw::<32>(&mut rng))
        .public()
        .to_bytes();

    let mut cases: Vec<(Rejection, &str)> = Vec::new();
    let mut add = |name: &str,
                   description: &str,
                   vector: &handshake::HandshakeVector,
                   action: &str,
                   deliver_first: Vec<&[u8]>,
                   delete_session_first: bool,
                   input: Vec<u8>,
                   expected: &'static str| {
        cases.push((
            Rejection {
                name: name.to_owned(),
                description: description.to_owned(),
                handshake: vector.name.clone(),
                action: action.to_owned(),
                allow_plain_x3dh: false,
                deliver_first: deliver_first.into_iter().map(h).collect(),
                delete_session_first,
                input: h(&input),
                expected_error: String::new(),
            },
            expected,
        ));
    };

    let mut bundle = good_bundle.clone();
    bundle.signed_prekey.signature[0] ^= 0x01;
    add(
        "bundle_bad_signed_prekey_signature",
        "Bundle whose signed-prekey signature has bit 0 of byte 0 flipped",
        &otk,
        "process_bundle",
        vec![],
        false,
        bundle.to_bytes(),
        r#"Handshake(Key(InvalidSignature("signed prekey")))"#,
    );
    let mut bundle = good_bundle.clone();
    if let Some(kem) = bundle.kem_prekey.as_mut() {
        kem.signature[63] ^= 0x01;
    }
    add(
        "bundle_bad_kem_prekey_signature",
        "Bundle whose KEM-prekey signature has bit 0 of byte 63 flipped",
        &otk,
        "process_bundle",
        vec![],
        false,
        bundle.to_bytes(),
        r#"Handshake(Key(InvalidSignature("KEM prekey")))"#,
    );
    let mut bundle = good_bundle.clone();
    bundle.signed_prekey.key = crate::DhPublicKey::from_bytes(LOW_ORDER_POINT).unwrap();
    bundle.signed_prekey.signature = keys.responder.sign(&signed_prekey_message(
        bundle.signed_prekey.id,
        bundle.signed_prekey.created_at,
        &LOW_ORDER_POINT,
    ));
    add(
        "bundle_low_order_signed_prekey",
        "Bundle whose signed prekey is a low-order point (order 8), validly signed by the owner: DH1 is all zeros",
        &otk,
        "process_bundle",
        vec![],
        false,
        bundle.to_bytes(),
        "Handshake(Key(NonContributory))",
    );
    add(
        "bundle_without_kem_prekey",
        "Bundle without a KEM prekey, processed without opting into plain X3DH",
        &plain,
        "process_bundle",
        vec![],
        false,
        super::unh(&plain.derived.bundle),
        "Handshake(MissingKemPreKey)",
    );
    let base_key = PreKeyMessage::from_bytes(&first)
        .unwrap()
        .parts
        .base_key
        .to_bytes();
    let base_at = first.windows(32).position(|w| w == base_key).unwrap();
    let base_range = format!("bytes {base_at}..{}", base_at + 32);
    let mut low_base = first.clone();
    low_base[base_at..base_at + 32].copy_from_slice(&LOW_ORDER_POINT);
    let low_base_description = format!(
        "First message whose base key EK_A ({base_range}) is replaced by a low-order point"
    );
    add(
        "first_message_low_order_base_key",
        &low_base_description,
        &otk,
        "deliver",
        vec![],
        false,
        low_base,
        "Handshake(Key(NonContributory))",
    );
    let mut high_bit = first.clone();
    high_bit[base_at + 31] |= 0x80;
    let high_bit_description = format!(
        "First message whose base key EK_A ({base_range}) has bit 255 set: the same X25519 \
         point, refused as a non-canonical encoding"
    );
    add(
        "first_message_non_canonical_base_key",
        &high_bit_description,
        &otk,
        "deliver",
        vec![],
        false,
        high_bit,
        "Decode(NonCanonical)",
    );
    let intended = crate::DeviceAddress::new("bob", 1).unwrap().to_bytes();
    let intended_at = first
        .windows(intended.len())
        .position(|w| w == intended)
        .unwrap();
    let mut misdirected = first.clone();
    misdirected[intended_at + intended.len() - 1] = 2;
    let misdirected_description = format!(
        "First message whose responder address (bytes {intended_at}..{}) names bob.2 instead \
         of the receiving device bob.1",
        intended_at + intended.len()
    );
    add(
        "first_message_for_another_device",
        &misdirected_description,
        &otk,
        "deliver",
        vec![],
        false,
        misdirected,
        "Handshake(WrongRecipient { intended: DeviceAddress(bob.2) })",
    );
    let mut bundle = good_bundle.clone();
    bundle.binding = crate::device::DeviceBinding::sign(
        &keys.responder,
        crate::DeviceAddress::new("mallory", 1).unwrap(),
        *good_bundle.binding.account(),
    );
    add(
        "bundle_bound_to_another_address",
        "Bob's genuine bundle whose device binding (validly signed by Bob's identity) names \
         mallory.1, processed as the bundle of bob.1",
        &otk,
        "process_bundle",
        vec![],
        false,
        bundle.to_bytes(),
        "Handshake(AddressMismatch { bound: DeviceAddress(mallory.1) })",
    );
    let mut bundle = good_bundle.clone();
    let mut signature = *bundle.binding.signature();
    signature[0] ^= 0x01;
    bundle.binding = crate::device::DeviceBinding::from_parts(
        bundle.binding.address().clone(),
        *bundle.binding.account(),
        signature,
    );
    add(
        "bundle_bad_binding_signature",
        "Bundle whose device-binding signature has bit 0 of byte 0 flipped",
        &otk,
        "process_bundle",
        vec![],
        false,
        bundle.to_bytes(),
        r#"Handshake(Key(InvalidSignature("device binding")))"#,
    );
    let mut tampered = first.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    add(
        "first_message_tampered_tag",
        "First message with the last tag byte flipped: no session, no prekey consumed",
        &otk,
        "deliver",
        vec![],
        false,
        tampered,
        "Decrypt(AuthenticationFailed)",
    );
    add(
        "first_message_without_kem_refused",
        "A plain X3DH first message delivered to a responder that did not opt into plain X3DH",
        &plain,
        "deliver",
        vec![],
        false,
        super::unh(&plain.derived.first_message.wire),
        "Handshake(PlainX3dhRefused)",
    );
    let mut tampered = second_inner.clone();
    let header_len = 1 + 32 + 1 + 1;
    tampered[header_len + 5] ^= 0x01;
    add(
        "ratchet_message_tampered_ciphertext",
        "Alice's second message, sent as a plain ratchet message (the ratchet message inside \
         her second prekey message): bit 0 of its byte 40 flipped, which is ciphertext byte 5 \
         (the header is bytes 0..35: type, ratchet key, PN = 0 and N = 1 as one-byte varints)",
        &otk,
        "deliver",
        vec![&first],
        false,
        tampered,
        "Decrypt(AuthenticationFailed)",
    );
    add(
        "duplicate_message",
        "Alice's second message delivered a second time",
        &otk,
        "deliver",
        vec![&first, &second],
        false,
        second.clone(),
        "Decrypt(Duplicate { counter: 1 })",
    );
    add(
        "replayed_first_message_session_exists",
        "The first message delivered again while its session exists",
        &otk,
        "deliver",
        vec![&first],
        false,
        first.clone(),
        "Decrypt(Duplicate { counter: 0 })",
    );
    add(
        "replayed_first_message_one_time_prekey_used",
        "The first message replayed after its one-time prekey was consumed and the session deleted",
        &otk,
        "deliver",
        vec![&first],
        true,
        first.clone(),
        "Handshake(UnknownOneTimePreKey(42))",
    );
    let last_resort_first = super::unh(&last_resort.derived.first_message.wire);
    add(
        "replayed_first_message_last_resort",
        "A first message using the last-resort KEM prekey, replayed after the session was deleted: each (last-resort KEM prekey, handshake id) pair is accepted once",
        &last_resort,
        "deliver",
        vec![&last_resort_first],
        true,
        last_resort_first.clone(),
        "Handshake(LastResortReplay(1000))",
    );
    let jump = MAX_FORWARD_JUMP + 1;
    add(
        "too_far_ahead_on_existing_chain",
        "A ratchet message on Alice's current chain (next index 1) with counter 25002: a jump of 25001 > MAX_FORWARD_JUMP",
        &otk,
        "deliver",
        vec![&first],
        false,
        crafted_ratchet_message(alice_ratchet, 0, 1 + jump),
        "Decrypt(TooFarAhead { jump: 25001 })",
    );
    add(
        "too_far_ahead_on_new_chain",
        "A ratchet message under a new (valid) ratchet key with counter 25001 > MAX_FORWARD_JUMP",
        &otk,
        "deliver",
        vec![&first],
        false,
        crafted_ratchet_message(fresh_ratchet_key, 0, jump),
        "Decrypt(TooFarAhead { jump: 25001 })",
    );
    add(
        "low_order_ratchet_key",
        "A ratchet message whose ratchet key is a low-order point (order 8)",
        &otk,
        "deliver",
        vec![&first],
        false,
        crafted_ratchet_message(LOW_ORDER_POINT, 0, 0),
        "Decrypt(Key(NonContributory))",
    );

    let vectors = cases
        .into_iter()
        .map(|(mut case, expected)| {
            case.expected_error = evaluate(&case, handshakes);
            assert_eq!(case.expected_error, expected, "{}", case.name);
            case
        })
        .collect();
    RejectionFile {
        description: "Inputs that must be rejected, each with the expected error. Schema: \
                      vectors/README.md. Generated by crates/e2ee-core/src/vectors/rejections.rs."
            .to_owned(),
        vectors,
    }
}

pub(super) fn replay(file: &RejectionFile, handshakes: &handshake::HandshakeFile) {
    assert!(file.vectors.len() >= 15);
    for case in &file.vectors {
        assert_eq!(
            evaluate(case, handshakes),
            case.expected_error,
            "{}",
            case.name
        );
    }
}
