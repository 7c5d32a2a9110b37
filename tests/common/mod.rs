//! Helpers of the whole-stack tests: raw HTTP/1.1 requests and account registration.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    unreachable_pub
)]

pub mod clients;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::STANDARD};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request on its own connection: (status, JSON body or Null).
pub async fn http_json(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
) -> (u16, serde_json::Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let json = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim())
        .filter(|b| !b.is_empty())
        .map(|b| serde_json::from_str(b).unwrap())
        .unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// Registers `user` with devices 1 and 2; returns their credentials.
pub async fn register_two_devices(addr: &str, user: &str) -> (String, String) {
    use e2ee_core::{
        Codec, DeviceAddress, IdentityKeyPair,
        device::{
            AccountConsent, AccountIdentityKeyPair, ConsentAction, DeviceBinding, DeviceCertificate,
        },
    };
    use rand_core::OsRng;
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let account = AccountIdentityKeyPair::generate(&mut OsRng);
    let signed = |device_id: u32| {
        let identity = IdentityKeyPair::generate(&mut OsRng);
        let address = DeviceAddress::new(user, device_id).unwrap();
        let binding = DeviceBinding::sign(&identity, address, account.public());
        DeviceCertificate::sign(&account, identity.public(), &binding, since_epoch.as_secs())
            .unwrap()
    };
    let certificate = |device_id: u32| STANDARD.encode(signed(device_id).to_bytes());
    let second_device = signed(2);
    let now_ms = u64::try_from(since_epoch.as_millis()).unwrap();
    let consent = AccountConsent::sign(&account, ConsentAction::Enrol, &second_device, now_ms);
    let (s, first) = http_json(
        addr,
        "POST",
        "/v1/accounts",
        None,
        Some(&serde_json::json!({
            "user_id": user,
            "account_key": STANDARD.encode(account.public().to_bytes()),
            "device_certificate": certificate(1),
        })),
    )
    .await;
    assert_eq!(s, 201, "{first}");
    let (s, second) = http_json(
        addr,
        "POST",
        &format!("/v1/accounts/{user}/devices"),
        None,
        Some(&serde_json::json!({
            "device_certificate": STANDARD.encode(second_device.to_bytes()),
            "consent": STANDARD.encode(consent.to_bytes()),
        })),
    )
    .await;
    assert_eq!(s, 201, "{second}");
    let credential = |v: &serde_json::Value| v["credential"].as_str().unwrap().to_owned();
    (credential(&first), credential(&second))
}

/// The Redis the scale-out tests use.
pub fn redis_url() -> String {
    std::env::var("RELAY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Deletes every Redis key under `prefix` (a test run's own cluster).
pub async fn delete_redis_keys(prefix: &str) {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut con)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut con)
            .await
            .unwrap();
    }
}
