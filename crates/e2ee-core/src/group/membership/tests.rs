//! Membership rules, conflict rule, limits, encodings, and the convergence property.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::{
    Codec, DeviceAddress, IdentityKeyPair, UserId,
    device::{AccountIdentityKeyPair, DeviceBinding, DeviceCertificate},
    group::GroupId,
};

/// One user with one device: its account, its device identity and the certificate.
pub(crate) struct Person {
    pub(crate) user: UserId,
    pub(crate) account: AccountIdentityKeyPair,
    pub(crate) identity: IdentityKeyPair,
    pub(crate) certificate: DeviceCertificate,
}

impl Person {
    pub(crate) fn new(name: &str, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let account = AccountIdentityKeyPair::generate(&mut rng);
        Self::with_account(name, account, seed)
    }

    /// A device of `name` certified by `account` (another account than the group pinned
    /// makes an impostor).
    pub(crate) fn with_account(name: &str, account: AccountIdentityKeyPair, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x5eed);
        let identity = IdentityKeyPair::generate(&mut rng);
        let address = DeviceAddress::new(name, 1).unwrap();
        let binding = DeviceBinding::sign(&identity, address, account.public());
        let certificate =
            DeviceCertificate::sign(&account, identity.public(), &binding, 1_700_000_000).unwrap();
        Self {
            user: UserId::new(name).unwrap(),
            account,
            identity,
            certificate,
        }
    }

    pub(crate) fn signer(&self) -> GroupSigner<'_> {
        GroupSigner::new(&self.identity, self.certificate.clone()).unwrap()
    }

    pub(crate) fn add(&self, role: Role) -> Operation {
        Operation::Add {
            user: self.user.clone(),
            account: self.account.public(),
            role,
        }
    }
}

pub(crate) fn group_id() -> GroupId {
    GroupId::new(&[0x61; 32]).unwrap()
}

/// A group alice created with the others as plain members.
fn created(alice: &Person, others: &[&Person]) -> (GroupHistory, GroupChange) {
    let mut history = GroupHistory::new(group_id());
    let mut ops = vec![alice.add(Role::Admin), Operation::SetName("friends".into())];
    ops.extend(others.iter().map(|p| p.add(Role::Member)));
    let (change, _) = history.commit(&alice.signer(), ops).unwrap();
    (history, change)
}

/// Signs a change without checking that it applies (what an attacker or a stale member
/// sends).
fn forge(by: &Person, on: &GroupState, ops: Vec<Operation>) -> GroupChange {
    GroupChange::sign(&by.signer(), on.group_id(), on.version(), on.hash(), ops).unwrap()
}

fn applied(r: Result<Received, MembershipError>) -> Update {
    match r.unwrap() {
        Received::Applied(update) => update,
        other => panic!("not applied: {other:?}"),
    }
}

#[test]
fn a_created_group_has_its_creator_as_admin_and_its_members() {
    let (alice, bob) = (Person::new("alice", 1), Person::new("bob", 2));
    let (history, change) = created(&alice, &[&bob]);
    let state = history.state();
    assert_eq!(state.version(), 1);
    assert_eq!(state.name(), "friends");
    assert!(state.is_admin("alice"));
    assert_eq!(state.member("bob").unwrap().role, Role::Member);
    assert_eq!(state.member("bob").unwrap().account, bob.account.public());
    assert_eq!(change.version(), 1);
    assert_eq!(
        change.previous_hash(),
        &GroupState::empty(group_id()).hash()
    );

    // Bob builds the same state from the change alone.
    let mut bobs = GroupHistory::new(group_id());
    applied(bobs.receive(change));
    assert_eq!(bobs.state(), history.state());
    assert_eq!(bobs.state_hash(), history.state_hash());
}

#[test]
fn a_creation_must_add_its_signer_as_admin_first() {
    let (alice, bob) = (Person::new("alice", 1), Person::new("bob", 2));
    let empty = GroupState::empty(group_id());
    for ops in [
        vec![bob.add(Role::Admin)],
        vec![alice.add(Role::Member)],
        vec![Operation::SetName("x".into()), alice.add(Role::Admin)],
    ] {
        let change = forge(&alice, &empty, ops);
        let mut history = GroupHistory::new(group_id());
        assert_eq!(
            history.receive(change),
            Err(MembershipError::InvalidCreation)
        );
        assert_eq!(history.state().version(), 0);
    }
    // Adding oneself under another account key is no creation either.
    let other = AccountIdentityKeyPair::generate(&mut ChaCha20Rng::seed_from_u64(9));
    let change = forge(
        &alice,
        &empty,
        vec![Operation::Add {
            user: alice.user.clone(),
            account: other.public(),
            role: Role::Admin,
        }],
    );
    assert_eq!(
        GroupHistory::new(group_id()).receive(change),
        Err(MembershipError::InvalidCreation)
    );
}

