//! Groups in a [`Device`]: the signed membership of e2ee-core (`group::membership`) with the
//! sender keys of `group::GroupSession`, wired to the store, the outbox and the log.
//!
//! * Every change is signed by this device (its account's certificate) and sent over the
//!   pairwise sessions to every device of every member before and after it; users it adds
//!   get a welcome instead. Received changes are checked against the state they build on.
//! * The member *devices* are each member user's listed devices, and only while the
//!   directory's account key for that user is the one the group pinned: neither the server
//!   nor a changed account key adds a device to the group.
//! * A group message is one ciphertext for every member device; it names the sender's
//!   state, and a member that does not hold that state asks the sender for the changes.

use e2ee_core::{
    Codec, DeviceAddress, GroupStore, UserId,
    control::Content,
    device::{AccountIdentityKey, DeviceCertificate, DeviceDirectory, FanoutPlan, VerifiedDevice},
    group::{
        GroupError, GroupId, GroupSession, SenderKeyDistribution,
        membership::{
            GroupChange, GroupHistory, GroupSettings, GroupSigner, GroupState, GroupSyncRequest,
            GroupWelcome, Operation, Received as HistoryReceived, Role, StateRef, Update,
        },
    },
};
use rand_core::{OsRng, RngCore};

use super::conversation::ConversationKey;
use super::group_wire::{
    BODY_GROUP_CHANGE, BODY_GROUP_KEY_REQUEST, BODY_GROUP_SYNC, BODY_GROUP_WELCOME,
    BODY_WELCOME_PART, GroupChat, GroupEnvelope, group_content,
};
use super::log::{self, LoggedMessage};
use super::messaging::{log_arrival, owe_receipt, put_outbox, queue_in};
use super::welcome_parts::{take_part, welcome_contents};
use super::{CERTIFICATE, Device, Error, MAX_MESSAGE_BODY_LEN, OutboxEntry, now_ms, user_id};
use crate::store::{DeviceStore, Items, Space, StoreError, Transaction};

/// Most changes one answer to a sync request carries; the asker asks again for the rest.
pub const MAX_SYNC_ANSWER: usize = 64;

/// A group as the app shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group id (32 random bytes).
    pub id: Vec<u8>,
    /// How many changes the group has had.
    pub version: u64,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// The avatar reference (empty when unset).
    pub avatar: Vec<u8>,
    /// Only admins may send.
    pub only_admins_send: bool,
    /// Only admins may change the name, description and avatar.
    pub only_admins_edit_info: bool,
    /// The member users, by user id.
    pub members: Vec<GroupMemberInfo>,
}

/// A group message committed to the log and the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentGroupMessage {
    /// Its id (receipts name it).
    pub id: u64,
    /// What to hand the relay, in order: our sender key to the devices that lacked it (if
    /// any), then the message, one ciphertext for every member device.
    pub entries: Vec<OutboxEntry>,
}

impl SentGroupMessage {
    /// The message's own entry (the last).
    pub fn message(&self) -> &OutboxEntry {
        // `entries` always ends with the message.
        &self.entries[self.entries.len() - 1]
    }
}

/// One member user of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMemberInfo {
    /// The user id.
    pub user: String,
    /// Whether they are an admin.
    pub admin: bool,
}

/// One change an app asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEdit {
    /// Add a user (we must know their account: learn their device list first).
    Add {
        /// The user.
        user: String,
        /// As an admin.
        admin: bool,
    },
    /// Remove a member.
    Remove(String),
    /// Our user leaves.
    Leave,
    /// Make a member an admin.
    Promote(String),
    /// Make an admin a member.
    Demote(String),
    /// Rename.
    Rename(String),
    /// Set the description.
    Describe(String),
    /// Set the avatar reference.
    SetAvatar(Vec<u8>),
    /// Set the permissions.
    Settings {
        /// Only admins may send.
        only_admins_send: bool,
        /// Only admins may edit the info.
        only_admins_edit_info: bool,
    },
}

/// What a group body or group message did when it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupReceived {
    /// The group's state is another one now (a change, a welcome, a sync answer).
    Changed(GroupInfo),
    /// Nothing the app sees changed (a duplicate, a change held for its base, a sender key,
    /// a sync request answered).
    Quiet,
    /// A group message from `from` came under a sender key we do not hold (its distribution
    /// was lost, or came before we knew the group): it cannot be read, and we asked `from`
    /// for its current key, so its next messages can.
    AskedForSenderKey {
        /// The sender device, as `user.device`.
        from: String,
    },
}

