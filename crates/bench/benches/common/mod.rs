//! Fixtures shared by the benchmark and `tests/wire_size.rs`: two devices of ours and two
//! vodozemac Olm accounts, each pair with an established session.

// Each includer uses a different subset. A fixture that fails is a bug in the code under
// test: it must stop the run, not produce a number.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use e2ee_core::{
    DeviceAddress, IdentityKeyPair, InMemoryStore, KemPreKey, KemPreKeyKind, OneTimePreKey,
    PreKeyBundle, SessionCipher, SessionRecord, SignedPreKey,
    device::{AccountIdentityKeyPair, DeviceBinding},
};
use rand_core::{CryptoRng, RngCore};
use vodozemac::olm::{Account, OlmMessage, Session, SessionConfig as OlmConfig};

/// The payload of every benchmarked message.
pub(crate) const PLAINTEXT: [u8; 100] = [0x42; 100];

const CREATED_AT: u64 = 1_700_000_000;

/// A device `user.1` of a fresh account: its identity's binding.
fn binding(
    rng: &mut (impl RngCore + CryptoRng),
    identity: &IdentityKeyPair,
    user: &str,
) -> DeviceBinding {
    let account = AccountIdentityKeyPair::generate(rng);
    DeviceBinding::sign(
        identity,
        DeviceAddress::new(user, 1).unwrap(),
        account.public(),
    )
}

/// The responder: its keys (kept so a fresh store can be made per iteration), its bundle
/// and its long-lived store.
pub(crate) struct Responder {
    pub(crate) identity: IdentityKeyPair,
    binding: DeviceBinding,
    signed_prekey: SignedPreKey,
    one_time_prekey: OneTimePreKey,
    kem_prekey: KemPreKey,
    pub(crate) bundle: PreKeyBundle,
    pub(crate) store: InMemoryStore,
}

impl Responder {
    fn new(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let identity = IdentityKeyPair::generate(rng);
        let binding = binding(rng, &identity, "bob");
        let signed_prekey = SignedPreKey::generate(rng, &identity, 1, CREATED_AT);
        let one_time_prekey = OneTimePreKey::generate_batch(rng, 1, 1).remove(0);
        let kem_prekey = KemPreKey::generate(rng, &identity, 1, KemPreKeyKind::OneTime, CREATED_AT);
        let bundle = PreKeyBundle {
            identity: *identity.public(),
            binding: binding.clone(),
            signed_prekey: signed_prekey.public().clone(),
            one_time_prekey: Some(one_time_prekey.public()),
            kem_prekey: Some(kem_prekey.public().clone()),
        };
        let mut responder = Self {
            store: InMemoryStore::new(identity.clone(), binding.clone()),
            identity,
            binding,
            signed_prekey,
            one_time_prekey,
            kem_prekey,
            bundle,
        };
        responder.store = responder.fresh_store();
        responder
    }

    /// A store holding the prekeys the bundle names, none of them used yet.
    pub(crate) fn fresh_store(&self) -> InMemoryStore {
        let mut store = InMemoryStore::new(self.identity.clone(), self.binding.clone());
        store.add_signed_prekey(self.signed_prekey.clone());
        store.add_one_time_prekeys([self.one_time_prekey.clone()]);
        store.add_kem_prekey(self.kem_prekey.clone());
        store
    }
}

/// Alice (initiator) and Bob (responder), e2ee-core.
pub(crate) struct Ours {
    alice_identity: IdentityKeyPair,
    alice_binding: DeviceBinding,
    pub(crate) alice: InMemoryStore,
    pub(crate) bob: Responder,
    pub(crate) alice_address: DeviceAddress,
    pub(crate) bob_address: DeviceAddress,
}

impl Ours {
    pub(crate) fn new(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let alice_identity = IdentityKeyPair::generate(rng);
        let alice_binding = binding(rng, &alice_identity, "alice");
        Self {
            alice: InMemoryStore::new(alice_identity.clone(), alice_binding.clone()),
            alice_identity,
            alice_binding,
            bob: Responder::new(rng),
            alice_address: DeviceAddress::new("alice", 1).unwrap(),
            bob_address: DeviceAddress::new("bob", 1).unwrap(),
        }
    }

    /// A store for Alice with no session.
    pub(crate) fn alice_store(&self) -> InMemoryStore {
        InMemoryStore::new(self.alice_identity.clone(), self.alice_binding.clone())
    }

    /// A first (PreKey) message from a fresh Alice store to Bob's bundle.
    pub(crate) fn first_message(&self, rng: &mut (impl RngCore + CryptoRng)) -> Vec<u8> {
        let cipher = SessionCipher::default();
        let mut store = self.alice_store();
        cipher
            .process_bundle(&mut store, rng, &self.bob_address, &self.bob.bundle)
            .unwrap();
        cipher
            .encrypt(&mut store, rng, &self.bob_address, &PLAINTEXT)
            .unwrap()
    }

