//! A welcome larger than one message (a big group's state) travels in parts, reassembled by
//! the receiver before it is checked.
//!
//! ```text
//! pairwise body 0x06 || WelcomePart
//! WelcomePart = transfer u64 (random) || index u16 || count u16 (2..=MAX_WELCOME_PARTS)
//!               || bytes (the rest: part `index` of the GroupWelcome's encoding)
//! ```
//!
//! A receiver keeps at most one transfer per sender device (a new transfer id drops the
//! parts of the previous one), so a peer cannot fill the store with partial welcomes.

use e2ee_core::{
    Codec, DeviceAddress,
    group::membership::{GroupWelcome, MAX_GROUP_WELCOME_LEN},
};
use e2ee_encoding::Reader;
use rand_core::{OsRng, RngCore};

use super::group_wire::{BODY_GROUP_WELCOME, BODY_WELCOME_PART, group_content};
use super::{Error, MAX_MESSAGE_BODY_LEN};
use crate::store::{Items, Space, StoreError, Transaction};

/// Bytes of a welcome per part.
pub const WELCOME_PART_LEN: usize = 56 * 1024;
/// Most parts of one welcome (the largest welcome e2ee-core allows).
pub const MAX_WELCOME_PARTS: usize = MAX_GROUP_WELCOME_LEN.div_ceil(WELCOME_PART_LEN);

const HEADER: u8 = 0x01;
const PART: u8 = 0x02;

/// The pairwise plaintexts that carry `welcome`: one, or its parts in order.
pub(super) fn welcome_contents(welcome: &GroupWelcome) -> Result<Vec<Vec<u8>>, Error> {
    let bytes = welcome.to_bytes();
    if bytes.len() < MAX_MESSAGE_BODY_LEN {
        return Ok(vec![group_content(BODY_GROUP_WELCOME, &bytes)?]);
    }
    let transfer = OsRng.next_u64();
    let chunks: Vec<&[u8]> = bytes.chunks(WELCOME_PART_LEN).collect();
    let count = chunks.len() as u16;
    chunks
        .iter()
        .enumerate()
        .map(|(index, chunk)| {
            let mut part = Vec::with_capacity(12 + chunk.len());
            transfer.write(&mut part);
            (index as u16).write(&mut part);
            count.write(&mut part);
            part.extend_from_slice(chunk);
            group_content(BODY_WELCOME_PART, &part)
        })
        .collect()
}

/// One part as it arrived (not yet checked against what is held).
pub(crate) struct WelcomePart<'a> {
    pub(crate) transfer: u64,
    pub(crate) index: u16,
    pub(crate) count: u16,
    pub(crate) chunk: &'a [u8],
}

impl<'a> WelcomePart<'a> {
    /// Decodes a part: 2..=[`MAX_WELCOME_PARTS`] parts, an index below the count, and
    /// 1..=[`WELCOME_PART_LEN`] bytes.
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let bad = || Error::InvalidInput {
            what: "welcome part",
        };
        let mut reader = Reader::new(bytes);
        let transfer = reader.u64().map_err(|_| bad())?;
        let index = reader.u16().map_err(|_| bad())?;
        let count = reader.u16().map_err(|_| bad())?;
        let chunk = reader.rest();
        if count < 2 || usize::from(count) > MAX_WELCOME_PARTS || index >= count {
            return Err(bad());
        }
        if chunk.is_empty() || chunk.len() > WELCOME_PART_LEN {
            return Err(bad());
        }
        Ok(Self {
            transfer,
            index,
            count,
            chunk,
        })
    }
}

fn header_lookup(sender: &DeviceAddress) -> Vec<u8> {
    let mut lookup = vec![HEADER];
    sender.write(&mut lookup);
    lookup
}

fn part_lookup(sender: &DeviceAddress, index: u16) -> Vec<u8> {
    let mut lookup = vec![PART];
    sender.write(&mut lookup);
    index.write(&mut lookup);
    lookup
}

fn drop_transfer(
    tx: &mut Transaction<'_>,
    sender: &DeviceAddress,
    count: u16,
) -> Result<(), StoreError> {
    for index in 0..count {
        tx.delete(Space::WELCOME_PARTS, &part_lookup(sender, index))?;
    }
    tx.delete(Space::WELCOME_PARTS, &header_lookup(sender))?;
    Ok(())
}

/// Stores one part from `sender`; once every part of its transfer is in, returns the
/// welcome's bytes (and forgets the parts).
pub(super) fn take_part(
    tx: &mut Transaction<'_>,
    sender: &DeviceAddress,
    bytes: &[u8],
) -> Result<Option<Vec<u8>>, Error> {
    let WelcomePart {
        transfer,
        index,
        count,
        chunk,
    } = WelcomePart::parse(bytes)?;
    let header = header_lookup(sender);
    let mut received = 0u16;
    if let Some(held) = tx.get(Space::WELCOME_PARTS, &header)? {
        let mut r = Reader::new(&held);
        let corrupt = |_| StoreError::Corrupt("welcome parts");
        let (held_transfer, held_count, held_received) = (
            r.u64().map_err(corrupt)?,
            r.u16().map_err(corrupt)?,
            r.u16().map_err(corrupt)?,
        );
        if held_transfer == transfer && held_count == count {
            received = held_received;
        } else {
            drop_transfer(tx, sender, held_count)?;
        }
    }
    let lookup = part_lookup(sender, index);
    if tx.get(Space::WELCOME_PARTS, &lookup)?.is_none() {
        tx.put(Space::WELCOME_PARTS, &lookup, chunk)?;
        received += 1;
    }
    if received < count {
        let mut value = Vec::new();
        transfer.write(&mut value);
        count.write(&mut value);
        received.write(&mut value);
        tx.put(Space::WELCOME_PARTS, &header, &value)?;
        return Ok(None);
    }
    let mut welcome = Vec::new();
    for i in 0..count {
        let part = tx
            .get(Space::WELCOME_PARTS, &part_lookup(sender, i))?
            .ok_or(StoreError::Corrupt("welcome parts"))?;
        welcome.extend_from_slice(&part);
    }
    drop_transfer(tx, sender, count)?;
    Ok(Some(welcome))
}

