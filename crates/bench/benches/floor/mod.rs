//! The primitives e2ee-core is built on, called directly on inputs of the sizes e2ee-core
//! uses, and the floors: each protocol operation's exact sequence of primitive calls with
//! nothing else (no encoding, no state, no store). The counts follow pqxdh.rs,
//! session/state.rs, session_cipher.rs, identity.rs and prekeys.rs; docs/benchmarks.md lists
//! them.

use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag, aead::AeadInPlace};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use libcrux_ml_kem::mlkem768::{self, MlKem768Ciphertext, MlKem768KeyPair};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};

use crate::common::PLAINTEXT;

/// Signed message lengths: identity binding, device binding (context, identity, an address
/// of a 5-byte user id, account key), signed prekey, KEM prekey.
const IDENTITY_MESSAGE_LEN: usize = 19 + 32;
const DEVICE_BINDING_MESSAGE_LEN: usize = 22 + 64 + 10 + 32;
/// PQXDH info: label, SHA-256(PQPK), SHA-256(CT), both devices' addresses and account keys.
const HANDSHAKE_INFO_LEN: usize = 39 + 32 + 32 + 2 * (10 + 32);
const SIGNED_PREKEY_MESSAGE_LEN: usize = 21 + 44;
const KEM_PREKEY_MESSAGE_LEN: usize = 18 + 13 + 1184;
/// A ratchet message's AEAD associated data: handshake AD (128) and header (35).
const AEAD_AD_LEN: usize = 128 + 35;

pub(crate) struct Floor {
    rng: ChaCha20Rng,
    pub(crate) signing: SigningKey,
    pub(crate) verifying: VerifyingKey,
    pub(crate) verifying_bytes: [u8; 32],
    pub(crate) identity_message: [u8; IDENTITY_MESSAGE_LEN],
    identity_signature: Signature,
    binding_message: [u8; DEVICE_BINDING_MESSAGE_LEN],
    binding_signature: Signature,
    pub(crate) prekey_message: [u8; SIGNED_PREKEY_MESSAGE_LEN],
    pub(crate) prekey_signature: Signature,
    pub(crate) kem_message: Vec<u8>,
    pub(crate) kem_signature: Signature,
    dh_secret: StaticSecret,
    dh_public: PublicKey,
    pub(crate) kem: MlKem768KeyPair,
    pub(crate) kem_ciphertext: MlKem768Ciphertext,
    chain_key: [u8; 32],
    message_key: [u8; 32],
    sealed: Vec<u8>,
    tag: Tag,
}

