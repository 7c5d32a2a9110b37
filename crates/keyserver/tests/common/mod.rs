//! Test harness: a real key server on a loopback port, on SQLite (temp dir) or PostgreSQL
//! (a fresh schema per test, dropped afterwards), and a small HTTP client.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::{path::PathBuf, time::Duration};

use axum::body::Bytes;
use e2ee_core::{
    Codec, DeviceAddress, IdentityKeyPair, KemPreKey, KemPreKeyKind, OneTimePreKey, SignedPreKey,
    device::{
        AccountConsent, AccountIdentityKeyPair, ConsentAction, DeviceBinding, DeviceCertificate,
    },
};
use e2ee_keyserver::{Config, Keyserver};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, header::HeaderMap};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use rand_core::{OsRng, RngCore};
use serde_json::{Value, json};

pub use base64::{Engine, engine::general_purpose::STANDARD as B64};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// PostgreSQL for the tests: `E2EE_TEST_DATABASE_URL` or the development default.
pub fn pg_base_url() -> String {
    std::env::var("E2EE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn random_suffix() -> String {
    format!("{:016x}", OsRng.next_u64())
}

pub struct Server {
    pub base: String,
    pub keyserver: Keyserver,
    pub client: Client<HttpConnector, Full<Bytes>>,
    pub config: Config,
    server: tokio::task::JoinHandle<()>,
    schema: Option<String>,
    dir: PathBuf,
}

impl Server {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = std::env::temp_dir().join(format!("ks-test-{}", random_suffix()));
        let mut config = Config {
            data_dir: dir.clone(),
            bundle_burst: 10_000,
            bundle_per_minute: 10_000,
            one_time_burst: 10_000,
            one_time_per_hour: 10_000,
            db_max_connections: 8,
            ..Config::default()
        };
        let mut schema = None;
        if backend == Backend::Postgres {
            let name = format!("ks_test_{}", random_suffix());
            let admin = sqlx::PgPool::connect(&pg_base_url())
                .await
                .expect("PostgreSQL must be reachable (E2EE_TEST_DATABASE_URL)");
            sqlx::query(&format!("CREATE SCHEMA {name}"))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
            let sep = if pg_base_url().contains('?') {
                '&'
            } else {
                '?'
            };
            config.database_url = Some(format!(
                "{}{sep}options=-csearch_path%3D{name}",
                pg_base_url()
            ));
            schema = Some(name);
        }
        tweak(&mut config);
        Self::serve(config, schema, dir).await
    }

    async fn serve(config: Config, schema: Option<String>, dir: PathBuf) -> Self {
        let keyserver = Keyserver::start(&config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = keyserver.router();
        // The accept loop the binaries serve with (timeouts, caps, request-size refusals).
        let server = tokio::spawn(async move {
            let _ = e2ee_http_serve::serve(
                listener,
                router,
                e2ee_http_serve::HttpLimits::default(),
                std::future::pending(),
            )
            .await;
        });
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(64)
            .build_http();
        Self {
            base,
            keyserver,
            client,
            config,
            server,
            schema,
            dir,
        }
    }

    /// Stops serving, closes the pool, drops the PostgreSQL schema or the temp dir.
    pub async fn stop(self) {
        self.server.abort();
        let _ = self.server.await;
        self.keyserver.close().await;
        if let Some(schema) = &self.schema {
            let admin = sqlx::PgPool::connect(&pg_base_url()).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, HeaderMap, Value) {
        self.raw_with_headers(method, path, token, &[], content_type, body)
            .await
    }

    /// [`Server::raw`] with extra request headers.
    pub async fn raw_with_headers(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, HeaderMap, Value) {
        let method_text = method.as_str().to_ascii_lowercase();
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let req = req.body(Full::new(Bytes::from(body))).unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(30), self.client.request(req))
            .await
            .expect("request timed out")
            .unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("non-JSON body: {}", String::from_utf8_lossy(&bytes)))
        };
        check_documented(&method_text, path, parts.status, &value);
        (parts.status, parts.headers, value)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let (s, _, v) = self.raw(Method::GET, path, token, None, vec![]).await;
        (s, v)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> (StatusCode, Value) {
        let (s, _, v) = self
            .raw(
                method,
                path,
                token,
                Some("application/json"),
                body.to_string().into_bytes(),
            )
            .await;
        (s, v)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, token, body).await
    }
}

