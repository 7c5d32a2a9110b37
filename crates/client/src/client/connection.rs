//! The relay connection: one WebSocket at a time, reopened with exponential backoff and
//! jitter. On each connection the outbox is sent (again) until the relay stores every
//! envelope, deliveries are committed before they are acknowledged, and receipts owed go out.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use e2ee_core::Codec;
use e2ee_relay_wire::{
    ClientFrame, Delivery, ErrorCode, FLAG_ONLINE_ONLY, OutEnvelope, SendStatus, ServerFrame,
    limits::{MAX_ACK_BATCH, MAX_BATCH_ENVELOPES, MAX_FRAME_LEN, MAX_RECIPIENTS},
};
use futures_util::{FutureExt, SinkExt, StreamExt};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{
    self, Message, client::IntoClientRequest, http::HeaderValue, protocol::frame::coding::CloseCode,
};

use super::{ClientError, Command, ConnectionState, Event, Shared};
use crate::{DeviceAddress, Error, LEASE_TTL, OutboxEntry, Received};

/// The relay's WebSocket path.
const WS_PATH: &str = "/v1/relay/ws";
/// First reconnect delay; doubles per failed attempt up to [`MAX_BACKOFF`].
pub(crate) const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait between reconnect attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A quiet connection is pinged this often, so dead ones are noticed.
const PING_INTERVAL: Duration = Duration::from_secs(20);
/// Acks wait this long for more deliveries to share their frame.
const ACK_DELAY: Duration = Duration::from_millis(2);
/// Delivery receipts wait this long after the first message that owes one, so a burst of
/// messages from one user is answered with one receipt (each receipt costs an encryption and
/// a commit on both sides).
pub(crate) const RECEIPT_DELAY: Duration = Duration::from_millis(100);
/// While connected, the key server's count of our one-time prekeys is checked this often
/// (and at every connection), so a device that stays online keeps enough of them.
pub(crate) const PREKEY_CHECK: Duration = Duration::from_secs(10 * 60);
/// A wedged outbox entry is tried again after this long.
const WEDGED_RETRY: Duration = Duration::from_secs(5);
/// Bytes of envelopes put into one `SEND` frame (under the relay's 1 MiB frame limit).
const SEND_FRAME_BUDGET: usize = MAX_FRAME_LEN - 64 * 1024;
/// Relay close codes (docs/relay.md).
const CLOSE_REVOKED: u16 = 4005;

/// The relay's envelope id for one device's ciphertext of outbox entry `msg_id`: distinct
/// per recipient (the relay deduplicates on (sender, id)), the same on every retry.
pub(crate) fn relay_envelope_id(msg_id: u64, to: &crate::DeviceAddress) -> u64 {
    let mut hash = Sha256::new();
    hash.update(b"E2EE-v1 client relay envelope id");
    hash.update(msg_id.to_be_bytes());
    hash.update(to.to_bytes());
    let digest = hash.finalize();
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(id)
}

/// Exponential backoff with full jitter between half and all of the delay.
#[derive(Debug)]
struct Backoff {
    attempt: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let base = MIN_BACKOFF
            .saturating_mul(1 << self.attempt.min(10))
            .min(MAX_BACKOFF);
        self.attempt = self.attempt.saturating_add(1);
        let half = base / 2;
        let jitter_ms = u64::from(OsRng.next_u32()) % (half.as_millis() as u64 + 1);
        half + Duration::from_millis(jitter_ms)
    }
}

/// How a connection ended.
enum Ended {
    Stopped,
    Lost(String),
    Removed,
}

/// Takes (or renews) the writer lease, reloading what another holder may have changed.
fn take_lease(shared: &Shared) -> Result<bool, Error> {
    let mut device = shared.device();
    if !device.acquire_lease(shared.lease, LEASE_TTL)? {
        return Ok(false);
    }
    device.reload()?;
    Ok(true)
}

