//! Multi-node operation over Redis: presence and routing to the node holding a socket.
//!
//! ```text
//! {prefix}:loc          hash  "<device_id>:<user_id>" -> node id holding the device's socket
//! {prefix}:alive:<node> key   set with a 10 s expiry, refreshed every 3 s while the node lives
//! {prefix}:node:<node>  pub/sub channel each node subscribes to
//! {prefix}:removed      sorted set of removed devices the key server writes
//!                       (e2ee_ticket::removals), read every REVOCATION_POLL
//! ```
//!
//! After a commit, envelopes for devices not connected locally are looked up in `loc` (one
//! `HMGET` per group commit) and published, batched per node, to that node's channel. The
//! envelopes are already in the shared PostgreSQL mailbox, so a lost message on this path (a
//! node died, Redis hiccuped) costs latency, not data: the device gets it from its mailbox on
//! its next connection. Connecting to a node publishes a kick to the node that held the device
//! before, keeping one consuming connection per device across the cluster.

use std::{
    sync::{Mutex, Weak},
    time::Duration,
};

use futures_util::StreamExt;
use redis::{AsyncCommands, Client, aio::MultiplexedConnection};
use tokio::task::AbortHandle;

mod routed;

pub use routed::Routed;

use e2ee_encoding::{Codec, DeviceAddress};

use e2ee_ticket::removals::{REMOVAL_RETENTION_MS, parse_removal_member, removals_key};

use crate::{
    clock::now_ms, hub::Kick, revocations::REVOCATION_POLL, routing::Routing, wire::Delivery,
};

/// Most removals read in one poll (a page; the next poll goes on from the last one read).
const MAX_REMOVALS_PER_POLL: usize = 10_000;
/// How far back each poll reads again from the newest removal seen, so a removal committed
/// by a key server whose clock runs a little behind (or written late) is not skipped.
const REMOVAL_READ_OVERLAP_MS: u64 = 10_000;

const ALIVE_TTL_SECS: u64 = 10;
const HEARTBEAT: Duration = Duration::from_secs(3);

const WITHDRAW_SCRIPT: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
";

/// Link to the other relay nodes. Owned by [`Routing`]; its background tasks hold only a
/// weak reference to it and are stopped when it is dropped, so a dropped relay stops
/// heartbeating at once and its alive key goes.
#[derive(Debug)]
pub(crate) struct Cluster {
    node_id: String,
    prefix: String,
    con: MultiplexedConnection,
    withdraw: redis::Script,
    tasks: Mutex<Vec<AbortHandle>>,
}

/// A connected cluster link whose node channel is subscribed but whose tasks have not
/// started (they need the [`Routing`] that will own the link).
pub(crate) struct Joined {
    pub(crate) cluster: Cluster,
    client: Client,
    pubsub: redis::aio::PubSub,
}

impl std::fmt::Debug for Joined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Joined")
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

fn field(a: &DeviceAddress) -> String {
    format!("{}:{}", a.device, a.user)
}

fn random_node_id() -> String {
    use rand_core::{OsRng, RngCore};
    format!("{:016x}", OsRng.next_u64())
}

impl Cluster {
    /// Connects, announces this node alive and subscribes to its channel (before returning,
    /// so nothing published after start-up is missed). [`Joined::start`] starts the tasks.
    pub(crate) async fn connect(
        url: &str,
        prefix: &str,
        node_id: Option<String>,
    ) -> Result<Joined, redis::RedisError> {
        let client = Client::open(url)?;
        let con = client.get_multiplexed_async_connection().await?;
        let cluster = Self {
            node_id: node_id.unwrap_or_else(random_node_id),
            prefix: prefix.to_owned(),
            con,
            withdraw: redis::Script::new(WITHDRAW_SCRIPT),
            tasks: Mutex::new(Vec::new()),
        };
        cluster.heartbeat().await?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(cluster.channel(&cluster.node_id)).await?;
        Ok(Joined {
            cluster,
            client,
            pubsub,
        })
    }

    fn loc_key(&self) -> String {
        format!("{}:loc", self.prefix)
    }

    fn alive_key(&self, node: &str) -> String {
        format!("{}:alive:{node}", self.prefix)
    }

    fn channel(&self, node: &str) -> String {
        format!("{}:node:{node}", self.prefix)
    }

