//! Accounts, devices and signed device lists.

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::{delete, get, post, put},
};
use e2ee_core::{
    Codec, DeviceAddress, IdentityDecodeError, UserId,
    device::{AccountIdentityKey, ConsentAction, DeviceCertificate, DeviceList},
};
use serde::{Deserialize, Serialize};

use super::{ApiJson, ApiPath, AppState, AuthDevice, b64, bearer, enc, parse_user_id};
use crate::DeviceRemoval;
use crate::{
    auth,
    clock::{now_ms, now_secs},
    consent::verified_consent,
    error::{ApiError, ErrorCode},
    storage::{NewDevice, StoreError, StoredDevice},
};

/// The header that carries the account key's consent to a removal (base64 `AccountConsent`).
pub(crate) const CONSENT_HEADER: &str = "e2ee-account-consent";

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/accounts", post(register_account))
        .route("/v1/accounts/{user_id}", get(get_account))
        .route("/v1/accounts/{user_id}/devices", post(register_device))
        .route(
            "/v1/accounts/{user_id}/devices/{device_id}",
            delete(remove_device),
        )
        .route("/v1/device-list", put(put_device_list))
        .route("/v1/device-list/{user_id}", get(get_device_list))
}

#[derive(Deserialize)]
struct RegisterAccount {
    user_id: String,
    account_key: String,
    device_certificate: String,
}

#[derive(Deserialize)]
struct RegisterDevice {
    device_certificate: String,
    /// The account key's fresh consent to enrol this certificate's device.
    consent: String,
}

#[derive(Serialize)]
struct Registered {
    user_id: String,
    device_id: u32,
    /// Shown once; the server keeps only a salted hash.
    credential: String,
}

#[derive(Serialize)]
struct AccountView {
    user_id: String,
    account_key: String,
    devices: Vec<DeviceView>,
}

#[derive(Serialize)]
struct DeviceView {
    device_id: u32,
    identity_key: String,
    certificate: String,
}

#[derive(Deserialize)]
struct PutDeviceList {
    device_list: String,
}

#[derive(Serialize)]
struct DeviceListView {
    user_id: String,
    version: u64,
    device_list: String,
    account_key: String,
}

/// With app tokens configured, registration must carry one whose subject is `user_id`.
fn check_app_token(state: &AppState, headers: &HeaderMap, user: &UserId) -> Result<(), ApiError> {
    let Some(jwt) = &state.jwt else {
        return Ok(());
    };
    let token =
        bearer(headers).ok_or_else(|| ApiError::unauthorized("missing app token (Bearer JWT)"))?;
    let subject = jwt
        .verify(token, now_secs())
        .map_err(|why| ApiError::unauthorized(format!("app token refused: {why}")))?;
    if subject != user.as_str() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "app token is for another user",
        ));
    }
    Ok(())
}

/// Decodes a certificate for `user` and verifies it under `account`.
fn certified_device(
    text: &str,
    user: &UserId,
    account: &AccountIdentityKey,
) -> Result<(DeviceCertificate, Vec<u8>), ApiError> {
    let bytes = b64("device_certificate", text)?;
    let cert = DeviceCertificate::from_bytes(&bytes)
        .map_err(|e| ApiError::bad_identity("device_certificate", e))?;
    if cert.address().user != *user {
        return Err(ApiError::new(
            ErrorCode::CertificateMismatch,
            "device certificate is for another user",
        ));
    }
    cert.verify(account)
        .map_err(|e| ApiError::bad_signature("device_certificate", e))?;
    Ok((cert, bytes))
}

fn new_device(
    cert: &DeviceCertificate,
    bytes: Vec<u8>,
    enrolled_at_ms: u64,
) -> (NewDevice, String) {
    let credential = auth::mint(cert.address());
    let device = NewDevice {
        device_id: cert.device_id(),
        identity_key: cert.identity().to_bytes().to_vec(),
        certificate: bytes,
        binding: cert.binding().to_bytes(),
        credential_salt: credential.salt,
        credential_hash: credential.hash,
        enrolled_at_ms: ms_i64(enrolled_at_ms),
    };
    (device, credential.token)
}

/// A device identity key registers once: a key another account (or another device) already
/// holds is refused, so no account can list another user's device here (clients refuse it
/// anyway, through the device's own binding).
fn identity_in_use() -> ApiError {
    StoreError::IdentityInUse.into()
}

