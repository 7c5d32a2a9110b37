//! Operating the key server: the OpenAPI document, app tokens, ticket key persistence,
//! `--help`, SIGTERM, garbage probes, and the bundle-consumption
//! invariant as a property test.

// Panicking on failure is what test helpers are for (see api.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::{
    Account, B64, Backend, Engine, Server, certificate, enrolment, key_upload, unique_user,
};
use e2ee_core::{Codec, IdentityKeyPair, PreKeyBundle, device::AccountIdentityKeyPair};
use ed25519_dalek::SigningKey;
use hyper::StatusCode;
use proptest::prelude::*;
use rand_core::OsRng;
use serde_json::json;

on_both_backends!(
    bundle_consumption_matches_a_model,
    garbage_never_yields_a_5xx
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_every_route() {
    let server = Server::start(Backend::Sqlite).await;
    let (status, doc) = server.get("/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let routes = [
        ("/health", "get"),
        ("/openapi.json", "get"),
        ("/v1/accounts", "post"),
        ("/v1/accounts/{user_id}", "get"),
        ("/v1/accounts/{user_id}/devices", "post"),
        ("/v1/accounts/{user_id}/devices/{device_id}", "delete"),
        ("/v1/keys", "post"),
        ("/v1/keys/counts", "get"),
        ("/v1/bundles/{user_id}", "get"),
        ("/v1/bundles/{user_id}/{device_id}", "get"),
        ("/v1/device-list", "put"),
        ("/v1/device-list/{user_id}", "get"),
        ("/v1/tickets", "post"),
        ("/v1/ticket-key", "get"),
        ("/v1/provisioning/{channel}/{slot}", "put"),
    ];
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.len(), routes.len(), "document and router disagree");
    for (path, method) in routes {
        let op = &doc["paths"][path][method];
        assert!(op["responses"].is_object(), "{method} {path} undocumented");
        // Every documented route exists: anything but the JSON 404/405 fallbacks.
        let concrete = path
            .replace("{user_id}", "nobody")
            .replace("{device_id}", "1")
            .replace("{channel}", &"ab".repeat(32))
            .replace("{slot}", "1");
        let m = hyper::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let (status, _, body) = server
            .raw(m, &concrete, None, Some("application/json"), b"{}".to_vec())
            .await;
        assert!(
            body["code"] != "not_found" && body["code"] != "method_not_allowed",
            "{method} {path}: {status} {body}"
        );
    }
    // Every `$ref` resolves.
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(doc["components"]["schemas"][name].is_object(), "{name}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_tokens_bind_accounts_to_app_users() {
    let app = SigningKey::generate(&mut OsRng);
    let public = B64.encode(app.verifying_key().as_bytes());
    let server = Server::start_with(Backend::Sqlite, |c| {
        c.jwt_public_key = Some(public);
        c.jwt_issuer = Some("https://login.example".into());
    })
    .await;
    let user = unique_user("alice");
    let exp = common::now() + 300;
    let token = |sub: &str, key: &SigningKey| {
        e2ee_keyserver::sign_app_token(
            key,
            &json!({"sub": sub, "exp": exp, "iss": "https://login.example"}),
        )
    };
    let account = AccountIdentityKeyPair::generate(&mut OsRng);
    let dev = IdentityKeyPair::generate(&mut OsRng);
    let body = json!({
        "user_id": user,
        "account_key": B64.encode(account.public().to_bytes()),
        "device_certificate": certificate(&account, &user, 1, &dev),
    });
    let (s, b) = server.post("/v1/accounts", None, &body).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (s, b) = server
        .post("/v1/accounts", Some(&token("mallory", &app)), &body)
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let forger = SigningKey::generate(&mut OsRng);
    let (s, b) = server
        .post("/v1/accounts", Some(&token(&user, &forger)), &body)
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (s, b) = server
        .post("/v1/accounts", Some(&token(&user, &app)), &body)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // Devices need the token too.
    let dev2 = IdentityKeyPair::generate(&mut OsRng);
    let path = format!("/v1/accounts/{user}/devices");
    let body = enrolment(&account, &user, 2, &dev2);
    let (s, _) = server.post(&path, None, &body).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, b) = server.post(&path, Some(&token(&user, &app)), &body).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_key_persists_across_restarts_or_comes_from_config() {
    let dir = std::env::temp_dir().join(format!("ks-ticket-{}", unique_user("t")));
    let config = e2ee_keyserver::Config {
        data_dir: dir.clone(),
        ..Default::default()
    };
    let first = e2ee_keyserver::Keyserver::start(&config).await.unwrap();
    let key = first.ticket_verifying_key();
    first.close().await;
    let second = e2ee_keyserver::Keyserver::start(&config).await.unwrap();
    assert_eq!(second.ticket_verifying_key(), key);
    second.close().await;
    let file = std::fs::read_to_string(dir.join(e2ee_keyserver::TICKET_KEY_FILE)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(e2ee_keyserver::TICKET_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "ticket key readable by others: {mode:o}");
    }
    // A configured seed wins over the file.
    let seed = [7u8; 32];
    let configured = e2ee_keyserver::Config {
        ticket_key: Some(B64.encode(seed)),
        ..config.clone()
    };
    let third = e2ee_keyserver::Keyserver::start(&configured).await.unwrap();
    assert_eq!(
        third.ticket_verifying_key(),
        SigningKey::from_bytes(&seed).verifying_key()
    );
    third.close().await;
    assert!(!file.is_empty());
    let bad = e2ee_keyserver::Config {
        ticket_key: Some("not base64!".into()),
        ..config.clone()
    };
    assert!(e2ee_keyserver::Keyserver::start(&bad).await.is_err());
    let bad_url = e2ee_keyserver::Config {
        database_url: Some("mysql://x".into()),
        ..config
    };
    assert!(e2ee_keyserver::Keyserver::start(&bad_url).await.is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_explains_every_option() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_e2ee-keyserver"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--keyserver-data-dir",
        "--keyserver-database-url",
        "--keyserver-db-max-connections",
        "--keyserver-ticket-key",
        "--keyserver-ticket-lifetime",
        "--keyserver-jwt-public-key",
        "--keyserver-jwt-issuer",
        "--keyserver-jwt-audience",
        "--keyserver-bundle-burst",
        "--keyserver-bundle-per-minute",
        "--keyserver-one-time-burst",
        "--keyserver-one-time-per-hour",
        "--keyserver-max-body",
        "--keyserver-max-stored-prekeys",
    ] {
        let line = text
            .lines()
            .position(|l| l.trim_start().starts_with(flag))
            .unwrap_or_else(|| panic!("{flag} missing from --help:\n{text}"));
        // The line after the flag is its explanation.
        let next = text.lines().nth(line + 1).unwrap_or("");
        assert!(next.trim().len() > 10, "{flag} has no explanation:\n{text}");
    }
    assert!(text.contains("[env: E2EE_KEYSERVER_DATABASE_URL="));
}

#[derive(Debug, Clone)]
enum Op {
    Upload(usize),
    Fetch,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            (1usize..8).prop_map(Op::Upload),
            Just(Op::Fetch),
            Just(Op::Fetch)
        ],
        1..24,
    )
}

