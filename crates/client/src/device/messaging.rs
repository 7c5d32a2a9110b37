//! Messages in and out of a [`Device`]: chat messages through the outbox and into the log,
//! receipts owed and received, typing indicators, each state change in one transaction with
//! the session steps it took.

use e2ee_core::{
    Codec, DeviceAddress, UserId,
    control::{Content, Receipt, ReceiptKind, Typing},
    device::FanoutPlan,
    group::MessageId,
};
use rand_core::{OsRng, RngCore};

use super::chat::{Body, ChatMessage, MAX_MESSAGE_BODY_LEN, MAX_READ_SYNC_IDS, ReadSync};
use super::group_wire::GROUP_ENVELOPE_TYPE;
use super::groups::{GroupArrival, GroupReceived, ReceiveContext};
use super::log::{self, Conversation, LoggedMessage, MessagePage, MessageStatus, RecipientState};
use super::{
    ConversationKey, Device, Error, MAX_OUTBOX_CIPHERTEXT, MAX_OUTBOX_RECIPIENTS, OutboxEntry,
    now_ms, user_id,
};
use crate::store::{DeviceStore, Items, Space, StoreError, Transaction};

/// The next outbox entry's sequence number, in [`Space::IDENTITY`] (the outbox space holds
/// entries only, so it can be listed).
const NEXT_OUTBOX_SEQ: &[u8] = b"next outbox seq";
/// Most message ids a due-receipt list holds per (user, kind); older ones are dropped first
/// (a receipt is a courtesy, not state: losing one leaves a tick grey, nothing else).
pub const MAX_DUE_RECEIPTS: usize = 4 * e2ee_core::control::MAX_RECEIPT_IDS;

/// A chat message committed to the log and the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// Its id (receipts name it).
    pub id: u64,
    /// The ciphertexts to hand the relay.
    pub entry: OutboxEntry,
}

/// What an envelope turned out to be, once decrypted and committed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// A chat message from another user, or a sent transcript of one of our own devices
    /// (`outgoing` is set): it is in the log.
    Message(LoggedMessage),
    /// Receipts from `from` for our messages: their log records as they stand now (ids we
    /// do not hold, or that did not change, are left out).
    Receipts {
        /// The device that sent the receipts.
        from: DeviceAddress,
        /// Delivered or read.
        read: bool,
        /// The updated messages.
        updated: Vec<LoggedMessage>,
    },
    /// Another of our devices read these messages: their log records as they stand now.
    ReadElsewhere {
        /// The messages now read here too.
        updated: Vec<LoggedMessage>,
    },
    /// `from` started or stopped typing in our 1:1 conversation.
    Typing {
        /// The typing device.
        from: DeviceAddress,
        /// Started (`true`) or stopped.
        started: bool,
    },
    /// A group changed, or a group body needed no app attention (see [`GroupReceived`]).
    Group(GroupReceived),
    /// Content this version does not act on; committed as processed.
    Unsupported,
}

/// The relay's identity of an envelope: its sender and the sender's message id.
fn envelope_lookup(from: &DeviceAddress, relay_id: u64) -> Vec<u8> {
    let mut lookup = from.to_bytes();
    lookup.extend_from_slice(&relay_id.to_be_bytes());
    lookup
}

fn due_lookup(user: &UserId, read: bool) -> Vec<u8> {
    let mut lookup = user.to_bytes();
    lookup.push(u8::from(read));
    lookup
}

/// A due-receipt list as stored: the user it is owed to (so the lists can be listed under
/// their blinded keys) and the message ids.
fn encode_due(user: &UserId, ids: &[u64]) -> Vec<u8> {
    let mut bytes = user.to_bytes();
    bytes.extend(ids.iter().flat_map(|i| i.to_be_bytes()));
    bytes
}

fn decode_due(bytes: &[u8]) -> Result<(UserId, Vec<u64>), StoreError> {
    let corrupt = || StoreError::Corrupt("due receipts");
    let mut reader = e2ee_encoding::Reader::new(bytes);
    let user = UserId::read(&mut reader).map_err(|_| corrupt())?;
    let rest = reader.rest();
    if !rest.len().is_multiple_of(8) {
        return Err(corrupt());
    }
    let ids = rest
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    Ok((user, ids))
}

