//! One device's view of one group: its own sender key, the sender keys the other member
//! devices gave it, and the member list that decides who gets which key.
//!
//! Membership rules (a member is an address *and* the identity its account listed for it,
//! fed from the [`crate::device::DeviceDirectory`]):
//! * an added device receives our sender key at its *current* iteration, so it can read
//!   every message from now on and none sent before;
//! * removing a device drops its sender keys (its later messages are refused) and marks our
//!   own sender key for rotation: the next [`GroupSession::encrypt`] starts a fresh key and
//!   distributes it to the remaining members only, so the removed device cannot read
//!   anything sent after its removal;
//! * a new identity at a member's address is a removal of the old member plus an addition:
//!   its sender keys go, ours rotates, and the new device gets the fresh key.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::{
    GroupError, MAX_GROUP_MEMBERS, MAX_GROUP_PLAINTEXT_LEN,
    message::{GroupId, GroupMessage, MessageId, SenderKeyDistribution},
    sender_key::{OutboundSenderKey, SenderKeyRecord},
};
use crate::{
    Codec, DeviceAddress, Reader, device::VerifiedDevice, error::DecodeError, identity::IdentityKey,
};

/// Version byte of a serialised [`GroupSession`].
pub const GROUP_SESSION_FORMAT_VERSION: u8 = 0x01;
const FLAG_ROTATE: u8 = 0x01;
const FLAG_OUTBOUND: u8 = 0x02;
const MEMBER_HAS_KEY: u8 = 0x01;
const MEMBER_HAS_RECORD: u8 = 0x02;

/// What one [`GroupSession::encrypt`] asks the caller to send.
///
/// Deliver `distribution` to every device in `distribute_to` over the pairwise sessions
/// (wrapped in [`crate::control::Content::SenderKeyDistribution`]) *before* `message`; then
/// hand the one `message` and the `recipients` list to the relay, which fans it out.
#[derive(Debug)]
pub struct GroupSend {
    /// Our current sender key, if some members do not hold it yet.
    pub distribution: Option<SenderKeyDistribution>,
    /// The member devices that must receive `distribution` first.
    pub distribute_to: Vec<DeviceAddress>,
    /// The group message: one ciphertext for every member.
    pub message: Vec<u8>,
    /// Its id, for receipts.
    pub message_id: MessageId,
    /// Every other member device, sorted. Shared (not copied) between sends while the
    /// membership is unchanged, so its cost does not grow with the group per message.
    pub recipients: Arc<[DeviceAddress]>,
}

/// A decrypted group message. Its `Debug` shows the length only: the plaintext is the user's
/// message and never belongs in a log.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupPlaintext {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// The message id to acknowledge in receipts.
    pub message_id: MessageId,
}

impl std::fmt::Debug for GroupPlaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            plaintext,
            message_id,
        } = self;
        f.debug_struct("GroupPlaintext")
            .field("len", &plaintext.len())
            .field("message_id", message_id)
            .finish()
    }
}

/// One device's state in one group.
#[derive(Debug, Clone)]
pub struct GroupSession {
    group_id: GroupId,
    own: DeviceAddress,
    /// Other member devices, with the identity their account listed.
    members: BTreeMap<DeviceAddress, IdentityKey>,
    outbound: Option<OutboundSenderKey>,
    rotate: bool,
    /// Members holding our current sender key.
    distributed: BTreeSet<DeviceAddress>,
    inbound: BTreeMap<DeviceAddress, SenderKeyRecord>,
    /// `members` as a shared slice; rebuilt after a membership change.
    recipients: Option<Arc<[DeviceAddress]>>,
}

impl GroupSession {
    /// A group with no other members yet; `own` is this device's address.
    pub fn new(group_id: GroupId, own: DeviceAddress) -> Self {
        Self {
            group_id,
            own,
            members: BTreeMap::new(),
            outbound: None,
            rotate: false,
            distributed: BTreeSet::new(),
            inbound: BTreeMap::new(),
            recipients: None,
        }
    }

    /// The group id.
    pub fn group_id(&self) -> &GroupId {
        &self.group_id
    }

