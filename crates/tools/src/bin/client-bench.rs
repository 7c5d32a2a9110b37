//! `client-bench`: the client SDK end to end against a running server (`cargo run --release`):
//! one 1:1 message from `Client::send` to the recipient's `Event::Message` (encrypt, outbox
//! commit, relay durable commit, delivery, decrypt, log commit, event), paced at given rates;
//! an offline device catching up on a backlog; store size per message. A benchmark, not a
//! test: it prints figures (see docs/benchmarks.md for how they are read). Start the server
//! with `--relay-max-mailbox 20000` for the default 10,000-message backlog.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use clap::Parser;
use e2ee_client::{Client, ClientConfig, ConnectionState, Event, store::StoreKey};

#[derive(Debug, Parser)]
#[command(about = "End-to-end latency and catch-up of the client SDK against a running server")]
struct Args {
    /// The all-in-one server (or key server, relay on the same port).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server_url: String,
    /// Paced rates to measure, messages per second.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    rates: Vec<u32>,
    /// Seconds of sending at each rate.
    #[arg(long, default_value_t = 5)]
    seconds: u32,
    /// Messages in the catch-up backlog (0 skips it).
    #[arg(long, default_value_t = 10_000)]
    backlog: usize,
    /// Only the in-process floor (two `Device`s, no server): for profiling the store path.
    #[arg(long)]
    floor_only: bool,
    /// Where the stores go (a fresh directory is made inside).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    dir: PathBuf,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn config(dir: &std::path::Path, name: &str, url: &str) -> ClientConfig {
    ClientConfig {
        server_url: url.to_owned(),
        relay_url: None,
        store_path: dir.join(format!("{name}.db")),
        store_key: StoreKey::from_bytes([7; 32]),
        extra_root_certificates: Vec::new(),
        app_token: None,
    }
}

