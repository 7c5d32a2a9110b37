//! `e2ee-relay`: the relay alone. See `--help`.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "e2ee-relay",
    version,
    about = "Blind ciphertext relay for the E2EE SDK"
)]
struct Cli {
    /// Address and port to listen on (HTTP + WebSocket at /v1/relay/ws).
    #[arg(long, env = "E2EE_RELAY_LISTEN", default_value = "127.0.0.1:8081")]
    listen: std::net::SocketAddr,

    #[command(flatten)]
    config: e2ee_relay::Config,

    #[command(flatten, next_help_heading = "HTTP")]
    http: e2ee_http_serve::HttpLimits,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match e2ee_relay::serve(
        cli.listen,
        cli.config,
        cli.http,
        e2ee_http_serve::shutdown_signal(),
    )
    .await
    {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "relay stopped");
            std::process::ExitCode::FAILURE
        }
    }
}
