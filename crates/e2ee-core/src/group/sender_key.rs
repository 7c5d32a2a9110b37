//! Sender-key states: ours (`OutboundSenderKey`) and the ones other members gave us
//! (`InboundSenderKey`, at most [`MAX_SENDER_KEY_STATES`] per (group, sender) in a
//! `SenderKeyRecord`).
//!
//! Receiving verifies the signature before anything else, derives the message key without
//! writing to the state, and commits the advanced chain and the skipped keys only after the
//! AEAD succeeded: a rejected message leaves the state exactly as it was.

use std::{collections::VecDeque, fmt};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::{
    GroupError, MAX_GROUP_PLAINTEXT_LEN, MAX_SENDER_KEY_STATES,
    message::{GroupId, GroupMessage, SenderKeyDistribution, associated_data},
};
use crate::{
    DeviceAddress, Reader,
    aead::MessageCipher,
    debug_hex::hex_prefix,
    error::{DecodeError, KeyError},
    limits::{MAX_FORWARD_JUMP, MAX_SKIPPED_KEYS},
    ratchet::{ChainKey, MessageKey},
};

/// Our sender key in one group: chain key, signing key, key id.
#[derive(Clone)]
pub(crate) struct OutboundSenderKey {
    key_id: u32,
    chain: ChainKey,
    signing: SigningKey,
}

impl OutboundSenderKey {
    /// A fresh sender key from 68 random bytes drawn in this order: the key id (4 bytes, read
    /// big-endian), the chain key `CK_0` (32), the Ed25519 signing seed (32).
    pub(crate) fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut id = [0u8; 4];
        rng.fill_bytes(&mut id);
        let key_id = u32::from_be_bytes(id);
        let mut chain = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(chain.as_mut());
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        Self {
            key_id,
            chain: ChainKey::new(*chain, 0),
            signing: SigningKey::from_bytes(&seed),
        }
    }

    pub(crate) fn key_id(&self) -> u32 {
        self.key_id
    }

    /// `key_id u32 || iteration u32 || CK (32) || signing seed (32)`.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.key_id.to_be_bytes());
        out.extend_from_slice(&self.chain.index().to_be_bytes());
        out.extend_from_slice(self.chain.as_bytes());
        out.extend_from_slice(self.signing.as_bytes());
    }

    pub(crate) fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let key_id = reader.u32()?;
        let index = reader.u32()?;
        let chain = Zeroizing::new(reader.array::<32>()?);
        let seed = Zeroizing::new(reader.array::<32>()?);
        Ok(Self {
            key_id,
            chain: ChainKey::new(*chain, index),
            signing: SigningKey::from_bytes(&seed),
        })
    }

    /// The next iteration this key will send.
    pub(crate) fn iteration(&self) -> u32 {
        self.chain.index()
    }

    /// The key as a member added now receives it: from the current iteration on.
    pub(crate) fn distribution(&self, group_id: &GroupId) -> SenderKeyDistribution {
        SenderKeyDistribution {
            group_id: group_id.clone(),
            key_id: self.key_id,
            iteration: self.chain.index(),
            chain_key: Zeroizing::new(*self.chain.as_bytes()),
            signing_key: self.signing.verifying_key(),
        }
    }

    /// One AEAD and one signature, whatever the group size.
    pub(crate) fn encrypt(
        &mut self,
        group_id: &GroupId,
        sender: &DeviceAddress,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, GroupError> {
        if plaintext.len() > MAX_GROUP_PLAINTEXT_LEN {
            return Err(GroupError::InvalidArgument("group plaintext over 64 KiB"));
        }
        // u32::MAX is never sent, so a receiver's chain index never wraps.
        if self.chain.index() == u32::MAX {
            return Err(GroupError::ChainExhausted);
        }
        let key = self.chain.step();
        let mut out = GroupMessage::header(self.key_id, key.index());
        let header_len = out.len();
        let ad = associated_data(group_id, sender, &out);
        out.reserve(plaintext.len() + 16 + 64);
        out.extend_from_slice(plaintext);
        MessageCipher::sender_key(&key)
            .seal(&ad, &mut out, header_len)
            .map_err(|_| GroupError::InvalidArgument("group plaintext too large for AES-GCM"))?;
        let mut signed = ad;
        signed.extend_from_slice(&out[header_len..]);
        out.extend_from_slice(&self.signing.sign(&signed).to_bytes());
        Ok(out)
    }
}

impl fmt::Debug for OutboundSenderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            key_id,
            chain,
            signing,
        } = self;
        f.debug_struct("OutboundSenderKey")
            .field("key_id", key_id)
            .field("iteration", &chain.index())
            .field(
                "signing_key",
                &hex_prefix(signing.verifying_key().as_bytes()),
            )
            .finish_non_exhaustive()
    }
}

