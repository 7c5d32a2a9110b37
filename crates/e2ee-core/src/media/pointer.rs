//! The pointer to an attachment, carried inside an end-to-end encrypted message: where the
//! blob is, the key that opens it, and what the app shows before downloading it.
//!
//! ```text
//! MediaPointer = 0x01 || blob_id_len u8 (1..=64) || blob_id (ASCII A-Z a-z 0-9 - _)
//!                || media_key [32] || size u64 (<= MAX_ATTACHMENT_LEN)
//!                || ciphertext_sha256 [32]
//!                || content_type_len u8 (3..=127) || content_type (visible ASCII, one '/')
//!                || flags u8 (bit 0 file name, bit 1 dimensions, bit 2 duration,
//!                             bit 3 thumbnail; other bits zero)
//!                || [name_len u8 (1..=255) || file_name (UTF-8)]
//!                || [width u32 || height u32 (both >= 1)]
//!                || [duration_ms u32]
//!                || [thumbnail_len u16 (1..=MAX_THUMBNAIL_LEN) || thumbnail (image bytes)]
//! ```
//!
//! The thumbnail travels inline: it is encrypted with the message that carries the pointer.

use super::{MEDIA_KEY_LEN, MediaError, MediaKey, MediaLayout};
use crate::{Codec, DecodeError, Reader};

/// Version byte of an encoded [`MediaPointer`].
pub const MEDIA_POINTER_VERSION: u8 = 0x01;
/// Longest blob id.
pub const MAX_BLOB_ID_LEN: usize = 64;
/// Longest content type (`type/subtype`).
pub const MAX_CONTENT_TYPE_LEN: usize = 127;
/// Longest file name, in bytes of UTF-8.
pub const MAX_FILE_NAME_LEN: usize = 255;
/// Largest inline thumbnail: 16 KiB, so a pointer always fits in one message.
pub const MAX_THUMBNAIL_LEN: usize = 16 * 1024;
/// Longest encoded pointer.
pub const MAX_POINTER_LEN: usize = 1
    + 1
    + MAX_BLOB_ID_LEN
    + MEDIA_KEY_LEN
    + 8
    + 32
    + 1
    + MAX_CONTENT_TYPE_LEN
    + 1
    + 1
    + MAX_FILE_NAME_LEN
    + 8
    + 4
    + 2
    + MAX_THUMBNAIL_LEN;

const FLAG_FILE_NAME: u8 = 0x01;
const FLAG_DIMENSIONS: u8 = 0x02;
const FLAG_DURATION: u8 = 0x04;
const FLAG_THUMBNAIL: u8 = 0x08;
const KNOWN_FLAGS: u8 = FLAG_FILE_NAME | FLAG_DIMENSIONS | FLAG_DURATION | FLAG_THUMBNAIL;

/// An attachment as a message carries it. Built with [`MediaPointer::new`] and the `with_`
/// methods, each of which checks its field, so every pointer encodes and decodes.
#[derive(Clone, PartialEq, Eq)]
pub struct MediaPointer {
    blob_id: String,
    key: MediaKey,
    /// The size and what follows from it (checked against the format's bound once).
    layout: MediaLayout,
    ciphertext_sha256: [u8; 32],
    content_type: String,
    file_name: Option<String>,
    dimensions: Option<(u32, u32)>,
    duration_ms: Option<u32>,
    thumbnail: Option<Vec<u8>>,
}

