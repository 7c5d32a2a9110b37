//! Issue 10, item 1: a removed device comes back only with the account key's fresh consent,
//! and only the account key removes the device that holds it. Each test runs on SQLite and
//! PostgreSQL over real HTTP.

// The test bodies are plain async fns run by `on_both_backends!`, so clippy does not see them
// as tests; panicking on failure is what they are for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{
    Account, B64, Backend, Engine, Server, consent, enrolment_of, now_ms, signed_certificate,
};
use e2ee_core::{
    Codec, IdentityKeyPair,
    device::{AccountIdentityKeyPair, ConsentAction, DeviceCertificate},
};
use hyper::{Method, StatusCode};
use rand_core::OsRng;
use serde_json::{Value, json};

on_both_backends!(
    a_removed_device_cannot_come_back_from_its_public_certificate,
    a_consent_signed_before_a_removal_never_enrols_the_removed_identity,
    a_consent_outside_its_window_or_for_something_else_is_refused,
    only_the_account_key_removes_the_device_that_holds_it,
    a_removal_consent_does_not_outlive_a_re_enrolment,
);

/// The consent window the server enforces (`CONSENT_MAX_AGE_MS`, `CONSENT_MAX_FUTURE_MS`).
const MAX_AGE_MS: u64 = 10 * 60 * 1000;
const MAX_FUTURE_MS: u64 = 60 * 1000;

fn assert_error(status: StatusCode, body: &Value, want_status: StatusCode, code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["code"], code, "{body}");
}

fn devices_path(account: &Account) -> String {
    format!("/v1/accounts/{}/devices", account.user_id)
}

async fn remove(
    server: &Server,
    account: &Account,
    device_id: u32,
    token: &str,
    consent: Option<&str>,
) -> (StatusCode, Value) {
    let path = format!("/v1/accounts/{}/devices/{device_id}", account.user_id);
    let headers: Vec<(&str, &str)> = consent
        .map(|c| ("e2ee-account-consent", c))
        .into_iter()
        .collect();
    let (s, _, b) = server
        .raw_with_headers(Method::DELETE, &path, Some(token), &headers, None, vec![])
        .await;
    (s, b)
}

/// Registers `cert`'s device with a consent signed now.
async fn enrol(
    server: &Server,
    account: &Account,
    cert: &DeviceCertificate,
) -> (StatusCode, Value) {
    server
        .post(
            &devices_path(account),
            None,
            &enrolment_of(&account.account, cert),
        )
        .await
}

