//! Counts open connections, per process and per peer address, from accept until the socket
//! is dropped (after an upgrade too: the upgraded socket carries its guard).

use std::{
    collections::HashMap,
    net::IpAddr,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::Notify,
};

#[derive(Debug, Default)]
struct Counts {
    open: usize,
    per_peer: HashMap<IpAddr, usize>,
}

#[derive(Debug)]
struct Shared {
    counts: Mutex<Counts>,
    closed: Notify,
    max: usize,
    max_per_peer: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Counts> {
        // Each critical section is a few integer updates: a panic cannot leave them torn.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The connection counts of one accept loop.
#[derive(Debug, Clone)]
pub(crate) struct Tracker(Arc<Shared>);

/// Whether a new connection may stay.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Counted until the guard drops.
    Admitted(Guard),
    /// The process holds `max` connections.
    ProcessFull,
    /// The peer address holds `max_per_peer` connections.
    PeerFull,
}

impl Tracker {
    pub(crate) fn new(max: usize, max_per_peer: usize) -> Self {
        Self(Arc::new(Shared {
            counts: Mutex::new(Counts::default()),
            closed: Notify::new(),
            max,
            max_per_peer,
        }))
    }

    pub(crate) fn admit(&self, peer: IpAddr) -> Admission {
        let mut counts = self.0.lock();
        if counts.open >= self.0.max {
            return Admission::ProcessFull;
        }
        let from_peer = counts.per_peer.entry(peer).or_insert(0);
        if *from_peer >= self.0.max_per_peer {
            return Admission::PeerFull;
        }
        *from_peer += 1;
        counts.open += 1;
        Admission::Admitted(Guard {
            tracker: self.clone(),
            peer,
        })
    }

    /// Open connections now.
    pub(crate) fn open(&self) -> usize {
        self.0.lock().open
    }

    /// Resolves once no connection is open.
    pub(crate) async fn wait_for_none(&self) {
        loop {
            let closed = self.0.closed.notified();
            if self.open() == 0 {
                return;
            }
            closed.await;
        }
    }
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub(crate) struct Guard {
    tracker: Tracker,
    peer: IpAddr,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let shared = &self.tracker.0;
        let mut counts = shared.lock();
        counts.open = counts.open.saturating_sub(1);
        if let Some(n) = counts.per_peer.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_peer.remove(&self.peer);
            }
        }
        drop(counts);
        shared.closed.notify_waiters();
    }
}

/// A TCP stream that holds its connection's [`Guard`].
#[derive(Debug)]
pub(crate) struct Tracked {
    stream: TcpStream,
    _guard: Guard,
}

impl Tracked {
    pub(crate) fn new(stream: TcpStream, guard: Guard) -> Self {
        Self {
            stream,
            _guard: guard,
        }
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_process_and_per_peer_hold_and_free_on_drop() {
        let tracker = Tracker::new(3, 2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = tracker.admit(a);
        let second = tracker.admit(a);
        assert!(matches!(tracker.admit(a), Admission::PeerFull));
        let third = tracker.admit(b);
        assert!(matches!(tracker.admit(b), Admission::ProcessFull));
        assert_eq!(tracker.open(), 3);
        drop(first);
        assert_eq!(tracker.open(), 2);
        assert!(matches!(tracker.admit(a), Admission::Admitted(_)));
        drop((second, third));
        assert_eq!(tracker.open(), 0);
        assert!(tracker.0.lock().per_peer.is_empty());
    }
}
