//! The session API: start sessions from bundles, encrypt, decrypt; all through a store.
//!
//! Trust on first use: the first identity seen for an address is trusted; a different one
//! later fails with [`Error::IdentityChanged`] until the app calls
//! [`crate::IdentityStore::trust_identity`] (typically after the user compared safety numbers).

use rand_core::{CryptoRng, RngCore};

use crate::{
    Codec, DeviceAddress,
    error::{Error, HandshakeError, KeyError},
    identity::IdentityKey,
    message::{MessageKind, PreKeyMessage, RatchetMessage},
    pqxdh,
    prekeys::PreKeyBundle,
    session::{SessionRecord, SessionState, StepBudget},
    store::{AcceptedFirstMessage, ProtocolStore},
};

/// Options for the session API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionConfig {
    /// Accept bundles without a KEM prekey and first messages without a KEM ciphertext
    /// (plain X3DH, no post-quantum protection). Off by default.
    pub allow_plain_x3dh: bool,
}

/// Encrypts and decrypts 1:1 messages through a [`ProtocolStore`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionCipher {
    config: SessionConfig,
}

impl SessionCipher {
    /// A cipher with these options.
    pub fn new(config: SessionConfig) -> Self {
        Self { config }
    }

    /// Starts a session with `remote` from its bundle (verifying every signature). The
    /// next [`Self::encrypt`] produces a first (prekey) message.
    ///
    /// Trust on first use: the bundle's identity is trusted for `remote` unless another one
    /// already is ([`Error::IdentityChanged`]). The bundle's device binding must name
    /// `remote` ([`HandshakeError::AddressMismatch`]); nothing checks that its account is the
    /// one the user trusts for that user: `device::DeviceDirectory::process_bundle` does.
    pub fn process_bundle(
        &self,
        store: &mut dyn ProtocolStore,
        rng: &mut (impl RngCore + CryptoRng),
        remote: &DeviceAddress,
        bundle: &PreKeyBundle,
    ) -> Result<(), Error> {
        check_trust(store, remote, &bundle.identity)?;
        self.start_session(store, rng, remote, bundle)
    }

    /// [`Self::process_bundle`] without the trust-on-first-use check: the caller vouches for
    /// the bundle's identity (the device directory, from a verified device list).
    pub(crate) fn start_session(
        &self,
        store: &mut dyn ProtocolStore,
        rng: &mut (impl RngCore + CryptoRng),
        remote: &DeviceAddress,
        bundle: &PreKeyBundle,
    ) -> Result<(), Error> {
        if bundle.binding.address() != remote {
            return Err(HandshakeError::AddressMismatch {
                bound: bundle.binding.address().clone(),
            }
            .into());
        }
        let ours = store.identity_key_pair()?;
        let local = store.local_binding()?;
        let initiated = pqxdh::initiate(rng, &ours, &local, bundle, self.config.allow_plain_x3dh)?;
        let state = SessionState::new_initiator(
            rng,
            &initiated.secrets.shared_key,
            initiated.associated_data,
            *ours.public(),
            bundle.identity,
            bundle.signed_prekey.key,
            initiated.parts,
        )
        .map_err(HandshakeError::Key)?;
        let mut record = store.load_session(remote)?.unwrap_or_default();
        record.promote(state);
        store.trust_identity(remote, &bundle.identity)?;
        store.store_session(remote, &record)?;
        Ok(())
    }

    /// Encrypts `plaintext` for `remote`.
    pub fn encrypt(
        &self,
        store: &mut dyn ProtocolStore,
        rng: &mut (impl RngCore + CryptoRng),
        remote: &DeviceAddress,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let trusted = store.trusted_identity(remote)?;
        let mut bytes = Vec::new();
        let found = store.update_session(remote, &mut |record| {
            let Some(session_identity) = record.remote_identity() else {
                return Err(no_session(remote));
            };
            // Never encrypt to an identity the user no longer trusts (e.g. a session restored
            // or promoted from before an accepted identity change).
            if trusted != Some(session_identity) {
                return Err(Error::IdentityChanged {
                    address: remote.clone(),
                });
            }
            bytes = record.encrypt(rng, plaintext)?;
            Ok(())
        })?;
        if !found {
            return Err(no_session(remote));
        }
        Ok(bytes)
    }

    /// Decrypts a message from `remote` (a first message or a ratchet message).
    ///
    /// Trust on first use, per address: a first message from an address with no trusted
    /// identity is accepted from whoever holds the identity it carries (its device binding
    /// must name `remote`). `remote` is whatever the transport says, and this call consults
    /// no device list: use `device::DeviceDirectory::decrypt` to accept messages only from
    /// the devices a user's account listed.
    pub fn decrypt(
        &self,
        store: &mut dyn ProtocolStore,
        remote: &DeviceAddress,
        bytes: &[u8],
    ) -> Result<Vec<u8>, Error> {
        match MessageKind::of(bytes)? {
            MessageKind::Ratchet => {
                self.decrypt_ratchet_message(store, remote, &RatchetMessage::from_bytes(bytes)?)
            }
            MessageKind::PreKey => {
                let message = PreKeyMessage::from_bytes(bytes)?;
                check_trust(store, remote, &message.parts.identity)?;
                self.accept_prekey_message(store, remote, &message)
            }
        }
    }

