//! [`Device`]: the crypto side without networking, for apps that bring their own transport.
//! Bytes in, bytes out; every state change is in the encrypted store before a call returns.

use std::sync::{Arc, Mutex, MutexGuard};

use e2ee_client::DeviceAddress;

use crate::{
    Address, E2eeError, GroupInfo, Message, MessagePage, SafetyNumber, config::store_key_from,
    messages,
};

/// What the key server's `POST /v1/accounts` takes to register a new account.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Registration {
    /// The user id.
    pub user: String,
    /// The account identity key (32 bytes).
    pub account_key: Vec<u8>,
    /// This device's certificate.
    pub device_certificate: Vec<u8>,
    /// The first device list (for `PUT /v1/device-list`).
    pub device_list: Vec<u8>,
}

impl From<e2ee_client::Registration> for Registration {
    fn from(r: e2ee_client::Registration) -> Self {
        Self {
            user: r.user_id,
            account_key: r.account_key,
            device_certificate: r.device_certificate,
            device_list: r.device_list,
        }
    }
}

/// Public prekeys to upload to the key server.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PreKeyUpload {
    /// A new signed prekey.
    pub signed_prekey: Vec<u8>,
    /// One-time X25519 prekeys.
    pub one_time_prekeys: Vec<Vec<u8>>,
    /// One-time KEM prekeys, then one last-resort KEM prekey.
    pub kem_prekeys: Vec<Vec<u8>>,
}

impl From<e2ee_client::PreKeyUpload> for PreKeyUpload {
    fn from(u: e2ee_client::PreKeyUpload) -> Self {
        Self {
            signed_prekey: u.signed_prekey,
            one_time_prekeys: u.one_time_prekeys,
            kem_prekeys: u.kem_prekeys,
        }
    }
}

/// A new account's first device and what to register.
#[derive(Debug, uniffi::Record)]
pub struct NewDevice {
    /// The device.
    pub device: Arc<Device>,
    /// What to send the key server.
    pub registration: Registration,
}

/// One ciphertext for one device.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Envelope {
    /// The recipient device.
    pub to: Address,
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
}

/// Ciphertexts of one message, kept in the device's outbox until acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OutboxEntry {
    /// Order of creation: send entries in this order.
    pub seq: u64,
    /// The id the relay deduplicates on (pass it to `acknowledged`).
    pub msg_id: u64,
    /// One ciphertext per device.
    pub envelopes: Vec<Envelope>,
}

impl From<e2ee_client::OutboxEntry> for OutboxEntry {
    fn from(e: e2ee_client::OutboxEntry) -> Self {
        Self {
            seq: e.seq,
            msg_id: e.msg_id,
            envelopes: e
                .envelopes
                .into_iter()
                .map(|(to, ciphertext)| Envelope {
                    to: (&to).into(),
                    ciphertext,
                })
                .collect(),
        }
    }
}

/// A message committed to the log and the outbox.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SentMessage {
    /// Its id (receipts name it).
    pub id: u64,
    /// What to hand the transport.
    pub entry: OutboxEntry,
}

/// What an envelope turned out to be, once decrypted and committed.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Received {
    /// A chat message (or a sent transcript of another of our devices).
    Message {
        /// It, as logged.
        message: Message,
    },
    /// Receipts for our messages: those whose status changed, as logged now.
    Receipts {
        /// The device that sent them.
        from: Address,
        /// Read (or delivered) receipts.
        read: bool,
        /// The messages.
        updated: Vec<Message>,
    },
    /// Another of our devices read these messages.
    ReadElsewhere {
        /// The messages.
        updated: Vec<Message>,
    },
    /// `from` started or stopped typing.
    Typing {
        /// The device.
        from: Address,
        /// Started or stopped.
        started: bool,
    },
    /// A group changed (or we were added to one).
    GroupChanged {
        /// Its state now.
        group: GroupInfo,
    },
    /// Committed, and nothing for the app to show (a sender key, a held group change,
    /// content this version does not act on).
    Nothing,
}