#[test]
fn only_a_signer_with_the_role_at_version_n_changes_the_group() {
    let (alice, bob, carol) = (
        Person::new("alice", 1),
        Person::new("bob", 2),
        Person::new("carol", 3),
    );
    let (mut history, _) = created(&alice, &[&bob]);
    let before = history.state().clone();

    // A member may not add, remove, promote, demote or change settings.
    for op in [
        carol.add(Role::Member),
        Operation::Remove {
            user: alice.user.clone(),
        },
        Operation::Promote {
            user: bob.user.clone(),
        },
        Operation::Demote {
            user: alice.user.clone(),
        },
        Operation::SetSettings(GroupSettings::default()),
    ] {
        let name = op.name();
        let change = forge(&bob, &before, vec![op]);
        assert_eq!(
            history.receive(change),
            Err(MembershipError::NotAuthorised { operation: name })
        );
        assert_eq!(history.state(), &before);
    }
    // A member may rename while the info is open to all...
    applied(history.receive(forge(&bob, &before, vec![Operation::SetName("b".into())])));
    assert_eq!(history.state().name(), "b");
    // ... and not after an admin restricted it.
    let locked = GroupSettings {
        only_admins_send: false,
        only_admins_edit_info: true,
    };
    history
        .commit(&alice.signer(), vec![Operation::SetSettings(locked)])
        .unwrap();
    let state = history.state().clone();
    assert_eq!(
        history.receive(forge(&bob, &state, vec![Operation::SetName("c".into())])),
        Err(MembershipError::NotAuthorised {
            operation: "set name"
        })
    );
    // A role granted in a change does not authorise the rest of that change.
    assert_eq!(
        history.receive(forge(
            &bob,
            &state,
            vec![
                Operation::Leave,
                Operation::Promote {
                    user: bob.user.clone()
                }
            ]
        )),
        Err(MembershipError::NotAuthorised {
            operation: "promote"
        })
    );
    // Someone outside the group cannot change it at all.
    assert_eq!(
        history.receive(forge(&carol, &state, vec![Operation::SetName("x".into())])),
        Err(MembershipError::SignerNotAMember(carol.user.clone()))
    );
    assert_eq!(history.state(), &state);
}

#[test]
fn a_device_certified_by_another_account_cannot_sign_for_a_member() {
    let (alice, bob) = (Person::new("alice", 1), Person::new("bob", 2));
    let (mut history, _) = created(&alice, &[&bob]);
    // What a server that swapped alice's account would hold: a valid certificate for
    // "alice" from an account the group never pinned.
    let forged_account = AccountIdentityKeyPair::generate(&mut ChaCha20Rng::seed_from_u64(77));
    let impostor = Person::with_account("alice", forged_account, 78);
    let ghost = Person::new("ghost", 79);
    let change = forge(&impostor, history.state(), vec![ghost.add(Role::Admin)]);
    assert_eq!(
        history.receive(change),
        Err(MembershipError::SignerAccountMismatch(alice.user.clone()))
    );
    assert!(history.state().member("ghost").is_none());
}

#[test]
fn a_change_on_a_wrong_hash_a_wrong_version_or_another_group_is_refused() {
    let (alice, bob) = (Person::new("alice", 1), Person::new("bob", 2));
    let (mut history, creation) = created(&alice, &[&bob]);
    let state = history.state().clone();
    let mut tampered = state.clone();
    tampered.name = "not the real state".into();
    // Right version, hash of a state nobody holds: held, never applied.
    let wrong_hash = forge(&alice, &tampered, vec![Operation::SetName("x".into())]);
    assert_eq!(
        history.receive(wrong_hash.clone()),
        Ok(Received::Held { have_version: 1 })
    );
    assert_eq!(history.state(), &state);
    assert_eq!(
        rules::apply(&state, &wrong_hash),
        Err(MembershipError::WrongPreviousHash)
    );
    // A replayed creation is a duplicate, not a new version.
    assert_eq!(history.receive(creation.clone()), Ok(Received::Duplicate));
    // Version n+2 on state n.
    let skip = GroupChange::sign(
        &alice.signer(),
        &group_id(),
        2,
        state.hash(),
        vec![Operation::SetName("x".into())],
    )
    .unwrap();
    assert_eq!(
        rules::apply(&state, &skip),
        Err(MembershipError::WrongVersion {
            expected: 2,
            got: 3
        })
    );
    let elsewhere = GroupChange::sign(
        &alice.signer(),
        &GroupId::new(b"other").unwrap(),
        1,
        state.hash(),
        vec![Operation::SetName("x".into())],
    )
    .unwrap();
    assert_eq!(history.receive(elsewhere), Err(MembershipError::WrongGroup));
    assert_eq!(history.state(), &state);
}

