//! Streaming decryption (ciphertext in, verified plaintext out) and single-chunk reads for
//! seeking. Plaintext is only ever released from a chunk whose tag verified; a caller that
//! gets an error must discard what the stream released before it (the client writes to a
//! temporary file it deletes).

use super::{
    CHUNK_TAG_LEN, MediaError, MediaKey, MediaLayout, SEALED_CHUNK_LEN, chunk_cipher::ChunkCipher,
};

/// Opens single chunks of an attachment: what a player that seeks, or a ranged download,
/// needs. [`MediaLayout::sealed_range`] says which blob bytes to fetch for a chunk.
pub struct ChunkReader {
    cipher: ChunkCipher,
    layout: MediaLayout,
}

impl std::fmt::Debug for ChunkReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkReader")
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl ChunkReader {
    /// A reader of the attachment of `plaintext_len` bytes under `key`.
    pub fn new(key: &MediaKey, plaintext_len: u64) -> Result<Self, MediaError> {
        Ok(Self {
            cipher: ChunkCipher::new(key),
            layout: MediaLayout::new(plaintext_len)?,
        })
    }

    /// The attachment's layout.
    pub fn layout(&self) -> MediaLayout {
        self.layout
    }

    /// Opens sealed chunk `index` in place and returns its real plaintext (padding removed
    /// and checked to be zero): the bytes of [`MediaLayout::plaintext_range`].
    pub fn open_in_place<'a>(
        &self,
        index: u32,
        sealed: &'a mut [u8],
    ) -> Result<&'a [u8], MediaError> {
        let len = self.layout.chunk_len(index)?;
        if sealed.len() != len + CHUNK_TAG_LEN {
            return Err(MediaError::NoSuchChunk { index });
        }
        self.cipher
            .open(index, self.layout.is_last(index), sealed)?;
        let range = self.layout.plaintext_range(index)?;
        // Both below CHUNK_LEN.
        let real = (range.end - range.start) as usize;
        if sealed[real..len].iter().any(|&b| b != 0) {
            return Err(MediaError::NonZeroPadding);
        }
        Ok(&sealed[..real])
    }

    /// Opens sealed chunk `index` into a new buffer.
    pub fn open(&self, index: u32, sealed: &[u8]) -> Result<Vec<u8>, MediaError> {
        let mut buffer = sealed.to_vec();
        let real = self.open_in_place(index, &mut buffer)?.len();
        buffer.truncate(real);
        Ok(buffer)
    }
}

/// Decrypts one attachment as its blob streams in, in pieces of any size.
pub struct MediaDecryptor {
    reader: ChunkReader,
    /// Index of the chunk being received.
    index: u32,
    /// Sealed bytes of the chunk being received, when it arrives in pieces.
    pending: Vec<u8>,
    finished: bool,
    failed: Option<MediaError>,
}

