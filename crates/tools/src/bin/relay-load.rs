//! `relay-load`: load generator and benchmark for the relay. Prints one JSON object.
//!
//! By default it starts the `e2ee-relay` binary that sits next to it (same target directory)
//! on a free loopback port with a fresh key and data directory, so one command measures:
//!
//! ```text
//! cargo build --release -p e2ee-relay -p e2ee-tools
//! target/release/relay-load --mode throughput --pairs 64 --messages 500000
//! target/release/relay-load --mode throughput --rate 25000 --messages 250000
//! target/release/relay-load --mode idle --connections 15000
//! target/release/relay-load --database-url postgres://postgres@127.0.0.1/test \
//!     --redis-url redis://127.0.0.1:6379 --mode throughput
//! ```
//!
//! Throughput mode: `--pairs` senders each stream to their own receiver (a different
//! connection), batching `--batch` envelopes per `SEND` with up to `--window` unanswered
//! `SEND`s in flight; receivers ack in batches. Latency is from just before the `SEND` is
//! written to when the `DELIVER` is read. Idle mode: opens `--connections` authenticated
//! connections that only wait, and reports the relay's resident memory per connection.

use std::{
    collections::HashSet,
    net::SocketAddr,
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use clap::Parser;
use e2ee_relay::{
    SqliteSync,
    wire::{ClientFrame, Codec, DeviceAddress, OutEnvelope, SendStatus, ServerFrame},
};
use e2ee_ticket::Ticket;
use e2ee_tools::clock::now_secs;
use ed25519_dalek::SigningKey;
use futures_util::{SinkExt, StreamExt};
use rand_core::{OsRng, RngCore};
use serde_json::json;
use tokio::{net::TcpStream, sync::Semaphore};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The relay's own spelling of a durability level, for its command line and the report.
fn sqlite_sync_name(sync: SqliteSync) -> &'static str {
    match sync {
        SqliteSync::Full => "full",
        SqliteSync::Normal => "normal",
    }
}
type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    /// Messages through sender/receiver pairs.
    Throughput,
    /// Idle connections and memory per connection.
    Idle,
}

#[derive(Debug, Parser)]
#[command(
    name = "relay-load",
    about = "Load generator for the e2ee relay; prints JSON"
)]
struct Args {
    /// What to measure.
    #[arg(long, value_enum, default_value = "throughput")]
    mode: Mode,
    /// Relay to load (host:port). Without it, the e2ee-relay binary next to this one is
    /// started on a free loopback port and stopped at the end.
    #[arg(long)]
    addr: Option<String>,
    /// With --addr: the ticket signing key (32-byte seed, hex) matching the relay's
    /// --ticket-public-key.
    #[arg(long)]
    ticket_signing_key: Option<String>,
    /// With --addr: the relay's process id, to report its resident memory.
    #[arg(long)]
    relay_pid: Option<u32>,
    /// Spawned relay: mailbox database URL (default: SQLite in a temporary directory).
    #[arg(long)]
    database_url: Option<String>,
    /// Spawned relay: Redis URL (multi-node mode on one node).
    #[arg(long)]
    redis_url: Option<String>,
    /// Spawned relay: SQLite durability (full = fsync per commit).
    #[arg(long, value_enum, default_value_t = SqliteSync::Full)]
    sqlite_sync: SqliteSync,
    /// Throughput: sender/receiver pairs (2 connections each).
    #[arg(long, default_value_t = 32)]
    pairs: usize,
    /// Throughput: total messages.
    #[arg(long, default_value_t = 200_000)]
    messages: u64,
    /// Throughput: envelopes per SEND frame.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Throughput: unanswered SEND frames per sender.
    #[arg(long, default_value_t = 4)]
    window: usize,
    /// Throughput: target total messages/s (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Throughput with --rate: every sender sends at the same instant of each period (the
    /// worst case: pairs x batch envelopes arrive at once), instead of spread evenly.
    #[arg(long)]
    synchronized: bool,
    /// Throughput: payload bytes per message (at least 8: a timestamp).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Idle: connections to open.
    #[arg(long, default_value_t = 15_000)]
    connections: usize,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    deadline_secs: u64,
}