/// Everything but the key.
impl std::fmt::Debug for MediaPointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaPointer")
            .field("blob_id", &self.blob_id)
            .field("size", &self.layout.plaintext_len())
            .field("content_type", &self.content_type)
            .field("file_name", &self.file_name)
            .field("dimensions", &self.dimensions)
            .field("duration_ms", &self.duration_ms)
            .field("thumbnail_len", &self.thumbnail.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

fn check_blob_id(id: &str) -> Result<(), DecodeError> {
    let valid = (1..=MAX_BLOB_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid
        .then_some(())
        .ok_or(DecodeError::InvalidField("blob id"))
}

fn check_content_type(text: &str) -> Result<(), DecodeError> {
    let valid = (3..=MAX_CONTENT_TYPE_LEN).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_graphic())
        && text.bytes().filter(|&b| b == b'/').count() == 1
        && !text.starts_with('/')
        && !text.ends_with('/');
    valid
        .then_some(())
        .ok_or(DecodeError::InvalidField("content type"))
}

fn check_file_name(name: &str) -> Result<(), DecodeError> {
    let valid = (1..=MAX_FILE_NAME_LEN).contains(&name.len()) && !name.contains('\0');
    valid
        .then_some(())
        .ok_or(DecodeError::InvalidField("file name"))
}

fn pointer_field(error: DecodeError) -> MediaError {
    match error {
        DecodeError::InvalidField(field) => MediaError::InvalidPointer(field),
        _ => MediaError::InvalidPointer("pointer"),
    }
}

impl MediaPointer {
    /// A pointer to the blob `blob_id` holding an attachment of `size` bytes sealed under
    /// `key`, whose ciphertext has SHA-256 `ciphertext_sha256`.
    pub fn new(
        blob_id: impl Into<String>,
        key: MediaKey,
        size: u64,
        ciphertext_sha256: [u8; 32],
        content_type: impl Into<String>,
    ) -> Result<Self, MediaError> {
        let blob_id = blob_id.into();
        let content_type = content_type.into();
        check_blob_id(&blob_id).map_err(pointer_field)?;
        check_content_type(&content_type).map_err(pointer_field)?;
        Ok(Self {
            blob_id,
            key,
            layout: MediaLayout::new(size)?,
            ciphertext_sha256,
            content_type,
            file_name: None,
            dimensions: None,
            duration_ms: None,
            thumbnail: None,
        })
    }

    /// With a file name to show and save under (apps must still sanitise it for their
    /// filesystem).
    pub fn with_file_name(mut self, name: impl Into<String>) -> Result<Self, MediaError> {
        let name = name.into();
        check_file_name(&name).map_err(pointer_field)?;
        self.file_name = Some(name);
        Ok(self)
    }

    /// With the pixel size of an image or video (both at least 1).
    pub fn with_dimensions(mut self, width: u32, height: u32) -> Result<Self, MediaError> {
        if width == 0 || height == 0 {
            return Err(MediaError::InvalidPointer("dimensions"));
        }
        self.dimensions = Some((width, height));
        Ok(self)
    }

    /// With the length of a voice note or video.
    pub fn with_duration_ms(mut self, duration_ms: u32) -> Self {
        self.duration_ms = Some(duration_ms);
        self
    }

    /// With an inline preview image of 1..=[`MAX_THUMBNAIL_LEN`] bytes.
    pub fn with_thumbnail(mut self, thumbnail: Vec<u8>) -> Result<Self, MediaError> {
        if thumbnail.is_empty() || thumbnail.len() > MAX_THUMBNAIL_LEN {
            return Err(MediaError::InvalidPointer("thumbnail"));
        }
        self.thumbnail = Some(thumbnail);
        Ok(self)
    }

    /// Where the blob is.
    pub fn blob_id(&self) -> &str {
        &self.blob_id
    }

    /// The key that opens it.
    pub fn key(&self) -> &MediaKey {
        &self.key
    }

    /// The attachment's real size.
    pub fn size(&self) -> u64 {
        self.layout.plaintext_len()
    }

    /// Its chunk layout (the blob's length, which bytes hold which chunk).
    pub fn layout(&self) -> MediaLayout {
        self.layout
    }

    /// SHA-256 of the whole blob, checked before decrypting it.
    pub fn ciphertext_sha256(&self) -> &[u8; 32] {
        &self.ciphertext_sha256
    }

    /// Its MIME type.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// Its file name, if the sender gave one.
    pub fn file_name(&self) -> Option<&str> {
        self.file_name.as_deref()
    }

    /// `(width, height)` in pixels, if given.
    pub fn dimensions(&self) -> Option<(u32, u32)> {
        self.dimensions
    }

    /// Duration in milliseconds, if given.
    pub fn duration_ms(&self) -> Option<u32> {
        self.duration_ms
    }

    /// The inline preview, if given.
    pub fn thumbnail(&self) -> Option<&[u8]> {
        self.thumbnail.as_deref()
    }
}

fn read_text(reader: &mut Reader<'_>, len: usize) -> Result<String, DecodeError> {
    let bytes = reader.take(len)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::InvalidField("text"))
}

