//! The account key's consent to a device change ([`AccountConsent`]): decoded, checked
//! against the device's certificate and the account key, and refused when it is not fresh.
//!
//! A consent is only ever sent to this server, but it could still leak (a log, a proxy), so
//! it is honoured only within [`CONSENT_MAX_AGE_MS`] of its signing, and never for a device
//! removed after it was signed (the store's tombstones) or enrolled after it was signed.

use e2ee_core::{
    Codec,
    device::{AccountConsent, AccountIdentityKey, ConsentAction, DeviceCertificate},
};

use crate::{
    error::{ApiError, ErrorCode},
    http::b64,
};

/// How old a consent may be when it arrives: ten minutes, time enough for a slow link, short
/// enough that a leaked consent is soon worthless.
pub(crate) const CONSENT_MAX_AGE_MS: u64 = 10 * 60 * 1000;
/// How far in the future a consent may claim to be signed (the signer's clock runs ahead).
pub(crate) const CONSENT_MAX_FUTURE_MS: u64 = 60 * 1000;

/// Decodes the base64 consent in field `what`, checks that `account` signed `action` on
/// `certificate`, and that it was signed within the window around `now_ms`.
pub(crate) fn verified_consent(
    what: &str,
    text: &str,
    account: &AccountIdentityKey,
    action: ConsentAction,
    certificate: &DeviceCertificate,
    now_ms: u64,
) -> Result<AccountConsent, ApiError> {
    let bytes = b64(what, text)?;
    let consent = AccountConsent::from_bytes(&bytes)
        .map_err(|e| ApiError::new(ErrorCode::InvalidConsent, format!("{what}: {e}")))?;
    consent
        .verify(account, action, certificate)
        .map_err(|e| ApiError::bad_signature(what, e))?;
    let signed = consent.issued_at_ms();
    if signed < now_ms.saturating_sub(CONSENT_MAX_AGE_MS) {
        return Err(ApiError::new(
            ErrorCode::StaleConsent,
            format!("{what} was signed more than {CONSENT_MAX_AGE_MS} ms ago"),
        ));
    }
    if signed > now_ms.saturating_add(CONSENT_MAX_FUTURE_MS) {
        return Err(ApiError::new(
            ErrorCode::StaleConsent,
            format!("{what} is dated more than {CONSENT_MAX_FUTURE_MS} ms in the future"),
        ));
    }
    Ok(consent)
}