    /// This device.
    pub fn own_address(&self) -> &DeviceAddress {
        &self.own
    }

    /// Every other member device, sorted.
    pub fn members(&self) -> impl Iterator<Item = &DeviceAddress> {
        self.members.keys()
    }

    /// The identity a member device was added with.
    pub fn member_identity(&self, device: &DeviceAddress) -> Option<&IdentityKey> {
        self.members.get(device)
    }

    /// Whether `device` is a member (this device counts).
    pub fn is_member(&self, device: &DeviceAddress) -> bool {
        *device == self.own || self.members.contains_key(device)
    }

    /// Adds a member device (a new member, or a new device of a member) with the identity the
    /// directory lists for it. It receives our sender key with our next message, from that
    /// message on. The same device again changes nothing (`Ok(false)`); another identity at a
    /// member's address replaces the old member: removal (its keys dropped, ours rotated),
    /// then addition.
    pub fn add_member(&mut self, device: VerifiedDevice) -> Result<bool, GroupError> {
        if *device.address() == self.own {
            return Ok(false);
        }
        match self.members.get(device.address()) {
            Some(identity) if identity == device.identity() => return Ok(false),
            Some(_) => {
                self.remove_member(device.address());
            }
            // `members` excludes ourselves: the group holds members.len() + 1 devices.
            None if self.members.len() + 1 >= MAX_GROUP_MEMBERS => {
                return Err(GroupError::TooManyMembers);
            }
            None => {}
        }
        self.members
            .insert(device.address().clone(), *device.identity());
        self.recipients = None;
        Ok(true)
    }

    /// Removes a member device: forgets its sender keys and rotates ours before our next
    /// message. Returns `false` if it was not a member.
    pub fn remove_member(&mut self, device: &DeviceAddress) -> bool {
        if self.members.remove(device).is_none() {
            return false;
        }
        self.inbound.remove(device);
        self.distributed.remove(device);
        self.rotate = true;
        self.recipients = None;
        true
    }

    /// Removes every device of `user_id` (a member leaving or being removed). Returns how
    /// many devices were removed.
    pub fn remove_user(&mut self, user_id: &str) -> usize {
        let devices: Vec<DeviceAddress> = self
            .members
            .keys()
            .filter(|a| a.user_id() == user_id)
            .cloned()
            .collect();
        devices.iter().filter(|d| self.remove_member(d)).count()
    }

    /// Makes the member set exactly `devices` (from the directory's verified device lists):
    /// adds the new ones, removes (and rotates for) the missing ones and those whose listed
    /// identity changed. Our own address is ignored.
    pub fn set_members(
        &mut self,
        devices: impl IntoIterator<Item = VerifiedDevice>,
    ) -> Result<(), GroupError> {
        let wanted: BTreeMap<DeviceAddress, IdentityKey> = devices
            .into_iter()
            .filter(|d| *d.address() != self.own)
            .map(|d| (d.address().clone(), *d.identity()))
            .collect();
        if wanted.len() + 1 > MAX_GROUP_MEMBERS {
            return Err(GroupError::TooManyMembers);
        }
        let gone: Vec<DeviceAddress> = self
            .members
            .iter()
            .filter(|(address, identity)| wanted.get(*address) != Some(*identity))
            .map(|(address, _)| address.clone())
            .collect();
        for device in &gone {
            self.remove_member(device);
        }
        self.members.extend(wanted);
        self.recipients = None;
        Ok(())
    }

    /// Whether our next message starts a fresh sender key.
    pub fn rotation_pending(&self) -> bool {
        self.rotate || self.outbound.is_none()
    }

    /// Our current sender key id, if we have sent or prepared one.
    pub fn sender_key_id(&self) -> Option<u32> {
        self.outbound.as_ref().map(OutboundSenderKey::key_id)
    }

