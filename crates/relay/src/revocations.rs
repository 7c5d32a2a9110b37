//! Devices the key server removed, and when: a ticket issued until the removal no longer
//! opens a connection, though its signature and lifetime are still good.
//!
//! The all-in-one server records a removal the moment its key server commits it
//! ([`crate::Relay::revoke_device`]). Relays on their own learn removals from Redis: the key
//! server adds each one to the sorted set [`e2ee_ticket::removals`] describes, and every
//! relay node of a cluster reads it each [`REVOCATION_POLL`] ([`crate::cluster`]).

use std::{collections::HashMap, sync::Mutex, time::Duration};

use e2ee_encoding::DeviceAddress;
use e2ee_ticket::{
    Ticket,
    removals::{REMOVAL_RETENTION_MS, revokes},
};

/// How often a relay in a cluster reads new removals from Redis: the longest a removed
/// device's old ticket still opens a connection there.
pub const REVOCATION_POLL: Duration = Duration::from_secs(1);

/// Removed devices and the Unix milliseconds of their latest removal.
#[derive(Debug, Default)]
pub(crate) struct Revocations {
    removed: Mutex<HashMap<DeviceAddress, u64>>,
}

impl Revocations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<DeviceAddress, u64>> {
        // A panic while holding the lock cannot leave the map inconsistent (each operation is
        // a single insert, lookup or retain).
        self.removed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a removal. Returns whether it is news (later than any removal recorded for
    /// the device), so a removal read twice is acted on once.
    pub(crate) fn record(&self, device: &DeviceAddress, removed_at_ms: u64) -> bool {
        let mut removed = self.lock();
        match removed.get_mut(device) {
            Some(at) if *at >= removed_at_ms => false,
            Some(at) => {
                *at = removed_at_ms;
                true
            }
            None => {
                removed.insert(device.clone(), removed_at_ms);
                true
            }
        }
    }

    /// Whether the device's latest removal revokes the ticket ([`revokes`]).
    pub(crate) fn revokes(&self, ticket: &Ticket) -> bool {
        self.lock()
            .get(&ticket.device)
            .is_some_and(|&at| revokes(ticket, at))
    }

    /// Forgets removals older than [`REMOVAL_RETENTION_MS`]: every ticket they revoke has
    /// expired.
    pub(crate) fn prune(&self, now_ms: u64) {
        let horizon = now_ms.saturating_sub(REMOVAL_RETENTION_MS);
        self.lock().retain(|_, at| *at >= horizon);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(device: &DeviceAddress, issued_at: u64) -> Ticket {
        Ticket {
            device: device.clone(),
            issued_at,
            expires_at: issued_at + 3600,
        }
    }

    #[test]
    fn tickets_up_to_the_removal_are_revoked_later_ones_are_not() {
        let revocations = Revocations::default();
        let alice = DeviceAddress::new("alice", 2).unwrap();
        let bob = DeviceAddress::new("bob", 2).unwrap();
        assert!(revocations.record(&alice, 1_000_500));
        assert!(revocations.revokes(&ticket(&alice, 999)));
        assert!(revocations.revokes(&ticket(&alice, 1_000)));
        assert!(!revocations.revokes(&ticket(&alice, 1_001)));
        assert!(!revocations.revokes(&ticket(&bob, 999)));
        // Read again (Redis), or an older removal: not news, nothing changes.
        assert!(!revocations.record(&alice, 1_000_500));
        assert!(!revocations.record(&alice, 10));
        assert!(!revocations.revokes(&ticket(&alice, 1_001)));
        // Removed again after re-enrolling.
        assert!(revocations.record(&alice, 2_000_000));
        assert!(revocations.revokes(&ticket(&alice, 1_001)));
    }

    #[test]
    fn removals_are_forgotten_once_every_ticket_they_revoke_has_expired() {
        let revocations = Revocations::default();
        let alice = DeviceAddress::new("alice", 2).unwrap();
        revocations.record(&alice, 5_000);
        revocations.prune(5_000 + REMOVAL_RETENTION_MS);
        assert_eq!(revocations.len(), 1);
        revocations.prune(5_001 + REMOVAL_RETENTION_MS);
        assert_eq!(revocations.len(), 0);
    }
}