impl Codec for MediaPointer {
    type Error = DecodeError;
    const MAX_LEN: usize = MAX_POINTER_LEN;

    fn write(&self, out: &mut Vec<u8>) {
        // Every length below was checked against its bound when the pointer was built.
        out.push(MEDIA_POINTER_VERSION);
        out.push(self.blob_id.len() as u8);
        out.extend_from_slice(self.blob_id.as_bytes());
        out.extend_from_slice(self.key.as_bytes());
        self.layout.plaintext_len().write(out);
        out.extend_from_slice(&self.ciphertext_sha256);
        out.push(self.content_type.len() as u8);
        out.extend_from_slice(self.content_type.as_bytes());
        let flag = |present: bool, bit: u8| if present { bit } else { 0 };
        let flags = flag(self.file_name.is_some(), FLAG_FILE_NAME)
            | flag(self.dimensions.is_some(), FLAG_DIMENSIONS)
            | flag(self.duration_ms.is_some(), FLAG_DURATION)
            | flag(self.thumbnail.is_some(), FLAG_THUMBNAIL);
        out.push(flags);
        if let Some(name) = &self.file_name {
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
        }
        if let Some((width, height)) = self.dimensions {
            width.write(out);
            height.write(out);
        }
        if let Some(duration) = self.duration_ms {
            duration.write(out);
        }
        if let Some(thumbnail) = &self.thumbnail {
            (thumbnail.len() as u16).write(out);
            out.extend_from_slice(thumbnail);
        }
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = reader.u8()?;
        if version != MEDIA_POINTER_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let id_len = usize::from(reader.u8()?);
        let blob_id = read_text(reader, id_len)?;
        check_blob_id(&blob_id)?;
        let key = MediaKey::from_bytes(reader.array()?);
        let layout = MediaLayout::new(reader.u64()?).map_err(|_| DecodeError::TooLarge)?;
        let ciphertext_sha256 = reader.array()?;
        let type_len = usize::from(reader.u8()?);
        let content_type = read_text(reader, type_len)?;
        check_content_type(&content_type)?;
        let flags = reader.u8()?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(DecodeError::NonCanonical);
        }
        let file_name = if flags & FLAG_FILE_NAME != 0 {
            let len = usize::from(reader.u8()?);
            let name = read_text(reader, len)?;
            check_file_name(&name)?;
            Some(name)
        } else {
            None
        };
        let dimensions = if flags & FLAG_DIMENSIONS != 0 {
            let (width, height) = (reader.u32()?, reader.u32()?);
            if width == 0 || height == 0 {
                return Err(DecodeError::InvalidField("dimensions"));
            }
            Some((width, height))
        } else {
            None
        };
        let duration_ms = if flags & FLAG_DURATION != 0 {
            Some(reader.u32()?)
        } else {
            None
        };
        let thumbnail = if flags & FLAG_THUMBNAIL != 0 {
            let len = usize::from(reader.u16()?);
            if len == 0 {
                return Err(DecodeError::InvalidField("thumbnail"));
            }
            if len > MAX_THUMBNAIL_LEN {
                return Err(DecodeError::TooLarge);
            }
            Some(reader.take(len)?.to_vec())
        } else {
            None
        };
        Ok(Self {
            blob_id,
            key,
            layout,
            ciphertext_sha256,
            content_type,
            file_name,
            dimensions,
            duration_ms,
            thumbnail,
        })
    }
}

#[cfg(test)]
mod tests {
    use e2ee_encoding::check_codec;

    use super::*;
    use crate::media::MAX_ATTACHMENT_LEN;

    fn minimal() -> MediaPointer {
        MediaPointer::new(
            "Ab-_09",
            MediaKey::from_bytes([7; 32]),
            123_456,
            [8; 32],
            "image/jpeg",
        )
        .unwrap()
    }

    fn full() -> MediaPointer {
        minimal()
            .with_file_name("holiday – beach.jpg")
            .unwrap()
            .with_dimensions(4032, 3024)
            .unwrap()
            .with_duration_ms(0)
            .with_thumbnail(vec![0xFF; MAX_THUMBNAIL_LEN])
            .unwrap()
    }

