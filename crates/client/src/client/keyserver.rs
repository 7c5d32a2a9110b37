//! The key server's HTTP + JSON API (docs/keyserver.md), as the client calls it: one
//! HTTP/1.1 connection per request (these calls are rare: registration, prekey top-ups,
//! bundles for new sessions, device lists, relay tickets).

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, body::Bytes};
use hyper_util::rt::TokioIo;
use serde::Deserialize;

use super::ClientError;
use super::transport::{Endpoint, connect};
use crate::{PreKeyUpload, Registration};

/// Longest a key server request may take, connection included.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest response body read (a user's bundles for 1,024 devices fit with room to spare).
const MAX_RESPONSE_LEN: usize = 8 * 1024 * 1024;

/// What the key server answered with an error status.
#[derive(Debug, Deserialize)]
struct ApiErrorBody {
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Registered {
    pub(crate) credential: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Counts {
    pub(crate) one_time: u64,
    pub(crate) kem_one_time: u64,
    pub(crate) has_signed_prekey: bool,
    pub(crate) has_last_resort_kem: bool,
}

#[derive(Debug, Deserialize)]
struct DeviceListView {
    device_list: String,
    account_key: String,
}

#[derive(Debug, Deserialize)]
struct BundleView {
    bundle: String,
}

#[derive(Debug, Deserialize)]
struct Issued {
    ticket: String,
}

/// A user's published state: (account key, device list), both as bytes.
pub(crate) type UserState = (Vec<u8>, Vec<u8>);

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn unb64(text: &str, what: &'static str) -> Result<Vec<u8>, ClientError> {
    STANDARD
        .decode(text)
        .map_err(|_| ClientError::Protocol(format!("the key server sent bad base64 in {what}")))
}

/// The key server at one base URL, authenticated as one device once registered.
#[derive(Clone)]
pub(crate) struct KeyServer {
    endpoint: Endpoint,
    tls: Arc<rustls::ClientConfig>,
    credential: Option<String>,
    app_token: Option<String>,
}

impl std::fmt::Debug for KeyServer {
    // The credential and the app token are secrets: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyServer")
            .field("endpoint", &self.endpoint)
            .field("registered", &self.credential.is_some())
            .finish_non_exhaustive()
    }
}

impl KeyServer {
    pub(crate) fn new(
        endpoint: Endpoint,
        tls: Arc<rustls::ClientConfig>,
        app_token: Option<String>,
    ) -> Self {
        Self {
            endpoint,
            tls,
            credential: None,
            app_token,
        }
    }

    pub(crate) fn with_credential(mut self, credential: String) -> Self {
        self.credential = Some(credential);
        self
    }

    async fn request<T: for<'de> Deserialize<'de>>(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        bearer: Option<&str>,
    ) -> Result<Option<T>, ClientError> {
        let attempt = async {
            let stream = connect(&self.endpoint, &self.tls).await?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                    .await
                    .map_err(|e| ClientError::Network(e.to_string()))?;
            tokio::spawn(connection);
            let body = body.map(|b| b.to_string()).unwrap_or_default();
            let mut request = Request::builder()
                .method(method)
                .uri(format!("{}{path}", self.endpoint.prefix))
                .header("host", self.endpoint.authority())
                .header("content-type", "application/json");
            if let Some(token) = bearer {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            let request = request
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| ClientError::InvalidConfig(e.to_string()))?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| ClientError::Network(e.to_string()))?;
            let status = response.status().as_u16();
            let bytes = Limited::new(response.into_body(), MAX_RESPONSE_LEN)
                .collect()
                .await
                .map_err(|e| ClientError::Network(e.to_string()))?
                .to_bytes();
            Ok::<_, ClientError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(REQUEST_TIMEOUT, attempt)
            .await
            .map_err(|_| ClientError::Network(format!("{method} {path}: timed out")))??;
        if !(200..300).contains(&status) {
            let body: Option<ApiErrorBody> = serde_json::from_slice(&bytes).ok();
            return Err(ClientError::Server {
                status,
                code: body.as_ref().map(|b| b.code.clone()).unwrap_or_default(),
                message: body.map(|b| b.message).unwrap_or_default(),
            });
        }
        if bytes.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ClientError::Protocol(format!("{method} {path}: {e}")))
    }

    fn credential(&self) -> Result<&str, ClientError> {
        self.credential.as_deref().ok_or(ClientError::NotRegistered)
    }