/// What a group envelope turned out to be.
pub(super) enum GroupArrival {
    /// A message, now in the log.
    Message(LoggedMessage),
    /// Unreadable for want of the sender's key, which we asked for.
    AskedForSenderKey,
}

pub(crate) fn group_id(id: &[u8]) -> Result<GroupId, Error> {
    GroupId::new(id).map_err(|_| Error::InvalidInput { what: "group id" })
}

pub(crate) fn info(state: &GroupState) -> GroupInfo {
    GroupInfo {
        id: state.group_id().as_bytes().to_vec(),
        version: state.version(),
        name: state.name().to_owned(),
        description: state.description().to_owned(),
        avatar: state.avatar().to_vec(),
        only_admins_send: state.settings().only_admins_send,
        only_admins_edit_info: state.settings().only_admins_edit_info,
        members: state
            .members()
            .map(|(user, m)| GroupMemberInfo {
                user: user.to_string(),
                admin: m.role == Role::Admin,
            })
            .collect(),
    }
}

fn decode_history(bytes: &[u8]) -> Result<GroupHistory, Error> {
    Ok(GroupHistory::from_bytes(bytes).map_err(|_| StoreError::Corrupt("group history"))?)
}

fn load_history(items: &impl Items, id: &GroupId) -> Result<Option<GroupHistory>, Error> {
    items
        .get(Space::GROUP_HISTORY, id.as_bytes())?
        .map(|b| decode_history(&b))
        .transpose()
}

fn final_change_lookup(id: &GroupId, version: u64) -> Vec<u8> {
    let mut lookup = id.as_bytes().to_vec();
    lookup.extend_from_slice(&version.to_be_bytes());
    lookup
}

/// Stores the history and the changes that became final.
fn save_history(
    tx: &mut Transaction<'_>,
    history: &GroupHistory,
    update: &Update,
) -> Result<(), Error> {
    let id = history.group_id();
    for change in &update.finalised {
        tx.put(
            Space::GROUP_CHANGES,
            &final_change_lookup(id, change.version()),
            &change.to_bytes(),
        )?;
    }
    tx.put(Space::GROUP_HISTORY, id.as_bytes(), &history.to_bytes())?;
    Ok(())
}

/// The devices of the group's members that may hold its keys: each member's listed devices,
/// while the directory's account for that member is the one the group pinned. Our own
/// device is left out. Members we know no device list for are named in the second list.
fn member_devices(
    directory: &DeviceDirectory,
    own: &DeviceAddress,
    state: &GroupState,
) -> (Vec<VerifiedDevice>, Vec<UserId>) {
    let mut devices = Vec::new();
    let mut unknown = Vec::new();
    for (user, member) in state.members() {
        match directory.account(user.as_str()) {
            Some(account) if *account == member.account => {}
            // Another account under this user id (a swapped or reinstalled account): none of
            // its devices is a member until an admin adds the user again under it.
            Some(_) => continue,
            None => {
                unknown.push(user.clone());
                continue;
            }
        }
        match directory.listed_devices(&[user]) {
            Ok(listed) => devices.extend(listed.into_iter().filter(|d| d.address() != own)),
            Err(_) => unknown.push(user.clone()),
        }
    }
    (devices, unknown)
}

/// `users`' ready devices, for content the receive path sends on its own (a sync request or
/// answer): devices without a session are skipped, not waited for.
fn ready_devices(
    tx: &mut Transaction<'_>,
    directory: &DeviceDirectory,
    own: &DeviceAddress,
    users: &[&UserId],
) -> Result<FanoutPlan, Error> {
    let mut plan = directory.plan(&DeviceStore::over(&mut *tx), own, users)?;
    plan.needs_session.clear();
    plan.mismatched.clear();
    // Only the users asked for (plan adds our own other devices).
    plan.ready.retain(|d| users.contains(&&d.user));
    Ok(plan)
}

/// The pairwise plaintext that hands `distribution` (our sender key) to a member device.
fn distribution_content(distribution: SenderKeyDistribution) -> Result<Vec<u8>, Error> {
    Ok(Content::SenderKeyDistribution(Box::new(distribution))
        .to_bytes()
        .map_err(|e| Error::Refused(e.to_string()))?
        .to_vec())
}

