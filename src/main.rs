//! `e2ee`: the all-in-one server. The key server and the relay in one process, on one port,
//! storing everything under one data directory (SQLite, WAL) by default:
//!
//! ```text
//! cargo run --release                 # http://127.0.0.1:8080, data in ./data
//!   /v1/...             key server (HTTP + JSON, OpenAPI at /openapi.json)
//!   /v1/relay/ws        relay (WebSocket, authenticated by a ticket from POST /v1/tickets)
//! cargo run --release -- demo         # three users chatting through an in-process server
//! cargo run --release -- client --store alice.db register alice   # a chat client (--help)
//! ```
//!
//! The relay verifies connection tickets with the key server's ticket key directly (same
//! process), so no key needs to be configured. Every key server flag (`--keyserver-*`) and
//! relay flag (`--relay-*`) of the standalone binaries works here too; `--help` lists them.

mod cli;
mod cli_group;
mod demo;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "e2ee",
    version,
    about = "All-in-one E2EE server: key server and relay on one port"
)]
struct Cli {
    /// Address and port to serve the key server and the relay on.
    #[arg(
        long,
        env = "E2EE_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    listen: std::net::SocketAddr,

    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten, next_help_heading = "Key server")]
    keyserver: e2ee_keyserver::Config,

    #[command(flatten, next_help_heading = "Relay")]
    relay: e2ee_relay::Config,

    #[command(flatten, next_help_heading = "HTTP")]
    http: e2ee_http_serve::HttpLimits,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the key server and the relay (the default).
    Serve,
    /// Start the server in-process on a loopback port and run a short scripted conversation
    /// between three users over real sockets, then exit.
    Demo,
    /// A chat client on the SDK: register, send, listen, history, safety numbers.
    Client(cli::ClientArgs),
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum MainError {
    #[error("key server: {0}")]
    Keyserver(#[from] e2ee_keyserver::KeyserverError),
    #[error("relay: {0}")]
    Relay(#[from] e2ee_relay::StartError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("demo: {0}")]
    DemoStep(String),
    #[error("demo: {0}")]
    DemoClient(#[from] e2ee_client::ClientError),
    #[error("{0}")]
    Client(#[from] cli::CliError),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Demo) => demo::run().await,
        Some(Command::Client(args)) => cli::run(args).await.map_err(MainError::from),
        Some(Command::Serve) | None => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
                )
                .init();
            serve(cli.listen, cli.keyserver, cli.relay, cli.http).await
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("e2ee: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(
    listen: std::net::SocketAddr,
    keyserver_config: e2ee_keyserver::Config,
    relay_config: e2ee_relay::Config,
    http: e2ee_http_serve::HttpLimits,
) -> Result<(), MainError> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    serve_on(
        listener,
        keyserver_config,
        relay_config,
        http,
        e2ee_http_serve::shutdown_signal(),
    )
    .await
}

/// The all-in-one server on `listener` until `shutdown` resolves (the demo runs it on an
/// ephemeral loopback port).
pub(crate) async fn serve_on(
    listener: tokio::net::TcpListener,
    mut keyserver_config: e2ee_keyserver::Config,
    relay_config: e2ee_relay::Config,
    http: e2ee_http_serve::HttpLimits,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), MainError> {
    // Several all-in-one nodes on one Redis: each node's removals must reach the others'
    // relays, so the key server writes them to the relay cluster's Redis unless told
    // otherwise.
    if keyserver_config.redis_url.is_none() && relay_config.redis_url.is_some() {
        keyserver_config
            .redis_url
            .clone_from(&relay_config.redis_url);
        keyserver_config
            .redis_prefix
            .clone_from(&relay_config.redis_prefix);
    }
    let keyserver = e2ee_keyserver::Keyserver::start(&keyserver_config).await?;
    // Same process: the relay trusts exactly the tickets this key server signs, unless the
    // operator pinned another key explicitly.
    let relay = match relay_config.ticket_public_key.as_deref() {
        Some(_) => e2ee_relay::Relay::start(&relay_config).await?,
        None => {
            e2ee_relay::Relay::start_with_ticket_key(
                &relay_config,
                keyserver.ticket_verifying_key(),
            )
            .await?
        }
    };
    // A device removed at the key server is refused by the relay (its earlier tickets) and
    // disconnected (4005) at once, not only when its ticket expires.
    let relay_for_removals = relay.clone();
    keyserver.on_device_removed(move |removal| {
        relay_for_removals.revoke_device(&removal.device, removal.removed_at_ms);
    });
    let app = keyserver.router().merge(e2ee_relay::router(relay));
    tracing::info!(addr = %listener.local_addr()?, "e2ee server (key server + relay) listening");
    e2ee_http_serve::serve(listener, app, http, shutdown).await?;
    keyserver.close().await;
    Ok(())
}
