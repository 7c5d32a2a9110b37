//! The mailbox rules of one group commit, without a database.
//!
//! Both back ends run the same phases (`commit.rs`) and differ only in their statements; every
//! decision is made here, so it is written and unit-tested once:
//!
//! 1. **Dedup within the batch**: the first envelope of each (sender, msg id) is claimed in
//!    the dedup table; later ones in the same batch stay `Duplicate`.
//! 2. **Dedup window**: a claimed envelope whose pair is already in the window stays
//!    `Duplicate` (the back end says which claims were new).
//! 3. **Mailbox limit**: each recipient with room takes the envelope; `Stored` when all did,
//!    `PartialMailboxFull` when some, `MailboxFull` (and its claim is released, so a retry is
//!    not a duplicate) when none.
//! 4. **Layout**: accepted rows take consecutive sequence numbers; a group envelope (more than
//!    one recipient) stores its ciphertext once, in a payload row whose id is its first
//!    row's seq and whose reference count is its number of rows; a single-recipient envelope
//!    keeps its ciphertext in its row.
//! 5. **Acks**: each deleted row makes its mailbox one smaller and releases one reference of
//!    its payload, if it had one.

use std::{
    borrow::{Borrow, Cow},
    collections::{HashMap, HashSet},
};

use super::{Committed, MailboxCounts, NewEnvelope, StoreError, StoreLimits, WriteBatch, to_db};
use crate::wire::{DeviceAddress, SendStatus};

/// Where an envelope sits in its batch: (send, envelope within the send).
type Slot = (usize, usize);

fn envelope(batch: &WriteBatch, (send, index): Slot) -> &NewEnvelope {
    &batch.sends[send][index]
}

/// Phase 1: the envelopes to claim in the dedup table.
#[derive(Debug)]
pub(crate) struct Claims<'a> {
    batch: &'a WriteBatch,
    slots: Vec<Slot>,
}

impl<'a> Claims<'a> {
    /// The first envelope of each (sender, msg id) of the batch, in batch order.
    pub(crate) fn new(batch: &'a WriteBatch) -> Self {
        let mut seen = HashSet::new();
        let mut slots = Vec::new();
        for (send, envelopes) in batch.sends.iter().enumerate() {
            for (index, e) in envelopes.iter().enumerate() {
                if seen.insert((&e.sender, e.msg_id)) {
                    slots.push((send, index));
                }
            }
        }
        Self { batch, slots }
    }

    /// The envelopes to claim, in order.
    pub(crate) fn envelopes(&self) -> Vec<&'a NewEnvelope> {
        self.slots
            .iter()
            .map(|slot| envelope(self.batch, *slot))
            .collect()
    }

    /// Phase 2: keeps the envelopes whose claim was new (`claimed[i]` for the i-th envelope).
    pub(crate) fn fresh(self, claimed: &[bool]) -> Fresh<'a> {
        let slots = self
            .slots
            .into_iter()
            .zip(claimed)
            .filter(|(_, new)| **new)
            .map(|(slot, _)| slot)
            .collect();
        Fresh {
            batch: self.batch,
            slots,
        }
    }
}

/// Envelopes claimed for the first time in their dedup window.
#[derive(Debug)]
pub(crate) struct Fresh<'a> {
    batch: &'a WriteBatch,
    slots: Vec<Slot>,
}

impl<'a> Fresh<'a> {
    /// The recipients whose mailbox size `counts` does not know (or knows too long): the back
    /// end counts these before [`Self::admit`]. Each appears once.
    pub(crate) fn uncounted(&self, counts: &MailboxCounts) -> Vec<&'a DeviceAddress> {
        let mut asked = HashSet::new();
        let mut out = Vec::new();
        for slot in &self.slots {
            for to in &envelope(self.batch, *slot).recipients {
                if counts.needs_count(to) && asked.insert(to) {
                    out.push(to);
                }
            }
        }
        out
    }

    /// Phase 3: the mailbox limit, envelope by envelope in batch order.
    pub(crate) fn admit(self, counts: &mut MailboxCounts, max_mailbox: u64) -> Admission<'a> {
        let mut outcomes = self.batch.outcomes_before_dedup();
        let mut accepted = Vec::new();
        let mut unclaim = Vec::new();
        let mut rows = 0;
        for slot in self.slots {
            let e = envelope(self.batch, slot);
            let to = counts.admit(&e.recipients, max_mailbox);
            outcomes[slot.0][slot.1].status = if to.is_empty() {
                SendStatus::MailboxFull
            } else if to.len() == e.recipients.len() {
                SendStatus::Stored
            } else {
                SendStatus::PartialMailboxFull
            };
            if to.is_empty() {
                unclaim.push(e);
            } else {
                rows += to.len();
                accepted.push((slot, to));
            }
        }
        Admission {
            batch: self.batch,
            outcomes,
            accepted,
            unclaim,
            rows,
        }
    }
}