/// [`queue_in`] under a fresh random message id (content nothing else refers to).
fn queue_fresh(
    tx: &mut Transaction<'_>,
    directory: &DeviceDirectory,
    cipher: &e2ee_core::SessionCipher,
    plan: &FanoutPlan,
    plaintext: &[u8],
) -> Result<OutboxEntry, Error> {
    queue_in(tx, directory, cipher, plan, OsRng.next_u64(), plaintext)
}

impl Device {
    /// The account key we trust for `user`: what a group pins when it adds them.
    fn account_of(&self, user: &UserId) -> Result<AccountIdentityKey, Error> {
        self.directory
            .account(user.as_str())
            .copied()
            .ok_or(Error::UnknownUser {
                user: user.to_string(),
            })
    }

    fn certificate(&mut self) -> Result<DeviceCertificate, Error> {
        let bytes = self
            .store
            .vault()
            .get(Space::IDENTITY, CERTIFICATE)?
            .ok_or(Error::NotPermitted {
                what: "this device has no certificate (made before groups existed)",
            })?;
        DeviceCertificate::from_bytes(&bytes)
            .map_err(|_| Error::Store(StoreError::Corrupt("certificate")))
    }

    /// Every group we hold.
    pub fn groups(&mut self) -> Result<Vec<GroupInfo>, Error> {
        let mut groups = Vec::new();
        for bytes in self.store.vault().values(Space::GROUP_HISTORY)? {
            let history = decode_history(&bytes)?;
            groups.push(info(history.state()));
        }
        groups.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(groups)
    }

    /// One group, as it stands here.
    pub fn group(&mut self, id: &[u8]) -> Result<GroupInfo, Error> {
        let id = group_id(id)?;
        let history = load_history(self.store.vault(), &id)?.ok_or(Error::UnknownGroup)?;
        Ok(info(history.state()))
    }

    /// Member users of group `id` whose device lists we do not hold (learn them before
    /// sending to the group).
    pub fn group_users_unknown(&mut self, id: &[u8]) -> Result<Vec<String>, Error> {
        let id = group_id(id)?;
        let history = load_history(self.store.vault(), &id)?.ok_or(Error::UnknownGroup)?;
        let (_, unknown) = member_devices(&self.directory, &self.address, history.state());
        Ok(unknown.iter().map(ToString::to_string).collect())
    }

    /// Creates a group named `name` with us as its admin and `members` (users whose device
    /// lists we hold) as members, and welcomes every member device. Returns the group id
    /// and the outbox entries. Nothing is committed on an error.
    pub fn create_group(
        &mut self,
        name: &str,
        members: &[&str],
    ) -> Result<(Vec<u8>, Vec<OutboxEntry>), Error> {
        let mut raw = [0u8; 32];
        OsRng.fill_bytes(&mut raw);
        let id = group_id(&raw)?;
        let own = self.address.user.clone();
        let own_account = self.account_of(&own)?;
        let mut adds = Vec::new();
        for member in members {
            let user = user_id(member)?;
            if user == own || adds.iter().any(|(u, _)| *u == user) {
                continue;
            }
            let account = self.account_of(&user)?;
            adds.push((user, account));
        }
        let certificate = self.certificate()?;
        let identity = self.identity()?;
        let signer = GroupSigner::new(&identity, certificate)?;
        let mut history = GroupHistory::new(id.clone());
        let mut operations = vec![
            Operation::Add {
                user: own.clone(),
                account: own_account,
                role: Role::Admin,
            },
            Operation::SetName(name.to_owned()),
        ];
        let mut update = Update::default();
        let limit = e2ee_core::group::membership::MAX_CHANGE_OPERATIONS;
        for (user, account) in adds {
            operations.push(Operation::Add {
                user,
                account,
                role: Role::Member,
            });
            if operations.len() == limit {
                let (_, u) = history.commit(&signer, std::mem::take(&mut operations))?;
                update.finalised.extend(u.finalised);
            }
        }
        if !operations.is_empty() {
            let (_, u) = history.commit(&signer, operations)?;
            update.finalised.extend(u.finalised);
        }
        let users: Vec<String> = history
            .state()
            .members()
            .map(|(u, _)| u.to_string())
            .collect();
        let welcome = welcome_contents(&history.welcome())?;
        let plan = self.ready_plan(&users.iter().map(String::as_str).collect::<Vec<_>>())?;
        let (directory, cipher) = (&self.directory, &self.cipher);
        let entries = self.store.vault().transaction(|tx| {
            save_history(tx, &history, &update)?;
            welcome
                .iter()
                .map(|part| queue_fresh(tx, directory, cipher, &plan, part))
                .collect::<Result<Vec<_>, Error>>()
        })?;
        Ok((raw.to_vec(), entries))
    }