/// A sender key another member gave us: its chain from the distributed iteration on, its
/// public signing key, and the keys of messages skipped over.
#[derive(Clone)]
pub(crate) struct InboundSenderKey {
    key_id: u32,
    chain: ChainKey,
    verifying: VerifyingKey,
    /// Oldest first; at most [`MAX_SKIPPED_KEYS`].
    skipped: VecDeque<MessageKey>,
}

impl InboundSenderKey {
    pub(crate) fn from_distribution(distribution: &SenderKeyDistribution) -> Self {
        Self {
            key_id: distribution.key_id,
            chain: ChainKey::new(*distribution.chain_key, distribution.iteration),
            verifying: distribution.signing_key,
            skipped: VecDeque::new(),
        }
    }

    /// `key_id u32 || iteration u32 || CK (32) || signing public key (32) || count u16
    /// (0..=2000) || count * (iteration u32 || MK (32))`, skipped iterations strictly ascending
    /// and below the chain's iteration.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.key_id.to_be_bytes());
        out.extend_from_slice(&self.chain.index().to_be_bytes());
        out.extend_from_slice(self.chain.as_bytes());
        out.extend_from_slice(self.verifying.as_bytes());
        // At most MAX_SKIPPED_KEYS (2,000), enforced on every insertion.
        out.extend_from_slice(&u16::try_from(self.skipped.len()).unwrap_or(0).to_be_bytes());
        for key in &self.skipped {
            out.extend_from_slice(&key.index().to_be_bytes());
            out.extend_from_slice(key.seed());
        }
    }

    pub(crate) fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let key_id = reader.u32()?;
        let index = reader.u32()?;
        let chain = Zeroizing::new(reader.array::<32>()?);
        let verifying = crate::ed25519::decode_public_key(&reader.array()?)
            .ok_or(DecodeError::InvalidField("sender signing key"))?;
        let count = usize::from(u16::from_be_bytes(reader.array()?));
        if count > MAX_SKIPPED_KEYS {
            return Err(DecodeError::TooLarge);
        }
        let mut skipped: VecDeque<MessageKey> = VecDeque::new();
        for _ in 0..count {
            let iteration = reader.u32()?;
            if iteration >= index || skipped.back().is_some_and(|k| k.index() >= iteration) {
                return Err(DecodeError::NonCanonical);
            }
            let seed = Zeroizing::new(reader.array::<32>()?);
            skipped.push_back(MessageKey::new(*seed, iteration));
        }
        Ok(Self {
            key_id,
            chain: ChainKey::new(*chain, index),
            verifying,
            skipped,
        })
    }

    #[cfg(test)]
    pub(crate) fn skipped_len(&self) -> usize {
        self.skipped.len()
    }

    /// Verifies, then decrypts; state changes only on success.
    pub(crate) fn decrypt(
        &mut self,
        group_id: &GroupId,
        sender: &DeviceAddress,
        message: &GroupMessage,
    ) -> Result<Vec<u8>, GroupError> {
        let ad = associated_data(group_id, sender, message.header_bytes());
        let mut signed = ad.clone();
        signed.extend_from_slice(message.ciphertext_and_tag());
        self.verifying
            .verify_strict(&signed, &Signature::from_bytes(&message.signature()))
            .map_err(|_| KeyError::InvalidSignature("group message"))?;

        let iteration = message.iteration();
        if iteration < self.chain.index() {
            let position = self
                .skipped
                .iter()
                .position(|k| k.index() == iteration)
                .ok_or(GroupError::Duplicate { iteration })?;
            let plaintext = self
                .skipped
                .get(position)
                .map(|key| open(key, &ad, message))
                .ok_or(GroupError::Duplicate { iteration })??;
            self.skipped.remove(position);
            return Ok(plaintext);
        }
        if iteration == u32::MAX {
            // Never sent by a conforming sender (see `OutboundSenderKey::encrypt`).
            return Err(GroupError::TooFarAhead { jump: u32::MAX });
        }
        let jump = iteration - self.chain.index();
        if jump > MAX_FORWARD_JUMP {
            return Err(GroupError::TooFarAhead { jump });
        }
        // Work on a copy of the chain; only the last MAX_SKIPPED_KEYS skipped keys can survive.
        let mut chain = self.chain.clone();
        let mut newly_skipped = VecDeque::new();
        while chain.index() < iteration {
            newly_skipped.push_back(chain.step());
            if newly_skipped.len() > MAX_SKIPPED_KEYS {
                newly_skipped.pop_front();
            }
        }
        let key = chain.step();
        let plaintext = open(&key, &ad, message)?;
        self.chain = chain;
        self.skipped.append(&mut newly_skipped);
        while self.skipped.len() > MAX_SKIPPED_KEYS {
            self.skipped.pop_front();
        }
        Ok(plaintext)
    }
}

