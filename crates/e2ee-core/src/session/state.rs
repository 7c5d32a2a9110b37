//! One Double Ratchet session with one peer device.
//!
//! The sending DH ratchet step is taken lazily: receiving a new ratchet key only records it
//! (and derives the receiving chain); the next `encrypt` generates our new ratchet key and
//! derives the sending chain. The keys are exactly those of Signal's spec (the same KDF_RK
//! inputs in the same order); decrypt just needs no randomness.
//!
//! Every decrypt works on copies and commits only after the AEAD tag verified, so a failed
//! decrypt leaves the state exactly as it was.

use std::collections::VecDeque;

use rand_core::{CryptoRng, RngCore};

use super::budget::StepBudget;
use crate::{
    aead::MessageCipher,
    dh::{DhKeyPair, DhPublicKey},
    error::{DecryptError, EncryptError},
    identity::IdentityKey,
    limits::{MAX_FORWARD_JUMP, MAX_PLAINTEXT_LEN, MAX_RECEIVER_CHAINS, MAX_SKIPPED_KEYS},
    message::{HandshakeId, PreKeyMessage, PreKeyMessageParts, RatchetMessage},
    ratchet::{ChainKey, MessageKey, ReceiverChain, RootKey, SkippedKeys},
};

/// Which side of the handshake this session was created on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Role {
    Initiator = 1,
    Responder = 2,
}

#[derive(Clone)]
pub(crate) struct SessionState {
    pub(crate) role: Role,
    pub(crate) local_identity: IdentityKey,
    pub(crate) remote_identity: IdentityKey,
    pub(crate) associated_data: [u8; 128],
    pub(crate) root_key: RootKey,
    pub(crate) our_ratchet: DhKeyPair,
    /// `None` until the next encrypt takes the sending DH step.
    pub(crate) sending_chain: Option<ChainKey>,
    /// The peer's newest ratchet key.
    pub(crate) remote_ratchet: Option<DhPublicKey>,
    /// Newest first.
    pub(crate) receiver_chains: VecDeque<ReceiverChain>,
    pub(crate) previous_counter: u32,
    pub(crate) skipped: SkippedKeys,
    /// Names the handshake this session came from.
    pub(crate) handshake_id: HandshakeId,
    /// Initiator only: sent with every message until the peer answers.
    pub(crate) pending_prekey: Option<PreKeyMessageParts>,
    /// Responder only: digest of the first message's handshake fields; repeated first
    /// messages must carry exactly the same fields.
    pub(crate) handshake_digest: Option<[u8; 32]>,
}

impl SessionState {
    /// Initiator: `RK = SK`, then one sending DH step against the responder's signed prekey.
    pub(crate) fn new_initiator(
        rng: &mut (impl RngCore + CryptoRng),
        shared_key: &[u8; 32],
        associated_data: [u8; 128],
        local_identity: IdentityKey,
        remote_identity: IdentityKey,
        remote_signed_prekey: DhPublicKey,
        parts: PreKeyMessageParts,
    ) -> Result<Self, crate::error::KeyError> {
        let our_ratchet = DhKeyPair::generate(rng);
        let (root_key, sending) =
            RootKey::new(*shared_key).step(&our_ratchet, &remote_signed_prekey)?;
        Ok(Self {
            role: Role::Initiator,
            local_identity,
            remote_identity,
            associated_data,
            root_key,
            our_ratchet,
            sending_chain: Some(sending),
            remote_ratchet: Some(remote_signed_prekey),
            receiver_chains: VecDeque::new(),
            previous_counter: 0,
            skipped: SkippedKeys::default(),
            handshake_id: parts.handshake_id(),
            pending_prekey: Some(parts),
            handshake_digest: None,
        })
    }