    /// Signs and applies one change to group `id` and sends it to every device of every
    /// member before and after it (users it adds get a welcome). Nothing is committed on an
    /// error: a change we may not make fails with [`Error::GroupChangeRefused`].
    pub fn change_group(&mut self, id: &[u8], edit: GroupEdit) -> Result<Vec<OutboxEntry>, Error> {
        let id = group_id(id)?;
        let mut history = load_history(self.store.vault(), &id)?.ok_or(Error::UnknownGroup)?;
        let before: Vec<UserId> = history.state().members().map(|(u, _)| u.clone()).collect();
        let operation = match edit {
            GroupEdit::Add { user, admin } => {
                let user = user_id(&user)?;
                let account = self.account_of(&user)?;
                Operation::Add {
                    user,
                    account,
                    role: if admin { Role::Admin } else { Role::Member },
                }
            }
            GroupEdit::Remove(user) => Operation::Remove {
                user: user_id(&user)?,
            },
            GroupEdit::Leave => Operation::Leave,
            GroupEdit::Promote(user) => Operation::Promote {
                user: user_id(&user)?,
            },
            GroupEdit::Demote(user) => Operation::Demote {
                user: user_id(&user)?,
            },
            GroupEdit::Rename(name) => Operation::SetName(name),
            GroupEdit::Describe(text) => Operation::SetDescription(text),
            GroupEdit::SetAvatar(avatar) => Operation::SetAvatar(avatar),
            GroupEdit::Settings {
                only_admins_send,
                only_admins_edit_info,
            } => Operation::SetSettings(GroupSettings {
                only_admins_send,
                only_admins_edit_info,
            }),
        };
        let certificate = self.certificate()?;
        let identity = self.identity()?;
        let signer = GroupSigner::new(&identity, certificate)?;
        let (change, update) = history.commit(&signer, vec![operation])?;
        let after: Vec<UserId> = history.state().members().map(|(u, _)| u.clone()).collect();
        // Everyone before and after hears of the change (a removed member learns it is out);
        // users new to the group get the whole group instead.
        let told: Vec<String> = before.iter().map(ToString::to_string).collect();
        let added: Vec<String> = after
            .iter()
            .filter(|u| !before.contains(u))
            .map(ToString::to_string)
            .collect();
        let change_body = group_content(BODY_GROUP_CHANGE, &change.to_bytes())?;
        let told_plan = self.ready_plan(&told.iter().map(String::as_str).collect::<Vec<_>>());
        let told_plan = match told_plan {
            // Nobody else (we were the only member and left): nothing to send.
            Err(Error::NoRecipients) => None,
            other => Some(other?),
        };
        let welcome = if added.is_empty() {
            None
        } else {
            let plan = self.ready_plan(&added.iter().map(String::as_str).collect::<Vec<_>>())?;
            Some((plan, welcome_contents(&history.welcome())?))
        };
        let devices = member_devices(&self.directory, &self.address, history.state()).0;
        let (directory, cipher, own) = (&self.directory, &self.cipher, &self.address);
        self.store.vault().transaction(|tx| {
            save_history(tx, &history, &update)?;
            refresh_session(tx, own, &id, devices)?;
            let mut entries = Vec::new();
            if let Some(plan) = &told_plan {
                // The welcome's devices get the welcome only.
                let mut plan = plan.clone();
                if let Some((welcome_plan, _)) = &welcome {
                    plan.ready.retain(|d| !welcome_plan.ready.contains(d));
                }
                if !plan.ready.is_empty() {
                    entries.push(queue_fresh(tx, directory, cipher, &plan, &change_body)?);
                }
            }
            if let Some((plan, parts)) = &welcome {
                for part in parts {
                    entries.push(queue_fresh(tx, directory, cipher, plan, part)?);
                }
            }
            Ok(entries)
        })
    }

