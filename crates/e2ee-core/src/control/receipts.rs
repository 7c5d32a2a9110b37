//! Receipt aggregation for the sender: a message counts as "delivered to all" once every
//! recipient device reported delivery (or read), and "read by all" once every one reported
//! read. Each event fires once. At most [`MAX_TRACKED_MESSAGES`] messages are followed; the
//! oldest is forgotten beyond that.

use std::collections::{BTreeSet, HashMap, VecDeque};

use super::{Receipt, ReceiptKind};
use crate::{
    DeviceAddress,
    group::{MAX_TRACKED_MESSAGES, MessageId},
};

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

#[derive(Debug)]
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
#[derive(Debug, Default)]
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
    /// `recipients`). Tracking an id again replaces it.
    pub fn track(&mut self, id: MessageId, recipients: impl IntoIterator<Item = DeviceAddress>) {
        if self.messages.contains_key(&id) {
            self.order.retain(|m| *m != id);
        }
        self.messages.insert(
            id,
            Tracked {
                recipients: recipients.into_iter().collect(),
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

#[cfg(test)]
mod tests {
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
        tracker.track(id, [b1.clone(), b2.clone(), c1.clone()]);
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
            tracker.track(MessageId(i), [device("bob", 1)]);
        }
        assert!(tracker.status(MessageId(0)).is_none());
        assert!(tracker.status(MessageId(1)).is_some());
    }
}