/// Who takes which envelope, before sequence numbers are known.
#[derive(Debug)]
pub(crate) struct Admission<'a> {
    batch: &'a WriteBatch,
    outcomes: Vec<Vec<Committed>>,
    accepted: Vec<(Slot, Vec<&'a DeviceAddress>)>,
    unclaim: Vec<&'a NewEnvelope>,
    rows: usize,
}

impl<'a> Admission<'a> {
    /// How many mailbox rows (and so sequence numbers) the batch needs.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Phase 4: the rows to write, given [`Self::rows`] ascending sequence numbers.
    pub(crate) fn lay_out(
        self,
        seqs: &[u64],
        limits: StoreLimits,
    ) -> Result<CommitPlan<'a>, StoreError> {
        if seqs.len() != self.rows {
            return Err(StoreError::SequenceAllocation {
                wanted: self.rows,
                got: seqs.len(),
            });
        }
        let mut outcomes = self.outcomes;
        let mut payloads = Vec::new();
        let mut rows = Vec::with_capacity(self.rows);
        let mut seqs = seqs.iter().copied();
        for (slot, recipients) in self.accepted {
            let e = envelope(self.batch, slot);
            let expires_at = e.now_ms.saturating_add(limits.ttl_ms);
            let mut payload_id = None;
            for to in recipients {
                // Exactly `self.rows` numbers for exactly `self.rows` recipients (checked above).
                let Some(seq) = seqs.next() else { break };
                if e.recipients.len() > 1 && payload_id.is_none() {
                    payload_id = Some(to_db(seq));
                    payloads.push(PayloadRow {
                        id: to_db(seq),
                        refs: 0,
                        expires_at,
                        body: &e.payload,
                    });
                }
                if let (Some(_), Some(payload)) = (payload_id, payloads.last_mut()) {
                    payload.refs += 1;
                }
                outcomes[slot.0][slot.1].stored.push((to.clone(), seq));
                rows.push(MailboxRow {
                    seq,
                    to,
                    envelope: e,
                    expires_at,
                    payload_id,
                });
            }
        }
        Ok(CommitPlan {
            outcomes,
            payloads,
            rows,
            unclaim: self.unclaim,
        })
    }
}

/// Everything one commit writes for its sends, and what it reports.
#[derive(Debug)]
pub(crate) struct CommitPlan<'a> {
    /// One outcome per envelope per send, as reported to the senders.
    pub(crate) outcomes: Vec<Vec<Committed>>,
    /// Group ciphertexts, each stored once.
    pub(crate) payloads: Vec<PayloadRow<'a>>,
    /// Mailbox rows, in sequence order.
    pub(crate) rows: Vec<MailboxRow<'a>>,
    /// Claims to release: envelopes refused by every mailbox.
    pub(crate) unclaim: Vec<&'a NewEnvelope>,
}

/// A group ciphertext stored once for all its rows.
#[derive(Debug)]
pub(crate) struct PayloadRow<'a> {
    /// The seq of its first mailbox row.
    pub(crate) id: i64,
    /// Rows referencing it.
    pub(crate) refs: i64,
    /// Unix ms.
    pub(crate) expires_at: u64,
    /// The ciphertext.
    pub(crate) body: &'a [u8],
}

/// One envelope in one mailbox.
#[derive(Debug)]
pub(crate) struct MailboxRow<'a> {
    /// Its sequence number.
    pub(crate) seq: u64,
    /// The mailbox.
    pub(crate) to: &'a DeviceAddress,
    /// The envelope.
    pub(crate) envelope: &'a NewEnvelope,
    /// Unix ms.
    pub(crate) expires_at: u64,
    /// Its group payload, if the ciphertext is stored there.
    pub(crate) payload_id: Option<i64>,
}

impl MailboxRow<'_> {
    /// The ciphertext stored in the row itself: only when it has no group payload.
    pub(crate) fn body(&self) -> Option<&[u8]> {
        self.payload_id
            .is_none()
            .then_some(&self.envelope.payload[..])
    }
}