    /// Sends a chat message to group `id`: one ciphertext for every member device (and our
    /// own other devices, as a sent transcript), our sender key first to the devices that
    /// lack it. Commits the sender-key step, the outbox entries and the log record at once.
    pub fn send_group_message(
        &mut self,
        id: &[u8],
        body: &[u8],
    ) -> Result<SentGroupMessage, Error> {
        if body.len() > MAX_MESSAGE_BODY_LEN {
            return Err(Error::MessageTooLarge {
                max: MAX_MESSAGE_BODY_LEN,
            });
        }
        let gid = group_id(id)?;
        let history = load_history(self.store.vault(), &gid)?.ok_or(Error::UnknownGroup)?;
        let state = history.state();
        if state.member(self.address.user.as_str()).is_none() {
            return Err(Error::NotPermitted {
                what: "we are not a member",
            });
        }
        if !state.may_send(self.address.user.as_str()) {
            return Err(Error::NotPermitted {
                what: "only admins may send",
            });
        }
        let (devices, unknown) = member_devices(&self.directory, &self.address, state);
        if let Some(user) = unknown.first() {
            return Err(Error::UnknownUser {
                user: user.to_string(),
            });
        }
        let msg_id = OsRng.next_u64();
        let sent_at_ms = now_ms();
        let chat = GroupChat {
            state: StateRef {
                version: state.version(),
                hash: history.state_hash(),
            },
            id: msg_id,
            sent_at_ms,
            body: body.to_vec(),
        };
        let mut session = member_session(&self.store, &self.address, &gid, devices)?;
        let send = session.encrypt(&mut OsRng, &chat.to_bytes())?;
        // The devices that lack our key get it over their pairwise sessions first.
        let key_plan = match &send.distribution {
            Some(distribution) if !send.distribute_to.is_empty() => {
                let mut users: Vec<&str> =
                    send.distribute_to.iter().map(|d| d.user.as_str()).collect();
                users.dedup();
                let mut plan = self.ready_plan(&users)?;
                plan.ready.retain(|d| send.distribute_to.contains(d));
                Some((plan, distribution_content(distribution.clone())?))
            }
            _ => None,
        };
        let envelope = GroupEnvelope {
            group_id: gid.clone(),
            message: send.message,
        }
        .to_bytes();
        let recipients: Vec<DeviceAddress> = send.recipients.iter().cloned().collect();
        let others: Vec<DeviceAddress> = recipients
            .iter()
            .filter(|d| d.user != self.address.user)
            .cloned()
            .collect();
        let record = LoggedMessage::outgoing(
            msg_id,
            self.address.clone(),
            &ConversationKey::Group(gid.clone()),
            sent_at_ms,
            body.to_vec(),
            others,
        );
        let (directory, cipher) = (&self.directory, &self.cipher);
        let entries = self.store.vault().transaction(|tx| {
            DeviceStore::over(&mut *tx).store_group(&session)?;
            let mut entries = Vec::new();
            if let Some((plan, content)) = &key_plan {
                entries.push(queue_fresh(tx, directory, cipher, plan, content)?);
            }
            if !log::append(tx, &record)? {
                return Err(Error::Refused("message id already in the log".into()));
            }
            let envelopes = recipients
                .into_iter()
                .map(|d| (d, envelope.clone()))
                .collect();
            entries.push(put_outbox(tx, msg_id, envelopes)?);
            Ok(entries)
        })?;
        Ok(SentGroupMessage {
            id: msg_id,
            entries,
        })
    }

    /// Welcomes our own other devices to every group our user is in (a device just linked
    /// knows none): one entry per group, to every other device of ours. Fails with
    /// [`Error::NeedsBundles`] while a device of ours has no session yet.
    pub fn welcome_own_devices(&mut self) -> Result<Vec<OutboxEntry>, Error> {
        let own = self.address.user.to_string();
        let mut welcomes = Vec::new();
        for bytes in self.store.vault().values(Space::GROUP_HISTORY)? {
            let history = decode_history(&bytes)?;
            if history.state().member(own.as_str()).is_some() {
                welcomes.extend(welcome_contents(&history.welcome())?);
            }
        }
        if welcomes.is_empty() {
            return Ok(Vec::new());
        }
        let plan = match self.ready_plan(&[own.as_str()]) {
            Err(Error::NoRecipients) => return Ok(Vec::new()),
            other => other?,
        };
        let (directory, cipher) = (&self.directory, &self.cipher);
        self.store.vault().transaction(|tx| {
            welcomes
                .iter()
                .map(|welcome| queue_fresh(tx, directory, cipher, &plan, welcome))
                .collect()
        })
    }