fn open(key: &MessageKey, ad: &[u8], message: &GroupMessage) -> Result<Vec<u8>, GroupError> {
    MessageCipher::sender_key(key)
        .open(ad, message.ciphertext_and_tag())
        .map_err(|_| GroupError::AuthenticationFailed)
}

impl fmt::Debug for InboundSenderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            key_id,
            chain,
            verifying,
            skipped,
        } = self;
        f.debug_struct("InboundSenderKey")
            .field("key_id", key_id)
            .field("next_iteration", &chain.index())
            .field("signing_key", &hex_prefix(verifying.as_bytes()))
            .field("skipped", &skipped.len())
            .finish_non_exhaustive()
    }
}

/// The sender keys one sender device gave us in one group, newest first.
#[derive(Clone, Default, Debug)]
pub(crate) struct SenderKeyRecord {
    states: VecDeque<InboundSenderKey>,
}

impl SenderKeyRecord {
    /// Adds a distributed key. A key id we already hold with the same signing key is a
    /// re-send and changes nothing (so it cannot roll a chain back or forward); with another
    /// signing key it is refused.
    pub(crate) fn add(&mut self, distribution: &SenderKeyDistribution) -> Result<(), GroupError> {
        if let Some(existing) = self.state(distribution.key_id) {
            return if existing.verifying == distribution.signing_key {
                Ok(())
            } else {
                Err(GroupError::ConflictingDistribution {
                    key_id: distribution.key_id,
                })
            };
        }
        self.states
            .push_front(InboundSenderKey::from_distribution(distribution));
        self.states.truncate(MAX_SENDER_KEY_STATES);
        Ok(())
    }

    /// Whether any state holds this signing key.
    pub(crate) fn holds_signing_key(&self, key: &VerifyingKey) -> bool {
        self.states.iter().any(|s| s.verifying == *key)
    }

    pub(crate) fn state(&self, key_id: u32) -> Option<&InboundSenderKey> {
        self.states.iter().find(|s| s.key_id == key_id)
    }

    pub(crate) fn state_mut(&mut self, key_id: u32) -> Option<&mut InboundSenderKey> {
        self.states.iter_mut().find(|s| s.key_id == key_id)
    }

    pub(crate) fn len(&self) -> usize {
        self.states.len()
    }

