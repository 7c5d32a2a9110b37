//! One member's history of one group: the final state, the changes after it that a
//! concurrent change could still displace, the conflict rule that picks the head, and the
//! changes held until the one they build on arrives.
//!
//! Conflict rule (every member applies it to the changes it holds, so members holding the
//! same changes agree on the head):
//! * The changes that build on one state are siblings. Each sibling heads a branch: itself
//!   followed by the branch its own successors pick, by this same rule.
//! * A sibling is *overruled* when another sibling's branch removes or demotes the user who
//!   signed it, and its own branch does not remove or demote that other sibling's signer
//!   (an admin's removal beats what the removed admin did at the same time).
//! * Among the siblings not overruled (all of them if every one is), the lowest change hash
//!   wins.
//! * A state more than [`MAX_FORK_DEPTH`] versions behind the head is final: the changes
//!   before it are no longer weighed and a change competing with them is refused.

use std::collections::{BTreeSet, HashMap, VecDeque};

use super::{
    GroupChange, GroupSigner, MAX_FORK_DEPTH, MAX_GROUP_WELCOME_LEN, MAX_PENDING_CHANGES,
    MembershipError, Operation, rules::apply_with_hash, state::GroupState,
};
use crate::{Codec, Reader, UserId, error::DecodeError, group::GroupId};

/// Changes after the final state, on every branch, held at once; a change that would exceed
/// this is refused (an admin flooding competing changes cannot grow a member's memory).
pub const MAX_OPEN_CHANGES: usize = 4 * MAX_FORK_DEPTH as usize;
/// Version byte of a serialised [`GroupHistory`] and of a [`GroupWelcome`].
pub const GROUP_HISTORY_VERSION: u8 = 0x01;

type StateHash = [u8; 32];

#[derive(Debug, Clone)]
struct Node {
    change: GroupChange,
    state: GroupState,
}

/// What receiving or committing a change did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Update {
    /// Whether the head state is another one now.
    pub head_changed: bool,
    /// Changes that became final, oldest first: keep them to answer other members' sync
    /// requests ([`GroupHistory::changes_after`] only covers what is not final yet).
    pub finalised: Vec<GroupChange>,
    /// Changes that were on the way to the head before and no longer are: they lost to a
    /// concurrent change (and are still held, in case more changes tip the balance back).
    /// An app may re-propose what its own user's lost change did.
    pub abandoned: Vec<GroupChange>,
}

/// The result of [`GroupHistory::receive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// The change (and any held change it unblocked) joined the history.
    Applied(Update),
    /// We already hold it.
    Duplicate,
    /// It builds on a state we do not hold: it is kept (up to [`MAX_PENDING_CHANGES`]) until
    /// that state arrives. Ask its sender for the changes after `have_version`.
    Held {
        /// Our head version.
        have_version: u64,
    },
}

/// A group's state and the changes after it, for a member the group is new to. The state
/// is taken on the word of the member who sends the welcome (over an authenticated pairwise
/// session); every change after it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupWelcome {
    /// The sender's final state.
    pub state: GroupState,
    /// The sender's changes from there to its head, oldest first.
    pub changes: Vec<GroupChange>,
}

/// One member's view of one group.
#[derive(Debug, Clone)]
pub struct GroupHistory {
    root: GroupState,
    root_hash: StateHash,
    nodes: HashMap<StateHash, Node>,
    children: HashMap<StateHash, Vec<StateHash>>,
    /// The head's path from the root.
    canonical: Vec<StateHash>,
    /// Hashes of the changes finalised most recently, to recognise late duplicates.
    recent_final: VecDeque<[u8; 32]>,
    pending: VecDeque<GroupChange>,
}

impl GroupHistory {
    /// A group at version 0, about to be created by [`Self::commit`]: the first change must
    /// add its signer as an admin.
    pub fn new(group_id: GroupId) -> Self {
        Self::from_root(GroupState::empty(group_id))
    }

    fn from_root(root: GroupState) -> Self {
        Self {
            root_hash: root.hash(),
            root,
            nodes: HashMap::new(),
            children: HashMap::new(),
            canonical: Vec::new(),
            recent_final: VecDeque::new(),
            pending: VecDeque::new(),
        }
    }