    /// Decrypts a ratchet message with a session whose identity is the trusted one.
    pub(crate) fn decrypt_ratchet_message(
        &self,
        store: &mut dyn ProtocolStore,
        remote: &DeviceAddress,
        message: &RatchetMessage,
    ) -> Result<Vec<u8>, Error> {
        let trusted = store
            .trusted_identity(remote)?
            .ok_or_else(|| no_session(remote))?;
        let mut plaintext = Vec::new();
        let found = store.update_session(remote, &mut |record| {
            if record.is_empty() {
                return Err(no_session(remote));
            }
            // Only sessions with the trusted identity may decrypt.
            plaintext = match record.decrypt_from(&trusted, message) {
                Some(result) => result?,
                None => {
                    return Err(Error::IdentityChanged {
                        address: remote.clone(),
                    });
                }
            };
            Ok(())
        })?;
        if !found {
            return Err(no_session(remote));
        }
        Ok(plaintext)
    }

    /// Decrypts a first message whose identity the caller has accepted (trusted on first use,
    /// or vouched for by a verified device list).
    pub(crate) fn accept_prekey_message(
        &self,
        store: &mut dyn ProtocolStore,
        remote: &DeviceAddress,
        message: &PreKeyMessage,
    ) -> Result<Vec<u8>, Error> {
        let parts = &message.parts;
        if parts.binding.address() != remote {
            return Err(HandshakeError::AddressMismatch {
                bound: parts.binding.address().clone(),
            }
            .into());
        }
        let local = store.local_binding()?;
        if parts.responder != *local.address() {
            return Err(HandshakeError::WrongRecipient {
                intended: parts.responder.clone(),
            }
            .into());
        }
        // Without a KEM ciphertext the base key names the handshake, so it must have exactly
        // one encoding: a torsion variant would agree to the same secrets.
        if parts.kem.is_none() && !parts.base_key.is_torsion_free() {
            return Err(HandshakeError::Key(KeyError::InvalidKey("X3DH base key")).into());
        }
        let handshake_id = parts.handshake_id();
        let mut record = store.load_session(remote)?.unwrap_or_default();

        // The initiator repeats the first message's header until we answer: a session from
        // this handshake may already exist.
        if let Some(result) = record.decrypt_repeated_first_message(
            &handshake_id,
            message.handshake_digest(),
            &message.message,
        ) {
            let plaintext = result?;
            store.store_session(remote, &record)?;
            return Ok(plaintext);
        }

        let ours = store.identity_key_pair()?;
        let signed_prekey = store
            .signed_prekey(parts.signed_prekey_id)?
            .ok_or(HandshakeError::UnknownSignedPreKey(parts.signed_prekey_id))?;
        let one_time_prekey = match parts.one_time_prekey_id {
            Some(id) => Some(
                store
                    .one_time_prekey(id)?
                    .ok_or(HandshakeError::UnknownOneTimePreKey(id))?,
            ),
            None => None,
        };
        let kem_prekey = match &parts.kem {
            Some((id, _)) => {
                let key = store
                    .kem_prekey(*id)?
                    .ok_or(HandshakeError::UnknownKemPreKey(*id))?;
                Some(key)
            }
            None => None,
        };
        let kem_input = match (&kem_prekey, &parts.kem) {
            (Some(key), Some((_, ciphertext))) => Some((key, &**ciphertext)),
            _ => None,
        };
        let (secrets, associated_data) = pqxdh::respond(
            &ours,
            &local,
            parts,
            &signed_prekey,
            one_time_prekey.as_ref(),
            kem_input,
            self.config.allow_plain_x3dh,
        )?;
        let mut state = SessionState::new_responder(
            &secrets.shared_key,
            associated_data,
            *ours.public(),
            parts.identity,
            signed_prekey.key_pair().clone(),
            handshake_id,
            *message.handshake_digest(),
        );
        // Decrypt before consuming anything: a forged first message must not burn keys.
        let plaintext = state.decrypt(&message.message, &mut StepBudget::per_message())?;

        record.promote(state);
        let accepted = AcceptedFirstMessage {
            address: remote,
            identity: &parts.identity,
            record: &record,
            one_time_prekey_id: one_time_prekey.as_ref().map(|k| k.id()),
            kem_prekey: kem_prekey.as_ref().map(|k| (k.id(), k.kind())),
            handshake_id: &handshake_id,
        };
        if !store.accept_first_message(&accepted)? {
            let id = kem_prekey.as_ref().map_or(0, |k| k.id());
            return Err(HandshakeError::LastResortReplay(id).into());
        }
        Ok(plaintext)
    }

    /// The session record for `remote`, if any (for inspection and tests).
    pub fn session(
        &self,
        store: &dyn ProtocolStore,
        remote: &DeviceAddress,
    ) -> Result<Option<SessionRecord>, Error> {
        Ok(store.load_session(remote)?)
    }
}

fn no_session(remote: &DeviceAddress) -> Error {
    Error::NoSession {
        address: remote.clone(),
    }
}

fn check_trust(
    store: &dyn ProtocolStore,
    remote: &DeviceAddress,
    identity: &IdentityKey,
) -> Result<(), Error> {
    match store.trusted_identity(remote)? {
        Some(trusted) if trusted != *identity => Err(Error::IdentityChanged {
            address: remote.clone(),
        }),
        _ => Ok(()),
    }
}