    /// `count u8 (1..=5) || count * InboundSenderKey`, newest first, key ids distinct.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        // At most MAX_SENDER_KEY_STATES (5).
        out.push(u8::try_from(self.states.len()).unwrap_or(0));
        for state in &self.states {
            state.write(out);
        }
    }

    pub(crate) fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = usize::from(reader.u8()?);
        if count == 0 {
            return Err(DecodeError::InvalidField("empty sender key record"));
        }
        if count > MAX_SENDER_KEY_STATES {
            return Err(DecodeError::TooLarge);
        }
        let mut states: VecDeque<InboundSenderKey> = VecDeque::new();
        for _ in 0..count {
            let state = InboundSenderKey::read(reader)?;
            if states.iter().any(|s| s.key_id == state.key_id) {
                return Err(DecodeError::NonCanonical);
            }
            states.push_back(state);
        }
        Ok(Self { states })
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::Codec;

    fn sender() -> DeviceAddress {
        DeviceAddress::new("carol", 1).unwrap()
    }

    fn pair(seed: u64) -> (GroupId, OutboundSenderKey, InboundSenderKey) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let group = GroupId::new(b"group").unwrap();
        let out = OutboundSenderKey::generate(&mut rng);
        let inbound = InboundSenderKey::from_distribution(&out.distribution(&group));
        (group, out, inbound)
    }

    #[test]
    fn in_order_out_of_order_and_duplicates() {
        let (group, mut out, mut inbound) = pair(1);
        let m: Vec<_> = (0..5u8)
            .map(|i| {
                GroupMessage::from_bytes(&out.encrypt(&group, &sender(), &[i]).unwrap()).unwrap()
            })
            .collect();
        assert_eq!(inbound.decrypt(&group, &sender(), &m[0]).unwrap(), [0]);
        assert_eq!(inbound.decrypt(&group, &sender(), &m[3]).unwrap(), [3]);
        assert_eq!(inbound.skipped_len(), 2);
        assert_eq!(inbound.decrypt(&group, &sender(), &m[1]).unwrap(), [1]);
        assert_eq!(
            inbound.decrypt(&group, &sender(), &m[1]),
            Err(GroupError::Duplicate { iteration: 1 })
        );
        assert_eq!(
            inbound.decrypt(&group, &sender(), &m[3]),
            Err(GroupError::Duplicate { iteration: 3 })
        );
        assert_eq!(inbound.decrypt(&group, &sender(), &m[2]).unwrap(), [2]);
        assert_eq!(inbound.decrypt(&group, &sender(), &m[4]).unwrap(), [4]);
        assert_eq!(inbound.skipped_len(), 0);
    }

    #[test]
    fn max_forward_jump_is_enforced_and_kept_keys_bounded() {
        let (group, mut out, mut inbound) = pair(2);
        // Advance the sender without sending: the jump limit is relative to the receiver.
        for _ in 0..MAX_FORWARD_JUMP {
            out.chain.step();
        }
        let at_limit =
            GroupMessage::from_bytes(&out.encrypt(&group, &sender(), b"x").unwrap()).unwrap();
        let over =
            GroupMessage::from_bytes(&out.encrypt(&group, &sender(), b"y").unwrap()).unwrap();
        assert_eq!(
            inbound.clone().decrypt(&group, &sender(), &over),
            Err(GroupError::TooFarAhead {
                jump: MAX_FORWARD_JUMP + 1
            })
        );
        assert_eq!(inbound.decrypt(&group, &sender(), &at_limit).unwrap(), b"x");
        assert_eq!(inbound.skipped_len(), MAX_SKIPPED_KEYS);
        assert_eq!(inbound.decrypt(&group, &sender(), &over).unwrap(), b"y");
    }

    #[test]
    fn evicted_skipped_keys_read_as_duplicates() {
        let (group, mut out, mut inbound) = pair(3);
        let first =
            GroupMessage::from_bytes(&out.encrypt(&group, &sender(), b"0").unwrap()).unwrap();
        for _ in 0..MAX_SKIPPED_KEYS {
            out.chain.step();
        }
        let last =
            GroupMessage::from_bytes(&out.encrypt(&group, &sender(), b"1").unwrap()).unwrap();
        assert_eq!(inbound.decrypt(&group, &sender(), &last).unwrap(), b"1");
        assert_eq!(inbound.skipped_len(), MAX_SKIPPED_KEYS);
        assert_eq!(
            inbound.decrypt(&group, &sender(), &first),
            Err(GroupError::Duplicate { iteration: 0 })
        );
    }

    /// F4: the sender's address is in the signed and authenticated bytes, so a message
    /// verified under one member's key fails when another member re-sends it as its own.
    #[test]
    fn a_message_does_not_verify_under_another_senders_name() {
        let (group, mut out, mut inbound) = pair(6);
        let message =
            GroupMessage::from_bytes(&out.encrypt(&group, &sender(), b"vote no").unwrap()).unwrap();
        let bob = DeviceAddress::new("bob", 1).unwrap();
        assert_eq!(
            inbound.clone().decrypt(&group, &bob, &message),
            Err(GroupError::Key(KeyError::InvalidSignature("group message")))
        );
        assert_eq!(
            inbound.decrypt(&group, &sender(), &message).unwrap(),
            b"vote no"
        );
    }

    #[test]
    fn record_keeps_at_most_five_states_and_refuses_conflicts() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let group = GroupId::new(b"group").unwrap();
        let mut record = SenderKeyRecord::default();
        let keys: Vec<_> = (0..MAX_SENDER_KEY_STATES + 1)
            .map(|_| OutboundSenderKey::generate(&mut rng))
            .collect();
        for key in &keys {
            record.add(&key.distribution(&group)).unwrap();
            record.add(&key.distribution(&group)).unwrap();
        }
        assert_eq!(record.len(), MAX_SENDER_KEY_STATES);
        assert!(record.state(keys[0].key_id()).is_none());
        assert!(record.state(keys[1].key_id()).is_some());
        let mut forged = keys[5].distribution(&group);
        forged.signing_key = keys[4].signing.verifying_key();
        assert_eq!(
            record.add(&forged),
            Err(GroupError::ConflictingDistribution {
                key_id: keys[5].key_id()
            })
        );
    }

    #[test]
    fn debug_never_prints_secrets() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let group = GroupId::new(b"group").unwrap();
        let out = OutboundSenderKey::generate(&mut rng);
        let distribution = out.distribution(&group);
        let inbound = InboundSenderKey::from_distribution(&distribution);
        let chain_hex: String = distribution.chain_key[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let seed_hex: String = out.signing.as_bytes()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        for text in [
            format!("{out:?}"),
            format!("{inbound:?}"),
            format!("{distribution:?}"),
        ] {
            assert!(!text.contains(&chain_hex), "{text}");
            assert!(!text.contains(&seed_hex), "{text}");
            assert!(!text.contains(&format!("{:?}", &distribution.chain_key[..4])));
        }
    }
}
