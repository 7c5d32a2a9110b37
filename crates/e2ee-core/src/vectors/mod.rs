//! Every test vector file of the repository (`vectors/`): the 1:1 protocol, the group
//! layer (`groups.rs`) and relay tickets (`tickets.rs`), generated and checked here, with one
//! switch to regenerate them all.
//!
//! Every vector set has a generator that draws its private inputs from a seeded ChaCha20 RNG
//! and then runs the protocol code on them, recording every intermediate value. The code
//! never sees the seeded RNG itself: it only ever gets a [`ScriptedRng`] that hands out the
//! recorded input bytes, so a vector's recorded inputs alone determine every other value.
//!
//! Two tests:
//! * [`replay_committed_vectors`] reads the committed JSON, recomputes every vector from its
//!   recorded inputs through the code (and compares every recorded value), checks every
//!   intermediate value against the spec formulas with the primitive crates directly, and
//!   checks that each rejected input fails with the recorded error.
//! * [`committed_vectors_do_not_drift`] regenerates every file in memory and fails on any
//!   byte of difference. With `E2EE_REGENERATE_VECTORS=1` it writes the files instead:
//!   `E2EE_REGENERATE_VECTORS=1 cargo test -p e2ee-core vectors`.

mod conversation;
mod groups;
mod handshake;
mod media;
mod membership;
mod rejections;
mod safety;
mod spec;
mod tickets;

use std::path::PathBuf;

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    Codec, DeviceAddress, InMemoryStore, SessionCipher,
    dh::{DhKeyPair, DhPublicKey},
    message::{MessageKind, PreKeyMessage, RatchetMessage},
    ratchet::{ChainKey, RootKey},
    session::SessionState,
    store::SessionStore,
};

/// The vector files of the repository, in generation order.
const FILES: [&str; 8] = [
    "handshakes.json",
    "conversation.json",
    "safety_numbers.json",
    "rejections.json",
    "groups/groups.json",
    "tickets.json",
    "groups/membership.json",
    "media.json",
];

const REGENERATE_ENV: &str = "E2EE_REGENERATE_VECTORS";

fn vectors_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../vectors"))
}

fn read_file(name: &str) -> String {
    let path = vectors_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; regenerate with {REGENERATE_ENV}=1 cargo test -p e2ee-core vectors",
            path.display()
        )
    })
}

