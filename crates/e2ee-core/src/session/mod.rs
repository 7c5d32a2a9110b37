//! Sessions: the Double Ratchet state per peer device and the record that keeps previous
//! states for simultaneous initiation.

mod record;
mod serialize;
mod state;

pub use record::SessionRecord;
pub(crate) use state::SessionState;
