//! Every bound the protocol enforces, in one place (DESIGN.md, "Cipher suite v1").

/// Skipped message keys kept per session; the oldest are evicted beyond this.
pub const MAX_SKIPPED_KEYS: usize = 2_000;
/// Largest number of message keys a single incoming message may make us skip.
pub const MAX_FORWARD_JUMP: u32 = 25_000;
/// Chain-key derivations one incoming 1:1 message may cause in total, over every session state
/// of the record it is tried on: what one state may need (a finished chain and a new one, each
/// up to [`MAX_FORWARD_JUMP`]). A message that would need more fails with `TooFarAhead` before
/// any derivation.
pub const MAX_CHAIN_STEPS_PER_MESSAGE: u32 = 2 * MAX_FORWARD_JUMP;
/// Receiving chains kept per session; the oldest is dropped beyond this.
pub const MAX_RECEIVER_CHAINS: usize = 5;
/// Previous session states kept per peer device (for simultaneous initiation).
pub const MAX_PREVIOUS_STATES: usize = 40;
/// One-time X25519 prekeys per upload batch.
pub const MAX_PREKEY_BATCH: usize = 100;
/// Largest plaintext a single 1:1 message may carry (64 KiB).
pub const MAX_PLAINTEXT_LEN: usize = 64 * 1024;
/// Largest encoded 1:1 message accepted by the decoders.
pub const MAX_MESSAGE_LEN: usize = MAX_PLAINTEXT_LEN + 4_096;
/// Largest serialised session record accepted by the decoder (bounded by the limits above).
pub const MAX_SESSION_RECORD_LEN: usize = 8 * 1024 * 1024;