impl std::fmt::Debug for MediaDecryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaDecryptor")
            .field("layout", &self.reader.layout)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl MediaDecryptor {
    /// A decryptor for the attachment of `plaintext_len` bytes (the pointer's size).
    pub fn new(key: &MediaKey, plaintext_len: u64) -> Result<Self, MediaError> {
        Ok(Self {
            reader: ChunkReader::new(key, plaintext_len)?,
            index: 0,
            pending: Vec::with_capacity(SEALED_CHUNK_LEN),
            finished: false,
            failed: None,
        })
    }

    /// The attachment's layout.
    pub fn layout(&self) -> MediaLayout {
        self.reader.layout
    }

    /// Takes more of the blob and appends the plaintext of every chunk it completes to
    /// `out`. After an error every later call fails with the same error.
    pub fn update(&mut self, ciphertext: &[u8], out: &mut Vec<u8>) -> Result<(), MediaError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        let result = self.update_inner(ciphertext, out);
        if let Err(error) = result {
            self.failed = Some(error);
        }
        result
    }

    fn update_inner(&mut self, mut ciphertext: &[u8], out: &mut Vec<u8>) -> Result<(), MediaError> {
        while !ciphertext.is_empty() {
            if self.finished {
                return Err(MediaError::TrailingCiphertext);
            }
            let sealed_len = self.reader.layout.chunk_len(self.index)? + CHUNK_TAG_LEN;
            let room = sealed_len - self.pending.len();
            let (piece, rest) = ciphertext.split_at(room.min(ciphertext.len()));
            ciphertext = rest;
            if piece.len() < room {
                self.pending.extend_from_slice(piece);
                break;
            }
            // A whole sealed chunk: open it in `out` itself (one copy).
            let start = out.len();
            out.extend_from_slice(&self.pending);
            out.extend_from_slice(piece);
            self.pending.clear();
            match self.reader.open_in_place(self.index, &mut out[start..]) {
                Ok(plaintext) => {
                    let real = plaintext.len();
                    out.truncate(start + real);
                }
                Err(error) => {
                    out.truncate(start);
                    return Err(error);
                }
            }
            if self.reader.layout.is_last(self.index) {
                self.finished = true;
            } else {
                self.index += 1;
            }
        }
        Ok(())
    }

    /// Ends the stream: fails unless the final chunk arrived and verified.
    pub fn finish(self) -> Result<(), MediaError> {
        match (self.failed, self.finished) {
            (Some(error), _) => Err(error),
            (None, true) => Ok(()),
            (None, false) => Err(MediaError::Truncated),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::media::{CHUNK_LEN, encrypt_attachment};

    fn decrypt_in_pieces(
        key: &MediaKey,
        len: u64,
        blob: &[u8],
        piece: usize,
    ) -> Result<Vec<u8>, MediaError> {
        let mut decryptor = MediaDecryptor::new(key, len)?;
        let mut out = Vec::new();
        for part in blob.chunks(piece.max(1)) {
            decryptor.update(part, &mut out)?;
        }
        decryptor.finish()?;
        Ok(out)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Whatever the size and however the plaintext and the blob are cut into pieces, the
        /// stream gives back the plaintext and the blob has its layout's length.
        #[test]
        fn streams_round_trip_in_any_pieces(
            len in prop_oneof![0usize..2_000, 60_000usize..200_000],
            piece_in in 1usize..100_000,
            piece_out in 1usize..100_000,
            seed: u8,
        ) {
            let key = MediaKey::from_bytes([seed; 32]);
            let plaintext: Vec<u8> = (0..len).map(|i| (i % 251) as u8 ^ seed).collect();
            let mut encryptor = crate::media::MediaEncryptor::new(&key, len as u64).unwrap();
            let mut blob = Vec::new();
            for part in plaintext.chunks(piece_in) {
                encryptor.update(part, &mut blob).unwrap();
            }
            while !encryptor.finish_chunk(&mut blob).unwrap() {}
            prop_assert_eq!(blob.len() as u64, encryptor.layout().ciphertext_len());
            prop_assert_eq!(&blob, &encrypt_attachment(&key, &plaintext).unwrap());
            prop_assert_eq!(decrypt_in_pieces(&key, len as u64, &blob, piece_out).unwrap(), plaintext);
        }
    }

    fn sample() -> (MediaKey, Vec<u8>, Vec<u8>) {
        let key = MediaKey::from_bytes([4; 32]);
        let plaintext: Vec<u8> = (0..3 * CHUNK_LEN + 100).map(|i| i as u8).collect();
        let blob = encrypt_attachment(&key, &plaintext).unwrap();
        (key, plaintext, blob)
    }

    #[test]
    fn tampering_reordering_truncation_and_extension_fail() {
        let (key, plaintext, blob) = sample();
        let len = plaintext.len() as u64;
        let s = SEALED_CHUNK_LEN;
        let mut flipped = blob.clone();
        flipped[s + 10] ^= 1;
        assert_eq!(
            decrypt_in_pieces(&key, len, &flipped, 5000),
            Err(MediaError::ChunkRejected { index: 1 })
        );
        let mut swapped = blob.clone();
        swapped[..2 * s].rotate_left(s);
        assert_eq!(
            decrypt_in_pieces(&key, len, &swapped, 5000),
            Err(MediaError::ChunkRejected { index: 0 })
        );
        // Cut at a chunk boundary: the stream ends before the final chunk.
        assert_eq!(
            decrypt_in_pieces(&key, len, &blob[..3 * s], 5000),
            Err(MediaError::Truncated)
        );
        // Claiming the cut blob is a shorter, three-chunk attachment: chunk 2 was not sealed
        // as final (nor with that length).
        let short = 2 * CHUNK_LEN as u64 + 10;
        assert_eq!(MediaLayout::new(short).unwrap().chunk_count(), 3);
        assert_eq!(
            decrypt_in_pieces(&key, short, &blob[..3 * s], 5000),
            Err(MediaError::ChunkRejected { index: 2 })
        );
        let mut extended = blob.clone();
        extended.push(0);
        assert_eq!(
            decrypt_in_pieces(&key, len, &extended, 5000),
            Err(MediaError::TrailingCiphertext)
        );
        let other = MediaKey::from_bytes([5; 32]);
        assert_eq!(
            decrypt_in_pieces(&other, len, &blob, 5000),
            Err(MediaError::ChunkRejected { index: 0 })
        );
        // Poisoned after an error.
        let mut decryptor = MediaDecryptor::new(&key, len).unwrap();
        let mut out = Vec::new();
        assert!(decryptor.update(&flipped, &mut out).is_err());
        assert_eq!(
            out.len(),
            CHUNK_LEN,
            "only the verified chunk 0 was released"
        );
        assert_eq!(
            decryptor.update(&blob[..1], &mut out),
            Err(MediaError::ChunkRejected { index: 1 })
        );
    }

    #[test]
    fn single_chunks_open_for_seeking() {
        let (key, plaintext, blob) = sample();
        let reader = ChunkReader::new(&key, plaintext.len() as u64).unwrap();
        let layout = reader.layout();
        for index in 0..layout.chunk_count() {
            let sealed = layout.sealed_range(index).unwrap();
            let range = layout.plaintext_range(index).unwrap();
            let opened = reader
                .open(index, &blob[sealed.start as usize..sealed.end as usize])
                .unwrap();
            assert_eq!(opened, &plaintext[range.start as usize..range.end as usize]);
        }
        assert_eq!(
            reader.open(0, &blob[..100]),
            Err(MediaError::NoSuchChunk { index: 0 })
        );
        assert_eq!(
            reader.open(layout.chunk_count(), &blob[..100]),
            Err(MediaError::NoSuchChunk {
                index: layout.chunk_count()
            })
        );
    }

    #[test]
    fn non_zero_padding_is_refused() {
        // A sender that encrypts its own "padding": the tag verifies, the padding check not.
        let key = MediaKey::from_bytes([6; 32]);
        let mut forged = vec![1u8; 541];
        super::super::chunk_cipher::ChunkCipher::new(&key)
            .seal(0, true, &mut forged, 0)
            .unwrap();
        assert_eq!(
            decrypt_in_pieces(&key, 10, &forged, 1000),
            Err(MediaError::NonZeroPadding)
        );
        assert_eq!(
            decrypt_in_pieces(&key, 541, &forged, 1000).unwrap(),
            vec![1u8; 541]
        );
    }
}
