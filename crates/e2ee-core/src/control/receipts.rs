//! Receipt aggregation for the sender: a message counts as "delivered to all" once every
//! recipient device reported delivery (or read), and "read by all" once every one reported
//! read. Each event fires once. At most [`MAX_TRACKED_MESSAGES`] messages are followed; the
//! oldest is forgotten beyond that.
//!
//! ```text
//! ReceiptTracker = 0x01 || count u16 (0..=4096)
//!                  || count * (message id u64 || flags u8 (bit 0 delivered-to-all reported,
//!                              bit 1 read-by-all reported) || recipients u16 (1..=1024)
//!                              || recipients * (DeviceAddress || status u8))
//!   messages oldest first (the eviction order), ids distinct; recipients strictly
//!   ascending; status 0x00 waiting, 0x01 delivered, 0x02 read
//! ```

use std::collections::{BTreeSet, HashMap, VecDeque};

use super::{Receipt, ReceiptKind};
use crate::{
    Codec, DeviceAddress, Reader,
    error::DecodeError,
    group::{GroupError, MAX_GROUP_MEMBERS, MAX_TRACKED_MESSAGES, MessageId},
};

/// Version byte of a serialised [`ReceiptTracker`].
pub const RECEIPT_TRACKER_VERSION: u8 = 0x01;
const FLAG_DELIVERED_REPORTED: u8 = 0x01;
const FLAG_READ_REPORTED: u8 = 0x02;
const STATUS_WAITING: u8 = 0;
const STATUS_DELIVERED: u8 = 1;
const STATUS_READ: u8 = 2;

/// A message reached every recipient device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptEvent {
    /// Every recipient device reported delivery.
    DeliveredToAll(MessageId),
    /// Every recipient device reported reading it.
    ReadByAll(MessageId),
}

/// Where one message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptStatus {
    /// Recipient devices awaited.
    pub recipients: usize,
    /// How many reported delivery (a read counts as delivery).
    pub delivered: usize,
    /// How many reported reading.
    pub read: usize,
}

impl ReceiptStatus {
    /// Every recipient device reported delivery.
    pub fn delivered_to_all(&self) -> bool {
        self.delivered == self.recipients
    }

    /// Every recipient device reported reading.
    pub fn read_by_all(&self) -> bool {
        self.read == self.recipients
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Tracked {
    recipients: BTreeSet<DeviceAddress>,
    delivered: BTreeSet<DeviceAddress>,
    read: BTreeSet<DeviceAddress>,
    delivered_reported: bool,
    read_reported: bool,
}

impl Tracked {
    fn status(&self) -> ReceiptStatus {
        ReceiptStatus {
            recipients: self.recipients.len(),
            delivered: self.delivered.len(),
            read: self.read.len(),
        }
    }

    fn events(&mut self, id: MessageId, out: &mut Vec<ReceiptEvent>) {
        let status = self.status();
        if !self.delivered_reported && status.delivered_to_all() {
            self.delivered_reported = true;
            out.push(ReceiptEvent::DeliveredToAll(id));
        }
        if !self.read_reported && status.read_by_all() {
            self.read_reported = true;
            out.push(ReceiptEvent::ReadByAll(id));
        }
    }
}

/// Aggregates receipts per sent message.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReceiptTracker {
    messages: HashMap<MessageId, Tracked>,
    order: VecDeque<MessageId>,
}

impl ReceiptTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts following `id`, sent to `recipients` (for a group: [`crate::group::GroupSend`]'s
    /// `recipients`), at most [`MAX_GROUP_MEMBERS`] devices. Tracking an id again replaces it.
    pub fn track(
        &mut self,
        id: MessageId,
        recipients: impl IntoIterator<Item = DeviceAddress>,
    ) -> Result<(), GroupError> {
        let recipients: BTreeSet<DeviceAddress> = recipients.into_iter().collect();
        if recipients.len() > MAX_GROUP_MEMBERS {
            return Err(GroupError::TooManyMembers);
        }
        if self.messages.contains_key(&id) {
            self.order.retain(|m| *m != id);
        }
        self.messages.insert(
            id,
            Tracked {
                recipients,
                delivered: BTreeSet::new(),
                read: BTreeSet::new(),
                delivered_reported: false,
                read_reported: false,
            },
        );
        self.order.push_back(id);
        while self.order.len() > MAX_TRACKED_MESSAGES {
            if let Some(old) = self.order.pop_front() {
                self.messages.remove(&old);
            }
        }
        Ok(())
    }

    /// Records a receipt from device `from`; returns the events it completes. Receipts for
    /// unknown messages or from devices the message was not sent to are ignored.
    pub fn record(&mut self, from: &DeviceAddress, receipt: &Receipt) -> Vec<ReceiptEvent> {
        let mut events = Vec::new();
        for id in &receipt.message_ids {
            let Some(tracked) = self.messages.get_mut(id) else {
                continue;
            };
            if !tracked.recipients.contains(from) {
                continue;
            }
            tracked.delivered.insert(from.clone());
            if receipt.kind == ReceiptKind::Read {
                tracked.read.insert(from.clone());
            }
            tracked.events(*id, &mut events);
        }
        events
    }

    /// Stops waiting for `device` (removed from the group, or dropped from its user's device
    /// list); returns the events that completes.
    pub fn forget_device(&mut self, device: &DeviceAddress) -> Vec<ReceiptEvent> {
        let mut events = Vec::new();
        for id in &self.order {
            if let Some(tracked) = self.messages.get_mut(id)
                && tracked.recipients.remove(device)
            {
                tracked.delivered.remove(device);
                tracked.read.remove(device);
                tracked.events(*id, &mut events);
            }
        }
        events
    }

    /// Where `id` stands, if it is followed.
    pub fn status(&self, id: MessageId) -> Option<ReceiptStatus> {
        self.messages.get(&id).map(Tracked::status)
    }
}

impl Codec for ReceiptTracker {
    type Error = DecodeError;

