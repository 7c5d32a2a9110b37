//! Versioned serialisation of session records, for stores.
//!
//! ```text
//! record  = version u8 (= 1) || has_current u8 || [state] || count u8 (<= 40) || state*
//! state   = role u8 || local IdentityKey (128) || remote IdentityKey (128) || root key (32)
//!        || our ratchet secret (32) || has_sending u8 [|| chain key (32) || index u32]
//!        || has_remote u8 [|| remote ratchet key (32)] || previous counter u32
//!        || chains u8 (<= 5) || (ratchet key (32) || chain key (32) || index u32)*
//!        || skipped u16 (<= 2000) || (ratchet key (32) || index u32 || message key (32))*
//!        || handshake id (32) || has_digest u8 [|| handshake digest (32)]
//!        || has_pending u8 [|| PreKeyMessageParts (the first message's header, as on the wire)]
//! ```
//! Decoding is total: a wrong version, an over-limit count or truncated input is a
//! [`DecodeError`], never a panic.

use std::collections::VecDeque;

use zeroize::Zeroizing;

use super::{SessionRecord, SessionState, state::Role};
use crate::{
    Codec, Reader,
    dh::{DhKeyPair, DhPublicKey},
    error::DecodeError,
    identity::IdentityKey,
    limits::{MAX_PREVIOUS_STATES, MAX_RECEIVER_CHAINS, MAX_SESSION_RECORD_LEN, MAX_SKIPPED_KEYS},
    message::{HandshakeId, PreKeyMessageParts},
    pqxdh::associated_data,
    ratchet::{ChainKey, MessageKey, ReceiverChain, RootKey, SkippedKeys},
};

const RECORD_VERSION: u8 = 1;

impl SessionRecord {
    /// Serialises the record. The output contains secrets: store it protected.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(1024));
        out.push(RECORD_VERSION);
        match &self.current {
            Some(state) => {
                out.push(1);
                write_state(&mut out, state);
            }
            None => out.push(0),
        }
        out.push(self.previous.len().min(MAX_PREVIOUS_STATES) as u8);
        for state in self.previous.iter().take(MAX_PREVIOUS_STATES) {
            write_state(&mut out, state);
        }
        out
    }

    /// Restores a record from [`Self::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_SESSION_RECORD_LEN {
            return Err(DecodeError::TooLarge);
        }
        let mut reader = Reader::new(bytes);
        let version = reader.u8()?;
        if version != RECORD_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let current = if read_flag(&mut reader)? {
            Some(read_state(&mut reader)?)
        } else {
            None
        };
        let count = usize::from(reader.u8()?);
        if count > MAX_PREVIOUS_STATES {
            return Err(DecodeError::TooLarge);
        }
        // No preallocation by a count the input claims: each state must actually be present.
        let mut previous = VecDeque::new();
        for _ in 0..count {
            previous.push_back(read_state(&mut reader)?);
        }
        reader.finish()?;
        Ok(Self { current, previous })
    }
}

impl SessionRecord {
    /// Restores a record from a backup (or any copy that may be older than the last message
    /// sent). The restored sending chains' next message keys may have been used already, and
    /// a key and nonce must never encrypt twice, so unlike [`Self::from_bytes`]:
    ///
    /// * every state forgets its sending chain: it sends again only after a fresh DH ratchet
    ///   step;
    /// * the current state is archived: the record has no current session, so sending first
    ///   needs a new session (fetch a bundle), which the peer accepts whatever happened since
    ///   the backup. A message from the peer on an archived state still decrypts and makes
    ///   that state current again; the reply then takes the fresh step on the peer's newest
    ///   ratchet key, as any reply does.
    pub fn from_backup_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut record = Self::from_bytes(bytes)?;
        if let Some(current) = record.current.take() {
            record.previous.push_front(current);
            record.previous.truncate(MAX_PREVIOUS_STATES);
        }
        for state in record.previous.iter_mut() {
            state.forget_sending_chain();
        }
        Ok(record)
    }
}

