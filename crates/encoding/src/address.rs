//! The one device address of the system: a validated user id plus a device id.
//!
//! ```text
//! UserId        = len u8 (1..=128) || UTF-8 bytes (no NUL)
//! DeviceAddress = UserId || device_id u32
//! ```

use std::{borrow::Borrow, fmt};

use crate::{
    codec::Codec,
    error::{AddressError, DecodeError},
    reader::Reader,
};

/// Longest user id in bytes (DESIGN.md: opaque UTF-8, at most 128 bytes).
pub const MAX_USER_ID_LEN: usize = 128;

/// A user id: 1..=[`MAX_USER_ID_LEN`] bytes of UTF-8 without NUL. The rule is checked once,
/// at construction (and decoding), so every `UserId` in the system is valid.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    /// Validates `user_id`.
    pub fn new(user_id: impl Into<String>) -> Result<Self, AddressError> {
        let user_id = user_id.into();
        check(&user_id)?;
        Ok(Self(user_id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check(user_id: &str) -> Result<(), AddressError> {
    if user_id.is_empty() {
        return Err(AddressError::EmptyUserId);
    }
    if user_id.len() > MAX_USER_ID_LEN {
        return Err(AddressError::UserIdTooLong { len: user_id.len() });
    }
    if user_id.as_bytes().contains(&0) {
        return Err(AddressError::NulInUserId);
    }
    Ok(())
}

impl TryFrom<&str> for UserId {
    type Error = AddressError;
    fn try_from(value: &str) -> Result<Self, AddressError> {
        Self::new(value)
    }
}

impl TryFrom<String> for UserId {
    type Error = AddressError;
    fn try_from(value: String) -> Result<Self, AddressError> {
        Self::new(value)
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for UserId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({:?})", self.0)
    }
}

impl Codec for UserId {
    type Error = DecodeError;
    const MAX_LEN: usize = 1 + MAX_USER_ID_LEN;

    fn write(&self, out: &mut Vec<u8>) {
        // 1..=128 bytes: guaranteed by construction, so the length fits one byte.
        out.push(self.0.len() as u8);
        out.extend_from_slice(self.0.as_bytes());
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = usize::from(reader.u8()?);
        if len == 0 {
            return Err(DecodeError::InvalidField("empty user id"));
        }
        if len > MAX_USER_ID_LEN {
            return Err(DecodeError::TooLarge);
        }
        let text = std::str::from_utf8(reader.take(len)?)
            .map_err(|_| DecodeError::InvalidField("user id not UTF-8"))?;
        if text.as_bytes().contains(&0) {
            return Err(DecodeError::InvalidField("user id contains NUL"));
        }
        Ok(Self(text.to_owned()))
    }
}

/// One device of one user.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceAddress {
    /// The user.
    pub user: UserId,
    /// The device id within the user's account.
    pub device: u32,
}

impl DeviceAddress {
    /// Builds an address; the user id must follow the [`UserId`] rule.
    pub fn new(user_id: impl Into<String>, device_id: u32) -> Result<Self, AddressError> {
        Ok(Self {
            user: UserId::new(user_id)?,
            device: device_id,
        })
    }

    /// The user id as text.
    pub fn user_id(&self) -> &str {
        self.user.as_str()
    }

    /// The device id.
    pub fn device_id(&self) -> u32 {
        self.device
    }
}

impl fmt::Display for DeviceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.user, self.device)
    }
}

impl fmt::Debug for DeviceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceAddress({self})")
    }
}

impl Codec for DeviceAddress {
    type Error = DecodeError;
    const MAX_LEN: usize = UserId::MAX_LEN + 4;

    fn write(&self, out: &mut Vec<u8>) {
        self.user.write(out);
        self.device.write(out);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            user: UserId::read(reader)?,
            device: reader.u32()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::codec::check_codec;

    #[test]
    fn one_rule_at_construction() {
        assert_eq!(UserId::new(""), Err(AddressError::EmptyUserId));
        assert!(UserId::new("a".repeat(MAX_USER_ID_LEN)).is_ok());
        assert_eq!(
            UserId::new("a".repeat(MAX_USER_ID_LEN + 1)),
            Err(AddressError::UserIdTooLong {
                len: MAX_USER_ID_LEN + 1
            })
        );
        // 128 bytes, not 128 characters: 43 three-byte characters are 129 bytes.
        assert!(UserId::new("€".repeat(43)).is_err());
        assert_eq!(UserId::new("a\0b"), Err(AddressError::NulInUserId));
        assert_eq!(DeviceAddress::new("bob", 3).unwrap().to_string(), "bob.3");
    }

    #[test]
    fn encoding_is_length_prefixed_and_checked() {
        check_codec(&DeviceAddress::new("bob", 3).unwrap());
        check_codec(&DeviceAddress::new("x".repeat(MAX_USER_ID_LEN), u32::MAX).unwrap());
        check_codec(&UserId::new("ünïcode").unwrap());
        assert_eq!(
            UserId::from_bytes(&[0]),
            Err(DecodeError::InvalidField("empty user id"))
        );
        let mut long = vec![129u8];
        long.extend(std::iter::repeat_n(b'a', 129));
        assert_eq!(
            UserId::read(&mut Reader::new(&long)),
            Err(DecodeError::TooLarge)
        );
        assert_eq!(
            UserId::from_bytes(&[2, 0xff, 0xfe]),
            Err(DecodeError::InvalidField("user id not UTF-8"))
        );
        assert_eq!(
            UserId::from_bytes(&[2, b'a', 0]),
            Err(DecodeError::InvalidField("user id contains NUL"))
        );
    }

    #[test]
    fn order_is_user_bytes_then_device() {
        let a = DeviceAddress::new("a", 9).unwrap();
        let b = DeviceAddress::new("b", 1).unwrap();
        let b2 = DeviceAddress::new("b", 2).unwrap();
        assert!(a < b && b < b2);
    }

    proptest! {
        #[test]
        fn decoder_is_total(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(address) = DeviceAddress::from_bytes(&bytes) {
                prop_assert_eq!(address.to_bytes(), bytes);
            }
        }
    }
}
