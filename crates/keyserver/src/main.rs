//! `e2ee-keyserver`: the prekey server on its own. See the crate docs and docs/keyserver.md.

use std::net::SocketAddr;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// The E2EE prekey server (accounts, devices, prekeys, device lists, relay tickets).
#[derive(Debug, Parser)]
#[command(name = "e2ee-keyserver", version, about)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "E2EE_KEYSERVER_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    #[command(flatten)]
    config: e2ee_keyserver::Config,

    #[command(flatten, next_help_heading = "HTTP")]
    http: e2ee_http_serve::HttpLimits,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let keyserver = e2ee_keyserver::Keyserver::start(&cli.config).await?;
    let listener = tokio::net::TcpListener::bind(cli.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, "key server listening");
    e2ee_http_serve::serve(
        listener,
        keyserver.router(),
        cli.http,
        e2ee_http_serve::shutdown_signal(),
    )
    .await?;
    keyserver.close().await;
    Ok(())
}
