//! Property tests: random interleavings with loss, duplication and reordering.

use proptest::prelude::*;

use super::harness::{Device, established};
use crate::{DecryptError, Error, SessionStore};

#[derive(Debug, Clone)]
enum Step {
    /// Alice (true) or Bob (false) sends a message.
    Send(bool),
    /// Deliver the in-flight message at this (wrapped) position to Alice/Bob.
    Deliver(bool, usize),
    /// Drop an in-flight message.
    Drop(bool, usize),
    /// Re-deliver an already delivered message.
    Replay(bool, usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => any::<bool>().prop_map(Step::Send),
        4 => (any::<bool>(), any::<usize>()).prop_map(|(a, i)| Step::Deliver(a, i)),
        1 => (any::<bool>(), any::<usize>()).prop_map(|(a, i)| Step::Drop(a, i)),
        1 => (any::<bool>(), any::<usize>()).prop_map(|(a, i)| Step::Replay(a, i)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Every delivered message decrypts exactly once to its plaintext; replays fail with a
    /// typed duplicate error; drops and reordering never break the session.
    #[test]
    fn every_delivered_message_decrypts_exactly_once(seed in 0u64..1_000_000, steps in prop::collection::vec(step(), 1..120)) {
        let (mut alice, mut bob) = established(seed);
        let (a, b) = (alice.address.clone(), bob.address.clone());
        // In flight towards Alice (index 0) and Bob (index 1), and delivered ones.
        let mut in_flight: [Vec<(Vec<u8>, Vec<u8>)>; 2] = [Vec::new(), Vec::new()];
        let mut delivered: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
        let mut counter = 0u32;
        for step in steps {
            match step {
                Step::Send(from_alice) => {
                    counter += 1;
                    let plaintext = format!("message {counter}").into_bytes();
                    if from_alice {
                        in_flight[1].push((alice.encrypt(&b, &plaintext), plaintext));
                    } else {
                        in_flight[0].push((bob.encrypt(&a, &plaintext), plaintext));
                    }
                }
                Step::Deliver(to_alice, i) => {
                    let queue = &mut in_flight[usize::from(!to_alice)];
                    if queue.is_empty() { continue; }
                    let (bytes, plaintext) = queue.remove(i % queue.len());
                    let result = if to_alice { alice.decrypt(&b, &bytes) } else { bob.decrypt(&a, &bytes) };
                    prop_assert_eq!(result.as_deref().ok(), Some(&plaintext[..]), "{:?}", result);
                    delivered[usize::from(!to_alice)].push(bytes);
                }
                Step::Drop(to_alice, i) => {
                    let queue = &mut in_flight[usize::from(!to_alice)];
                    if !queue.is_empty() { queue.remove(i % queue.len()); }
                }
                Step::Replay(to_alice, i) => {
                    let done = &delivered[usize::from(!to_alice)];
                    if done.is_empty() { continue; }
                    let bytes = done[i % done.len()].clone();
                    let result = if to_alice { alice.decrypt(&b, &bytes) } else { bob.decrypt(&a, &bytes) };
                    // Never decrypted twice. While the message's chain is kept the error says
                    // Duplicate; once the chain was dropped (MAX_RECEIVER_CHAINS) the replay
                    // is indistinguishable from a forged new chain and fails authentication.
                    prop_assert!(
                        matches!(result, Err(Error::Decrypt(DecryptError::Duplicate { .. } | DecryptError::AuthenticationFailed))),
                        "{:?}", result
                    );
                }
            }
        }
        // Whatever happened, the session still works both ways.
        let m = alice.encrypt(&b, b"final a");
        prop_assert_eq!(bob.decrypt(&a, &m).unwrap(), b"final a");
        let m = bob.encrypt(&a, b"final b");
        prop_assert_eq!(alice.decrypt(&b, &m).unwrap(), b"final b");
    }

    /// Any single flipped bit in any message fails to decrypt and the session stays usable.
    #[test]
    fn single_bit_flips_fail_and_session_survives(seed in 0u64..1_000_000, len in 0usize..200, bit in any::<usize>(), ratchets in 0usize..3) {
        let (mut alice, mut bob) = established(seed);
        let (a, b) = (alice.address.clone(), bob.address.clone());
        for _ in 0..ratchets {
            let m = alice.encrypt(&b, b"r");
            bob.decrypt(&a, &m).unwrap();
            let m = bob.encrypt(&a, b"r");
            alice.decrypt(&b, &m).unwrap();
        }
        let plaintext = vec![0x5a; len];
        let msg = alice.encrypt(&b, &plaintext);
        let mut bad = msg.clone();
        let bit = bit % (msg.len() * 8);
        bad[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(bob.decrypt(&a, &bad).is_err());
        prop_assert_eq!(bob.decrypt(&a, &msg).unwrap(), plaintext);
    }

    /// Both sides initiate at once and messages cross in any order: everything decrypts and
    /// after one strict round trip both use the same session.
    #[test]
    fn simultaneous_initiation_converges(seed in 0u64..1_000_000, alice_first in 1usize..4, bob_first in 1usize..4, order in any::<u64>()) {
        let mut alice = Device::new("alice", seed);
        let mut bob = Device::new("bob", seed.wrapping_add(1_000_003));
        let (a, b) = (alice.address.clone(), bob.address.clone());
        alice.start_session(&mut bob);
        bob.start_session(&mut alice);
        let mut to_bob: Vec<_> = (0..alice_first).map(|i| (alice.encrypt(&b, &[i as u8]), vec![i as u8])).collect();
        let mut to_alice: Vec<_> = (0..bob_first).map(|i| (bob.encrypt(&a, &[100 + i as u8]), vec![100 + i as u8])).collect();
        let mut bits = order;
        while !to_bob.is_empty() || !to_alice.is_empty() {
            let pick_bob = to_alice.is_empty() || (!to_bob.is_empty() && bits & 1 == 1);
            bits = bits.rotate_right(1);
            if pick_bob {
                let (m, p) = to_bob.remove((bits as usize) % to_bob.len());
                prop_assert_eq!(bob.decrypt(&a, &m).unwrap(), p);
            } else {
                let (m, p) = to_alice.remove((bits as usize) % to_alice.len());
                prop_assert_eq!(alice.decrypt(&b, &m).unwrap(), p);
            }
        }
        for round in 0..2u8 {
            let m = alice.encrypt(&b, &[round]);
            prop_assert_eq!(bob.decrypt(&a, &m).unwrap(), vec![round]);
            let m = bob.encrypt(&a, &[round]);
            prop_assert_eq!(alice.decrypt(&b, &m).unwrap(), vec![round]);
        }
        let ra = alice.store.load_session(&b).unwrap().unwrap();
        let rb = bob.store.load_session(&a).unwrap().unwrap();
        prop_assert_eq!(ra.current.as_ref().unwrap().handshake_id, rb.current.as_ref().unwrap().handshake_id);
    }
}
