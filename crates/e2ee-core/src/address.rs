//! Peer addresses: user id plus device id.

use std::fmt;

use crate::error::Error;

/// Longest user id in bytes (DESIGN.md: opaque UTF-8, at most 128 bytes).
pub const MAX_USER_ID_LEN: usize = 128;

/// One device of one user.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    user_id: String,
    device_id: u32,
}

impl Address {
    /// Builds an address; the user id must be 1..=128 bytes of UTF-8.
    pub fn new(user_id: impl Into<String>, device_id: u32) -> Result<Self, Error> {
        let user_id = user_id.into();
        if user_id.is_empty() || user_id.len() > MAX_USER_ID_LEN {
            return Err(Error::InvalidArgument("user id must be 1..=128 bytes"));
        }
        Ok(Self { user_id, device_id })
    }

    /// The user id.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The device id.
    pub fn device_id(&self) -> u32 {
        self.device_id
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.user_id, self.device_id)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_id_length_is_bounded() {
        assert!(Address::new("", 1).is_err());
        assert!(Address::new("a".repeat(MAX_USER_ID_LEN), 1).is_ok());
        assert!(Address::new("a".repeat(MAX_USER_ID_LEN + 1), 1).is_err());
        assert_eq!(Address::new("bob", 3).unwrap().to_string(), "bob.3");
    }
}
