//! Message keys of messages not yet received, kept so late messages still decrypt.
//!
//! Bounded by [`MAX_SKIPPED_KEYS`]: beyond it the oldest key is evicted (its message then
//! fails as a duplicate/expired message). Lookups are linear: the store is small, lookups
//! happen only for out-of-order messages, and insertion order doubles as eviction order.

use std::collections::VecDeque;

use super::MessageKey;
use crate::{dh::DhPublicKey, limits::MAX_SKIPPED_KEYS};

#[derive(Clone, Default)]
pub(crate) struct SkippedKeys {
    entries: VecDeque<(DhPublicKey, MessageKey)>,
}

impl SkippedKeys {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &(DhPublicKey, MessageKey)> {
        self.entries.iter()
    }

    pub(crate) fn find(&self, ratchet_key: &DhPublicKey, index: u32) -> Option<usize> {
        self.entries
            .iter()
            .position(|(key, mk)| key == ratchet_key && mk.index() == index)
    }

    pub(crate) fn get(&self, position: usize) -> Option<&MessageKey> {
        self.entries.get(position).map(|(_, mk)| mk)
    }

    pub(crate) fn remove(&mut self, position: usize) {
        self.entries.remove(position);
    }

    pub(crate) fn insert(&mut self, ratchet_key: DhPublicKey, key: MessageKey) {
        if self.entries.len() == MAX_SKIPPED_KEYS {
            self.entries.pop_front();
        }
        self.entries.push_back((ratchet_key, key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_keys_are_evicted_at_the_limit() {
        let mut keys = SkippedKeys::default();
        let ratchet = DhPublicKey([1; 32]);
        for i in 0..(MAX_SKIPPED_KEYS as u32 + 10) {
            keys.insert(ratchet, MessageKey::new([0; 32], i));
        }
        assert_eq!(keys.len(), MAX_SKIPPED_KEYS);
        assert_eq!(keys.find(&ratchet, 9), None);
        assert!(keys.find(&ratchet, 10).is_some());
        assert!(keys.find(&ratchet, MAX_SKIPPED_KEYS as u32 + 9).is_some());
    }
}