/// Model: the server holds a set of one-time key ids; each fetch returns the smallest one
/// and removes it (or none when empty); counts always equal the model's size.
async fn run_model(server: &Server, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let alice = Account::register(server, "alice").await;
    let bob = Account::register(server, "bob").await;
    let mut model = BTreeSet::new();
    let mut next_id = 1u32;
    let mut served = BTreeSet::new();
    let path = format!("/v1/bundles/{}/1", alice.user_id);
    for op in ops {
        match op {
            Op::Upload(n) => {
                let upload = key_upload(&alice.devices[0].identity, next_id, n, 0, false);
                let (s, counts) = server.post("/v1/keys", Some(alice.token(0)), &upload).await;
                prop_assert_eq!(s, StatusCode::OK);
                model.extend(next_id..next_id + n as u32);
                next_id += n as u32;
                prop_assert_eq!(counts["one_time"].as_u64(), Some(model.len() as u64));
            }
            Op::Fetch => {
                let (s, body) = server.get(&path, Some(bob.token(0))).await;
                if next_id == 1 {
                    // Nothing uploaded yet: no signed prekey, no bundle.
                    prop_assert_eq!(s, StatusCode::NOT_FOUND);
                    continue;
                }
                prop_assert_eq!(s, StatusCode::OK);
                let bytes = B64.decode(body["bundle"].as_str().unwrap_or("")).unwrap();
                let bundle = PreKeyBundle::from_bytes(&bytes).unwrap();
                let got = bundle.one_time_prekey.map(|k| k.id);
                let want = model.pop_first();
                prop_assert_eq!(got, want);
                if let Some(id) = got {
                    prop_assert!(served.insert(id), "key {} served twice", id);
                }
            }
        }
    }
    let (_, counts) = server.get("/v1/keys/counts", Some(alice.token(0))).await;
    prop_assert_eq!(counts["one_time"].as_u64(), Some(model.len() as u64));
    Ok(())
}