    /// Encrypts one message for the whole group: one AEAD and one signature, whatever the
    /// number of members. Rotates the sender key first if a member was removed.
    pub fn encrypt(
        &mut self,
        rng: &mut (impl RngCore + CryptoRng),
        plaintext: &[u8],
    ) -> Result<GroupSend, GroupError> {
        // Checked before anything changes, so a refused message leaves the state as it was.
        if plaintext.len() > MAX_GROUP_PLAINTEXT_LEN {
            return Err(GroupError::InvalidArgument("group plaintext over 64 KiB"));
        }
        // An exhausted chain (iteration u32::MAX, never sent) rotates like a removal does.
        let exhausted = self
            .outbound
            .as_ref()
            .is_some_and(|o| o.iteration() == u32::MAX);
        if self.rotation_pending() || exhausted {
            self.outbound = Some(OutboundSenderKey::generate(rng));
            self.distributed.clear();
            self.rotate = false;
        }
        let Some(outbound) = self.outbound.as_mut() else {
            return Err(GroupError::ChainExhausted);
        };
        // `distributed` only ever holds members (removal takes a device out of both), so
        // equal sizes mean everyone holds the key: the common case costs nothing per member.
        let distribute_to: Vec<DeviceAddress> = if self.distributed.len() == self.members.len() {
            Vec::new()
        } else {
            self.members
                .keys()
                .filter(|m| !self.distributed.contains(*m))
                .cloned()
                .collect()
        };
        let distribution =
            (!distribute_to.is_empty()).then(|| outbound.distribution(&self.group_id));
        let message_id = MessageId::group(outbound.key_id(), outbound.iteration());
        let message = outbound.encrypt(&self.group_id, &self.own, plaintext)?;
        self.distributed.extend(distribute_to.iter().cloned());
        Ok(GroupSend {
            distribution,
            distribute_to,
            message,
            message_id,
            recipients: self.recipients(),
        })
    }

    fn recipients(&mut self) -> Arc<[DeviceAddress]> {
        self.recipients
            .get_or_insert_with(|| self.members.keys().cloned().collect())
            .clone()
    }

    /// Our current sender key for re-sending to a member that lost it (e.g. a restored
    /// device); `None` before our first message.
    pub fn current_distribution(&self) -> Option<SenderKeyDistribution> {
        self.outbound
            .as_ref()
            .map(|o| o.distribution(&self.group_id))
    }

    /// Stores a sender key that `sender` sent us over our pairwise session. `sender` is what
    /// [`crate::device::DeviceDirectory::decrypt`] returned for that session: the member must
    /// have been added with exactly that identity, so a distribution from an impostor's
    /// session at a member's address is refused. A signing key already held for another
    /// sender of the group is refused too (a member re-distributing someone else's key).
    pub fn process_distribution(
        &mut self,
        sender: &VerifiedDevice,
        distribution: &SenderKeyDistribution,
    ) -> Result<(), GroupError> {
        if distribution.group_id != self.group_id {
            return Err(GroupError::WrongGroup);
        }
        let address = sender.address();
        if self.members.get(address) != Some(sender.identity()) {
            return Err(GroupError::NotAMember(address.clone()));
        }
        if let Some((holder, _)) = self.inbound.iter().find(|(holder, record)| {
            *holder != address && record.holds_signing_key(&distribution.signing_key)
        }) {
            return Err(GroupError::SigningKeyInUse {
                holder: holder.clone(),
            });
        }
        self.inbound
            .entry(address.clone())
            .or_default()
            .add(distribution)
    }

    /// Decrypts a group message from `sender` (the relay names the sender; the signature
    /// proves it). On any error nothing changes.
    pub fn decrypt(
        &mut self,
        sender: &DeviceAddress,
        bytes: &[u8],
    ) -> Result<GroupPlaintext, GroupError> {
        let message = GroupMessage::from_bytes(bytes)?;
        if !self.members.contains_key(sender) {
            return Err(GroupError::NotAMember(sender.clone()));
        }
        let unknown = || GroupError::UnknownSenderKey {
            sender: sender.clone(),
            key_id: message.key_id(),
        };
        let state = self
            .inbound
            .get_mut(sender)
            .ok_or_else(unknown)?
            .state_mut(message.key_id())
            .ok_or_else(unknown)?;
        let plaintext = state.decrypt(&self.group_id, sender, &message)?;
        Ok(GroupPlaintext {
            plaintext,
            message_id: message.message_id(),
        })
    }

