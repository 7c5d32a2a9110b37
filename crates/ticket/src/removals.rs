//! How a device removal reaches relays: the removal's time, the rule that revokes tickets
//! issued until then, and the Redis sorted set through which a key server tells relays it
//! does not share a process with.
//!
//! ```text
//! {prefix}:removed   sorted set, member "<device_id>:<user_id>", score = removal Unix ms
//! ```
//!
//! The key server adds (`ZADD ... GT`) each removal and trims members older than
//! [`REMOVAL_RETENTION_MS`]; every relay node reads the set every second or so.

use e2ee_encoding::DeviceAddress;

use crate::{CLOCK_SKEW_SECS, MAX_TICKET_LIFETIME_SECS, Ticket};

/// A removal matters as long as a ticket issued before it can still be within its lifetime.
pub const REMOVAL_RETENTION_MS: u64 = (MAX_TICKET_LIFETIME_SECS + CLOCK_SKEW_SECS) * 1000;

/// The Redis key of the removal set under `prefix` (the relay cluster's key prefix).
pub fn removals_key(prefix: &str) -> String {
    format!("{prefix}:removed")
}

/// The set member naming `device`.
pub fn removal_member(device: &DeviceAddress) -> String {
    format!("{}:{}", device.device, device.user)
}

/// The device a set member names, if it is one.
pub fn parse_removal_member(member: &str) -> Option<DeviceAddress> {
    let (device, user) = member.split_once(':')?;
    DeviceAddress::new(user, device.parse().ok()?).ok()
}

/// Whether a device removal at `removed_at_ms` revokes `ticket`: it was issued before the
/// removal or in the same second (ticket times are whole seconds, so the device asks for a
/// new ticket a second later).
pub fn revokes(ticket: &Ticket, removed_at_ms: u64) -> bool {
    ticket.issued_at.saturating_mul(1000) <= removed_at_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_round_trip_and_garbage_is_refused() {
        let device = DeviceAddress::new("alice:with:colons", 7).unwrap();
        let member = removal_member(&device);
        assert_eq!(member, "7:alice:with:colons");
        assert_eq!(parse_removal_member(&member), Some(device));
        for bad in ["", "7", "x:alice", "7:", "-1:alice", "4294967296:alice"] {
            assert_eq!(parse_removal_member(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_removal_revokes_tickets_issued_up_to_its_second() {
        let ticket = |issued_at| Ticket {
            device: DeviceAddress::new("alice", 1).unwrap(),
            issued_at,
            expires_at: issued_at + 60,
        };
        assert!(revokes(&ticket(999), 1_000_500));
        assert!(revokes(&ticket(1_000), 1_000_500));
        assert!(!revokes(&ticket(1_001), 1_000_500));
    }
}
