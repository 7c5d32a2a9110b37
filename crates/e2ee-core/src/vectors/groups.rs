//! Test vectors for the group layer (`vectors/groups/groups.json`, described in
//! `vectors/groups/README.md`).
//!
//! * [`generate`] builds the file from fixed seeds through the public API; the drift test of
//!   `vectors/mod.rs` compares it with the committed file (`E2EE_REGENERATE_VECTORS=1`
//!   rewrites it).
//! * `group_vectors_match_the_spec` re-derives every recorded value from the formulas of
//!   `docs/protocol-groups.md` with the primitive crates directly (hmac, hkdf, aes-gcm,
//!   ed25519-dalek), then replays the deliveries and rejections through `GroupSession`.

use std::path::PathBuf;

use crate::{
    Codec, DeviceAddress, IdentityKeyPair, UserId,
    control::{Content, Receipt, ReceiptEvent, ReceiptKind, ReceiptTracker, Typing},
    device::{
        AccountConsent, AccountIdentityKey, AccountIdentityKeyPair, ConsentAction, DeviceBinding,
        DeviceCertificate, DeviceDirectory, DeviceEntry, DeviceList, VerifiedDevice,
    },
    group::{GroupError, GroupId, GroupSession, MessageId, SenderKeyDistribution},
};
use aes_gcm::{Aes256Gcm, KeyInit, aead::Aead};
use ed25519_dalek::{Signature, VerifyingKey};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use serde_json::{Value, json};
use sha2::Sha256;

const GROUP_ID: &[u8] = b"vector-group";
const PLAINTEXTS: [&str; 6] = ["m0", "m1: skipped then late", "m2", "m3", "m4", "m5 last"];
/// Delivery order to the receiver (message indices); a repeat must be a duplicate.
const DELIVERY: [usize; 8] = [0, 3, 5, 1, 3, 4, 2, 0];

fn path() -> PathBuf {
    super::vectors_dir().join("groups/groups.json")
}

fn alice() -> DeviceAddress {
    DeviceAddress::new("alice", 1).unwrap()
}
fn bob() -> DeviceAddress {
    DeviceAddress::new("bob", 1).unwrap()
}

fn error_name(e: &GroupError) -> String {
    match e {
        GroupError::Decode(d) => format!("Decode({d:?})"),
        GroupError::Key(_) => "InvalidSignature".into(),
        GroupError::AuthenticationFailed => "AuthenticationFailed".into(),
        GroupError::UnknownSenderKey { .. } => "UnknownSenderKey".into(),
        GroupError::Duplicate { iteration } => format!("Duplicate({iteration})"),
        GroupError::TooFarAhead { jump } => format!("TooFarAhead({jump})"),
        GroupError::NotAMember(_) => "NotAMember".into(),
        other => format!("{other:?}"),
    }
}

/// The sender device as its receivers' directories vouch for it (the identity is not part of
/// any group value; a fixed one stands in).
fn alice_member() -> VerifiedDevice {
    let identity = IdentityKeyPair::from_secret_bytes(&[0x11; 64]).unwrap();
    VerifiedDevice::assume_verified(alice(), *identity.public())
}

fn member(address: DeviceAddress) -> VerifiedDevice {
    let identity = IdentityKeyPair::from_secret_bytes(&[0x22; 64]).unwrap();
    VerifiedDevice::assume_verified(address, *identity.public())
}

fn receiver(distribution: &SenderKeyDistribution) -> GroupSession {
    let mut r = GroupSession::new(GroupId::new(GROUP_ID).unwrap(), bob());
    r.add_member(alice_member()).unwrap();
    r.process_distribution(&alice_member(), distribution)
        .unwrap();
    r
}

fn result_name(r: Result<Vec<u8>, GroupError>) -> String {
    match r {
        Ok(p) => format!("ok:{}", String::from_utf8(p).unwrap()),
        Err(e) => error_name(&e),
    }
}

