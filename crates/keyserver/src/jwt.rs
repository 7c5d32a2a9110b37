//! Optional app tokens: compact JWS (JWT) signed with Ed25519 (`alg: EdDSA`, RFC 8037).
//!
//! An app that has its own login configures its public key; the key server then requires a
//! token whose `sub` is the user id to register that user's account or devices. Only EdDSA is
//! accepted (no algorithm negotiation, so no `none`/HMAC confusion); `exp` is required.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;

/// Longest token accepted.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Tolerated clock skew for `exp` and `nbf`.
const LEEWAY_SECS: u64 = 60;

/// How app tokens are checked.
#[derive(Debug, Clone)]
pub(crate) struct JwtVerifier {
    pub(crate) key: VerifyingKey,
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
        if header.alg != "EdDSA" {
            return Err("token algorithm must be EdDSA");
        }
        let sig = Signature::from_slice(&decode(sig)?).map_err(|_| "token signature length")?;
        let signed_len = token.len() - token.rsplit('.').next().map_or(0, str::len) - 1;
        self.key
            .verify_strict(&token.as_bytes()[..signed_len], &sig)
            .map_err(|_| "token signature invalid")?;
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
            key: key.verifying_key(),
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
        assert_eq!(v.verify(&none, 1_000), Err("token algorithm must be EdDSA"));
        assert!(v.verify("a.b", 1_000).is_err());
        assert!(v.verify("!.!.!", 1_000).is_err());
    }
}
