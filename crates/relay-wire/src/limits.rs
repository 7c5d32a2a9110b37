//! The bounds of the wire format: a frame over one is refused by the decoder (see
//! `docs/relay.md`, Limits). The relay enforces them and clients size their batches by them.

/// Largest ciphertext in one envelope (bytes). A 1:1 text message is tens of bytes; attachments
/// travel as encrypted blobs elsewhere, so 64 KiB leaves room for large control messages.
pub const MAX_PAYLOAD_LEN: usize = 64 * 1024;

/// Largest number of envelopes in one `SEND` frame.
pub const MAX_BATCH_ENVELOPES: usize = 256;

/// Largest recipient list of one envelope (group fan-out). Groups larger than this send
/// several envelopes sharing nothing but the ciphertext bytes.
pub const MAX_RECIPIENTS: usize = 1024;

/// Largest WebSocket message the relay accepts. A frame bigger than this is refused by the
/// WebSocket layer itself with close code 1009 (message too big), before it is buffered.
pub const MAX_FRAME_LEN: usize = 1024 * 1024;

/// Largest number of sequence numbers in one `ACK` frame.
pub const MAX_ACK_BATCH: usize = 4096;