/// The certificate the account view publishes for `device_id`.
async fn published_certificate(server: &Server, account: &Account, device_id: u32) -> String {
    let (s, b) = server
        .get(
            &format!("/v1/accounts/{}", account.user_id),
            Some(account.token(0)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device_id"] == device_id)
        .unwrap()["certificate"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The certificate of the device that holds the account key (device 1), as published.
async fn holder_certificate(server: &Server, account: &Account) -> DeviceCertificate {
    let text = published_certificate(server, account, 1).await;
    DeviceCertificate::from_bytes(&B64.decode(text).unwrap()).unwrap()
}

/// The consent of a later step must be signed after the server's clock passed the earlier
/// one (millisecond resolution).
async fn next_millisecond() {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
}

/// The attack from the outside probe: a stranger re-posts the public certificate of a removed
/// device (and even the enrolment request it once saw) and gets nothing.
async fn a_removed_device_cannot_come_back_from_its_public_certificate(backend: Backend) {
    let server = Server::start(backend).await;
    let mut carol = Account::register(&server, "carol").await;
    let identity = IdentityKeyPair::generate(&mut OsRng);
    let cert = signed_certificate(&carol.account, &carol.user_id, 2, &identity);
    let enrolment = enrolment_of(&carol.account, &cert);
    let (s, b) = server.post(&devices_path(&carol), None, &enrolment).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    carol.devices.push(common::Device {
        device_id: 2,
        identity,
        credential: b["credential"].as_str().unwrap().to_owned(),
    });
    let saved = published_certificate(&server, &carol, 2).await;

    next_millisecond().await;
    let (s, b) = remove(&server, &carol, 2, carol.token(0), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");

    // The certificate alone: refused (the consent is required).
    let (s, b) = server
        .post(
            &devices_path(&carol),
            None,
            &json!({ "device_certificate": saved }),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_json");
    // The whole enrolment request the stranger once captured: its consent predates the
    // removal.
    let (s, b) = server.post(&devices_path(&carol), None, &enrolment).await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "stale_consent");
    // So no credential, no ticket, no bundles: the device stays removed.
    let (s, b) = server
        .get(
            &format!("/v1/accounts/{}", carol.user_id),
            Some(carol.token(0)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["devices"].as_array().unwrap().len(), 1, "{b}");

    // The owner's fresh consent brings the same device back.
    next_millisecond().await;
    let (s, b) = enrol(&server, &carol, &cert).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    server.stop().await;
}

/// A consent signed for another device id, before the identity it names was removed, cannot
/// bring that identity back under the other id either.
async fn a_consent_signed_before_a_removal_never_enrols_the_removed_identity(backend: Backend) {
    let server = Server::start(backend).await;
    let mut alice = Account::register(&server, "alice").await;
    let index = alice.add_device(&server, 2).await;
    let identity = alice.devices[index].identity.clone();
    // Signed while device 2 still holds the identity.
    let elsewhere = signed_certificate(&alice.account, &alice.user_id, 3, &identity);
    let early = enrolment_of(&alice.account, &elsewhere);
    next_millisecond().await;
    let (s, b) = remove(&server, &alice, 2, alice.token(0), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (s, b) = server.post(&devices_path(&alice), None, &early).await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "stale_consent");
    next_millisecond().await;
    let (s, b) = enrol(&server, &alice, &elsewhere).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    server.stop().await;
}

async fn a_consent_outside_its_window_or_for_something_else_is_refused(backend: Backend) {
    let server = Server::start(backend).await;
    let alice = Account::register(&server, "alice").await;
    let identity = IdentityKeyPair::generate(&mut OsRng);
    let cert = signed_certificate(&alice.account, &alice.user_id, 2, &identity);
    let body = |consent: String| json!({ "device_certificate": B64.encode(cert.to_bytes()), "consent": consent });
    let enrol_at = |at_ms: u64| consent(&alice.account, ConsentAction::Enrol, &cert, at_ms);
    let path = devices_path(&alice);

    let cases = [
        // Just past the window, both ways (a second of margin for the round trip).
        (
            enrol_at(now_ms() - MAX_AGE_MS - 1_000),
            StatusCode::FORBIDDEN,
            "stale_consent",
        ),
        (
            enrol_at(now_ms() + MAX_FUTURE_MS + 1_000),
            StatusCode::FORBIDDEN,
            "stale_consent",
        ),
        // Another action, another certificate, another account.
        (
            consent(&alice.account, ConsentAction::Remove, &cert, now_ms()),
            StatusCode::BAD_REQUEST,
            "invalid_signature",
        ),
        (
            consent(
                &alice.account,
                ConsentAction::Enrol,
                &signed_certificate(&alice.account, &alice.user_id, 3, &identity),
                now_ms(),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_signature",
        ),
        (
            consent(
                &AccountIdentityKeyPair::generate(&mut OsRng),
                ConsentAction::Enrol,
                &cert,
                now_ms(),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_signature",
        ),
        // Not a consent at all.
        (
            B64.encode([1u8; 20]),
            StatusCode::BAD_REQUEST,
            "invalid_consent",
        ),
        (
            "not base64!".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_base64",
        ),
    ];
    for (consent, status, code) in cases {
        let (s, b) = server.post(&path, None, &body(consent)).await;
        assert_error(s, &b, status, code);
    }
    // Inside the window at both ends: accepted.
    let (s, b) = server
        .post(&path, None, &body(enrol_at(now_ms() - MAX_AGE_MS + 30_000)))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let other = IdentityKeyPair::generate(&mut OsRng);
    let later = signed_certificate(&alice.account, &alice.user_id, 4, &other);
    let ahead = json!({
        "device_certificate": B64.encode(later.to_bytes()),
        "consent": consent(&alice.account, ConsentAction::Enrol, &later, now_ms() + MAX_FUTURE_MS - 30_000),
    });
    let (s, b) = server.post(&path, None, &ahead).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    server.stop().await;
}

/// Device 1 registered the account and holds its key. No device (itself included) removes it
/// with a credential alone; the account key's fresh consent does.
async fn only_the_account_key_removes_the_device_that_holds_it(backend: Backend) {
    let server = Server::start(backend).await;
    let mut alice = Account::register(&server, "alice").await;
    let second = alice.add_device(&server, 2).await;
    let holder = holder_certificate(&server, &alice).await;
    let account = alice.account.clone();
    let remove_consent = |at_ms| consent(&account, ConsentAction::Remove, &holder, at_ms);

    for token in [alice.token(second), alice.token(0)] {
        let (s, b) = remove(&server, &alice, 1, token, None).await;
        assert_error(s, &b, StatusCode::FORBIDDEN, "consent_required");
    }
    let stale = remove_consent(now_ms() - MAX_AGE_MS - 1_000);
    let (s, b) = remove(&server, &alice, 1, alice.token(second), Some(&stale)).await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "stale_consent");
    let enrol = consent(&alice.account, ConsentAction::Enrol, &holder, now_ms());
    let (s, b) = remove(&server, &alice, 1, alice.token(second), Some(&enrol)).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_signature");
    let (s, b) = remove(&server, &alice, 1, alice.token(second), Some("%%")).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_base64");
    // Still there and working.
    let (s, b) = server
        .post("/v1/tickets", Some(alice.token(0)), &json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // Other devices need no consent. The removal takes no body: one (even over the body
    // limit, of any type) is ignored.
    let third = alice.add_device(&server, 3).await;
    let path = format!("/v1/accounts/{}/devices/3", alice.user_id);
    let (s, _, b) = server
        .raw(
            Method::DELETE,
            &path,
            Some(alice.token(second)),
            Some("text/plain"),
            vec![b'x'; 1024 * 1024],
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert_eq!(alice.devices[third].device_id, 3);

    let fresh = remove_consent(now_ms());
    let (s, b) = remove(&server, &alice, 1, alice.token(second), Some(&fresh)).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (s, b) = server
        .post("/v1/tickets", Some(alice.token(0)), &json!({}))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    server.stop().await;
}

/// A removal consent signed before the device was enrolled again does not remove it again.
async fn a_removal_consent_does_not_outlive_a_re_enrolment(backend: Backend) {
    let server = Server::start(backend).await;
    let mut alice = Account::register(&server, "alice").await;
    let second = alice.add_device(&server, 2).await;
    let holder = holder_certificate(&server, &alice).await;
    next_millisecond().await;
    let removal = consent(&alice.account, ConsentAction::Remove, &holder, now_ms());
    let (s, b) = remove(&server, &alice, 1, alice.token(second), Some(&removal)).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    next_millisecond().await;
    let (s, b) = enrol(&server, &alice, &holder).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // Back, and still the key holder: the old consent is refused, a credential alone too.
    let (s, b) = remove(&server, &alice, 1, alice.token(second), Some(&removal)).await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "stale_consent");
    let (s, b) = remove(&server, &alice, 1, alice.token(second), None).await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "consent_required");
    server.stop().await;
}