#[test]
fn operations_on_the_wrong_members_refuse_the_whole_change() {
    let (alice, bob, carol) = (
        Person::new("alice", 1),
        Person::new("bob", 2),
        Person::new("carol", 3),
    );
    let (mut history, _) = created(&alice, &[&bob]);
    let state = history.state().clone();
    let cases = [
        (
            bob.add(Role::Member),
            MembershipError::AlreadyMember(bob.user.clone()),
        ),
        (
            Operation::Remove {
                user: carol.user.clone(),
            },
            MembershipError::NotAMember(carol.user.clone()),
        ),
        (
            Operation::Promote {
                user: alice.user.clone(),
            },
            MembershipError::RoleUnchanged(alice.user.clone()),
        ),
        (
            Operation::Demote {
                user: bob.user.clone(),
            },
            MembershipError::RoleUnchanged(bob.user.clone()),
        ),
    ];
    for (op, error) in cases {
        // The rename before it is not applied either.
        let change = forge(&alice, &state, vec![Operation::SetName("n".into()), op]);
        assert_eq!(history.receive(change), Err(error));
        assert_eq!(history.state(), &state);
    }
}

#[test]
fn the_last_admin_leaving_promotes_the_member_who_joined_first() {
    let (alice, bob, carol, dave) = (
        Person::new("alice", 1),
        Person::new("bob", 2),
        Person::new("carol", 3),
        Person::new("dave", 4),
    );
    // carol and dave join at version 1, bob later: carol (lowest user id of the earliest
    // joiners) takes over.
    let (mut history, _) = created(&alice, &[&dave, &carol]);
    history
        .commit(&alice.signer(), vec![bob.add(Role::Member)])
        .unwrap();
    history
        .commit(&alice.signer(), vec![Operation::Leave])
        .unwrap();
    let state = history.state();
    assert!(state.member("alice").is_none());
    assert!(state.is_admin("carol"));
    assert!(!state.is_admin("dave"));
    assert!(!state.is_admin("bob"));
    // The last member leaving leaves an empty group nobody can change.
    let mut solo = GroupHistory::new(group_id());
    solo.commit(&alice.signer(), vec![alice.add(Role::Admin)])
        .unwrap();
    solo.commit(&alice.signer(), vec![Operation::Leave])
        .unwrap();
    assert_eq!(solo.state().members().count(), 0);
    assert_eq!(
        solo.commit(&alice.signer(), vec![Operation::SetName("x".into())])
            .unwrap_err(),
        MembershipError::SignerNotAMember(alice.user.clone())
    );
}

#[test]
fn only_admins_send_is_a_setting_members_read() {
    let (alice, bob) = (Person::new("alice", 1), Person::new("bob", 2));
    let (mut history, _) = created(&alice, &[&bob]);
    assert!(history.state().may_send("bob"));
    let settings = GroupSettings {
        only_admins_send: true,
        only_admins_edit_info: false,
    };
    history
        .commit(&alice.signer(), vec![Operation::SetSettings(settings)])
        .unwrap();
    assert!(!history.state().may_send("bob"));
    assert!(history.state().may_send("alice"));
    assert!(!history.state().may_send("mallory"));
}