    async fn heartbeat(&self) -> Result<(), redis::RedisError> {
        let mut con = self.con.clone();
        let _: () = con
            .set_ex(self.alive_key(&self.node_id), 1u8, ALIVE_TTL_SECS)
            .await?;
        Ok(())
    }

    /// Forwards envelopes for devices not connected here. Returns how many went to a node
    /// that has the device and was listening.
    pub(crate) async fn forward(&self, items: Vec<(DeviceAddress, Delivery)>) -> usize {
        match self.try_forward(items).await {
            Ok(n) => n,
            Err(e) => {
                // The envelopes are in the mailbox; they arrive on the next connection.
                tracing::warn!(error = %e, "cross-node routing failed");
                0
            }
        }
    }

    async fn try_forward(
        &self,
        items: Vec<(DeviceAddress, Delivery)>,
    ) -> Result<usize, redis::RedisError> {
        let mut con = self.con.clone();
        let fields: Vec<String> = items.iter().map(|(a, _)| field(a)).collect();
        let nodes: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.loc_key())
            .arg(&fields)
            .query_async(&mut con)
            .await?;
        let mut by_node: std::collections::HashMap<String, Vec<(DeviceAddress, Delivery)>> =
            std::collections::HashMap::new();
        for (item, node) in items.into_iter().zip(nodes) {
            if let Some(node) = node
                && node != self.node_id
            {
                by_node.entry(node).or_default().push(item);
            }
        }
        if by_node.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        let mut counts = Vec::with_capacity(by_node.len());
        for (node, batch) in by_node {
            counts.push(batch.len());
            pipe.publish(self.channel(&node), Routed::Deliveries(batch).to_bytes());
        }
        let receivers: Vec<i64> = pipe.query_async(&mut con).await?;
        Ok(receivers
            .iter()
            .zip(counts)
            .filter(|(r, _)| **r > 0)
            .map(|(_, n)| n)
            .sum())
    }

    /// Whether the device is connected to another live node (this node's own connections
    /// are the hub's to answer).
    pub(crate) async fn is_online_elsewhere(&self, device: &DeviceAddress) -> bool {
        let mut con = self.con.clone();
        let node: Option<String> = match con.hget(self.loc_key(), field(device)).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "presence lookup failed");
                return false;
            }
        };
        match node {
            Some(n) if n != self.node_id => con.exists(self.alive_key(&n)).await.unwrap_or(false),
            _ => false,
        }
    }

    /// Removals with a score of at least `since_ms`, oldest first, at most
    /// [`MAX_REMOVALS_PER_POLL`]. Members that name no device are skipped.
    async fn removals_since(
        &self,
        since_ms: u64,
    ) -> Result<Vec<(DeviceAddress, u64)>, redis::RedisError> {
        let mut con = self.con.clone();
        let rows: Vec<(String, f64)> = redis::cmd("ZRANGEBYSCORE")
            .arg(removals_key(&self.prefix))
            .arg(since_ms)
            .arg("+inf")
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(0)
            .arg(MAX_REMOVALS_PER_POLL)
            .query_async(&mut con)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(member, score)| {
                let device = parse_removal_member(&member);
                if device.is_none() {
                    tracing::warn!(member, "bad member in the removal set");
                }
                // Scores are whole milliseconds well below 2^53, exact in an f64.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                device.map(|d| (d, score as u64))
            })
            .collect())
    }

    /// Records that this node holds the device's socket and kicks the node that held it.
    pub(crate) async fn announce(&self, device: &DeviceAddress) {
        let mut con = self.con.clone();
        let f = field(device);
        let old: Result<Option<String>, _> = con.hget(self.loc_key(), &f).await;
        let set: Result<(), _> = con.hset(self.loc_key(), &f, &self.node_id).await;
        if let Err(e) = set {
            tracing::warn!(error = %e, "presence update failed");
        }
        if let Ok(Some(old)) = old
            && old != self.node_id
        {
            let _: Result<i64, _> = con
                .publish(self.channel(&old), Routed::Kick(device.clone()).to_bytes())
                .await;
        }
    }

    /// Removes the device's location if it still points at this node.
    pub(crate) async fn withdraw(&self, device: &DeviceAddress) {
        let mut con = self.con.clone();
        let r: Result<i64, _> = self
            .withdraw
            .key(self.loc_key())
            .arg(field(device))
            .arg(&self.node_id)
            .invoke_async(&mut con)
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "presence withdraw failed");
        }
    }
}