    /// Responder: `RK = SK`; our first ratchet key is the signed prekey.
    pub(crate) fn new_responder(
        shared_key: &[u8; 32],
        associated_data: [u8; 128],
        local_identity: IdentityKey,
        remote_identity: IdentityKey,
        signed_prekey: DhKeyPair,
        handshake_id: HandshakeId,
        handshake_digest: [u8; 32],
    ) -> Self {
        Self {
            role: Role::Responder,
            local_identity,
            remote_identity,
            associated_data,
            root_key: RootKey::new(*shared_key),
            our_ratchet: signed_prekey,
            sending_chain: None,
            remote_ratchet: None,
            receiver_chains: VecDeque::new(),
            previous_counter: 0,
            skipped: SkippedKeys::default(),
            handshake_id,
            pending_prekey: None,
            handshake_digest: Some(handshake_digest),
        }
    }

    /// Encrypts one message, taking the sending DH step first if one is due.
    pub(crate) fn encrypt(
        &mut self,
        rng: &mut (impl RngCore + CryptoRng),
        plaintext: &[u8],
    ) -> Result<Vec<u8>, EncryptError> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(EncryptError::PlaintextTooLarge {
                len: plaintext.len(),
            });
        }
        // A due sending DH step is computed on the side and committed only once the message
        // is sealed, so a failure leaves the state as it was.
        let mut stepped = match &self.sending_chain {
            Some(_) => None,
            None => {
                let remote = self.remote_ratchet.ok_or(EncryptError::NoSendingChain)?;
                let ratchet = DhKeyPair::generate(rng);
                let (root, chain) = self
                    .root_key
                    .step(&ratchet, &remote)
                    .map_err(EncryptError::Key)?;
                Some((root, ratchet, chain))
            }
        };
        let (ratchet_public, chain) = match (&mut stepped, &mut self.sending_chain) {
            (Some((_, ratchet, chain)), _) => (ratchet.public(), chain),
            (None, Some(chain)) => (self.our_ratchet.public(), chain),
            (None, None) => return Err(EncryptError::NoSendingChain),
        };
        let associated_data = &self.associated_data;
        let previous_counter = self.previous_counter;
        let sealed = chain
            .step_with(|key| {
                RatchetMessage::seal(
                    ratchet_public,
                    previous_counter,
                    key.index(),
                    &MessageCipher::pairwise(key),
                    associated_data,
                    plaintext,
                )
            })
            .map_err(|_| EncryptError::PlaintextTooLarge {
                len: plaintext.len(),
            })?;
        if let Some((root, ratchet, chain)) = stepped {
            self.root_key = root;
            self.our_ratchet = ratchet;
            self.sending_chain = Some(chain);
        }
        Ok(match &self.pending_prekey {
            Some(parts) => PreKeyMessage::encode(parts, &sealed),
            None => sealed,
        })
    }

    /// Forgets the sending chain (keeping `PN`), so the next encrypt takes a fresh sending DH
    /// step: what a state restored from a backup must do.
    pub(crate) fn forget_sending_chain(&mut self) {
        if let Some(sending) = self.sending_chain.take() {
            self.previous_counter = sending.index();
        }
    }

    /// Decrypts one message, committing state changes only on success. Every chain-key
    /// derivation is taken from `budget` before it is made.
    pub(crate) fn decrypt(
        &mut self,
        message: &RatchetMessage,
        budget: &mut StepBudget,
    ) -> Result<Vec<u8>, DecryptError> {
        let (ad, ad_len) = message.aead_ad(&self.associated_data);
        let ad = &ad[..ad_len];
        let their_key = message.ratchet_key();
        let counter = message.counter();

        if let Some(position) = self.skipped.find(&their_key, counter) {
            let key = self
                .skipped
                .get(position)
                .ok_or(DecryptError::AuthenticationFailed)?;
            let plaintext = open(key, ad, message)?;
            self.skipped.remove(position);
            self.pending_prekey = None;
            return Ok(plaintext);
        }

        if let Some(index) = self
            .receiver_chains
            .iter()
            .position(|c| c.ratchet_key == their_key)
        {
            let mut chain = self.receiver_chains[index].chain.clone();
            let skipped = advance_to(&mut chain, counter, budget)?;
            let key = chain.step();
            let plaintext = open(&key, ad, message)?;
            self.receiver_chains[index].chain = chain;
            for key in skipped {
                self.skipped.insert(their_key, key);
            }
            self.pending_prekey = None;
            return Ok(plaintext);
        }

        // A new ratchet key: finish the current receiving chain up to PN, then take the
        // receiving DH step. Both jumps are checked, and taken from the budget, before any
        // derivation.
        if counter > MAX_FORWARD_JUMP {
            return Err(DecryptError::TooFarAhead { jump: counter });
        }
        let previous_counter = message.previous_counter();
        // PN at or below our index means a whole chain of theirs never reached us: nothing
        // to skip on this one.
        let finishing = self
            .receiver_chains
            .front()
            .filter(|current| previous_counter > current.chain.index());
        let finish_jump = finishing.map_or(0, |current| previous_counter - current.chain.index());
        if finish_jump > MAX_FORWARD_JUMP {
            return Err(DecryptError::TooFarAhead { jump: finish_jump });
        }
        budget.take(finish_jump + counter)?;
        let finished = finishing.map(|current| {
            let mut chain = current.chain.clone();
            let keys = skip_to(&mut chain, previous_counter);
            (chain, keys)
        });
        let (root, mut chain) = self
            .root_key
            .step(&self.our_ratchet, &their_key)
            .map_err(DecryptError::Key)?;
        let skipped = skip_to(&mut chain, counter);
        let key = chain.step();
        let plaintext = open(&key, ad, message)?;

        if let (Some(current), Some((chain, keys))) = (self.receiver_chains.front_mut(), finished) {
            // The finished chain moves past PN too, so its keys live only in `skipped` and a
            // replayed late message cannot re-derive them.
            current.chain = chain;
            for key in keys {
                self.skipped.insert(current.ratchet_key, key);
            }
        }
        for key in skipped {
            self.skipped.insert(their_key, key);
        }
        self.receiver_chains.push_front(ReceiverChain {
            ratchet_key: their_key,
            chain,
        });
        self.receiver_chains.truncate(MAX_RECEIVER_CHAINS);
        self.root_key = root;
        self.remote_ratchet = Some(their_key);
        if let Some(sending) = self.sending_chain.take() {
            self.previous_counter = sending.index();
        }
        self.pending_prekey = None;
        Ok(plaintext)
    }
}