    /// Serialises the whole state (secret: store it encrypted at rest). Layout in
    /// `docs/protocol-groups.md`, "Group session records".
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::new());
        out.push(GROUP_SESSION_FORMAT_VERSION);
        self.group_id.write(&mut out);
        self.own.write(&mut out);
        let mut flags = 0;
        if self.rotate {
            flags |= FLAG_ROTATE;
        }
        if self.outbound.is_some() {
            flags |= FLAG_OUTBOUND;
        }
        out.push(flags);
        if let Some(outbound) = &self.outbound {
            outbound.write(&mut out);
        }
        // At most MAX_GROUP_MEMBERS - 1, enforced by every way in.
        out.extend_from_slice(&u16::try_from(self.members.len()).unwrap_or(0).to_be_bytes());
        for (member, identity) in &self.members {
            member.write(&mut out);
            out.extend_from_slice(&identity.to_bytes());
            let record = self.inbound.get(member);
            let mut flags = 0;
            if self.distributed.contains(member) {
                flags |= MEMBER_HAS_KEY;
            }
            if record.is_some() {
                flags |= MEMBER_HAS_RECORD;
            }
            out.push(flags);
            if let Some(record) = record {
                record.write(&mut out);
            }
        }
        out
    }

    /// Decodes [`Self::to_bytes`] canonically: members strictly ascending, never ourselves,
    /// no unknown flag bits, every count within its limit, no trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let version = reader.u8()?;
        if version != GROUP_SESSION_FORMAT_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let group_id = GroupId::read(&mut reader)?;
        let own = DeviceAddress::read(&mut reader)?;
        let flags = reader.u8()?;
        if flags & !(FLAG_ROTATE | FLAG_OUTBOUND) != 0 {
            return Err(DecodeError::NonCanonical);
        }
        let outbound = if flags & FLAG_OUTBOUND != 0 {
            Some(OutboundSenderKey::read(&mut reader)?)
        } else {
            None
        };
        let count = usize::from(u16::from_be_bytes(reader.array()?));
        if count >= MAX_GROUP_MEMBERS {
            return Err(DecodeError::TooLarge);
        }
        let mut session = Self::new(group_id, own);
        session.rotate = flags & FLAG_ROTATE != 0;
        for _ in 0..count {
            let member = DeviceAddress::read(&mut reader)?;
            if member == session.own
                || session
                    .members
                    .last_key_value()
                    .is_some_and(|(last, _)| *last >= member)
            {
                return Err(DecodeError::NonCanonical);
            }
            let identity = IdentityKey::read_trusted(&mut reader)?;
            let member_flags = reader.u8()?;
            if member_flags & !(MEMBER_HAS_KEY | MEMBER_HAS_RECORD) != 0
                || (member_flags & MEMBER_HAS_KEY != 0 && outbound.is_none())
            {
                return Err(DecodeError::NonCanonical);
            }
            if member_flags & MEMBER_HAS_KEY != 0 {
                session.distributed.insert(member.clone());
            }
            if member_flags & MEMBER_HAS_RECORD != 0 {
                session
                    .inbound
                    .insert(member.clone(), SenderKeyRecord::read(&mut reader)?);
            }
            session.members.insert(member, identity);
        }
        reader.finish()?;
        session.outbound = outbound;
        Ok(session)
    }

    /// Decodes a state restored from a backup (or any copy that may be older than the last
    /// message sent): like [`Self::from_bytes`], but our sender key rotates before the next
    /// message, because its next iteration may already have been used and a key and nonce
    /// must never encrypt twice.
    pub fn from_backup_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut session = Self::from_bytes(bytes)?;
        session.rotate = true;
        Ok(session)
    }

    /// Sender-key states held for `sender` (for tests and diagnostics).
    pub fn sender_key_states(&self, sender: &DeviceAddress) -> usize {
        self.inbound.get(sender).map_or(0, SenderKeyRecord::len)
    }
}