    async fn authed<T: for<'de> Deserialize<'de>>(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Option<T>, ClientError> {
        self.request(method, path, body, Some(self.credential()?))
            .await
    }

    /// `POST /v1/accounts`.
    pub(crate) async fn register_account(
        &self,
        registration: &Registration,
    ) -> Result<Registered, ClientError> {
        let body = serde_json::json!({
            "user_id": registration.user_id,
            "account_key": b64(&registration.account_key),
            "device_certificate": b64(&registration.device_certificate),
        });
        self.request(
            "POST",
            "/v1/accounts",
            Some(body),
            self.app_token.as_deref(),
        )
        .await?
        .ok_or_else(|| ClientError::Protocol("registration answered no body".into()))
    }

    /// `POST /v1/accounts/{user}/devices`: enrols a device of our account (the primary does
    /// this for a device it links); returns the new device's credential.
    pub(crate) async fn register_device(
        &self,
        user: &str,
        certificate: &[u8],
        consent: &[u8],
    ) -> Result<Registered, ClientError> {
        let body = serde_json::json!({
            "device_certificate": b64(certificate),
            "consent": b64(consent),
        });
        self.request(
            "POST",
            &format!("/v1/accounts/{}/devices", path_segment(user)),
            Some(body),
            self.app_token.as_deref(),
        )
        .await?
        .ok_or_else(|| ClientError::Protocol("enrolment answered no body".into()))
    }

    /// `PUT /v1/provisioning/{channel}/{slot}` (no credential: the new device has none).
    pub(crate) async fn put_provisioning(
        &self,
        channel: &str,
        slot: u8,
        sealed: &[u8],
    ) -> Result<(), ClientError> {
        let body = serde_json::json!({ "message": b64(sealed) });
        self.request::<serde_json::Value>(
            "PUT",
            &format!("/v1/provisioning/{channel}/{slot}"),
            Some(body),
            None,
        )
        .await
        .map(|_| ())
    }

    /// `GET /v1/provisioning/{channel}/{slot}`: the sealed message, or `None` if it is not
    /// there yet.
    pub(crate) async fn provisioning(
        &self,
        channel: &str,
        slot: u8,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        #[derive(Deserialize)]
        struct Message {
            message: String,
        }
        match self
            .request::<Message>(
                "GET",
                &format!("/v1/provisioning/{channel}/{slot}"),
                None,
                None,
            )
            .await
        {
            Ok(Some(m)) => unb64(&m.message, "message").map(Some),
            Ok(None) => Err(ClientError::Protocol(
                "provisioning answered no body".into(),
            )),
            Err(ClientError::Server { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /v1/accounts/{user}/devices/{device}`.
    pub(crate) async fn remove_device(&self, user: &str, device: u32) -> Result<(), ClientError> {
        self.authed::<serde_json::Value>(
            "DELETE",
            &format!("/v1/accounts/{}/devices/{device}", path_segment(user)),
            None,
        )
        .await
        .map(|_| ())
    }

    /// `PUT /v1/device-list`.
    pub(crate) async fn put_device_list(&self, list: &[u8]) -> Result<(), ClientError> {
        let body = serde_json::json!({ "device_list": b64(list) });
        self.authed::<serde_json::Value>("PUT", "/v1/device-list", Some(body))
            .await
            .map(|_| ())
    }

    /// `POST /v1/keys`.
    pub(crate) async fn upload_prekeys(&self, upload: &PreKeyUpload) -> Result<(), ClientError> {
        let body = serde_json::json!({
            "signed_prekey": b64(&upload.signed_prekey),
            "one_time_prekeys": upload.one_time_prekeys.iter().map(|k| b64(k)).collect::<Vec<_>>(),
            "kem_prekeys": upload.kem_prekeys.iter().map(|k| b64(k)).collect::<Vec<_>>(),
        });
        self.authed::<serde_json::Value>("POST", "/v1/keys", Some(body))
            .await
            .map(|_| ())
    }

    /// `GET /v1/keys/counts`.
    pub(crate) async fn prekey_counts(&self) -> Result<Counts, ClientError> {
        self.authed("GET", "/v1/keys/counts", None)
            .await?
            .ok_or_else(|| ClientError::Protocol("counts answered no body".into()))
    }

    /// `GET /v1/device-list/{user}`: the user's account key and signed device list.
    pub(crate) async fn user_state(&self, user: &str) -> Result<UserState, ClientError> {
        let view: DeviceListView = self
            .authed(
                "GET",
                &format!("/v1/device-list/{}", path_segment(user)),
                None,
            )
            .await?
            .ok_or_else(|| ClientError::Protocol("device list answered no body".into()))?;
        Ok((
            unb64(&view.account_key, "account_key")?,
            unb64(&view.device_list, "device_list")?,
        ))
    }

    /// `GET /v1/bundles/{user}/{device}`: the bundle bytes.
    pub(crate) async fn bundle(&self, user: &str, device: u32) -> Result<Vec<u8>, ClientError> {
        let view: BundleView = self
            .authed(
                "GET",
                &format!("/v1/bundles/{}/{device}", path_segment(user)),
                None,
            )
            .await?
            .ok_or_else(|| ClientError::Protocol("bundle answered no body".into()))?;
        unb64(&view.bundle, "bundle")
    }

    /// `POST /v1/tickets`: a relay connection ticket.
    pub(crate) async fn ticket(&self) -> Result<String, ClientError> {
        let issued: Issued = self
            .authed("POST", "/v1/tickets", None)
            .await?
            .ok_or_else(|| ClientError::Protocol("ticket answered no body".into()))?;
        Ok(issued.ticket)
    }
}

/// A user id as one path segment: every byte outside the unreserved set percent-encoded.
fn path_segment(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for byte in user.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_never_prints_the_credential() {
        let endpoint = super::Endpoint::parse("http://127.0.0.1:1").unwrap();
        let tls = super::super::transport::tls_config(&[]).unwrap();
        let keyserver = super::KeyServer::new(endpoint, tls, Some("app-token-secret".into()))
            .with_credential("dc1.secret-credential".into());
        let printed = format!("{keyserver:?}");
        assert!(!printed.contains("secret"), "{printed}");
    }

    #[test]
    fn user_ids_are_one_path_segment() {
        assert_eq!(super::path_segment("alice"), "alice");
        assert_eq!(super::path_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(super::path_segment("é"), "%C3%A9");
    }
}
