//! The writer lease: which process on this store talks to the relay. An app and its
//! notification extension (or background worker) open the same store; both may read and
//! commit (SQLite serialises their transactions), but only one may hold the relay connection,
//! because the relay keeps one consuming connection per device and a second one would close
//! the first. The holder renews the lease while it runs; a holder that dies (killed, crashed)
//! loses it when it expires.
//!
//! ```text
//! Lease item (space 1, lookup "writer lease") = holder u64 || expires_at_ms u64
//! ```

use std::time::Duration;

use super::{Device, Error, now_ms};
use crate::store::{Space, StoreError};

const LEASE: &[u8] = b"writer lease";
/// How long a lease lasts without renewal; holders renew it every third of this.
pub const LEASE_TTL: Duration = Duration::from_secs(15);

/// A process's claim on the writer lease (a random holder id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease(pub u64);

fn decode(bytes: &[u8]) -> Result<(u64, u64), StoreError> {
    let bytes: [u8; 16] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("writer lease"))?;
    let (holder, expires) = bytes.split_at(8);
    let read = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
    Ok((read(holder), read(expires)))
}

impl Lease {
    /// A new holder id.
    pub fn new() -> Self {
        Self(rand_core::RngCore::next_u64(&mut rand_core::OsRng))
    }
}

impl Default for Lease {
    fn default() -> Self {
        Self::new()
    }
}

impl Device {
    /// Takes or renews the writer lease for `ttl` if nobody else holds an unexpired one.
    /// Returns whether `lease` holds it now. After taking it over from another holder, call
    /// [`Device::reload`]: that process may have changed what this one has in memory.
    pub fn acquire_lease(&mut self, lease: Lease, ttl: Duration) -> Result<bool, Error> {
        let now = now_ms();
        self.vault().transaction(|tx| {
            if let Some(bytes) = tx.get(Space::IDENTITY, LEASE)? {
                let (holder, expires) = decode(&bytes)?;
                if holder != lease.0 && expires > now {
                    return Ok(false);
                }
            }
            let expires = now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
            let mut value = lease.0.to_be_bytes().to_vec();
            value.extend_from_slice(&expires.to_be_bytes());
            tx.put(Space::IDENTITY, LEASE, &value)?;
            Ok(true)
        })
    }

    /// Gives the lease up, if `lease` holds it.
    pub fn release_lease(&mut self, lease: Lease) -> Result<(), Error> {
        self.vault().transaction(|tx| {
            if let Some(bytes) = tx.get(Space::IDENTITY, LEASE)?
                && decode(&bytes)?.0 == lease.0
            {
                tx.delete(Space::IDENTITY, LEASE)?;
            }
            Ok(())
        })
    }
}
