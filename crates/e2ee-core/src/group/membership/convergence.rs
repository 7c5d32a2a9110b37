//! The convergence property: random changes by random people (authorised or not), sent to
//! everyone with loss, duplication, delay and reordering, then one exchange of what each
//! holds. Every member ends on the same state, no unauthorised change is held anywhere, and
//! people outside the final group cannot read the next message of any member.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::{tests::*, *};
use crate::{
    DeviceAddress,
    device::VerifiedDevice,
    group::{GroupError, GroupSession},
};

const NAMES: [&str; 6] = ["alice", "bob", "carol", "dave", "eve", "mallory"];

struct Net {
    rng: ChaCha20Rng,
    /// (due step, recipient, change)
    queue: Vec<(usize, usize, GroupChange)>,
}

impl Net {
    fn send(&mut self, now: usize, from: usize, change: &GroupChange) {
        for to in 0..NAMES.len() {
            if to == from {
                continue;
            }
            let roll = self.rng.next_u32() % 10;
            // 1 in 10 lost, 1 in 10 duplicated.
            let copies = match roll {
                0 => 0,
                1 => 2,
                _ => 1,
            };
            for _ in 0..copies {
                let delay = (self.rng.next_u32() % 6) as usize;
                self.queue.push((now + delay, to, change.clone()));
            }
        }
    }

    /// Takes the messages due by `now`, in a random order.
    fn due(&mut self, now: usize) -> Vec<(usize, GroupChange)> {
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.queue.len() {
            if self.queue[i].0 <= now {
                let (_, to, change) = self.queue.swap_remove(i);
                due.push((to, change));
            } else {
                i += 1;
            }
        }
        for i in (1..due.len()).rev() {
            let j = (self.rng.next_u32() as usize) % (i + 1);
            due.swap(i, j);
        }
        due
    }
}

fn operation(people: &[Person], actor: usize, kind: u8, target: usize, step: usize) -> Operation {
    let user = people[target].user.clone();
    match kind {
        0 => people[target].add(Role::Member),
        1 => Operation::Remove { user },
        2 => Operation::Leave,
        3 => Operation::Promote { user },
        4 => Operation::Demote { user },
        5 => Operation::SetName(format!("{} at {step}", NAMES[actor])),
        _ => Operation::SetSettings(GroupSettings {
            only_admins_send: false,
            only_admins_edit_info: step.is_multiple_of(2),
        }),
    }
}

fn deliver(history: &mut GroupHistory, change: GroupChange, unauthorised: &BTreeSet<[u8; 32]>) {
    let hash = *change.hash();
    match history.receive(change) {
        Ok(_) => {}
        // A change refused where it attaches is one that was never authorised.
        Err(e) => assert!(
            unauthorised.contains(&hash),
            "authorised change refused: {e}"
        ),
    }
}

fn device(person: &Person) -> VerifiedDevice {
    VerifiedDevice::assume_verified(
        DeviceAddress::new(person.user.as_str(), 1).unwrap(),
        *person.identity.public(),
    )
}