    /// The history a welcome describes: its state as final, its changes checked and applied.
    pub fn from_welcome(welcome: GroupWelcome) -> Result<Self, MembershipError> {
        let mut history = Self::from_root(welcome.state);
        for change in welcome.changes {
            history.attach(change)?;
        }
        history.settle();
        Ok(history)
    }

    /// What a member new to the group needs: our final state and our changes since.
    pub fn welcome(&self) -> GroupWelcome {
        GroupWelcome {
            state: self.root.clone(),
            changes: self.canonical_changes().cloned().collect(),
        }
    }

    /// The group id.
    pub fn group_id(&self) -> &GroupId {
        self.root.group_id()
    }

    /// The current state: the head the conflict rule picks.
    pub fn state(&self) -> &GroupState {
        self.canonical
            .last()
            .and_then(|h| self.nodes.get(h))
            .map_or(&self.root, |n| &n.state)
    }

    /// The hash of [`Self::state`] (group messages carry it with the version).
    pub fn state_hash(&self) -> StateHash {
        self.canonical.last().copied().unwrap_or(self.root_hash)
    }

    /// The newest final state.
    pub fn final_state(&self) -> &GroupState {
        &self.root
    }

    /// Whether we hold the state with this hash (final or not, on any branch).
    pub fn holds_state(&self, hash: &StateHash) -> bool {
        *hash == self.root_hash || self.nodes.contains_key(hash)
    }

    /// How many changes wait for the state they build on.
    pub fn held(&self) -> usize {
        self.pending.len()
    }

    fn canonical_changes(&self) -> impl Iterator<Item = &GroupChange> {
        self.canonical
            .iter()
            .filter_map(|h| self.nodes.get(h))
            .map(|n| &n.change)
    }

    /// Every change we hold after `version` that is not final, on every branch (so the asker
    /// weighs the same competing changes we do), parents before children: the answer to a
    /// member who missed them. Changes already final are not held here: a `version` before
    /// the final state fails with [`MembershipError::ForkTooOld`], and the caller answers
    /// from the changes it kept from [`Update::finalised`].
    pub fn changes_after(&self, version: u64) -> Result<Vec<GroupChange>, MembershipError> {
        if version < self.root.version() {
            return Err(MembershipError::ForkTooOld {
                version,
                final_version: self.root.version(),
            });
        }
        Ok(self
            .open_changes()
            .into_iter()
            .filter(|c| c.version() > version)
            .cloned()
            .collect())
    }

    /// The changes after the final state on every branch, parents before children.
    fn open_changes(&self) -> Vec<&GroupChange> {
        let mut ordered: Vec<&GroupChange> = self.nodes.values().map(|n| &n.change).collect();
        ordered.sort_by_key(|c| (c.version(), *c.hash()));
        ordered
    }

    /// Signs `operations` as the next version on our head and applies it (or fails with why
    /// it does not apply, changing nothing).
    pub fn commit(
        &mut self,
        signer: &GroupSigner<'_>,
        operations: Vec<Operation>,
    ) -> Result<(GroupChange, Update), MembershipError> {
        let change = GroupChange::sign(
            signer,
            self.group_id(),
            self.state().version(),
            self.state_hash(),
            operations,
        )?;
        // `receive` checks it against our head like anyone's, and a refused change leaves the
        // history as it was.
        match self.receive(change.clone())? {
            Received::Applied(update) => Ok((change, update)),
            // Built on our own head, so it always attaches.
            Received::Duplicate | Received::Held { .. } => {
                Err(MembershipError::InvalidArgument("change did not apply"))
            }
        }
    }

    /// Takes in a change another member sent (or a sync answer). A change that does not apply
    /// to the state it names fails with the reason and changes nothing.
    pub fn receive(&mut self, change: GroupChange) -> Result<Received, MembershipError> {
        if change.group_id() != self.group_id() {
            return Err(MembershipError::WrongGroup);
        }
        if self.is_known(&change) {
            return Ok(Received::Duplicate);
        }
        if change.version() <= self.root.version() {
            return Err(MembershipError::ForkTooOld {
                version: change.version(),
                final_version: self.root.version(),
            });
        }
        if !self.holds_state(change.previous_hash()) {
            if self.pending.len() >= MAX_PENDING_CHANGES {
                self.pending.pop_front();
            }
            self.pending.push_back(change);
            return Ok(Received::Held {
                have_version: self.state().version(),
            });
        }
        let before: Vec<StateHash> = self.canonical.clone();
        self.attach(change)?;
        self.attach_pending();
        let finalised = self.settle();
        let after: BTreeSet<&StateHash> = self.canonical.iter().collect();
        // Finalised states left `nodes`; what else left the path lost to a competitor.
        let abandoned = before
            .iter()
            .filter(|h| !after.contains(h))
            .filter_map(|h| self.nodes.get(h))
            .map(|n| n.change.clone())
            .collect();
        Ok(Received::Applied(Update {
            head_changed: before.last() != self.canonical.last(),
            finalised,
            abandoned,
        }))
    }

