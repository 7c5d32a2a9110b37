//! Sessions: the Double Ratchet state per peer device and the record that keeps previous
//! states for simultaneous initiation.

mod budget;
mod record;
mod serialize;
mod state;

pub(crate) use budget::StepBudget;
pub use record::SessionRecord;
pub(crate) use state::SessionState;
