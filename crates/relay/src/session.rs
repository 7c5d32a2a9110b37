//! One device's WebSocket session, written over any `Sink`/`Stream` of WebSocket messages so
//! it can be driven by channels in tests as well as by a real socket.
//!
//! ```text
//! connect ─► register (kicks an older connection of the device)
//!        ─► deliver the mailbox in seq order, at most MAX_INFLIGHT unacked at a time
//!        ─► QUEUE_DRAINED
//!        ─► live: envelopes pushed by the writer after their commit; SEND / ACK / PRESENCE
//! ```
//!
//! Live envelopes that arrive while the backlog is still being sent are held back and sent
//! after it, so the device sees its mailbox in order before anything newer. When the device
//! stops acking (window full) or its live queue overflowed, the session stops pushing and
//! later rereads its mailbox; nothing is lost, memory stays bounded.

use std::{
    collections::{HashSet, VecDeque},
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use axum::extract::ws::{CloseFrame, Message};
use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};

use crate::{
    clock::now_ms,
    hub::Kick,
    limits::{LIVE_QUEUE_LEN, MAILBOX_PAGE, MAX_INFLIGHT, WRITE_TIMEOUT_SECS},
    pipeline::{Completed, PendingWrites},
    relay::Relay,
    store::NewEnvelope,
    wire::{
        ClientFrame, Codec, DecodeError, Delivery, DeviceAddress, DevicePresence, ErrorCode,
        FLAG_ONLINE_ONLY, OutEnvelope, SendStatus, ServerFrame, UserId,
    },
};

/// Close code: a newer connection of the same device replaced this one.
pub const CLOSE_REPLACED: u16 = 4001;
/// Close code: the client broke the wire protocol (after an `ERROR` frame saying how).
pub const CLOSE_PROTOCOL: u16 = 4002;
/// Close code: the relay's storage failed while delivering; reconnect later.
pub const CLOSE_UNAVAILABLE: u16 = 4003;
/// Close code: the connection ticket expired; reconnect with a fresh one from the key server.
pub const CLOSE_TICKET_EXPIRED: u16 = 4004;
/// Close code: the device was removed from its account (the key server told the relay).
pub const CLOSE_REVOKED: u16 = 4005;
/// Close code (RFC 6455): a WebSocket message over [`crate::limits::MAX_FRAME_LEN`].
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code: the relay is shutting down.
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// Why a session ended (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The client closed or the socket dropped.
    ClientGone,
    /// A newer connection of the device took over.
    Replaced,
    /// The client broke the protocol.
    ProtocolError,
    /// Storage failed.
    Unavailable,
    /// A write to the client timed out or failed.
    WriteFailed,
    /// The connection ticket expired.
    TicketExpired,
    /// The device was removed from its account.
    Revoked,
    /// The client sent a WebSocket message over the size limit.
    TooBig,
}

/// Whether a read error is the WebSocket layer refusing an oversized message.
fn is_too_big(e: &(dyn std::error::Error + 'static)) -> bool {
    use tungstenite::Error as WsError;
    let mut cause = Some(e);
    while let Some(c) = cause {
        if matches!(c.downcast_ref::<WsError>(), Some(WsError::Capacity(_))) {
            return true;
        }
        cause = c.source();
    }
    false
}

/// When a ticket valid until `expires_at_secs` (unix seconds) runs out, as a timer deadline.
fn ticket_deadline(expires_at_secs: u64) -> tokio::time::Instant {
    // Capped so that absurd expiry times cannot overflow the clock arithmetic.
    const FAR: Duration = Duration::from_secs(365 * 24 * 60 * 60);
    let left = Duration::from_millis(
        expires_at_secs
            .saturating_mul(1000)
            .saturating_sub(now_ms()),
    );
    tokio::time::Instant::now() + left.min(FAR)
}

struct Session<'a, S> {
    relay: &'a Relay,
    device: &'a DeviceAddress,
    sink: S,
    /// Delivered and not yet acked.
    inflight: HashSet<u64>,
    /// `Some(cursor)` while (re)reading the mailbox.
    scan: Option<u64>,
    /// The first drain after connecting is still going on.
    first_drain: bool,
    drained: u32,
    /// Live envelopes held back during the first drain.
    held: VecDeque<Delivery>,
    /// Something was not pushed live: reread the mailbox after this seq as soon as the window
    /// has room (for one delivery, not half the window, so a reader's acks reopen it at once).
    /// A delivery refused for a full window gives its own seq; a lost live one (the queue
    /// overflowed, the seq is unknown) rescans from the start, skipping what is in flight.
    rescan_after: Option<u64>,
    /// Sends and acks handed to the writer, not yet committed.
    pending: PendingWrites,
}

