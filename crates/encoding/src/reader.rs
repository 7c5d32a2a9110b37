//! A bounded reader and canonical LEB128 varints.
//!
//! Every decoder in the workspace reads through [`Reader`], which hands out sub-slices of the
//! input, never allocates more than the input justifies, and lets callers reject trailing
//! bytes. All fixed-width integers are big-endian.

use crate::error::DecodeError;

/// A cursor over an input slice.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// Decodes all of `bytes` with `read`, refusing trailing bytes.
    pub fn decode_exact<T, E: From<DecodeError>>(
        bytes: &'a [u8],
        read: impl FnOnce(&mut Reader<'a>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut reader = Reader::new(bytes);
        let value = read(&mut reader)?;
        reader.finish()?;
        Ok(value)
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// Takes `len` bytes or fails with [`DecodeError::Truncated`].
    pub fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < len {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        Ok(head)
    }

    /// Takes exactly `N` bytes.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// The next byte without taking it (`None` at the end): for formats whose first byte
    /// tells two alternatives apart.
    pub fn peek(&self) -> Option<u8> {
        self.bytes.first().copied()
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A flag byte: exactly `0x00` or `0x01`, anything else is [`DecodeError::NonCanonical`].
    pub fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::NonCanonical),
        }
    }

    /// A canonical (shortest-form) LEB128 varint that fits in a `u32`.
    pub fn varint(&mut self) -> Result<u32, DecodeError> {
        let mut value: u64 = 0;
        for i in 0..5 {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                // A last byte of zero (other than the value 0 itself) is a padded encoding.
                if byte == 0 && i > 0 {
                    return Err(DecodeError::NonCanonical);
                }
                return u32::try_from(value).map_err(|_| DecodeError::NonCanonical);
            }
        }
        Err(DecodeError::NonCanonical)
    }

    /// Everything not yet read.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    /// Fails unless the whole input was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

/// Appends the shortest LEB128 encoding of `value`.
pub fn put_varint(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn varint_rejects_padding_and_overflow() {
        assert_eq!(Reader::new(&[0x00]).varint(), Ok(0));
        assert_eq!(
            Reader::new(&[0x80, 0x00]).varint(),
            Err(DecodeError::NonCanonical)
        );
        assert_eq!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x0f]).varint(),
            Ok(u32::MAX)
        );
        assert_eq!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x10]).varint(),
            Err(DecodeError::NonCanonical)
        );
        assert_eq!(
            Reader::new(&[0xff; 6]).varint(),
            Err(DecodeError::NonCanonical)
        );
        assert_eq!(Reader::new(&[0x80]).varint(), Err(DecodeError::Truncated));
    }

    #[test]
    fn flags_are_zero_or_one() {
        assert_eq!(Reader::new(&[0]).flag(), Ok(false));
        assert_eq!(Reader::new(&[1]).flag(), Ok(true));
        assert_eq!(Reader::new(&[2]).flag(), Err(DecodeError::NonCanonical));
        assert_eq!(Reader::new(&[]).flag(), Err(DecodeError::Truncated));
    }

    proptest! {
        #[test]
        fn varint_round_trips_canonically(value: u32) {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            let mut reader = Reader::new(&out);
            prop_assert_eq!(reader.varint(), Ok(value));
            prop_assert!(reader.finish().is_ok());
        }
    }
}
