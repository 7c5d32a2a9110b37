//! Where every chunk of an attachment sits, in the plaintext and in the blob: what a download
//! range, a seek or an upload's declared length is computed from.

use std::ops::Range;

use super::{CHUNK_LEN, CHUNK_TAG_LEN, MediaError, SEALED_CHUNK_LEN, padded_len};

/// The chunk layout of an attachment of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaLayout {
    plaintext_len: u64,
    padded_len: u64,
}

impl MediaLayout {
    /// The layout of an attachment of `plaintext_len` bytes.
    pub fn new(plaintext_len: u64) -> Result<Self, MediaError> {
        Ok(Self {
            plaintext_len,
            padded_len: padded_len(plaintext_len)?,
        })
    }

    /// The attachment's real size.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Its size with padding: what is encrypted.
    pub fn padded_len(&self) -> u64 {
        self.padded_len
    }

    /// Number of chunks (at least 1: the smallest bucket is not empty).
    pub fn chunk_count(&self) -> u32 {
        // At most 16 GiB * 1.05 / 64 KiB chunks: far below u32::MAX.
        self.padded_len.div_ceil(CHUNK_LEN as u64) as u32
    }

    /// Length of the blob: the padded plaintext plus one tag per chunk.
    pub fn ciphertext_len(&self) -> u64 {
        self.padded_len + CHUNK_TAG_LEN as u64 * u64::from(self.chunk_count())
    }

    /// Whether `index` is the final chunk.
    pub fn is_last(&self, index: u32) -> bool {
        index + 1 == self.chunk_count()
    }

    /// Padded plaintext bytes in chunk `index` (the final one may be short).
    pub fn chunk_len(&self, index: u32) -> Result<usize, MediaError> {
        let start = self.padded_start(index)?;
        // At most CHUNK_LEN.
        Ok((self.padded_len - start).min(CHUNK_LEN as u64) as usize)
    }

    /// Byte range of sealed chunk `index` in the blob (for an HTTP range request).
    pub fn sealed_range(&self, index: u32) -> Result<Range<u64>, MediaError> {
        let start = u64::from(index) * SEALED_CHUNK_LEN as u64;
        let len = self.chunk_len(index)? + CHUNK_TAG_LEN;
        Ok(start..start + len as u64)
    }

    /// The part of the real plaintext (padding excluded) that chunk `index` holds; empty for
    /// a chunk of padding only.
    pub fn plaintext_range(&self, index: u32) -> Result<Range<u64>, MediaError> {
        let start = self.padded_start(index)?;
        let end = start + self.chunk_len(index)? as u64;
        Ok(start.min(self.plaintext_len)..end.min(self.plaintext_len))
    }

    /// The chunk holding plaintext byte `offset`, if the attachment has that byte.
    pub fn chunk_of(&self, offset: u64) -> Option<u32> {
        // Below chunk_count, so it fits.
        (offset < self.plaintext_len).then(|| (offset / CHUNK_LEN as u64) as u32)
    }

    fn padded_start(&self, index: u32) -> Result<u64, MediaError> {
        if index >= self.chunk_count() {
            return Err(MediaError::NoSuchChunk { index });
        }
        Ok(u64::from(index) * CHUNK_LEN as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_of_small_exact_and_padded_sizes() {
        let empty = MediaLayout::new(0).unwrap();
        assert_eq!(empty.chunk_count(), 1);
        assert_eq!(empty.ciphertext_len(), 541 + 16);
        assert_eq!(empty.plaintext_range(0).unwrap(), 0..0);
        assert_eq!(empty.chunk_of(0), None);

        let layout = MediaLayout::new(3 * CHUNK_LEN as u64 + 1).unwrap();
        let padded = layout.padded_len();
        assert!(padded > 3 * CHUNK_LEN as u64 + 1);
        assert_eq!(
            layout.chunk_count() as u64,
            padded.div_ceil(CHUNK_LEN as u64)
        );
        assert_eq!(
            layout.ciphertext_len(),
            padded + 16 * u64::from(layout.chunk_count())
        );
        assert_eq!(layout.sealed_range(1).unwrap(), 65552..131104);
        let last = layout.chunk_count() - 1;
        assert!(layout.is_last(last) && !layout.is_last(0));
        assert_eq!(
            layout.sealed_range(last).unwrap().end,
            layout.ciphertext_len()
        );
        assert_eq!(
            layout.plaintext_range(3).unwrap(),
            3 * CHUNK_LEN as u64..3 * CHUNK_LEN as u64 + 1
        );
        assert_eq!(layout.chunk_of(3 * CHUNK_LEN as u64), Some(3));
        assert_eq!(layout.chunk_of(3 * CHUNK_LEN as u64 + 1), None);
        assert_eq!(
            layout.sealed_range(last + 1),
            Err(MediaError::NoSuchChunk { index: last + 1 })
        );
    }

    #[test]
    fn padding_can_fill_whole_chunks() {
        // 5% of 10 MiB is several chunks of padding only.
        let layout = MediaLayout::new(10 * 1024 * 1024 + 1).unwrap();
        let last = layout.chunk_count() - 1;
        assert!(layout.plaintext_range(last).unwrap().is_empty());
        assert_eq!(layout.chunk_of(10 * 1024 * 1024), Some(160));
    }
}