/// The rejected inputs, built from a genuine message at iteration 1.
fn rejections(genuine: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let mut flip_sig = genuine.to_vec();
    let n = flip_sig.len();
    flip_sig[n - 1] ^= 0x01;
    out.push(("signature byte flipped", flip_sig));
    let mut flip_ct = genuine.to_vec();
    flip_ct[6] ^= 0x01;
    out.push(("ciphertext byte flipped", flip_ct));
    let mut key_id = genuine.to_vec();
    key_id[1] ^= 0x01;
    out.push(("unknown key id", key_id));
    let mut iteration = genuine.to_vec();
    iteration[5] = 0x02;
    out.push(("iteration changed (1 -> 2)", iteration));
    let mut version = genuine.to_vec();
    version[0] = 0x02;
    out.push(("version 2", version));
    out.push(("truncated", genuine[..85].to_vec()));
    let mut padded = genuine[..5].to_vec();
    padded.extend_from_slice(&[0x81, 0x00]);
    padded.extend_from_slice(&genuine[6..]);
    out.push(("non-canonical varint iteration", padded));
    let mut far = genuine[..5].to_vec();
    far.extend_from_slice(&[0xaa, 0xc3, 0x01]); // 25,002
    far.extend_from_slice(&genuine[6..]);
    out.push(("iteration 25,002 (bad signature)", far));
    out
}

/// Hands out a seeded ChaCha20 stream and keeps every byte it handed out: the private inputs
/// the vector records.
struct Recording {
    rng: ChaCha20Rng,
    drawn: Vec<u8>,
}

impl RngCore for Recording {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.rng.fill_bytes(dest);
        self.drawn.extend_from_slice(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for Recording {}

fn draw<const N: usize>(rng: &mut ChaCha20Rng) -> [u8; N] {
    let mut out = [0u8; N];
    rng.fill_bytes(&mut out);
    out
}

pub(super) fn generate() -> Value {
    let mut rng = Recording {
        rng: ChaCha20Rng::seed_from_u64(500),
        drawn: Vec::new(),
    };
    let group = GroupId::new(GROUP_ID).unwrap();
    let mut sender = GroupSession::new(group.clone(), alice());
    sender.add_member(member(bob())).unwrap();
    let sends: Vec<_> = PLAINTEXTS
        .iter()
        .map(|p| sender.encrypt(&mut rng, p.as_bytes()).unwrap())
        .collect();
    let distribution = sends[0].distribution.clone().unwrap();
    let dist_bytes = distribution.to_bytes();
    // Everything the sender drew: one sender key (key id, CK_0, signing seed).
    assert_eq!(rng.drawn.len(), 68);
    let sender_key_randomness = hex::encode(&rng.drawn);

    let sender_record = hex::encode(&sender.to_bytes()[..]);
    let mut r = receiver(&distribution);
    let delivery: Vec<Value> = DELIVERY
        .iter()
        .map(|&i| {
            let result = r.decrypt(&alice(), &sends[i].message).map(|p| p.plaintext);
            json!({ "message": i, "result": result_name(result) })
        })
        .collect();
    let receiver_record = hex::encode(&r.to_bytes()[..]);

    let rejected: Vec<Value> = rejections(&sends[1].message)
        .into_iter()
        .map(|(name, bytes)| {
            let result = receiver(&distribution)
                .decrypt(&alice(), &bytes)
                .map(|p| p.plaintext);
            json!({ "name": name, "wire": hex::encode(&bytes), "error": result_name(result) })
        })
        .collect();

    // A member joining after message 5: its distribution starts at iteration 6.
    let mut late_sender = sender;
    late_sender
        .add_member(member(DeviceAddress::new("carol", 1).unwrap()))
        .unwrap();
    let m6 = late_sender.encrypt(&mut rng, b"m6 for carol too").unwrap();
    let late = m6.distribution.clone().unwrap();

    let contents: Vec<Value> = [
        ("application message", Content::Message(b"hello".to_vec())),
        (
            "delivery receipt",
            Content::Receipt(Receipt {
                kind: ReceiptKind::Delivered,
                message_ids: vec![sends[0].message_id, sends[1].message_id],
            }),
        ),
        (
            "read receipt",
            Content::Receipt(Receipt {
                kind: ReceiptKind::Read,
                message_ids: vec![MessageId(u64::MAX)],
            }),
        ),
        (
            "typing in group",
            Content::Typing(Typing {
                started: true,
                group_id: Some(group.clone()),
            }),
        ),
        (
            "sender-key distribution",
            Content::from(distribution.clone()),
        ),
    ]
    .into_iter()
    .map(|(name, c)| json!({ "name": name, "bytes": hex::encode(&c.to_bytes().unwrap()[..]) }))
    .collect();

    let mut rng = ChaCha20Rng::seed_from_u64(501);
    let account_seed = draw::<32>(&mut rng);
    let other_seed = draw::<32>(&mut rng);
    let device_secrets = [draw::<64>(&mut rng), draw::<64>(&mut rng)];
    let account = AccountIdentityKeyPair::from_secret_bytes(&account_seed).unwrap();
    let other = AccountIdentityKeyPair::from_secret_bytes(&other_seed).unwrap();
    let devices: Vec<IdentityKeyPair> = device_secrets
        .iter()
        .map(|s| IdentityKeyPair::from_secret_bytes(s).unwrap())
        .collect();
    let user = UserId::new("alice").unwrap();
    let bindings: Vec<DeviceBinding> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let address = DeviceAddress::new("alice", i as u32 + 1).unwrap();
            DeviceBinding::sign(d, address, account.public())
        })
        .collect();
    let entries: Vec<DeviceEntry> = devices
        .iter()
        .zip(&bindings)
        .map(|(d, b)| DeviceEntry::new(*d.public(), b))
        .collect();
    let list = DeviceList::sign(&account, &user, 3, 1_700_000_300, entries).unwrap();
    // A list another account signs can only name devices bound to that account.
    let other_binding = DeviceBinding::sign(
        &devices[0],
        DeviceAddress::new("alice", 1).unwrap(),
        other.public(),
    );
    let forged = DeviceList::sign(
        &other,
        &user,
        4,
        1_700_000_400,
        vec![DeviceEntry::new(*devices[0].public(), &other_binding)],
    )
    .unwrap();
    let cert = DeviceCertificate::sign(&account, devices[1].public(), &bindings[1], 1_700_000_200)
        .unwrap();
    let enrol = AccountConsent::sign(&account, ConsentAction::Enrol, &cert, 1_700_000_200_123);
    let remove = AccountConsent::sign(&account, ConsentAction::Remove, &cert, 1_700_000_900_456);
    let mut directory = DeviceDirectory::new();
    directory.trust_account(&user, account.public()).unwrap();
    directory.update_device_list(&list).unwrap();

