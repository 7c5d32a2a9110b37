//! Whole-protocol tests through the public session API (with access to internals where a
//! test needs to look inside).

mod codec;
mod harness;
mod properties;
mod sessions;