async fn until_online(client: &Client) -> Result<(), BoxError> {
    loop {
        match client.next_event().await {
            Some(Event::Connection(ConnectionState::Online)) => return Ok(()),
            Some(_) => {}
            None => return Err("client gone".into()),
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn file_size(path: &std::path::Path) -> u64 {
    let wal = path.with_extension("db-wal");
    std::fs::metadata(path).map_or(0, |m| m.len()) + std::fs::metadata(wal).map_or(0, |m| m.len())
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Bob's side: every message's latency from the send time Alice wrote into its body.
fn spawn_receiver(
    bob: Arc<Client>,
    base: Instant,
    latencies: Arc<Mutex<Vec<Duration>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = bob.next_event().await {
            if let Event::Message(message) = event {
                let now = base.elapsed();
                let Ok(bytes) = <[u8; 8]>::try_from(message.body.get(..8).unwrap_or_default())
                else {
                    continue;
                };
                let sent = Duration::from_nanos(u64::from_be_bytes(bytes));
                if let Ok(mut all) = latencies.lock() {
                    all.push(now.saturating_sub(sent));
                }
            }
        }
    })
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let run = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    );
    let dir = args.dir.join(format!("e2ee-client-bench-{run}"));
    std::fs::create_dir_all(&dir)?;
    if args.floor_only {
        in_process_floor(&dir, args.backlog)?;
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(());
    }
    let (alice_id, bob_id) = (format!("alice-{run}"), format!("bob-{run}"));
    let rss_before = rss_kib();
    let alice =
        Arc::new(Client::register(config(&dir, "alice", &args.server_url), &alice_id).await?);
    let bob = Arc::new(Client::register(config(&dir, "bob", &args.server_url), &bob_id).await?);
    alice.start();
    bob.start();
    until_online(&alice).await?;
    until_online(&bob).await?;
    // First contact (bundles, the PQXDH handshake) is not what is measured.
    alice.send(&bob_id, b"hi").await?; // shorter than a timestamp: not counted
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "process RSS with two idle clients: {} KiB (before them: {rss_before} KiB)",
        rss_kib()
    );
    // Alice's events are drained (status changes), so her queue never fills.
    let drain = {
        let alice = Arc::clone(&alice);
        tokio::spawn(async move { while alice.next_event().await.is_some() {} })
    };

    let base = Instant::now();
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let receiver = spawn_receiver(Arc::clone(&bob), base, Arc::clone(&latencies));
    for &rate in &args.rates {
        if let Ok(mut all) = latencies.lock() {
            all.clear();
        }
        let total = (rate * args.seconds) as usize;
        let mut ticker = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let started = Instant::now();
        let mut send_calls = Vec::with_capacity(total);
        for _ in 0..total {
            ticker.tick().await;
            let sent_at = base.elapsed().as_nanos() as u64;
            let mut body = sent_at.to_be_bytes().to_vec();
            body.extend_from_slice(b" a short chat message");
            let call = Instant::now();
            alice.send(&bob_id, &body).await?;
            send_calls.push(call.elapsed());
        }
        send_calls.sort();
        let send_secs = started.elapsed().as_secs_f64();
        let deadline = Instant::now() + Duration::from_secs(30);
        while latencies.lock().map_or(0, |l| l.len()) < total && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut got = latencies.lock().map(|l| l.clone()).unwrap_or_default();
        got.sort();
        println!(
            "paced {rate} msg/s: sent {total} in {send_secs:.2} s ({:.0} msg/s achieved), received {}; \
             latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            total as f64 / send_secs,
            got.len(),
            percentile(&got, 0.5).as_secs_f64() * 1e3,
            percentile(&got, 0.9).as_secs_f64() * 1e3,
            percentile(&got, 0.99).as_secs_f64() * 1e3,
            got.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
        println!(
            "  of which Client::send (encrypt and commit to log and outbox): p50 {:.2} ms, p99 {:.2} ms",
            percentile(&send_calls, 0.5).as_secs_f64() * 1e3,
            percentile(&send_calls, 0.99).as_secs_f64() * 1e3,
        );
    }
    receiver.abort();

    if args.backlog > 0 {
        bob.stop().await;
        drop(bob);
        let started = Instant::now();
        let mut ids = Vec::with_capacity(args.backlog);
        for i in 0..args.backlog {
            ids.push(
                alice
                    .send(&bob_id, format!("backlog {i}").as_bytes())
                    .await?,
            );
        }
        let enqueue = started.elapsed().as_secs_f64();
        // A relay's mailbox holds 10,000 envelopes by default: start the server with
        // `--relay-max-mailbox 20000` for the default backlog, or the outbox waits here (as it
        // should: it retries until the mailbox has room).
        let wait_until = Instant::now() + Duration::from_secs(60);
        while alice.outbox_len()? > 0 {
            if Instant::now() > wait_until {
                return Err(
                    "the relay did not store the backlog within 60 s (mailbox full?)".into(),
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let stored = started.elapsed().as_secs_f64();
        println!(
            "backlog: {} messages committed to the outbox in {enqueue:.2} s ({:.0} msg/s), all stored by the relay after {stored:.2} s",
            args.backlog,
            args.backlog as f64 / enqueue
        );
        let bob = Client::open(config(&dir, "bob", &args.server_url))?;
        let started = Instant::now();
        bob.start();
        let mut received = 0;
        while received < args.backlog {
            match bob.next_event().await {
                Some(Event::Message(_)) => received += 1,
                Some(_) => {}
                None => break,
            }
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "catch-up: {received} messages decrypted and committed in {secs:.2} s from start(): \
             {:.0} msg/s",
            received as f64 / secs,
        );
        let last = ids.last().copied().unwrap_or_default();
        let sent_status = alice.message(&alice_id, last)?.map(|m| m.status);
        println!("last backlog message at the sender: {sent_status:?}");
        let messages = bob.messages(&alice_id, None, 1)?.older.unwrap_or(0) + 1;
        let size = file_size(&dir.join("bob.db"));
        println!(
            "receiver store: {size} bytes for {messages} messages and 1 session: {:.0} bytes per message",
            size as f64 / messages as f64
        );
        bob.stop().await;
    }
    if args.backlog > 0 {
        in_process_floor(&dir, args.backlog)?;
    }
    drain.abort();
    alice.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The same backlog through two `Device`s in this process, no network and no relay: what the
/// catch-up costs in crypto and store alone (its floor here), in batches as the client
/// commits them.
fn in_process_floor(dir: &std::path::Path, backlog: usize) -> Result<(), BoxError> {
    use e2ee_client::{Device, Registration};
    let key = StoreKey::from_bytes([9; 32]);
    let (mut alice, alice_reg) =
        Device::create_primary(&dir.join("floor-alice.db"), &key, "alice", 1)?;
    let (mut bob, bob_reg) = Device::create_primary(&dir.join("floor-bob.db"), &key, "bob", 1)?;
    let learn = |device: &mut Device, r: &Registration| {
        device.learn_user(&r.user_id, &r.account_key, &r.device_list)
    };
    learn(&mut alice, &bob_reg)?;
    learn(&mut bob, &alice_reg)?;
    let upload = bob.generate_prekeys(1)?;
    let bundle = e2ee_tools::bundle_bytes(&bob_reg, &upload)?;
    let bob_address = e2ee_client::DeviceAddress::new("bob", 1)?;
    alice.add_bundle(&bob_address, &bundle)?;
    // One exchange first, as in the end-to-end run (receipts flowed back): the backlog is
    // ratchet messages, not first messages that each carry and verify the handshake.
    let alice_address = e2ee_client::DeviceAddress::new("alice", 1)?;
    let hello = alice.send_message("bob", b"hello")?;
    bob.receive(&alice_address, hello.id, &hello.entry.envelopes[0].1)?;
    let reply = bob.send_message("alice", b"hi")?;
    alice.receive(&bob_address, reply.id, &reply.entry.envelopes[0].1)?;
    let mut envelopes = Vec::with_capacity(backlog);
    for i in 0..backlog {
        let sent = alice.send_message("bob", format!("backlog {i}").as_bytes())?;
        envelopes.push((sent.id, sent.entry.envelopes[0].1.clone()));
    }
    let started = Instant::now();
    for chunk in envelopes.chunks(256) {
        let batch: Vec<(&e2ee_client::DeviceAddress, u64, &[u8])> = chunk
            .iter()
            .map(|(id, ct)| (&alice_address, *id, ct.as_slice()))
            .collect();
        for result in bob.receive_batch(&batch)? {
            result?;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "floor: the same {backlog} messages through Device::receive_batch in this process \
         (batches of 256, no network): {secs:.2} s, {:.0} msg/s",
        backlog as f64 / secs
    );
    drop(bob);
    let vault = e2ee_client::store::Vault::open(&dir.join("floor-bob.db"), &key)?;
    let sessions = vault.values(e2ee_client::store::Space::SESSIONS)?;
    let session_bytes: usize = sessions.iter().map(|s| s.len()).sum();
    println!(
        "session record: {} session(s), {session_bytes} bytes decrypted ({} bytes sealed with the \
         AEAD's nonce and tag)",
        sessions.len(),
        session_bytes + sessions.len() * 28
    );
    Ok(())
}