pub(super) fn owe_receipt(
    tx: &mut Transaction<'_>,
    user: &UserId,
    read: bool,
    id: u64,
) -> Result<(), StoreError> {
    let lookup = due_lookup(user, read);
    let mut ids = match tx.get(Space::RECEIPTS_DUE, &lookup)? {
        Some(bytes) => decode_due(&bytes)?.1,
        None => Vec::new(),
    };
    if ids.contains(&id) {
        return Ok(());
    }
    ids.push(id);
    if ids.len() > MAX_DUE_RECEIPTS {
        ids.remove(0);
    }
    tx.put(Space::RECEIPTS_DUE, &lookup, &encode_due(user, &ids))
}

impl Device {
    /// Encrypts a chat message to every listed device of `to` and our own other devices (they
    /// get it as a sent transcript), and commits, in one transaction, the session steps, the
    /// outbox entry and the log record. If a device has no usable session yet, nothing is
    /// committed: [`Error::NeedsBundles`] names the devices.
    pub fn send_message(&mut self, to: &str, body: &[u8]) -> Result<SentMessage, Error> {
        if body.len() > MAX_MESSAGE_BODY_LEN {
            return Err(Error::MessageTooLarge {
                max: MAX_MESSAGE_BODY_LEN,
            });
        }
        let conversation = user_id(to)?;
        if conversation == self.address.user {
            return Err(Error::InvalidInput {
                what: "a conversation with our own user",
            });
        }
        let id = OsRng.next_u64();
        let sent_at_ms = now_ms();
        let chat = ChatMessage {
            id,
            sent_at_ms,
            conversation: conversation.clone(),
            body: body.to_vec(),
        };
        let plaintext =
            Content::Message(chat.to_bytes())
                .to_bytes()
                .map_err(|_| Error::MessageTooLarge {
                    max: MAX_MESSAGE_BODY_LEN,
                })?;
        let author = self.address.clone();
        let entry = self.commit_content(&[to], id, &plaintext, |tx, plan| {
            let recipients = plan
                .ready
                .iter()
                .filter(|d| d.user == conversation)
                .cloned()
                .collect();
            let record = LoggedMessage::outgoing(
                id,
                author,
                &ConversationKey::User(conversation.clone()),
                sent_at_ms,
                body.to_vec(),
                recipients,
            );
            if !log::append(tx, &record)? {
                return Err(Error::Refused("message id already in the log".into()));
            }
            Ok(())
        })?;
        Ok(SentMessage { id, entry })
    }

