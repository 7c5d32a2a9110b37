//! Prekey uploads, counts and bundle fetches.

use std::{collections::HashSet, time::Instant};

use axum::{
    Router,
    extract::State,
    routing::{get, post},
};
use e2ee_core::{
    Codec, DeviceAddress, EncodedBundleParts, IdentityKey, KemPreKeyKind, KemPreKeyPublic,
    OneTimePreKeyPublic, PreKeyBundle, SignedPreKeyPublic, UserId, limits::MAX_PREKEY_BATCH,
};
use serde::{Deserialize, Serialize};

use super::{ApiJson, ApiPath, AppState, AuthDevice, b64, enc, parse_user_id};
use crate::{
    error::{ApiError, ErrorCode},
    storage::{BundleParts, KeyUpload, PreKeyCounts},
};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/keys", post(upload_keys))
        .route("/v1/keys/counts", get(counts))
        .route("/v1/bundles/{user_id}", get(user_bundles))
        .route("/v1/bundles/{user_id}/{device_id}", get(device_bundle))
}

#[derive(Deserialize)]
struct Upload {
    signed_prekey: Option<String>,
    #[serde(default)]
    one_time_prekeys: Vec<String>,
    #[serde(default)]
    kem_prekeys: Vec<String>,
}

#[derive(Serialize)]
struct BundleView {
    user_id: String,
    device_id: u32,
    /// Canonical `PreKeyBundle` encoding (what clients should decode and verify).
    bundle: String,
    /// The account-signed device certificate, to check against the account identity.
    certificate: String,
    identity_key: String,
    signed_prekey: String,
    one_time_prekey: Option<String>,
    kem_prekey: Option<String>,
}

#[derive(Serialize)]
struct UserBundles {
    user_id: String,
    bundles: Vec<BundleView>,
}

fn too_many(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::BatchTooLarge,
        format!("at most {MAX_PREKEY_BATCH} {what} per upload"),
    )
}

fn duplicate(what: &str, id: u32) -> ApiError {
    ApiError::new(
        ErrorCode::DuplicateKeyId,
        format!("{what}: key id {id} twice"),
    )
}

/// Decodes and verifies every key before anything is stored: an upload is all or nothing.
fn verify_upload(identity: &IdentityKey, body: &Upload) -> Result<KeyUpload, ApiError> {
    if body.one_time_prekeys.len() > MAX_PREKEY_BATCH {
        return Err(too_many("one-time prekeys"));
    }
    if body.kem_prekeys.len() > MAX_PREKEY_BATCH {
        return Err(too_many("KEM prekeys"));
    }
    let mut upload = KeyUpload::default();
    if let Some(text) = &body.signed_prekey {
        let bytes = b64("signed_prekey", text)?;
        let key = SignedPreKeyPublic::from_bytes(&bytes)
            .map_err(|e| ApiError::bad_key("signed_prekey", e))?;
        key.verify(identity)
            .map_err(|e| ApiError::bad_signature("signed_prekey", e))?;
        upload.signed_prekey = Some((key.id, bytes));
    }
    let mut seen = HashSet::new();
    for text in &body.one_time_prekeys {
        let bytes = b64("one_time_prekeys", text)?;
        let key = OneTimePreKeyPublic::from_bytes(&bytes)
            .map_err(|e| ApiError::bad_key("one_time_prekeys", e))?;
        if !seen.insert(key.id) {
            return Err(duplicate("one_time_prekeys", key.id));
        }
        upload.one_time.push((key.id, bytes));
    }
    let mut seen = HashSet::new();
    for text in &body.kem_prekeys {
        let bytes = b64("kem_prekeys", text)?;
        let key =
            KemPreKeyPublic::from_bytes(&bytes).map_err(|e| ApiError::bad_key("kem_prekeys", e))?;
        key.verify(identity)
            .map_err(|e| ApiError::bad_signature("kem_prekeys", e))?;
        match key.kind {
            KemPreKeyKind::OneTime => {
                if !seen.insert(key.id) {
                    return Err(duplicate("kem_prekeys", key.id));
                }
                upload.kem_one_time.push((key.id, bytes));
            }
            KemPreKeyKind::LastResort => {
                if upload.kem_last_resort.is_some() {
                    return Err(ApiError::new(
                        ErrorCode::DuplicateKeyId,
                        "at most one last-resort KEM prekey per upload",
                    ));
                }
                upload.kem_last_resort = Some((key.id, bytes));
            }
        }
    }
    Ok(upload)
}

