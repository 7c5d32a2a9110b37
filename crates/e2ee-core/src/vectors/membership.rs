//! Test vectors for authenticated group membership (`vectors/groups/membership.json`,
//! described in `vectors/groups/README.md`).
//!
//! * [`generate`] builds the file from recorded secrets through the public API (Ed25519
//!   signatures are deterministic, so the secrets determine every byte); the drift test of
//!   `vectors/mod.rs` compares it with the committed file.
//! * `membership_vectors_match_the_spec` re-derives every hash and checks every signature of
//!   the file with sha2 and ed25519-dalek directly, from the formulas of
//!   `docs/protocol-groups.md` (section 16), then replays the changes, the refusals and the
//!   concurrent changes through [`GroupHistory`].

use std::path::PathBuf;

use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{draw, h, seeded, unh};
use crate::{
    Codec, DeviceAddress, IdentityKeyPair, UserId,
    device::{AccountIdentityKeyPair, DeviceBinding, DeviceCertificate},
    group::{
        GroupId,
        membership::{
            GroupChange, GroupHistory, GroupSettings, GroupSigner, GroupState, MembershipError,
            Operation, Received, Role, rules,
        },
    },
};

const NAMES: [&str; 4] = ["alice", "bob", "carol", "mallory"];

fn path() -> PathBuf {
    super::vectors_dir().join("groups/membership.json")
}

struct Person {
    account_secret: [u8; 32],
    identity_secret: [u8; 64],
    account: AccountIdentityKeyPair,
    identity: IdentityKeyPair,
    certificate: DeviceCertificate,
}

impl Person {
    fn new(name: &str, account_secret: [u8; 32], identity_secret: [u8; 64]) -> Self {
        let account = AccountIdentityKeyPair::from_secret_bytes(&account_secret).unwrap();
        let identity = IdentityKeyPair::from_secret_bytes(&identity_secret).unwrap();
        let binding = DeviceBinding::sign(
            &identity,
            DeviceAddress::new(name, 1).unwrap(),
            account.public(),
        );
        let certificate =
            DeviceCertificate::sign(&account, identity.public(), &binding, 1_700_000_000).unwrap();
        Self {
            account_secret,
            identity_secret,
            account,
            identity,
            certificate,
        }
    }

    fn signer(&self) -> GroupSigner<'_> {
        GroupSigner::new(&self.identity, self.certificate.clone()).unwrap()
    }

    fn add(&self, name: &str, role: Role) -> Operation {
        Operation::Add {
            user: UserId::new(name).unwrap(),
            account: self.account.public(),
            role,
        }
    }
}

/// alice, bob, carol, and mallory: mallory's device claims to be alice's, certified by an
/// account the group never pinned (what a server that swapped alice's account holds).
fn people(secrets: &[([u8; 32], [u8; 64])]) -> Vec<Person> {
    NAMES
        .iter()
        .zip(secrets)
        .map(|(name, (a, i))| {
            let as_name = if *name == "mallory" { "alice" } else { name };
            Person::new(as_name, *a, *i)
        })
        .collect()
}

fn group_id() -> GroupId {
    GroupId::new(&[0x42; 32]).unwrap()
}

fn user(name: &str) -> UserId {
    UserId::new(name).unwrap()
}

fn error_name(e: &MembershipError) -> String {
    match e {
        MembershipError::NotAuthorised { operation } => format!("NotAuthorised({operation})"),
        MembershipError::WrongVersion { expected, got } => {
            format!("WrongVersion({expected},{got})")
        }
        MembershipError::SignerAccountMismatch(u) => format!("SignerAccountMismatch({u})"),
        MembershipError::SignerNotAMember(u) => format!("SignerNotAMember({u})"),
        other => format!("{other:?}"),
    }
}

fn unsigned(by: &Person, on: &GroupState, on_hash: [u8; 32], ops: Vec<Operation>) -> GroupChange {
    GroupChange::sign(&by.signer(), on.group_id(), on.version(), on_hash, ops).unwrap()
}

fn change_value(change: &GroupChange, state: &GroupState) -> Value {
    json!({
        "change": h(&change.to_bytes()),
        "change_hash": h(change.hash()),
        "state": h(&state.to_bytes()),
        "state_hash": h(&state.hash()),
    })
}