    /// Marks messages of group `id` (each by its author's user and id) read here and owes
    /// each author a read receipt; the author's copy turns `Read` once every member device
    /// has read it. Returns the records that changed.
    pub fn mark_group_read(
        &mut self,
        id: &[u8],
        messages: &[(String, u64)],
    ) -> Result<Vec<LoggedMessage>, Error> {
        let gid = group_id(id)?;
        let conversation = super::ConversationId::Group(gid.as_bytes().to_vec());
        self.store.vault().transaction(|tx| {
            let mut changed = Vec::new();
            for (author, message_id) in messages {
                let author = user_id(author)?;
                let Some(mut record) = log::get(tx, &author, *message_id)? else {
                    continue;
                };
                if record.conversation != conversation
                    || record.outgoing
                    || record.status == super::MessageStatus::ReadHere
                {
                    continue;
                }
                record.mark_read_here();
                log::update(tx, &record)?;
                owe_receipt(tx, &author, true, *message_id)?;
                changed.push(record);
            }
            Ok(changed)
        })
    }

    /// The messages of group `id` before position `before` (`None`: the newest).
    pub fn group_messages(
        &mut self,
        id: &[u8],
        before: Option<u64>,
        limit: usize,
    ) -> Result<super::MessagePage, Error> {
        let gid = group_id(id)?;
        Ok(log::page(
            self.store.vault(),
            &ConversationKey::Group(gid),
            before,
            limit,
        )?)
    }
}

/// Our group session (new if there is none) with the member devices of the current state:
/// one that left makes our key rotate before the next message. Not stored: the caller stores
/// it once, with whatever else it changes.
fn member_session(
    store: &impl GroupStore,
    own: &DeviceAddress,
    id: &GroupId,
    devices: Vec<VerifiedDevice>,
) -> Result<GroupSession, Error> {
    let mut session = store
        .load_group(id)?
        .unwrap_or_else(|| GroupSession::new(id.clone(), own.clone()));
    session.set_members(devices)?;
    Ok(session)
}

/// [`member_session`], stored.
fn refresh_session(
    tx: &mut Transaction<'_>,
    own: &DeviceAddress,
    id: &GroupId,
    devices: Vec<VerifiedDevice>,
) -> Result<GroupSession, Error> {
    let mut store = DeviceStore::over(&mut *tx);
    let session = member_session(&store, own, id, devices)?;
    store.store_group(&session)?;
    Ok(session)
}

/// The context the receive path works in.
pub(super) struct ReceiveContext<'a> {
    pub(super) directory: &'a DeviceDirectory,
    pub(super) cipher: &'a e2ee_core::SessionCipher,
    pub(super) own: &'a DeviceAddress,
}

