//! Encrypted attachments (docs/media.md is the normative description).
//!
//! The sender draws one random [`MediaKey`] per attachment, encrypts the file with the
//! streaming AEAD of this module, uploads the ciphertext to blob storage, and sends a
//! [`MediaPointer`] (blob id, key, size, ciphertext digest, type, thumbnail, ...) inside an
//! ordinary end-to-end encrypted message. The blob store sees ciphertext whose length reveals
//! only the padding bucket of the size.
//!
//! ```text
//! aes_key (32) || nonce_prefix (7) = HKDF-SHA256(salt = 0^32, ikm = media_key, "E2EE-v1_Attachment")
//! padded   = plaintext || 0x00 * (padded_len(size) - size)        (size buckets, padding.rs)
//! chunk i  = padded[i * 65536 .. min((i + 1) * 65536, padded_len)]
//! nonce i  = nonce_prefix || be32(i) || last (0x01 on the final chunk, else 0x00)
//! blob     = AES-256-GCM(aes_key, nonce 0, chunk 0) || ... || AES-256-GCM(aes_key, nonce n-1, chunk n-1)
//!            (each sealed chunk is its ciphertext followed by its full 16-byte tag; no AD)
//! ```
//!
//! Every sealed chunk verifies on its own, so a player can seek ([`ChunkReader`]) and a
//! download can be checked as it streams ([`MediaDecryptor`]); the index in the nonce refuses
//! reordering, the last-chunk flag refuses truncation at a chunk boundary, and the length the
//! pointer gives refuses extension. Everything here is sans-I/O: bytes in, bytes out.

mod chunk_cipher;
mod decryptor;
mod encryptor;
mod error;
mod key;
mod layout;
mod padding;
mod pointer;

#[cfg(test)]
pub(crate) use chunk_cipher::expand as chunk_cipher_expand;
pub use decryptor::{ChunkReader, MediaDecryptor};
pub use encryptor::{MediaEncryptor, encrypt_attachment};
pub use error::MediaError;
pub use key::{MEDIA_KEY_LEN, MediaKey};
pub use layout::MediaLayout;
pub use padding::{MIN_PADDED_LEN, padded_len};
pub use pointer::{
    MAX_BLOB_ID_LEN, MAX_CONTENT_TYPE_LEN, MAX_FILE_NAME_LEN, MAX_POINTER_LEN, MAX_THUMBNAIL_LEN,
    MEDIA_POINTER_VERSION, MediaPointer,
};

/// Plaintext bytes per chunk (the last chunk may be shorter).
pub const CHUNK_LEN: usize = 64 * 1024;
/// AES-GCM tag after every chunk; the full 16 bytes, never truncated.
pub const CHUNK_TAG_LEN: usize = 16;
/// A full sealed chunk in the blob: [`CHUNK_LEN`] + [`CHUNK_TAG_LEN`].
pub const SEALED_CHUNK_LEN: usize = CHUNK_LEN + CHUNK_TAG_LEN;
/// Largest attachment (plaintext) the format carries: 16 GiB. Servers set their own, lower,
/// upload limit; this bound keeps every chunk index far inside 32 bits.
pub const MAX_ATTACHMENT_LEN: u64 = 16 * 1024 * 1024 * 1024;
