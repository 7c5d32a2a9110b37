//! `e2ee demo`: the protocol core alone. Two in-process devices set up a PQXDH session and
//! exchange messages through the Double Ratchet, then compare safety numbers.

use e2ee_core::{
    Codec, DeviceAddress, Error, IdentityKeyPair, InMemoryStore, KemPreKey, KemPreKeyKind,
    OneTimePreKey, PreKeyBundle, SafetyNumber, SessionCipher, SignedPreKey,
    device::{AccountIdentityKeyPair, DeviceBinding},
};
use rand_core::OsRng;

pub(crate) fn run() -> Result<(), Error> {
    let cipher = SessionCipher::default();
    let (alice_addr, bob_addr) = (
        DeviceAddress::new("alice", 1)?,
        DeviceAddress::new("bob", 1)?,
    );
    // Each user has an account key; each device binds its identity to its address under it.
    let (alice_account, bob_account) = (
        AccountIdentityKeyPair::generate(&mut OsRng),
        AccountIdentityKeyPair::generate(&mut OsRng),
    );
    let alice_identity = IdentityKeyPair::generate(&mut OsRng);
    let alice_binding =
        DeviceBinding::sign(&alice_identity, alice_addr.clone(), alice_account.public());
    let mut alice = InMemoryStore::new(alice_identity, alice_binding);
    let bob_identity = IdentityKeyPair::generate(&mut OsRng);
    let bob_binding = DeviceBinding::sign(&bob_identity, bob_addr.clone(), bob_account.public());
    let mut bob = InMemoryStore::new(bob_identity.clone(), bob_binding.clone());

    // Bob publishes prekeys (normally uploaded to the key server).
    let spk = SignedPreKey::generate(&mut OsRng, &bob_identity, 1, now());
    let otks = OneTimePreKey::generate_batch(&mut OsRng, 1, 10);
    let kem = KemPreKey::generate(&mut OsRng, &bob_identity, 1, KemPreKeyKind::OneTime, now());
    let bundle = PreKeyBundle {
        identity: *bob_identity.public(),
        binding: bob_binding,
        signed_prekey: spk.public().clone(),
        one_time_prekey: Some(otks[0].public()),
        kem_prekey: Some(kem.public().clone()),
    };
    bob.add_signed_prekey(spk);
    bob.add_one_time_prekeys(otks);
    bob.add_kem_prekey(kem);
    println!(
        "bob's prekey bundle: {} bytes (ML-KEM-768 key included)",
        bundle.to_bytes().len()
    );

    // Alice starts a session from the bundle and talks.
    cipher.process_bundle(&mut alice, &mut OsRng, &bob_addr, &bundle)?;
    let script: [(bool, &str); 6] = [
        (true, "hi bob, this is post-quantum"),
        (true, "second message before you answer"),
        (false, "hi alice!"),
        (true, "every reply is a DH ratchet step"),
        (false, "and keys are deleted as we go"),
        (true, "bye"),
    ];
    for (from_alice, text) in script {
        let (sender, receiver, from, to, name) = if from_alice {
            (&mut alice, &mut bob, &alice_addr, &bob_addr, "alice")
        } else {
            (&mut bob, &mut alice, &bob_addr, &alice_addr, "bob  ")
        };
        let wire = cipher.encrypt(sender, &mut OsRng, to, text.as_bytes())?;
        let plaintext = cipher.decrypt(receiver, from, &wire)?;
        println!(
            "{name} -> {:>4} wire bytes (type 0x{:02x}) -> {:?}",
            wire.len(),
            wire[0],
            String::from_utf8_lossy(&plaintext)
        );
    }

    // Safety numbers are computed over the account keys: one number per pair of users.
    let number = |mine: &AccountIdentityKeyPair,
                  my: &DeviceAddress,
                  theirs: &AccountIdentityKeyPair,
                  peer: &DeviceAddress| {
        SafetyNumber::new(
            my.user_id().as_bytes(),
            &mine.public().to_array(),
            peer.user_id().as_bytes(),
            &theirs.public().to_array(),
        )
        .displayable()
        .to_owned()
    };
    let (a, b) = (
        number(&alice_account, &alice_addr, &bob_account, &bob_addr),
        number(&bob_account, &bob_addr, &alice_account, &alice_addr),
    );
    println!("safety number (alice's view): {a}");
    println!("safety number (bob's view):   {b}");
    println!("safety numbers match: {}", a == b);
    Ok(())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