type Step = Result<(), SessionEnd>;

impl<S> Session<'_, S>
where
    S: Sink<Message> + Unpin,
{
    async fn write(&mut self, frame: &ServerFrame) -> Step {
        let msg = Message::Binary(frame.to_bytes().into());
        match tokio::time::timeout(Duration::from_secs(WRITE_TIMEOUT_SECS), self.sink.send(msg))
            .await
        {
            Ok(Ok(())) => Ok(()),
            _ => Err(SessionEnd::WriteFailed),
        }
    }

    async fn feed(&mut self, frame: &ServerFrame) -> Step {
        let msg = Message::Binary(frame.to_bytes().into());
        match tokio::time::timeout(Duration::from_secs(WRITE_TIMEOUT_SECS), self.sink.feed(msg))
            .await
        {
            Ok(Ok(())) => Ok(()),
            _ => Err(SessionEnd::WriteFailed),
        }
    }

    async fn flush(&mut self) -> Step {
        match tokio::time::timeout(Duration::from_secs(WRITE_TIMEOUT_SECS), self.sink.flush()).await
        {
            Ok(Ok(())) => Ok(()),
            _ => Err(SessionEnd::WriteFailed),
        }
    }

    async fn close(&mut self, code: u16, reason: &'static str) {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            self.sink.send(Message::Close(Some(frame))),
        )
        .await;
    }

    async fn error(
        &mut self,
        code: ErrorCode,
        msg_id: u64,
        retry_after_ms: u32,
        detail: &str,
    ) -> Step {
        self.write(&ServerFrame::Error {
            code,
            msg_id,
            retry_after_ms,
            detail: detail.to_owned(),
        })
        .await
    }

    /// Reads one page of the mailbox and pushes what the device has not got yet.
    async fn scan_page(&mut self, cursor: u64) -> Step {
        let room = MAILBOX_PAGE.min(MAX_INFLIGHT.saturating_sub(self.inflight.len()));
        if room == 0 {
            return Ok(());
        }
        let rows = self
            .relay
            .store
            .fetch(self.device, cursor, room, now_ms())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "mailbox read failed");
                SessionEnd::Unavailable
            })?;
        let short = rows.len() < room;
        let last = rows.last().map(|d| d.seq).unwrap_or(cursor);
        for d in rows {
            if self.inflight.insert(d.seq) {
                if self.first_drain {
                    self.drained += 1;
                }
                self.feed(&ServerFrame::Deliver(d)).await?;
            }
        }
        if short {
            self.scan = None;
            if self.first_drain {
                self.first_drain = false;
                let count = self.drained;
                self.feed(&ServerFrame::QueueDrained { count }).await?;
                while let Some(d) = self.held.pop_front() {
                    self.push_live(d).await?;
                }
            }
        } else {
            self.scan = Some(last);
        }
        self.flush().await
    }

    /// Remembers that the mailbox must be reread after `seq` (the lowest such point wins).
    fn rescan_after_seq(&mut self, seq: u64) {
        self.rescan_after = Some(self.rescan_after.map_or(seq, |after| after.min(seq)));
    }

    /// Pushes a live envelope unless it was already sent or the window is full.
    async fn push_live(&mut self, d: Delivery) -> Step {
        if d.seq == 0 {
            // Online-only: nothing to ack, nothing to remember.
            return self.feed(&ServerFrame::Deliver(d)).await;
        }
        if self.first_drain {
            if self.held.len() < LIVE_QUEUE_LEN {
                self.held.push_back(d);
            } else {
                self.rescan_after_seq(0);
            }
            return Ok(());
        }
        if self.inflight.contains(&d.seq) {
            return Ok(());
        }
        if self.inflight.len() >= MAX_INFLIGHT {
            self.rescan_after_seq(d.seq - 1);
            return Ok(());
        }
        self.inflight.insert(d.seq);
        self.feed(&ServerFrame::Deliver(d)).await
    }

    async fn on_frame(&mut self, bytes: &[u8]) -> Step {
        match ClientFrame::from_bytes(bytes) {
            Err(e) => self.on_decode_error(&e, bytes).await,
            Ok(ClientFrame::Send(envs)) => self.on_send(envs).await,
            Ok(ClientFrame::Ack(seqs)) => self.on_ack(seqs).await,
            Ok(ClientFrame::PresenceQuery(user)) => self.on_presence(user).await,
            Ok(ClientFrame::PresenceAllow(users)) => self.on_presence_allow(users).await,
        }
    }

    async fn on_decode_error(&mut self, e: &DecodeError, bytes: &[u8]) -> Step {
        tracing::debug!(device = ?self.device, error = %e, len = bytes.len(), "bad frame");
        // Sent at once, not in the place of the refused frame among the pending replies: the
        // client matches it by msg_id (docs/relay.md, "ERROR").
        self.error(
            e.code(),
            ClientFrame::first_msg_id(bytes),
            0,
            &e.to_string(),
        )
        .await?;
        if e.is_fatal() {
            self.close(CLOSE_PROTOCOL, "protocol error").await;
            return Err(SessionEnd::ProtocolError);
        }
        Ok(())
    }

    async fn on_send(&mut self, envs: Vec<OutEnvelope>) -> Step {
        let first_id = envs.first().map(|e| e.msg_id).unwrap_or(0);
        let cost: u64 = envs.iter().map(|e| e.recipients.len() as u64).sum();
        if let Err(wait) = self.relay.limiter.check(self.device, cost, Instant::now()) {
            let ms = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX).max(1);
            return self
                .error(ErrorCode::RateLimited, first_id, ms, "send rate limit")
                .await;
        }
        let now = now_ms();
        let mut statuses: Vec<(u64, SendStatus)> = Vec::with_capacity(envs.len());
        let mut durable = Vec::new();
        let mut durable_idx = Vec::new();
        for e in envs {
            let mut recipients = e.recipients;
            let mut seen = HashSet::with_capacity(recipients.len());
            recipients.retain(|a| seen.insert(a.clone()));
            let payload: Arc<[u8]> = e.payload.into();
            if e.flags & FLAG_ONLINE_ONLY != 0 {
                let items = recipients
                    .into_iter()
                    .map(|to| {
                        let d = Delivery {
                            seq: 0,
                            flags: e.flags,
                            server_ts_ms: now,
                            sender: self.device.clone(),
                            msg_id: e.msg_id,
                            payload: payload.clone(),
                        };
                        (to, d)
                    })
                    .collect();
                let n = self.relay.routing.route(items).await;
                let status = if n > 0 {
                    SendStatus::Stored
                } else {
                    SendStatus::DroppedOffline
                };
                statuses.push((e.msg_id, status));
            } else {
                durable_idx.push(statuses.len());
                statuses.push((e.msg_id, SendStatus::Stored));
                durable.push(NewEnvelope {
                    sender: self.device.clone(),
                    msg_id: e.msg_id,
                    flags: e.flags,
                    recipients,
                    payload,
                    now_ms: now,
                });
            }
        }
        let reply = if durable.is_empty() {
            None
        } else {
            match self.relay.writer.submit_send(durable).await {
                Ok(reply) => Some(reply),
                Err(_) => return self.send_failed(first_id).await,
            }
        };
        // Answered when committed, in frame order; meanwhile the session keeps going.
        self.pending.push_send(statuses, durable_idx, reply);
        Ok(())
    }

    async fn send_failed(&mut self, first_msg_id: u64) -> Step {
        self.error(
            ErrorCode::Unavailable,
            first_msg_id,
            0,
            "storage unavailable, retry",
        )
        .await
    }

    async fn on_ack(&mut self, seqs: Vec<u64>) -> Step {
        match self
            .relay
            .writer
            .submit_ack(self.device.clone(), seqs.clone())
            .await
        {
            // The deliveries stay in flight until the delete commits, so a mailbox reread
            // in between cannot send them again.
            Ok(reply) => {
                self.pending.push_ack(seqs, reply);
                Ok(())
            }
            Err(_) => self.ack_failed().await,
        }
    }

    async fn ack_failed(&mut self) -> Step {
        self.error(
            ErrorCode::Unavailable,
            0,
            0,
            "storage unavailable, ack again",
        )
        .await
    }

    /// A write handed to the writer earlier was committed (or failed): answers it and every
    /// other one already finished (one commit often answers several of a connection's
    /// frames), then flushes once.
    async fn on_completed(&mut self, done: Completed) -> Step {
        self.complete(done).await?;
        while let Some(done) = self.pending.next().now_or_never() {
            self.complete(done).await?;
        }
        self.flush().await
    }

    async fn complete(&mut self, done: Completed) -> Step {
        match done {
            Completed::Sent(statuses) => self.feed(&ServerFrame::SendResult(statuses)).await,
            Completed::SendFailed { first_msg_id } => self.send_failed(first_msg_id).await,
            Completed::Acked(seqs) => {
                for s in seqs {
                    self.inflight.remove(&s);
                }
                Ok(())
            }
            Completed::AckFailed => self.ack_failed().await,
        }
    }

    async fn on_presence_allow(&mut self, users: Vec<UserId>) -> Step {
        match self
            .relay
            .store
            .set_presence_allow(&self.device.user, &users)
            .await
        {
            Ok(()) => {
                // The decoder bounds the list far below u16::MAX.
                let count = u16::try_from(users.len()).unwrap_or(u16::MAX);
                self.write(&ServerFrame::PresenceAllowed { count }).await
            }
            Err(e) => {
                tracing::error!(error = %e, "presence allow list write failed");
                self.error(ErrorCode::Unavailable, 0, 0, "storage unavailable")
                    .await
            }
        }
    }

    async fn allowed_to_see(&self, user: &UserId) -> bool {
        if *user == self.device.user || self.relay.settings.presence_public {
            return true;
        }
        match self
            .relay
            .store
            .presence_allowed(user, &self.device.user)
            .await
        {
            Ok(allowed) => allowed,
            Err(e) => {
                tracing::error!(error = %e, "presence allow list read failed");
                false
            }
        }
    }

    async fn on_presence(&mut self, user: UserId) -> Step {
        if !self.allowed_to_see(&user).await {
            // Not allowed: answer as if the user had no devices (no existence oracle).
            return self
                .write(&ServerFrame::Presence {
                    user,
                    devices: Vec::new(),
                })
                .await;
        }
        let known = match self.relay.store.last_seen(&user).await {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "presence read failed");
                return self
                    .error(ErrorCode::Unavailable, 0, 0, "storage unavailable")
                    .await;
            }
        };
        let mut devices = Vec::with_capacity(known.len());
        for (device_id, last_seen_ms) in known {
            let device = DeviceAddress {
                user: user.clone(),
                device: device_id,
            };
            let online = self.relay.routing.is_online(&device).await;
            devices.push(DevicePresence {
                device_id,
                online,
                last_seen_ms,
            });
        }
        self.write(&ServerFrame::Presence { user, devices }).await
    }
}