    // Receipts for messages 0 and 1, sent to bob.1 and carol.1: bob read both, carol has
    // reported delivery of message 0 only.
    let (bob1, carol1) = (bob(), DeviceAddress::new("carol", 1).unwrap());
    let mut tracker = ReceiptTracker::new();
    for s in &sends[..2] {
        tracker
            .track(s.message_id, [bob1.clone(), carol1.clone()])
            .unwrap();
    }
    let read = Receipt {
        kind: ReceiptKind::Read,
        message_ids: vec![sends[0].message_id, sends[1].message_id],
    };
    let delivered = Receipt {
        kind: ReceiptKind::Delivered,
        message_ids: vec![sends[0].message_id],
    };
    assert!(tracker.record(&bob1, &read).is_empty());
    let events = tracker.record(&carol1, &delivered);
    assert_eq!(events, [ReceiptEvent::DeliveredToAll(sends[0].message_id)]);
    let pending = Receipt {
        kind: ReceiptKind::Read,
        message_ids: vec![sends[1].message_id],
    };
    let completed = tracker.clone().record(&carol1, &pending);

    json!({
        "description": "Sender keys (docs/protocol-groups.md): one sender key, six messages delivered out of order with a skipped, a late and duplicate delivery; rejected inputs; a late joiner's distribution; the sender's and receiver's group session records; padded control messages; receipt tracking; a device list, certificate, account consents and directory.",
        "group_id": hex::encode(GROUP_ID),
        "sender": "alice.1",
        "receiver": "bob.1",
        "inputs": {
            "sender_key_randomness": sender_key_randomness,
            "account_secret": hex::encode(account_seed),
            "other_account_secret": hex::encode(other_seed),
            "device_identity_secrets": device_secrets.iter().map(hex::encode).collect::<Vec<_>>(),
        },
        "sender_key": {
            "key_id": distribution.key_id(),
            "signing_public_key": hex::encode(distribution.signing_key()),
            "distribution": hex::encode(&dist_bytes[..]),
        },
        "messages": sends.iter().zip(PLAINTEXTS).map(|(s, p)| json!({
            "plaintext": p,
            "message_id": format!("{:016x}", s.message_id.0),
            "wire": hex::encode(&s.message),
        })).collect::<Vec<_>>(),
        "delivery": delivery,
        "rejections": rejected,
        "records": {
            "sender_after_m5": sender_record,
            "receiver_after_delivery": receiver_record,
        },
        "receipts": {
            "tracker": hex::encode(tracker.to_bytes()),
            "next_receipt_from": "carol.1",
            "next_receipt": hex::encode(&Content::Receipt(pending).to_bytes().unwrap()[..]),
            "events": completed.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>(),
        },
        "late_joiner": {
            "distribution": hex::encode(&late.to_bytes()[..]),
            "readable": hex::encode(&m6.message),
            "plaintext": "m6 for carol too",
        },
        "contents": contents,
        "device_list": {
            "account_public_key": hex::encode(account.public().to_bytes()),
            "list": hex::encode(list.to_bytes()),
            "list_signed_by_another_key": hex::encode(forged.to_bytes()),
            "certificate": hex::encode(cert.to_bytes()),
            "enrol_consent": hex::encode(enrol.to_bytes()),
            "remove_consent": hex::encode(remove.to_bytes()),
            "directory": hex::encode(directory.to_bytes()),
        },
    })
}