    /// Establishes the session in both long-lived stores: A->B (first message), B->A (a DH
    /// step), A->B (a DH step). Bob's next message is a DH step; Alice's is on her chain.
    pub(crate) fn establish(&mut self, rng: &mut (impl RngCore + CryptoRng)) {
        let cipher = SessionCipher::default();
        let (a, b) = (&self.alice_address, &self.bob_address);
        cipher
            .process_bundle(&mut self.alice, rng, b, &self.bob.bundle)
            .unwrap();
        for _ in 0..2 {
            let bytes = cipher.encrypt(&mut self.alice, rng, b, &PLAINTEXT).unwrap();
            assert_eq!(
                cipher.decrypt(&mut self.bob.store, a, &bytes).unwrap(),
                PLAINTEXT
            );
            let bytes = cipher
                .encrypt(&mut self.bob.store, rng, a, &PLAINTEXT)
                .unwrap();
            assert_eq!(
                cipher.decrypt(&mut self.alice, b, &bytes).unwrap(),
                PLAINTEXT
            );
        }
        let bytes = cipher.encrypt(&mut self.alice, rng, b, &PLAINTEXT).unwrap();
        assert_eq!(
            cipher.decrypt(&mut self.bob.store, a, &bytes).unwrap(),
            PLAINTEXT
        );
    }

    /// A store for Alice holding `states` sessions with Bob, each created by a first message
    /// from Bob (a fresh handshake against Alice's last-resort KEM prekey), so each state has
    /// a receiving chain. The newest is current; the rest are archived.
    pub(crate) fn victim_store(
        &self,
        rng: &mut (impl RngCore + CryptoRng),
        states: usize,
    ) -> InMemoryStore {
        let cipher = SessionCipher::default();
        let signed = SignedPreKey::generate(rng, &self.alice_identity, 1, CREATED_AT);
        let kem = KemPreKey::generate(
            rng,
            &self.alice_identity,
            1,
            KemPreKeyKind::LastResort,
            CREATED_AT,
        );
        let bundle = PreKeyBundle {
            identity: *self.alice_identity.public(),
            binding: self.alice_binding.clone(),
            signed_prekey: signed.public().clone(),
            one_time_prekey: None,
            kem_prekey: Some(kem.public().clone()),
        };
        let mut victim = self.alice_store();
        victim.add_signed_prekey(signed);
        victim.add_kem_prekey(kem);
        for _ in 0..states {
            let mut bob = InMemoryStore::new(self.bob.identity.clone(), self.bob.binding.clone());
            cipher
                .process_bundle(&mut bob, rng, &self.alice_address, &bundle)
                .unwrap();
            let first = cipher
                .encrypt(&mut bob, rng, &self.alice_address, &PLAINTEXT)
                .unwrap();
            cipher
                .decrypt(&mut victim, &self.bob_address, &first)
                .unwrap();
        }
        victim
    }

    /// A copy of Alice's session record (the session-level API, no store).
    pub(crate) fn alice_session(&self) -> SessionRecord {
        SessionCipher::default()
            .session(&self.alice, &self.bob_address)
            .unwrap()
            .unwrap()
    }

    /// A copy of Bob's session record.
    pub(crate) fn bob_session(&self) -> SessionRecord {
        SessionCipher::default()
            .session(&self.bob.store, &self.alice_address)
            .unwrap()
            .unwrap()
    }
}

/// Alice and Bob, vodozemac Olm (the default, version 1 session configuration).
pub(crate) struct Olm {
    pub(crate) alice: Session,
    pub(crate) bob: Session,
}

impl Olm {
    /// Same message pattern as [`Ours::establish`].
    pub(crate) fn established() -> Self {
        let alice_account = Account::new();
        let mut bob_account = Account::new();
        bob_account.generate_one_time_keys(1);
        let otk = *bob_account.one_time_keys().values().next().unwrap();
        bob_account.mark_keys_as_published();
        let mut alice = alice_account
            .create_outbound_session(OlmConfig::version_1(), bob_account.curve25519_key(), otk)
            .unwrap();
        let OlmMessage::PreKey(first) = alice.encrypt(PLAINTEXT).unwrap() else {
            panic!("the first Olm message is a pre-key message");
        };
        let created = bob_account
            .create_inbound_session(
                OlmConfig::version_1(),
                alice_account.curve25519_key(),
                &first,
            )
            .unwrap();
        assert_eq!(created.plaintext, PLAINTEXT);
        let mut olm = Self {
            alice,
            bob: created.session,
        };
        for _ in 0..2 {
            let message = olm.bob.encrypt(PLAINTEXT).unwrap();
            assert_eq!(olm.alice.decrypt(&message).unwrap(), PLAINTEXT);
            let message = olm.alice.encrypt(PLAINTEXT).unwrap();
            assert_eq!(olm.bob.decrypt(&message).unwrap(), PLAINTEXT);
        }
        olm
    }
}

/// Bytes on the wire for a 5-byte message on an established session: (ours, Olm).
pub(crate) fn wire_sizes() -> (usize, usize) {
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(9);
    let mut ours = Ours::new(&mut rng);
    ours.establish(&mut rng);
    let ours_len = ours
        .alice_session()
        .encrypt(&mut rng, b"hello")
        .unwrap()
        .len();
    let mut olm = Olm::established();
    let (_, olm_bytes) = olm.alice.encrypt(b"hello").unwrap().to_parts();
    (ours_len, olm_bytes.len())
}
