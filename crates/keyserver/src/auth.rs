//! Device credentials: a random secret returned once at registration, stored only as a
//! salted hash, compared in constant time.
//!
//! ```text
//! credential (what the device sends)  = "dc1." || b64url(user_id) || "." || device_id || "." || b64url(secret)
//! stored hash                         = SHA-256("E2EE-v1 keyserver credential" || salt (16) || secret (32))
//! ```
//!
//! The secret is 256 random bits, so a fast salted hash is enough (no password stretching
//! is needed for a secret nobody chose); the per-device salt keeps equal secrets from
//! producing equal hashes and stops precomputation across devices.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use e2ee_encoding::DeviceAddress;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

type Secret = Zeroizing<[u8; SECRET_LEN]>;

const CREDENTIAL_CONTEXT: &[u8] = b"E2EE-v1 keyserver credential";
const PREFIX: &str = "dc1";
const SECRET_LEN: usize = 32;
const SALT_LEN: usize = 16;

/// A freshly minted credential: the token for the device, the salt and hash for storage.
pub(crate) struct NewCredential {
    pub(crate) token: String,
    pub(crate) salt: Vec<u8>,
    pub(crate) hash: Vec<u8>,
}

impl std::fmt::Debug for NewCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCredential").finish_non_exhaustive()
    }
}

/// Mints a credential for a device.
pub(crate) fn mint(device: &DeviceAddress) -> NewCredential {
    let mut secret: Secret = Zeroizing::new([0u8; SECRET_LEN]);
    OsRng.fill_bytes(secret.as_mut());
    let mut salt = vec![0u8; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    let hash = hash(&salt, secret.as_ref()).to_vec();
    let token = format!(
        "{PREFIX}.{}.{}.{}",
        URL_SAFE_NO_PAD.encode(device.user_id()),
        device.device,
        URL_SAFE_NO_PAD.encode(secret.as_ref())
    );
    NewCredential { token, salt, hash }
}

fn hash(salt: &[u8], secret: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(CREDENTIAL_CONTEXT);
    h.update(salt);
    h.update(secret);
    h.finalize().into()
}

/// A credential as presented: who it claims to be and the secret to check.
pub(crate) struct Presented {
    pub(crate) device: DeviceAddress,
    secret: Secret,
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// Parses a credential token; `None` if it is not one (a user id breaking the user-id rule
/// included).
pub(crate) fn parse(token: &str) -> Option<Presented> {
    if token.len() > 512 {
        return None;
    }
    let mut parts = token.split('.');
    let (Some(PREFIX), Some(user), Some(device), Some(secret), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let user_id = String::from_utf8(URL_SAFE_NO_PAD.decode(user).ok()?).ok()?;
    // Canonical decimal only: no sign, no leading zeros.
    if device.is_empty() || (device.len() > 1 && device.starts_with('0')) || device.starts_with('+')
    {
        return None;
    }
    let device_id = device.parse().ok()?;
    let decoded = Zeroizing::new(URL_SAFE_NO_PAD.decode(secret).ok()?);
    let secret: [u8; SECRET_LEN] = decoded.as_slice().try_into().ok()?;
    Some(Presented {
        device: DeviceAddress::new(user_id, device_id).ok()?,
        secret: Zeroizing::new(secret),
    })
}

impl Presented {
    /// Constant-time check of the secret against a stored salt and hash.
    pub(crate) fn matches(&self, salt: &[u8], stored_hash: &[u8]) -> bool {
        hash(salt, self.secret.as_ref()).ct_eq(stored_hash).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mint_parse_match() {
        let alice = DeviceAddress::new("al.ice:1", 7).unwrap();
        let c = mint(&alice);
        let p = parse(&c.token).unwrap();
        assert_eq!(p.device, alice);
        assert!(p.matches(&c.salt, &c.hash));
        let other = mint(&alice);
        assert!(!p.matches(&other.salt, &other.hash));
        assert!(!p.matches(&c.salt, &c.hash[..31]));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let c = mint(&DeviceAddress::new("bob", 1).unwrap());
        for bad in [
            "",
            "dc1",
            "dc2.Ym9i.1.AAAA",
            "dc1.Ym9i.01.AAAA",
            "dc1.Ym9i.+1.AAAA",
            "dc1.Ym9i.x.AAAA",
            "dc1.Ym9i.1.AAAA",
            "dc1.!!.1.AAAA",
            "dc1.Ym9i.4294967296.AAAA",
            // A user id with a NUL ("a\0b"), with a valid secret.
            format!("dc1.YQBi.1.{}", URL_SAFE_NO_PAD.encode([0u8; SECRET_LEN])).as_str(),
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        assert!(parse(&format!("{}.x", c.token)).is_none());
        assert!(format!("{:?}", parse(&c.token).unwrap()).contains("bob"));
        assert!(!format!("{c:?}").contains(&c.token));
    }
}