fn now_i64() -> i64 {
    i64::try_from(now_secs()).unwrap_or(i64::MAX)
}

fn ms_i64(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

async fn register_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RegisterAccount>,
) -> Result<(StatusCode, ApiJson<Registered>), ApiError> {
    let user = parse_user_id(body.user_id)?;
    check_app_token(&state, &headers, &user)?;
    let key_bytes = b64("account_key", &body.account_key)?;
    let account = AccountIdentityKey::from_bytes(&key_bytes)
        .map_err(|e| ApiError::bad_key("account_key", e))?;
    let (cert, cert_bytes) = certified_device(&body.device_certificate, &user, &account)?;
    let (device, credential) = new_device(&cert, cert_bytes, now_ms());
    match state
        .0
        .store
        .create_account(&user, &key_bytes, &device, now_i64())
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Err(ApiError::new(
                ErrorCode::UserExists,
                "user id already registered",
            ));
        }
        Err(StoreError::IdentityInUse) => return Err(identity_in_use()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(device_id = cert.device_id(), "account registered");
    Ok((
        StatusCode::CREATED,
        ApiJson(Registered {
            user_id: user.to_string(),
            device_id: cert.device_id(),
            credential,
        }),
    ))
}

/// The account key of a registered user, or `unknown_user`.
pub(super) async fn account_key(
    state: &AppState,
    user: &UserId,
) -> Result<(AccountIdentityKey, Vec<u8>), ApiError> {
    let bytes = state
        .0
        .store
        .account_key(user)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownUser, "no such user"))?;
    let key = AccountIdentityKey::from_bytes(&bytes).map_err(|e| {
        tracing::error!(error = %e, "stored account key does not decode");
        ApiError::internal()
    })?;
    Ok((key, bytes))
}

async fn register_device(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RegisterDevice>,
) -> Result<(StatusCode, ApiJson<Registered>), ApiError> {
    let user = parse_user_id(user_id)?;
    check_app_token(&state, &headers, &user)?;
    let (account, _) = account_key(&state, &user).await?;
    // The certificate says the account admitted the device once; it is public and never
    // expires, so only a fresh consent says "now" (and only if the device was not removed
    // after it was signed, which the store checks).
    let (cert, cert_bytes) = certified_device(&body.device_certificate, &user, &account)?;
    let consent = verified_consent(
        "consent",
        &body.consent,
        &account,
        ConsentAction::Enrol,
        &cert,
        now_ms(),
    )?;
    let (device, credential) = new_device(&cert, cert_bytes, consent.issued_at_ms());
    match state.store.add_device(&user, &device, now_i64()).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Err(ApiError::new(
                ErrorCode::DeviceExists,
                "device id already registered",
            ));
        }
        Err(StoreError::IdentityInUse) => return Err(identity_in_use()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(device_id = cert.device_id(), "device registered");
    Ok((
        StatusCode::CREATED,
        ApiJson(Registered {
            user_id: user.to_string(),
            device_id: cert.device_id(),
            credential,
        }),
    ))
}

async fn get_account(
    State(state): State<AppState>,
    _auth: AuthDevice,
    ApiPath(user_id): ApiPath<String>,
) -> Result<ApiJson<AccountView>, ApiError> {
    let user = parse_user_id(user_id)?;
    let (_, key_bytes) = account_key(&state, &user).await?;
    let devices = state.store.devices(&user).await?;
    Ok(ApiJson(AccountView {
        user_id: user.to_string(),
        account_key: enc(&key_bytes),
        devices: devices
            .into_iter()
            .map(|d| DeviceView {
                device_id: d.device_id,
                identity_key: enc(&d.identity_key),
                certificate: enc(&d.certificate),
            })
            .collect(),
    }))
}

