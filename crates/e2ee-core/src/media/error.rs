//! What encrypting or decrypting an attachment, or building its pointer, can fail with.

/// An attachment could not be sealed or opened, or a pointer field is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The attachment is over [`super::MAX_ATTACHMENT_LEN`].
    #[error("attachment of {len} bytes is over the format's limit")]
    TooLarge {
        /// The size asked for.
        len: u64,
    },
    /// More plaintext was given than the size the encryptor was made for.
    #[error("more plaintext than the declared size")]
    InputTooLong,
    /// Fewer plaintext bytes were given than the declared size.
    #[error("plaintext ended {missing} bytes before the declared size")]
    InputTooShort {
        /// Bytes still expected.
        missing: u64,
    },
    /// A chunk's tag did not verify: the blob was tampered with, its chunks reordered or cut
    /// at a chunk boundary, or the key is not this blob's.
    #[error("chunk {index} does not verify")]
    ChunkRejected {
        /// The chunk's index.
        index: u32,
    },
    /// The ciphertext ended before its last chunk.
    #[error("ciphertext is truncated")]
    Truncated,
    /// Bytes follow the last chunk.
    #[error("ciphertext continues past its last chunk")]
    TrailingCiphertext,
    /// The padding after the plaintext is not all zero (it verified, so the sender made it).
    #[error("non-zero padding")]
    NonZeroPadding,
    /// A chunk index past the last chunk, or a sealed chunk of the wrong length.
    #[error("chunk {index} is not part of this attachment or has the wrong length")]
    NoSuchChunk {
        /// The chunk's index.
        index: u32,
    },
    /// The SHA-256 of the downloaded ciphertext is not the pointer's.
    #[error("ciphertext digest does not match the pointer")]
    DigestMismatch,
    /// The AEAD refused to seal (impossible for chunks this small; no fallback exists).
    #[error("sealing failed")]
    SealFailed,
    /// A pointer field breaks its rule (the name of the field).
    #[error("invalid pointer field: {0}")]
    InvalidPointer(&'static str),
}