/// The connection task: connects, runs a session, and reconnects until stopped; gives the
/// writer lease back when it ends.
pub(crate) async fn run(shared: Arc<Shared>, commands: mpsc::UnboundedReceiver<Command>) {
    reconnect(&shared, commands).await;
    let _ = shared.device().release_lease(shared.lease);
}

async fn reconnect(shared: &Shared, mut commands: mpsc::UnboundedReceiver<Command>) {
    let mut backoff = Backoff { attempt: 0 };
    loop {
        shared
            .emit(Event::Connection(ConnectionState::Connecting))
            .await;
        let mut was_online = false;
        let ended = session(shared, &mut commands, &mut was_online).await;
        if was_online {
            backoff.attempt = 0;
        }
        let reason = match ended {
            Ended::Stopped => return,
            Ended::Removed => {
                shared
                    .emit(Event::Connection(ConnectionState::Removed))
                    .await;
                return;
            }
            Ended::Lost(reason) => reason,
        };
        let retry_in = backoff.next();
        shared
            .emit(Event::Connection(ConnectionState::Offline {
                reason,
                retry_in,
            }))
            .await;
        let wait = tokio::time::sleep(retry_in);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => break,
                command = commands.recv() => match command {
                    None | Some(Command::Stop) => return,
                    // Sent when the connection is back.
                    Some(Command::Send(_) | Command::Online(_)) => {}
                },
            }
        }
    }
}

/// What one connection has sent and not yet seen stored.
#[derive(Default)]
struct InFlight {
    /// Relay envelope id -> outbox entry.
    envelopes: HashMap<u64, u64>,
    /// Outbox entry -> envelopes not yet stored.
    remaining: HashMap<u64, usize>,
    /// First envelope id of each `SEND` frame -> the entries in it (a refused frame's
    /// `ERROR` names its first envelope).
    frames: HashMap<u64, Vec<u64>>,
    /// Entries to leave alone until the given time (the relay refused them).
    held_until: HashMap<u64, tokio::time::Instant>,
}

type Outgoing = mpsc::UnboundedSender<Message>;

fn send_frame(out: &Outgoing, frame: &ClientFrame) -> Result<(), ()> {
    out.send(Message::Binary(frame.to_bytes().into()))
        .map_err(|_| ())
}

/// Sends every outbox entry this connection has not sent (or that is no longer held).
fn flush_outbox(
    shared: &Shared,
    out: &Outgoing,
    in_flight: &mut InFlight,
) -> Result<(), ClientError> {
    let entries = shared.device().outbox()?;
    send_entries(out, in_flight, entries)
}

/// Sends those of `entries` this connection has not sent and does not hold back.
fn send_entries(
    out: &Outgoing,
    in_flight: &mut InFlight,
    entries: Vec<OutboxEntry>,
) -> Result<(), ClientError> {
    let now = tokio::time::Instant::now();
    let mut batch: Vec<OutEnvelope> = Vec::new();
    let mut batch_entries: Vec<u64> = Vec::new();
    let mut batch_bytes = 0;
    let emit = |batch: &mut Vec<OutEnvelope>,
                batch_entries: &mut Vec<u64>,
                in_flight: &mut InFlight|
     -> Result<(), ClientError> {
        if let Some(first) = batch.first() {
            in_flight
                .frames
                .insert(first.msg_id, std::mem::take(batch_entries));
            send_frame(out, &ClientFrame::Send(std::mem::take(batch)))
                .map_err(|()| ClientError::Network("connection closed".into()))?;
        }
        Ok(())
    };
    for entry in entries {
        if in_flight.remaining.contains_key(&entry.msg_id)
            || in_flight
                .held_until
                .get(&entry.msg_id)
                .is_some_and(|until| *until > now)
        {
            continue;
        }
        in_flight.held_until.remove(&entry.msg_id);
        let envelopes = fan_out(entry.envelopes);
        in_flight.remaining.insert(entry.msg_id, envelopes.len());
        for (recipients, ciphertext) in envelopes {
            let id = relay_envelope_id(entry.msg_id, &recipients[0]);
            in_flight.envelopes.insert(id, entry.msg_id);
            let size = ciphertext.len() + 64 * recipients.len();
            if batch.len() == MAX_BATCH_ENVELOPES || batch_bytes + size > SEND_FRAME_BUDGET {
                emit(&mut batch, &mut batch_entries, in_flight)?;
                batch_bytes = 0;
            }
            if batch_entries.last() != Some(&entry.msg_id) {
                batch_entries.push(entry.msg_id);
            }
            batch_bytes += size;
            batch.push(OutEnvelope {
                flags: 0,
                msg_id: id,
                recipients,
                payload: ciphertext,
            });
        }
    }
    emit(&mut batch, &mut batch_entries, in_flight)
}

