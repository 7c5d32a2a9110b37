//! Integration tests over real HTTP on loopback, each run on SQLite and on PostgreSQL.

// The test bodies are plain async fns run by `on_both_backends!`, so clippy does not see them
// as tests; panicking on failure is what they are for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;

use common::{
    Account, B64, Backend, Engine, Server, binding, certificate, enrolment, key_upload, now,
};
use e2ee_core::{
    Codec, IdentityKeyPair, KemPreKey, KemPreKeyKind, KemPreKeyPublic, OneTimePreKeyPublic,
    PreKeyBundle, SignedPreKey, UserId,
    device::{
        AccountIdentityKey, AccountIdentityKeyPair, DeviceCertificate, DeviceEntry, DeviceList,
    },
};
use hyper::{Method, StatusCode};
use rand_core::OsRng;
use serde_json::{Value, json};

on_both_backends!(
    register_upload_fetch_and_fall_back,
    concurrent_fetches_never_serve_a_key_twice,
    every_bad_input_is_a_json_4xx,
    device_lists_are_verified_and_monotonic,
    all_devices_bundle_and_account_view,
    bundle_fetches_are_rate_limited,
    tickets_verify_with_the_published_key,
    one_account_cannot_drain_one_time_keys,
    concurrent_all_device_fetches_take_one_key_per_device,
    a_device_is_removed_by_its_own_account_with_its_keys_and_credential,
    a_device_identity_key_registers_to_one_account_only,
    bundles_carry_the_devices_own_binding,
    the_one_time_prekey_cap_holds_under_concurrent_uploads,
    non_canonical_base64_is_refused,
);

fn decode(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().unwrap()).unwrap()
}

