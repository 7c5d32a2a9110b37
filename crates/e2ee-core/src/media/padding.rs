//! Size buckets: an attachment is padded with zeros to the next bucket before encryption, so
//! the blob store learns the bucket, not the size (the pointer carries the real size).
//!
//! ```text
//! B(0) = 541,  B(k + 1) = floor(B(k) * 21 / 20)
//! padded_len(n) = the smallest B(k) >= n
//! ```
//!
//! This is Signal's rule (`max(541, floor(1.05^ceil(log_1.05 n)))`) computed in integers, so
//! every implementation gets the same bucket with no floating point: steps of about 5%, a
//! padding overhead of at most 5%, and about 350 buckets up to the format's 16 GiB.

use super::{MAX_ATTACHMENT_LEN, MediaError};

/// The smallest bucket: every attachment, however small, is at least this long when sealed.
pub const MIN_PADDED_LEN: u64 = 541;

/// The bucket `len` is padded to.
pub fn padded_len(len: u64) -> Result<u64, MediaError> {
    if len > MAX_ATTACHMENT_LEN {
        return Err(MediaError::TooLarge { len });
    }
    let mut bucket = MIN_PADDED_LEN;
    while bucket < len {
        // No overflow: bucket < len <= 16 GiB, so bucket * 21 < 2^40.
        bucket = bucket * 21 / 20;
    }
    Ok(bucket)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_first_buckets_and_the_limit() {
        assert_eq!(padded_len(0), Ok(541));
        assert_eq!(padded_len(541), Ok(541));
        assert_eq!(padded_len(542), Ok(568));
        assert_eq!(padded_len(568), Ok(568));
        assert_eq!(padded_len(569), Ok(596));
        assert!(padded_len(MAX_ATTACHMENT_LEN).is_ok());
        assert_eq!(
            padded_len(MAX_ATTACHMENT_LEN + 1),
            Err(MediaError::TooLarge {
                len: MAX_ATTACHMENT_LEN + 1
            })
        );
    }

    proptest! {
        /// The bucket holds the size, costs at most 5% (plus the floor), and is close to
        /// Signal's floating-point rule.
        #[test]
        fn buckets_hold_the_size_within_five_percent(len in 0..=MAX_ATTACHMENT_LEN) {
            let padded = padded_len(len).unwrap();
            prop_assert!(padded >= len);
            prop_assert!(padded <= (len * 21 / 20).max(MIN_PADDED_LEN) + 1);
            let exponent = ((len.max(1) as f64).ln() / 1.05f64.ln()).ceil();
            let signal = 1.05f64.powf(exponent).floor().max(541.0);
            prop_assert!((padded as f64) <= signal * 1.06 && (padded as f64) * 1.06 >= signal);
            if padded <= MAX_ATTACHMENT_LEN {
                prop_assert_eq!(padded_len(padded).unwrap(), padded);
            }
        }
    }
}
