//! Where a live envelope goes: a connection of this process (the [`Hub`]) or, running
//! multi-node, the node holding the device's socket (the [`Cluster`]).
//!
//! One value owns both. Nothing in the hub points at the cluster and the cluster's tasks
//! hold only a weak reference back, so dropping the relay drops the routing, which stops
//! the cluster's heartbeat and subscriber (before, hub and cluster held each other in an
//! `Arc` cycle and a dropped relay kept heartbeating inside the process).

use std::sync::Arc;

use crate::{
    cluster::Cluster,
    hub::{Hub, Kick},
    revocations::Revocations,
    wire::{Delivery, DeviceAddress},
};

/// Redis settings of a multi-node relay.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClusterConfig<'a> {
    pub(crate) url: &'a str,
    pub(crate) prefix: &'a str,
    pub(crate) node_id: Option<&'a str>,
}

/// This process's connections and, multi-node, the link to the other nodes.
#[derive(Debug, Default)]
pub(crate) struct Routing {
    pub(crate) hub: Hub,
    /// Removed devices, whose earlier tickets no longer open a connection.
    pub(crate) revocations: Revocations,
    cluster: Option<Cluster>,
}

impl Routing {
    /// Single-node routing: this process's connections only.
    pub(crate) fn local() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Joins the cluster (subscribed before this returns, so nothing published after
    /// start-up is missed) and starts its tasks.
    pub(crate) async fn join(config: ClusterConfig<'_>) -> Result<Arc<Self>, redis::RedisError> {
        let joined =
            Cluster::connect(config.url, config.prefix, config.node_id.map(str::to_owned)).await?;
        Ok(Arc::new_cyclic(|routing| Self {
            hub: Hub::default(),
            revocations: Revocations::default(),
            cluster: Some(joined.start(routing.clone())),
        }))
    }

    /// Records a device's removal and, if it is news, closes the device's connection here
    /// (close code 4005). Returns whether it was news.
    pub(crate) fn revoke(&self, device: &DeviceAddress, removed_at_ms: u64) -> bool {
        let news = self.revocations.record(device, removed_at_ms);
        if news {
            self.hub.kick(device, Kick::Revoked);
        }
        news
    }

    pub(crate) fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }

    /// Routes committed (or online-only) envelopes to whoever is connected, here or on
    /// another node. Returns how many went to a device known to be connected.
    pub(crate) async fn route(&self, items: Vec<(DeviceAddress, Delivery)>) -> usize {
        let mut delivered = 0;
        let mut remote = Vec::new();
        for (to, d) in items {
            match self.hub.deliver_local(&to, d) {
                Ok(()) => delivered += 1,
                Err(d) if self.cluster.is_some() => remote.push((to, d)),
                Err(_) => {}
            }
        }
        if let Some(cluster) = &self.cluster
            && !remote.is_empty()
        {
            delivered += cluster.forward(remote).await;
        }
        delivered
    }

    /// Whether a device is connected here or (multi-node) on any live node.
    pub(crate) async fn is_online(&self, device: &DeviceAddress) -> bool {
        if self.hub.is_local(device) {
            return true;
        }
        match &self.cluster {
            Some(cluster) => cluster.is_online_elsewhere(device).await,
            None => false,
        }
    }

    /// Tells the cluster this node now holds the device's socket.
    pub(crate) async fn announce(&self, device: &DeviceAddress) {
        if let Some(cluster) = &self.cluster {
            cluster.announce(device).await;
        }
    }

    /// Tells the cluster this node no longer holds the device's socket.
    pub(crate) async fn withdraw(&self, device: &DeviceAddress) {
        if let Some(cluster) = &self.cluster {
            cluster.withdraw(device).await;
        }
    }
}
