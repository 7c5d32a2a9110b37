//! Multi-node routing over Redis (filled in by the scale-out slice).

use std::sync::Arc;

use crate::{
    hub::Hub,
    wire::{Address, Delivery},
};

/// Link to the other relay nodes.
#[derive(Debug)]
pub(crate) struct Cluster {}

impl Cluster {
    pub(crate) async fn connect(
        _url: &str,
        _prefix: &str,
        _node_id: Option<String>,
        _hub: Arc<Hub>,
    ) -> Result<Arc<Self>, String> {
        Err("multi-node mode is not implemented yet".into())
    }

    /// Forwards envelopes for devices not connected here. Returns how many went to a device
    /// known to be online on another node.
    pub(crate) async fn forward(&self, items: Vec<(Address, Delivery)>) -> usize {
        let _ = items;
        0
    }

    pub(crate) async fn is_online(&self, _device: &Address) -> bool {
        false
    }

    pub(crate) async fn announce(&self, _device: &Address) {}

    pub(crate) async fn withdraw(&self, _device: &Address) {}
}