/// A registered account with one or more devices, holding their secrets as a client would.
/// The served OpenAPI document, parsed once.
fn openapi() -> &'static Value {
    static DOC: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DOC.get_or_init(|| serde_json::from_str(include_str!("../../src/openapi.json")).unwrap())
}

/// The document's path template that `path` (query stripped) instantiates, if any.
fn template_of(path: &str) -> Option<&'static str> {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    openapi()["paths"]
        .as_object()
        .unwrap()
        .keys()
        .find_map(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            let fits = parts.len() == segments.len()
                && parts.iter().zip(&segments).all(|(t, s)| {
                    if t.starts_with('{') {
                        !s.is_empty()
                    } else {
                        t == s
                    }
                });
            fits.then_some(template.as_str())
        })
}

/// Every response a test sees must be one the OpenAPI document declares: its status for the
/// operation, and for an error, its code among that status's `x-error-codes`. Requests to no
/// documented operation must get the router's fallbacks.
fn check_documented(method: &str, path: &str, status: StatusCode, body: &Value) {
    let code = body["code"].as_str();
    let fallback = |status: StatusCode| {
        let codes = &openapi()["x-fallback-error-codes"][status.as_str()];
        assert!(
            codes
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c.as_str() == code)),
            "{method} {path}: undocumented {status} {body}"
        );
    };
    let Some(template) = template_of(path) else {
        return fallback(status);
    };
    let op = &openapi()["paths"][template][method];
    if op.is_null() {
        return fallback(status);
    }
    let response = &op["responses"][status.as_str()];
    assert!(
        response.is_object(),
        "{method} {template}: status {status} is not in the OpenAPI document ({body})"
    );
    if !status.is_success() {
        let codes = response["x-error-codes"].as_array().unwrap();
        assert!(
            codes.iter().any(|c| c.as_str() == code),
            "{method} {template}: {status} {body} has a code the document does not list"
        );
    }
}

pub struct Account {
    pub user_id: String,
    pub account: AccountIdentityKeyPair,
    pub devices: Vec<Device>,
}

pub struct Device {
    pub device_id: u32,
    pub identity: IdentityKeyPair,
    pub credential: String,
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn unique_user(prefix: &str) -> String {
    format!("{prefix}-{}", random_suffix())
}

/// Device `device_id` of `user`'s own binding to `account`.
pub fn binding(
    account: &AccountIdentityKeyPair,
    user: &str,
    device_id: u32,
    identity: &IdentityKeyPair,
) -> DeviceBinding {
    let address = DeviceAddress::new(user, device_id).unwrap();
    DeviceBinding::sign(identity, address, account.public())
}

pub fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

pub fn signed_certificate(
    account: &AccountIdentityKeyPair,
    user: &str,
    device_id: u32,
    identity: &IdentityKeyPair,
) -> DeviceCertificate {
    let binding = binding(account, user, device_id, identity);
    DeviceCertificate::sign(account, identity.public(), &binding, now()).unwrap()
}

pub fn certificate(
    account: &AccountIdentityKeyPair,
    user: &str,
    device_id: u32,
    identity: &IdentityKeyPair,
) -> String {
    B64.encode(signed_certificate(account, user, device_id, identity).to_bytes())
}

/// The account's consent to `action` on `cert`, signed at `at_ms`, in base64.
pub fn consent(
    account: &AccountIdentityKeyPair,
    action: ConsentAction,
    cert: &DeviceCertificate,
    at_ms: u64,
) -> String {
    B64.encode(AccountConsent::sign(account, action, cert, at_ms).to_bytes())
}

/// The body of `POST /v1/accounts/{user}/devices`: `cert` with a consent signed now.
pub fn enrolment_of(account: &AccountIdentityKeyPair, cert: &DeviceCertificate) -> Value {
    json!({
        "device_certificate": B64.encode(cert.to_bytes()),
        "consent": consent(account, ConsentAction::Enrol, cert, now_ms()),
    })
}

/// The body of `POST /v1/accounts/{user}/devices` for a new certificate of `identity`.
pub fn enrolment(
    account: &AccountIdentityKeyPair,
    user: &str,
    device_id: u32,
    identity: &IdentityKeyPair,
) -> Value {
    enrolment_of(
        account,
        &signed_certificate(account, user, device_id, identity),
    )
}

impl Account {
    /// Registers a new account with device 1.
    pub async fn register(server: &Server, prefix: &str) -> Self {
        Self::register_with_token(server, prefix, None).await
    }