fn parse<T: DeserializeOwned>(name: &str) -> T {
    serde_json::from_str(&read_file(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The canonical text of a vector file: pretty JSON (two-space indent) plus a final newline.
pub(super) fn to_json<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap();
    text.push('\n');
    text
}

/// Every vector file, freshly generated.
fn generate_all() -> Vec<(&'static str, String)> {
    let handshakes = handshake::generate();
    let conversation = conversation::generate();
    let safety = safety::generate();
    let rejections = rejections::generate(&handshakes);
    vec![
        (FILES[0], to_json(&handshakes)),
        (FILES[1], to_json(&conversation)),
        (FILES[2], to_json(&safety)),
        (FILES[3], to_json(&rejections)),
        (FILES[4], to_json(&groups::generate())),
        (FILES[5], to_json(&tickets::generate())),
        (FILES[6], to_json(&membership::generate())),
        (FILES[7], to_json(&media::generate())),
    ]
}

#[test]
fn replay_committed_vectors() {
    let handshakes: handshake::HandshakeFile = parse(FILES[0]);
    handshake::replay(&handshakes);
    let conversation: conversation::ConversationFile = parse(FILES[1]);
    conversation::replay(&conversation);
    let safety: safety::SafetyFile = parse(FILES[2]);
    safety::replay(&safety);
    let rejections: rejections::RejectionFile = parse(FILES[3]);
    rejections::replay(&rejections, &handshakes);
}

#[test]
fn committed_vectors_do_not_drift() {
    let regenerate = std::env::var(REGENERATE_ENV).is_ok_and(|v| v == "1");
    let mut drifted = Vec::new();
    for (name, fresh) in generate_all() {
        let path = vectors_dir().join(name);
        if regenerate {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &fresh).unwrap();
            continue;
        }
        let committed = read_file(name);
        if committed != fresh {
            let line = committed
                .lines()
                .zip(fresh.lines())
                .position(|(a, b)| a != b)
                .map_or_else(|| "length".to_owned(), |i| format!("line {}", i + 1));
            drifted.push(format!("{name} (first difference at {line})"));
        }
    }
    assert!(
        drifted.is_empty(),
        "vectors drifted from the code: {drifted:?}. If the change is intended, regenerate \
         with {REGENERATE_ENV}=1 cargo test -p e2ee-core vectors and review the diff"
    );
}

// ---------------------------------------------------------------------------------------
// Shared helpers.

pub(super) fn h(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

pub(super) fn unh(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap_or_else(|e| panic!("bad hex {text:?}: {e}"))
}

pub(super) fn unh32(text: &str) -> [u8; 32] {
    unh(text).try_into().unwrap()
}

/// Fixed-size bytes from the seeded generator RNG.
pub(super) fn draw<const N: usize>(rng: &mut ChaCha20Rng) -> [u8; N] {
    let mut out = [0u8; N];
    rng.fill_bytes(&mut out);
    out
}

pub(super) fn seeded(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// An "RNG" that returns exactly the recorded input bytes, in order, and panics if the code
/// asks for more: this is how recorded private inputs reach code that takes an RNG.
pub(super) struct ScriptedRng {
    bytes: Vec<u8>,
    position: usize,
}

impl ScriptedRng {
    pub(super) fn new(chunks: &[&[u8]]) -> Self {
        Self {
            bytes: chunks.concat(),
            position: 0,
        }
    }

    pub(super) fn assert_used_up(&self) {
        assert_eq!(
            self.position,
            self.bytes.len(),
            "the code consumed less randomness than recorded"
        );
    }
}

impl RngCore for ScriptedRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let end = self.position + dest.len();
        assert!(
            end <= self.bytes.len(),
            "the code asked for more randomness than recorded"
        );
        dest.copy_from_slice(&self.bytes[self.position..end]);
        self.position = end;
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for ScriptedRng {}

/// One Double Ratchet root step, `RK', CK = HKDF(RK, DH(ours, theirs))`.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(super) struct RootStep {
    /// RK before the step (the HKDF salt).
    pub(super) root_key: String,
    /// The public key of the ratchet key pair generated for this step.
    pub(super) our_ratchet_public: String,
    /// The peer's ratchet public key.
    pub(super) their_ratchet_public: String,
    /// X25519(our ratchet secret, their ratchet public): the HKDF input key material.
    pub(super) dh_output: String,
    /// RK after the step (HKDF output bytes 0..32).
    pub(super) next_root_key: String,
    /// The new chain key CK_0 (HKDF output bytes 32..64).
    pub(super) chain_key: String,
}

pub(super) fn root_step(
    root: &RootKey,
    our_secret: [u8; 32],
    theirs: DhPublicKey,
) -> (RootStep, RootKey, ChainKey) {
    let ours = DhKeyPair::from_secret_bytes(our_secret);
    let dh = ours.agree(&theirs).unwrap();
    let (next_root, chain) = root.step(&ours, &theirs).unwrap();
    let step = RootStep {
        root_key: h(root.as_bytes()),
        our_ratchet_public: h(&ours.public().to_bytes()),
        their_ratchet_public: h(&theirs.to_bytes()),
        dh_output: h(dh.as_ref()),
        next_root_key: h(next_root.as_bytes()),
        chain_key: h(chain.as_bytes()),
    };
    (step, next_root, chain)
}

/// The symmetric-ratchet step that produced one message key, and the key's expansion.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(super) struct MessageKeys {
    /// N: the index of the chain key (and of the message).
    pub(super) chain_index: u32,
    /// CK_N.
    pub(super) chain_key: String,
    /// CK_{N+1} = HMAC-SHA256(CK_N, 0x02).
    pub(super) next_chain_key: String,
    /// MK = HMAC-SHA256(CK_N, 0x01).
    pub(super) message_key: String,
    /// HKDF(0^32, MK, "E2EE-v1_Ratchet_MessageKeys") bytes 0..32.
    pub(super) aes_key: String,
    /// The same HKDF output, bytes 32..44.
    pub(super) nonce: String,
}

pub(super) fn message_keys(chain: &ChainKey) -> MessageKeys {
    let mut next = chain.clone();
    let key = next.step();
    let expanded = crate::aead::expanded(&key, crate::kdf::INFO_MESSAGE_KEYS);
    MessageKeys {
        chain_index: chain.index(),
        chain_key: h(chain.as_bytes()),
        next_chain_key: h(next.as_bytes()),
        message_key: h(key.seed()),
        aes_key: h(&expanded[..32]),
        nonce: h(&expanded[32..]),
    }
}

/// A message as it goes on the wire, split into its parts.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(super) struct WireMessage {
    /// "prekey" (type 0x12, wrapping a ratchet message) or "ratchet" (type 0x11).
    pub(super) kind: String,
    /// Header field: the sender's ratchet public key.
    pub(super) ratchet_key: String,
    /// Header field PN.
    pub(super) previous_counter: u32,
    /// Header field N.
    pub(super) counter: u32,
    /// The ratchet message's header bytes (0x11 through N), appended to AD for the AEAD.
    pub(super) header: String,
    /// AES-256-GCM ciphertext || 16-byte tag.
    pub(super) ciphertext: String,
    /// The ratchet message (header || ciphertext), inner message of a prekey message.
    pub(super) ratchet_message: String,
    /// The full bytes sent.
    pub(super) wire: String,
}