/// Two admins change the group at once: whichever order a member receives the two changes
/// in, it ends on the same head.
#[test]
fn concurrent_changes_resolve_the_same_way_in_every_order() {
    let (alice, bob, carol) = (
        Person::new("alice", 1),
        Person::new("bob", 2),
        Person::new("carol", 3),
    );
    let (mut history, creation) = created(&alice, &[&bob, &carol]);
    history
        .commit(
            &alice.signer(),
            vec![Operation::Promote {
                user: bob.user.clone(),
            }],
        )
        .unwrap();
    let base = history.state().clone();
    let by_alice = forge(&alice, &base, vec![Operation::SetName("alice's".into())]);
    let by_bob = forge(&bob, &base, vec![Operation::SetName("bob's".into())]);
    let promotion = history.changes_after(1).unwrap();
    let mut heads = Vec::new();
    for order in [[&by_alice, &by_bob], [&by_bob, &by_alice]] {
        let mut member = GroupHistory::new(group_id());
        member.receive(creation.clone()).unwrap();
        for c in &promotion {
            member.receive(c.clone()).unwrap();
        }
        for c in order {
            applied(member.receive(c.clone()));
        }
        heads.push(member.state_hash());
    }
    assert_eq!(heads[0], heads[1]);
    let lower = if by_alice.hash() < by_bob.hash() {
        "alice's"
    } else {
        "bob's"
    };
    let mut member = GroupHistory::new(group_id());
    member.receive(creation).unwrap();
    for c in promotion {
        member.receive(c).unwrap();
    }
    member.receive(by_alice.clone()).unwrap();
    let update = applied(member.receive(by_bob.clone()));
    assert_eq!(member.state().name(), lower);
    // The loser is reported as abandoned when it had been the head.
    if lower == "bob's" {
        assert_eq!(update.abandoned, vec![by_alice]);
        assert!(update.head_changed);
    } else {
        assert!(update.abandoned.is_empty());
        assert!(!update.head_changed);
    }
}

/// Alice removes bob while bob, still an admin, renames: alice's removal wins whatever the
/// hashes, so a removed admin cannot outrun its removal.
#[test]
fn a_removal_beats_what_the_removed_admin_did_at_the_same_time() {
    let mut bob_lower = 0;
    for seed in 0..8u64 {
        let (alice, bob, carol) = (
            Person::new("alice", 1),
            Person::new("bob", 2),
            Person::new("carol", 3),
        );
        let (mut history, _) = created(&alice, &[&carol]);
        history
            .commit(&alice.signer(), vec![bob.add(Role::Admin)])
            .unwrap();
        let base = history.state().clone();
        let removal = forge(
            &alice,
            &base,
            vec![Operation::Remove {
                user: bob.user.clone(),
            }],
        );
        // Different names give different hashes: bob's change is lower in some rounds.
        let by_bob = forge(
            &bob,
            &base,
            vec![
                Operation::SetName(format!("bob {seed}")),
                Operation::Remove {
                    user: carol.user.clone(),
                },
            ],
        );
        let mut a = history.clone();
        a.receive(by_bob.clone()).unwrap();
        a.receive(removal.clone()).unwrap();
        let mut b = history.clone();
        b.receive(removal.clone()).unwrap();
        b.receive(by_bob.clone()).unwrap();
        for h in [&a, &b] {
            assert!(h.state().member("bob").is_none(), "seed {seed}");
            assert_eq!(h.state().name(), "friends");
        }
        bob_lower += usize::from(by_bob.hash() < removal.hash());
    }
    // The hash alone would have let bob win in these rounds.
    assert!(bob_lower > 0);
}

#[test]
fn a_change_whose_base_is_missing_waits_for_it() {
    let (alice, bob) = (Person::new("alice", 1), Person::new("bob", 2));
    let (mut history, creation) = created(&alice, &[&bob]);
    let (second, _) = history
        .commit(&alice.signer(), vec![Operation::SetName("2".into())])
        .unwrap();
    let (third, _) = history
        .commit(&alice.signer(), vec![Operation::SetName("3".into())])
        .unwrap();
    let mut member = GroupHistory::new(group_id());
    assert_eq!(
        member.receive(third.clone()),
        Ok(Received::Held { have_version: 0 })
    );
    assert_eq!(member.receive(third), Ok(Received::Duplicate));
    assert_eq!(
        member.receive(second),
        Ok(Received::Held { have_version: 0 })
    );
    applied(member.receive(creation));
    assert_eq!(member.state(), history.state());
}

