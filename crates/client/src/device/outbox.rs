//! An outbox entry: one message's ciphertexts, kept in the store from the moment they exist
//! until the relay acknowledges them, so a crash between encrypting and sending loses nothing.
//!
//! ```text
//! OutboxEntry = 0x01 || seq u64 || msg_id u64 || count u16 (1..=MAX_OUTBOX_RECIPIENTS)
//!               || count × (DeviceAddress || len u32 (<= MAX_OUTBOX_CIPHERTEXT) || ciphertext)
//! ```

use e2ee_core::{Codec, DecodeError, DeviceAddress};
use e2ee_encoding::Reader;

const OUTBOX_ENTRY_VERSION: u8 = 0x01;
/// Most devices one message goes to (the relay's recipient limit per envelope).
pub const MAX_OUTBOX_RECIPIENTS: usize = 1024;
/// Largest ciphertext of one device (the relay's payload limit).
pub const MAX_OUTBOX_CIPHERTEXT: usize = 64 * 1024;

/// One message waiting for the relay's acknowledgement.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OutboxEntry {
    /// Order of creation on this device: send entries in this order.
    pub seq: u64,
    /// The message id the relay deduplicates on (random, chosen when the message was made).
    pub msg_id: u64,
    /// One ciphertext per device.
    pub envelopes: Vec<(DeviceAddress, Vec<u8>)>,
}

impl Codec for OutboxEntry {
    type Error = DecodeError;

    fn write(&self, out: &mut Vec<u8>) {
        out.push(OUTBOX_ENTRY_VERSION);
        self.seq.write(out);
        self.msg_id.write(out);
        // At most MAX_OUTBOX_RECIPIENTS, checked where entries are made.
        (self.envelopes.len() as u16).write(out);
        for (to, ciphertext) in &self.envelopes {
            to.write(out);
            (ciphertext.len() as u32).write(out);
            out.extend_from_slice(ciphertext);
        }
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = reader.u8()?;
        if version != OUTBOX_ENTRY_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let seq = reader.u64()?;
        let msg_id = reader.u64()?;
        let count = usize::from(reader.u16()?);
        if count == 0 {
            return Err(DecodeError::InvalidField("empty outbox entry"));
        }
        if count > MAX_OUTBOX_RECIPIENTS {
            return Err(DecodeError::TooLarge);
        }
        let mut envelopes = Vec::with_capacity(count);
        for _ in 0..count {
            let to = DeviceAddress::read(reader)?;
            let len = reader.u32()? as usize;
            if len > MAX_OUTBOX_CIPHERTEXT {
                return Err(DecodeError::TooLarge);
            }
            envelopes.push((to, reader.take(len)?.to_vec()));
        }
        Ok(Self {
            seq,
            msg_id,
            envelopes,
        })
    }
}

#[cfg(test)]
mod tests {
    use e2ee_encoding::check_codec;

    use super::*;

    fn entry(count: usize) -> OutboxEntry {
        OutboxEntry {
            seq: 7,
            msg_id: 0x0102_0304_0506_0708,
            envelopes: (0..count)
                .map(|i| {
                    (
                        DeviceAddress::new("bob", i as u32).unwrap(),
                        vec![i as u8; i * 3],
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn entries_round_trip_and_every_cut_is_refused() {
        for count in [1, 2, 5] {
            check_codec(&entry(count));
        }
    }

    #[test]
    fn the_limits_are_enforced() {
        let mut bytes = entry(1).to_bytes();
        // count = 0
        bytes[17] = 0;
        bytes[18] = 0;
        assert_eq!(
            OutboxEntry::from_bytes(&bytes),
            Err(DecodeError::InvalidField("empty outbox entry"))
        );
        let mut over = entry(1).to_bytes();
        over[17..19].copy_from_slice(&((MAX_OUTBOX_RECIPIENTS + 1) as u16).to_be_bytes());
        assert_eq!(OutboxEntry::from_bytes(&over), Err(DecodeError::TooLarge));
        let big = OutboxEntry {
            envelopes: vec![(
                DeviceAddress::new("bob", 1).unwrap(),
                vec![0; MAX_OUTBOX_CIPHERTEXT + 1],
            )],
            ..entry(1)
        };
        assert_eq!(
            OutboxEntry::from_bytes(&big.to_bytes()),
            Err(DecodeError::TooLarge)
        );
        let at_limit = OutboxEntry {
            envelopes: vec![(
                DeviceAddress::new("bob", 1).unwrap(),
                vec![0; MAX_OUTBOX_CIPHERTEXT],
            )],
            ..entry(1)
        };
        check_codec(&at_limit);
        let mut unknown = entry(1).to_bytes();
        unknown[0] = 2;
        assert_eq!(
            OutboxEntry::from_bytes(&unknown),
            Err(DecodeError::UnknownVersion(2))
        );
    }
}
