//! Which devices are connected to this process, and handing them live envelopes.
//!
//! One consuming connection per device: registering a device that is already connected kicks
//! the older connection (it is closed with [`crate::session::CLOSE_REPLACED`]). Live envelopes
//! go through a bounded queue per connection; when it is full the envelope is not lost (it is
//! already in the mailbox), the connection is only told it lagged and rereads its mailbox.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
};

use tokio::sync::{mpsc, oneshot};

use crate::{
    limits::LIVE_QUEUE_LEN,
    wire::{Delivery, DeviceAddress},
};

/// Why a connection is closed by the relay rather than by its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kick {
    /// A newer connection of the device (here or on another node) took over.
    Replaced,
    /// The device was removed from its account.
    Revoked,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    // Boxed: the channel preallocates a block of slots per connection, and most
    // connections are idle, so a slot is one pointer rather than a whole Delivery.
    tx: mpsc::Sender<Box<Delivery>>,
    kick: Option<oneshot::Sender<Kick>>,
    lagged: Arc<AtomicBool>,
}

/// A connection's side of its registration.
#[derive(Debug)]
pub(crate) struct Registration {
    pub(crate) id: u64,
    pub(crate) rx: mpsc::Receiver<Box<Delivery>>,
    pub(crate) kicked: oneshot::Receiver<Kick>,
    pub(crate) lagged: Arc<AtomicBool>,
}

/// The connections of this process.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    conns: Mutex<HashMap<DeviceAddress, Entry>>,
    next_id: AtomicU64,
    open: Arc<AtomicUsize>,
}

/// Counts an open connection for as long as it lives.
#[derive(Debug)]
pub(crate) struct ConnSlot {
    open: Arc<AtomicUsize>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Hub {
    /// Reserves a connection slot, or `None` when `max` are open.
    pub(crate) fn try_open(&self, max: usize) -> Option<ConnSlot> {
        let prev = self.open.fetch_add(1, Ordering::SeqCst);
        if prev >= max {
            self.open.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(ConnSlot {
            open: self.open.clone(),
        })
    }

    /// Open connections (including ones still authenticating).
    pub(crate) fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<DeviceAddress, Entry>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes this the device's consuming connection, kicking any older one here.
    pub(crate) fn register(&self, device: &DeviceAddress) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst) + 1;
        let (tx, rx) = mpsc::channel(LIVE_QUEUE_LEN);
        let (kick_tx, kicked) = oneshot::channel();
        let lagged = Arc::new(AtomicBool::new(false));
        let entry = Entry {
            id,
            tx,
            kick: Some(kick_tx),
            lagged: lagged.clone(),
        };
        if let Some(mut old) = self.lock().insert(device.clone(), entry)
            && let Some(k) = old.kick.take()
        {
            let _ = k.send(Kick::Replaced);
        }
        Registration {
            id,
            rx,
            kicked,
            lagged,
        }
    }

    /// Removes the registration if it is still the current one. Returns whether it was.
    pub(crate) fn unregister(&self, device: &DeviceAddress, id: u64) -> bool {
        let mut map = self.lock();
        if map.get(device).is_some_and(|e| e.id == id) {
            map.remove(device);
            true
        } else {
            false
        }
    }

    /// Closes the device's connection here, if any, telling it why. Returns whether there
    /// was one.
    pub(crate) fn kick(&self, device: &DeviceAddress, why: Kick) -> bool {
        if let Some(mut e) = self.lock().remove(device)
            && let Some(k) = e.kick.take()
        {
            return k.send(why).is_ok();
        }
        false
    }

    /// Whether the device is connected to this process.
    pub(crate) fn is_local(&self, device: &DeviceAddress) -> bool {
        self.lock().contains_key(device)
    }

    /// Hands an envelope to the device's local connection; gives it back if there is none.
    pub(crate) fn deliver_local(
        &self,
        device: &DeviceAddress,
        d: Delivery,
    ) -> Result<(), Delivery> {
        let map = self.lock();
        let Some(e) = map.get(device) else {
            return Err(d);
        };
        if e.tx.try_send(Box::new(d)).is_err() {
            e.lagged.store(true, Ordering::SeqCst);
        }
        Ok(())
    }
}
