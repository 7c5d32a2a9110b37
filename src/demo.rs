//! `e2ee demo`: the all-in-one server in this process on a loopback port, and three users
//! (Alice, Bob, Carol) talking through it with the client SDK over real sockets: a 1:1
//! conversation with delivery and read receipts, an offline user catching up, Alice linking
//! a second device, and a safety number comparison. Everything lives in a temporary directory removed at the end.

use std::time::Duration;

use e2ee_client::{Client, ClientConfig, ConnectionState, Event, MessageStatus, store::StoreKey};

use crate::MainError;

/// Longest the demo waits for any one step.
const STEP: Duration = Duration::from_secs(20);

fn config(dir: &std::path::Path, user: &str, url: &str) -> ClientConfig {
    ClientConfig {
        server_url: url.to_owned(),
        relay_url: None,
        store_path: dir.join(format!("{user}.db")),
        store_key: StoreKey::from_bytes([user.len() as u8; 32]),
        extra_root_certificates: Vec::new(),
        app_token: None,
    }
}

/// The first event `pick` accepts.
async fn wait_for<T>(
    client: &Client,
    what: &str,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> Result<T, MainError> {
    let wait = async {
        while let Some(event) = client.next_event().await {
            if let Some(found) = pick(&event) {
                return Some(found);
            }
        }
        None
    };
    tokio::time::timeout(STEP, wait)
        .await
        .ok()
        .flatten()
        .ok_or_else(|| MainError::DemoStep(format!("no {what} within {STEP:?}")))
}

async fn online(client: &Client) -> Result<(), MainError> {
    wait_for(client, "connection", |e| {
        matches!(e, Event::Connection(ConnectionState::Online)).then_some(())
    })
    .await
}

async fn message(client: &Client) -> Result<e2ee_client::LoggedMessage, MainError> {
    wait_for(client, "message", |e| match e {
        Event::Message(m) => Some(m.clone()),
        _ => None,
    })
    .await
}

async fn status(client: &Client, id: u64, wanted: MessageStatus) -> Result<(), MainError> {
    wait_for(client, "receipt", |e| match e {
        Event::StatusChanged(m) if m.id == id && m.status >= wanted => Some(()),
        _ => None,
    })
    .await
}

async fn group_changed(client: &Client, version: u64) -> Result<e2ee_client::GroupInfo, MainError> {
    wait_for(client, "group change", |e| match e {
        Event::GroupChanged(info) if info.version >= version => Some(info.clone()),
        _ => None,
    })
    .await
}

fn names(info: &e2ee_client::GroupInfo) -> String {
    let names: Vec<&str> = info.members.iter().map(|m| m.user.as_str()).collect();
    names.join(", ")
}

pub(crate) async fn run() -> Result<(), MainError> {
    let dir = std::env::temp_dir().join(format!("e2ee-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = script(&dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn script(dir: &std::path::Path) -> Result<(), MainError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let keyserver = e2ee_keyserver::Config {
        data_dir: dir.join("server"),
        ..e2ee_keyserver::Config::default()
    };
    let mut relay = e2ee_relay::Config::with_ticket_key(String::new());
    relay.ticket_public_key = None;
    relay.data_dir = dir.join("server");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::serve_on(
        listener,
        keyserver,
        relay,
        e2ee_http_serve::HttpLimits::default(),
        async {
            let _ = stopped.await;
        },
    ));
    println!("server (key server + relay) on {url}");

    let mut users = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let client = Client::register(config(dir, name, &url), name).await?;
        println!("registered {}", client.address());
        users.push(client);
    }
    let [alice, bob, carol] = &users[..] else {
        return Err(MainError::DemoStep("three users".into()));
    };
    alice.start();
    bob.start();
    online(alice).await?;
    online(bob).await?;

    let id = alice.send("bob", b"Hi Bob, lunch at noon?").await?;
    let got = message(bob).await?;
    println!(
        "bob got from {}: {}",
        got.author,
        String::from_utf8_lossy(&got.body)
    );
    status(alice, id, MessageStatus::Delivered).await?;
    println!("alice sees her message delivered");
    bob.mark_read("alice", &[got.id]).await?;
    status(alice, id, MessageStatus::Read).await?;
    println!("alice sees it read");
    let reply = bob.send("alice", b"Sure, see you there").await?;
    let got = message(alice).await?;
    debug_assert_eq!(got.id, reply);
    println!(
        "alice got from {}: {}",
        got.author,
        String::from_utf8_lossy(&got.body)
    );

    // Carol is offline: her messages wait at the relay, encrypted, until she connects.
    for text in ["Carol, are you coming too?", "We are at the usual place"] {
        alice.send("carol", text.as_bytes()).await?;
    }
    println!("alice sent carol two messages while carol was offline");
    carol.start();
    for _ in 0..2 {
        let got = message(carol).await?;
        println!("carol caught up: {}", String::from_utf8_lossy(&got.body));
    }

    // Alice links her laptop: it shows a code, her phone approves it; the laptop then gets
    // what she sends from the phone (a sent transcript) and what Bob sends her.
    let request = e2ee_client::LinkRequest::new(config(dir, "alice-laptop", &url))?;
    let code = request.code();
    println!("alice's laptop shows the link code {}...", &code[..20]);
    let completing = tokio::spawn(request.complete(STEP));
    let linked = alice.link_device(&code, STEP).await?;
    let laptop = completing
        .await
        .map_err(|e| MainError::DemoStep(e.to_string()))??;
    println!("alice's phone linked {linked}");
    laptop.start();
    online(&laptop).await?;
    println!(
        "bob now sees alice's devices: {:?}",
        bob.devices("alice").await?
    );
    alice.send("bob", b"I'm on my laptop too").await?;
    let transcript = message(&laptop).await?;
    println!(
        "alice's laptop got the transcript of what her phone sent to {}: {}",
        transcript.conversation,
        String::from_utf8_lossy(&transcript.body)
    );
    message(bob).await?;
    bob.send("alice", b"Got it on both?").await?;
    let on_phone = message(alice).await?;
    let on_laptop = message(&laptop).await?;
    println!(
        "bob's reply reached alice's phone and laptop: {}",
        on_phone.id == on_laptop.id
    );

    // A group: membership is what its admin signed; every member checks every change.
    let group = alice.create_group("lunch crew", &["bob", "carol"]).await?;
    for member in [bob, carol] {
        let info = group_changed(member, 1).await?;
        println!(
            "{} was added to \"{}\" with {}",
            member.address(),
            info.name,
            names(&info)
        );
    }
    bob.send_group(&group, b"Who brings dessert?").await?;
    for member in [alice, &laptop, carol] {
        let got = message(member).await?;
        println!(
            "{} got in the group from {}: {}",
            member.address(),
            got.author,
            String::from_utf8_lossy(&got.body)
        );
    }
    alice
        .change_group(&group, e2ee_client::GroupEdit::Remove("carol".into()))
        .await?;
    let seen = group_changed(carol, 2).await?;
    println!(
        "alice removed carol; carol sees the group with {} and can no longer send to it",
        names(&seen)
    );
    laptop.stop().await;

    let ours = alice.safety_number("bob").await?.displayable;
    let theirs = bob.safety_number("alice").await?.displayable;
    println!("alice and bob compare safety numbers: {}", &ours[..20]);
    println!("safety numbers match: {}", ours == theirs);

    for client in &users {
        client.stop().await;
    }
    let _ = stop.send(());
    let _ = server.await;
    Ok(())
}