pub(super) fn describe_wire(wire: &[u8], plaintext_len: usize) -> WireMessage {
    let (kind, message) = match MessageKind::of(wire).unwrap() {
        MessageKind::PreKey => ("prekey", PreKeyMessage::from_bytes(wire).unwrap().message),
        MessageKind::Ratchet => ("ratchet", RatchetMessage::from_bytes(wire).unwrap()),
    };
    let bytes = message.as_bytes();
    let header_len = bytes.len() - plaintext_len - 16;
    WireMessage {
        kind: kind.to_owned(),
        ratchet_key: h(&message.ratchet_key().to_bytes()),
        previous_counter: message.previous_counter(),
        counter: message.counter(),
        header: h(&bytes[..header_len]),
        ciphertext: h(&bytes[header_len..]),
        ratchet_message: h(bytes),
        wire: h(wire),
    }
}

/// The current session state `store` holds for `peer`.
pub(super) fn current_state(
    cipher: &SessionCipher,
    store: &InMemoryStore,
    peer: &DeviceAddress,
) -> SessionState {
    cipher
        .session(store, peer)
        .unwrap()
        .unwrap()
        .current
        .unwrap()
}

/// The serialised session record (to check that a failed decrypt changed nothing).
pub(super) fn record_bytes(store: &InMemoryStore, peer: &DeviceAddress) -> Option<Vec<u8>> {
    store
        .load_session(peer)
        .unwrap()
        .map(|record| record.to_bytes().to_vec())
}

pub(super) fn alice() -> DeviceAddress {
    DeviceAddress::new("alice", 1).unwrap()
}

pub(super) fn bob() -> DeviceAddress {
    DeviceAddress::new("bob", 1).unwrap()
}

/// Asserts two vectors are equal, naming the first differing field.
pub(super) fn assert_same<T: Serialize>(what: &str, committed: &T, recomputed: &T) {
    fn first_difference(
        path: &str,
        a: &serde_json::Value,
        b: &serde_json::Value,
    ) -> Option<String> {
        use serde_json::Value;
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for (key, value) in x {
                    let path = format!("{path}.{key}");
                    match y.get(key) {
                        Some(other) => {
                            if let Some(d) = first_difference(&path, value, other) {
                                return Some(d);
                            }
                        }
                        None => return Some(format!("{path}: missing when recomputed")),
                    }
                }
                y.keys()
                    .find(|k| !x.contains_key(*k))
                    .map(|k| format!("{path}.{k}: not recorded"))
            }
            (Value::Array(x), Value::Array(y)) => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    if let Some(d) = first_difference(&format!("{path}[{i}]"), p, q) {
                        return Some(d);
                    }
                }
                (x.len() != y.len())
                    .then(|| format!("{path}: {} recorded, {} recomputed", x.len(), y.len()))
            }
            _ => (a != b).then(|| format!("{path}: recorded {a}, recomputed {b}")),
        }
    }
    let a = serde_json::to_value(committed).unwrap();
    let b = serde_json::to_value(recomputed).unwrap();
    if let Some(difference) = first_difference(what, &a, &b) {
        panic!("vector does not replay: {difference}");
    }
}
