//! The one trait of every public binary format (after rustls' `Codec`).

use crate::{error::DecodeError, reader::Reader};

/// A value with one canonical binary encoding.
///
/// `write` appends the encoding; `read` takes exactly one value from a [`Reader`]. Decoding
/// is total: any input yields a value or an error, never a panic, and `from_bytes` refuses
/// inputs over [`Self::MAX_LEN`] before reading and bytes left over after the value.
pub trait Codec: Sized {
    /// What decoding fails with: [`DecodeError`], or a richer error for formats that verify
    /// a signature while decoding.
    type Error: From<DecodeError>;

    /// Longest encoding [`Self::from_bytes`] accepts (checked before anything is read).
    const MAX_LEN: usize = usize::MAX;

    /// Whether `read` takes everything left in the reader: formats that end in an unframed
    /// ciphertext (the ratchet and group messages). Such a value is only ever the last field
    /// of what carries it, and a cut or an extra byte changes the ciphertext rather than the
    /// layout, so it is the AEAD tag (or signature) that refuses it, not the decoder.
    const READS_TO_END: bool = false;

    /// Appends the encoding to `out`.
    fn write(&self, out: &mut Vec<u8>);

    /// Reads one value.
    fn read(reader: &mut Reader<'_>) -> Result<Self, Self::Error>;

    /// The encoding.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    /// Decodes exactly one value from all of `bytes`.
    fn from_bytes(bytes: &[u8]) -> Result<Self, Self::Error> {
        if bytes.len() > Self::MAX_LEN {
            return Err(DecodeError::TooLarge.into());
        }
        Reader::decode_exact(bytes, Self::read)
    }
}

impl Codec for u8 {
    type Error = DecodeError;
    fn write(&self, out: &mut Vec<u8>) {
        out.push(*self);
    }
    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.u8()
    }
}

impl Codec for u16 {
    type Error = DecodeError;
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.u16()
    }
}

impl Codec for u32 {
    type Error = DecodeError;
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.u32()
    }
}

impl Codec for u64 {
    type Error = DecodeError;
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.u64()
    }
}

/// The checks every [`Codec`] type must pass, written once: `value` round-trips byte for
/// byte, every strict prefix of its encoding is refused, and so is the encoding with one
/// byte appended. For [`Codec::READS_TO_END`] formats the layout cannot see a cut inside the
/// ciphertext, so only the empty input must be refused there. Call it from each type's
/// tests with a few representative values (other crates enable the `testing` feature in
/// their dev-dependencies).
#[cfg(any(test, feature = "testing"))]
#[allow(clippy::panic)] // A test helper: failing loudly is its job.
pub fn check_codec<T>(value: &T)
where
    T: Codec + PartialEq + std::fmt::Debug,
    T::Error: std::fmt::Debug,
{
    let bytes = value.to_bytes();
    match T::from_bytes(&bytes) {
        Ok(decoded) => {
            assert_eq!(&decoded, value, "decoded value differs");
            assert_eq!(decoded.to_bytes(), bytes, "re-encoding differs");
        }
        Err(e) => panic!("own encoding refused: {e:?}"),
    }
    if T::READS_TO_END {
        assert!(T::from_bytes(&[]).is_err(), "empty input accepted");
        return;
    }
    for cut in 0..bytes.len() {
        assert!(
            T::from_bytes(&bytes[..cut]).is_err(),
            "prefix of {cut} of {} bytes accepted",
            bytes.len()
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(T::from_bytes(&longer).is_err(), "trailing byte accepted");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_big_endian_and_checked() {
        assert_eq!(0x0102u16.to_bytes(), [1, 2]);
        assert_eq!(0x0102_0304u32.to_bytes(), [1, 2, 3, 4]);
        check_codec(&7u8);
        check_codec(&0xbeefu16);
        check_codec(&u32::MAX);
        check_codec(&0x0102_0304_0506_0708u64);
    }
}