/// Removes a device of the caller's own account (a lost phone, or signing out): its
/// credential stops working at once, its keys are no longer served, its relay tickets stop
/// opening connections, and it can come back only with a consent signed after now. Removing
/// the device that holds the account key needs the account key's consent too (header
/// [`CONSENT_HEADER`]), so no other device can lock the owner out.
async fn remove_device(
    State(state): State<AppState>,
    AuthDevice(auth): AuthDevice,
    headers: HeaderMap,
    ApiPath((user_id, device_id)): ApiPath<(String, u32)>,
) -> Result<StatusCode, ApiError> {
    let removed = DeviceAddress {
        user: parse_user_id(user_id)?,
        device: device_id,
    };
    if removed.user != auth.user {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "a device may only remove devices of its own account",
        ));
    }
    let consent = match headers.get(CONSENT_HEADER) {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| {
            ApiError::new(ErrorCode::InvalidBase64, "e2ee-account-consent: not base64")
        })?),
    };
    let (account, _) = account_key(&state, &removed.user).await?;
    let now = now_ms();
    let authorize = |device: &StoredDevice| -> Result<(), ApiError> {
        let Some(text) = consent else {
            if device.holds_account_key {
                return Err(ApiError::new(
                    ErrorCode::ConsentRequired,
                    "removing the device that holds the account key needs the account key's \
                     consent (e2ee-account-consent)",
                ));
            }
            return Ok(());
        };
        let cert = DeviceCertificate::from_bytes(&device.certificate).map_err(|e| {
            tracing::error!(error = %e, "stored certificate does not decode");
            ApiError::internal()
        })?;
        let consent = verified_consent(
            CONSENT_HEADER,
            text,
            &account,
            ConsentAction::Remove,
            &cert,
            now,
        )?;
        if ms_i64(consent.issued_at_ms()) <= device.enrolled_at_ms {
            return Err(ApiError::new(
                ErrorCode::StaleConsent,
                "the consent was signed before the device was enrolled",
            ));
        }
        Ok(())
    };
    if state
        .store
        .remove_device(&removed, ms_i64(now), authorize)
        .await?
        .is_none()
    {
        return Err(ApiError::new(ErrorCode::UnknownDevice, "no such device"));
    }
    tracing::info!(device = %removed, by = auth.device, "device removed");
    let removal = DeviceRemoval {
        device: removed,
        removed_at_ms: now,
    };
    if let Some(hook) = state.device_removed.get() {
        (hook.0)(&removal);
    }
    if let Some(feed) = &state.removal_feed {
        feed.publish(&removal).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn put_device_list(
    State(state): State<AppState>,
    AuthDevice(auth): AuthDevice,
    ApiJson(body): ApiJson<PutDeviceList>,
) -> Result<ApiJson<DeviceListView>, ApiError> {
    let bytes = b64("device_list", &body.device_list)?;
    let list = DeviceList::from_bytes(&bytes).map_err(|e| match e {
        // A list that does not decode is an invalid list (as documented), whatever part of
        // it failed; a bad signature inside it is still `invalid_signature`.
        IdentityDecodeError::Decode(d) => {
            ApiError::new(ErrorCode::InvalidDeviceList, format!("device_list: {d}"))
        }
        IdentityDecodeError::Key(k) => ApiError::bad_signature("device_list", k),
    })?;
    if *list.user_id() != auth.user {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "a device may only publish its own account's device list",
        ));
    }
    let (account, key_bytes) = account_key(&state, &auth.user).await?;
    list.verify(&account)
        .map_err(|e| ApiError::bad_signature("device_list", e))?;
    let version = i64::try_from(list.version())
        .map_err(|_| ApiError::new(ErrorCode::InvalidDeviceList, "version must be below 2^63"))?;
    if !state
        .0
        .store
        .put_device_list(&auth.user, version, &bytes)
        .await?
    {
        return Err(ApiError::new(
            ErrorCode::StaleDeviceList,
            "device list version is not greater than the stored one",
        ));
    }
    Ok(ApiJson(DeviceListView {
        user_id: auth.user.to_string(),
        version: list.version(),
        device_list: enc(&bytes),
        account_key: enc(&key_bytes),
    }))
}

async fn get_device_list(
    State(state): State<AppState>,
    _auth: AuthDevice,
    ApiPath(user_id): ApiPath<String>,
) -> Result<ApiJson<DeviceListView>, ApiError> {
    let user = parse_user_id(user_id)?;
    let (_, key_bytes) = account_key(&state, &user).await?;
    let bytes = state
        .0
        .store
        .device_list(&user)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NoDeviceList, "user has no device list"))?;
    let list = DeviceList::from_bytes(&bytes).map_err(|e| {
        tracing::error!(error = %e, "stored device list does not decode");
        ApiError::internal()
    })?;
    Ok(ApiJson(DeviceListView {
        user_id: user.to_string(),
        version: list.version(),
        device_list: enc(&bytes),
        account_key: enc(&key_bytes),
    }))
}