    fn is_known(&self, change: &GroupChange) -> bool {
        let same = |c: &GroupChange| c.hash() == change.hash();
        self.recent_final.contains(change.hash())
            || self
                .children
                .get(change.previous_hash())
                .is_some_and(|kids| {
                    kids.iter()
                        .any(|k| self.nodes.get(k).is_some_and(|n| same(&n.change)))
                })
            || self.pending.iter().any(same)
    }

    /// Applies `change` to the state it names and recomputes the head.
    fn attach(&mut self, change: GroupChange) -> Result<(), MembershipError> {
        if self.nodes.len() >= MAX_OPEN_CHANGES {
            return Err(MembershipError::InvalidArgument(
                "too many competing changes held",
            ));
        }
        let parent_hash = *change.previous_hash();
        let parent = if parent_hash == self.root_hash {
            &self.root
        } else {
            &self
                .nodes
                .get(&parent_hash)
                .ok_or(MembershipError::WrongPreviousHash)?
                .state
        };
        let state = apply_with_hash(parent, &parent_hash, &change)?;
        let hash = state.hash();
        self.children.entry(parent_hash).or_default().push(hash);
        self.nodes.insert(hash, Node { change, state });
        self.canonical = self.branch_from(&self.root_hash);
        Ok(())
    }

    /// Attaches every held change whose state arrived, until none does.
    fn attach_pending(&mut self) {
        loop {
            let root_version = self.root.version();
            self.pending.retain(|c| c.version() > root_version);
            let Some(index) = self
                .pending
                .iter()
                .position(|c| self.holds_state(c.previous_hash()))
            else {
                return;
            };
            if let Some(change) = self.pending.remove(index) {
                // A held change that turns out not to apply is dropped: it was never ours to
                // keep, and its sender learns nothing either way.
                let _ = self.attach(change);
            }
        }
    }

    /// The branch the conflict rule picks after the state `from`: the states on the way, in
    /// order.
    fn branch_from(&self, from: &StateHash) -> Vec<StateHash> {
        let Some(kids) = self.children.get(from) else {
            return Vec::new();
        };
        let branches: Vec<Vec<StateHash>> = kids
            .iter()
            .map(|kid| {
                let mut branch = vec![*kid];
                branch.extend(self.branch_from(kid));
                branch
            })
            .collect();
        if branches.len() == 1 {
            return branches.into_iter().next().unwrap_or_default();
        }
        let revoked: Vec<BTreeSet<&str>> = branches
            .iter()
            .map(|branch| {
                branch
                    .iter()
                    .filter_map(|h| self.nodes.get(h))
                    .flat_map(|n| {
                        n.change
                            .operations()
                            .iter()
                            .filter_map(Operation::revoked_user)
                            .map(UserId::as_str)
                    })
                    .collect()
            })
            .collect();
        let signer = |i: usize| {
            self.nodes
                .get(&branches[i][0])
                .map(|n| n.change.signer().user_id())
        };
        let overruled = |i: usize| {
            (0..branches.len()).any(|j| {
                j != i
                    && signer(i).is_some_and(|s| revoked[j].contains(s))
                    && !signer(j).is_some_and(|s| revoked[i].contains(s))
            })
        };
        let mut candidates: Vec<usize> = (0..branches.len()).filter(|i| !overruled(*i)).collect();
        if candidates.is_empty() {
            candidates = (0..branches.len()).collect();
        }
        let change_hash = |i: usize| self.nodes.get(&branches[i][0]).map(|n| *n.change.hash());
        let winner = candidates
            .into_iter()
            .min_by_key(|i| change_hash(*i))
            .unwrap_or(0);
        branches.into_iter().nth(winner).unwrap_or_default()
    }