/// Phase 5: each deleted row makes its mailbox one smaller and releases one reference of
/// its payload. Returns (payload id, references released), each payload once.
pub(crate) fn release_acked<D: Borrow<DeviceAddress>>(
    deleted: impl IntoIterator<Item = (D, Option<i64>)>,
    counts: &mut MailboxCounts,
) -> Vec<(i64, i64)> {
    let mut released: HashMap<i64, i64> = HashMap::new();
    for (device, payload) in deleted {
        counts.add(device.borrow(), -1);
        if let Some(id) = payload {
            *released.entry(id).or_default() += 1;
        }
    }
    let mut released: Vec<_> = released.into_iter().collect();
    released.sort_unstable();
    released
}

/// A deleted mailbox row as a back end reports it: its mailbox and its payload, if any.
pub(crate) type DeletedRow<'a> = (Cow<'a, DeviceAddress>, Option<i64>);

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;

    const LIMITS: StoreLimits = StoreLimits {
        max_mailbox: 2,
        ttl_ms: 1_000,
        dedup_ms: 500,
    };

    fn addr(user: &str) -> DeviceAddress {
        DeviceAddress::new(user, 1).unwrap()
    }

    fn envelope(sender: &str, msg_id: u64, to: &[&str]) -> NewEnvelope {
        NewEnvelope {
            sender: addr(sender),
            msg_id,
            flags: 0,
            recipients: to.iter().map(|u| addr(u)).collect(),
            payload: Arc::from(&b"ciphertext"[..]),
            now_ms: 10,
        }
    }

    /// Counts every mailbox at `sizes` (default 0), as a back end would.
    fn counted(fresh: &Fresh<'_>, sizes: &[(&str, u64)]) -> MailboxCounts {
        let mut counts = MailboxCounts::new(Duration::from_secs(60));
        for to in fresh.uncounted(&counts) {
            let n = sizes
                .iter()
                .find(|(u, _)| *u == to.user_id())
                .map_or(0, |(_, n)| *n);
            counts.set(to, n);
        }
        counts
    }

    fn plan<'a>(
        batch: &'a WriteBatch,
        claimed: Option<&[bool]>,
        sizes: &[(&str, u64)],
    ) -> CommitPlan<'a> {
        let claims = Claims::new(batch);
        let all_new = vec![true; claims.envelopes().len()];
        let fresh = claims.fresh(claimed.unwrap_or(&all_new));
        let mut counts = counted(&fresh, sizes);
        let admission = fresh.admit(&mut counts, LIMITS.max_mailbox);
        let seqs: Vec<u64> = (100..100 + admission.rows() as u64).collect();
        admission.lay_out(&seqs, LIMITS).unwrap()
    }

    fn statuses(plan: &CommitPlan<'_>) -> Vec<Vec<SendStatus>> {
        plan.outcomes
            .iter()
            .map(|send| send.iter().map(|c| c.status).collect())
            .collect()
    }

    #[test]
    fn a_retry_within_the_batch_and_one_within_the_window_are_duplicates() {
        let batch = WriteBatch {
            sends: vec![
                vec![
                    envelope("alice", 1, &["bob"]),
                    envelope("alice", 1, &["bob"]),
                ],
                vec![
                    envelope("alice", 1, &["bob"]),
                    envelope("carol", 1, &["bob"]),
                ],
                vec![envelope("dave", 7, &["bob"])],
            ],
            ..WriteBatch::default()
        };
        let claims = Claims::new(&batch);
        let claimed: Vec<_> = claims
            .envelopes()
            .iter()
            .map(|e| (e.sender.user_id(), e.msg_id))
            .collect();
        assert_eq!(claimed, [("alice", 1), ("carol", 1), ("dave", 7)]);
        // Dave's pair is already in the dedup window.
        let plan = plan(&batch, Some(&[true, true, false]), &[]);
        assert_eq!(
            statuses(&plan),
            [
                vec![SendStatus::Stored, SendStatus::Duplicate],
                vec![SendStatus::Duplicate, SendStatus::Stored],
                vec![SendStatus::Duplicate],
            ]
        );
        assert_eq!(plan.rows.len(), 2);
        assert!(plan.unclaim.is_empty());
    }

    #[test]
    fn the_mailbox_limit_decides_stored_partial_and_full() {
        let batch = WriteBatch {
            sends: vec![vec![
                envelope("alice", 1, &["bob"]),
                envelope("alice", 2, &["bob", "carol"]),
                envelope("alice", 3, &["bob", "carol"]),
                envelope("alice", 4, &["bob"]),
            ]],
            ..WriteBatch::default()
        };
        // Bob's mailbox has room for one more, Carol's for two.
        let plan = plan(&batch, None, &[("bob", 1)]);
        assert_eq!(
            statuses(&plan),
            [vec![
                SendStatus::Stored,
                SendStatus::PartialMailboxFull,
                SendStatus::PartialMailboxFull,
                SendStatus::MailboxFull,
            ]]
        );
        // The refused envelope's claim is released so its retry is not a duplicate.
        assert_eq!(plan.unclaim.len(), 1);
        assert_eq!(plan.unclaim[0].msg_id, 4);
        let stored: Vec<_> = plan.outcomes[0]
            .iter()
            .map(|c| {
                c.stored
                    .iter()
                    .map(|(to, seq)| (to.user_id().to_owned(), *seq))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(
            stored,
            [
                vec![("bob".to_owned(), 100)],
                vec![("carol".to_owned(), 101)],
                vec![("carol".to_owned(), 102)],
                vec![],
            ]
        );
    }

    #[test]
    fn a_group_ciphertext_is_stored_once_and_a_single_one_inline() {
        let batch = WriteBatch {
            sends: vec![vec![
                envelope("alice", 1, &["bob", "carol", "dave"]),
                envelope("alice", 2, &["bob"]),
                // A group envelope only one mailbox took still uses a payload row.
                envelope("alice", 3, &["erin", "frank"]),
            ]],
            ..WriteBatch::default()
        };
        let plan = plan(&batch, None, &[("frank", 2)]);
        let seqs: Vec<_> = plan.rows.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [100, 101, 102, 103, 104]);
        assert_eq!(plan.payloads.len(), 2);
        assert_eq!((plan.payloads[0].id, plan.payloads[0].refs), (100, 3));
        assert_eq!((plan.payloads[1].id, plan.payloads[1].refs), (104, 1));
        assert_eq!(plan.payloads[0].body, b"ciphertext");
        assert_eq!(plan.payloads[0].expires_at, 10 + LIMITS.ttl_ms);
        let payload_ids: Vec<_> = plan.rows.iter().map(|r| r.payload_id).collect();
        assert_eq!(
            payload_ids,
            [Some(100), Some(100), Some(100), None, Some(104)]
        );
        assert!(plan.rows[..3].iter().all(|r| r.body().is_none()));
        assert_eq!(plan.rows[3].body(), Some(&b"ciphertext"[..]));
    }

    #[test]
    fn too_few_sequence_numbers_fail_the_commit() {
        let batch = WriteBatch {
            sends: vec![vec![envelope("alice", 1, &["bob", "carol"])]],
            ..WriteBatch::default()
        };
        let fresh = Claims::new(&batch).fresh(&[true]);
        let mut counts = counted(&fresh, &[]);
        let admission = fresh.admit(&mut counts, LIMITS.max_mailbox);
        assert!(matches!(
            admission.lay_out(&[1], LIMITS),
            Err(StoreError::SequenceAllocation { wanted: 2, got: 1 })
        ));
    }

    #[test]
    fn uncounted_mailboxes_are_asked_once_and_known_ones_not_at_all() {
        let batch = WriteBatch {
            sends: vec![vec![
                envelope("alice", 1, &["bob", "carol"]),
                envelope("alice", 2, &["carol", "dave"]),
            ]],
            ..WriteBatch::default()
        };
        let fresh = Claims::new(&batch).fresh(&[true, true]);
        let mut counts = MailboxCounts::new(Duration::from_secs(60));
        counts.set(&addr("dave"), 0);
        let asked: Vec<_> = fresh
            .uncounted(&counts)
            .iter()
            .map(|a| a.user_id())
            .collect();
        assert_eq!(asked, ["bob", "carol"]);
    }

    #[test]
    fn acks_shrink_mailboxes_and_release_each_payload_once() {
        let mut counts = MailboxCounts::new(Duration::from_secs(60));
        let (bob, carol) = (addr("bob"), addr("carol"));
        counts.set(&bob, 3);
        counts.set(&carol, 1);
        let deleted = vec![
            (Cow::Borrowed(&bob), Some(7)),
            (Cow::Borrowed(&bob), None),
            (Cow::Owned(carol.clone()), Some(7)),
            (Cow::Borrowed(&bob), Some(9)),
        ];
        assert_eq!(release_acked(deleted, &mut counts), [(7, 2), (9, 1)]);
        assert_eq!(counts.get(&bob), Some(0));
        assert_eq!(counts.get(&carol), Some(0));
    }
}