fn open(key: &MessageKey, ad: &[u8], message: &RatchetMessage) -> Result<Vec<u8>, DecryptError> {
    MessageCipher::pairwise(key)
        .open(ad, message.ciphertext())
        .map_err(|_| DecryptError::AuthenticationFailed)
}

/// Steps `chain` up to `counter` (see [`skip_to`]) after refusing going backwards (a
/// duplicate), jumps over [`MAX_FORWARD_JUMP`] and jumps the budget cannot pay for.
fn advance_to(
    chain: &mut ChainKey,
    counter: u32,
    budget: &mut StepBudget,
) -> Result<Vec<MessageKey>, DecryptError> {
    if counter < chain.index() {
        return Err(DecryptError::Duplicate { counter });
    }
    let jump = counter - chain.index();
    if jump > MAX_FORWARD_JUMP {
        return Err(DecryptError::TooFarAhead { jump });
    }
    budget.take(jump)?;
    Ok(skip_to(chain, counter))
}

/// Steps `chain` up to `counter` (at or above its index), returning the skipped message keys:
/// at most the last [`MAX_SKIPPED_KEYS`], the rest would be evicted anyway.
fn skip_to(chain: &mut ChainKey, counter: u32) -> Vec<MessageKey> {
    let jump = counter.saturating_sub(chain.index());
    let keep_from = counter.saturating_sub(MAX_SKIPPED_KEYS as u32);
    let mut skipped = Vec::with_capacity((jump as usize).min(MAX_SKIPPED_KEYS));
    while chain.index() < counter {
        let key = chain.step();
        if key.index() >= keep_from {
            skipped.push(key);
        }
    }
    skipped
}
