//! The Rust side of the bindings' overhead benchmark: the same encrypt and decrypt calls a
//! Kotlin or Python benchmark makes through the bindings, made here in Rust on the same two
//! devices, so each language's per-call overhead is a paired difference in one run
//! (bindings/README.md, Measured).

use std::sync::Arc;
use std::time::Instant;

use e2ee_client::{DeviceAddress, Error};

use crate::{Device, E2eeError};

/// Nanoseconds per call, one entry per round trip.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RoundTripTimes {
    /// `send_message` of the body from `sender` to the receiver's user.
    pub encrypt_ns: Vec<u64>,
    /// `receive` of that ciphertext on `receiver`.
    pub decrypt_ns: Vec<u64>,
}

fn nanos(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// `count` round trips of a `body_len`-byte message from `sender` to `receiver` (which must
/// have a session, as after `prekeyBundle` + `addBundle`), each timed in Rust; relay ids
/// start at `first_relay_id`. Outbox entries are acknowledged outside the timed part.
#[uniffi::export]
pub fn benchmark_round_trips_in_rust(
    sender: Arc<Device>,
    receiver: Arc<Device>,
    count: u32,
    body_len: u32,
    first_relay_id: u64,
) -> Result<RoundTripTimes, E2eeError> {
    if Arc::ptr_eq(&sender, &receiver) {
        return Err(E2eeError::InvalidInput {
            what: "a sender that is also the receiver".into(),
        });
    }
    let body = vec![0x61; body_len as usize];
    let mut times = RoundTripTimes {
        encrypt_ns: Vec::with_capacity(count as usize),
        decrypt_ns: Vec::with_capacity(count as usize),
    };
    let mut sender = sender.device()?;
    let mut receiver = receiver.device()?;
    let from = sender.address().clone();
    let to = receiver.address().user.to_string();
    for i in 0..u64::from(count) {
        let start = Instant::now();
        let sent = sender.send_message(&to, &body)?;
        times.encrypt_ns.push(nanos(start));
        let ciphertext = ciphertext_for(&sent.entry.envelopes, receiver.address())?;
        let start = Instant::now();
        receiver.receive(&from, first_relay_id + i, ciphertext)?;
        times.decrypt_ns.push(nanos(start));
        sender.acknowledged(sent.entry.msg_id)?;
    }
    Ok(times)
}

fn ciphertext_for<'a>(
    envelopes: &'a [(DeviceAddress, Vec<u8>)],
    device: &DeviceAddress,
) -> Result<&'a [u8], E2eeError> {
    envelopes
        .iter()
        .find(|(to, _)| to == device)
        .map(|(_, c)| c.as_slice())
        .ok_or_else(|| {
            Error::NoSession {
                device: device.to_string(),
            }
            .into()
        })
}
