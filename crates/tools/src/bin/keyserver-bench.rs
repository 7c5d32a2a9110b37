//! `e2ee-keyserver-bench`: load benchmark of the key server over real HTTP on loopback.
//!
//! Starts a key server in this process (SQLite in a temp dir, or PostgreSQL in a fresh
//! schema that is dropped afterwards), registers target devices with one-time prekeys, then
//! measures (1) upload latency of a 100-key one-time prekey batch and of a signed prekey plus
//! one-time KEM prekey, and (2) bundle fetches per second with `--concurrency` clients.
//! Client and server share the machine, so the figures are a lower bound for the server.
//!
//! ```sh
//! cargo run --release -p e2ee-tools --bin e2ee-keyserver-bench
//! cargo run --release -p e2ee-tools --bin e2ee-keyserver-bench -- \
//!     --postgres postgres://postgres@127.0.0.1:5432/test
//! ```

use std::{
    error::Error,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::body::Bytes;
use base64::{Engine, engine::general_purpose::STANDARD as B64};
use clap::Parser;
use e2ee_core::{
    Codec, DeviceAddress, IdentityKeyPair, KemPreKey, KemPreKeyKind, OneTimePreKey, SignedPreKey,
    device::{AccountIdentityKeyPair, DeviceBinding, DeviceCertificate},
};
use e2ee_keyserver::{Config, FloorDatabase, FloorRun, Keyserver, measure_fetch_floor};
use e2ee_tools::clock::now_secs;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use rand_core::{OsRng, RngCore};
use serde_json::{Value, json};

type BoxError = Box<dyn Error + Send + Sync>;
type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Key server load benchmark.
#[derive(Debug, Parser)]
#[command(
    name = "e2ee-keyserver-bench",
    about = "Benchmark of the key server: prekey uploads and bundle fetches; prints a report"
)]
struct Args {
    /// PostgreSQL base URL; the benchmark creates and drops its own schema there. Unset:
    /// SQLite in a temporary directory.
    #[arg(long)]
    postgres: Option<String>,
    /// Target devices (each uploads `--keys-per-target` one-time prekeys).
    #[arg(long, default_value_t = 64)]
    targets: usize,
    /// One-time prekeys uploaded per target (in batches of 100).
    #[arg(long, default_value_t = 300)]
    keys_per_target: usize,
    /// Bundle fetches to time through HTTP, and again for each floor run (the key budget,
    /// targets x keys, must cover them all so every fetch consumes a key).
    #[arg(long, default_value_t = 6000)]
    fetches: usize,
    /// Concurrent fetching clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Paced fetches per second in all (latency from each fetch's scheduled start, so a
    /// stall counts for every fetch it delays); 0: as fast as the clients can.
    #[arg(long, default_value_t = 0)]
    rate: u32,
    /// Database pool size.
    #[arg(long, default_value_t = 16)]
    pool: u32,
}

struct Target {
    user_id: String,
    identity: IdentityKeyPair,
    credential: String,
}

/// `POST /v1/keys` as `credential`; the time it took, or an error unless it answered 200.
async fn upload(
    client: &HttpClient,
    base: &str,
    credential: &str,
    body: &Value,
) -> Result<Duration, BoxError> {
    let started = Instant::now();
    let (status, resp) = call(
        client,
        base,
        Method::POST,
        "/v1/keys",
        Some(credential),
        Some(body),
    )
    .await?;
    if status != StatusCode::OK {
        return Err(format!("upload: {status} {resp}").into());
    }
    Ok(started.elapsed())
}

async fn call(
    client: &HttpClient,
    base: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<(StatusCode, Value), BoxError> {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let bytes = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Bytes::from(b.to_string())
        }
        None => Bytes::new(),
    };
    let resp = client.request(req.body(Full::new(bytes))?).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)?
    };
    Ok((status, value))
}

async fn register(client: &HttpClient, base: &str, prefix: &str) -> Result<Target, BoxError> {
    let user_id = format!("{prefix}-{:016x}", OsRng.next_u64());
    let account = AccountIdentityKeyPair::generate(&mut OsRng);
    let identity = IdentityKeyPair::generate(&mut OsRng);
    let binding = DeviceBinding::sign(
        &identity,
        DeviceAddress::new(user_id.as_str(), 1)?,
        account.public(),
    );
    let cert = DeviceCertificate::sign(&account, identity.public(), &binding, now_secs())?;
    let (status, body) = call(
        client,
        base,
        Method::POST,
        "/v1/accounts",
        None,
        Some(&json!({
            "user_id": user_id,
            "account_key": B64.encode(account.public().to_bytes()),
            "device_certificate": B64.encode(cert.to_bytes()),
        })),
    )
    .await?;
    if status != StatusCode::CREATED {
        return Err(format!("register: {status} {body}").into());
    }
    let credential = body["credential"]
        .as_str()
        .ok_or("no credential")?
        .to_owned();
    Ok(Target {
        user_id,
        identity,
        credential,
    })
}

