//! Optional app tokens: compact JWS (JWT) signed with Ed25519 (`alg: EdDSA`, RFC 8037) or
//! ECDSA P-256 (`alg: ES256`, RFC 7518).
//!
//! An app that has its own login configures its public key; the key server then requires a
//! token whose `sub` is the user id to register that user's account or devices. The key fixes
//! the algorithm (a 32-byte key is Ed25519, a 33- or 65-byte SEC1 point is P-256) and a token
//! must name exactly that one: no negotiation, so no `none`/HMAC confusion. `exp` is required.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::Signature;
use p256::ecdsa::signature::Verifier;
use serde::Deserialize;

/// Longest token accepted.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Tolerated clock skew for `exp` and `nbf`.
const LEEWAY_SECS: u64 = 60;

/// The app's token verifying key; it fixes the accepted algorithm.
#[derive(Debug, Clone)]
pub(crate) enum AppKey {
    /// `alg: EdDSA`.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// `alg: ES256`.
    P256(p256::ecdsa::VerifyingKey),
}

impl AppKey {
    /// A 32-byte Ed25519 key or a SEC1-encoded P-256 point (33 or 65 bytes).
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        match bytes.len() {
            32 => {
                let array: [u8; 32] = bytes.try_into().ok()?;
                ed25519_dalek::VerifyingKey::from_bytes(&array)
                    .ok()
                    .map(Self::Ed25519)
            }
            33 | 65 => p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
                .ok()
                .map(Self::P256),
            _ => None,
        }
    }

    fn alg(&self) -> &'static str {
        match self {
            Self::Ed25519(_) => "EdDSA",
            Self::P256(_) => "ES256",
        }
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> Result<(), &'static str> {
        match self {
            Self::Ed25519(key) => {
                let sig = Signature::from_slice(sig).map_err(|_| "token signature length")?;
                key.verify_strict(message, &sig)
                    .map_err(|_| "token signature invalid")
            }
            Self::P256(key) => {
                // JWS carries r || s (64 bytes), not DER.
                let sig = p256::ecdsa::Signature::from_slice(sig)
                    .map_err(|_| "token signature length")?;
                key.verify(message, &sig)
                    .map_err(|_| "token signature invalid")
            }
        }
    }
}

/// How app tokens are checked.
#[derive(Debug, Clone)]
pub(crate) struct JwtVerifier {
    pub(crate) key: AppKey,
    pub(crate) issuer: Option<String>,
    pub(crate) audience: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    nbf: Option<u64>,
    iss: Option<String>,
    aud: Option<Audience>,
}

impl JwtVerifier {
    /// Verifies `token` and returns its subject (the app's user id).
    pub(crate) fn verify(&self, token: &str, now: u64) -> Result<String, &'static str> {
        if token.len() > MAX_TOKEN_LEN {
            return Err("token too long");
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a compact JWS");
        };
        let decode = |s: &str| {
            URL_SAFE_NO_PAD
                .decode(s)
                .map_err(|_| "token part not base64url")
        };
        let header: Header =
            serde_json::from_slice(&decode(header)?).map_err(|_| "token header not JSON")?;
        if header.alg != self.key.alg() {
            return Err("token algorithm does not match the configured key");
        }
        let signed_len = token.len() - token.rsplit('.').next().map_or(0, str::len) - 1;
        self.key
            .verify(&token.as_bytes()[..signed_len], &decode(sig)?)?;
        let claims: Claims =
            serde_json::from_slice(&decode(payload)?).map_err(|_| "token claims invalid")?;
        if now >= claims.exp.saturating_add(LEEWAY_SECS) {
            return Err("token expired");
        }
        if claims
            .nbf
            .is_some_and(|nbf| now.saturating_add(LEEWAY_SECS) < nbf)
        {
            return Err("token not yet valid");
        }
        if let Some(issuer) = &self.issuer
            && claims.iss.as_deref() != Some(issuer.as_str())
        {
            return Err("token issuer");
        }
        if let Some(audience) = &self.audience {
            let ok = match &claims.aud {
                Some(Audience::One(a)) => a == audience,
                Some(Audience::Many(list)) => list.iter().any(|a| a == audience),
                None => false,
            };
            if !ok {
                return Err("token audience");
            }
        }
        Ok(claims.sub)
    }
}