    pub async fn register_with_token(server: &Server, prefix: &str, token: Option<&str>) -> Self {
        let user_id = unique_user(prefix);
        let account = AccountIdentityKeyPair::generate(&mut OsRng);
        let identity = IdentityKeyPair::generate(&mut OsRng);
        let (status, body) = server
            .post(
                "/v1/accounts",
                token,
                &json!({
                    "user_id": user_id,
                    "account_key": B64.encode(account.public().to_bytes()),
                    "device_certificate": certificate(&account, &user_id, 1, &identity),
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["device_id"], 1);
        let credential = body["credential"].as_str().unwrap().to_owned();
        Self {
            user_id,
            account,
            devices: vec![Device {
                device_id: 1,
                identity,
                credential,
            }],
        }
    }

    /// Registers another device (certified by the account key).
    pub async fn add_device(&mut self, server: &Server, device_id: u32) -> usize {
        let identity = IdentityKeyPair::generate(&mut OsRng);
        let (status, body) = server
            .post(
                &format!("/v1/accounts/{}/devices", self.user_id),
                None,
                &enrolment(&self.account, &self.user_id, device_id, &identity),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        self.devices.push(Device {
            device_id,
            identity,
            credential: body["credential"].as_str().unwrap().to_owned(),
        });
        self.devices.len() - 1
    }

    pub fn token(&self, index: usize) -> &str {
        &self.devices[index].credential
    }
}

/// Keys to upload for a device: one signed prekey, `otk` one-time keys (ids from
/// `first_id`), `kem` one-time KEM keys (ids from `first_id`) and optionally a last-resort one.
pub fn key_upload(
    identity: &IdentityKeyPair,
    first_id: u32,
    otk: usize,
    kem: usize,
    last_resort: bool,
) -> Value {
    let spk = SignedPreKey::generate(&mut OsRng, identity, 1, now());
    let otks: Vec<String> = OneTimePreKey::generate_batch(&mut OsRng, first_id, otk)
        .iter()
        .map(|k| B64.encode(k.public().to_bytes()))
        .collect();
    let mut kems: Vec<String> = (0..kem as u32)
        .map(|i| {
            B64.encode(
                KemPreKey::generate(
                    &mut OsRng,
                    identity,
                    first_id + i,
                    KemPreKeyKind::OneTime,
                    now(),
                )
                .public()
                .to_bytes(),
            )
        })
        .collect();
    if last_resort {
        kems.push(
            B64.encode(
                KemPreKey::generate(
                    &mut OsRng,
                    identity,
                    999_999,
                    KemPreKeyKind::LastResort,
                    now(),
                )
                .public()
                .to_bytes(),
            ),
        );
    }
    json!({
        "signed_prekey": B64.encode(spk.public().to_bytes()),
        "one_time_prekeys": otks,
        "kem_prekeys": kems,
    })
}

/// Runs each named `async fn(Backend)` test on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            )*
        }
    };
}
