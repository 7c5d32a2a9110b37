//! `e2ee client ...`: a chat client on the SDK, for trying the server from two terminals and
//! for scripts. Each store's key sits in a file beside it (`<store>.key`, mode 0600), standing
//! in for the platform keystore an app would use.

use std::{io::Write, path::PathBuf, time::Duration};

use clap::{Args, Subcommand};
use e2ee_client::{Client, ClientConfig, ClientError, ConnectionState, Event, store::StoreKey};
use rand_core::{OsRng, RngCore};

/// How long `send` waits for the relay to store the message before it leaves it in the outbox
/// (the next `send` or `listen` sends it).
pub(crate) const SEND_WAIT: Duration = Duration::from_secs(15);
/// How long either side of a linking waits for the other.
const LINK_WAIT: Duration = Duration::from_secs(300);

#[derive(Debug, Args)]
pub(crate) struct ClientArgs {
    /// The server's base URL.
    #[arg(long, env = "E2EE_SERVER_URL", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// This device's store (its key is in `<store>.key`).
    #[arg(long, env = "E2EE_STORE", default_value = "e2ee-client.db")]
    store: PathBuf,
    #[command(subcommand)]
    command: ClientCommand,
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Register a new account with this device as its first device.
    Register {
        /// The user id.
        user: String,
    },
    /// On a new device: show a one-time code and wait until the account's primary device
    /// links this one with it (`link <code>` there).
    LinkRequest,
    /// On the primary device (the one that registered): link the device showing `code`.
    Link {
        /// The code the new device shows.
        code: String,
    },
    /// Send a message and wait until the relay stored it.
    Send {
        /// The recipient.
        user: String,
        /// The text.
        text: String,
    },
    /// Print events (messages, receipts, connection) until interrupted; marks what arrives
    /// read when asked to.
    Listen {
        /// Send read receipts for every message that arrives.
        #[arg(long)]
        read: bool,
        /// Stop after this many messages.
        #[arg(long)]
        count: Option<usize>,
        /// Stop once everything that waited at the relay has been received.
        #[arg(long)]
        until_caught_up: bool,
    },
    /// Show the conversation with a user, oldest first.
    History {
        /// The other user.
        user: String,
        /// Most messages to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// List conversations.
    Conversations,
    /// List a user's verified devices (our own with our user id).
    Devices {
        /// The user.
        user: String,
    },
    /// Remove one of our account's devices (a lost phone); only the first device can.
    RemoveDevice {
        /// Its device id.
        device: u32,
    },
    /// Show the safety number with a user (compare it with theirs).
    SafetyNumber {
        /// The other user.
        user: String,
    },
    /// Groups: create, list, show, add, remove, leave, rename, send, history.
    Group {
        #[command(subcommand)]
        command: crate::cli_group::GroupCommand,
    },
    /// Trust a user's new account key, after comparing the new safety number.
    Verify {
        /// The other user.
        user: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("store key file {0}: {1}")]
    Key(PathBuf, std::io::Error),
    #[error("store key file {0} is not 32 bytes")]
    KeyLength(PathBuf),
    #[error("the relay did not store the message within {0:?}; it stays in the outbox")]
    NotStored(Duration),
    #[error("{0} is not a group id (hex, as `group create` prints it)")]
    GroupId(String),
}

/// Waits until the relay stored message `id` (its status moves on).
pub(crate) async fn wait_stored(client: &Client, id: u64) -> Result<(), CliError> {
    let stored = tokio::time::timeout(SEND_WAIT, async {
        while let Some(event) = client.next_event().await {
            if let Event::StatusChanged(m) = &event
                && m.id == id
            {
                return true;
            }
        }
        false
    })
    .await;
    if stored == Ok(true) {
        Ok(())
    } else {
        Err(CliError::NotStored(SEND_WAIT))
    }
}

fn key_path(store: &std::path::Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

fn create_key(store: &std::path::Path) -> Result<StoreKey, CliError> {
    let path = key_path(store);
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .map_err(|e| CliError::Key(path.clone(), e))?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| CliError::Key(path.clone(), e))?;
    Ok(StoreKey::from_bytes(bytes))
}

fn read_key(store: &std::path::Path) -> Result<StoreKey, CliError> {
    let path = key_path(store);
    let bytes = std::fs::read(&path).map_err(|e| CliError::Key(path.clone(), e))?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| CliError::KeyLength(path))?;
    Ok(StoreKey::from_bytes(bytes))
}

fn config(args: &ClientArgs, store_key: StoreKey) -> ClientConfig {
    ClientConfig {
        server_url: args.server.clone(),
        relay_url: None,
        store_path: args.store.clone(),
        store_key,
        extra_root_certificates: Vec::new(),
        app_token: None,
    }
}

/// One line per message: who wrote it, the text, its status.
pub(crate) fn print_history(messages: &[e2ee_client::LoggedMessage]) {
    for m in messages {
        let who = if m.outgoing {
            "me".to_owned()
        } else {
            m.author.to_string()
        };
        println!(
            "{who}: {} ({:?})",
            String::from_utf8_lossy(&m.body),
            m.status
        );
    }
}