fn assert_error(status: StatusCode, body: &Value, want_status: StatusCode, code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

async fn register_upload_fetch_and_fall_back(backend: Backend) {
    let server = Server::start(backend).await;
    let alice = Account::register(&server, "alice").await;
    let bob = Account::register(&server, "bob").await;

    let (status, counts) = server
        .post(
            "/v1/keys",
            Some(alice.token(0)),
            &key_upload(&alice.devices[0].identity, 100, 3, 2, true),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{counts}");
    assert_eq!(
        counts,
        json!({"one_time": 3, "kem_one_time": 2, "has_signed_prekey": true, "has_last_resort_kem": true})
    );

    let path = format!("/v1/bundles/{}/1", alice.user_id);
    let mut otk_ids = vec![];
    let mut kem_ids = vec![];
    for _ in 0..4 {
        let (status, body) = server.get(&path, Some(bob.token(0))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let bundle = PreKeyBundle::from_bytes(&decode(&body["bundle"])).unwrap();
        bundle.verify().unwrap();
        assert_eq!(bundle.identity, *alice.devices[0].identity.public());
        let cert = DeviceCertificate::from_bytes(&decode(&body["certificate"])).unwrap();
        cert.verify(&alice.account.public()).unwrap();
        assert_eq!(*cert.identity(), bundle.identity);
        // The parts are the bundle's parts.
        assert_eq!(
            decode(&body["signed_prekey"]),
            bundle.signed_prekey.to_bytes()
        );
        otk_ids.push(bundle.one_time_prekey.map(|k| k.id));
        let kem = bundle.kem_prekey.unwrap();
        kem_ids.push((kem.id, kem.kind));
    }
    assert_eq!(otk_ids, vec![Some(100), Some(101), Some(102), None]);
    assert_eq!(
        kem_ids,
        vec![
            (100, KemPreKeyKind::OneTime),
            (101, KemPreKeyKind::OneTime),
            (999_999, KemPreKeyKind::LastResort),
            (999_999, KemPreKeyKind::LastResort),
        ]
    );
    let (status, counts) = server.get("/v1/keys/counts", Some(alice.token(0))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(counts["one_time"], 0);
    assert_eq!(counts["kem_one_time"], 0);
    assert_eq!(counts["has_last_resort_kem"], true);

    // Replacing the signed prekey is visible in the next bundle.
    let spk = SignedPreKey::generate(&mut OsRng, &alice.devices[0].identity, 2, now());
    let (status, _) = server
        .post(
            "/v1/keys",
            Some(alice.token(0)),
            &json!({"signed_prekey": B64.encode(spk.public().to_bytes())}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = server.get(&path, Some(bob.token(0))).await;
    let bundle = PreKeyBundle::from_bytes(&decode(&body["bundle"])).unwrap();
    assert_eq!(bundle.signed_prekey.id, 2);
    server.stop().await;
}

async fn concurrent_fetches_never_serve_a_key_twice(backend: Backend) {
    const OTK: usize = 60;
    const KEM: usize = 30;
    const FETCHES: usize = 80;
    let server = Server::start(backend).await;
    let alice = Account::register(&server, "alice").await;
    let (status, _) = server
        .post(
            "/v1/keys",
            Some(alice.token(0)),
            &key_upload(&alice.devices[0].identity, 1, OTK, KEM, true),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut requesters = vec![];
    for _ in 0..4 {
        requesters.push(Account::register(&server, "req").await);
    }
    let server = std::sync::Arc::new(server);
    let path = format!("/v1/bundles/{}/1", alice.user_id);
    let mut tasks = vec![];
    for i in 0..FETCHES {
        let server = server.clone();
        let path = path.clone();
        let token = requesters[i % requesters.len()].token(0).to_owned();
        tasks.push(tokio::spawn(async move {
            let (status, body) = server.get(&path, Some(&token)).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            PreKeyBundle::from_bytes(&decode(&body["bundle"])).unwrap()
        }));
    }
    let mut otks = vec![];
    let mut kems = vec![];
    let mut last_resort = 0;
    for t in tasks {
        let bundle = t.await.unwrap();
        if let Some(k) = bundle.one_time_prekey {
            otks.push(k.id);
        }
        let kem = bundle.kem_prekey.unwrap();
        match kem.kind {
            KemPreKeyKind::OneTime => kems.push(kem.id),
            KemPreKeyKind::LastResort => last_resort += 1,
        }
    }
    let unique: HashSet<_> = otks.iter().collect();
    assert_eq!(
        unique.len(),
        otks.len(),
        "a one-time prekey was served twice"
    );
    assert_eq!(
        otks.len(),
        OTK,
        "every one-time prekey is served exactly once"
    );
    let unique: HashSet<_> = kems.iter().collect();
    assert_eq!(unique.len(), kems.len(), "a KEM prekey was served twice");
    assert_eq!(kems.len(), KEM);
    assert_eq!(last_resort, FETCHES - KEM);
    let server = std::sync::Arc::into_inner(server).unwrap();
    server.stop().await;
}

async fn every_bad_input_is_a_json_4xx(backend: Backend) {
    let server = Server::start_with(backend, |c| c.max_body_bytes = 64 * 1024).await;
    let alice = Account::register(&server, "alice").await;
    let token = alice.token(0).to_owned();
    let identity = &alice.devices[0].identity;
    let t = Some(token.as_str());

    // Malformed JSON, wrong type, wrong content type.
    let (s, _, b) = server
        .raw(
            Method::POST,
            "/v1/keys",
            t,
            Some("application/json"),
            b"{not json".to_vec(),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_json");
    let (s, b) = server
        .post("/v1/keys", t, &json!({"one_time_prekeys": 5}))
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_json");
    let (s, _, b) = server
        .raw(
            Method::POST,
            "/v1/keys",
            t,
            Some("text/plain"),
            b"{}".to_vec(),
        )
        .await;
    assert_error(
        s,
        &b,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );

    // Bad base64, wrong key length, bad signatures.
    let (s, b) = server
        .post("/v1/keys", t, &json!({"signed_prekey": "!!!"}))
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_base64");
    let (s, b) = server
        .post(
            "/v1/keys",
            t,
            &json!({"signed_prekey": B64.encode([0u8; 107])}),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_key");
    let (s, b) = server
        .post(
            "/v1/keys",
            t,
            &json!({"one_time_prekeys": [B64.encode([0u8; 37])]}),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_key");
    let (s, b) = server
        .post(
            "/v1/keys",
            t,
            &json!({"kem_prekeys": [B64.encode([0u8; 1261])]}),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_key");
    let stranger = IdentityKeyPair::generate(&mut OsRng);
    let foreign = SignedPreKey::generate(&mut OsRng, &stranger, 1, now());
    let (s, b) = server
        .post(
            "/v1/keys",
            t,
            &json!({"signed_prekey": B64.encode(foreign.public().to_bytes())}),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_signature");
    let foreign_kem = KemPreKey::generate(&mut OsRng, &stranger, 1, KemPreKeyKind::OneTime, now());
    let (s, b) = server
        .post(
            "/v1/keys",
            t,
            &json!({"kem_prekeys": [B64.encode(foreign_kem.public().to_bytes())]}),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_signature");
    // A bad key anywhere rejects the whole upload: nothing was stored.
    let mut mixed = key_upload(identity, 1, 5, 0, false);
    mixed["kem_prekeys"] = json!([B64.encode(foreign_kem.public().to_bytes())]);
    let (s, b) = server.post("/v1/keys", t, &mixed).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_signature");
    let (_, counts) = server.get("/v1/keys/counts", t).await;
    assert_eq!(counts["one_time"], 0);
    assert_eq!(counts["has_signed_prekey"], false);

    // Batches: over the limit, duplicate ids.
    let (s, b) = server
        .post("/v1/keys", t, &key_upload(identity, 1, 100, 0, false))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let mut big = key_upload(identity, 1000, 100, 0, false);
    let first = big["one_time_prekeys"][0].clone();
    big["one_time_prekeys"].as_array_mut().unwrap().push(first);
    let (s, b) = server.post("/v1/keys", t, &big).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "batch_too_large");
    let mut dup = key_upload(identity, 2000, 2, 0, false);
    dup["one_time_prekeys"][1] = dup["one_time_prekeys"][0].clone();
    let (s, b) = server.post("/v1/keys", t, &dup).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "duplicate_key_id");

    // Oversized body.
    let (s, _, b) = server
        .raw(
            Method::POST,
            "/v1/keys",
            t,
            Some("application/json"),
            vec![b' '; 65 * 1024],
        )
        .await;
    assert_error(s, &b, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");

    // Authentication.
    let (s, b) = server.get("/v1/keys/counts", None).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "unauthorized");
    let (s, b) = server.get("/v1/keys/counts", Some("garbage")).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "unauthorized");
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let (s, b) = server.get("/v1/keys/counts", Some(&forged)).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "unauthorized");

    // Unknown ids, bad path parameters, unknown routes and methods.
    let (s, b) = server.get("/v1/bundles/nobody-here/1", t).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "unknown_device");
    let (s, b) = server.get("/v1/bundles/nobody-here", t).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "unknown_user");
    let (s, b) = server
        .get(&format!("/v1/bundles/{}/77", alice.user_id), t)
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "unknown_device");
    let (s, b) = server
        .get(&format!("/v1/bundles/{}/4294967296", alice.user_id), t)
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_path");
    // NUL cannot be stored in PostgreSQL text: refused alike on both back ends.
    for path in [
        "/v1/bundles/a%00b/1",
        "/v1/bundles/a%00b",
        "/v1/accounts/a%00b",
        "/v1/device-list/a%00b",
    ] {
        let (s, b) = server.get(path, t).await;
        assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_user_id");
    }
    let nul_token = format!(
        "dc1.{}.1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("a\0b"),
        "A".repeat(43)
    );
    let (s, b) = server.get("/v1/keys/counts", Some(&nul_token)).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "unauthorized");
    let (s, b) = server.get("/v1/nothing", t).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    // Oversized request lines and header sections: JSON from the accept loop, declared in
    // the document for the operation they address.
    let long = format!("/v1/accounts/{}", "u".repeat(9 * 1024));
    let (s, b) = server.get(&long, t).await;
    assert_error(s, &b, StatusCode::URI_TOO_LONG, "uri_too_long");
    let many: Vec<(String, String)> = (0..70).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let (s, _, b) = server
        .raw_with_headers(Method::GET, "/v1/keys/counts", t, &many, None, vec![])
        .await;
    assert_error(
        s,
        &b,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
    );
    let (s, _, b) = server
        .raw(Method::DELETE, "/v1/keys", t, None, vec![])
        .await;
    assert_error(s, &b, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let (s, b) = server
        .post(
            "/v1/accounts/nobody-here/devices",
            None,
            &json!({"device_certificate": "AAAA", "consent": "AAAA"}),
        )
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "unknown_user");

    // Registration: taken user id, certificates for another user or by another account,
    // bad account key, bad user id, taken device id.
    let account = AccountIdentityKeyPair::generate(&mut OsRng);
    let dev = IdentityKeyPair::generate(&mut OsRng);
    let register = |user: &str, key: &AccountIdentityKeyPair, cert: String| json!({"user_id": user, "account_key": B64.encode(key.public().to_bytes()), "device_certificate": cert});
    let (s, b) = server
        .post(
            "/v1/accounts",
            None,
            &register(
                &alice.user_id,
                &account,
                certificate(&account, &alice.user_id, 1, &dev),
            ),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, "user_exists");
    let (s, b) = server
        .post(
            "/v1/accounts",
            None,
            &register(
                "carol-x",
                &account,
                certificate(&account, "dave-x", 1, &dev),
            ),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "certificate_mismatch");
    let other = AccountIdentityKeyPair::generate(&mut OsRng);
    let (s, b) = server
        .post(
            "/v1/accounts",
            None,
            &register("carol-x", &account, certificate(&other, "carol-x", 1, &dev)),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_signature");
    let (s, b) = server
        .post("/v1/accounts", None, &json!({"user_id": "carol-x", "account_key": B64.encode([1u8; 31]), "device_certificate": "AAAA"}))
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_key");
    let (s, b) = server
        .post(
            "/v1/accounts",
            None,
            &register(
                &"u".repeat(129),
                &account,
                certificate(&account, "x", 1, &dev),
            ),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_user_id");
    let (s, b) = server
        .post(
            "/v1/accounts",
            None,
            &register("a\0b", &account, certificate(&account, "x", 1, &dev)),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_user_id");
    let mut cert = decode(&json!(certificate(&account, "carol-x", 1, &dev)));
    cert[40] ^= 1;
    let (s, b) = server
        .post(
            "/v1/accounts",
            None,
            &register("carol-x", &account, B64.encode(&cert)),
        )
        .await;
    assert!(s == StatusCode::BAD_REQUEST, "{b}");
    let (s, b) = server
        .post(
            &format!("/v1/accounts/{}/devices", alice.user_id),
            None,
            &enrolment(&alice.account, &alice.user_id, 1, &dev),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, "device_exists");
    let (s, b) = server
        .post(
            &format!("/v1/accounts/{}/devices", alice.user_id),
            None,
            &enrolment(&other, &alice.user_id, 2, &dev),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_signature");
    server.stop().await;
}

async fn device_lists_are_verified_and_monotonic(backend: Backend) {
    let server = Server::start(backend).await;
    let mut alice = Account::register(&server, "alice").await;
    alice.add_device(&server, 2).await;
    let bob = Account::register(&server, "bob").await;
    // Entries of Alice's devices, bound to whichever account signs the list (a forger can
    // only list devices that bound themselves to it).
    let list = |version: u64, key: &AccountIdentityKeyPair, user: &str| {
        let entries: Vec<DeviceEntry> = alice
            .devices
            .iter()
            .map(|d| {
                let b = binding(key, user, d.device_id, &d.identity);
                DeviceEntry::new(*d.identity.public(), &b)
            })
            .collect();
        let list = DeviceList::sign(key, &UserId::new(user).unwrap(), version, now(), entries);
        json!({"device_list": B64.encode(list.unwrap().to_bytes())})
    };
    let t = Some(alice.token(1));
    let (s, b) = server
        .get(
            &format!("/v1/device-list/{}", alice.user_id),
            Some(bob.token(0)),
        )
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "no_device_list");
    let (s, b) = server
        .send(
            Method::PUT,
            "/v1/device-list",
            t,
            &list(5, &alice.account, &alice.user_id),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["version"], 5);
    for stale in [5, 4] {
        let (s, b) = server
            .send(
                Method::PUT,
                "/v1/device-list",
                t,
                &list(stale, &alice.account, &alice.user_id),
            )
            .await;
        assert_error(s, &b, StatusCode::CONFLICT, "stale_device_list");
    }
    let forger = AccountIdentityKeyPair::generate(&mut OsRng);
    let (s, b) = server
        .send(
            Method::PUT,
            "/v1/device-list",
            t,
            &list(9, &forger, &alice.user_id),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_signature");
    let (s, b) = server
        .send(
            Method::PUT,
            "/v1/device-list",
            Some(bob.token(0)),
            &list(9, &alice.account, &alice.user_id),
        )
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "forbidden");
    let (s, b) = server
        .send(
            Method::PUT,
            "/v1/device-list",
            t,
            &json!({"device_list": B64.encode([1u8, 2, 3])}),
        )
        .await;
    // Issue 10, item 6: what the documents promise for a list that does not decode.
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_device_list");
    let (s, b) = server
        .send(
            Method::PUT,
            "/v1/device-list",
            t,
            &list(6, &alice.account, &alice.user_id),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let (s, b) = server
        .get(
            &format!("/v1/device-list/{}", alice.user_id),
            Some(bob.token(0)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let account = AccountIdentityKey::from_bytes(&decode(&b["account_key"])).unwrap();
    assert_eq!(account, alice.account.public());
    let served = DeviceList::from_bytes(&decode(&b["device_list"])).unwrap();
    served.verify(&account).unwrap();
    assert_eq!(served.version(), 6);
    assert_eq!(served.devices().len(), 2);
    server.stop().await;
}

async fn all_devices_bundle_and_account_view(backend: Backend) {
    let server = Server::start(backend).await;
    let mut alice = Account::register(&server, "alice").await;
    alice.add_device(&server, 7).await;
    alice.add_device(&server, 3).await;
    let bob = Account::register(&server, "bob").await;
    // Devices 1 and 7 upload keys; device 3 has not yet, so it has no bundle.
    for i in [0, 1] {
        let (s, b) = server
            .post(
                "/v1/keys",
                Some(alice.token(i)),
                &key_upload(&alice.devices[i].identity, 10, 2, 1, true),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    // Device 3 uploads one-time keys but no signed prekey: it has no bundle, and fetches
    // must not consume its keys.
    let mut only_otk = key_upload(&alice.devices[2].identity, 50, 3, 0, false);
    only_otk["signed_prekey"] = Value::Null;
    let (s, b) = server
        .post("/v1/keys", Some(alice.token(2)), &only_otk)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = server
        .get(
            &format!("/v1/bundles/{}/3", alice.user_id),
            Some(bob.token(0)),
        )
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_device"))
    );
    let (s, b) = server
        .get(
            &format!("/v1/bundles/{}", alice.user_id),
            Some(bob.token(0)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let bundles = b["bundles"].as_array().unwrap();
    let ids: Vec<u64> = bundles
        .iter()
        .map(|x| x["device_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![1, 7]);
    for x in bundles {
        let bundle = PreKeyBundle::from_bytes(&decode(&x["bundle"])).unwrap();
        bundle.verify().unwrap();
        assert_eq!(bundle.one_time_prekey.map(|k| k.id), Some(10));
        let otk = OneTimePreKeyPublic::from_bytes(&decode(&x["one_time_prekey"])).unwrap();
        assert_eq!(otk.id, 10);
        let kem = KemPreKeyPublic::from_bytes(&decode(&x["kem_prekey"])).unwrap();
        assert_eq!(kem.kind, KemPreKeyKind::OneTime);
    }
    let (_, counts) = server.get("/v1/keys/counts", Some(alice.token(1))).await;
    assert_eq!(counts["one_time"], 1);
    let (_, counts) = server.get("/v1/keys/counts", Some(alice.token(2))).await;
    assert_eq!(counts["one_time"], 3);
    assert_eq!(counts["has_signed_prekey"], false);

    let (s, b) = server
        .get(
            &format!("/v1/accounts/{}", alice.user_id),
            Some(bob.token(0)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let account = AccountIdentityKey::from_bytes(&decode(&b["account_key"])).unwrap();
    let devices = b["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 3);
    for d in devices {
        let cert = DeviceCertificate::from_bytes(&decode(&d["certificate"])).unwrap();
        cert.verify(&account).unwrap();
        assert_eq!(
            u64::from(cert.device_id()),
            d["device_id"].as_u64().unwrap()
        );
    }
    server.stop().await;
}

async fn bundle_fetches_are_rate_limited(backend: Backend) {
    let server = Server::start_with(backend, |c| {
        c.bundle_burst = 3;
        c.bundle_per_minute = 1;
    })
    .await;
    let alice = Account::register(&server, "alice").await;
    let carol = Account::register(&server, "carol").await;
    let (s, _) = server
        .post(
            "/v1/keys",
            Some(alice.token(0)),
            &key_upload(&alice.devices[0].identity, 1, 10, 0, false),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let mallory = Account::register(&server, "mallory").await;
    let path = format!("/v1/bundles/{}/1", alice.user_id);
    for _ in 0..3 {
        let (s, b) = server.get(&path, Some(mallory.token(0))).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let (s, headers, b) = server
        .raw(Method::GET, &path, Some(mallory.token(0)), None, vec![])
        .await;
    assert_error(s, &b, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // The all-devices endpoint shares the bucket.
    let (s, b) = server
        .get(
            &format!("/v1/bundles/{}", alice.user_id),
            Some(mallory.token(0)),
        )
        .await;
    assert_error(s, &b, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    // Mallory drained 3 of 10 keys; the rest are still there for others.
    let (_, counts) = server.get("/v1/keys/counts", Some(alice.token(0))).await;
    assert_eq!(counts["one_time"], 7);
    // Other requesters, and other targets for mallory, are unaffected.
    let (s, _) = server.get(&path, Some(carol.token(0))).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = server
        .get(
            &format!("/v1/bundles/{}", carol.user_id),
            Some(mallory.token(0)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    server.stop().await;
}

async fn tickets_verify_with_the_published_key(backend: Backend) {
    let server = Server::start(backend).await;
    let alice = Account::register(&server, "alice").await;
    let (s, b) = server
        .post("/v1/tickets", Some(alice.token(0)), &json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let text = b["ticket"].as_str().unwrap();
    let key = server.keyserver.ticket_verifying_key();
    let ticket = e2ee_ticket::Ticket::verify_text(text, &key, now()).unwrap();
    assert_eq!(ticket.device.user_id(), alice.user_id);
    assert_eq!(ticket.device.device, 1);
    assert_eq!(ticket.expires_at, b["expires_at"].as_u64().unwrap());
    assert!(ticket.expires_at > now() && ticket.expires_at <= now() + 3600);
    let (s, b) = server.get("/v1/ticket-key", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(decode(&b["public_key"]), key.as_bytes().to_vec());
    let (s, b) = server.post("/v1/tickets", None, &json!({})).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "unauthorized");
    server.stop().await;
}

async fn one_account_cannot_drain_one_time_keys(backend: Backend) {
    let server = Server::start_with(backend, |c| {
        c.one_time_burst = 2;
        c.one_time_per_hour = 1;
    })
    .await;
    let alice = Account::register(&server, "alice").await;
    let (s, _) = server
        .post(
            "/v1/keys",
            Some(alice.token(0)),
            &key_upload(&alice.devices[0].identity, 1, 10, 10, true),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let mallory = Account::register(&server, "mallory").await;
    let path = format!("/v1/bundles/{}/1", alice.user_id);
    let mut kinds = vec![];
    for _ in 0..6 {
        let (s, b) = server.get(&path, Some(mallory.token(0))).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let bundle = PreKeyBundle::from_bytes(&decode(&b["bundle"])).unwrap();
        bundle.verify().unwrap();
        kinds.push((
            bundle.one_time_prekey.is_some(),
            bundle.kem_prekey.unwrap().kind,
        ));
    }
    let consumed = (true, KemPreKeyKind::OneTime);
    let spared = (false, KemPreKeyKind::LastResort);
    assert_eq!(
        kinds,
        vec![consumed, consumed, spared, spared, spared, spared]
    );
    let (_, counts) = server.get("/v1/keys/counts", Some(alice.token(0))).await;
    assert_eq!(
        (counts["one_time"].as_u64(), counts["kem_one_time"].as_u64()),
        (Some(8), Some(8))
    );
    // Others still get one-time keys.
    let bob = Account::register(&server, "bob").await;
    let (_, b) = server.get(&path, Some(bob.token(0))).await;
    assert!(!b["one_time_prekey"].is_null(), "{b}");
    server.stop().await;
}

async fn concurrent_all_device_fetches_take_one_key_per_device(backend: Backend) {
    const OTK: usize = 25;
    const FETCHES: usize = 40;
    let server = Server::start(backend).await;
    let mut alice = Account::register(&server, "alice").await;
    alice.add_device(&server, 2).await;
    for i in 0..2 {
        let (s, _) = server
            .post(
                "/v1/keys",
                Some(alice.token(i)),
                &key_upload(&alice.devices[i].identity, 1, OTK, 0, true),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let bob = Account::register(&server, "bob").await;
    let server = std::sync::Arc::new(server);
    let mut tasks = vec![];
    for i in 0..FETCHES {
        let server = server.clone();
        let token = bob.token(0).to_owned();
        // Half fetch all devices, half fetch device 2 alone: both paths race for device 2.
        let path = if i % 2 == 0 {
            format!("/v1/bundles/{}", alice.user_id)
        } else {
            format!("/v1/bundles/{}/2", alice.user_id)
        };
        tasks.push(tokio::spawn(async move {
            let (status, body) = server.get(&path, Some(&token)).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let views = match body["bundles"].as_array() {
                Some(all) => all.clone(),
                None => vec![body],
            };
            views
                .iter()
                .map(|v| {
                    let bundle = PreKeyBundle::from_bytes(&decode(&v["bundle"])).unwrap();
                    (
                        v["device_id"].as_u64().unwrap(),
                        bundle.one_time_prekey.map(|k| k.id),
                    )
                })
                .collect::<Vec<_>>()
        }));
    }
    let mut served: [Vec<u32>; 2] = [vec![], vec![]];
    let mut fetched = [0usize; 2];
    for t in tasks {
        for (device, otk) in t.await.unwrap() {
            let d = usize::from(device == 2);
            fetched[d] += 1;
            served[d].extend(otk);
        }
    }
    assert_eq!(fetched, [FETCHES / 2, FETCHES]);
    for ids in &served {
        let unique: HashSet<_> = ids.iter().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "a one-time prekey was served twice"
        );
    }
    assert_eq!(served[0].len(), FETCHES / 2);
    assert_eq!(served[1].len(), OTK);
    let server = std::sync::Arc::into_inner(server).unwrap();
    server.stop().await;
}

async fn delete_device(
    server: &Server,
    user_id: &str,
    device_id: u32,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let path = format!("/v1/accounts/{user_id}/devices/{device_id}");
    let (s, _, b) = server.raw(Method::DELETE, &path, token, None, vec![]).await;
    (s, b)
}

async fn a_device_is_removed_by_its_own_account_with_its_keys_and_credential(backend: Backend) {
    let server = Server::start(backend).await;
    let mut alice = Account::register(&server, "alice").await;
    let lost = alice.add_device(&server, 2).await;
    let bob = Account::register(&server, "bob").await;
    let (s, b) = server
        .post(
            "/v1/keys",
            Some(alice.token(lost)),
            &key_upload(&alice.devices[lost].identity, 10, 5, 2, true),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let remove = |token| delete_device(&server, &alice.user_id, 2, token);

    // The all-in-one server hooks its relay in here.
    let told = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = told.clone();
    server.keyserver.on_device_removed(move |removal| {
        sink.lock()
            .unwrap()
            .push((removal.device.user_id().to_owned(), removal.device.device))
    });

    // Nobody else may remove it.
    let (s, b) = remove(None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    let (s, b) = remove(Some(bob.token(0))).await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "forbidden");
    let (s, b) = server
        .get(
            &format!("/v1/bundles/{}/2", alice.user_id),
            Some(bob.token(0)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // Another device of the account removes it: 204 and an empty body.
    assert!(told.lock().unwrap().is_empty());
    let (s, b) = remove(Some(alice.token(0))).await;
    assert_eq!((s, &b), (StatusCode::NO_CONTENT, &Value::Null));
    assert_eq!(*told.lock().unwrap(), vec![(alice.user_id.clone(), 2)]);
    // Its keys are gone, its credential no longer works, the account view no longer lists it.
    let (s, b) = server
        .get(
            &format!("/v1/bundles/{}/2", alice.user_id),
            Some(bob.token(0)),
        )
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "unknown_device");
    let (s, b) = server
        .post("/v1/tickets", Some(alice.token(lost)), &json!({}))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    let (s, b) = server
        .get(
            &format!("/v1/accounts/{}", alice.user_id),
            Some(bob.token(0)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let ids: Vec<u64> = b["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![1]);
    // Removing it again: 404. The remaining device still works.
    let (s, b) = remove(Some(alice.token(0))).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "unknown_device");
    let (s, b) = server
        .post("/v1/tickets", Some(alice.token(0)), &json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(told.lock().unwrap().len(), 1);
    // The device id can be certified and registered again (with a consent signed after the
    // removal: removals.rs).
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    alice.add_device(&server, 2).await;
    server.stop().await;
}

/// Issue 9, F3 (defence in depth): an identity key already registered to one account cannot
/// be registered to another, nor to a second device of the same account, even with a valid
/// binding and certificate (which only the key's holder could make).
async fn a_device_identity_key_registers_to_one_account_only(backend: Backend) {
    let server = Server::start(backend).await;
    let alice = Account::register(&server, "alice").await;
    let taken = &alice.devices[0].identity;
    let mallory = AccountIdentityKeyPair::generate(&mut OsRng);
    let user = common::unique_user("mallory");
    let (s, b) = server
        .post(
            "/v1/accounts",
            None,
            &json!({
                "user_id": user,
                "account_key": B64.encode(mallory.public().to_bytes()),
                "device_certificate": certificate(&mallory, &user, 1, taken),
            }),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, "identity_key_in_use");
    // Nothing was created: the user id is still free.
    let (s, b) = server
        .get(&format!("/v1/accounts/{user}"), Some(alice.token(0)))
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "unknown_user");
    let (s, b) = server
        .post(
            &format!("/v1/accounts/{}/devices", alice.user_id),
            None,
            &enrolment(&alice.account, &alice.user_id, 2, taken),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, "identity_key_in_use");
    server.stop().await;
}

/// The bundle a key server serves carries the device binding from its certificate, and it
/// verifies against the device's identity.
async fn bundles_carry_the_devices_own_binding(backend: Backend) {
    let server = Server::start(backend).await;
    let alice = Account::register(&server, "alice").await;
    let bob = Account::register(&server, "bob").await;
    let (s, b) = server
        .post(
            "/v1/keys",
            Some(alice.token(0)),
            &key_upload(&alice.devices[0].identity, 1, 1, 1, true),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = server
        .get(
            &format!("/v1/bundles/{}/1", alice.user_id),
            Some(bob.token(0)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let bundle = PreKeyBundle::from_bytes(&decode(&b["bundle"])).unwrap();
    bundle.verify().unwrap();
    assert_eq!(bundle.binding.address().user_id(), alice.user_id);
    assert_eq!(bundle.binding.address().device_id(), 1);
    assert_eq!(*bundle.binding.account(), alice.account.public());
    let cert = DeviceCertificate::from_bytes(&decode(&b["certificate"])).unwrap();
    assert_eq!(cert.binding(), &bundle.binding);
    server.stop().await;
}

/// Issue 10, item 3: ten parallel uploads of 100 one-time prekeys at 900 stored leave the
/// device at the cap (1,000): exactly one is taken, nine are refused, none partially.
async fn the_one_time_prekey_cap_holds_under_concurrent_uploads(backend: Backend) {
    let server = Server::start(backend).await;
    assert_eq!(server.config.max_stored_prekeys, 1000);
    let alice = Account::register(&server, "alice").await;
    let identity = &alice.devices[0].identity;
    for batch in 0..9u32 {
        let (s, b) = server
            .post(
                "/v1/keys",
                Some(alice.token(0)),
                &key_upload(identity, 1 + batch * 100, 100, 0, false),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let uploads: Vec<Value> = (0..10u32)
        .map(|i| key_upload(identity, 10_000 + i * 100, 100, 0, false))
        .collect();
    let answers = futures_util::future::join_all(
        uploads
            .iter()
            .map(|body| server.post("/v1/keys", Some(alice.token(0)), body)),
    )
    .await;
    let taken = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    for (s, b) in answers.iter().filter(|(s, _)| *s != StatusCode::OK) {
        assert_error(*s, b, StatusCode::CONFLICT, "too_many_prekeys");
    }
    assert_eq!(taken, 1, "{answers:?}");
    let (s, counts) = server.get("/v1/keys/counts", Some(alice.token(0))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(counts["one_time"], 1000, "{counts}");
    server.stop().await;
}

/// Issue 10, item 6: base64 with non-zero trailing bits (another spelling of the same bytes)
/// is refused, like every other non-canonical encoding; so is a missing pad.
async fn non_canonical_base64_is_refused(backend: Backend) {
    let server = Server::start(backend).await;
    let account = AccountIdentityKeyPair::generate(&mut OsRng);
    let identity = IdentityKeyPair::generate(&mut OsRng);
    let user = common::unique_user("b64");
    let canonical = B64.encode(account.public().to_bytes());
    // 32 bytes: 43 characters and one '='; the 43rd carries 4 data bits and 2 zero bits.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let last = alphabet
        .iter()
        .position(|&c| c == canonical.as_bytes()[42])
        .unwrap();
    let mut other_spelling = canonical.clone().into_bytes();
    other_spelling[42] = alphabet[last | 1];
    let other_spelling = String::from_utf8(other_spelling).unwrap();
    for account_key in [other_spelling, canonical.trim_end_matches('=').to_owned()] {
        let (s, b) = server
            .post(
                "/v1/accounts",
                None,
                &json!({
                    "user_id": user,
                    "account_key": account_key,
                    "device_certificate": certificate(&account, &user, 1, &identity),
                }),
            )
            .await;
        assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_base64");
    }
    // Canonical base64 of a non-canonical Ed25519 key (y = p, the second spelling of y = 0).
    let mut y_is_p = [0xffu8; 32];
    y_is_p[0] = 0xed;
    y_is_p[31] = 0x7f;
    let (s, b) = server
        .post(
            "/v1/accounts",
            None,
            &json!({
                "user_id": user,
                "account_key": B64.encode(y_is_p),
                "device_certificate": certificate(&account, &user, 1, &identity),
            }),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_key");
    server.stop().await;
}
