//! (a) Handshake vectors: PQXDH with and without a one-time prekey, and plain X3DH.

use serde::{Deserialize, Serialize};

use super::{
    MessageKeys, RootStep, ScriptedRng, WireMessage, alice, current_state, describe_wire, draw, h,
    message_keys, root_step, seeded, spec, unh, unh32,
};
use crate::{
    Codec, DeviceAddress, IdentityKeyPair, InMemoryStore, KemPreKey, KemPreKeyKind, OneTimePreKey,
    PreKeyBundle, SessionCipher, SessionConfig, SessionRecord, SignedPreKey,
    device::{AccountIdentityKeyPair, DeviceBinding},
    message::PreKeyMessage,
    pqxdh,
    ratchet::RootKey,
    session::SessionState,
    store::SessionStore,
};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(super) struct HandshakeFile {
    pub(super) description: String,
    pub(super) vectors: Vec<HandshakeVector>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(super) struct HandshakeVector {
    pub(super) name: String,
    pub(super) description: String,
    pub(super) inputs: HandshakeInputs,
    pub(super) derived: HandshakeDerived,
}

/// Everything secret or chosen: together they determine every derived value.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(super) struct HandshakeInputs {
    /// Both sides' configuration (`SessionConfig::allow_plain_x3dh`).
    pub(super) allow_plain_x3dh: bool,
    /// Initiator (Alice) identity secret: Ed25519 seed (32) || X25519 secret (32).
    pub(super) initiator_identity_secret: String,
    /// Responder (Bob) identity secret, same layout.
    pub(super) responder_identity_secret: String,
    /// Initiator's account identity secret (Ed25519 seed, 32).
    pub(super) initiator_account_secret: String,
    /// Responder's account identity secret (Ed25519 seed, 32).
    pub(super) responder_account_secret: String,
    /// Initiator's address (user id, device id).
    pub(super) initiator_address: AddressInput,
    /// Responder's address.
    pub(super) responder_address: AddressInput,
    pub(super) signed_prekey: SignedPreKeyInput,
    pub(super) one_time_prekey: Option<OneTimePreKeyInput>,
    pub(super) kem_prekey: Option<KemPreKeyInput>,
    /// EK_A secret (X25519, 32 raw bytes; clamping happens inside X25519).
    pub(super) initiator_ephemeral_secret: String,
    /// The 32-byte message `m` of ML-KEM-768.Encaps (FIPS 203), if a KEM prekey is used.
    pub(super) kem_encapsulation_randomness: Option<String>,
    /// The initiator's first ratchet key secret (X25519).
    pub(super) initiator_ratchet_secret: String,
    /// The first message's plaintext (UTF-8).
    pub(super) first_plaintext: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(super) struct AddressInput {
    pub(super) user_id: String,
    pub(super) device_id: u32,
}

impl AddressInput {
    pub(super) fn address(&self) -> DeviceAddress {
        DeviceAddress::new(self.user_id.as_str(), self.device_id).unwrap()
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(super) struct SignedPreKeyInput {
    pub(super) id: u32,
    pub(super) created_at: u64,
    /// X25519 secret.
    pub(super) secret: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(super) struct OneTimePreKeyInput {
    pub(super) id: u32,
    /// X25519 secret.
    pub(super) secret: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(super) struct KemPreKeyInput {
    pub(super) id: u32,
    /// "one-time" or "last-resort".
    pub(super) kind: String,
    pub(super) created_at: u64,
    /// ML-KEM-768.KeyGen seed d || z (64 bytes, FIPS 203).
    pub(super) keygen_seed: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(super) struct HandshakeDerived {
    /// Encoded IdentityKey (128): Ed25519 pub || X25519 pub || binding signature.
    pub(super) initiator_identity_key: String,
    pub(super) responder_identity_key: String,
    /// Account identity keys (Ed25519 public, 32).
    pub(super) initiator_account_key: String,
    pub(super) responder_account_key: String,
    /// Encoded DeviceBinding of each side: DeviceAddress || account key || signature.
    pub(super) initiator_binding: String,
    pub(super) responder_binding: String,
    /// Encoded SignedPreKeyPublic (108).
    pub(super) signed_prekey_public: String,
    /// Encoded OneTimePreKeyPublic (36).
    pub(super) one_time_prekey_public: Option<String>,
    /// Encoded KemPreKeyPublic (1261).
    pub(super) kem_prekey_public: Option<String>,
    /// ML-KEM-768 decapsulation key (2400), as KeyGen derives it from the seed.
    pub(super) kem_decapsulation_key: Option<String>,
    /// The encoded PreKeyBundle the initiator processes.
    pub(super) bundle: String,
    /// EK_A public.
    pub(super) initiator_ephemeral_public: String,
    /// DH1 = X25519(IK_A, SPK_B).
    pub(super) dh1: String,
    /// DH2 = X25519(EK_A, IK_B).
    pub(super) dh2: String,
    /// DH3 = X25519(EK_A, SPK_B).
    pub(super) dh3: String,
    /// DH4 = X25519(EK_A, OPK_B), only with a one-time prekey.
    pub(super) dh4: Option<String>,
    pub(super) kem_ciphertext: Option<String>,
    pub(super) kem_shared_secret: Option<String>,
    /// HKDF info: label || [SHA-256(PQPK) || SHA-256(CT)] || DeviceAddress(A) || account A
    /// || DeviceAddress(B) || account B.
    pub(super) kdf_info: String,
    /// HKDF input key material: 0xFF^32 || DH1 || DH2 || DH3 [|| DH4] [|| SS].
    pub(super) kdf_input: String,
    /// SK = HKDF-SHA256(salt = 0^32, kdf_input, kdf_info), 32 bytes.
    pub(super) shared_key: String,
    /// AD = IK_A (Ed25519 || X25519) || IK_B (Ed25519 || X25519), 128 bytes.
    pub(super) associated_data: String,
    /// The initiator's first root step: RK = SK, DH(ratchet, SPK_B).
    pub(super) initial_root_step: RootStep,
    /// The keys of the first message (chain index 0).
    pub(super) first_message_keys: MessageKeys,
    /// The first message: a prekey message wrapping ratchet message 0.
    pub(super) first_message: WireMessage,
    /// SHA-256 of the first message's bytes before the wrapped ratchet message.
    pub(super) handshake_digest: String,
    /// The handshake id: SHA-256(CT) with a KEM part, else the base key.
    pub(super) handshake_id: String,
    /// The initiator's session record after sending the first message (docs/protocol.md
    /// section 10; secret).
    pub(super) initiator_record: String,
    /// The responder's session record after accepting the first message.
    pub(super) responder_record: String,
}

fn kind_name(kind: KemPreKeyKind) -> &'static str {
    match kind {
        KemPreKeyKind::OneTime => "one-time",
        KemPreKeyKind::LastResort => "last-resort",
    }
}

fn kind_from_name(name: &str) -> KemPreKeyKind {
    match name {
        "one-time" => KemPreKeyKind::OneTime,
        "last-resort" => KemPreKeyKind::LastResort,
        other => panic!("unknown KEM prekey kind {other:?}"),
    }
}

/// The key objects the inputs describe.
pub(super) struct Keys {
    pub(super) initiator: IdentityKeyPair,
    pub(super) responder: IdentityKeyPair,
    pub(super) initiator_binding: DeviceBinding,
    pub(super) responder_binding: DeviceBinding,
    pub(super) signed_prekey: SignedPreKey,
    pub(super) one_time_prekey: Option<OneTimePreKey>,
    pub(super) kem_prekey: Option<KemPreKey>,
}

impl HandshakeInputs {
    pub(super) fn keys(&self) -> Keys {
        let initiator =
            IdentityKeyPair::from_secret_bytes(&unh(&self.initiator_identity_secret)).unwrap();
        let responder =
            IdentityKeyPair::from_secret_bytes(&unh(&self.responder_identity_secret)).unwrap();
        let account = |secret: &str| {
            AccountIdentityKeyPair::from_secret_bytes(&unh(secret))
                .unwrap()
                .public()
        };
        let initiator_binding = DeviceBinding::sign(
            &initiator,
            self.initiator_address.address(),
            account(&self.initiator_account_secret),
        );
        let responder_binding = DeviceBinding::sign(
            &responder,
            self.responder_address.address(),
            account(&self.responder_account_secret),
        );
        let spk = &self.signed_prekey;
        let mut rng = ScriptedRng::new(&[&unh(&spk.secret)]);
        let signed_prekey = SignedPreKey::generate(&mut rng, &responder, spk.id, spk.created_at);
        rng.assert_used_up();
        let one_time_prekey = self
            .one_time_prekey
            .as_ref()
            .map(|k| OneTimePreKey::from_parts(k.id, unh32(&k.secret)));
        let kem_prekey = self.kem_prekey.as_ref().map(|k| {
            let mut rng = ScriptedRng::new(&[&unh(&k.keygen_seed)]);
            let key = KemPreKey::generate(
                &mut rng,
                &responder,
                k.id,
                kind_from_name(&k.kind),
                k.created_at,
            );
            rng.assert_used_up();
            key
        });
        Keys {
            initiator,
            responder,
            initiator_binding,
            responder_binding,
            signed_prekey,
            one_time_prekey,
            kem_prekey,
        }
    }

    pub(super) fn config(&self) -> SessionConfig {
        SessionConfig {
            allow_plain_x3dh: self.allow_plain_x3dh,
        }
    }

    /// The randomness the initiator's session set-up consumes, in order.
    pub(super) fn initiator_rng(&self) -> ScriptedRng {
        let ephemeral = unh(&self.initiator_ephemeral_secret);
        let kem = self
            .kem_encapsulation_randomness
            .as_deref()
            .map(unh)
            .unwrap_or_default();
        let ratchet = unh(&self.initiator_ratchet_secret);
        ScriptedRng::new(&[&ephemeral, &kem, &ratchet])
    }
}

impl Keys {
    pub(super) fn bundle(&self) -> PreKeyBundle {
        PreKeyBundle {
            identity: *self.responder.public(),
            binding: self.responder_binding.clone(),
            signed_prekey: self.signed_prekey.public().clone(),
            one_time_prekey: self.one_time_prekey.as_ref().map(|k| k.public()),
            kem_prekey: self.kem_prekey.as_ref().map(|k| k.public().clone()),
        }
    }

    /// The initiator's store, with no session.
    pub(super) fn initiator_store(&self) -> InMemoryStore {
        InMemoryStore::new(self.initiator.clone(), self.initiator_binding.clone())
    }

    /// The responder's store holding exactly the prekeys the inputs name.
    pub(super) fn responder_store(&self) -> InMemoryStore {
        let mut store = InMemoryStore::new(self.responder.clone(), self.responder_binding.clone());
        store.add_signed_prekey(self.signed_prekey.clone());
        store.add_one_time_prekeys(self.one_time_prekey.clone());
        if let Some(kem) = &self.kem_prekey {
            store.add_kem_prekey(kem.clone());
        }
        store
    }
}

/// Runs the initiator's side: the handshake secrets, the state and the first message.
pub(super) fn initiate(inputs: &HandshakeInputs) -> (pqxdh::Initiated, SessionState, Vec<u8>) {
    let keys = inputs.keys();
    let bundle = keys.bundle();
    let mut rng = inputs.initiator_rng();
    let initiated = pqxdh::initiate(
        &mut rng,
        &keys.initiator,
        &keys.initiator_binding,
        &bundle,
        inputs.allow_plain_x3dh,
    )
    .unwrap();
    let mut state = SessionState::new_initiator(
        &mut rng,
        &initiated.secrets.shared_key,
        initiated.associated_data,
        *keys.initiator.public(),
        bundle.identity,
        bundle.signed_prekey.key,
        initiated.parts.clone(),
    )
    .unwrap();
    rng.assert_used_up();
    let first = state
        .encrypt(
            &mut ScriptedRng::new(&[]),
            inputs.first_plaintext.as_bytes(),
        )
        .unwrap();
    (initiated, state, first)
}

pub(super) fn compute(name: &str, description: &str, inputs: HandshakeInputs) -> HandshakeVector {
    let keys = inputs.keys();
    let bundle = keys.bundle();
    let (initiated, state, wire) = initiate(&inputs);
    let secrets = &initiated.secrets;

    // The initial root step and the first message's keys, recomputed from SK.
    let (initial_root_step, root, chain) = root_step(
        &RootKey::new(*secrets.shared_key),
        unh32(&inputs.initiator_ratchet_secret),
        bundle.signed_prekey.key,
    );
    assert_eq!(root.as_bytes(), state.root_key.as_bytes());
    let first_message_keys = message_keys(&chain);
    assert_eq!(
        first_message_keys.next_chain_key,
        h(state.sending_chain.as_ref().unwrap().as_bytes())
    );
    let plaintext = inputs.first_plaintext.as_bytes();
    let first_message = describe_wire(&wire, plaintext.len());

    // The responder derives the same secrets from the first message...
    let decoded = PreKeyMessage::from_bytes(&wire).unwrap();
    assert_eq!(decoded.parts, initiated.parts);
    let kem_input = keys
        .kem_prekey
        .as_ref()
        .zip(decoded.parts.kem.as_ref())
        .map(|(key, (_, ciphertext))| (key, &**ciphertext));
    let (responder_secrets, responder_ad) = pqxdh::respond(
        &keys.responder,
        &keys.responder_binding,
        &decoded.parts,
        &keys.signed_prekey,
        keys.one_time_prekey.as_ref(),
        kem_input,
        inputs.allow_plain_x3dh,
    )
    .unwrap();
    assert_eq!(*responder_secrets.shared_key, *secrets.shared_key);
    assert_eq!(responder_ad, initiated.associated_data);
    // ...and the session API decrypts it and lands on the same root key.
    let mut store = keys.responder_store();
    let cipher = SessionCipher::new(inputs.config());
    assert_eq!(
        cipher.decrypt(&mut store, &alice(), &wire).unwrap(),
        plaintext
    );
    assert_eq!(
        current_state(&cipher, &store, &alice()).root_key.as_bytes(),
        state.root_key.as_bytes()
    );
    assert_eq!(store.one_time_prekey_count(), 0, "one-time prekey consumed");
    let responder_record = h(&store.load_session(&alice()).unwrap().unwrap().to_bytes());
    let mut initiator_record = SessionRecord::new();
    initiator_record.promote(state.clone());
    let initiator_record = h(&initiator_record.to_bytes());

    let dh: Vec<String> = secrets.dh.iter().map(|d| h(d.as_ref())).collect();
    let mut kdf_input = vec![0xffu8; 32];
    for d in &secrets.dh {
        kdf_input.extend_from_slice(d.as_ref());
    }
    if let Some(ss) = &secrets.kem_shared_secret {
        kdf_input.extend_from_slice(ss.as_ref());
    }
    let info = pqxdh::kdf_info(
        keys.kem_prekey
            .as_ref()
            .zip(initiated.parts.kem.as_ref())
            .map(|(key, (_, ciphertext))| (&key.public().key, &**ciphertext)),
        &keys.initiator_binding,
        &keys.responder_binding,
    );
    let ephemeral = crate::DhKeyPair::from_secret_bytes(unh32(&inputs.initiator_ephemeral_secret));
    assert_eq!(ephemeral.public(), initiated.parts.base_key);

    let derived = HandshakeDerived {
        initiator_identity_key: h(&keys.initiator.public().to_bytes()),
        responder_identity_key: h(&keys.responder.public().to_bytes()),
        initiator_account_key: h(&keys.initiator_binding.account().to_bytes()),
        responder_account_key: h(&keys.responder_binding.account().to_bytes()),
        initiator_binding: h(&keys.initiator_binding.to_bytes()),
        responder_binding: h(&keys.responder_binding.to_bytes()),
        signed_prekey_public: h(&keys.signed_prekey.public().to_bytes()),
        one_time_prekey_public: keys
            .one_time_prekey
            .as_ref()
            .map(|k| h(&k.public().to_bytes())),
        kem_prekey_public: keys.kem_prekey.as_ref().map(|k| h(&k.public().to_bytes())),
        kem_decapsulation_key: keys
            .kem_prekey
            .as_ref()
            .map(|k| h(k.key_pair().secret_bytes())),
        bundle: h(&bundle.to_bytes()),
        initiator_ephemeral_public: h(&ephemeral.public().to_bytes()),
        dh1: dh[0].clone(),
        dh2: dh[1].clone(),
        dh3: dh[2].clone(),
        dh4: dh.get(3).cloned(),
        kem_ciphertext: initiated.parts.kem.as_ref().map(|(_, ct)| h(ct.as_slice())),
        kem_shared_secret: secrets.kem_shared_secret.as_ref().map(|s| h(s.as_ref())),
        kdf_info: h(&info),
        kdf_input: h(&kdf_input),
        shared_key: h(secrets.shared_key.as_ref()),
        associated_data: h(&initiated.associated_data),
        initial_root_step,
        first_message_keys,
        first_message,
        handshake_digest: h(decoded.handshake_digest()),
        handshake_id: h(decoded.parts.handshake_id().as_bytes()),
        initiator_record,
        responder_record,
    };
    HandshakeVector {
        name: name.to_owned(),
        description: description.to_owned(),
        inputs,
        derived,
    }
}

/// Draws one handshake's inputs from a seeded RNG.
fn draw_inputs(
    seed: u64,
    one_time: bool,
    kem: Option<KemPreKeyKind>,
    plaintext: &str,
) -> HandshakeInputs {
    let mut rng = seeded(seed);
    let initiator_identity_secret = h(&draw::<64>(&mut rng));
    let responder_identity_secret = h(&draw::<64>(&mut rng));
    let initiator_account_secret = h(&draw::<32>(&mut rng));
    let responder_account_secret = h(&draw::<32>(&mut rng));
    let signed_prekey = SignedPreKeyInput {
        id: 7,
        created_at: 1_700_000_000,
        secret: h(&draw::<32>(&mut rng)),
    };
    let one_time_prekey = one_time.then(|| OneTimePreKeyInput {
        id: 42,
        secret: h(&draw::<32>(&mut rng)),
    });
    let kem_prekey = kem.map(|kind| KemPreKeyInput {
        id: match kind {
            KemPreKeyKind::OneTime => 43,
            KemPreKeyKind::LastResort => 1000,
        },
        kind: kind_name(kind).to_owned(),
        created_at: 1_700_000_100,
        keygen_seed: h(&draw::<64>(&mut rng)),
    });
    let initiator_ephemeral_secret = h(&draw::<32>(&mut rng));
    let kem_encapsulation_randomness = kem.map(|_| h(&draw::<32>(&mut rng)));
    let initiator_ratchet_secret = h(&draw::<32>(&mut rng));
    HandshakeInputs {
        allow_plain_x3dh: kem.is_none(),
        initiator_identity_secret,
        responder_identity_secret,
        initiator_account_secret,
        responder_account_secret,
        initiator_address: AddressInput {
            user_id: "alice".to_owned(),
            device_id: 1,
        },
        responder_address: AddressInput {
            user_id: "bob".to_owned(),
            device_id: 1,
        },
        signed_prekey,
        one_time_prekey,
        kem_prekey,
        initiator_ephemeral_secret,
        kem_encapsulation_randomness,
        initiator_ratchet_secret,
        first_plaintext: plaintext.to_owned(),
    }
}

pub(super) fn generate() -> HandshakeFile {
    let cases = [
        (
            "pqxdh_one_time_prekey",
            "PQXDH with a one-time X25519 prekey and a one-time ML-KEM-768 prekey (DH1..DH4 + SS)",
            draw_inputs(
                101,
                true,
                Some(KemPreKeyKind::OneTime),
                "Hello Bob, PQXDH with OPK",
            ),
        ),
        (
            "pqxdh_last_resort",
            "PQXDH without a one-time X25519 prekey, with the last-resort ML-KEM-768 prekey (DH1..DH3 + SS)",
            draw_inputs(
                102,
                false,
                Some(KemPreKeyKind::LastResort),
                "Hello Bob, PQXDH, no OPK",
            ),
        ),
        (
            "x3dh_plain",
            "Plain X3DH (no KEM prekey; both sides opted in with allow_plain_x3dh), with a one-time prekey",
            draw_inputs(103, true, None, "Hello Bob, plain X3DH"),
        ),
    ];
    HandshakeFile {
        description: "PQXDH / X3DH session set-up between initiator Alice and responder Bob. \
                      Schema: vectors/README.md. Generated by crates/e2ee-core/src/vectors/handshake.rs."
            .to_owned(),
        vectors: cases
            .into_iter()
            .map(|(name, description, inputs)| compute(name, description, inputs))
            .collect(),
    }
}

pub(super) fn replay(file: &HandshakeFile) {
    assert_eq!(file.vectors.len(), 3);
    for vector in &file.vectors {
        let again = compute(&vector.name, &vector.description, vector.inputs.clone());
        super::assert_same(&vector.name, vector, &again);
        spec::check_handshake(vector);
    }
}
