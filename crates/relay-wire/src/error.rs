//! What goes wrong with a frame: the decode error, and the typed codes of an `ERROR` frame.

/// Typed error codes of an `ERROR` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame could not be decoded. The connection is closed after this frame.
    Malformed = 1,
    /// Unknown wire version. The connection is closed after this frame.
    UnsupportedVersion = 2,
    /// An envelope's payload exceeds the limit. Batch refused, nothing stored.
    PayloadTooLarge = 3,
    /// An envelope names too many recipients. Batch refused, nothing stored.
    TooManyRecipients = 4,
    /// Too many envelopes in one frame. Batch refused, nothing stored.
    BatchTooLarge = 5,
    /// The sender's token bucket is empty; retry after `retry_after_ms`. Batch refused.
    RateLimited = 6,
    /// The relay could not store the batch (storage unavailable). Retry later; nothing acked.
    Unavailable = 7,
    /// A client frame kind the relay does not handle. The connection is closed.
    UnknownKind = 8,
}

impl ErrorCode {
    pub(super) fn from_u16(v: u16) -> Option<Self> {
        Some(match v {
            1 => Self::Malformed,
            2 => Self::UnsupportedVersion,
            3 => Self::PayloadTooLarge,
            4 => Self::TooManyRecipients,
            5 => Self::BatchTooLarge,
            6 => Self::RateLimited,
            7 => Self::Unavailable,
            8 => Self::UnknownKind,
            _ => return None,
        })
    }
}

/// Why bytes are not a valid frame.
///
/// The relay tells garbage (answered with `MALFORMED` and a closed connection) from limit
/// violations (answered with their own code; the connection survives), so the limits are
/// variants of their own and everything else is the shared [`e2ee_encoding::DecodeError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Wrong version byte.
    #[error("unsupported wire version {0}")]
    UnsupportedVersion(u8),
    /// Unknown kind byte.
    #[error("unknown frame kind {0:#04x}")]
    UnknownKind(u8),
    /// Truncated, trailing bytes, an invalid field or a non-canonical encoding.
    #[error("malformed frame: {0}")]
    Malformed(#[from] e2ee_encoding::DecodeError),
    /// Payload larger than [`crate::limits::MAX_PAYLOAD_LEN`].
    #[error("payload too large")]
    PayloadTooLarge,
    /// More recipients than [`crate::limits::MAX_RECIPIENTS`].
    #[error("too many recipients")]
    TooManyRecipients,
    /// More envelopes than [`crate::limits::MAX_BATCH_ENVELOPES`], acks than
    /// [`crate::limits::MAX_ACK_BATCH`] or presence viewers than
    /// [`super::MAX_PRESENCE_VIEWERS`].
    #[error("batch too large")]
    BatchTooLarge,
}

impl DecodeError {
    /// The error code reported to the client.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
            Self::UnknownKind(_) => ErrorCode::UnknownKind,
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Self::TooManyRecipients => ErrorCode::TooManyRecipients,
            Self::BatchTooLarge => ErrorCode::BatchTooLarge,
            Self::Malformed(_) => ErrorCode::Malformed,
        }
    }

    /// Whether the connection survives: limit violations keep it, garbage closes it.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            Self::PayloadTooLarge | Self::TooManyRecipients | Self::BatchTooLarge
        )
    }
}

/// An invalid field of a frame.
pub(super) fn invalid(what: &'static str) -> DecodeError {
    DecodeError::Malformed(e2ee_encoding::DecodeError::InvalidField(what))
}
