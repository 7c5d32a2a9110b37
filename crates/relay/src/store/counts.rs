//! The writer's cache of mailbox sizes, so the mailbox limit does not cost a `COUNT(*)` per
//! envelope.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use crate::wire::DeviceAddress;

/// Mailbox sizes known to the writer, so checking the mailbox limit does not cost a
/// `COUNT(*)` per envelope. Entries older than `max_age` are recounted, which keeps the
/// numbers honest when several relay nodes write to one PostgreSQL database.
#[derive(Debug)]
pub(crate) struct MailboxCounts {
    counts: HashMap<DeviceAddress, (u64, Instant)>,
    max_age: Duration,
}

impl MailboxCounts {
    /// Empty cache; entries are recounted after `max_age`.
    pub(crate) fn new(max_age: Duration) -> Self {
        Self {
            counts: HashMap::new(),
            max_age,
        }
    }
    pub(crate) fn get(&self, a: &DeviceAddress) -> Option<u64> {
        self.counts
            .get(a)
            .filter(|(_, t)| t.elapsed() < self.max_age)
            .map(|(n, _)| *n)
    }
    pub(crate) fn set(&mut self, a: &DeviceAddress, n: u64) {
        self.counts.insert(a.clone(), (n, Instant::now()));
    }
    /// Whether `a`'s mailbox must be counted (unknown or stale) before [`Self::admit`].
    pub(crate) fn needs_count(&self, a: &DeviceAddress) -> bool {
        self.get(a).is_none()
    }
    /// The mailbox limit: the recipients whose mailbox has room, each counted one envelope
    /// fuller. Every recipient must have been counted first; one that was not is refused.
    pub(crate) fn admit<'a>(
        &mut self,
        recipients: &'a [DeviceAddress],
        max_mailbox: u64,
    ) -> Vec<&'a DeviceAddress> {
        let mut accepted = Vec::with_capacity(recipients.len());
        for to in recipients {
            if let Some((n, _)) = self.counts.get_mut(to)
                && *n < max_mailbox
            {
                *n += 1;
                accepted.push(to);
            }
        }
        accepted
    }
    pub(crate) fn add(&mut self, a: &DeviceAddress, delta: i64) {
        if let Some((n, _)) = self.counts.get_mut(a) {
            *n = n.saturating_add_signed(delta);
        }
    }
    /// Forgets everything (after a failed transaction or an expiry sweep, which runs every
    /// minute and so also bounds the cache's memory).
    pub(crate) fn clear(&mut self) {
        self.counts.clear();
    }
}
