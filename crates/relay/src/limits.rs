//! Every bound the relay enforces, as named constants. Each one has a test that hits it.
//!
//! The defaults can be lowered or raised per deployment through [`crate::Config`]; these are
//! the values a relay uses when nobody says otherwise, and the hard ceilings of the wire format.

/// The wire format's own bounds (one definition, in `e2ee-relay-wire`, which decodes by them).
pub use e2ee_relay_wire::limits::{
    MAX_ACK_BATCH, MAX_BATCH_ENVELOPES, MAX_FRAME_LEN, MAX_PAYLOAD_LEN, MAX_RECIPIENTS,
};

/// Default: envelopes (deliveries) a mailbox holds before new ones are refused for it.
pub const DEFAULT_MAX_MAILBOX: u64 = 10_000;

/// Default: sustained deliveries per second per sending device (token bucket refill rate).
/// A group envelope to 100 recipients costs 100 tokens.
pub const DEFAULT_SEND_RATE_PER_SEC: u32 = 2_000;

/// Default: token bucket capacity (the burst a device may send at once).
pub const DEFAULT_SEND_BURST: u32 = 4_000;

/// Default: concurrent WebSocket connections per relay process.
pub const DEFAULT_MAX_CONNECTIONS: usize = 20_000;

/// Default time an undelivered envelope is kept: 30 days.
pub const DEFAULT_TTL_SECS: u64 = 30 * 24 * 60 * 60;

/// Default time a (sender, message id) pair is remembered for deduplicating retries: 7 days,
/// long enough for a phone switched off over a holiday week to retry its unanswered sends.
/// Shorter than the TTL because the dedup table otherwise holds a row for every message of
/// the last 30 days, delivered or not.
pub const DEFAULT_DEDUP_WINDOW_SECS: u64 = 7 * 24 * 60 * 60;

/// Deliveries sent to one connection and not yet acknowledged. Past this the relay stops
/// pushing to that device until it acks, so a reader that never acks costs bounded memory.
pub const MAX_INFLIGHT: usize = 1_024;

/// Capacity of the per-connection queue of live envelopes. When it is full the envelope is not
/// lost (it is in the mailbox): the connection falls back to reading its mailbox.
pub const LIVE_QUEUE_LEN: usize = 256;

/// Rows read from a mailbox per query when delivering the backlog.
pub const MAILBOX_PAGE: usize = 256;

/// Most envelopes the writer commits in one transaction (group commit).
pub const MAX_GROUP_COMMIT: usize = 4_096;

/// A write to a client that does not complete in this time closes the connection.
pub const WRITE_TIMEOUT_SECS: u64 = 30;

/// `SEND` and `ACK` frames of one connection being committed at once. A session keeps reading
/// and delivering while its writes commit; past this many it stops reading the socket until
/// the oldest commit is answered, so a client that floods frames is slowed, not buffered.
pub const MAX_PIPELINED_WRITES: usize = 16;