/// Builds an EdDSA JWT (tests and the benchmark play the app's login service with it).
pub fn sign_app_token(key: &ed25519_dalek::SigningKey, claims: &serde_json::Value) -> String {
    use ed25519_dalek::Signer;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let sig = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use rand_core::OsRng;
    use serde_json::json;

    use super::*;

    fn verifier(key: &SigningKey) -> JwtVerifier {
        JwtVerifier {
            key: AppKey::Ed25519(key.verifying_key()),
            issuer: Some("app".into()),
            audience: Some("keys".into()),
        }
    }

    #[test]
    fn accepts_valid_and_rejects_bad_tokens() {
        let key = SigningKey::generate(&mut OsRng);
        let v = verifier(&key);
        let good = json!({"sub": "alice", "exp": 2_000, "iss": "app", "aud": ["x", "keys"]});
        assert_eq!(
            v.verify(&sign_app_token(&key, &good), 1_000),
            Ok("alice".into())
        );
        let expired = json!({"sub": "alice", "exp": 900, "iss": "app", "aud": "keys"});
        assert_eq!(
            v.verify(&sign_app_token(&key, &expired), 1_000),
            Err("token expired")
        );
        let wrong_iss = json!({"sub": "alice", "exp": 2_000, "iss": "evil", "aud": "keys"});
        assert_eq!(
            v.verify(&sign_app_token(&key, &wrong_iss), 1_000),
            Err("token issuer")
        );
        let no_aud = json!({"sub": "alice", "exp": 2_000, "iss": "app"});
        assert_eq!(
            v.verify(&sign_app_token(&key, &no_aud), 1_000),
            Err("token audience")
        );
        let other = SigningKey::generate(&mut OsRng);
        assert_eq!(
            v.verify(&sign_app_token(&other, &good), 1_000),
            Err("token signature invalid")
        );
        let token = sign_app_token(&key, &good);
        let (signing_input, _) = token.rsplit_once('.').unwrap();
        let (_, payload) = signing_input.split_once('.').unwrap();
        let none = format!(
            "{}.{payload}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#)
        );
        assert_eq!(
            v.verify(&none, 1_000),
            Err("token algorithm does not match the configured key")
        );
        assert!(v.verify("a.b", 1_000).is_err());
        // An ES256 token is refused by an EdDSA-configured server, even if well formed.
        let es = format!(
            "{}.{payload}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256"}"#),
            URL_SAFE_NO_PAD.encode([0u8; 64])
        );
        assert_eq!(
            v.verify(&es, 1_000),
            Err("token algorithm does not match the configured key")
        );
        assert!(v.verify("!.!.!", 1_000).is_err());
    }

    #[test]
    fn es256_tokens() {
        use p256::ecdsa::{Signature, SigningKey, signature::Signer};
        let key = SigningKey::random(&mut OsRng);
        let public = key.verifying_key().to_encoded_point(true);
        let v = JwtVerifier {
            key: AppKey::from_bytes(public.as_bytes()).unwrap(),
            issuer: None,
            audience: None,
        };
        let sign = |key: &SigningKey, alg: &str| {
            let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}"}}"#));
            let payload = URL_SAFE_NO_PAD.encode(r#"{"sub":"bob","exp":2000}"#);
            let input = format!("{header}.{payload}");
            let sig: Signature = key.sign(input.as_bytes());
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
        };
        assert_eq!(v.verify(&sign(&key, "ES256"), 1_000), Ok("bob".into()));
        let other = SigningKey::random(&mut OsRng);
        assert_eq!(
            v.verify(&sign(&other, "ES256"), 1_000),
            Err("token signature invalid")
        );
        assert_eq!(
            v.verify(&sign(&key, "EdDSA"), 1_000),
            Err("token algorithm does not match the configured key")
        );
        let uncompressed = key.verifying_key().to_encoded_point(false);
        assert!(AppKey::from_bytes(uncompressed.as_bytes()).is_some());
        assert!(AppKey::from_bytes(&[9u8; 33]).is_none());
        assert!(AppKey::from_bytes(&[0u8; 40]).is_none());
    }
}
