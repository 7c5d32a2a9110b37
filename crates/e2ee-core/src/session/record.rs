//! The session record for one peer device: the current state plus up to
//! [`MAX_PREVIOUS_STATES`] earlier ones.
//!
//! When both sides initiate at once, each ends up with two states (the one it initiated and
//! the one it responded to). A message that the current state cannot decrypt is tried on the
//! previous states; the one that works is promoted to current, so both sides converge on
//! whichever session the other is using.

use std::{collections::VecDeque, fmt};

use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;

use super::{SessionState, budget::StepBudget};
use crate::{
    error::{DecryptError, EncryptError},
    identity::IdentityKey,
    limits::MAX_PREVIOUS_STATES,
    message::{HandshakeId, RatchetMessage},
};

/// All session state with one peer device. Serialise with [`Self::to_bytes`].
#[derive(Clone, Default)]
pub struct SessionRecord {
    pub(crate) current: Option<SessionState>,
    pub(crate) previous: VecDeque<SessionState>,
}

impl SessionRecord {
    /// A record with no session.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether there is a current session to encrypt with.
    pub fn has_current_session(&self) -> bool {
        self.current.is_some()
    }

    /// Number of archived states.
    pub fn previous_state_count(&self) -> usize {
        self.previous.len()
    }

    /// The peer identity of the current session.
    pub fn remote_identity(&self) -> Option<IdentityKey> {
        self.current.as_ref().map(|s| s.remote_identity)
    }

    /// Whether the current session still wraps messages as first (prekey) messages, i.e. the
    /// peer has not answered yet.
    pub fn awaiting_reply(&self) -> bool {
        self.current
            .as_ref()
            .is_some_and(|s| s.pending_prekey.is_some())
    }

    /// Makes `state` current, archiving the previous current state.
    pub(crate) fn promote(&mut self, state: SessionState) {
        if let Some(old) = self.current.replace(state) {
            self.previous.push_front(old);
            self.previous.truncate(MAX_PREVIOUS_STATES);
        }
    }

    /// Encrypts with the current session.
    pub fn encrypt(
        &mut self,
        rng: &mut (impl RngCore + CryptoRng),
        plaintext: &[u8],
    ) -> Result<Vec<u8>, EncryptError> {
        self.current
            .as_mut()
            .ok_or(EncryptError::NoCurrentState)?
            .encrypt(rng, plaintext)
    }

    /// Whether the record holds no state at all (neither current nor archived).
    pub fn is_empty(&self) -> bool {
        self.current.is_none() && self.previous.is_empty()
    }

    /// Decrypts a ratchet message with the current state, then the previous ones; promotes
    /// the state that succeeds. On failure nothing changes.
    ///
    /// This low-level call does no trust check; [`crate::SessionCipher::decrypt`] only lets
    /// states whose peer identity is the trusted one decrypt.
    /// An empty record fails with [`DecryptError::AuthenticationFailed`] (it holds no keys).
    pub fn decrypt(&mut self, message: &RatchetMessage) -> Result<Vec<u8>, DecryptError> {
        self.decrypt_where(message, |_| true)
            .unwrap_or(Err(DecryptError::AuthenticationFailed))
    }

    /// Like [`Self::decrypt`], but only states whose peer identity is `identity` are tried, so
    /// a session archived under an identity that is no longer trusted can never come back.
    /// `None` if no state has that identity.
    pub(crate) fn decrypt_from(
        &mut self,
        identity: &IdentityKey,
        message: &RatchetMessage,
    ) -> Option<Result<Vec<u8>, DecryptError>> {
        self.decrypt_where(message, |s| s.remote_identity == *identity)
    }

    fn states(&self) -> impl Iterator<Item = &SessionState> {
        self.current.iter().chain(self.previous.iter())
    }

    /// Tries the eligible states, current first; `None` if no state is eligible.
    fn decrypt_where(
        &mut self,
        message: &RatchetMessage,
        eligible: impl Fn(&SessionState) -> bool,
    ) -> Option<Result<Vec<u8>, DecryptError>> {
        let mut error = None;
        let mut budget = StepBudget::per_message();
        if let Some(current) = self.current.as_mut().filter(|s| eligible(s)) {
            match current.decrypt(message, &mut budget) {
                Ok(plaintext) => return Some(Ok(plaintext)),
                Err(e) => error = Some(e),
            }
        }
        for index in 0..self.previous.len() {
            if !eligible(&self.previous[index]) {
                continue;
            }
            match self.previous[index].decrypt(message, &mut budget) {
                Ok(plaintext) => {
                    if let Some(state) = self.previous.remove(index) {
                        self.promote(state);
                    }
                    return Some(Ok(plaintext));
                }
                // Keep the most specific error: one from a state that knew the chain.
                Err(e) if matches!(error, None | Some(DecryptError::AuthenticationFailed)) => {
                    error = Some(e)
                }
                Err(_) => {}
            }
        }
        error.map(Err)
    }

    /// Decrypts with the state created by the handshake `handshake`, if we hold it (a
    /// repeated first message from an initiator that has not heard back yet). The repeated
    /// handshake fields must be exactly those the state was created from.
    pub(crate) fn decrypt_repeated_first_message(
        &mut self,
        handshake: &HandshakeId,
        handshake_digest: &[u8; 32],
        message: &RatchetMessage,
    ) -> Option<Result<Vec<u8>, DecryptError>> {
        let state = self.states().find(|s| &s.handshake_id == handshake)?;
        let same_handshake = state
            .handshake_digest
            .is_some_and(|d| bool::from(d.ct_eq(handshake_digest)));
        if !same_handshake {
            return Some(Err(DecryptError::AuthenticationFailed));
        }
        self.decrypt_where(message, |s| &s.handshake_id == handshake)
    }
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { current, previous } = self;
        f.debug_struct("SessionRecord")
            .field("has_current", &current.is_some())
            .field("previous_states", &previous.len())
            .finish_non_exhaustive()
    }
}