impl From<e2ee_client::Received> for Received {
    fn from(r: e2ee_client::Received) -> Self {
        use e2ee_client::{GroupReceived, Received as R};
        match r {
            R::Message(m) => Received::Message { message: m.into() },
            R::Receipts {
                from,
                read,
                updated,
            } => Received::Receipts {
                from: (&from).into(),
                read,
                updated: messages(updated),
            },
            R::ReadElsewhere { updated } => Received::ReadElsewhere {
                updated: messages(updated),
            },
            R::Typing { from, started } => Received::Typing {
                from: (&from).into(),
                started,
            },
            R::Group(GroupReceived::Changed(group)) => Received::GroupChanged {
                group: group.into(),
            },
            _ => Received::Nothing,
        }
    }
}

/// One device's crypto state in its encrypted store, without networking.
#[derive(Debug, uniffi::Object)]
pub struct Device {
    inner: Mutex<e2ee_client::Device>,
}

impl Device {
    pub(crate) fn device(&self) -> Result<MutexGuard<'_, e2ee_client::Device>, E2eeError> {
        // A panic while holding it leaves the store consistent (every change is one
        // transaction), so a poisoned lock is still usable.
        Ok(self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

fn address(address: &Address) -> Result<DeviceAddress, E2eeError> {
    address.try_into()
}

/// Creates the first device of a new account `user` (device number `device`) at `path`:
/// a new account key held by this device, its identity, certificate and first device list.
#[uniffi::export]
pub fn create_primary_device(
    path: String,
    store_key: Vec<u8>,
    user: String,
    device: u32,
) -> Result<NewDevice, E2eeError> {
    let key = store_key_from(store_key)?;
    let (inner, registration) =
        e2ee_client::Device::create_primary(path.as_ref(), &key, &user, device)?;
    Ok(NewDevice {
        device: Arc::new(Device {
            inner: Mutex::new(inner),
        }),
        registration: registration.into(),
    })
}

#[uniffi::export]
impl Device {
    /// Opens the store of a device created before.
    #[uniffi::constructor]
    pub fn open(path: String, store_key: Vec<u8>) -> Result<Arc<Self>, E2eeError> {
        let key = store_key_from(store_key)?;
        let inner = e2ee_client::Device::open(path.as_ref(), &key)?;
        Ok(Arc::new(Self {
            inner: Mutex::new(inner),
        }))
    }

    /// This device's address.
    pub fn address(&self) -> Result<Address, E2eeError> {
        Ok(self.device()?.address().into())
    }

    /// Makes `count` one-time prekeys of each kind (at most 99), a new signed prekey and a
    /// new last-resort KEM prekey, keeping the secrets; upload what this returns.
    pub fn generate_prekeys(&self, count: u32) -> Result<PreKeyUpload, E2eeError> {
        Ok(self.device()?.generate_prekeys(count as usize)?.into())
    }

    /// Verifies and stores `user`'s device list under their account key (a known user with
    /// another key raises `UntrustedIdentity`). Returns the devices it added.
    pub fn learn_user(
        &self,
        user: String,
        account_key: Vec<u8>,
        device_list: Vec<u8>,
    ) -> Result<Vec<Address>, E2eeError> {
        let (added, _) = self
            .device()?
            .learn_user(&user, &account_key, &device_list)?;
        Ok(added.iter().map(Address::from).collect())
    }

    /// Trusts `user`'s new account key (after the user compared the safety number).
    pub fn accept_account_change(
        &self,
        user: String,
        account_key: Vec<u8>,
        device_list: Vec<u8>,
    ) -> Result<(), E2eeError> {
        self.device()?
            .accept_account_change(&user, &account_key, &device_list)?;
        Ok(())
    }

    /// Starts a session with `device` from its prekey bundle (fetched from the key server).
    pub fn add_bundle(&self, device: Address, bundle: Vec<u8>) -> Result<(), E2eeError> {
        Ok(self.device()?.add_bundle(&address(&device)?, &bundle)?)
    }

    /// Encrypts `body` to every device of `to` and our other devices and commits it to the
    /// log and the outbox. `NeedsBundles` names devices to fetch bundles for first.
    pub fn send_message(&self, to: String, body: Vec<u8>) -> Result<SentMessage, E2eeError> {
        let sent = self.device()?.send_message(&to, &body)?;
        Ok(SentMessage {
            id: sent.id,
            entry: sent.entry.into(),
        })
    }

    /// What the transport still has to deliver, in order.
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>, E2eeError> {
        let entries = self.device()?.outbox()?;
        Ok(entries.into_iter().map(OutboxEntry::from).collect())
    }

    /// The transport delivered outbox entry `msg_id`: it leaves the outbox. Returns the
    /// message as logged now (status `Sent`), if it was a chat message.
    pub fn acknowledged(&self, msg_id: u64) -> Result<Option<Message>, E2eeError> {
        Ok(self.device()?.acknowledged(msg_id)?.map(Message::from))
    }

    /// Decrypts and commits an envelope from `from` (`relay_id`: the transport's id for it,
    /// so a redelivery is recognised). `null`/`None`: processed before.
    pub fn receive(
        &self,
        from: Address,
        relay_id: u64,
        ciphertext: Vec<u8>,
    ) -> Result<Option<Received>, E2eeError> {
        let from = address(&from)?;
        let received = self.device()?.receive(&from, relay_id, &ciphertext)?;
        Ok(received.map(Received::from))
    }

    /// Marks messages of `user` read here; returns them as logged now. Receipts follow
    /// from [`Device::send_receipts`].
    pub fn mark_read(&self, user: String, ids: Vec<u64>) -> Result<Vec<Message>, E2eeError> {
        Ok(messages(self.device()?.mark_read(&user, &ids)?))
    }

    /// Users owed receipts.
    pub fn receipts_due(&self) -> Result<Vec<String>, E2eeError> {
        Ok(self.device()?.receipts_due()?)
    }

    /// Encrypts the receipts owed to `user` into the outbox; returns the entries.
    pub fn send_receipts(&self, user: String) -> Result<Vec<OutboxEntry>, E2eeError> {
        let entries = self.device()?.send_receipts(&user)?;
        Ok(entries.into_iter().map(OutboxEntry::from).collect())
    }

    /// A page of the conversation with `user`, oldest first.
    pub fn messages(
        &self,
        user: String,
        before: Option<u64>,
        limit: u32,
    ) -> Result<MessagePage, E2eeError> {
        Ok(self
            .device()?
            .messages(&user, before, limit as usize)?
            .into())
    }

    /// The safety number with `user`.
    pub fn safety_number(&self, user: String) -> Result<SafetyNumber, E2eeError> {
        Ok(self.device()?.safety_number(&user)?.into())
    }

    /// The device numbers of `user`'s verified list.
    pub fn devices(&self, user: String) -> Result<Vec<u32>, E2eeError> {
        Ok(self.device()?.devices(&user)?)
    }
}

/// The prekey bundle a key server would serve for the device `registration` registered,
/// with one-time keys number `index` of `upload`: for transports without a key server
/// (a QR code, a local link) and for tests.
#[uniffi::export]
pub fn prekey_bundle(
    registration: Registration,
    upload: PreKeyUpload,
    index: u32,
) -> Result<Vec<u8>, E2eeError> {
    use e2ee_core::{
        Codec, KemPreKeyPublic, OneTimePreKeyPublic, PreKeyBundle, SignedPreKeyPublic,
        device::DeviceCertificate,
    };
    let invalid = |what: &str| E2eeError::InvalidInput { what: what.into() };
    let index = index as usize;
    let certificate = DeviceCertificate::from_bytes(&registration.device_certificate)
        .map_err(|_| invalid("device certificate"))?;
    let one_time = upload
        .one_time_prekeys
        .get(index)
        .ok_or_else(|| invalid("one-time prekey index"))?;
    let kem = upload
        .kem_prekeys
        .get(index)
        .ok_or_else(|| invalid("KEM prekey index"))?;
    Ok(PreKeyBundle {
        identity: *certificate.identity(),
        binding: certificate.binding().clone(),
        signed_prekey: SignedPreKeyPublic::from_bytes(&upload.signed_prekey)
            .map_err(|_| invalid("signed prekey"))?,
        one_time_prekey: Some(
            OneTimePreKeyPublic::from_bytes(one_time).map_err(|_| invalid("one-time prekey"))?,
        ),
        kem_prekey: Some(KemPreKeyPublic::from_bytes(kem).map_err(|_| invalid("KEM prekey"))?),
    }
    .to_bytes())
}