impl ReceiveContext<'_> {
    /// Asks `from`'s user for the changes of `history`'s group after our head.
    fn ask_for_changes(
        &self,
        tx: &mut Transaction<'_>,
        history: &GroupHistory,
        from: &UserId,
    ) -> Result<(), Error> {
        let request = GroupSyncRequest {
            group_id: history.group_id().clone(),
            have_version: history.state().version(),
        };
        let plan = ready_devices(tx, self.directory, self.own, &[from])?;
        if !plan.ready.is_empty() {
            self.queue(tx, &plan, BODY_GROUP_SYNC, &request.to_bytes())?;
        }
        Ok(())
    }

    /// Puts a group body for `plan`'s devices in the outbox.
    fn queue(
        &self,
        tx: &mut Transaction<'_>,
        plan: &FanoutPlan,
        tag: u8,
        bytes: &[u8],
    ) -> Result<(), Error> {
        let content = group_content(tag, bytes)?;
        queue_fresh(tx, self.directory, self.cipher, plan, &content)?;
        Ok(())
    }

    /// Takes in one change; stores what changed and updates our sender-key members.
    fn take_change(
        &self,
        tx: &mut Transaction<'_>,
        history: &mut GroupHistory,
        change: GroupChange,
        from: &UserId,
    ) -> Result<bool, Error> {
        match history.receive(change)? {
            HistoryReceived::Applied(update) => {
                save_history(tx, history, &update)?;
                let devices = member_devices(self.directory, self.own, history.state()).0;
                refresh_session(tx, self.own, history.group_id(), devices)?;
                Ok(update.head_changed)
            }
            HistoryReceived::Held { .. } => {
                save_history(tx, history, &Update::default())?;
                self.ask_for_changes(tx, history, from)?;
                Ok(false)
            }
            HistoryReceived::Duplicate => Ok(false),
        }
    }

    /// A pairwise group body from `sender` (a verified device).
    pub(super) fn group_body(
        &self,
        tx: &mut Transaction<'_>,
        sender: &VerifiedDevice,
        tag: u8,
        bytes: &[u8],
    ) -> Result<GroupReceived, Error> {
        let from = &sender.address().user;
        match tag {
            BODY_GROUP_CHANGE => {
                let change = GroupChange::from_bytes(bytes)?;
                let Some(mut history) = load_history(tx, change.group_id())? else {
                    // A change of a group we are not in (yet): its welcome brings it.
                    return Ok(GroupReceived::Quiet);
                };
                if self.take_change(tx, &mut history, change, from)? {
                    Ok(GroupReceived::Changed(info(history.state())))
                } else {
                    Ok(GroupReceived::Quiet)
                }
            }
            BODY_WELCOME_PART => match take_part(tx, sender.address(), bytes)? {
                Some(welcome) => self.group_body(tx, sender, BODY_GROUP_WELCOME, &welcome),
                None => Ok(GroupReceived::Quiet),
            },
            BODY_GROUP_WELCOME => {
                let welcome = GroupWelcome::from_bytes(bytes)?;
                let id = welcome.state.group_id().clone();
                let mut changed = false;
                let history = match load_history(tx, &id)? {
                    Some(mut history) => {
                        for change in welcome.changes {
                            changed |= self.take_change(tx, &mut history, change, from)?;
                        }
                        history
                    }
                    None => {
                        let history = GroupHistory::from_welcome(welcome)?;
                        let state = history.state();
                        // Only an admin adds us, and only a group we are in is ours to keep.
                        if state.member(self.own.user.as_str()).is_none() {
                            return Err(Error::NotPermitted {
                                what: "a welcome to a group we are not in",
                            });
                        }
                        if state.member(from.as_str()).is_none() {
                            return Err(Error::NotPermitted {
                                what: "a welcome from outside the group",
                            });
                        }
                        save_history(tx, &history, &Update::default())?;
                        let devices = member_devices(self.directory, self.own, state).0;
                        refresh_session(tx, self.own, &id, devices)?;
                        changed = true;
                        history
                    }
                };
                Ok(if changed {
                    GroupReceived::Changed(info(history.state()))
                } else {
                    GroupReceived::Quiet
                })
            }
            BODY_GROUP_SYNC => {
                let request =
                    GroupSyncRequest::from_bytes(bytes).map_err(|_| Error::InvalidInput {
                        what: "group sync request",
                    })?;
                let history = load_history(tx, &request.group_id)?.ok_or(Error::UnknownGroup)?;
                if history.state().member(from.as_str()).is_none() {
                    return Err(Error::NotPermitted {
                        what: "a sync request from outside the group",
                    });
                }
                let root = history.final_state().version();
                let mut changes = Vec::new();
                for version in request.have_version.saturating_add(1)..=root {
                    if changes.len() == MAX_SYNC_ANSWER {
                        break;
                    }
                    if let Some(bytes) = tx.get(
                        Space::GROUP_CHANGES,
                        &final_change_lookup(&request.group_id, version),
                    )? {
                        changes.push(bytes.to_vec());
                    }
                }
                for change in history.changes_after(request.have_version.max(root))? {
                    if changes.len() == MAX_SYNC_ANSWER {
                        break;
                    }
                    changes.push(change.to_bytes());
                }
                let plan = ready_devices(tx, self.directory, self.own, &[from])?;
                if plan.ready.is_empty() {
                    return Ok(GroupReceived::Quiet);
                }
                for change in changes {
                    self.queue(tx, &plan, BODY_GROUP_CHANGE, &change)?;
                }
                Ok(GroupReceived::Quiet)
            }
            BODY_GROUP_KEY_REQUEST => {
                let id = group_id(bytes)?;
                let history = load_history(tx, &id)?.ok_or(Error::UnknownGroup)?;
                let devices = member_devices(self.directory, self.own, history.state()).0;
                if !devices.iter().any(|d| d.address() == sender.address()) {
                    return Err(Error::NotPermitted {
                        what: "a key request from outside the group",
                    });
                }
                let session = refresh_session(tx, self.own, &id, devices)?;
                // Nothing sent yet, or our key rotates before the next message anyway.
                let Some(distribution) = session
                    .current_distribution()
                    .filter(|_| !session.rotation_pending())
                else {
                    return Ok(GroupReceived::Quiet);
                };
                let mut plan = ready_devices(tx, self.directory, self.own, &[from])?;
                plan.ready.retain(|d| d == sender.address());
                if !plan.ready.is_empty() {
                    let content = distribution_content(distribution)?;
                    queue_fresh(tx, self.directory, self.cipher, &plan, &content)?;
                }
                Ok(GroupReceived::Quiet)
            }
            _ => Err(Error::InvalidInput { what: "group body" }),
        }
    }

    /// A sender key from `sender`, taken only from a member device of the group's state.
    pub(super) fn sender_key(
        &self,
        tx: &mut Transaction<'_>,
        sender: &VerifiedDevice,
        distribution: &e2ee_core::group::SenderKeyDistribution,
    ) -> Result<(), Error> {
        let history = load_history(tx, distribution.group_id())?.ok_or(Error::UnknownGroup)?;
        let devices = member_devices(self.directory, self.own, history.state()).0;
        let mut session = member_session(
            &DeviceStore::over(&mut *tx),
            self.own,
            distribution.group_id(),
            devices,
        )?;
        session.process_distribution(sender, distribution)?;
        DeviceStore::over(&mut *tx).store_group(&session)?;
        Ok(())
    }

    /// A group message from device `from` (the relay's word, checked by the signature).
    pub(super) fn group_message(
        &self,
        tx: &mut Transaction<'_>,
        from: &DeviceAddress,
        payload: &[u8],
    ) -> Result<GroupArrival, Error> {
        let envelope = GroupEnvelope::from_bytes(payload).map_err(|_| Error::InvalidInput {
            what: "group envelope",
        })?;
        let history = load_history(tx, &envelope.group_id)?.ok_or(Error::UnknownGroup)?;
        let state = history.state();
        if state.member(self.own.user.as_str()).is_none() {
            // Left or removed: nothing of the group is ours to read any more.
            return Err(Error::NotPermitted {
                what: "we are not a member",
            });
        }
        let devices = member_devices(self.directory, self.own, state).0;
        if !devices.iter().any(|d| d.address() == from) {
            return Err(
                match (
                    state.member(from.user.as_str()),
                    self.directory.account(from.user.as_str()),
                ) {
                    // A member we have not learned yet, or a device newer than the list we hold:
                    // learn the user and try again.
                    (Some(_), None) => Error::UnknownUser {
                        user: from.user.to_string(),
                    },
                    (Some(member), Some(account)) if *account == member.account => {
                        Error::NotListed {
                            device: from.to_string(),
                        }
                    }
                    // Not a member, or not under the account the group pinned.
                    _ => Error::NotPermitted {
                        what: "the sender is not a member device",
                    },
                },
            );
        }
        // Stored once, after the decrypt (a refused message leaves it as it was).
        let mut session = member_session(
            &DeviceStore::over(&mut *tx),
            self.own,
            &envelope.group_id,
            devices,
        )?;
        let plaintext = match session.decrypt(from, &envelope.message) {
            Err(GroupError::UnknownSenderKey { .. }) => {
                let mut plan = ready_devices(tx, self.directory, self.own, &[&from.user])?;
                plan.ready.retain(|d| d == from);
                if !plan.ready.is_empty() {
                    self.queue(
                        tx,
                        &plan,
                        BODY_GROUP_KEY_REQUEST,
                        envelope.group_id.as_bytes(),
                    )?;
                }
                return Ok(GroupArrival::AskedForSenderKey);
            }
            other => other?,
        };
        DeviceStore::over(&mut *tx).store_group(&session)?;
        let chat =
            GroupChat::from_bytes(&plaintext.plaintext).map_err(|_| Error::InvalidInput {
                what: "group chat message",
            })?;
        if !state.may_send(from.user.as_str()) {
            return Err(Error::NotPermitted {
                what: "only admins may send",
            });
        }
        if !history.holds_state(&chat.state.hash) && chat.state.version >= state.version() {
            // The sender is ahead of us: ask for what we missed.
            self.ask_for_changes(tx, &history, &from.user)?;
        }
        let outgoing = from.user == self.own.user;
        log_arrival(
            tx,
            LoggedMessage::arrived(
                chat.id,
                from.clone(),
                &ConversationKey::Group(envelope.group_id.clone()),
                chat.sent_at_ms,
                now_ms().max(1),
                chat.body,
                outgoing,
            ),
        )
        .map(GroupArrival::Message)
    }
}