fn h(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn hmac(key: &[u8], byte: u8) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(&[byte]);
    mac.finalize().into_bytes().into()
}

#[test]
fn group_vectors_match_the_spec() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    let group_id = h(&v["group_id"]);
    let dist = h(&v["sender_key"]["distribution"]);
    // Distribution layout: 0x01 || len || group_id || key_id || iteration || CK || signing key.
    let g = group_id.len();
    assert_eq!(dist[0], 0x01);
    assert_eq!(usize::from(dist[1]), g);
    assert_eq!(&dist[2..2 + g], &group_id[..]);
    let key_id = u32::from_be_bytes(dist[2 + g..6 + g].try_into().unwrap());
    assert_eq!(
        u64::from(key_id),
        v["sender_key"]["key_id"].as_u64().unwrap()
    );
    assert_eq!(&dist[6 + g..10 + g], &[0, 0, 0, 0]);
    let mut chain: [u8; 32] = dist[10 + g..42 + g].try_into().unwrap();
    let signing: [u8; 32] = dist[42 + g..74 + g].try_into().unwrap();
    assert_eq!(dist.len(), 74 + g);
    assert_eq!(signing.to_vec(), h(&v["sender_key"]["signing_public_key"]));
    let verifying = VerifyingKey::from_bytes(&signing).unwrap();
    // The sender key from its 68 random bytes: key id (big-endian), CK_0, signing seed.
    let randomness = h(&v["inputs"]["sender_key_randomness"]);
    assert_eq!(randomness.len(), 68);
    assert_eq!(
        key_id,
        u32::from_be_bytes(randomness[..4].try_into().unwrap())
    );
    assert_eq!(chain.as_slice(), &randomness[4..36]);
    let seed: [u8; 32] = randomness[36..].try_into().unwrap();
    assert_eq!(
        ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes(),
        signing
    );

    for (i, m) in v["messages"].as_array().unwrap().iter().enumerate() {
        let wire = h(&m["wire"]);
        let mk = hmac(&chain, 0x01);
        chain = hmac(&chain, 0x02);
        let mut okm = [0u8; 44];
        Hkdf::<Sha256>::new(Some(&[0u8; 32]), &mk)
            .expand(b"E2EE-v1_SenderKey_MessageKeys", &mut okm)
            .unwrap();
        // header = 0x01 || key_id || varint(i) (i < 128 here: one byte).
        let mut header = vec![0x01];
        header.extend_from_slice(&key_id.to_be_bytes());
        header.push(i as u8);
        assert_eq!(&wire[..6], &header[..]);
        let mut ad = b"E2EE-v1 group message".to_vec();
        ad.push(g as u8);
        ad.extend_from_slice(&group_id);
        // The sender's DeviceAddress: len || "alice" || device id 1.
        ad.extend_from_slice(&[5, b'a', b'l', b'i', b'c', b'e', 0, 0, 0, 1]);
        ad.extend_from_slice(&header);
        let body = &wire[6..wire.len() - 64];
        let mut signed = ad.clone();
        signed.extend_from_slice(body);
        let sig = Signature::from_bytes(&wire[wire.len() - 64..].try_into().unwrap());
        verifying.verify_strict(&signed, &sig).unwrap();
        let aes = Aes256Gcm::new_from_slice(&okm[..32]).unwrap();
        let plaintext = aes
            .decrypt(
                aes_gcm::Nonce::from_slice(&okm[32..]),
                aes_gcm::aead::Payload {
                    msg: body,
                    aad: &ad,
                },
            )
            .unwrap();
        assert_eq!(plaintext, m["plaintext"].as_str().unwrap().as_bytes());
        assert_eq!(
            m["message_id"].as_str().unwrap(),
            format!("{:08x}{:08x}", key_id, i)
        );
    }

    let distribution = SenderKeyDistribution::from_bytes(&dist).unwrap();
    let messages: Vec<Vec<u8>> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| h(&m["wire"]))
        .collect();
    let mut r = receiver(&distribution);
    for d in v["delivery"].as_array().unwrap() {
        let i = d["message"].as_u64().unwrap() as usize;
        let got = result_name(r.decrypt(&alice(), &messages[i]).map(|p| p.plaintext));
        assert_eq!(
            got,
            d["result"].as_str().unwrap(),
            "delivery of message {i}"
        );
    }
    for case in v["rejections"].as_array().unwrap() {
        let mut r = receiver(&distribution);
        let got = result_name(r.decrypt(&alice(), &h(&case["wire"])).map(|p| p.plaintext));
        assert_eq!(got, case["error"].as_str().unwrap(), "{}", case["name"]);
        assert!(!got.starts_with("ok"));
        // Nothing changed: the genuine message 1 still decrypts.
        assert!(
            r.decrypt(&alice(), &messages[1]).is_ok(),
            "{}",
            case["name"]
        );
    }

    // The late joiner reads message 6 and none before it.
    let late = SenderKeyDistribution::from_bytes(&h(&v["late_joiner"]["distribution"])).unwrap();
    assert_eq!(late.iteration(), 6);
    let mut carol = GroupSession::new(
        GroupId::new(&group_id).unwrap(),
        DeviceAddress::new("carol", 1).unwrap(),
    );
    carol.add_member(alice_member()).unwrap();
    carol.process_distribution(&alice_member(), &late).unwrap();
    for m in &messages {
        assert!(matches!(
            carol.decrypt(&alice(), m),
            Err(GroupError::Duplicate { .. })
        ));
    }
    assert_eq!(
        carol
            .decrypt(&alice(), &h(&v["late_joiner"]["readable"]))
            .unwrap()
            .plaintext,
        v["late_joiner"]["plaintext"].as_str().unwrap().as_bytes()
    );

    for c in v["contents"].as_array().unwrap() {
        let bytes = h(&c["bytes"]);
        assert_eq!(bytes.len() % 128, 0, "{}", c["name"]);
        let content = Content::from_bytes(&bytes).unwrap();
        assert_eq!(&content.to_bytes().unwrap()[..], &bytes[..]);
    }

    // Group session records decode canonically; the receiver's has seen every message.
    let sender_record = h(&v["records"]["sender_after_m5"]);
    let sender = GroupSession::from_bytes(&sender_record).unwrap();
    assert_eq!(&sender.to_bytes()[..], &sender_record[..]);
    assert_eq!(sender.own_address(), &alice());
    assert_eq!(sender.members().collect::<Vec<_>>(), [&bob()]);
    let receiver_record = h(&v["records"]["receiver_after_delivery"]);
    let mut stored = GroupSession::from_bytes(&receiver_record).unwrap();
    assert_eq!(&stored.to_bytes()[..], &receiver_record[..]);
    for m in &messages {
        assert!(matches!(
            stored.decrypt(&alice(), m),
            Err(GroupError::Duplicate { .. })
        ));
    }

    // Receipt tracking: the stored tracker plus carol's read receipt gives the recorded events.
    let tracker_bytes = h(&v["receipts"]["tracker"]);
    let mut tracker = ReceiptTracker::from_bytes(&tracker_bytes).unwrap();
    assert_eq!(tracker.to_bytes(), tracker_bytes);
    let Content::Receipt(receipt) =
        Content::from_bytes(&h(&v["receipts"]["next_receipt"])).unwrap()
    else {
        panic!("not a receipt");
    };
    let from = DeviceAddress::new("carol", 1).unwrap();
    let events: Vec<String> = tracker
        .record(&from, &receipt)
        .iter()
        .map(|e| format!("{e:?}"))
        .collect();
    let recorded: Vec<&str> = v["receipts"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(events, recorded);

    // The device list from its private inputs: keys, each device's binding, the account's
    // signature, all checked with ed25519-dalek directly.
    let account_seed: [u8; 32] = h(&v["inputs"]["account_secret"]).try_into().unwrap();
    let account_public = ed25519_dalek::SigningKey::from_bytes(&account_seed)
        .verifying_key()
        .to_bytes();
    assert_eq!(
        account_public.to_vec(),
        h(&v["device_list"]["account_public_key"])
    );
    let list_bytes = h(&v["device_list"]["list"]);
    // 0x01 || len 5 || "alice" || account (32) || version (8) || timestamp (8) || count (1).
    let entries_at = 1 + 6 + 32 + 16 + 1;
    assert_eq!(list_bytes[entries_at - 1], 2);
    for (i, secret) in v["inputs"]["device_identity_secrets"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let pair = IdentityKeyPair::from_secret_bytes(&h(secret)).unwrap();
        let entry = &list_bytes[entries_at + i * 196..entries_at + (i + 1) * 196];
        let device_id = i as u32 + 1;
        assert_eq!(&entry[..4], &device_id.to_be_bytes());
        assert_eq!(&entry[4..132], &pair.public().to_bytes()[..]);
        let mut signed = b"E2EE-v1 device binding".to_vec();
        signed.extend_from_slice(&pair.public().public_bytes());
        signed.extend_from_slice(&[5, b'a', b'l', b'i', b'c', b'e']);
        signed.extend_from_slice(&device_id.to_be_bytes());
        signed.extend_from_slice(&account_public);
        VerifyingKey::from_bytes(&pair.public().signing_key())
            .unwrap()
            .verify_strict(
                &signed,
                &Signature::from_bytes(entry[132..].try_into().unwrap()),
            )
            .unwrap();
    }
    let mut signed = b"E2EE-v1 device list".to_vec();
    signed.extend_from_slice(&list_bytes[..list_bytes.len() - 64]);
    VerifyingKey::from_bytes(&account_public)
        .unwrap()
        .verify_strict(
            &signed,
            &Signature::from_bytes(list_bytes[list_bytes.len() - 64..].try_into().unwrap()),
        )
        .unwrap();
    let directory_bytes = h(&v["device_list"]["directory"]);
    let directory = DeviceDirectory::from_bytes(&directory_bytes).unwrap();
    assert_eq!(directory.to_bytes(), directory_bytes);
    assert_eq!(
        directory.device_list("alice").unwrap().to_bytes(),
        list_bytes
    );

    let account =
        AccountIdentityKey::from_bytes(&h(&v["device_list"]["account_public_key"])).unwrap();
    let list = DeviceList::from_bytes(&h(&v["device_list"]["list"])).unwrap();
    list.verify(&account).unwrap();
    let forged =
        DeviceList::from_bytes(&h(&v["device_list"]["list_signed_by_another_key"])).unwrap();
    assert!(forged.verify(&account).is_err());
    let cert_bytes = h(&v["device_list"]["certificate"]);
    let cert = DeviceCertificate::from_bytes(&cert_bytes).unwrap();
    cert.verify(&account).unwrap();
    assert_eq!(cert.identity(), list.devices()[1].identity());

    // Account consents (protocol.md section 14), through the API and from the layout: version,
    // action, SHA-256 of the certificate, issued_at_ms, the account's signature.
    for (field, action, action_byte, issued_at_ms) in [
        (
            "enrol_consent",
            ConsentAction::Enrol,
            1u8,
            1_700_000_200_123u64,
        ),
        (
            "remove_consent",
            ConsentAction::Remove,
            2,
            1_700_000_900_456,
        ),
    ] {
        let bytes = h(&v["device_list"][field]);
        let consent = AccountConsent::from_bytes(&bytes).unwrap();
        consent.verify(&account, action, &cert).unwrap();
        let other = if action == ConsentAction::Enrol {
            ConsentAction::Remove
        } else {
            ConsentAction::Enrol
        };
        assert!(consent.verify(&account, other, &cert).is_err());
        assert_eq!(bytes.len(), 106);
        assert_eq!(&bytes[..2], &[1, action_byte]);
        assert_eq!(
            &bytes[2..34],
            &<Sha256 as sha2::Digest>::digest(&cert_bytes)[..]
        );
        assert_eq!(&bytes[34..42], &issued_at_ms.to_be_bytes());
        let mut signed = b"E2EE-v1 account consent".to_vec();
        signed.extend_from_slice(&bytes[..42]);
        VerifyingKey::from_bytes(&account_public)
            .unwrap()
            .verify_strict(
                &signed,
                &Signature::from_bytes(bytes[42..].try_into().unwrap()),
            )
            .unwrap();
    }
}