    #[test]
    fn pointers_round_trip_and_every_cut_is_refused() {
        check_codec(&minimal());
        check_codec(&full());
        check_codec(&minimal().with_duration_ms(u32::MAX));
        let long = MediaPointer::new(
            "x".repeat(MAX_BLOB_ID_LEN),
            MediaKey::from_bytes([1; 32]),
            MAX_ATTACHMENT_LEN,
            [0; 32],
            format!("a/{}", "b".repeat(MAX_CONTENT_TYPE_LEN - 2)),
        )
        .unwrap()
        .with_file_name("n".repeat(MAX_FILE_NAME_LEN))
        .unwrap()
        .with_dimensions(u32::MAX, 1)
        .unwrap()
        .with_duration_ms(1)
        .with_thumbnail(vec![1; MAX_THUMBNAIL_LEN])
        .unwrap();
        assert_eq!(long.to_bytes().len(), MAX_POINTER_LEN);
        check_codec(&long);
    }

    #[test]
    fn builders_refuse_what_the_decoder_refuses() {
        let key = || MediaKey::from_bytes([1; 32]);
        for id in ["", "a b", "ä", &"x".repeat(MAX_BLOB_ID_LEN + 1), "a/b"] {
            assert_eq!(
                MediaPointer::new(id, key(), 1, [0; 32], "a/b").err(),
                Some(MediaError::InvalidPointer("blob id")),
                "{id}"
            );
        }
        for content_type in ["", "ab", "/ab", "ab/", "a//b", "a/b/c", "a b/c", "text"] {
            assert_eq!(
                MediaPointer::new("id", key(), 1, [0; 32], content_type).err(),
                Some(MediaError::InvalidPointer("content type")),
                "{content_type}"
            );
        }
        assert_eq!(
            MediaPointer::new("id", key(), MAX_ATTACHMENT_LEN + 1, [0; 32], "a/b").err(),
            Some(MediaError::TooLarge {
                len: MAX_ATTACHMENT_LEN + 1
            })
        );
        assert!(minimal().with_file_name("").is_err());
        assert!(minimal().with_file_name("a\0b").is_err());
        assert!(minimal().with_file_name("n".repeat(256)).is_err());
        assert!(minimal().with_dimensions(0, 1).is_err());
        assert!(minimal().with_thumbnail(Vec::new()).is_err());
        assert!(
            minimal()
                .with_thumbnail(vec![0; MAX_THUMBNAIL_LEN + 1])
                .is_err()
        );
    }

    #[test]
    fn the_decoder_refuses_bad_fields_and_unknown_flags() {
        let bytes = minimal().to_bytes();
        let flags_at = bytes.len() - 1;
        let mut unknown = bytes.clone();
        unknown[flags_at] = 0x10;
        assert_eq!(
            MediaPointer::from_bytes(&unknown),
            Err(DecodeError::NonCanonical)
        );
        let mut version = bytes.clone();
        version[0] = 2;
        assert_eq!(
            MediaPointer::from_bytes(&version),
            Err(DecodeError::UnknownVersion(2))
        );
        let mut bad_id = bytes.clone();
        bad_id[2] = b' ';
        assert_eq!(
            MediaPointer::from_bytes(&bad_id),
            Err(DecodeError::InvalidField("blob id"))
        );
        let mut huge = bytes.clone();
        let size_at = 2 + 6 + 32;
        huge[size_at..size_at + 8].copy_from_slice(&(MAX_ATTACHMENT_LEN + 1).to_be_bytes());
        assert_eq!(MediaPointer::from_bytes(&huge), Err(DecodeError::TooLarge));
        let mut zero_width = minimal().with_dimensions(1, 1).unwrap().to_bytes();
        let at = zero_width.len() - 8;
        zero_width[at..at + 4].copy_from_slice(&[0; 4]);
        assert_eq!(
            MediaPointer::from_bytes(&zero_width),
            Err(DecodeError::InvalidField("dimensions"))
        );
        assert!(!format!("{:?}", full()).contains("7, 7"));
    }
}
