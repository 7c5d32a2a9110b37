//! The accept loop's limits, as flags (flatten [`HttpLimits`] into a binary's arguments).

/// Default header-read (and keep-alive idle) timeout: long enough for a slow mobile link to
/// send a request head, short enough that silent connections do not pile up.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// Default cap on connections per process: below the about 20,000 open files a process may
/// hold here, leaving room for database connections and files.
pub const DEFAULT_MAX_CONNECTIONS: usize = 19_000;
/// Default cap on connections from one peer IP address. Many phones can share one address
/// (carrier NAT), so it is generous; behind a reverse proxy every connection comes from the
/// proxy, so raise it there (or cap per client address in the proxy).
pub const DEFAULT_MAX_CONNECTIONS_PER_PEER: usize = 2_048;

/// Timeouts and connection caps of the HTTP accept loop.
#[derive(Debug, Clone, clap::Args)]
pub struct HttpLimits {
    /// Seconds a connection may take to send a request's line and headers; also how long an
    /// idle keep-alive connection may wait for its next request. Then it is closed.
    #[arg(
        long = "http-header-read-timeout-secs",
        env = "E2EE_HTTP_HEADER_READ_TIMEOUT_SECS",
        default_value_t = DEFAULT_HEADER_READ_TIMEOUT_SECS,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub header_read_timeout_secs: u64,

    /// Most open connections (HTTP and upgraded WebSocket) per process; more are answered 503
    /// `too_many_connections` and closed.
    #[arg(
        long = "http-max-connections",
        env = "E2EE_HTTP_MAX_CONNECTIONS",
        default_value_t = DEFAULT_MAX_CONNECTIONS
    )]
    pub max_connections: usize,

    /// Most open connections from one peer IP address; more are answered 429
    /// `too_many_connections_from_peer` and closed.
    #[arg(
        long = "http-max-connections-per-peer",
        env = "E2EE_HTTP_MAX_CONNECTIONS_PER_PEER",
        default_value_t = DEFAULT_MAX_CONNECTIONS_PER_PEER
    )]
    pub max_connections_per_peer: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout_secs: DEFAULT_HEADER_READ_TIMEOUT_SECS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_peer: DEFAULT_MAX_CONNECTIONS_PER_PEER,
        }
    }
}
