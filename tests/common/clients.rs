//! Helpers of the whole-stack client tests: the all-in-one server as a child process, client
//! configurations, and waiting for events.

use std::{path::Path, process::Stdio, time::Duration};

use e2ee_client::{
    Client, ClientConfig, ConnectionState, Event, LoggedMessage, MessageStatus, store::StoreKey,
};

/// Longest any one expected event may take.
pub const EVENT_WAIT: Duration = Duration::from_secs(20);

/// The all-in-one server, a child process killed when dropped.
pub struct Server {
    pub child: tokio::process::Child,
    pub addr: String,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn start_server(dir: &Path, addr: &str) -> Server {
    start_server_with(dir, addr, &[]).await
}

pub async fn start_server_with(dir: &Path, addr: &str, extra: &[String]) -> Server {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_e2ee"))
        .arg("--listen")
        .arg(addr)
        .arg("--keyserver-data-dir")
        .arg(dir)
        .arg("--relay-data-dir")
        .arg(dir)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Server {
                child,
                addr: addr.to_owned(),
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not start");
}

pub fn config(dir: &Path, name: &str, url: &str) -> ClientConfig {
    ClientConfig {
        server_url: url.to_owned(),
        relay_url: None,
        store_path: dir.join(format!("{name}.db")),
        store_key: StoreKey::from_bytes([name.len() as u8; 32]),
        extra_root_certificates: Vec::new(),
        app_token: None,
    }
}

/// Waits for the first event `pick` accepts, skipping others.
pub async fn expect<T>(
    client: &Client,
    what: &str,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    let wait = async {
        loop {
            let event = client.next_event().await.expect("client gone");
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    };
    tokio::time::timeout(EVENT_WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("no {what} within {EVENT_WAIT:?}"))
}

/// Waits for a `GroupChanged` event at `version` or later.
pub async fn expect_group(client: &Client, version: u64) -> e2ee_client::GroupInfo {
    expect(client, &format!("group version {version}"), |e| match e {
        Event::GroupChanged(info) if info.version >= version => Some(info.clone()),
        _ => None,
    })
    .await
}

pub async fn expect_message(client: &Client) -> LoggedMessage {
    expect(client, "message", |e| match e {
        Event::Message(m) => Some(m.clone()),
        _ => None,
    })
    .await
}

pub async fn expect_status(client: &Client, id: u64, status: MessageStatus) {
    expect(client, &format!("status {status:?}"), |e| match e {
        Event::StatusChanged(m) if m.id == id && m.status >= status => Some(()),
        _ => None,
    })
    .await;
}

pub async fn expect_online(client: &Client) {
    expect(client, "online", |e| {
        matches!(e, Event::Connection(ConnectionState::Online)).then_some(())
    })
    .await;
}

pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("e2ee-clients-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The same with a separate relay URL (a proxy in front of the relay, say).
pub fn config_with_relay(dir: &Path, name: &str, url: &str, relay: Option<String>) -> ClientConfig {
    ClientConfig {
        relay_url: relay,
        ..config(dir, name, url)
    }
}

/// Alice and Bob registered on `url`, started and online.
pub async fn online_pair(dir: &Path, url: &str) -> (Client, Client) {
    online_pair_on(dir, url, url).await
}

/// Alice registered on `alice_url` and Bob on `bob_url` (two nodes), started and online.
pub async fn online_pair_on(dir: &Path, alice_url: &str, bob_url: &str) -> (Client, Client) {
    let alice = Client::register(config(dir, "alice", alice_url), "alice")
        .await
        .unwrap();
    let bob = Client::register(config(dir, "bob", bob_url), "bob")
        .await
        .unwrap();
    alice.start();
    bob.start();
    expect_online(&alice).await;
    expect_online(&bob).await;
    (alice, bob)
}

/// A fresh server on a free loopback port with its data under `dir/server`: (server, URL).
pub async fn fresh_server(dir: &Path, extra: &[String]) -> (Server, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let server = start_server_with(&dir.join("server"), &addr, extra).await;
    (server, format!("http://{addr}"))
}

/// Links a new device with `config` to `primary`'s account; returns it started and online.
pub async fn link(primary: &Client, config: ClientConfig) -> Client {
    let request = e2ee_client::LinkRequest::new(config).unwrap();
    let code = request.code();
    let device = tokio::spawn(request.complete(Duration::from_secs(30)));
    primary
        .link_device(&code, Duration::from_secs(30))
        .await
        .unwrap();
    let device = device.await.unwrap().unwrap();
    device.start();
    expect_online(&device).await;
    device
}

/// Sends `count` messages `{prefix}{i}` from `from` to `to`; returns their ids in order.
pub async fn send_numbered(from: &Client, to: &str, prefix: &str, count: usize) -> Vec<u64> {
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        ids.push(
            from.send(to, format!("{prefix}{i}").as_bytes())
                .await
                .unwrap(),
        );
    }
    ids
}

/// The ids of the next `count` messages `client` receives, in arrival order.
pub async fn receive_ids(client: &Client, count: usize) -> Vec<u64> {
    let mut ids = Vec::with_capacity(count);
    while ids.len() < count {
        ids.push(expect_message(client).await.id);
    }
    ids
}

/// Waits until each of `ids` reached at least `status`, in order.
pub async fn expect_statuses(client: &Client, ids: &[u64], status: MessageStatus) {
    for id in ids {
        expect_status(client, *id, status).await;
    }
}

/// Runs `e2ee client --server URL --store STORE ARGS...` to completion: (success, stdout).
pub async fn cli(url: &str, store: &Path, args: &[&str]) -> (bool, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_e2ee"))
            .arg("client")
            .arg("--server")
            .arg(url)
            .arg("--store")
            .arg(store)
            .args(args)
            .output(),
    )
    .await
    .expect("the CLI hung")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (out.status.success(), format!("{stdout}{stderr}"))
}