#[test]
fn held_changes_are_bounded() {
    let alice = Person::new("alice", 1);
    let (mut history, creation) = created(&alice, &[]);
    let mut changes = Vec::new();
    for i in 0..=MAX_PENDING_CHANGES + 1 {
        let (c, _) = history
            .commit(&alice.signer(), vec![Operation::SetName(format!("{i}"))])
            .unwrap();
        changes.push(c);
    }
    let mut member = GroupHistory::new(group_id());
    member.receive(creation).unwrap();
    // Everything but the change right after the creation, newest first: the held list
    // overflows and its oldest entry (the newest change) goes.
    for c in changes[1..].iter().rev() {
        assert!(matches!(
            member.receive(c.clone()),
            Ok(Received::Held { .. })
        ));
    }
    assert_eq!(member.held(), MAX_PENDING_CHANGES);
    member.receive(changes[0].clone()).unwrap();
    assert_eq!(member.state().version(), history.state().version() - 1);
}

#[test]
fn states_more_than_the_fork_depth_behind_are_final() {
    let (alice, bob) = (Person::new("alice", 1), Person::new("bob", 2));
    let (mut history, _) = created(&alice, &[&bob]);
    let base = history.state().clone();
    let mut finalised = Vec::new();
    for i in 0..=MAX_FORK_DEPTH {
        let (_, update) = history
            .commit(&alice.signer(), vec![Operation::SetName(format!("{i}"))])
            .unwrap();
        finalised.extend(update.finalised);
    }
    // 1 + 33 changes: the first two are final, the head is MAX_FORK_DEPTH ahead of the root.
    assert_eq!(finalised.len(), 2);
    assert_eq!(history.final_state().version(), 2);
    assert_eq!(
        history.state().version() - history.final_state().version(),
        MAX_FORK_DEPTH
    );
    // A competing change on version 1 comes too late to be weighed.
    let late = forge(&bob, &base, vec![Operation::SetName("late".into())]);
    assert_eq!(
        history.receive(late),
        Err(MembershipError::ForkTooOld {
            version: 2,
            final_version: 2
        })
    );
    // A late copy of a final change is still recognised.
    assert_eq!(
        history.receive(finalised[1].clone()),
        Ok(Received::Duplicate)
    );
    assert!(matches!(
        history.changes_after(1),
        Err(MembershipError::ForkTooOld { .. })
    ));
    assert_eq!(
        history.changes_after(2).unwrap().len(),
        MAX_FORK_DEPTH as usize
    );
}

#[test]
fn competing_changes_held_at_once_are_bounded() {
    let (alice, bob) = (Person::new("alice", 1), Person::new("bob", 2));
    let (mut history, _) = created(&alice, &[&bob]);
    let base = history.state().clone();
    for i in 0..MAX_OPEN_CHANGES - 1 {
        history
            .receive(forge(
                &alice,
                &base,
                vec![Operation::SetName(format!("{i}"))],
            ))
            .unwrap();
    }
    let head = history.state_hash();
    assert_eq!(
        history.receive(forge(
            &alice,
            &base,
            vec![Operation::SetName("one more".into())]
        )),
        Err(MembershipError::InvalidArgument(
            "too many competing changes held"
        ))
    );
    assert_eq!(history.state_hash(), head);
}

#[test]
fn a_group_holds_at_most_max_group_users() {
    let alice = Person::new("alice", 1);
    let mut history = GroupHistory::new(group_id());
    history
        .commit(&alice.signer(), vec![alice.add(Role::Admin)])
        .unwrap();
    // One account key for all: only the user ids matter here.
    let account = alice.account.public();
    let add = |i: usize| Operation::Add {
        user: UserId::new(format!("user-{i:04}")).unwrap(),
        account,
        role: Role::Member,
    };
    let mut next = 0;
    while next < MAX_GROUP_USERS - 1 {
        let batch: Vec<Operation> = (next..(next + MAX_CHANGE_OPERATIONS).min(MAX_GROUP_USERS - 1))
            .map(add)
            .collect();
        next += batch.len();
        history.commit(&alice.signer(), batch).unwrap();
    }
    assert_eq!(history.state().members().count(), MAX_GROUP_USERS);
    assert_eq!(
        history
            .commit(&alice.signer(), vec![add(next)])
            .unwrap_err(),
        MembershipError::TooManyMembers
    );
    // The full state round-trips and stays within its bound.
    let bytes = history.state().to_bytes();
    assert!(bytes.len() <= MAX_GROUP_STATE_LEN);
    assert_eq!(&GroupState::from_bytes(&bytes).unwrap(), history.state());
}

