//! Safety numbers: Signal's numeric fingerprint scheme, computed exactly as libsignal does.
//!
//! ```text
//! H_1 = SHA-512(0x00 0x00 || key || stable_id || key)
//! H_i = SHA-512(H_{i-1} || key)                       for i = 2..=5200
//! F   = H_5200[..32]
//! digits(F) = for each 5-byte chunk c of F[..30]: (c as big-endian u40) mod 100000, 5 digits
//! displayable = digits(F_a) || digits(F_b), the lower 30 digits first (60 digits)
//! scannable   = 0x01 || F_local || F_remote        (each side's own view)
//! ```
//! `key` is the 32-byte Ed25519 identity key (the account identity once multi-device lands),
//! `stable_id` the user id. Both sides compute the same displayable number. With Signal's
//! 33-byte key encoding as `key` this reproduces libsignal's published test vector (tested
//! below); our keys are Ed25519, so the numbers themselves differ from Signal's.

use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

/// SHA-512 iterations (Signal uses 5200).
pub const FINGERPRINT_ITERATIONS: u32 = 5200;
const FINGERPRINT_VERSION: [u8; 2] = [0, 0];
const SCANNABLE_VERSION: u8 = 1;
/// Length of the scannable encoding.
pub const SCANNABLE_LEN: usize = 1 + 32 + 32;

/// A safety number between two identities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyNumber {
    displayable: String,
    scannable: [u8; SCANNABLE_LEN],
}

impl SafetyNumber {
    /// Computes the safety number between our identity and theirs.
    pub fn new(
        local_id: &[u8],
        local_key: &[u8; 32],
        remote_id: &[u8],
        remote_key: &[u8; 32],
    ) -> Self {
        let local = fingerprint(local_id, local_key);
        let remote = fingerprint(remote_id, remote_key);
        let (a, b) = (digits(&local), digits(&remote));
        let displayable = if a <= b { a + &b } else { b + &a };
        let mut scannable = [0u8; SCANNABLE_LEN];
        scannable[0] = SCANNABLE_VERSION;
        scannable[1..33].copy_from_slice(&local);
        scannable[33..].copy_from_slice(&remote);
        Self {
            displayable,
            scannable,
        }
    }

    /// 60 digits, the same on both sides.
    pub fn displayable(&self) -> &str {
        &self.displayable
    }

    /// Bytes to put in a QR code.
    pub fn scannable(&self) -> &[u8; SCANNABLE_LEN] {
        &self.scannable
    }

    /// Checks the peer's scanned code against ours (their local is our remote and vice
    /// versa), in constant time.
    pub fn matches_scanned(&self, scanned: &[u8]) -> bool {
        if scanned.len() != SCANNABLE_LEN || scanned[0] != SCANNABLE_VERSION {
            return false;
        }
        let their_local_is_our_remote = scanned[1..33].ct_eq(&self.scannable[33..]);
        let their_remote_is_our_local = scanned[33..].ct_eq(&self.scannable[1..33]);
        (their_local_is_our_remote & their_remote_is_our_local).into()
    }
}

fn fingerprint(stable_id: &[u8], key: &[u8]) -> [u8; 32] {
    let mut hash = Sha512::new()
        .chain_update(FINGERPRINT_VERSION)
        .chain_update(key)
        .chain_update(stable_id)
        .chain_update(key)
        .finalize();
    for _ in 1..FINGERPRINT_ITERATIONS {
        hash = Sha512::new()
            .chain_update(hash)
            .chain_update(key)
            .finalize();
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&hash[..32]);
    out
}

fn digits(fingerprint: &[u8; 32]) -> String {
    fingerprint[..30]
        .chunks_exact(5)
        .map(|c| {
            let value = c.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            format!("{:05}", value % 100_000)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_agree_and_scans_match() {
        let alice = SafetyNumber::new(b"alice", &[1; 32], b"bob", &[2; 32]);
        let bob = SafetyNumber::new(b"bob", &[2; 32], b"alice", &[1; 32]);
        assert_eq!(alice.displayable(), bob.displayable());
        assert_eq!(alice.displayable().len(), 60);
        assert!(alice.displayable().bytes().all(|b| b.is_ascii_digit()));
        assert!(alice.matches_scanned(bob.scannable()));
        assert!(bob.matches_scanned(alice.scannable()));
        assert!(!alice.matches_scanned(alice.scannable()));
    }

    /// libsignal's `fingerprint_test_v1` vector (33-byte Curve25519 keys, 5200 iterations).
    #[test]
    fn matches_libsignal_published_vector() {
        let alice_key =
            hex::decode("0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868")
                .unwrap();
        let bob_key =
            hex::decode("05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b")
                .unwrap();
        let alice = fingerprint(b"+14152222222", &alice_key);
        let bob = fingerprint(b"+14153333333", &bob_key);
        assert_eq!(
            hex::encode(alice),
            "1e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df"
        );
        assert_eq!(
            hex::encode(bob),
            "d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d"
        );
        let (a, b) = (digits(&alice), digits(&bob));
        let displayable = if a <= b { a + &b } else { b + &a };
        assert_eq!(
            displayable,
            "300354477692869396892869876765458257569162576843440918079131"
        );
    }

    #[test]
    fn different_keys_give_different_numbers() {
        let a = SafetyNumber::new(b"alice", &[1; 32], b"bob", &[2; 32]);
        let b = SafetyNumber::new(b"alice", &[1; 32], b"bob", &[3; 32]);
        assert_ne!(a.displayable(), b.displayable());
        assert!(
            !a.matches_scanned(SafetyNumber::new(b"bob", &[3; 32], b"alice", &[1; 32]).scannable())
        );
        assert!(!a.matches_scanned(&[1; 10]));
    }
}