    fn write(&self, out: &mut Vec<u8>) {
        out.push(RECEIPT_TRACKER_VERSION);
        // At most MAX_TRACKED_MESSAGES (4,096) messages of at most MAX_GROUP_MEMBERS (1,024)
        // recipients, enforced by `track`.
        (self.order.len() as u16).write(out);
        for id in &self.order {
            let Some(tracked) = self.messages.get(id) else {
                continue;
            };
            id.0.write(out);
            let mut flags = 0;
            if tracked.delivered_reported {
                flags |= FLAG_DELIVERED_REPORTED;
            }
            if tracked.read_reported {
                flags |= FLAG_READ_REPORTED;
            }
            out.push(flags);
            (tracked.recipients.len() as u16).write(out);
            for device in &tracked.recipients {
                device.write(out);
                out.push(if tracked.read.contains(device) {
                    STATUS_READ
                } else if tracked.delivered.contains(device) {
                    STATUS_DELIVERED
                } else {
                    STATUS_WAITING
                });
            }
        }
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = reader.u8()?;
        if version != RECEIPT_TRACKER_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let count = usize::from(reader.u16()?);
        if count > MAX_TRACKED_MESSAGES {
            return Err(DecodeError::TooLarge);
        }
        let mut tracker = Self::default();
        for _ in 0..count {
            let id = MessageId(reader.u64()?);
            let flags = reader.u8()?;
            if flags & !(FLAG_DELIVERED_REPORTED | FLAG_READ_REPORTED) != 0 {
                return Err(DecodeError::NonCanonical);
            }
            let recipients = usize::from(reader.u16()?);
            if recipients > MAX_GROUP_MEMBERS {
                return Err(DecodeError::TooLarge);
            }
            let mut tracked = Tracked {
                recipients: BTreeSet::new(),
                delivered: BTreeSet::new(),
                read: BTreeSet::new(),
                delivered_reported: flags & FLAG_DELIVERED_REPORTED != 0,
                read_reported: flags & FLAG_READ_REPORTED != 0,
            };
            for _ in 0..recipients {
                let device = DeviceAddress::read(reader)?;
                if tracked
                    .recipients
                    .last()
                    .is_some_and(|last| *last >= device)
                {
                    return Err(DecodeError::NonCanonical);
                }
                match reader.u8()? {
                    STATUS_WAITING => {}
                    STATUS_DELIVERED => {
                        tracked.delivered.insert(device.clone());
                    }
                    STATUS_READ => {
                        tracked.delivered.insert(device.clone());
                        tracked.read.insert(device.clone());
                    }
                    _ => return Err(DecodeError::InvalidField("receipt status")),
                }
                tracked.recipients.insert(device);
            }
            // A reported event must be one the statuses complete, as `record` reports them.
            let status = tracked.status();
            if (tracked.delivered_reported && !status.delivered_to_all())
                || (tracked.read_reported && !status.read_by_all())
            {
                return Err(DecodeError::InvalidField("receipt event flags"));
            }
            if tracker.messages.insert(id, tracked).is_some() {
                return Err(DecodeError::NonCanonical);
            }
            tracker.order.push_back(id);
        }
        Ok(tracker)
    }
}

#[cfg(test)]
mod tests {
    use e2ee_encoding::check_codec;