    /// Encrypts `plaintext` for `users`' listed devices and our own others, and commits the
    /// session steps, the outbox entry under `msg_id` and whatever `also` writes in one
    /// transaction.
    fn commit_content(
        &mut self,
        users: &[&str],
        msg_id: u64,
        plaintext: &[u8],
        also: impl FnOnce(&mut Transaction<'_>, &FanoutPlan) -> Result<(), Error>,
    ) -> Result<OutboxEntry, Error> {
        let plan = self.ready_plan(users)?;
        let (directory, cipher) = (&self.directory, &self.cipher);
        self.store.vault().transaction(|tx| {
            let entry = queue_in(tx, directory, cipher, &plan, msg_id, plaintext)?;
            also(tx, &plan)?;
            Ok(entry)
        })
    }

    /// The devices a message to `users` goes to, each with a usable session: otherwise
    /// [`Error::NeedsBundles`] (or [`Error::NoRecipients`]), and nothing is committed.
    pub(super) fn ready_plan(&self, users: &[&str]) -> Result<FanoutPlan, Error> {
        let plan = self.plan(users)?;
        if !plan.needs_session.is_empty() || !plan.mismatched.is_empty() {
            let mut devices = plan.needs_session;
            devices.extend(plan.mismatched);
            return Err(Error::NeedsBundles { devices });
        }
        if plan.ready.is_empty() {
            return Err(Error::NoRecipients);
        }
        Ok(plan)
    }

    /// Every message still waiting for the relay's acknowledgement, oldest first: after a
    /// restart, send them again (the relay deduplicates on each envelope's id).
    pub fn outbox(&mut self) -> Result<Vec<OutboxEntry>, Error> {
        let mut entries = Vec::new();
        for value in self.store.vault().values(Space::OUTBOX)? {
            entries.push(
                OutboxEntry::from_bytes(&value).map_err(|_| StoreError::Corrupt("outbox entry"))?,
            );
        }
        entries.sort_by_key(|e| e.seq);
        Ok(entries)
    }

    /// The relay stored every envelope of outbox entry `msg_id`: it leaves the outbox, and
    /// its message (if it is a chat message) is `Sent`. Returns the updated log record, if
    /// any, or `None` (a receipt, or an entry acknowledged before).
    pub fn acknowledged(&mut self, msg_id: u64) -> Result<Option<LoggedMessage>, Error> {
        Ok(self.acknowledged_all(&[msg_id])?.pop())
    }

    /// [`Device::acknowledged`] for every entry one `SEND_RESULT` completed, in one
    /// transaction: the updated log records of those that are chat messages.
    pub fn acknowledged_all(&mut self, msg_ids: &[u64]) -> Result<Vec<LoggedMessage>, Error> {
        if msg_ids.is_empty() {
            return Ok(Vec::new());
        }
        let author = self.address.user.clone();
        self.store.vault().transaction(|tx| {
            let mut updated = Vec::new();
            for msg_id in msg_ids {
                if !tx.delete(Space::OUTBOX, &msg_id.to_be_bytes())? {
                    continue;
                }
                if let Some(mut record) = log::get(tx, &author, *msg_id)? {
                    record.mark_stored();
                    log::update(tx, &record)?;
                    updated.push(record);
                }
            }
            Ok(updated)
        })
    }

    /// Receives envelope `relay_id` from `from` (the sender and envelope id the relay
    /// delivered it with): decrypts it and commits, in one transaction, the session change,
    /// what it carries (a log record, receipt updates, a delivery receipt owed to its author)
    /// and the envelope's processed mark. `Ok(None)` for an envelope processed before
    /// (redelivered because the ack did not reach the relay): ack it again. Ack the relay only
    /// after this returns; a crash before the commit leaves nothing changed, so the
    /// redelivery decrypts as if for the first time.
    pub fn receive(
        &mut self,
        from: &DeviceAddress,
        relay_id: u64,
        ciphertext: &[u8],
    ) -> Result<Option<Received>, Error> {
        let (directory, cipher) = (&self.directory, &self.cipher);
        let own = &self.address;
        self.store
            .vault()
            .transaction(|tx| receive_in(tx, directory, cipher, own, from, relay_id, ciphertext))
    }

    /// [`Device::receive`] for many envelopes in one commit (a backlog arriving after being
    /// offline): each envelope is its own step, so one that fails changes nothing and leaves
    /// the others in; the results are in the order given. Only a store failure fails the
    /// whole batch (nothing is committed then).
    pub fn receive_batch(
        &mut self,
        envelopes: &[(&DeviceAddress, u64, &[u8])],
    ) -> Result<Vec<Result<Option<Received>, Error>>, Error> {
        let (directory, cipher) = (&self.directory, &self.cipher);
        let own = &self.address;
        self.store.vault().transaction(|tx| {
            let mut results = Vec::with_capacity(envelopes.len());
            for &(from, relay_id, ciphertext) in envelopes {
                let result = tx
                    .step(|tx| receive_in(tx, directory, cipher, own, from, relay_id, ciphertext));
                if let Err(Error::Store(e)) = result {
                    return Err(Error::Store(e));
                }
                results.push(result);
            }
            Ok(results)
        })
    }

    /// Marks messages of `conversation` (by their ids) read here, and owes their author a
    /// read receipt. Returns the records that changed.
    pub fn mark_read(
        &mut self,
        conversation: &str,
        ids: &[u64],
    ) -> Result<Vec<LoggedMessage>, Error> {
        let peer = user_id(conversation)?;
        self.store.vault().transaction(|tx| {
            let mut changed = Vec::new();
            for &id in ids {
                let Some(mut record) = log::get(tx, &peer, id)? else {
                    continue;
                };
                if record.outgoing || record.status == super::MessageStatus::ReadHere {
                    continue;
                }
                record.mark_read_here();
                log::update(tx, &record)?;
                owe_receipt(tx, &peer, true, id)?;
                changed.push(record);
            }
            Ok(changed)
        })
    }

    /// Users we owe receipts to (see [`Device::send_receipts`]).
    pub fn receipts_due(&mut self) -> Result<Vec<String>, Error> {
        let mut users = Vec::new();
        for bytes in self.store.vault().values(Space::RECEIPTS_DUE)? {
            let user = decode_due(&bytes)?.0.to_string();
            // A user may be owed both kinds.
            if !users.contains(&user) {
                users.push(user);
            }
        }
        Ok(users)
    }

    /// Encrypts the receipts owed to `user` into the outbox and clears them, in one
    /// transaction per receipt. Returns the new outbox entries; [`Error::NeedsBundles`] if a
    /// device of theirs has no session yet (nothing is cleared).
    pub fn send_receipts(&mut self, user: &str) -> Result<Vec<OutboxEntry>, Error> {
        let peer = user_id(user)?;
        let mut entries = Vec::new();
        for read in [false, true] {
            let lookup = due_lookup(&peer, read);
            let Some(bytes) = self.store.vault().get(Space::RECEIPTS_DUE, &lookup)? else {
                continue;
            };
            let ids = decode_due(&bytes)?.1;
            let per_receipt = e2ee_core::control::MAX_RECEIPT_IDS;
            for (n, chunk) in ids.chunks(per_receipt).enumerate() {
                let content = Content::Receipt(Receipt {
                    kind: if read {
                        ReceiptKind::Read
                    } else {
                        ReceiptKind::Delivered
                    },
                    message_ids: chunk.iter().map(|&i| MessageId(i)).collect(),
                });
                let plaintext = content
                    .to_bytes()
                    .map_err(|e| Error::Refused(e.to_string()))?;
                let rest = &ids[((n + 1) * per_receipt).min(ids.len())..];
                let entry =
                    self.commit_content(&[user], OsRng.next_u64(), &plaintext, |tx, _| {
                        if rest.is_empty() {
                            tx.delete(Space::RECEIPTS_DUE, &lookup)?;
                        } else {
                            tx.put(Space::RECEIPTS_DUE, &lookup, &encode_due(&peer, rest))?;
                        }
                        Ok(())
                    })?;
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    /// Tells our other devices that these messages of `conversation` were read here (at most
    /// [`MAX_READ_SYNC_IDS`] per entry); [`Error::NoRecipients`] if we have no other device.
    pub fn send_read_sync(
        &mut self,
        conversation: &str,
        ids: &[u64],
    ) -> Result<Vec<OutboxEntry>, Error> {
        let peer = user_id(conversation)?;
        let own = self.address.user.to_string();
        let mut entries = Vec::new();
        for chunk in ids.chunks(MAX_READ_SYNC_IDS) {
            let sync = ReadSync {
                conversation: peer.clone(),
                ids: chunk.to_vec(),
            };
            let plaintext = Content::Message(sync.to_bytes())
                .to_bytes()
                .map_err(|e| Error::Refused(e.to_string()))?;
            entries.push(self.commit_content(
                &[own.as_str()],
                OsRng.next_u64(),
                &plaintext,
                |_, _| Ok(()),
            )?);
        }
        Ok(entries)
    }

    /// A typing indicator for our 1:1 conversation with `to`: ciphertexts to send online-only
    /// (never through the outbox: a stale indicator is worse than none).
    pub fn typing(&mut self, to: &str, started: bool) -> Result<super::Outgoing, Error> {
        let plaintext = Content::Typing(Typing {
            started,
            group_id: None,
        })
        .to_bytes()
        .map_err(|e| Error::Refused(e.to_string()))?;
        self.encrypt(&[to], &plaintext)
    }

    /// The record of message `id` written by `author` (a user: ours for what we sent).
    pub fn message(&mut self, author: &str, id: u64) -> Result<Option<LoggedMessage>, Error> {
        let author = user_id(author)?;
        Ok(log::get(self.store.vault(), &author, id)?)
    }

    /// Up to `limit` (at most [`super::MAX_PAGE_MESSAGES`]) messages of the conversation with
    /// `user` before position `before` (`None`: the newest), oldest first.
    pub fn messages(
        &mut self,
        user: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<MessagePage, Error> {
        let user = user_id(user)?;
        Ok(log::page(
            self.store.vault(),
            &ConversationKey::User(user),
            before,
            limit,
        )?)
    }

    /// Every conversation in the log, the most recently active first.
    pub fn conversations(&mut self) -> Result<Vec<Conversation>, Error> {
        Ok(log::conversations(self.store.vault())?)
    }
}

/// Adds a message that arrived to the log and, unless it is our own transcript, owes its
/// author a delivery receipt. The same author's id again (a replay under a new envelope id)
/// is [`Error::Duplicate`].
pub(super) fn log_arrival(
    tx: &mut Transaction<'_>,
    record: LoggedMessage,
) -> Result<LoggedMessage, Error> {
    if !log::append(tx, &record)? {
        return Err(Error::Duplicate);
    }
    if !record.outgoing {
        owe_receipt(tx, &record.author.user, false, record.id)?;
    }
    Ok(record)
}

/// Encrypts `plaintext` for the ready devices of `plan` and puts the ciphertexts in the
/// outbox under `msg_id`, inside `tx` (its session steps roll back with it).
pub(super) fn queue_in(
    tx: &mut Transaction<'_>,
    directory: &e2ee_core::device::DeviceDirectory,
    cipher: &e2ee_core::SessionCipher,
    plan: &FanoutPlan,
    msg_id: u64,
    plaintext: &[u8],
) -> Result<OutboxEntry, Error> {
    if plan.ready.len() > MAX_OUTBOX_RECIPIENTS {
        return Err(Error::Refused(format!(
            "a message goes to at most {MAX_OUTBOX_RECIPIENTS} devices"
        )));
    }
    let envelopes: Vec<(DeviceAddress, Vec<u8>)> = directory
        .encrypt(
            cipher,
            &mut DeviceStore::over(&mut *tx),
            &mut OsRng,
            plan,
            plaintext,
        )?
        .into_iter()
        .map(|e| (e.to, e.ciphertext))
        .collect();
    // The relay carries at most this much per envelope: refuse (and roll back the session
    // steps) rather than queue what can never be sent.
    if envelopes
        .iter()
        .any(|(_, c)| c.len() > MAX_OUTBOX_CIPHERTEXT)
    {
        return Err(Error::MessageTooLarge {
            max: MAX_OUTBOX_CIPHERTEXT,
        });
    }
    put_outbox(tx, msg_id, envelopes)
}

fn read_next_seq(items: &impl Items) -> Result<u64, StoreError> {
    items
        .get(Space::IDENTITY, NEXT_OUTBOX_SEQ)?
        .map(|b| <[u8; 8]>::try_from(b.as_slice()).map(u64::from_be_bytes))
        .transpose()
        .map_err(|_| StoreError::Corrupt("next outbox seq"))
        .map(Option::unwrap_or_default)
}

/// Puts one outbox entry under the next sequence number.
pub(super) fn put_outbox(
    tx: &mut Transaction<'_>,
    msg_id: u64,
    envelopes: Vec<(DeviceAddress, Vec<u8>)>,
) -> Result<OutboxEntry, Error> {
    let seq = read_next_seq(tx)?;
    let entry = OutboxEntry {
        seq,
        msg_id,
        envelopes,
    };
    tx.put(Space::OUTBOX, &msg_id.to_be_bytes(), &entry.to_bytes())?;
    tx.put(Space::IDENTITY, NEXT_OUTBOX_SEQ, &(seq + 1).to_be_bytes())?;
    Ok(entry)
}

/// One envelope's receive inside `tx` (see [`Device::receive`]).
fn receive_in(
    tx: &mut Transaction<'_>,
    directory: &e2ee_core::device::DeviceDirectory,
    cipher: &e2ee_core::SessionCipher,
    own: &DeviceAddress,
    from: &DeviceAddress,
    relay_id: u64,
    ciphertext: &[u8],
) -> Result<Option<Received>, Error> {
    let own_user = &own.user;
    let lookup = envelope_lookup(from, relay_id);
    if tx.get(Space::PROCESSED, &lookup)?.is_some() {
        return Ok(None);
    }
    let context = ReceiveContext {
        directory,
        cipher,
        own,
    };
    if ciphertext.first() == Some(&GROUP_ENVELOPE_TYPE) {
        let received = match context.group_message(tx, from, ciphertext)? {
            GroupArrival::Message(record) => Received::Message(record),
            GroupArrival::AskedForSenderKey => Received::Group(GroupReceived::AskedForSenderKey {
                from: from.to_string(),
            }),
        };
        tx.put(Space::PROCESSED, &lookup, &[])?;
        return Ok(Some(received));
    }
    let received = directory.decrypt(cipher, &mut DeviceStore::over(&mut *tx), from, ciphertext)?;
    let sender = received.sender.address().clone();
    let content = Content::from_bytes(&received.plaintext)
        .map_err(|_| Error::InvalidInput { what: "content" })?;
    let outcome = match content {
        Content::Message(bytes) => match Body::decode(&bytes).map_err(|_| Error::InvalidInput {
            what: "chat message",
        })? {
            Body::Group(tag, bytes) => {
                Received::Group(context.group_body(tx, &received.sender, tag, &bytes)?)
            }
            Body::ReadSync(sync) => {
                // Only our own devices tell us what we read.
                if sender.user != *own_user {
                    return Err(Error::InvalidInput {
                        what: "a read sync from another user",
                    });
                }
                let mut updated = Vec::new();
                for id in sync.ids {
                    if let Some(mut record) = log::get(tx, &sync.conversation, id)?
                        && !record.outgoing
                        && record.status != MessageStatus::ReadHere
                    {
                        record.mark_read_here();
                        log::update(tx, &record)?;
                        updated.push(record);
                    }
                }
                Received::ReadElsewhere { updated }
            }
            Body::Chat(chat) => {
                let outgoing = sender.user == *own_user;
                // A message from another user is in the conversation with them, whatever
                // it claims; a transcript names the conversation it was sent to.
                let conversation = if outgoing {
                    chat.conversation.clone()
                } else {
                    sender.user.clone()
                };
                if !outgoing && chat.conversation != *own_user {
                    return Err(Error::InvalidInput {
                        what: "a message addressed to another user",
                    });
                }
                if conversation == *own_user {
                    return Err(Error::InvalidInput {
                        what: "a transcript of a conversation with ourselves",
                    });
                }
                Received::Message(log_arrival(
                    tx,
                    LoggedMessage::arrived(
                        chat.id,
                        sender.clone(),
                        &ConversationKey::User(conversation.clone()),
                        chat.sent_at_ms,
                        now_ms().max(1),
                        chat.body,
                        outgoing,
                    ),
                )?)
            }
        },
        Content::Receipt(receipt) => {
            let read = receipt.kind == ReceiptKind::Read;
            let state = if read {
                RecipientState::Read
            } else {
                RecipientState::Delivered
            };
            let mut updated = Vec::new();
            for id in receipt.message_ids {
                if let Some(mut record) = log::get(tx, own_user, id.0)?
                    && record.apply_receipt(&sender, state)
                {
                    log::update(tx, &record)?;
                    updated.push(record);
                }
            }
            Received::Receipts {
                from: sender,
                read,
                updated,
            }
        }
        Content::SenderKeyDistribution(distribution) => {
            context.sender_key(tx, &received.sender, &distribution)?;
            Received::Group(GroupReceived::Quiet)
        }
        Content::Typing(typing) if typing.group_id.is_none() => Received::Typing {
            from: sender,
            started: typing.started,
        },
        _ => Received::Unsupported,
    };
    tx.put(Space::PROCESSED, &lookup, &[])?;
    Ok(Some(outcome))
}