fn ticket(key: &SigningKey, user: &str, device: u32) -> Result<String, Error> {
    let now = now_secs();
    Ok(Ticket {
        device: DeviceAddress::new(user, device)?,
        issued_at: now,
        expires_at: now + 3600,
    }
    .sign_to_text(key))
}

async fn connect(addr: &str, key: &SigningKey, user: &str) -> Result<Ws, Error> {
    let mut req = format!("ws://{addr}{}", e2ee_relay::WS_PATH).into_client_request()?;
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {}", ticket(key, user, 1)?))?,
    );
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(30),
        // TCP_NODELAY: a one-envelope SEND or a lone ACK must not wait for a delayed ACK.
        tokio_tungstenite::connect_async_with_config(req, None, true),
    )
    .await??;
    Ok(ws)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

struct Spawned {
    child: tokio::process::Child,
    dir: PathBuf,
    schema: Option<String>,
    redis_prefix: Option<String>,
}

async fn spawn_relay(args: &Args, key: &SigningKey) -> Result<(String, Spawned), Error> {
    let exe = std::env::current_exe()?.with_file_name("e2ee-relay");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let dir = std::env::temp_dir().join(format!("relay-load-{:016x}", OsRng.next_u64()));
    std::fs::create_dir_all(&dir)?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("--listen")
        .arg(&addr)
        .arg("--relay-data-dir")
        .arg(&dir)
        .arg("--relay-ticket-public-key")
        .arg(hex::encode(key.verifying_key().to_bytes()))
        .args([
            "--relay-send-rate",
            "100000000",
            "--relay-send-burst",
            "100000000",
        ])
        .args([
            "--relay-max-mailbox",
            "100000000",
            "--relay-max-connections",
            "19000",
            // Every load connection comes from loopback.
            "--http-max-connections-per-peer",
            "19000",
        ])
        .args(["--relay-sqlite-sync", sqlite_sync_name(args.sqlite_sync)])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true);
    let mut schema = None;
    if let Some(url) = &args.database_url {
        let s = format!("relay_load_{:08x}", OsRng.next_u32());
        cmd.args(["--relay-database-url", url]);
        cmd.args(["--relay-database-schema", &s]);
        schema = Some(s);
    }
    let mut redis_prefix = None;
    if let Some(url) = &args.redis_url {
        let p = format!("relay-load-{:08x}", OsRng.next_u32());
        cmd.args(["--relay-redis-url", url]);
        cmd.args(["--relay-redis-prefix", &p]);
        redis_prefix = Some(p);
    }
    let child = cmd.spawn()?;
    let sock: SocketAddr = addr.parse()?;
    for _ in 0..200 {
        if TcpStream::connect(sock).await.is_ok() {
            return Ok((
                addr,
                Spawned {
                    child,
                    dir,
                    schema,
                    redis_prefix,
                },
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("spawned relay did not start listening".into())
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    delivered: AtomicU64,
    duplicates: AtomicU64,
    errors: AtomicU64,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0
}

async fn receiver(
    mut ws: Ws,
    expect: u64,
    base: Instant,
    counters: Arc<Counters>,
    deadline: Instant,
) -> Vec<u64> {
    let mut lat_us = Vec::with_capacity(expect as usize);
    let mut seen = HashSet::with_capacity(expect as usize);
    let mut pending_acks = Vec::new();
    // Acks go out in batches of 256, and whatever is pending every few milliseconds.
    let mut ack_tick = tokio::time::interval(Duration::from_millis(5));
    ack_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while (seen.len() as u64) < expect && Instant::now() < deadline {
        let mut flush = false;
        tokio::select! {
            biased;
            next = ws.next() => match next {
                Some(Ok(Message::Binary(b))) => match ServerFrame::from_bytes(&b) {
                    Ok(ServerFrame::Deliver(d)) => {
                        if d.payload.len() >= 8 {
                            let mut t = [0u8; 8];
                            t.copy_from_slice(&d.payload[..8]);
                            let sent_ns = u64::from_be_bytes(t);
                            let now_ns = base.elapsed().as_nanos() as u64;
                            lat_us.push(now_ns.saturating_sub(sent_ns) / 1000);
                        }
                        if seen.insert(d.msg_id) {
                            counters.delivered.fetch_add(1, Ordering::Relaxed);
                        } else {
                            counters.duplicates.fetch_add(1, Ordering::Relaxed);
                        }
                        if d.seq != 0 {
                            pending_acks.push(d.seq);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => {
                        counters.errors.fetch_add(1, Ordering::Relaxed);
                    }
                },
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            },
            _ = ack_tick.tick() => flush = true,
        }
        if pending_acks.len() >= 256 || (flush && !pending_acks.is_empty()) {
            let frame = ClientFrame::Ack(std::mem::take(&mut pending_acks)).to_bytes();
            if ws.send(Message::Binary(frame.into())).await.is_err() {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
    if !pending_acks.is_empty() {
        let frame = ClientFrame::Ack(pending_acks).to_bytes();
        let _ = ws.send(Message::Binary(frame.into())).await;
    }
    let _ = ws.close(None).await;
    lat_us
}

#[allow(clippy::too_many_arguments)]
async fn sender(
    ws: Ws,
    to: DeviceAddress,
    phase: usize,
    count: u64,
    args: Arc<Args>,
    base: Instant,
    counters: Arc<Counters>,
    deadline: Instant,
) {
    let (mut sink, mut stream) = ws.split();
    let window = Arc::new(Semaphore::new(args.window.max(1)));
    let reader_window = window.clone();
    let reader_counters = counters.clone();
    let reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            if let Message::Binary(b) = msg {
                match ServerFrame::from_bytes(&b) {
                    Ok(ServerFrame::SendResult(items)) => {
                        let bad = items
                            .iter()
                            .filter(|(_, s)| *s != SendStatus::Stored)
                            .count();
                        reader_counters
                            .errors
                            .fetch_add(bad as u64, Ordering::Relaxed);
                        reader_window.add_permits(1);
                    }
                    Ok(ServerFrame::Error { .. }) | Err(_) => {
                        reader_counters.errors.fetch_add(1, Ordering::Relaxed);
                        reader_window.add_permits(1);
                    }
                    Ok(_) => {}
                }
            }
        }
    });
    let batch = args.batch.max(1) as u64;
    // Paced senders are spread evenly over one period (sender `phase` of `pairs` starts
    // phase/pairs of a period late), so the offered load is smooth rather than all senders
    // bursting at the same instant.
    let mut ticker = (args.rate > 0).then(|| {
        let per_sender = (args.rate as f64 / args.pairs.max(1) as f64).max(1.0);
        let period = Duration::from_secs_f64(batch as f64 / per_sender);
        let offset = if args.synchronized {
            Duration::ZERO
        } else {
            period.mul_f64(phase as f64 / args.pairs.max(1) as f64)
        };
        let mut i = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        i
    });
    let mut next_id = 0u64;
    while next_id < count && Instant::now() < deadline {
        if let Some(t) = ticker.as_mut() {
            t.tick().await;
        }
        let Ok(permit) = window.acquire().await else {
            break;
        };
        permit.forget();
        let n = batch.min(count - next_id);
        let now_ns = base.elapsed().as_nanos() as u64;
        let envs: Vec<OutEnvelope> = (next_id..next_id + n)
            .map(|id| {
                let mut payload = vec![0u8; args.payload.max(8)];
                payload[..8].copy_from_slice(&now_ns.to_be_bytes());
                OutEnvelope {
                    flags: 0,
                    msg_id: id,
                    recipients: vec![to.clone()],
                    payload,
                }
            })
            .collect();
        next_id += n;
        let frame = ClientFrame::Send(envs).to_bytes();
        if sink.send(Message::Binary(frame.into())).await.is_err() {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            break;
        }
        counters.sent.fetch_add(n, Ordering::Relaxed);
    }
    // Wait for the last results before closing.
    let _ = tokio::time::timeout(
        Duration::from_secs(30),
        window.acquire_many(args.window.max(1) as u32),
    )
    .await;
    reader.abort();
    let _ = sink.close().await;
}

async fn throughput(
    args: Arc<Args>,
    addr: &str,
    key: &SigningKey,
    pid: Option<u32>,
) -> Result<serde_json::Value, Error> {
    let counters = Arc::new(Counters::default());
    let deadline = Instant::now() + Duration::from_secs(args.deadline_secs);
    let per_pair = args.messages / args.pairs.max(1) as u64;
    let run = OsRng.next_u32();
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for i in 0..args.pairs {
        let r = connect(addr, key, &format!("load-{run:08x}-r{i}")).await?;
        let s = connect(addr, key, &format!("load-{run:08x}-s{i}")).await?;
        receivers.push(r);
        senders.push(s);
    }
    // Let every connection drain its (empty) mailbox before the clock starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = pid.and_then(rss_kib);
    let base = Instant::now();
    let mut rtasks = Vec::new();
    for r in receivers {
        rtasks.push(tokio::spawn(receiver(
            r,
            per_pair,
            base,
            counters.clone(),
            deadline,
        )));
    }
    let mut stasks = Vec::new();
    for (i, s) in senders.into_iter().enumerate() {
        let to = DeviceAddress::new(format!("load-{run:08x}-r{i}"), 1)?;
        stasks.push(tokio::spawn(sender(
            s,
            to,
            i,
            per_pair,
            args.clone(),
            base,
            counters.clone(),
            deadline,
        )));
    }
    let mut lat = Vec::new();
    for t in rtasks {
        lat.extend(t.await?);
    }
    let elapsed = base.elapsed().as_secs_f64();
    let rss_peak = pid.and_then(rss_kib);
    for t in stasks {
        t.await?;
    }
    lat.sort_unstable();
    let delivered = counters.delivered.load(Ordering::Relaxed);
    Ok(json!({
        "mode": "throughput",
        "store": args.database_url.as_deref().map(|u| if u.starts_with("postgres") { "postgres" } else { "sqlite" }).unwrap_or("sqlite"),
        "redis": args.redis_url.is_some(),
        "sqlite_sync": sqlite_sync_name(args.sqlite_sync),
        "pairs": args.pairs,
        "batch": args.batch,
        "window": args.window,
        "target_rate": args.rate,
        "synchronized": args.synchronized,
        "payload_bytes": args.payload.max(8),
        "messages_requested": per_pair * args.pairs as u64,
        "messages_sent": counters.sent.load(Ordering::Relaxed),
        "delivered": delivered,
        "duplicates": counters.duplicates.load(Ordering::Relaxed),
        "errors": counters.errors.load(Ordering::Relaxed),
        "elapsed_s": elapsed,
        "delivered_per_s": delivered as f64 / elapsed,
        "latency_ms": {
            "p50": percentile(&lat, 0.50),
            "p99": percentile(&lat, 0.99),
            "p999": percentile(&lat, 0.999),
            "max": lat.last().map(|v| *v as f64 / 1000.0).unwrap_or(0.0),
        },
        "relay_rss_kib_before": rss_before,
        "relay_rss_kib_after": rss_peak,
    }))
}

async fn idle(
    args: Arc<Args>,
    addr: &str,
    key: &SigningKey,
    pid: Option<u32>,
) -> Result<serde_json::Value, Error> {
    let run = OsRng.next_u32();
    // Warm up allocator and runtime with a few connections first.
    let mut warm = Vec::new();
    for i in 0..16 {
        warm.push(connect(addr, key, &format!("idle-{run:08x}-w{i}")).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = pid.and_then(rss_kib);
    let started = Instant::now();
    let mut conns: Vec<Ws> = Vec::with_capacity(args.connections);
    let mut errors = 0u64;
    let chunk = 200;
    let mut i = 0;
    while i < args.connections {
        let n = chunk.min(args.connections - i);
        let mut tasks = Vec::with_capacity(n);
        for j in i..i + n {
            let addr = addr.to_owned();
            let key = key.clone();
            let user = format!("idle-{run:08x}-{j}");
            tasks.push(tokio::spawn(async move {
                let mut ws = connect(&addr, &key, &user).await?;
                // Authenticated and registered once QUEUE_DRAINED arrives.
                match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
                    Ok(Some(Ok(Message::Binary(_)))) => Ok::<Ws, Error>(ws),
                    _ => Err("no QUEUE_DRAINED".into()),
                }
            }));
        }
        for t in tasks {
            match t.await? {
                Ok(ws) => conns.push(ws),
                Err(_) => errors += 1,
            }
        }
        i += n;
    }
    let connect_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = pid.and_then(rss_kib);
    let open = conns.len();
    let per_conn = match (before, after) {
        (Some(b), Some(a)) if open > 0 => Some((a.saturating_sub(b) * 1024) as f64 / open as f64),
        _ => None,
    };
    drop(conns);
    drop(warm);
    Ok(json!({
        "mode": "idle",
        "store": args.database_url.as_deref().map(|u| if u.starts_with("postgres") { "postgres" } else { "sqlite" }).unwrap_or("sqlite"),
        "redis": args.redis_url.is_some(),
        "connections_requested": args.connections,
        "connections_open": open,
        "errors": errors,
        "connect_s": connect_s,
        "relay_rss_kib_before": before,
        "relay_rss_kib_after": after,
        "relay_rss_bytes_per_idle_connection": per_conn,
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = Arc::new(Args::parse());
    let (addr, key, pid, spawned) = match &args.addr {
        Some(addr) => {
            let seed = args
                .ticket_signing_key
                .as_deref()
                .ok_or("--addr needs --ticket-signing-key")?;
            let seed: [u8; 32] = hex::decode(seed)?
                .try_into()
                .map_err(|_| "signing key must be 32 bytes")?;
            (
                addr.clone(),
                SigningKey::from_bytes(&seed),
                args.relay_pid,
                None,
            )
        }
        None => {
            let key = SigningKey::generate(&mut OsRng);
            let (addr, spawned) = spawn_relay(&args, &key).await?;
            let pid = spawned.child.id();
            (addr, key, pid, Some(spawned))
        }
    };
    let report = match args.mode {
        Mode::Throughput => throughput(args.clone(), &addr, &key, pid).await,
        Mode::Idle => idle(args.clone(), &addr, &key, pid).await,
    };
    if let Some(mut s) = spawned {
        let _ = s.child.kill().await;
        let _ = std::fs::remove_dir_all(&s.dir);
        // Leave nothing behind in the shared PostgreSQL and Redis.
        if let (Some(url), Some(schema)) = (&args.database_url, &s.schema) {
            let _ = e2ee_relay::drop_postgres_schema(url, schema).await;
        }
        if let (Some(url), Some(prefix)) = (&args.redis_url, &s.redis_prefix)
            && let Ok(client) = redis::Client::open(url.as_str())
            && let Ok(mut con) = client.get_multiplexed_async_connection().await
        {
            let _: Result<(), _> = redis::cmd("DEL")
                .arg(format!("{prefix}:loc"))
                .query_async(&mut con)
                .await;
        }
    }
    println!("{}", serde_json::to_string_pretty(&report?)?);
    Ok(())
}
