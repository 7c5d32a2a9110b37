//! A session's writes that are waiting for their group commit, answered in the order the
//! client sent them.
//!
//! A session hands `SEND` and `ACK` frames to the writer and goes on reading frames and pushing
//! deliveries instead of waiting for each commit; this queue holds the pending replies. The
//! writer answers in the order it was given work, so waiting on the oldest entry is enough.

use std::collections::VecDeque;

use tokio::sync::oneshot;

use crate::{limits::MAX_PIPELINED_WRITES, wire::SendStatus, writer::Unavailable};

type SendReply = oneshot::Receiver<Result<Vec<SendStatus>, Unavailable>>;
type AckReply = oneshot::Receiver<Result<(), Unavailable>>;

enum Pending {
    Send {
        /// Outcome per envelope, in frame order; the durable ones are filled in on commit.
        statuses: Vec<(u64, SendStatus)>,
        /// Positions in `statuses` of the envelopes the writer stores, in its order.
        durable_idx: Vec<usize>,
        /// `None` when nothing in the frame needed storing (online-only envelopes).
        reply: Option<SendReply>,
    },
    Ack {
        seqs: Vec<u64>,
        reply: AckReply,
    },
}

/// What a finished write means for the session.
#[derive(Debug)]
pub(crate) enum Completed {
    /// A `SEND` is answered: send the client this result.
    Sent(Vec<(u64, SendStatus)>),
    /// A `SEND` could not be stored; the client must retry (its first message id).
    SendFailed { first_msg_id: u64 },
    /// These deliveries are acknowledged and deleted.
    Acked(Vec<u64>),
    /// Acks could not be committed; the deliveries stay in the mailbox.
    AckFailed,
}

/// The queue of one session's writes in flight.
#[derive(Default)]
pub(crate) struct PendingWrites {
    queue: VecDeque<Pending>,
}

impl PendingWrites {
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether the session must stop reading frames until a write is answered.
    pub(crate) fn is_full(&self) -> bool {
        self.queue.len() >= MAX_PIPELINED_WRITES
    }

    pub(crate) fn push_send(
        &mut self,
        statuses: Vec<(u64, SendStatus)>,
        durable_idx: Vec<usize>,
        reply: Option<SendReply>,
    ) {
        self.queue.push_back(Pending::Send {
            statuses,
            durable_idx,
            reply,
        });
    }

    pub(crate) fn push_ack(&mut self, seqs: Vec<u64>, reply: AckReply) {
        self.queue.push_back(Pending::Ack { seqs, reply });
    }

    /// Waits for the oldest write to be answered (forever when there is none). Cancel-safe:
    /// an entry leaves the queue only in the poll that returns its outcome.
    pub(crate) async fn next(&mut self) -> Completed {
        let Some(front) = self.queue.front_mut() else {
            return std::future::pending().await;
        };
        let completed = front.settle().await;
        self.queue.pop_front();
        completed
    }
}

impl Pending {
    /// Waits for the writer's answer, then moves the entry's data into the outcome (after
    /// the last await, so a cancelled wait leaves the entry intact).
    async fn settle(&mut self) -> Completed {
        match self {
            Pending::Send {
                statuses,
                durable_idx,
                reply,
            } => {
                let stored = match reply {
                    Some(reply) => match reply.await {
                        Ok(Ok(stored)) => stored,
                        _ => {
                            let first_msg_id = statuses.first().map(|(id, _)| *id).unwrap_or(0);
                            return Completed::SendFailed { first_msg_id };
                        }
                    },
                    None => Vec::new(),
                };
                let mut statuses = std::mem::take(statuses);
                for (&i, s) in durable_idx.iter().zip(stored) {
                    if let Some(slot) = statuses.get_mut(i) {
                        slot.1 = s;
                    }
                }
                Completed::Sent(statuses)
            }
            Pending::Ack { seqs, reply } => match reply.await {
                Ok(Ok(())) => Completed::Acked(std::mem::take(seqs)),
                _ => Completed::AckFailed,
            },
        }
    }
}
