//! Streaming encryption: plaintext in, sealed chunks out, in pieces of any size, with memory
//! bounded by one chunk however large the attachment.

use zeroize::Zeroizing;

use super::{MediaError, MediaKey, MediaLayout, chunk_cipher::ChunkCipher};

/// Encrypts one attachment of a size declared up front (the padding and the final chunk
/// depend on it).
///
/// ```
/// use e2ee_core::media::{MediaDecryptor, MediaEncryptor, MediaKey};
///
/// let key = MediaKey::generate(&mut rand_core::OsRng);
/// let photo = vec![7u8; 200_000];
/// let mut encryptor = MediaEncryptor::new(&key, photo.len() as u64)?;
/// let mut blob = Vec::new();
/// for piece in photo.chunks(8192) {
///     encryptor.update(piece, &mut blob)?; // upload `blob` as it grows
/// }
/// while !encryptor.finish_chunk(&mut blob)? {}
/// assert_eq!(blob.len() as u64, encryptor.layout().ciphertext_len());
///
/// let mut decryptor = MediaDecryptor::new(&key, photo.len() as u64)?;
/// let mut plaintext = Vec::new();
/// decryptor.update(&blob, &mut plaintext)?;
/// decryptor.finish()?;
/// assert_eq!(plaintext, photo);
/// # Ok::<(), e2ee_core::media::MediaError>(())
/// ```
pub struct MediaEncryptor {
    cipher: ChunkCipher,
    layout: MediaLayout,
    /// Plaintext bytes taken so far.
    taken: u64,
    /// Index of the chunk being filled.
    index: u32,
    /// Plaintext of the chunk being filled, when it arrived in pieces.
    pending: Zeroizing<Vec<u8>>,
    finished: bool,
}

impl std::fmt::Debug for MediaEncryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaEncryptor")
            .field("layout", &self.layout)
            .field("taken", &self.taken)
            .finish_non_exhaustive()
    }
}

impl MediaEncryptor {
    /// An encryptor for `plaintext_len` bytes under `key`.
    pub fn new(key: &MediaKey, plaintext_len: u64) -> Result<Self, MediaError> {
        Ok(Self {
            cipher: ChunkCipher::new(key),
            layout: MediaLayout::new(plaintext_len)?,
            taken: 0,
            index: 0,
            pending: Zeroizing::new(Vec::new()),
            finished: false,
        })
    }

    /// The attachment's layout (its blob length, for the upload).
    pub fn layout(&self) -> MediaLayout {
        self.layout
    }

    /// Takes more plaintext and appends every chunk it completes to `out` (the final chunk
    /// only comes from [`Self::finish_chunk`]). More plaintext than declared is refused whole,
    /// with nothing taken.
    pub fn update(&mut self, mut plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), MediaError> {
        let remaining = self.layout.plaintext_len() - self.taken;
        if plaintext.len() as u64 > remaining {
            return Err(MediaError::InputTooLong);
        }
        self.taken += plaintext.len() as u64;
        while !plaintext.is_empty() {
            // A chunk is sealed once full, unless it is the final one, which waits for
            // its padding.
            let room = self.layout.chunk_len(self.index)? - self.pending.len();
            let (piece, rest) = plaintext.split_at(room.min(plaintext.len()));
            plaintext = rest;
            let completes = piece.len() == room && !self.layout.is_last(self.index);
            if completes && self.pending.is_empty() {
                // Straight from the input to the output: one copy.
                let start = out.len();
                out.extend_from_slice(piece);
                self.cipher.seal(self.index, false, out, start)?;
                self.index += 1;
            } else {
                self.pending.extend_from_slice(piece);
                if completes {
                    self.seal_pending(out)?;
                }
            }
        }
        Ok(())
    }

    /// After all the plaintext: appends the next chunk of padding, or the final chunk, to
    /// `out`, and says whether the final one is out. Call it until it answers `true`; each
    /// call appends at most one chunk, so padding never needs more than a chunk of memory.
    pub fn finish_chunk(&mut self, out: &mut Vec<u8>) -> Result<bool, MediaError> {
        if self.finished {
            return Ok(true);
        }
        let missing = self.layout.plaintext_len() - self.taken;
        if missing > 0 {
            return Err(MediaError::InputTooShort { missing });
        }
        let len = self.layout.chunk_len(self.index)?;
        self.pending.resize(len, 0);
        self.seal_pending(out)?;
        Ok(self.finished)
    }

    fn seal_pending(&mut self, out: &mut Vec<u8>) -> Result<(), MediaError> {
        let last = self.layout.is_last(self.index);
        let start = out.len();
        out.extend_from_slice(&self.pending);
        self.pending.clear();
        self.cipher.seal(self.index, last, out, start)?;
        if last {
            self.finished = true;
        } else {
            self.index += 1;
        }
        Ok(())
    }
}

/// Encrypts a whole attachment held in memory: the blob.
pub fn encrypt_attachment(key: &MediaKey, plaintext: &[u8]) -> Result<Vec<u8>, MediaError> {
    let mut encryptor = MediaEncryptor::new(key, plaintext.len() as u64)?;
    // The blob length fits in memory: it is the plaintext's plus at most 5% and the tags.
    let mut blob = Vec::with_capacity(encryptor.layout().ciphertext_len() as usize);
    encryptor.update(plaintext, &mut blob)?;
    while !encryptor.finish_chunk(&mut blob)? {}
    Ok(blob)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::SEALED_CHUNK_LEN;

    #[test]
    fn declared_size_is_enforced() {
        let key = MediaKey::from_bytes([1; 32]);
        let mut encryptor = MediaEncryptor::new(&key, 10).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            encryptor.update(&[0; 11], &mut out),
            Err(MediaError::InputTooLong)
        );
        encryptor.update(&[0; 4], &mut out).unwrap();
        assert_eq!(
            encryptor.finish_chunk(&mut out),
            Err(MediaError::InputTooShort { missing: 6 })
        );
        encryptor.update(&[0; 6], &mut out).unwrap();
        assert!(out.is_empty(), "the final chunk waits for its padding");
        assert_eq!(encryptor.finish_chunk(&mut out), Ok(true));
        assert_eq!(out.len(), 541 + 16);
        assert_eq!(encryptor.finish_chunk(&mut out), Ok(true));
        assert_eq!(out.len(), 541 + 16);
        assert_eq!(
            encryptor.update(&[0], &mut out),
            Err(MediaError::InputTooLong)
        );
        assert!(MediaEncryptor::new(&key, crate::media::MAX_ATTACHMENT_LEN + 1).is_err());
    }

    #[test]
    fn every_finish_call_appends_at_most_one_chunk() {
        let key = MediaKey::from_bytes([2; 32]);
        // Just over a bucket: the next one is 5% (about 200 KiB) further.
        let len = crate::media::padded_len(4 * 1024 * 1024).unwrap() + 1;
        let mut encryptor = MediaEncryptor::new(&key, len).unwrap();
        let mut out = Vec::new();
        encryptor.update(&vec![9; len as usize], &mut out).unwrap();
        let mut calls = 0;
        loop {
            let before = out.len();
            let done = encryptor.finish_chunk(&mut out).unwrap();
            assert!(out.len() - before <= SEALED_CHUNK_LEN);
            calls += 1;
            if done {
                break;
            }
        }
        assert!(calls > 1, "this size has chunks of padding only");
        assert_eq!(out.len() as u64, encryptor.layout().ciphertext_len());
    }
}