impl Floor {
    pub(crate) fn new(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let signing = SigningKey::generate(&mut rng);
        let verifying = signing.verifying_key();
        let identity_message = [1u8; IDENTITY_MESSAGE_LEN];
        let binding_message = [7u8; DEVICE_BINDING_MESSAGE_LEN];
        let prekey_message = [2u8; SIGNED_PREKEY_MESSAGE_LEN];
        let kem_message = vec![3u8; KEM_PREKEY_MESSAGE_LEN];
        let (dh_secret, _) = keygen(&mut rng);
        let (_, dh_public) = keygen(&mut rng);
        let mut seed = [0u8; 64];
        rng.fill_bytes(&mut seed);
        let kem = mlkem768::generate_key_pair(seed);
        let mut randomness = [0u8; 32];
        rng.fill_bytes(&mut randomness);
        let (kem_ciphertext, _) = mlkem768::encapsulate(kem.public_key(), randomness);
        let message_key = [4u8; 32];
        let (key, nonce) = message_keys(&message_key);
        let mut sealed = PLAINTEXT.to_vec();
        let tag = Aes256Gcm::new(&key.into())
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &[6; AEAD_AD_LEN], &mut sealed)
            .unwrap();
        Self {
            identity_signature: signing.sign(&identity_message),
            binding_signature: signing.sign(&binding_message),
            binding_message,
            prekey_signature: signing.sign(&prekey_message),
            kem_signature: signing.sign(&kem_message),
            verifying_bytes: verifying.to_bytes(),
            rng,
            signing,
            verifying,
            identity_message,
            prekey_message,
            kem_message,
            dh_secret,
            dh_public,
            kem,
            kem_ciphertext,
            chain_key: [5u8; 32],
            message_key,
            sealed,
            tag,
        }
    }

    // --- primitives ---

    pub(crate) fn keygen(&mut self) -> (StaticSecret, PublicKey) {
        keygen(&mut self.rng)
    }

    pub(crate) fn dh(&self) -> [u8; 32] {
        let shared = self.dh_secret.diffie_hellman(&self.dh_public);
        assert!(shared.was_contributory());
        shared.to_bytes()
    }

    pub(crate) fn decode_identity(&self) -> VerifyingKey {
        VerifyingKey::from_bytes(&self.verifying_bytes).unwrap()
    }

    pub(crate) fn verify_identity(&self, key: &VerifyingKey) {
        key.verify_strict(&self.identity_message, &self.identity_signature)
            .unwrap();
    }

    /// The device binding's signature (bundle or first message).
    pub(crate) fn verify_binding(&self) {
        self.verifying
            .verify_strict(&self.binding_message, &self.binding_signature)
            .unwrap();
    }

    /// SHA-256 of the KEM encapsulation key and of the ciphertext (K1's info).
    pub(crate) fn kem_hashes(&self) -> [u8; 64] {
        use sha2::Digest;
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&Sha256::digest(self.kem.public_key().as_slice()));
        out[32..].copy_from_slice(&Sha256::digest(self.kem_ciphertext.as_slice()));
        out
    }

    pub(crate) fn verify_prekey(&self) {
        self.verifying
            .verify_strict(&self.prekey_message, &self.prekey_signature)
            .unwrap();
    }

    pub(crate) fn verify_kem_prekey(&self) {
        self.verifying
            .verify_strict(&self.kem_message, &self.kem_signature)
            .unwrap();
    }

    pub(crate) fn encapsulate(&mut self) -> [u8; 32] {
        let mut randomness = [0u8; 32];
        self.rng.fill_bytes(&mut randomness);
        mlkem768::encapsulate(self.kem.public_key(), randomness).1
    }

    pub(crate) fn decapsulate(&self) -> [u8; 32] {
        mlkem768::decapsulate(self.kem.private_key(), &self.kem_ciphertext)
    }

    pub(crate) fn validate_kem_key(&self) {
        assert!(mlkem768::validate_public_key(self.kem.public_key()));
    }

    /// PQXDH: salt 0^32, ikm 0xFF^32 || DH1..DH4 || SS (192 bytes), the info with the KEM
    /// hashes and both bindings, 32 bytes out.
    pub(crate) fn handshake_kdf(ikm: &[u8; 192]) -> [u8; 32] {
        let mut out = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&[0u8; 32]), ikm)
            .expand(&[8u8; HANDSHAKE_INFO_LEN], &mut out)
            .unwrap();
        out
    }

    /// Root step: salt RK, ikm the DH output, 64 bytes out.
    pub(crate) fn root_kdf(root: &[u8; 32], dh: &[u8; 32]) -> [u8; 64] {
        let mut out = [0u8; 64];
        Hkdf::<Sha256>::new(Some(root), dh)
            .expand(b"E2EE-v1_Ratchet_Root", &mut out)
            .unwrap();
        out
    }

    /// Chain step: MK = HMAC(CK, 0x01), CK' = HMAC(CK, 0x02), one keyed state.
    pub(crate) fn chain_step(chain: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(chain).unwrap();
        let mut message = keyed.clone();
        message.update(&[1]);
        let mut next = keyed;
        next.update(&[2]);
        (
            message.finalize().into_bytes().into(),
            next.finalize().into_bytes().into(),
        )
    }

    /// Message keys: salt none, ikm MK, AES-256 key || nonce out (44 bytes).
    pub(crate) fn message_kdf(message_key: &[u8; 32]) -> ([u8; 32], [u8; 12]) {
        message_keys(message_key)
    }

    /// AES-256-GCM under a fresh key (as every message has): key schedule + seal of 100 bytes.
    pub(crate) fn seal(key: &[u8; 32], nonce: &[u8; 12]) -> (Vec<u8>, Tag) {
        let mut buffer = PLAINTEXT.to_vec();
        let tag = Aes256Gcm::new(key.into())
            .encrypt_in_place_detached(Nonce::from_slice(nonce), &[6; AEAD_AD_LEN], &mut buffer)
            .unwrap();
        (buffer, tag)
    }

    /// Key schedule + open of 100 bytes.
    pub(crate) fn open(&self, key: &[u8; 32], nonce: &[u8; 12]) -> Vec<u8> {
        let mut buffer = self.sealed.clone();
        // The tag only verifies under the fixture's key; any other key costs the same.
        let _ = Aes256Gcm::new(key.into()).decrypt_in_place_detached(
            Nonce::from_slice(nonce),
            &[6; AEAD_AD_LEN],
            &mut buffer,
            &self.tag,
        );
        buffer
    }

    pub(crate) fn fixture_message_keys(&self) -> ([u8; 32], [u8; 12]) {
        message_keys(&self.message_key)
    }

    // --- floors: each operation's primitive calls, in order, and nothing else ---

    /// `process_bundle`: 3 signature checks (device binding, signed prekey, KEM prekey), EK,
    /// DH1..DH4, encapsulation, the KEM hashes, SK, first ratchet key and root step.
    pub(crate) fn initiator(&mut self) -> [u8; 64] {
        self.verify_binding();
        self.verify_prekey();
        self.verify_kem_prekey();
        let _ephemeral = self.keygen();
        let mut ikm = [0xffu8; 192];
        for i in 0..4 {
            ikm[32 + 32 * i..64 + 32 * i].copy_from_slice(&self.dh());
        }
        ikm[160..].copy_from_slice(&self.encapsulate());
        let _hashes = self.kem_hashes();
        let shared = Self::handshake_kdf(&ikm);
        let _ratchet = self.keygen();
        Self::root_kdf(&shared, &self.dh())
    }

    /// Decoding the bundle first adds the identity key's and the binding's account key's
    /// point decoding, the identity's own signature, and the KEM key's validation.
    pub(crate) fn initiator_from_bytes(&mut self) -> [u8; 64] {
        let identity = self.decode_identity();
        let _account = self.decode_identity();
        self.verify_identity(&identity);
        self.validate_kem_key();
        self.initiator()
    }

    /// Decrypting the first message: the initiator identity's and its binding's account key's
    /// point decoding, the identity's own signature and the device binding's, DH1..DH4,
    /// decapsulation, the KEM hashes, SK, the receiving root step and the first message (chain
    /// step, message keys, AES-GCM open).
    pub(crate) fn responder(&self) -> Vec<u8> {
        let identity = self.decode_identity();
        let _account = self.decode_identity();
        self.verify_identity(&identity);
        self.verify_binding();
        let mut ikm = [0xffu8; 192];
        for i in 0..4 {
            ikm[32 + 32 * i..64 + 32 * i].copy_from_slice(&self.dh());
        }
        ikm[160..].copy_from_slice(&self.decapsulate());
        let _hashes = self.kem_hashes();
        let shared = Self::handshake_kdf(&ikm);
        let root = Self::root_kdf(&shared, &self.dh());
        let mut chain = [0u8; 32];
        chain.copy_from_slice(&root[32..]);
        let (message_key, _) = Self::chain_step(&chain);
        let (key, nonce) = Self::message_kdf(&message_key);
        self.open(&key, &nonce)
    }

    /// Encrypt on an existing chain: chain step, message keys, seal.
    pub(crate) fn encrypt(&self) -> (Vec<u8>, Tag) {
        let (message_key, _) = Self::chain_step(&self.chain_key);
        let (key, nonce) = Self::message_kdf(&message_key);
        Self::seal(&key, &nonce)
    }

    /// Decrypt on an existing chain: chain step, message keys, open.
    pub(crate) fn decrypt(&self) -> Vec<u8> {
        let (message_key, _) = Self::chain_step(&self.chain_key);
        let (key, nonce) = Self::message_kdf(&message_key);
        self.open(&key, &nonce)
    }

    /// One message that is a DH ratchet step on both sides: sender (new ratchet key, DH,
    /// root step, chain step, message keys, seal), receiver (DH, root step, chain step,
    /// message keys, open).
    fn ratchet_message(&mut self) -> Vec<u8> {
        let _ratchet = self.keygen();
        let root = Self::root_kdf(&self.chain_key, &self.dh());
        let mut chain = [0u8; 32];
        chain.copy_from_slice(&root[32..]);
        let (message_key, _) = Self::chain_step(&chain);
        let (key, nonce) = Self::message_kdf(&message_key);
        let _sealed = Self::seal(&key, &nonce);
        let root = Self::root_kdf(&self.chain_key, &self.dh());
        chain.copy_from_slice(&root[32..]);
        let (message_key, _) = Self::chain_step(&chain);
        let (key, nonce) = Self::message_kdf(&message_key);
        self.open(&key, &nonce)
    }

    /// A ping-pong round trip: two such messages.
    pub(crate) fn round_trip(&mut self) -> Vec<u8> {
        self.ratchet_message();
        self.ratchet_message()
    }
}

fn keygen(rng: &mut ChaCha20Rng) -> (StaticSecret, PublicKey) {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    let secret = StaticSecret::from(bytes);
    let public = PublicKey::from(&secret);
    (secret, public)
}

fn message_keys(message_key: &[u8; 32]) -> ([u8; 32], [u8; 12]) {
    let mut out = [0u8; 44];
    Hkdf::<Sha256>::new(None, message_key)
        .expand(b"E2EE-v1_Ratchet_MessageKeys", &mut out)
        .unwrap();
    let mut key = [0u8; 32];
    let mut nonce = [0u8; 12];
    key.copy_from_slice(&out[..32]);
    nonce.copy_from_slice(&out[32..]);
    (key, nonce)
}