    use super::*;

    fn device(name: &str, id: u32) -> DeviceAddress {
        DeviceAddress::new(name, id).unwrap()
    }

    fn receipt(kind: ReceiptKind, id: MessageId) -> Receipt {
        Receipt {
            kind,
            message_ids: vec![id],
        }
    }

    #[test]
    fn aggregates_per_device_and_fires_once() {
        let mut tracker = ReceiptTracker::new();
        let id = MessageId(7);
        let (b1, b2, c1) = (device("bob", 1), device("bob", 2), device("carol", 1));
        tracker
            .track(id, [b1.clone(), b2.clone(), c1.clone()])
            .unwrap();
        use ReceiptKind::*;
        assert!(tracker.record(&b1, &receipt(Delivered, id)).is_empty());
        assert!(tracker.record(&c1, &receipt(Read, id)).is_empty());
        // A stranger's receipt counts for nothing.
        assert!(
            tracker
                .record(&device("mallory", 1), &receipt(Read, id))
                .is_empty()
        );
        assert_eq!(
            tracker.record(&b2, &receipt(Delivered, id)),
            [ReceiptEvent::DeliveredToAll(id)]
        );
        assert!(tracker.record(&b2, &receipt(Delivered, id)).is_empty());
        assert!(tracker.record(&b1, &receipt(Read, id)).is_empty());
        let status = tracker.status(id).unwrap();
        assert!(status.delivered_to_all() && !status.read_by_all());
        assert_eq!(tracker.forget_device(&b2), [ReceiptEvent::ReadByAll(id)]);
    }

    #[test]
    fn tracks_a_bounded_number_of_messages() {
        let mut tracker = ReceiptTracker::new();
        for i in 0..=MAX_TRACKED_MESSAGES as u64 {
            tracker.track(MessageId(i), [device("bob", 1)]).unwrap();
        }
        assert!(tracker.status(MessageId(0)).is_none());
        assert!(tracker.status(MessageId(1)).is_some());
        let too_many = (0..=MAX_GROUP_MEMBERS as u32).map(|i| device("m", i));
        assert_eq!(
            tracker.track(MessageId(9), too_many),
            Err(GroupError::TooManyMembers)
        );
    }

    /// R3: receipt state survives a restart: events already reported do not fire again, the
    /// ones still due do, and garbage fails cleanly.
    #[test]
    fn the_tracker_survives_a_restart() {
        use ReceiptKind::*;
        let mut tracker = ReceiptTracker::new();
        let (b1, c1) = (device("bob", 1), device("carol", 1));
        tracker
            .track(MessageId(1), [b1.clone(), c1.clone()])
            .unwrap();
        tracker.track(MessageId(2), [b1.clone()]).unwrap();
        tracker.record(&b1, &receipt(Read, MessageId(1)));
        tracker.record(&b1, &receipt(Delivered, MessageId(2)));
        check_codec(&tracker);
        check_codec(&ReceiptTracker::new());
        let mut restored = ReceiptTracker::from_bytes(&tracker.to_bytes()).unwrap();
        assert_eq!(restored, tracker);
        assert!(
            restored
                .record(&b1, &receipt(Delivered, MessageId(2)))
                .is_empty()
        );
        assert_eq!(
            restored.record(&c1, &receipt(Read, MessageId(1))),
            [
                ReceiptEvent::DeliveredToAll(MessageId(1)),
                ReceiptEvent::ReadByAll(MessageId(1))
            ]
        );
        let bytes = restored.to_bytes();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x81;
            if let Ok(decoded) = ReceiptTracker::from_bytes(&bad) {
                assert_eq!(decoded.to_bytes(), bad, "non-canonical decoding at {i}");
            }
        }
        assert_eq!(
            ReceiptTracker::from_bytes(&[2, 0, 0]),
            Err(DecodeError::UnknownVersion(2))
        );
    }
}