    /// Makes final every state more than [`MAX_FORK_DEPTH`] behind the head, forgetting the
    /// branches that left the head's path before it. Returns the changes made final.
    fn settle(&mut self) -> Vec<GroupChange> {
        let mut finalised = Vec::new();
        while self.canonical.len() as u64 > MAX_FORK_DEPTH {
            let next = self.canonical.remove(0);
            let Some(node) = self.nodes.remove(&next) else {
                break;
            };
            self.recent_final.push_back(*node.change.hash());
            if self.recent_final.len() > MAX_FORK_DEPTH as usize {
                self.recent_final.pop_front();
            }
            self.root = node.state;
            self.root_hash = next;
            finalised.push(node.change);
        }
        if !finalised.is_empty() {
            self.prune();
        }
        finalised
    }

    /// Keeps only the states that descend from the root.
    fn prune(&mut self) {
        let mut keep = BTreeSet::new();
        let mut stack = vec![self.root_hash];
        while let Some(at) = stack.pop() {
            if let Some(kids) = self.children.get(&at) {
                for kid in kids {
                    if keep.insert(*kid) {
                        stack.push(*kid);
                    }
                }
            }
        }
        self.nodes.retain(|h, _| keep.contains(h));
        let root = self.root_hash;
        self.children
            .retain(|parent, _| *parent == root || keep.contains(parent));
        let root_version = self.root.version();
        self.pending.retain(|c| c.version() > root_version);
    }

    /// Serialises the history (the app stores it encrypted with the rest of its state).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![GROUP_HISTORY_VERSION];
        self.root.write(&mut out);
        out.push(u8::try_from(self.recent_final.len()).unwrap_or(u8::MAX));
        for hash in &self.recent_final {
            out.extend_from_slice(hash);
        }
        // Parents before children, so loading can apply them in this order.
        write_changes(self.open_changes().into_iter(), &mut out);
        write_changes(self.pending.iter(), &mut out);
        out
    }

    /// Decodes [`Self::to_bytes`]; every change is checked and applied again.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MembershipError> {
        let mut reader = Reader::new(bytes);
        let version = reader.u8()?;
        if version != GROUP_HISTORY_VERSION {
            return Err(DecodeError::UnknownVersion(version).into());
        }
        let mut history = Self::from_root(GroupState::read(&mut reader)?);
        let finals = usize::from(reader.u8()?);
        if finals > MAX_FORK_DEPTH as usize {
            return Err(DecodeError::TooLarge.into());
        }
        for _ in 0..finals {
            history.recent_final.push_back(reader.array()?);
        }
        for change in read_changes(&mut reader, MAX_OPEN_CHANGES)? {
            history.attach(change)?;
        }
        history.pending = read_changes(&mut reader, MAX_PENDING_CHANGES)?.into();
        reader.finish()?;
        Ok(history)
    }
}

fn write_changes<'a>(changes: impl ExactSizeIterator<Item = &'a GroupChange>, out: &mut Vec<u8>) {
    out.extend_from_slice(
        &u16::try_from(changes.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    for change in changes {
        let bytes = change.to_bytes();
        // At most MAX_GROUP_CHANGE_LEN.
        out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&bytes);
    }
}

fn read_changes(reader: &mut Reader<'_>, max: usize) -> Result<Vec<GroupChange>, MembershipError> {
    let count = usize::from(reader.u16()?);
    if count > max {
        return Err(DecodeError::TooLarge.into());
    }
    let mut changes = Vec::with_capacity(count);
    for _ in 0..count {
        let len = usize::try_from(reader.u32()?).map_err(|_| DecodeError::TooLarge)?;
        changes.push(GroupChange::from_bytes(reader.take(len)?)?);
    }
    Ok(changes)
}

/// `0x01 || GroupState || count u16 (<= MAX_FORK_DEPTH + 1) || (len u32 || GroupChange)*`.
impl Codec for GroupWelcome {
    type Error = MembershipError;
    const MAX_LEN: usize = MAX_GROUP_WELCOME_LEN;

    fn write(&self, out: &mut Vec<u8>) {
        out.push(GROUP_HISTORY_VERSION);
        self.state.write(out);
        write_changes(self.changes.iter(), out);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, MembershipError> {
        let version = reader.u8()?;
        if version != GROUP_HISTORY_VERSION {
            return Err(DecodeError::UnknownVersion(version).into());
        }
        Ok(Self {
            state: GroupState::read(reader)?,
            changes: read_changes(reader, MAX_FORK_DEPTH as usize + 1)?,
        })
    }
}