fn run(seed: u64, actions: &[(usize, u8, usize)]) {
    let people: Vec<Person> = NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| Person::new(n, i as u64 + 1))
        .collect();
    let mut net = Net {
        rng: ChaCha20Rng::seed_from_u64(seed),
        queue: Vec::new(),
    };
    let mut histories: Vec<GroupHistory> = people
        .iter()
        .map(|_| GroupHistory::new(group_id()))
        .collect();
    let (creation, _) = histories[0]
        .commit(
            &people[0].signer(),
            vec![
                people[0].add(Role::Admin),
                people[1].add(Role::Admin),
                people[2].add(Role::Member),
                people[3].add(Role::Member),
            ],
        )
        .unwrap();
    for h in histories.iter_mut().skip(1) {
        h.receive(creation.clone()).unwrap();
    }
    // Every first member holds every other's sender key, as after a first round of messages.
    let initial = histories[0].state().clone();
    let mut sessions: Vec<GroupSession> = people
        .iter()
        .map(|p| GroupSession::new(group_id(), DeviceAddress::new(p.user.as_str(), 1).unwrap()))
        .collect();
    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 1);
    let first_members: Vec<usize> = (0..people.len())
        .filter(|i| initial.member(NAMES[*i]).is_some())
        .collect();
    for &i in &first_members {
        sessions[i]
            .set_members(first_members.iter().map(|&j| device(&people[j])))
            .unwrap();
    }
    for &i in &first_members {
        let send = sessions[i].encrypt(&mut rng, b"hello").unwrap();
        let distribution = send.distribution.unwrap();
        for &j in first_members.iter().filter(|j| **j != i) {
            sessions[j]
                .process_distribution(&device(&people[i]), &distribution)
                .unwrap();
        }
    }

    let mut unauthorised = BTreeSet::new();
    for (step, &(actor, kind, target)) in actions.iter().enumerate() {
        let op = operation(&people, actor, kind, target, step);
        let head = histories[actor].state().clone();
        let change = GroupChange::sign(
            &people[actor].signer(),
            head.group_id(),
            head.version(),
            histories[actor].state_hash(),
            vec![op],
        )
        .unwrap();
        if rules::apply(&head, &change).is_ok() {
            histories[actor].receive(change.clone()).unwrap();
        } else {
            unauthorised.insert(*change.hash());
        }
        // Unauthorised changes are sent too: that is what an attacker does.
        net.send(step, actor, &change);
        for (to, change) in net.due(step) {
            deliver(&mut histories[to], change, &unauthorised);
        }
    }
    for (to, change) in net.due(usize::MAX) {
        deliver(&mut histories[to], change, &unauthorised);
    }
    // What was lost comes back through sync: everyone answers everyone, until nothing moves.
    for _ in 0..NAMES.len() {
        for from in 0..NAMES.len() {
            let changes = histories[from].changes_after(0).unwrap();
            for (to, history) in histories.iter_mut().enumerate() {
                if to != from {
                    for change in &changes {
                        deliver(history, change.clone(), &unauthorised);
                    }
                }
            }
        }
    }

    let head = histories[0].state_hash();
    for (i, h) in histories.iter().enumerate() {
        assert_eq!(h.state_hash(), head, "{} disagrees", NAMES[i]);
        assert_eq!(h.held(), 0);
        for change in h.changes_after(0).unwrap() {
            assert!(!unauthorised.contains(change.hash()));
        }
    }
    // The head replays from the creation through the rules alone.
    let final_state = histories[0].state().clone();
    let mut replay = GroupState::empty(group_id());
    for change in canonical_path(&histories[0]) {
        replay = rules::apply(&replay, &change).unwrap();
    }
    assert_eq!(replay, final_state);

    // Everyone still in the group sends once more, to the members the state lists.
    let members: Vec<usize> = (0..people.len())
        .filter(|i| final_state.member(NAMES[*i]).is_some())
        .collect();
    for &i in &members {
        sessions[i]
            .set_members(members.iter().map(|&j| device(&people[j])))
            .unwrap();
    }
    for &i in &members {
        let send = sessions[i].encrypt(&mut rng, b"after").unwrap();
        let from = DeviceAddress::new(NAMES[i], 1).unwrap();
        for j in 0..people.len() {
            if j == i {
                continue;
            }
            if members.contains(&j) {
                let to = DeviceAddress::new(NAMES[j], 1).unwrap();
                if let Some(d) = send
                    .distribution
                    .as_ref()
                    .filter(|_| send.distribute_to.contains(&to))
                {
                    sessions[j]
                        .process_distribution(&device(&people[i]), d)
                        .unwrap();
                }
                let got = sessions[j].decrypt(&from, &send.message).unwrap();
                assert_eq!(got.plaintext, b"after");
            } else {
                let refused = sessions[j].decrypt(&from, &send.message);
                assert!(
                    matches!(
                        refused,
                        Err(GroupError::UnknownSenderKey { .. } | GroupError::NotAMember(_))
                    ),
                    "{} outside the group read {}'s message: {refused:?}",
                    NAMES[j],
                    NAMES[i]
                );
            }
        }
    }
}

/// The changes from the creation to the head, oldest first.
fn canonical_path(history: &GroupHistory) -> Vec<GroupChange> {
    let all = history.changes_after(0).unwrap();
    let mut path = Vec::new();
    let mut at = history.state_hash();
    let mut state_of = std::collections::HashMap::new();
    // Recompute each held state's hash by replaying every held change from the creation.
    let mut states = vec![GroupState::empty(group_id())];
    for change in &all {
        if let Some(parent) = states.iter().find(|s| s.hash() == *change.previous_hash()) {
            let next = rules::apply(parent, change).unwrap();
            state_of.insert(next.hash(), change.clone());
            states.push(next);
        }
    }
    while let Some(change) = state_of.get(&at) {
        path.push(change.clone());
        at = *change.previous_hash();
    }
    path.reverse();
    path
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn members_converge_and_nothing_unauthorised_is_applied(
        seed in any::<u64>(),
        actions in prop::collection::vec((0..NAMES.len(), 0..7u8, 0..NAMES.len()), 1..30),
    ) {
        run(seed, &actions);
    }
}