/// Runs a device's session until it ends. The caller has authenticated `device` with a
/// ticket valid until `ticket_expires_at` (unix seconds); the session is closed with
/// [`CLOSE_TICKET_EXPIRED`] then, so a revoked device cannot stay connected on an old ticket.
pub async fn run_session<S, R, E>(
    relay: Arc<Relay>,
    device: DeviceAddress,
    ticket_expires_at: u64,
    sink: S,
    mut stream: R,
) -> SessionEnd
where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: std::error::Error + 'static,
{
    let expiry = tokio::time::sleep_until(ticket_deadline(ticket_expires_at));
    tokio::pin!(expiry);
    let mut reg = relay.routing.hub.register(&device);
    relay.routing.announce(&device).await;
    relay.writer.seen(device.clone(), now_ms()).await;
    let mut s = Session {
        relay: &relay,
        device: &device,
        sink,
        inflight: HashSet::new(),
        scan: Some(0),
        first_drain: true,
        drained: 0,
        held: VecDeque::new(),
        rescan_after: None,
        pending: PendingWrites::default(),
    };
    tracing::debug!(device = ?device, "connected");
    let end = loop {
        if let Some(after) = s.rescan_after
            && s.scan.is_none()
            && !s.first_drain
            && s.inflight.len() < MAX_INFLIGHT
        {
            s.rescan_after = None;
            s.scan = Some(after);
        }
        if reg.lagged.swap(false, Ordering::SeqCst) {
            s.rescan_after_seq(0);
        }
        let scanning = s.scan.is_some() && s.inflight.len() < MAX_INFLIGHT;
        // Backpressure: a client with too many writes in flight is not read until one is
        // answered.
        let reading = !s.pending.is_full();
        let committing = !s.pending.is_empty();
        let step = tokio::select! {
            biased;
            why = &mut reg.kicked => {
                if why == Ok(Kick::Revoked) {
                    s.close(CLOSE_REVOKED, "device removed from its account").await;
                    break SessionEnd::Revoked;
                }
                s.close(CLOSE_REPLACED, "replaced by a newer connection").await;
                break SessionEnd::Replaced;
            }
            _ = &mut expiry => {
                s.close(CLOSE_TICKET_EXPIRED, "ticket expired").await;
                break SessionEnd::TicketExpired;
            }
            done = s.pending.next(), if committing => Box::pin(s.on_completed(done)).await,
            msg = stream.next(), if reading => match msg {
                // Boxed: the frame handlers are the largest states of this loop, and
                // keeping them out of line keeps every idle connection's task small.
                Some(Ok(Message::Binary(b))) => Box::pin(s.on_frame(&b)).await,
                Some(Ok(Message::Text(_))) => {
                    let _ = s.error(ErrorCode::Malformed, 0, 0, "text frames are not accepted").await;
                    s.close(CLOSE_PROTOCOL, "binary frames only").await;
                    Err(SessionEnd::ProtocolError)
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
                Some(Err(e)) if is_too_big(&e) => {
                    s.close(CLOSE_TOO_BIG, "message too big").await;
                    Err(SessionEnd::TooBig)
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => Err(SessionEnd::ClientGone),
            },
            d = reg.rx.recv() => match d {
                Some(d) => {
                    let mut r = s.push_live(*d).await;
                    // Drain what else is queued, then flush once.
                    let mut n = 0;
                    while r.is_ok() && n < 64 {
                        match reg.rx.try_recv() {
                            Ok(d) => { r = s.push_live(*d).await; n += 1; }
                            Err(_) => break,
                        }
                    }
                    match r { Ok(()) => s.flush().await, e => e }
                }
                None => Err(SessionEnd::Unavailable),
            },
            _ = std::future::ready(()), if scanning => {
                let cursor = s.scan.unwrap_or(0);
                Box::pin(s.scan_page(cursor)).await
            }
        };
        if let Err(end) = step {
            if end == SessionEnd::Unavailable {
                s.close(CLOSE_UNAVAILABLE, "storage unavailable").await;
            }
            break end;
        }
    };
    if relay.routing.hub.unregister(&device, reg.id) {
        relay.routing.withdraw(&device).await;
    }
    relay.writer.seen(device.clone(), now_ms()).await;
    tracing::debug!(device = ?device, end = ?end, "disconnected");
    end
}