fn write_state(out: &mut Vec<u8>, s: &SessionState) {
    out.push(s.role as u8);
    out.extend_from_slice(&s.local_identity.to_bytes());
    out.extend_from_slice(&s.remote_identity.to_bytes());
    out.extend_from_slice(s.root_key.as_bytes());
    out.extend_from_slice(s.our_ratchet.secret_bytes().as_ref());
    match &s.sending_chain {
        Some(chain) => {
            out.push(1);
            out.extend_from_slice(chain.as_bytes());
            out.extend_from_slice(&chain.index().to_be_bytes());
        }
        None => out.push(0),
    }
    match &s.remote_ratchet {
        Some(key) => {
            out.push(1);
            out.extend_from_slice(&key.0);
        }
        None => out.push(0),
    }
    out.extend_from_slice(&s.previous_counter.to_be_bytes());
    out.push(s.receiver_chains.len().min(MAX_RECEIVER_CHAINS) as u8);
    for chain in s.receiver_chains.iter().take(MAX_RECEIVER_CHAINS) {
        out.extend_from_slice(&chain.ratchet_key.0);
        out.extend_from_slice(chain.chain.as_bytes());
        out.extend_from_slice(&chain.chain.index().to_be_bytes());
    }
    let skipped = s.skipped.len().min(MAX_SKIPPED_KEYS);
    out.extend_from_slice(&(skipped as u16).to_be_bytes());
    for (key, mk) in s.skipped.iter().take(MAX_SKIPPED_KEYS) {
        out.extend_from_slice(&key.0);
        out.extend_from_slice(&mk.index().to_be_bytes());
        out.extend_from_slice(mk.seed());
    }
    out.extend_from_slice(s.handshake_id.as_bytes());
    match &s.handshake_digest {
        Some(digest) => {
            out.push(1);
            out.extend_from_slice(digest);
        }
        None => out.push(0),
    }
    match &s.pending_prekey {
        Some(parts) => {
            out.push(1);
            parts.write(out);
        }
        None => out.push(0),
    }
}

fn read_flag(reader: &mut Reader<'_>) -> Result<bool, DecodeError> {
    match reader.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::NonCanonical),
    }
}

fn read_state(reader: &mut Reader<'_>) -> Result<SessionState, DecodeError> {
    let role = match reader.u8()? {
        1 => Role::Initiator,
        2 => Role::Responder,
        _ => return Err(DecodeError::InvalidField("session role")),
    };
    let local_identity = IdentityKey::read_trusted(reader)?;
    let remote_identity = IdentityKey::read_trusted(reader)?;
    let root_key = RootKey::new(reader.array()?);
    let our_ratchet = DhKeyPair::from_secret_bytes(*Zeroizing::new(reader.array()?));
    let sending_chain = if read_flag(reader)? {
        Some(ChainKey::new(reader.array()?, reader.u32()?))
    } else {
        None
    };
    let remote_ratchet = if read_flag(reader)? {
        Some(DhPublicKey::read(reader)?)
    } else {
        None
    };
    let previous_counter = reader.u32()?;
    let chains = usize::from(reader.u8()?);
    if chains > MAX_RECEIVER_CHAINS {
        return Err(DecodeError::TooLarge);
    }
    let mut receiver_chains = VecDeque::new();
    for _ in 0..chains {
        let ratchet_key = DhPublicKey::read(reader)?;
        let chain = ChainKey::new(reader.array()?, reader.u32()?);
        receiver_chains.push_back(ReceiverChain { ratchet_key, chain });
    }
    let skipped_count = usize::from(u16::from_be_bytes(reader.array()?));
    if skipped_count > MAX_SKIPPED_KEYS {
        return Err(DecodeError::TooLarge);
    }
    let mut skipped = SkippedKeys::default();
    for _ in 0..skipped_count {
        let key = DhPublicKey::read(reader)?;
        let index = reader.u32()?;
        skipped.insert(key, MessageKey::new(reader.array()?, index));
    }
    let handshake_id = HandshakeId(reader.array()?);
    let handshake_digest = if read_flag(reader)? {
        Some(reader.array()?)
    } else {
        None
    };
    let pending_prekey = if read_flag(reader)? {
        Some(PreKeyMessageParts::read_trusted(reader)?)
    } else {
        None
    };
    if pending_prekey.as_ref().is_some_and(|parts| {
        parts.handshake_id() != handshake_id || parts.identity != local_identity
    }) {
        return Err(DecodeError::InvalidField(
            "pending header of another handshake",
        ));
    }
    let associated_data = match role {
        Role::Initiator => associated_data(&local_identity, &remote_identity),
        Role::Responder => associated_data(&remote_identity, &local_identity),
    };
    Ok(SessionState {
        role,
        local_identity,
        remote_identity,
        associated_data,
        root_key,
        our_ratchet,
        sending_chain,
        remote_ratchet,
        receiver_chains,
        previous_counter,
        skipped,
        handshake_id,
        pending_prekey,
        handshake_digest,
    })
}