#[cfg(test)]
mod tests {
    use e2ee_core::{
        control::Content,
        group::membership::{GroupHistory, GroupState, MAX_GROUP_USERS},
    };

    use super::*;
    use crate::store::{StoreKey, Vault};

    /// A group state of `n` members with long user ids (built from the spec's encoding, as
    /// a peer could send it), and its welcome.
    fn big_welcome(n: usize) -> GroupWelcome {
        let account = e2ee_core::device::AccountIdentityKeyPair::from_secret_bytes(&[9; 32])
            .unwrap()
            .public()
            .to_bytes();
        let mut state = vec![0x01, 32];
        state.extend_from_slice(&[0x42; 32]);
        state.extend_from_slice(&1u64.to_be_bytes());
        state.extend_from_slice(&[0x11; 32]);
        for text in [&b"big"[..], b"", b""] {
            state.extend_from_slice(&(text.len() as u16).to_be_bytes());
            state.extend_from_slice(text);
        }
        state.push(0);
        state.extend_from_slice(&(n as u16).to_be_bytes());
        for i in 0..n {
            let user = format!("{i:05}{}", "u".repeat(120));
            state.push(user.len() as u8);
            state.extend_from_slice(user.as_bytes());
            state.extend_from_slice(&account);
            state.push(u8::from(i == 0));
            state.extend_from_slice(&1u64.to_be_bytes());
        }
        GroupWelcome {
            state: GroupState::from_bytes(&state).unwrap(),
            changes: Vec::new(),
        }
    }

    fn parts_of(contents: &[Vec<u8>]) -> Vec<Vec<u8>> {
        contents
            .iter()
            .map(|c| match Content::from_bytes(c).unwrap() {
                Content::Message(body) => {
                    assert_eq!(body[0], BODY_WELCOME_PART);
                    body[1..].to_vec()
                }
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_welcome_too_large_for_one_message_travels_in_parts_and_is_reassembled() {
        let dir = std::env::temp_dir().join(format!("e2ee-welcome-parts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut vault = Vault::create(&dir.join("v.db"), &StoreKey::from_bytes([3; 32])).unwrap();
        let sender = DeviceAddress::new("alice", 1).unwrap();

        // A small welcome is one message.
        let small = welcome_contents(&big_welcome(3)).unwrap();
        assert_eq!(small.len(), 1);

        let welcome = big_welcome(MAX_GROUP_USERS);
        let contents = welcome_contents(&welcome).unwrap();
        assert!(contents.len() > 1, "{} parts", contents.len());
        assert!(contents.len() <= MAX_WELCOME_PARTS);
        for c in &contents {
            assert!(c.len() <= MAX_MESSAGE_BODY_LEN + 64);
        }
        let parts = parts_of(&contents);
        // Out of order, with a duplicate: only the last missing part completes it.
        let mut order: Vec<usize> = (0..parts.len()).rev().collect();
        order.insert(1, parts.len() - 1);
        let mut done = None;
        for (n, i) in order.iter().enumerate() {
            let got = vault
                .transaction(|tx| take_part(tx, &sender, &parts[*i]))
                .unwrap();
            if n + 1 < order.len() {
                assert!(got.is_none(), "complete after {n} parts");
            } else {
                done = got;
            }
        }
        let bytes = done.expect("complete");
        assert_eq!(bytes, welcome.to_bytes());
        let history =
            GroupHistory::from_welcome(GroupWelcome::from_bytes(&bytes).unwrap()).unwrap();
        assert_eq!(history.state().members().count(), MAX_GROUP_USERS);
        // Nothing of it is left behind.
        assert!(vault.values(Space::WELCOME_PARTS).unwrap().is_empty());

        // A new transfer from the same device drops the parts of the unfinished one.
        let first = parts_of(&welcome_contents(&welcome).unwrap());
        let second = parts_of(&welcome_contents(&welcome).unwrap());
        vault
            .transaction(|tx| take_part(tx, &sender, &first[0]))
            .unwrap();
        vault
            .transaction(|tx| take_part(tx, &sender, &first[1]))
            .unwrap();
        vault
            .transaction(|tx| take_part(tx, &sender, &second[0]))
            .unwrap();
        // The header and second's one part.
        assert_eq!(vault.values(Space::WELCOME_PARTS).unwrap().len(), 2);

        // Malformed parts are refused.
        for bad in [
            &first[0][..11],
            // index >= count
            &[[0u8; 8].as_slice(), &[0, 9, 0, 2], b"x"].concat()[..],
            // count 1
            &[[0u8; 8].as_slice(), &[0, 0, 0, 1], b"x"].concat()[..],
            // no bytes
            &[[0u8; 8].as_slice(), &[0, 0, 0, 2]].concat()[..],
        ] {
            assert!(matches!(
                vault.transaction(|tx| take_part(tx, &sender, bad)),
                Err(Error::InvalidInput { .. })
            ));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
