//! The two error types of this crate: malformed bytes, and an invalid address built by a caller.

/// The bytes are not a valid encoding of the expected value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the value did.
    #[error("input truncated")]
    Truncated,
    /// Bytes remained after a complete value.
    #[error("trailing bytes after value")]
    TrailingBytes,
    /// The version or type byte is not one this implementation knows.
    #[error("unknown version or type byte {0:#04x}")]
    UnknownVersion(u8),
    /// A field uses a non-canonical encoding (padded varint, unknown flag bits, ...).
    #[error("non-canonical encoding")]
    NonCanonical,
    /// A length or count exceeds its limit.
    #[error("length or count over its limit")]
    TooLarge,
    /// A field that must be valid (UTF-8, a curve point, a KEM key) is not.
    #[error("invalid field: {0}")]
    InvalidField(&'static str),
}

/// A user id or device address a caller tried to build breaks the one rule
/// ([`crate::UserId`]: 1..=128 bytes of UTF-8, no NUL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The user id is empty.
    #[error("user id is empty")]
    EmptyUserId,
    /// The user id is longer than [`crate::MAX_USER_ID_LEN`] bytes.
    #[error("user id is {len} bytes, at most 128 are allowed")]
    UserIdTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The user id contains a NUL byte.
    #[error("user id contains a NUL byte")]
    NulInUserId,
}
