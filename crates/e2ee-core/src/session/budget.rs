//! The chain-key derivation work one incoming message may cause, summed over every session
//! state it is tried on.
//!
//! A forged ratchet message needs no key: it can name a fresh ratchet key with `PN` and `N`
//! at [`MAX_FORWARD_JUMP`], and each of the up to 41 states of a record would derive up to
//! `2 x MAX_FORWARD_JUMP` chain keys before its tag check fails. The budget caps the sum at
//! [`MAX_CHAIN_STEPS_PER_MESSAGE`], which is what one state may legitimately need, and is
//! taken before any derivation, so a message that would exceed it costs nothing.

use crate::{error::DecryptError, limits::MAX_CHAIN_STEPS_PER_MESSAGE};

#[derive(Debug)]
pub(crate) struct StepBudget {
    remaining: u32,
}

impl StepBudget {
    /// The budget of one incoming message.
    pub(crate) fn per_message() -> Self {
        Self {
            remaining: MAX_CHAIN_STEPS_PER_MESSAGE,
        }
    }

    /// Takes `steps` chain derivations, or fails with [`DecryptError::TooFarAhead`] and
    /// takes nothing.
    pub(crate) fn take(&mut self, steps: u32) -> Result<(), DecryptError> {
        match self.remaining.checked_sub(steps) {
            Some(left) => {
                self.remaining = left;
                Ok(())
            }
            None => Err(DecryptError::TooFarAhead { jump: steps }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_take_takes_nothing() {
        let mut budget = StepBudget::per_message();
        assert!(budget.take(MAX_CHAIN_STEPS_PER_MESSAGE - 10).is_ok());
        assert_eq!(budget.take(11), Err(DecryptError::TooFarAhead { jump: 11 }));
        assert!(budget.take(10).is_ok());
        assert!(budget.take(1).is_err());
        assert!(budget.take(0).is_ok());
    }
}
