//! The session API: start sessions from bundles, encrypt, decrypt; all through a store.
//!
//! Trust on first use: the first identity seen for an address is trusted; a different one
//! later fails with [`Error::IdentityChanged`] until the app calls
//! [`crate::IdentityStore::trust_identity`] (typically after the user compared safety numbers).

use rand_core::{CryptoRng, RngCore};

use crate::{
    DeviceAddress,
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
    pub fn process_bundle(
        &self,
        store: &mut dyn ProtocolStore,
        rng: &mut (impl RngCore + CryptoRng),
        remote: &DeviceAddress,
        bundle: &PreKeyBundle,
    ) -> Result<(), Error> {
        check_trust(store, remote, &bundle.identity)?;
        let ours = store.identity_key_pair()?;
        let initiated = pqxdh::initiate(rng, &ours, bundle, self.config.allow_plain_x3dh)?;
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
    pub fn decrypt(
        &self,
        store: &mut dyn ProtocolStore,
        remote: &DeviceAddress,
        bytes: &[u8],
    ) -> Result<Vec<u8>, Error> {
        match MessageKind::of(bytes)? {
            MessageKind::Ratchet => {
                let message = RatchetMessage::decode(bytes)?;
                let trusted = store
                    .trusted_identity(remote)?
                    .ok_or_else(|| no_session(remote))?;
                let mut plaintext = Vec::new();
                let found = store.update_session(remote, &mut |record| {
                    if record.is_empty() {
                        return Err(no_session(remote));
                    }
                    // Only sessions with the trusted identity may decrypt.
                    plaintext = match record.decrypt_from(&trusted, &message) {
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
            MessageKind::PreKey => {
                let message = PreKeyMessage::decode(bytes).map_err(|e| match e {
                    crate::identity::IdentityDecodeError::Decode(d) => Error::Decode(d),
                    crate::identity::IdentityDecodeError::Key(k) => Error::from(k),
                })?;
                self.decrypt_prekey_message(store, remote, &message)
            }
        }
    }

    fn decrypt_prekey_message(
        &self,
        store: &mut dyn ProtocolStore,
        remote: &DeviceAddress,
        message: &PreKeyMessage,
    ) -> Result<Vec<u8>, Error> {
        let parts = &message.parts;
        check_trust(store, remote, &parts.identity)?;
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