/// An entry's envelopes as the relay takes them: devices that get the same ciphertext (a
/// group message: every member device) share one envelope, which the relay stores once.
/// Deterministic, so a retry has the same envelope ids.
fn fan_out(envelopes: Vec<(DeviceAddress, Vec<u8>)>) -> Vec<(Vec<DeviceAddress>, Vec<u8>)> {
    let mut out: Vec<(Vec<DeviceAddress>, Vec<u8>)> = Vec::new();
    for (to, ciphertext) in envelopes {
        match out.last_mut() {
            Some((recipients, payload))
                if *payload == ciphertext && recipients.len() < MAX_RECIPIENTS =>
            {
                recipients.push(to);
            }
            _ => out.push((vec![to], ciphertext)),
        }
    }
    out
}

/// Forgets what this connection sent of `entries`, so they go again after `delay`.
fn hold(in_flight: &mut InFlight, entries: impl IntoIterator<Item = u64>, delay: Duration) {
    let until = tokio::time::Instant::now() + delay;
    let entries: HashSet<u64> = entries.into_iter().collect();
    for msg_id in &entries {
        in_flight.remaining.remove(msg_id);
        in_flight.held_until.insert(*msg_id, until);
    }
    in_flight.envelopes.retain(|_, m| !entries.contains(m));
}

/// A ticket and a WebSocket to the relay; `Ended::Removed` when the key server or the relay
/// says this device was removed.
async fn open_socket(
    shared: &Shared,
) -> Result<tokio_tungstenite::WebSocketStream<super::transport::Stream>, Ended> {
    let ticket = match shared.keyserver.ticket().await {
        Ok(ticket) => ticket,
        Err(ClientError::Server { status: 401, .. }) => return Err(Ended::Removed),
        Err(e) => return Err(Connection::lost(e)),
    };
    let mut request = shared
        .relay
        .ws_url(WS_PATH)
        .into_client_request()
        .map_err(|e| Connection::lost(format!("relay URL: {e}")))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {ticket}"))
        .map_err(|_| Connection::lost("ticket is not a header value"))?;
    request.headers_mut().insert("authorization", bearer);
    let stream = super::transport::connect(&shared.relay, &shared.tls)
        .await
        .map_err(Connection::lost)?;
    let mut config = tungstenite::protocol::WebSocketConfig::default();
    config.max_message_size = Some(MAX_FRAME_LEN + 64 * 1024);
    let handshake = tokio_tungstenite::client_async_with_config(request, stream, Some(config));
    match tokio::time::timeout(super::transport::CONNECT_TIMEOUT, handshake).await {
        Err(_) => Err(Connection::lost("relay handshake timed out")),
        Ok(Err(tungstenite::Error::Http(response))) if response.status() == 401 => {
            // A revoked ticket: the device was removed.
            let body = response.body().as_deref().unwrap_or_default();
            if String::from_utf8_lossy(body).contains("ticket_revoked") {
                Err(Ended::Removed)
            } else {
                Err(Connection::lost("relay refused the ticket"))
            }
        }
        Ok(Err(e)) => Err(Connection::lost(format!("relay: {e}"))),
        Ok(Ok((socket, _))) => Ok(socket),
    }
}

