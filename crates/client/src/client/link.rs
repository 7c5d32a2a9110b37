//! Linking a device, both sides: [`LinkRequest`] on the new device (shows the code, waits for
//! the primary, creates its store) and [`Client::link_device`] on the primary (scans the code,
//! signs the new device in, publishes the new device list).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use e2ee_core::{Codec, IdentityKeyPair, device::DeviceBinding};
use rand_core::OsRng;

use super::{
    CREDENTIAL, Client, ClientConfig, ClientError, Command, endpoints, keyserver::KeyServer,
};
use crate::{
    Device, DeviceAddress, Error, LinkAcceptance, LinkOffer, LinkWelcome, device::LinkSecret,
    store::Space,
};

/// How often a side polls the provisioning channel for the other's message.
const LINK_POLL: Duration = Duration::from_millis(250);
/// How long the primary keeps trying to welcome a new device to its groups (the device needs
/// to have connected and uploaded prekeys first).
pub const GROUP_WELCOME_WAIT: Duration = Duration::from_secs(60);

async fn wait_for_slot(
    keyserver: &KeyServer,
    secret: &LinkSecret,
    slot: u8,
    deadline: Instant,
) -> Result<zeroize::Zeroizing<Vec<u8>>, ClientError> {
    let channel = secret.channel();
    loop {
        if let Some(sealed) = keyserver.provisioning(&channel, slot).await? {
            return Ok(secret.open(slot, &sealed)?);
        }
        if Instant::now() >= deadline {
            return Err(ClientError::LinkTimedOut);
        }
        tokio::time::sleep(LINK_POLL).await;
    }
}

/// A device waiting to be linked to an account: show [`LinkRequest::code`] (as text or a QR
/// code) and have the account's primary device call [`Client::link_device`] with it.
pub struct LinkRequest {
    secret: LinkSecret,
    identity: IdentityKeyPair,
    config: ClientConfig,
    keyserver: KeyServer,
}

impl std::fmt::Debug for LinkRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkRequest").finish_non_exhaustive()
    }
}

impl LinkRequest {
    /// Starts linking a new device whose store will be at `config.store_path` (which must
    /// not exist).
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        if config.store_path.exists() {
            return Err(ClientError::AlreadyRegistered);
        }
        let (keyserver, _, _) = endpoints(&config)?;
        Ok(Self {
            secret: LinkSecret::generate(),
            identity: IdentityKeyPair::generate(&mut OsRng),
            config,
            keyserver,
        })
    }

    /// The one-time code to show. Whoever holds it can read the linking (the server cannot):
    /// show it on this device's screen only.
    pub fn code(&self) -> String {
        self.secret.code()
    }

    /// Waits (at most `timeout`) for the primary, then creates this device's store, uploads
    /// its prekeys and returns it as a [`Client`] (not started).
    pub async fn complete(self, timeout: Duration) -> Result<Client, ClientError> {
        let deadline = Instant::now() + timeout;
        let offer = wait_for_slot(&self.keyserver, &self.secret, 1, deadline).await?;
        let offer = LinkOffer::from_bytes(&offer)
            .map_err(|_| Error::InvalidInput { what: "link offer" })?;
        let account = e2ee_core::device::AccountIdentityKey::from_bytes(&offer.account_key)
            .map_err(|_| Error::InvalidInput {
                what: "account key",
            })?;
        let binding = DeviceBinding::sign(&self.identity, offer.address.clone(), account);
        let acceptance = LinkAcceptance {
            identity: *self.identity.public(),
            binding: binding.clone(),
        };
        let channel = self.secret.channel();
        self.keyserver
            .put_provisioning(&channel, 2, &self.secret.seal(2, &acceptance.to_bytes())?)
            .await?;
        let welcome = wait_for_slot(&self.keyserver, &self.secret, 3, deadline).await?;
        let welcome = LinkWelcome::from_bytes(&welcome).map_err(|_| Error::InvalidInput {
            what: "link welcome",
        })?;
        let mut device = Device::create_linked(
            &self.config.store_path,
            &self.config.store_key,
            &self.identity,
            &binding,
            &offer,
            &welcome,
        )?;
        device
            .vault()
            .put(Space::IDENTITY, CREDENTIAL, welcome.credential.as_bytes())?;
        let (keyserver, relay, tls) = endpoints(&self.config)?;
        let client = Client::assemble(
            device,
            keyserver.with_credential(welcome.credential),
            relay,
            tls,
        );
        client.shared.top_up_prekeys().await?;
        Ok(client)
    }
}

