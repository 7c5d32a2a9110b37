//! The group-commit writer: one task per process owns every write transaction.
//!
//! Sessions send it [`WriteOp`]s and wait for the reply. It takes everything queued (up to
//! [`MAX_GROUP_COMMIT`] envelopes), commits it in one transaction, answers every waiter, and
//! then routes the new envelopes to connected recipients. So one fsync covers many senders,
//! and an envelope is pushed to its recipient only once it is durable.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::{
    limits::MAX_GROUP_COMMIT,
    routing::Routing,
    store::{NewEnvelope, Store, StoreError, StoreLimits, WriteBatch},
    wire::{Delivery, DeviceAddress, SendStatus},
};

/// The writer failed to commit; details are in the log.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("storage unavailable")]
pub(crate) struct Unavailable;

/// One unit of work for the writer.
#[derive(Debug)]
pub(crate) enum WriteOp {
    Send {
        envs: Vec<NewEnvelope>,
        reply: oneshot::Sender<Result<Vec<SendStatus>, Unavailable>>,
    },
    Ack {
        device: DeviceAddress,
        seqs: Vec<u64>,
        reply: oneshot::Sender<Result<(), Unavailable>>,
    },
    Seen {
        device: DeviceAddress,
        at_ms: u64,
    },
    Expire {
        now_ms: u64,
    },
}

/// Handle to the writer task.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<WriteOp>,
}

impl Writer {
    pub(crate) fn spawn(store: Store, routing: Arc<Routing>, limits: StoreLimits) -> Self {
        let (tx, rx) = mpsc::channel(8192);
        tokio::spawn(run(rx, store, routing, limits));
        Self { tx }
    }

    /// Queues a send for the next group commit and returns where its outcome will arrive.
    /// Waits only while the writer's queue is full (backpressure), not for the commit, so a
    /// session can keep reading and delivering while its sends are being committed.
    pub(crate) async fn submit_send(
        &self,
        envs: Vec<NewEnvelope>,
    ) -> Result<oneshot::Receiver<Result<Vec<SendStatus>, Unavailable>>, Unavailable> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(WriteOp::Send { envs, reply })
            .await
            .map_err(|_| Unavailable)?;
        Ok(rx)
    }

    /// Queues acks for the next group commit; the receiver resolves once they are deleted.
    pub(crate) async fn submit_ack(
        &self,
        device: DeviceAddress,
        seqs: Vec<u64>,
    ) -> Result<oneshot::Receiver<Result<(), Unavailable>>, Unavailable> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(WriteOp::Ack {
                device,
                seqs,
                reply,
            })
            .await
            .map_err(|_| Unavailable)?;
        Ok(rx)
    }

    pub(crate) async fn seen(&self, device: DeviceAddress, at_ms: u64) {
        let _ = self.tx.send(WriteOp::Seen { device, at_ms }).await;
    }

    pub(crate) async fn expire(&self, now_ms: u64) {
        let _ = self.tx.send(WriteOp::Expire { now_ms }).await;
    }
}

fn weight(op: &WriteOp) -> usize {
    match op {
        WriteOp::Send { envs, .. } => envs.len(),
        WriteOp::Ack { seqs, .. } => seqs.len(),
        WriteOp::Seen { .. } | WriteOp::Expire { .. } => 1,
    }
}

async fn run(
    mut rx: mpsc::Receiver<WriteOp>,
    store: Store,
    routing: Arc<Routing>,
    limits: StoreLimits,
) {
    let mut ops = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut total = weight(&first);
        ops.push(first);
        while total < MAX_GROUP_COMMIT {
            match rx.try_recv() {
                Ok(op) => {
                    total += weight(&op);
                    ops.push(op);
                }
                Err(_) => break,
            }
        }
        let mut batch = WriteBatch::default();
        let mut send_replies = Vec::new();
        let mut ack_replies = Vec::new();
        let mut expire_at = None;
        for op in ops.drain(..) {
            match op {
                WriteOp::Send { envs, reply } => {
                    batch.sends.push(envs);
                    send_replies.push(reply);
                }
                WriteOp::Ack {
                    device,
                    seqs,
                    reply,
                } => {
                    batch.acks.push((device, seqs));
                    ack_replies.push(reply);
                }
                WriteOp::Seen { device, at_ms } => batch.seen.push((device, at_ms)),
                WriteOp::Expire { now_ms } => expire_at = Some(now_ms),
            }
        }
        let batch = Arc::new(batch);
        match store.commit(&batch, limits).await {
            Ok(results) => {
                for r in ack_replies {
                    let _ = r.send(Ok(()));
                }
                let mut deliveries = Vec::new();
                for ((envs, committed), reply) in batch.sends.iter().zip(results).zip(send_replies)
                {
                    let statuses = committed.iter().map(|c| c.status).collect();
                    let _ = reply.send(Ok(statuses));
                    for (e, c) in envs.iter().zip(committed) {
                        for (to, seq) in c.stored {
                            deliveries.push((
                                to,
                                Delivery {
                                    seq,
                                    flags: e.flags,
                                    server_ts_ms: e.now_ms,
                                    sender: e.sender.clone(),
                                    msg_id: e.msg_id,
                                    payload: e.payload.clone(),
                                },
                            ));
                        }
                    }
                }
                if !deliveries.is_empty() {
                    routing.route(deliveries).await;
                }
            }
            Err(e) => {
                log_store_error(&e);
                for r in ack_replies {
                    let _ = r.send(Err(Unavailable));
                }
                for r in send_replies {
                    let _ = r.send(Err(Unavailable));
                }
            }
        }
        if let Some(now_ms) = expire_at {
            match store.expire(now_ms).await {
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(expired = n, "expired envelopes removed");
                    }
                }
                Err(e) => log_store_error(&e),
            }
        }
    }
}

fn log_store_error(e: &StoreError) {
    tracing::error!(error = %e, "group commit failed");
}