#[test]
fn a_change_is_bounded_in_operations_and_bytes() {
    let alice = Person::new("alice", 1);
    let (history, _) = created(&alice, &[]);
    let state = history.state();
    let sign = |ops: Vec<Operation>| {
        GroupChange::sign(
            &alice.signer(),
            state.group_id(),
            state.version(),
            state.hash(),
            ops,
        )
    };
    let renames = |n: usize| (0..n).map(|i| Operation::SetName(format!("{i}"))).collect();
    assert!(sign(renames(MAX_CHANGE_OPERATIONS)).is_ok());
    assert!(matches!(
        sign(renames(MAX_CHANGE_OPERATIONS + 1)),
        Err(MembershipError::InvalidArgument(_))
    ));
    assert!(matches!(
        sign(Vec::new()),
        Err(MembershipError::InvalidArgument(_))
    ));
    let long = "d".repeat(MAX_GROUP_DESCRIPTION_LEN);
    let descriptions = |n: usize| {
        (0..n)
            .map(|_| Operation::SetDescription(long.clone()))
            .collect()
    };
    let fits = MAX_GROUP_CHANGE_LEN / (MAX_GROUP_DESCRIPTION_LEN + 3) - 1;
    let change = sign(descriptions(fits)).unwrap();
    assert!(change.to_bytes().len() <= MAX_GROUP_CHANGE_LEN);
    assert!(matches!(
        sign(descriptions(fits + 2)),
        Err(MembershipError::InvalidArgument("change over 48 KiB"))
    ));
    for (op, limit) in [
        (
            Operation::SetName("n".repeat(MAX_GROUP_NAME_LEN + 1)),
            "group name over 256 bytes",
        ),
        (
            Operation::SetDescription("d".repeat(MAX_GROUP_DESCRIPTION_LEN + 1)),
            "group description over 2,048 bytes",
        ),
        (
            Operation::SetAvatar(vec![0; MAX_GROUP_AVATAR_LEN + 1]),
            "avatar reference over 1,024 bytes",
        ),
    ] {
        assert_eq!(
            sign(vec![op]).unwrap_err(),
            MembershipError::InvalidArgument(limit)
        );
    }
}

#[test]
fn encodings_round_trip_and_every_flipped_bit_of_a_change_is_refused() {
    let (alice, bob) = (Person::new("alice", 1), Person::new("bob", 2));
    let (mut history, creation) = created(&alice, &[&bob]);
    history
        .commit(
            &alice.signer(),
            vec![
                Operation::SetDescription("about".into()),
                Operation::SetAvatar(vec![1, 2, 3]),
                Operation::SetSettings(GroupSettings {
                    only_admins_send: true,
                    only_admins_edit_info: true,
                }),
                Operation::Promote {
                    user: bob.user.clone(),
                },
            ],
        )
        .unwrap();
    let bytes = creation.to_bytes();
    assert_eq!(GroupChange::from_bytes(&bytes).unwrap(), creation);
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x01;
        assert!(GroupChange::from_bytes(&bad).is_err(), "byte {i}");
    }
    assert!(GroupChange::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    let mut long = bytes.clone();
    long.push(0);
    assert!(GroupChange::from_bytes(&long).is_err());

    let state = history.state();
    assert_eq!(&GroupState::from_bytes(&state.to_bytes()).unwrap(), state);
    let welcome = history.welcome();
    let decoded = GroupWelcome::from_bytes(&welcome.to_bytes()).unwrap();
    assert_eq!(decoded, welcome);
    let joined = GroupHistory::from_welcome(decoded).unwrap();
    assert_eq!(joined.state(), history.state());
    let restored = GroupHistory::from_bytes(&history.to_bytes()).unwrap();
    assert_eq!(restored.state(), history.state());
    assert_eq!(restored.to_bytes(), history.to_bytes());

    let request = GroupSyncRequest {
        group_id: group_id(),
        have_version: 7,
    };
    assert_eq!(
        GroupSyncRequest::from_bytes(&request.to_bytes()).unwrap(),
        request
    );
    let at = StateRef {
        version: 2,
        hash: history.state_hash(),
    };
    assert_eq!(StateRef::from_bytes(&at.to_bytes()).unwrap(), at);
}

proptest! {
    #[test]
    fn decoders_are_total(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = GroupChange::from_bytes(&bytes);
        let _ = GroupState::from_bytes(&bytes);
        let _ = GroupWelcome::from_bytes(&bytes);
        let _ = GroupHistory::from_bytes(&bytes);
        let _ = GroupSyncRequest::from_bytes(&bytes);
        let _ = StateRef::from_bytes(&bytes);
    }
}