impl Client {
    /// On the device holding the account key: links the device showing `code` (waiting at
    /// most `timeout` for it): enrols it at the key server with the account's consent,
    /// publishes the device list naming it, and hands it the account's contacts over the
    /// sealed channel. Returns its address. Other users learn it from the new list.
    pub async fn link_device(
        &self,
        code: &str,
        timeout: Duration,
    ) -> Result<DeviceAddress, ClientError> {
        let deadline = Instant::now() + timeout;
        let secret = LinkSecret::from_code(code)?;
        let channel = secret.channel();
        let keyserver = &self.shared.keyserver;
        let offer = self.shared.device().link_offer()?;
        keyserver
            .put_provisioning(&channel, 1, &secret.seal(1, &offer.to_bytes())?)
            .await?;
        let acceptance = wait_for_slot(keyserver, &secret, 2, deadline).await?;
        let acceptance =
            LinkAcceptance::from_bytes(&acceptance).map_err(|_| Error::InvalidInput {
                what: "link acceptance",
            })?;
        let approval = self.shared.device().approve_link(&offer, &acceptance)?;
        let user = offer.address.user.to_string();
        let registered = keyserver
            .register_device(&user, &approval.certificate, &approval.consent)
            .await?;
        keyserver.put_device_list(&approval.device_list).await?;
        let result = self.shared.device().adopt_own_list(&approval.device_list);
        let (added, removed) = result?;
        let contacts = self.shared.device().link_contacts()?;
        let welcome = LinkWelcome {
            certificate: approval.certificate,
            credential: registered.credential,
            device_list: approval.device_list,
            contacts,
        };
        keyserver
            .put_provisioning(&channel, 3, &secret.seal(3, &welcome.to_bytes())?)
            .await?;
        self.shared.devices_changed(&user, &added, &removed).await;
        self.welcome_new_device();
        Ok(offer.address)
    }

    /// The new device learns our groups from us once it has uploaded its prekeys (it does on
    /// its first connection): tried in the background for [`GROUP_WELCOME_WAIT`].
    fn welcome_new_device(&self) {
        let shared = Arc::clone(&self.shared);
        let commands = self.commands.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + GROUP_WELCOME_WAIT;
            while Instant::now() < deadline {
                match shared.with_sessions(Device::welcome_own_devices).await {
                    Ok(entries) => {
                        for entry in entries {
                            let _ = commands.send(Command::Send(entry));
                        }
                        return;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
        });
    }

    /// On the device holding the account key: removes one of the account's other devices
    /// (a lost phone): publishes the device list without it, then removes it at the key
    /// server, which closes its relay connection and refuses its credential. Other users stop
    /// encrypting to it when they next fetch the list (at most [`super::LIST_REFRESH`] later).
    pub async fn remove_device(&self, device_id: u32) -> Result<(), ClientError> {
        let list = self.shared.device().list_without(device_id)?;
        let keyserver = &self.shared.keyserver;
        keyserver.put_device_list(&list).await?;
        let user = self.address().user.to_string();
        let result = self.shared.device().adopt_own_list(&list);
        let (added, removed) = result?;
        match keyserver.remove_device(&user, device_id).await {
            // Removed before (a retry after a failure between the two steps).
            Ok(()) | Err(ClientError::Server { status: 404, .. }) => {}
            Err(e) => return Err(e),
        }
        self.shared.devices_changed(&user, &added, &removed).await;
        Ok(())
    }
}