impl Joined {
    /// Starts the heartbeat and the node-channel subscriber for `routing`, which owns this
    /// link. Both stop when `routing` is dropped.
    pub(crate) fn start(self, routing: Weak<Routing>) -> Cluster {
        let heartbeat = tokio::spawn(heartbeat(routing.clone()));
        let removals = tokio::spawn(removals(routing.clone()));
        let subscriber = tokio::spawn(subscriber(self.client, self.pubsub, routing));
        let mut tasks = self.cluster.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.push(heartbeat.abort_handle());
        tasks.push(removals.abort_handle());
        tasks.push(subscriber.abort_handle());
        drop(tasks);
        tracing::info!(node = %self.cluster.node_id, "joined relay cluster");
        self.cluster
    }
}

impl Drop for Cluster {
    /// Stops the tasks and, best effort, removes the alive key at once (it would expire
    /// within [`ALIVE_TTL_SECS`] anyway, now that nothing refreshes it).
    fn drop(&mut self) {
        for task in self
            .tasks
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let mut con = self.con.clone();
            let key = self.alive_key(&self.node_id);
            runtime.spawn(async move {
                let _: Result<(), _> = con.del(key).await;
            });
        }
    }
}

async fn heartbeat(routing: Weak<Routing>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        let Some(routing) = routing.upgrade() else {
            return;
        };
        let Some(cluster) = routing.cluster() else {
            return;
        };
        if let Err(e) = cluster.heartbeat().await {
            tracing::warn!(error = %e, "redis heartbeat failed");
        }
    }
}

/// Reads new removals every [`REVOCATION_POLL`] and revokes them here: the first read covers
/// every removal whose tickets may still be alive, later ones go on from the newest seen.
async fn removals(routing: Weak<Routing>) {
    let mut since = now_ms().saturating_sub(REMOVAL_RETENTION_MS);
    let mut tick = tokio::time::interval(REVOCATION_POLL);
    loop {
        tick.tick().await;
        let Some(routing) = routing.upgrade() else {
            return;
        };
        let Some(cluster) = routing.cluster() else {
            return;
        };
        match cluster.removals_since(since).await {
            Ok(page) => {
                let full = page.len() >= MAX_REMOVALS_PER_POLL;
                let newest = page.iter().map(|(_, at)| *at).max();
                for (device, at) in &page {
                    if routing.revoke(device, *at) {
                        tracing::info!(%device, "device removed at the key server: tickets revoked");
                    }
                }
                if let Some(newest) = newest {
                    // A full page goes on from where it stopped; otherwise read the overlap
                    // again next time.
                    let next = if full {
                        newest
                    } else {
                        newest.saturating_sub(REMOVAL_READ_OVERLAP_MS)
                    };
                    since = since.max(next);
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading removals from redis failed"),
        }
    }
}

async fn subscriber(client: Client, mut pubsub: redis::aio::PubSub, routing: Weak<Routing>) {
    loop {
        {
            let mut messages = pubsub.on_message();
            while let Some(msg) = messages.next().await {
                let Some(routing) = routing.upgrade() else {
                    return;
                };
                match Routed::from_bytes(msg.get_payload_bytes()) {
                    Ok(Routed::Deliveries(items)) => {
                        for (to, d) in items {
                            // Not here any more: it is in the mailbox.
                            let _ = routing.hub.deliver_local(&to, d);
                        }
                    }
                    Ok(Routed::Kick(device)) => {
                        routing.hub.kick(&device, Kick::Replaced);
                    }
                    Err(e) => tracing::warn!(error = %e, "bad message on the node channel"),
                }
            }
        }
        // The subscription dropped (Redis restarted?): resubscribe with backoff.
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Some(routing) = routing.upgrade() else {
                return;
            };
            let Some(cluster) = routing.cluster() else {
                return;
            };
            match client.get_async_pubsub().await {
                Ok(mut p) => {
                    if p.subscribe(cluster.channel(&cluster.node_id)).await.is_ok() {
                        pubsub = p;
                        break;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "redis resubscribe failed"),
            }
        }
    }
}