async fn bundle_consumption_matches_a_model(backend: Backend) {
    let server = Server::start(backend).await;
    let handle = tokio::runtime::Handle::current();
    let server_ref = &server;
    // proptest drives synchronous closures; each case blocks on the async model run.
    tokio::task::block_in_place(|| {
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 12,
            ..ProptestConfig::default()
        });
        runner
            .run(&ops(), |ops| handle.block_on(run_model(server_ref, ops)))
            .unwrap();
    });
    server.stop().await;
}

/// Random bodies, paths and credentials against every route: always a JSON 4xx (or a 2xx
/// when the garbage happens to be acceptable), never a 5xx.
async fn garbage_never_yields_a_5xx(backend: Backend) {
    use rand_core::RngCore;
    let server = Server::start(backend).await;
    let alice = Account::register(&server, "alice").await;
    let token = alice.token(0).to_owned();
    let routes = [
        (hyper::Method::POST, "/v1/accounts".to_owned()),
        (
            hyper::Method::POST,
            format!("/v1/accounts/{}/devices", alice.user_id),
        ),
        (hyper::Method::POST, "/v1/keys".to_owned()),
        (hyper::Method::PUT, "/v1/device-list".to_owned()),
        (hyper::Method::POST, "/v1/tickets".to_owned()),
        (
            hyper::Method::GET,
            format!("/v1/bundles/{}/1", alice.user_id),
        ),
    ];
    let mut rng = OsRng;
    let mut random_b64 = |max: usize| {
        let mut bytes = vec![0u8; (rng.next_u32() as usize) % max];
        rng.fill_bytes(&mut bytes);
        B64.encode(bytes)
    };
    for round in 0..20 {
        let field = random_b64(1400);
        let bodies = [
            json!({"user_id": format!("g{round}"), "account_key": random_b64(40), "device_certificate": field}),
            json!({"device_certificate": field}),
            json!({"signed_prekey": field, "one_time_prekeys": [random_b64(40)], "kem_prekeys": [field]}),
            json!({"device_list": field}),
            json!({"user_id": 5, "one_time_prekeys": {"a": 1}}),
            json!([field]),
        ];
        for (method, path) in &routes {
            for body in &bodies {
                for auth in [None, Some(token.as_str()), Some("dc1.x.1.y")] {
                    let (status, _, value) = server
                        .raw(
                            method.clone(),
                            path,
                            auth,
                            Some("application/json"),
                            body.to_string().into_bytes(),
                        )
                        .await;
                    assert!(
                        status.as_u16() < 500,
                        "{method} {path} {body}: {status} {value}"
                    );
                    if !status.is_success() {
                        assert!(value["code"].is_string(), "{status} {value}");
                    }
                }
            }
        }
        let mut raw = vec![0u8; (round * 97) % 3000];
        OsRng.fill_bytes(&mut raw);
        let (status, _, value) = server
            .raw(
                hyper::Method::POST,
                "/v1/keys",
                Some(&token),
                Some("application/json"),
                raw,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");
    }
    server.stop().await;
}

/// The binary starts with defaults plus a data dir, serves, and exits cleanly on SIGTERM.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_starts_serves_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let dir = std::env::temp_dir().join(format!("ks-bin-{}", unique_user("b")));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_e2ee-keyserver"))
        .args(["--listen", "127.0.0.1:0", "--keyserver-data-dir"])
        .arg(&dir)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // Strip ANSI escapes in case colour is on anyway.
            let mut clean = String::new();
            let mut in_escape = false;
            for c in line.chars() {
                match (in_escape, c) {
                    (false, '\x1b') => in_escape = true,
                    (true, 'm') => in_escape = false,
                    (true, _) => {}
                    (false, c) => clean.push(c),
                }
            }
            if let Some(rest) = clean.split("listen=").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or("").to_owned();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("server did not report its address");
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<axum::body::Bytes>>();
    let resp = client
        .get(format!("http://{addr}/health").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(dir.join("keyserver.db").exists());
    assert!(dir.join(e2ee_keyserver::TICKET_KEY_FILE).exists());
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no exit on SIGTERM"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&dir);
}