pub(super) fn generate() -> Value {
    let mut rng = seeded(510);
    let secrets: Vec<([u8; 32], [u8; 64])> = (0..NAMES.len())
        .map(|_| (draw::<32>(&mut rng), draw::<64>(&mut rng)))
        .collect();
    let people = people(&secrets);
    let (alice, bob, carol, mallory) = (&people[0], &people[1], &people[2], &people[3]);

    let mut history = GroupHistory::new(group_id());
    let mut sequence = Vec::new();
    let steps: Vec<(&Person, Vec<Operation>)> = vec![
        (
            alice,
            vec![
                alice.add("alice", Role::Admin),
                Operation::SetName("vector group".into()),
                bob.add("bob", Role::Member),
            ],
        ),
        (alice, vec![carol.add("carol", Role::Member)]),
        (alice, vec![Operation::Promote { user: user("bob") }]),
        (bob, vec![Operation::SetDescription("about us".into())]),
        (
            alice,
            vec![Operation::SetSettings(GroupSettings {
                only_admins_send: false,
                only_admins_edit_info: true,
            })],
        ),
        (
            bob,
            vec![Operation::Remove {
                user: user("carol"),
            }],
        ),
        (bob, vec![Operation::Demote { user: user("bob") }]),
        // The last admin leaves: rule 5 promotes the member who joined first (bob).
        (alice, vec![Operation::Leave]),
    ];
    for (by, ops) in steps {
        let (change, _) = history.commit(&by.signer(), ops).unwrap();
        sequence.push(change_value(&change, history.state()));
    }

    // Refusals, each built on state 5 (before carol's removal) of a second history.
    let mut at5 = GroupHistory::new(group_id());
    for step in &sequence[..5] {
        let change = GroupChange::from_bytes(&unh(step["change"].as_str().unwrap())).unwrap();
        at5.receive(change).unwrap();
    }
    let state5 = at5.state().clone();
    let hash5 = at5.state_hash();
    let mut wrong = state5.clone();
    wrong.name = "a state nobody holds".into();
    let state4_hash: [u8; 32] = unh(sequence[3]["state_hash"].as_str().unwrap())
        .try_into()
        .unwrap();
    let refusals = [
        (
            "a member renames after only admins may",
            unsigned(
                carol,
                &state5,
                hash5,
                vec![Operation::SetName("carol's".into())],
            ),
        ),
        (
            "a member adds someone",
            unsigned(
                carol,
                &state5,
                hash5,
                vec![mallory.add("mallory", Role::Member)],
            ),
        ),
        (
            "another account's device signs for alice",
            unsigned(
                mallory,
                &state5,
                hash5,
                vec![mallory.add("mallory", Role::Admin)],
            ),
        ),
        (
            "wrong previous hash",
            unsigned(
                alice,
                &wrong,
                wrong.hash(),
                vec![Operation::SetName("x".into())],
            ),
        ),
        (
            "replayed version (5 again, on state 5)",
            GroupChange::sign(
                &alice.signer(),
                &group_id(),
                4,
                hash5,
                vec![Operation::SetName("x".into())],
            )
            .unwrap(),
        ),
        (
            "version 5 again, on state 4: a fork, authorised, held beside the original",
            GroupChange::sign(
                &alice.signer(),
                &group_id(),
                4,
                state4_hash,
                vec![Operation::SetName("fork".into())],
            )
            .unwrap(),
        ),
    ];
    let refused: Vec<Value> = refusals
        .into_iter()
        .map(|(what, change)| {
            let result = rules::apply(&state5, &change);
            let result = match (result, what.starts_with("version 5 again")) {
                (Err(MembershipError::WrongVersion { .. }), true) => "accepted on state 4".into(),
                (Err(e), _) => error_name(&e),
                (Ok(_), _) => "accepted".into(),
            };
            json!({ "case": what, "change": h(&change.to_bytes()), "result": result })
        })
        .collect();

    // Concurrent changes on state 5: alice removes bob while bob renames and removes carol.
    let removal = unsigned(
        alice,
        &state5,
        hash5,
        vec![Operation::Remove { user: user("bob") }],
    );
    let by_bob = unsigned(
        bob,
        &state5,
        hash5,
        vec![
            Operation::SetName("bob's".into()),
            Operation::Remove {
                user: user("carol"),
            },
        ],
    );
    let rename_a = unsigned(alice, &state5, hash5, vec![Operation::SetName("a".into())]);
    let rename_b = unsigned(bob, &state5, hash5, vec![Operation::SetName("b".into())]);
    let resolve = |changes: &[&GroupChange]| {
        let mut h5 = at5.clone();
        for c in changes {
            h5.receive((*c).clone()).unwrap();
        }
        h5.state_hash()
    };
    let concurrent = json!([
        {
            "case": "removal against the removed admin's concurrent change",
            "changes": [h(&removal.to_bytes()), h(&by_bob.to_bytes())],
            "head": h(&resolve(&[&removal, &by_bob])),
        },
        {
            "case": "two renames: the lower change hash wins",
            "changes": [h(&rename_a.to_bytes()), h(&rename_b.to_bytes())],
            "head": h(&resolve(&[&rename_a, &rename_b])),
        },
    ]);

    json!({
        "group_id": h(group_id().as_bytes()),
        "people": NAMES.iter().zip(&people).map(|(name, p)| json!({
            "name": name,
            "account_secret": h(&p.account_secret),
            "account": h(&p.account.public().to_bytes()),
            "identity_secret": h(&p.identity_secret),
            "identity": h(&p.identity.public().to_bytes()),
            "certificate": h(&p.certificate.to_bytes()),
        })).collect::<Vec<_>>(),
        "empty_state": h(&GroupState::empty(group_id()).to_bytes()),
        "sequence": sequence,
        "refused_on_state_5": refused,
        "concurrent_on_state_5": concurrent,
    })
}

