//! Account identity, device certificates and signed device lists (multi-device).
//!
//! Being written; see docs/protocol.md.