fn hex_id(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn show(event: &Event) -> Option<String> {
    Some(match event {
        Event::Message(m) if m.outgoing => format!(
            "[to {}] {} (sent from {})",
            m.conversation,
            String::from_utf8_lossy(&m.body),
            m.author
        ),
        Event::Message(m) => format!("[{}] {}", m.author, String::from_utf8_lossy(&m.body)),
        Event::StatusChanged(m) => format!("message {:016x} is {:?}", m.id, m.status),
        Event::Typing { user, started } => {
            format!(
                "{user} {}",
                if *started {
                    "is typing"
                } else {
                    "stopped typing"
                }
            )
        }
        Event::IdentityChanged { user } => format!(
            "the account key of {user} changed: compare `safety-number {user}`, then `verify {user}`"
        ),
        Event::DevicesChanged {
            user,
            added,
            removed,
        } => format!("{user}'s devices: added {added:?}, removed {removed:?}"),
        Event::Connection(ConnectionState::Offline { reason, retry_in }) => {
            format!("offline ({reason}); retrying in {retry_in:?}")
        }
        Event::Connection(state) => format!("connection: {state:?}"),
        Event::CaughtUp => "caught up".to_owned(),
        Event::OutboxWedged { reason, retry_in } => {
            format!("outbox waiting: {reason}; retrying in {retry_in:?}")
        }
        Event::Dropped { from, reason } => format!("dropped an envelope from {from}: {reason}"),
        Event::GroupChanged(info) => format!(
            "group {} \"{}\" is at version {} with {} members",
            hex_id(&info.id),
            info.name,
            info.version,
            info.members.len()
        ),
        _ => return None,
    })
}

pub(crate) async fn run(args: ClientArgs) -> Result<(), CliError> {
    if let ClientCommand::Register { user } = &args.command {
        let key = create_key(&args.store)?;
        let client = Client::register(config(&args, key), user).await?;
        println!(
            "registered {} in {}",
            client.address(),
            args.store.display()
        );
        return Ok(());
    }
    if let ClientCommand::LinkRequest = &args.command {
        let key = create_key(&args.store)?;
        let request = e2ee_client::LinkRequest::new(config(&args, key))?;
        println!("link code (show it on the primary: `e2ee client link <code>`):");
        println!("{}", request.code());
        let client = request.complete(LINK_WAIT).await?;
        println!("linked as {}", client.address());
        return Ok(());
    }
    let client = Client::open(config(&args, read_key(&args.store)?))?;
    match &args.command {
        ClientCommand::Register { .. } | ClientCommand::LinkRequest => {}
        ClientCommand::Link { code } => {
            let address = client.link_device(code, LINK_WAIT).await?;
            println!("linked {address}");
        }
        ClientCommand::Send { user, text } => {
            client.start();
            let id = client.send(user, text.as_bytes()).await?;
            let stored = wait_stored(&client, id).await;
            client.stop().await;
            stored?;
            println!("sent {id:016x}");
        }
        ClientCommand::Listen {
            read,
            count,
            until_caught_up,
        } => {
            client.start();
            let mut messages = 0;
            loop {
                let event = tokio::select! {
                    event = client.next_event() => event,
                    _ = tokio::signal::ctrl_c() => None,
                };
                let Some(event) = event else { break };
                if let Some(line) = show(&event) {
                    println!("{line}");
                }
                if *until_caught_up && event == Event::CaughtUp {
                    break;
                }
                if let Event::Message(m) = &event
                    && !m.outgoing
                {
                    if *read && let Some(user) = m.conversation.user() {
                        client.mark_read(user, &[m.id]).await?;
                    }
                    messages += 1;
                    if count.is_some_and(|n| messages >= n) {
                        break;
                    }
                }
            }
            client.stop().await;
        }
        ClientCommand::History { user, limit } => {
            print_history(&client.messages(user, None, *limit)?.messages);
        }
        ClientCommand::Conversations => {
            for c in client.conversations()? {
                println!("{} ({} messages)", c.id, c.messages);
            }
        }
        ClientCommand::Devices { user } => {
            for device in client.devices(user).await? {
                println!("{user}.{device}");
            }
        }
        ClientCommand::RemoveDevice { device } => {
            client.remove_device(*device).await?;
            println!("removed device {device}");
        }
        ClientCommand::SafetyNumber { user } => {
            let number = client.safety_number(user).await?;
            let groups: Vec<&str> = (0..12)
                .map(|i| &number.displayable[i * 5..i * 5 + 5])
                .collect();
            println!("{}", groups.join(" "));
        }
        ClientCommand::Group { command } => crate::cli_group::run(&client, command).await?,
        ClientCommand::Verify { user } => {
            client.accept_account_change(user).await?;
            println!("trusting the new account key of {user}");
        }
    }
    Ok(())
}