/// One connection, from the ticket to its end.
async fn session(
    shared: &Shared,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    was_online: &mut bool,
) -> Ended {
    // Only the lease holder connects (a second connection of the device would close the
    // first); whoever held it before may have changed the directory.
    match take_lease(shared) {
        Ok(true) => {}
        Ok(false) => {
            return Ended::Lost("another process on this store holds the writer lease".into());
        }
        Err(e) => return Ended::Lost(format!("store: {e}")),
    }
    let socket = match open_socket(shared).await {
        Ok(socket) => socket,
        Err(ended) => return ended,
    };
    *was_online = true;
    shared
        .emit(Event::Connection(ConnectionState::Online))
        .await;
    let (mut sink, mut stream) = socket.split();
    // Writes go through their own task, so a slow socket never stops this one reading
    // (the relay stops reading a connection that does not take its answers).
    let (out, mut to_write) = mpsc::unbounded_channel::<Message>();
    let writer = tokio::spawn(async move {
        while let Some(message) = to_write.recv().await {
            let close = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || close {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let ended = serve(shared, commands, &out, &mut stream).await;
    drop(out);
    let _ = writer.await;
    ended
}

async fn serve(
    shared: &Shared,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    out: &Outgoing,
    stream: &mut RelayStream,
) -> Ended {
    let mut conn = Connection {
        shared,
        out,
        in_flight: InFlight::default(),
        acks: Vec::new(),
        receipts_due: None,
    };
    if let Err(e) = shared.top_up_prekeys().await {
        return Ended::Lost(format!("prekey top-up: {e}"));
    }
    if let Err(e) = flush_outbox(shared, out, &mut conn.in_flight) {
        return Ended::Lost(e.to_string());
    }
    // Receipts owed since before a restart (committed with their messages) go out now.
    let owed = shared.device().receipts_due();
    match owed {
        Ok(users) if !users.is_empty() => conn.receipts_due = Some(tokio::time::Instant::now()),
        Ok(_) => {}
        Err(e) => return Ended::Lost(format!("store: {e}")),
    }
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;
    let mut retry = tokio::time::interval(WEDGED_RETRY);
    retry.tick().await;
    let mut renew = tokio::time::interval(LEASE_TTL / 3);
    renew.tick().await;
    let mut prekeys = tokio::time::interval(PREKEY_CHECK);
    prekeys.tick().await;
    loop {
        let quiet = tokio::time::sleep(ACK_DELAY);
        let step = tokio::select! {
            biased;
            command = commands.recv() => conn.on_command(command),
            message = stream.next() => {
                let (run, end) = take_run(message, stream);
                let result = conn.on_messages(run).await;
                match end {
                    Some(ended) if result.is_ok() => Err(ended),
                    _ => result,
                }
            },
            () = quiet, if !conn.acks.is_empty() => {
                conn.flush_acks();
                Ok(())
            },
            () = sleep_until(conn.receipts_due), if conn.receipts_due.is_some() => {
                conn.send_receipts().await
            },
            _ = retry.tick() => {
                if conn.in_flight.held_until.is_empty() {
                    Ok(())
                } else {
                    flush_outbox(shared, out, &mut conn.in_flight).map_err(|e| Ended::Lost(e.to_string()))
                }
            },
            _ = ping.tick() => {
                let _ = out.send(Message::Ping(Vec::new().into()));
                Ok(())
            },
            _ = prekeys.tick() => {
                // A failure here is not the connection's: try again at the next check.
                let _ = shared.top_up_prekeys().await;
                Ok(())
            },
            _ = renew.tick() => match shared.device().acquire_lease(shared.lease, LEASE_TTL) {
                Ok(true) => Ok(()),
                Ok(false) => Err(Ended::Lost("the writer lease was taken over".into())),
                Err(e) => Err(Ended::Lost(format!("store: {e}"))),
            },
        };
        if let Err(ended) = step {
            return ended;
        }
    }
}

type RelayStream =
    futures_util::stream::SplitStream<tokio_tungstenite::WebSocketStream<super::transport::Stream>>;

/// `first` and every frame already waiting behind it, up to [`RECEIVE_BATCH`], so a backlog
/// commits many envelopes per transaction; and how the connection ended, if it did.
fn take_run(
    first: Option<Result<Message, tungstenite::Error>>,
    stream: &mut RelayStream,
) -> (Vec<Message>, Option<Ended>) {
    let mut run = Vec::new();
    let mut next = first;
    loop {
        match next {
            Some(Ok(message)) => run.push(message),
            Some(Err(e)) => return (run, Some(Ended::Lost(format!("relay: {e}")))),
            None => return (run, Some(Connection::lost("relay closed the connection"))),
        }
        if run.len() >= RECEIVE_BATCH {
            return (run, None);
        }
        match stream.next().now_or_never() {
            Some(more) => next = more,
            None => return (run, None),
        }
    }
}

/// Envelopes committed in one transaction at most.
pub(crate) const RECEIVE_BATCH: usize = 256;

/// Resolves at `at`, or never without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One open connection's state.
struct Connection<'a> {
    shared: &'a Shared,
    out: &'a Outgoing,
    in_flight: InFlight,
    /// Sequence numbers committed and not yet acknowledged.
    acks: Vec<u64>,
    /// When to send the receipts owed (set by the first chat message since the last ones).
    receipts_due: Option<tokio::time::Instant>,
}

impl Connection<'_> {
    fn lost(e: impl std::fmt::Display) -> Ended {
        Ended::Lost(e.to_string())
    }

    fn on_command(&mut self, command: Option<Command>) -> Result<(), Ended> {
        match command {
            None | Some(Command::Stop) => {
                self.flush_acks();
                let _ = self.out.send(Message::Close(None));
                Err(Ended::Stopped)
            }
            // Only the new entry: reading the whole outbox per send would make a long
            // outbox quadratic.
            Some(Command::Send(entry)) => {
                send_entries(self.out, &mut self.in_flight, vec![entry]).map_err(Self::lost)
            }
            Some(Command::Online(envelopes)) => {
                let frame = ClientFrame::Send(
                    envelopes
                        .into_iter()
                        .map(|(to, payload)| OutEnvelope {
                            flags: FLAG_ONLINE_ONLY,
                            msg_id: OsRng.next_u64(),
                            recipients: vec![to],
                            payload,
                        })
                        .collect(),
                );
                let _ = send_frame(self.out, &frame);
                Ok(())
            }
        }
    }

    /// Frames in the order they came; runs of deliveries are committed together.
    async fn on_messages(&mut self, messages: Vec<Message>) -> Result<(), Ended> {
        let mut deliveries = Vec::new();
        for message in messages {
            let bytes = match message {
                Message::Binary(bytes) => bytes,
                Message::Close(frame) => {
                    self.on_deliveries(std::mem::take(&mut deliveries)).await?;
                    let code = frame.as_ref().map(|f| u16::from(f.code));
                    if code == Some(CLOSE_REVOKED) {
                        return Err(Ended::Removed);
                    }
                    let why = frame.map(|f| format!("{} {}", u16::from(f.code), f.reason));
                    return Err(Ended::Lost(format!(
                        "relay closed: {}",
                        why.unwrap_or_default()
                    )));
                }
                _ => continue,
            };
            let frame = match ServerFrame::from_bytes(&bytes) {
                Ok(frame) => frame,
                Err(e) => {
                    self.on_deliveries(std::mem::take(&mut deliveries)).await?;
                    let _ =
                        self.out
                            .send(Message::Close(Some(tungstenite::protocol::CloseFrame {
                                code: CloseCode::Protocol,
                                reason: "undecodable frame".into(),
                            })));
                    return Err(Ended::Lost(format!("relay sent an undecodable frame: {e}")));
                }
            };
            match frame {
                ServerFrame::Deliver(delivery) => deliveries.push(delivery),
                other => {
                    self.on_deliveries(std::mem::take(&mut deliveries)).await?;
                    self.on_frame(other).await?;
                }
            }
        }
        self.on_deliveries(deliveries).await
    }

    async fn on_deliveries(&mut self, deliveries: Vec<Delivery>) -> Result<(), Ended> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let (processed, queued) = deliver(self.shared, &deliveries)
            .await
            .map_err(|e| Ended::Lost(format!("store: {e}")))?;
        // A group body may have queued an answer (a sync request or its changes): send it now.
        if queued {
            flush_outbox(self.shared, self.out, &mut self.in_flight)
                .map_err(|e| Ended::Lost(e.to_string()))?;
        }
        for (delivery, processed) in deliveries.iter().zip(processed) {
            if processed.message && self.receipts_due.is_none() {
                self.receipts_due = Some(tokio::time::Instant::now() + RECEIPT_DELAY);
            }
            if processed.ack && delivery.seq != 0 {
                self.acks.push(delivery.seq);
            }
        }
        if self.acks.len() >= MAX_ACK_BATCH / 2 {
            self.flush_acks();
        }
        Ok(())
    }

    async fn on_frame(&mut self, frame: ServerFrame) -> Result<(), Ended> {
        match frame {
            ServerFrame::SendResult(statuses) => {
                stored(self.shared, &mut self.in_flight, &statuses)
                    .await
                    .map_err(|e| Ended::Lost(format!("store: {e}")))?;
            }
            ServerFrame::Error {
                code,
                msg_id,
                retry_after_ms,
                detail,
            } => {
                let entries = self.in_flight.frames.remove(&msg_id).unwrap_or_default();
                let delay = match code {
                    ErrorCode::RateLimited => Duration::from_millis(u64::from(retry_after_ms)),
                    _ => WEDGED_RETRY,
                };
                hold(&mut self.in_flight, entries, delay);
                if code != ErrorCode::RateLimited {
                    self.shared
                        .emit(Event::OutboxWedged {
                            reason: format!("relay refused a send: {code:?} {detail}"),
                            retry_in: delay,
                        })
                        .await;
                }
                if matches!(
                    code,
                    ErrorCode::Malformed | ErrorCode::UnsupportedVersion | ErrorCode::UnknownKind
                ) {
                    return Err(Ended::Lost(format!("relay error {code:?}: {detail}")));
                }
            }
            ServerFrame::QueueDrained { .. } => {
                self.flush_acks();
                self.shared.emit(Event::CaughtUp).await;
            }
            _ => {}
        }
        Ok(())
    }

    /// Commits the receipts owed to the outbox and sends them.
    async fn send_receipts(&mut self) -> Result<(), Ended> {
        self.receipts_due = None;
        match self.shared.send_due_receipts().await {
            Ok(entries) => send_entries(self.out, &mut self.in_flight, entries).map_err(Self::lost),
            Err(e) => {
                self.shared
                    .emit(Event::OutboxWedged {
                        reason: format!("receipts: {e}"),
                        retry_in: WEDGED_RETRY,
                    })
                    .await;
                Ok(())
            }
        }
    }

    fn flush_acks(&mut self) {
        if !self.acks.is_empty() {
            let _ = send_frame(self.out, &ClientFrame::Ack(std::mem::take(&mut self.acks)));
        }
    }
}

/// Outcome of one delivery: whether to ack it, and whether it was a chat message (which owes
/// a receipt).
struct Processed {
    ack: bool,
    message: bool,
}

/// Commits a run of deliveries in one transaction and tells the app. Store failures are
/// errors (the envelopes stay at the relay and come again); anything wrong with an envelope
/// itself is reported and acked. An envelope from a user or device we do not know yet is
/// tried again on its own once their device list is refreshed.
/// Also says whether a delivery may have queued something to send (a group body or group
/// message: a sync request or answer, a key request).
async fn deliver(
    shared: &Shared,
    deliveries: &[Delivery],
) -> Result<(Vec<Processed>, bool), Error> {
    let envelopes: Vec<(&crate::DeviceAddress, u64, &[u8])> = deliveries
        .iter()
        .map(|d| (&d.sender, d.msg_id, &d.payload[..]))
        .collect();
    let results = shared.device().receive_batch(&envelopes)?;
    let mut processed = Vec::with_capacity(results.len());
    // Users refreshed for this run: the key server is asked once per user, not per envelope.
    let mut refreshed: HashMap<&str, bool> = HashMap::new();
    let mut queued = false;
    for (delivery, result) in deliveries.iter().zip(results) {
        // Once an envelope was taken again on its own, a later one of the run may have
        // failed only for want of it (a group message after the welcome that was waiting
        // for its sender's list): take every later failure again too.
        let result = match result {
            Err(ref e) if !refreshed.is_empty() && retry_after_earlier(e) => shared
                .device()
                .receive(&delivery.sender, delivery.msg_id, &delivery.payload),
            other => other,
        };
        let result = match result {
            Err(Error::UnknownUser { .. } | Error::NotListed { .. }) => {
                let user = delivery.sender.user.as_str();
                let refresh = match refreshed.get(user) {
                    Some(true) => Ok(()),
                    Some(false) => Err(ClientError::Protocol("sender not verifiable".into())),
                    None => {
                        let result = shared.refresh_user(user).await;
                        refreshed.insert(user, result.is_ok());
                        result
                    }
                };
                match refresh {
                    Ok(()) => shared.device().receive(
                        &delivery.sender,
                        delivery.msg_id,
                        &delivery.payload,
                    ),
                    // Their account key changed: the envelope waits at the relay until the
                    // user accepts the change (Event::IdentityChanged was sent).
                    Err(ClientError::Device(Error::AccountKeyChanged { .. })) => {
                        processed.push(Processed {
                            ack: false,
                            message: false,
                        });
                        continue;
                    }
                    Err(e) => {
                        shared
                            .emit(Event::Dropped {
                                from: delivery.sender.to_string(),
                                reason: format!("could not verify the sender: {e}"),
                            })
                            .await;
                        processed.push(Processed {
                            ack: true,
                            message: false,
                        });
                        continue;
                    }
                }
            }
            other => other,
        };
        queued |= matches!(&result, Ok(Some(Received::Group(_))))
            || matches!(&result, Ok(Some(Received::Message(m))) if m.conversation.group().is_some());
        processed.push(report(shared, delivery, result).await?);
    }
    Ok((processed, queued))
}

/// Whether an envelope's failure may have come from an earlier envelope of its run not being
/// in yet (anything but a store failure, a duplicate, or a failure to learn its sender).
fn retry_after_earlier(e: &Error) -> bool {
    !matches!(
        e,
        Error::Store(_)
            | Error::Duplicate
            | Error::UnknownUser { .. }
            | Error::NotListed { .. }
            | Error::AccountKeyChanged { .. }
    )
}

/// Tells the app what one delivery was.
async fn report(
    shared: &Shared,
    delivery: &Delivery,
    result: Result<Option<Received>, Error>,
) -> Result<Processed, Error> {
    let acked = |message| Processed { ack: true, message };
    match result {
        Ok(None) => Ok(acked(false)),
        Ok(Some(Received::Message(message))) => {
            shared.emit(Event::Message(message)).await;
            Ok(acked(true))
        }
        Ok(Some(Received::Receipts { updated, .. } | Received::ReadElsewhere { updated })) => {
            for message in updated {
                shared.emit(Event::StatusChanged(message)).await;
            }
            Ok(acked(false))
        }
        Ok(Some(Received::Typing { from, started })) => {
            shared
                .emit(Event::Typing {
                    user: from.user.to_string(),
                    started,
                })
                .await;
            Ok(acked(false))
        }
        Ok(Some(Received::Group(crate::GroupReceived::Changed(info)))) => {
            shared.emit(Event::GroupChanged(info)).await;
            Ok(acked(false))
        }
        Ok(Some(Received::Group(crate::GroupReceived::AskedForSenderKey { from }))) => {
            let reason = "a group message under a sender key we do not hold; asked the sender";
            shared
                .emit(Event::Dropped {
                    from,
                    reason: reason.into(),
                })
                .await;
            Ok(acked(false))
        }
        Ok(Some(_)) | Err(Error::Duplicate) => Ok(acked(false)),
        Err(Error::AccountKeyChanged { user }) => {
            shared.emit(Event::IdentityChanged { user }).await;
            Ok(Processed {
                ack: false,
                message: false,
            })
        }
        Err(e @ Error::Store(_)) => Err(e),
        Err(e) => {
            shared
                .emit(Event::Dropped {
                    from: delivery.sender.to_string(),
                    reason: e.to_string(),
                })
                .await;
            Ok(acked(false))
        }
    }
}

/// A `SEND_RESULT`: entries whose every envelope is stored leave the outbox.
async fn stored(
    shared: &Shared,
    in_flight: &mut InFlight,
    statuses: &[(u64, SendStatus)],
) -> Result<(), Error> {
    let mut complete = Vec::new();
    let mut wedged: HashSet<u64> = HashSet::new();
    for (id, status) in statuses {
        let Some(&msg_id) = in_flight.envelopes.get(id) else {
            continue; // online-only, or from an earlier connection
        };
        in_flight.frames.remove(id);
        match status {
            SendStatus::Stored | SendStatus::Duplicate => {
                in_flight.envelopes.remove(id);
                let Some(left) = in_flight.remaining.get_mut(&msg_id) else {
                    continue;
                };
                *left -= 1;
                if *left == 0 {
                    in_flight.remaining.remove(&msg_id);
                    complete.push(msg_id);
                }
            }
            _ => {
                wedged.insert(msg_id);
            }
        }
    }
    // One commit for every entry this answer completed (a backlog's answers cover many).
    let updated = shared.device().acknowledged_all(&complete)?;
    for record in updated {
        shared.emit(Event::StatusChanged(record)).await;
    }
    if !wedged.is_empty() {
        hold(in_flight, wedged, WEDGED_RETRY);
        shared
            .emit(Event::OutboxWedged {
                reason: "a recipient's mailbox at the relay is full".into(),
                retry_in: WEDGED_RETRY,
            })
            .await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_its_cap() {
        let mut backoff = Backoff { attempt: 0 };
        let first = backoff.next();
        assert!(
            first >= MIN_BACKOFF / 2 && first <= MIN_BACKOFF,
            "{first:?}"
        );
        for _ in 0..20 {
            let delay = backoff.next();
            assert!(delay <= MAX_BACKOFF);
        }
        let late = backoff.next();
        assert!(late >= MAX_BACKOFF / 2, "{late:?}");
    }

    #[test]
    fn envelope_ids_differ_per_recipient_and_are_stable() {
        let bob1 = crate::DeviceAddress::new("bob", 1).unwrap();
        let bob2 = crate::DeviceAddress::new("bob", 2).unwrap();
        assert_eq!(relay_envelope_id(7, &bob1), relay_envelope_id(7, &bob1));
        assert_ne!(relay_envelope_id(7, &bob1), relay_envelope_id(7, &bob2));
        assert_ne!(relay_envelope_id(7, &bob1), relay_envelope_id(8, &bob1));
    }
}

#[cfg(test)]
mod fan_out_tests {
    use super::*;

    fn to(user: &str) -> DeviceAddress {
        DeviceAddress::new(user, 1).unwrap()
    }

    #[test]
    fn devices_sharing_a_ciphertext_share_one_envelope() {
        let group = vec![(to("a"), vec![1]), (to("b"), vec![1]), (to("c"), vec![1])];
        assert_eq!(
            fan_out(group),
            vec![(vec![to("a"), to("b"), to("c")], vec![1])]
        );
        let pairwise = vec![(to("a"), vec![1]), (to("b"), vec![2])];
        assert_eq!(
            fan_out(pairwise),
            vec![(vec![to("a")], vec![1]), (vec![to("b")], vec![2])]
        );
        let many: Vec<_> = (0..MAX_RECIPIENTS + 1)
            .map(|i| (DeviceAddress::new(format!("u{i}"), 1).unwrap(), vec![7]))
            .collect();
        let out = fan_out(many);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0.len(), MAX_RECIPIENTS);
    }
}