async fn device_identity(state: &AppState, auth: &DeviceAddress) -> Result<IdentityKey, ApiError> {
    let devices = state.store.devices(&auth.user).await?;
    let device = devices
        .into_iter()
        .find(|d| d.device_id == auth.device)
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownDevice, "no such device"))?;
    IdentityKey::from_bytes(&device.identity_key).map_err(|e| {
        tracing::error!(error = %e, "stored identity key does not decode");
        ApiError::internal()
    })
}

async fn upload_keys(
    State(state): State<AppState>,
    AuthDevice(auth): AuthDevice,
    ApiJson(body): ApiJson<Upload>,
) -> Result<ApiJson<PreKeyCounts>, ApiError> {
    let identity = device_identity(&state, &auth).await?;
    let upload = verify_upload(&identity, &body)?;
    let store = &state.store;
    store
        .upload_keys(&auth, &upload, state.max_stored_prekeys)
        .await?;
    tracing::debug!(
        device_id = auth.device,
        one_time = upload.one_time.len(),
        kem_one_time = upload.kem_one_time.len(),
        "prekeys uploaded"
    );
    Ok(ApiJson(store.counts(&auth).await?))
}

async fn counts(
    State(state): State<AppState>,
    AuthDevice(auth): AuthDevice,
) -> Result<ApiJson<PreKeyCounts>, ApiError> {
    Ok(ApiJson(state.store.counts(&auth).await?))
}

/// Applies both limits: `Err` (429) when the account fetches this user too often, else
/// whether this fetch may consume one-time prekeys.
fn rate_limit(state: &AppState, auth: &DeviceAddress, target: &UserId) -> Result<bool, ApiError> {
    let now = Instant::now();
    state
        .0
        .limiter
        .check(auth.user_id(), target.as_str(), now)
        .map_err(|wait| ApiError::rate_limited(wait.as_secs_f64().ceil() as u64))?;
    Ok(state
        .0
        .one_time_limiter
        .check(auth.user_id(), target.as_str(), now)
        .is_ok())
}

/// Assembles the canonical bundle from stored parts, verified when they were uploaded: not
/// decoded again (that would verify the identity's signature on every fetch); the client
/// decodes and verifies the bundle it gets.
fn bundle_view(device: &DeviceAddress, parts: BundleParts) -> Result<BundleView, ApiError> {
    let bundle = PreKeyBundle::encode_parts(EncodedBundleParts {
        identity: &parts.identity_key,
        binding: &parts.binding,
        signed_prekey: &parts.signed_prekey,
        one_time_prekey: parts.one_time_prekey.as_deref(),
        kem_prekey: parts.kem_prekey.as_deref(),
    })
    .map_err(|e| {
        tracing::error!(error = %e, "a stored key has the wrong length");
        ApiError::internal()
    })?;
    Ok(BundleView {
        user_id: device.user.to_string(),
        device_id: device.device,
        bundle: enc(&bundle),
        certificate: enc(&parts.certificate),
        identity_key: enc(&parts.identity_key),
        signed_prekey: enc(&parts.signed_prekey),
        one_time_prekey: parts.one_time_prekey.as_deref().map(enc),
        kem_prekey: parts.kem_prekey.as_deref().map(enc),
    })
}

async fn device_bundle(
    State(state): State<AppState>,
    AuthDevice(auth): AuthDevice,
    ApiPath((user_id, device_id)): ApiPath<(String, u32)>,
) -> Result<ApiJson<BundleView>, ApiError> {
    let device = DeviceAddress {
        user: parse_user_id(user_id)?,
        device: device_id,
    };
    let consume = rate_limit(&state, &auth, &device.user)?;
    let parts = state
        .0
        .store
        .take_bundle(&device, consume)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownDevice,
                "no such device, or it has not uploaded a signed prekey",
            )
        })?;
    Ok(ApiJson(bundle_view(&device, parts)?))
}

async fn user_bundles(
    State(state): State<AppState>,
    AuthDevice(auth): AuthDevice,
    ApiPath(user_id): ApiPath<String>,
) -> Result<ApiJson<UserBundles>, ApiError> {
    let user = parse_user_id(user_id)?;
    let consume = rate_limit(&state, &auth, &user)?;
    let store = &state.store;
    let devices = store.devices(&user).await?;
    if devices.is_empty() {
        return Err(ApiError::new(ErrorCode::UnknownUser, "no such user"));
    }
    let mut bundles = Vec::with_capacity(devices.len());
    for row in devices {
        let device = DeviceAddress {
            user: user.clone(),
            device: row.device_id,
        };
        if let Some(parts) = store.take_bundle(&device, consume).await? {
            bundles.push(bundle_view(&device, parts)?);
        }
    }
    Ok(ApiJson(UserBundles {
        user_id: user.to_string(),
        bundles,
    }))
}