/// `concurrency` clients each making `per_worker` unauthenticated GETs of `path`; returns
/// the number made and the wall time.
async fn http_only(
    client: &HttpClient,
    base: &str,
    concurrency: usize,
    per_worker: usize,
    path: &'static str,
) -> Result<(usize, Duration), BoxError> {
    let started = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (client, base) = (client.clone(), base.to_owned());
        workers.push(tokio::spawn(async move {
            for _ in 0..per_worker {
                let (status, body) = call(&client, &base, Method::GET, path, None, None).await?;
                if status != StatusCode::OK {
                    return Err::<_, BoxError>(format!("{path}: {status} {body}").into());
                }
            }
            Ok(())
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok((concurrency * per_worker, started.elapsed()))
}

fn otk_batch(first_id: u32, n: usize) -> Vec<String> {
    OneTimePreKey::generate_batch(&mut OsRng, first_id, n)
        .iter()
        .map(|k| B64.encode(k.public().to_bytes()))
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / u32::try_from(samples.len().max(1)).unwrap_or(1);
    println!(
        "{name}: n={} mean={:.2?} p50={:.2?} p99={:.2?} max={:.2?}",
        samples.len(),
        mean,
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or_default()
    );
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("ks-bench-{:016x}", OsRng.next_u64()));
    let mut config = Config {
        data_dir: dir.clone(),
        bundle_burst: u32::MAX / 2,
        bundle_per_minute: u32::MAX / 2,
        one_time_burst: u32::MAX / 2,
        one_time_per_hour: u32::MAX / 2,
        db_max_connections: args.pool,
        max_stored_prekeys: u32::try_from(args.keys_per_target).unwrap_or(u32::MAX),
        ..Config::default()
    };
    let mut schema = None;
    if let Some(url) = &args.postgres {
        let name = format!("ks_bench_{:016x}", OsRng.next_u64());
        let admin = sqlx::PgPool::connect(url).await?;
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&admin)
            .await?;
        admin.close().await;
        let sep = if url.contains('?') { '&' } else { '?' };
        config.database_url = Some(format!("{url}{sep}options=-csearch_path%3D{name}"));
        schema = Some(name);
    }
    let result = run(&args, &config).await;
    if let (Some(url), Some(name)) = (&args.postgres, &schema) {
        let admin = sqlx::PgPool::connect(url).await?;
        sqlx::query(&format!("DROP SCHEMA {name} CASCADE"))
            .execute(&admin)
            .await?;
        admin.close().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(args: &Args, config: &Config) -> Result<(), BoxError> {
    // The HTTP fetches, then one floor run on PostgreSQL or two on SQLite.
    let floor_runs = if args.postgres.is_some() { 1 } else { 2 };
    let concurrency = args.concurrency.max(1);
    let per_worker = args.fetches.div_ceil(concurrency);
    let needed = per_worker * concurrency + floor_runs * args.fetches;
    if args.targets * args.keys_per_target < needed {
        return Err(format!(
            "{} targets x {} keys cannot give {needed} fetches a one-time prekey each",
            args.targets, args.keys_per_target
        )
        .into());
    }
    let backend = if args.postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite (WAL)"
    };
    let keyserver = Keyserver::start(config).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let router = keyserver.router();
    // Served as the binaries serve (TCP_NODELAY, timeouts, caps), not by bare axum::serve.
    let server = tokio::spawn(e2ee_http_serve::serve(
        listener,
        router,
        e2ee_http_serve::HttpLimits::default(),
        std::future::pending(),
    ));
    // TCP_NODELAY as real clients set it: without it a request could wait for a delayed ACK.
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency * 2)
        .build(connector);

    println!(
        "backend={backend} targets={} keys/target={} fetches={} concurrency={} pool={}",
        args.targets, args.keys_per_target, args.fetches, args.concurrency, args.pool
    );

    // Set-up and upload latency: every target uploads a signed prekey, a last-resort KEM
    // prekey, then its one-time prekeys in batches of 100 (each batch timed).
    let mut targets = Vec::with_capacity(args.targets);
    let mut batch_latency = Vec::new();
    let mut kem_latency = Vec::new();
    for _ in 0..args.targets {
        let target = register(&client, &base, "target").await?;
        let spk = SignedPreKey::generate(&mut OsRng, &target.identity, 1, now_secs());
        let kem = KemPreKey::generate(
            &mut OsRng,
            &target.identity,
            1,
            KemPreKeyKind::LastResort,
            now_secs(),
        );
        let kem_ot = KemPreKey::generate(
            &mut OsRng,
            &target.identity,
            2,
            KemPreKeyKind::OneTime,
            now_secs(),
        );
        let body = json!({
            "signed_prekey": B64.encode(spk.public().to_bytes()),
            "kem_prekeys": [B64.encode(kem.public().to_bytes()), B64.encode(kem_ot.public().to_bytes())],
        });
        kem_latency.push(upload(&client, &base, &target.credential, &body).await?);
        let mut uploaded = 0;
        while uploaded < args.keys_per_target {
            let n = (args.keys_per_target - uploaded).min(100);
            let body = json!({ "one_time_prekeys": otk_batch(1 + uploaded as u32, n) });
            let took = upload(&client, &base, &target.credential, &body).await?;
            if n == 100 {
                batch_latency.push(took);
            }
            uploaded += n;
        }
        targets.push(target);
    }
    report("upload 100 one-time prekeys (POST /v1/keys)", batch_latency);
    report(
        "upload signed prekey + 2 KEM prekeys (POST /v1/keys)",
        kem_latency,
    );

    // Bundle fetches: `concurrency` requesters, each fetching round-robin over the targets.
    let mut requesters = Vec::with_capacity(args.concurrency);
    let mut requester_ids = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        let requester = register(&client, &base, "req").await?;
        requester_ids.push(requester.user_id);
        requesters.push(requester.credential);
    }
    let targets: Arc<Vec<String>> = Arc::new(targets.into_iter().map(|t| t.user_id).collect());
    let pace = (args.rate > 0).then(|| Duration::from_secs(1) / args.rate);
    let started = Instant::now();
    let mut workers = Vec::new();
    for (w, credential) in requesters.into_iter().enumerate() {
        let client = client.clone();
        let base = base.clone();
        let targets = targets.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_worker);
            let mut with_otk = 0usize;
            for i in 0..per_worker {
                let target = &targets[(w * per_worker + i) % targets.len()];
                let t0 = match pace {
                    Some(interval) => {
                        // Worker w takes every `concurrency`-th slot of the schedule.
                        let slot = (i * concurrency + w) as u32;
                        let due = started + interval * slot;
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    None => Instant::now(),
                };
                let (status, body) = call(
                    &client,
                    &base,
                    Method::GET,
                    &format!("/v1/bundles/{target}/1"),
                    Some(&credential),
                    None,
                )
                .await?;
                latencies.push(t0.elapsed());
                if status != StatusCode::OK {
                    return Err::<_, BoxError>(format!("fetch: {status} {body}").into());
                }
                if !body["one_time_prekey"].is_null() {
                    with_otk += 1;
                }
            }
            Ok((latencies, with_otk))
        }));
    }
    let mut latencies = Vec::new();
    let mut with_otk = 0;
    for w in workers {
        let (l, n) = w.await??;
        latencies.extend(l);
        with_otk += n;
    }
    let elapsed = started.elapsed();
    let total = latencies.len();
    if let Some(interval) = pace {
        println!(
            "paced at {} fetches/s (one every {interval:.2?})",
            args.rate
        );
    }
    println!(
        "bundle fetches: {total} in {:.2?} = {:.0} fetches/s ({with_otk} consumed a one-time prekey)",
        elapsed,
        total as f64 / elapsed.as_secs_f64()
    );
    report(
        "bundle fetch latency (GET /v1/bundles/{user}/{device})",
        latencies,
    );
    let http_rate = total as f64 / elapsed.as_secs_f64();

    // The floor: the same statements straight on the database, no HTTP in between.
    let requester = DeviceAddress::new(requester_ids[0].as_str(), 1)?;
    let target_devices = targets
        .iter()
        .map(|t| DeviceAddress::new(t.as_str(), 1))
        .collect::<Result<Vec<_>, _>>()?;
    let sqlite_file = config.data_dir.join("keyserver.db");
    let floors: Vec<(&str, FloorDatabase<'_>)> = match &config.database_url {
        Some(url) => vec![(
            "concurrent, one statement per fetch and credential",
            FloorDatabase::Postgres {
                url,
                connections: args.pool,
            },
        )],
        None => vec![
            (
                "one connection, a transaction per fetch",
                FloorDatabase::Sqlite {
                    path: &sqlite_file,
                    batched: false,
                },
            ),
            (
                "one connection, the key server's batch per transaction",
                FloorDatabase::Sqlite {
                    path: &sqlite_file,
                    batched: true,
                },
            ),
        ],
    };
    for (how, database) in floors {
        let run: FloorRun =
            measure_fetch_floor(database, &requester, &target_devices, args.fetches).await?;
        let rate = run.fetches as f64 / run.elapsed.as_secs_f64();
        println!(
            "floor ({how}): {} in {:.2?} = {rate:.0} fetches/s ({} consumed a one-time prekey); \
             HTTP / floor = {:.2}",
            run.fetches,
            run.elapsed,
            run.with_one_time_prekey,
            http_rate / rate
        );
    }

    // The HTTP stack alone: as many requests to a handler that touches nothing.
    let (requests, took) =
        http_only(&client, &base, args.concurrency, per_worker, "/health").await?;
    let rate = requests as f64 / took.as_secs_f64();
    println!(
        "HTTP alone (GET /health, same clients): {requests} in {took:.2?} = {rate:.0} requests/s; \
         bundle fetches / HTTP alone = {:.2}",
        http_rate / rate
    );

    server.abort();
    let _ = server.await;
    keyserver.close().await;
    Ok(())
}