fn hx(v: &Value) -> Vec<u8> {
    unh(v.as_str().unwrap())
}

fn sha(context: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(context);
    hasher.update(bytes);
    hasher.finalize().to_vec()
}

/// The signature check of section 16 with ed25519-dalek alone: the last 64 bytes sign
/// "E2EE-v1 group change" || everything before them, under the Ed25519 key that opens the
/// signer's 128-byte identity inside its certificate.
fn check_signature(change: &[u8], identity: &[u8]) {
    let (body, signature) = change.split_at(change.len() - 64);
    let key = VerifyingKey::from_bytes(identity[..32].try_into().unwrap()).unwrap();
    let mut message = b"E2EE-v1 group change".to_vec();
    message.extend_from_slice(body);
    key.verify_strict(&message, &Signature::from_slice(signature).unwrap())
        .unwrap();
}

#[test]
fn membership_vectors_match_the_spec() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    let people = v["people"].as_array().unwrap();
    let identity_of =
        |name: &str| hx(&people.iter().find(|p| p["name"] == name).unwrap()["identity"]);
    let empty = hx(&v["empty_state"]);
    assert_eq!(empty, GroupState::empty(group_id()).to_bytes());
    let mut previous_hash = sha(b"E2EE-v1 group state", &empty);
    let mut history = GroupHistory::new(group_id());
    let signers = [
        "alice", "alice", "alice", "bob", "alice", "bob", "bob", "alice",
    ];
    for (step, signer) in v["sequence"].as_array().unwrap().iter().zip(signers) {
        let bytes = hx(&step["change"]);
        // The spec's formulas, with the primitives alone.
        check_signature(&bytes, &identity_of(signer));
        assert_eq!(
            hx(&step["change_hash"]),
            sha(b"E2EE-v1 group change hash", &bytes)
        );
        let state = hx(&step["state"]);
        assert_eq!(hx(&step["state_hash"]), sha(b"E2EE-v1 group state", &state));
        // version || previous hash follow the group id in the change.
        let id_len = 1 + usize::from(bytes[1]);
        assert_eq!(bytes[1 + id_len + 8..1 + id_len + 40], previous_hash[..]);
        previous_hash = hx(&step["state_hash"]);
        // The code agrees.
        let change = GroupChange::from_bytes(&bytes).unwrap();
        assert!(matches!(history.receive(change), Ok(Received::Applied(_))));
        assert_eq!(history.state().to_bytes(), state);
        assert_eq!(GroupState::from_bytes(&state).unwrap().to_bytes(), state);
    }
    // bob had stepped down, so alice leaving promoted him again (rule 5).
    assert!(history.state().is_admin("bob"));
    assert!(history.state().member("alice").is_none());

    let mut at5 = GroupHistory::new(group_id());
    for step in &v["sequence"].as_array().unwrap()[..5] {
        at5.receive(GroupChange::from_bytes(&hx(&step["change"])).unwrap())
            .unwrap();
    }
    for case in v["refused_on_state_5"].as_array().unwrap() {
        let change = GroupChange::from_bytes(&hx(&case["change"])).unwrap();
        let expected = case["result"].as_str().unwrap();
        let got = match rules::apply(at5.state(), &change) {
            Err(MembershipError::WrongVersion { .. }) if expected == "accepted on state 4" => {
                let mut h = at5.clone();
                assert!(matches!(h.receive(change), Ok(Received::Applied(_))));
                "accepted on state 4".to_owned()
            }
            Err(e) => {
                let mut h = at5.clone();
                let before = h.state_hash();
                let _ = h.receive(change);
                assert_eq!(h.state_hash(), before, "{}", case["case"]);
                error_name(&e)
            }
            Ok(_) => "accepted".to_owned(),
        };
        assert_eq!(got, expected, "{}", case["case"]);
    }
    for case in v["concurrent_on_state_5"].as_array().unwrap() {
        let changes: Vec<GroupChange> = case["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| GroupChange::from_bytes(&hx(c)).unwrap())
            .collect();
        for order in [[0, 1], [1, 0]] {
            let mut h = at5.clone();
            for i in order {
                h.receive(changes[i].clone()).unwrap();
            }
            assert_eq!(
                h.state_hash().to_vec(),
                hx(&case["head"]),
                "{}",
                case["case"]
            );
        }
    }
    // The lower hash wins between the renames.
    let renames = &v["concurrent_on_state_5"][1]["changes"];
    let hashes: Vec<Vec<u8>> = renames
        .as_array()
        .unwrap()
        .iter()
        .map(|c| sha(b"E2EE-v1 group change hash", &hx(c)))
        .collect();
    let winner = usize::from(hashes[1] < hashes[0]);
    let mut h = at5.clone();
    h.receive(GroupChange::from_bytes(&hx(&renames[winner])).unwrap())
        .unwrap();
    assert_eq!(
        h.state_hash().to_vec(),
        hx(&v["concurrent_on_state_5"][1]["head"])
    );
}
