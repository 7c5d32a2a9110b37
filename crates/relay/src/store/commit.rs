//! The group commit, written once: the phases every back end runs, in order, around the
//! rules of [`super::plan`]. A back end only says how each phase talks to its database
//! ([`CommitPhases`]): SQLite with cached single-row statements on a blocking thread,
//! PostgreSQL with multi-row statements (each one a network round trip).

use std::{
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
};

use super::{
    Committed, MailboxCounts, NewEnvelope, StoreError, StoreLimits, WriteBatch,
    plan::{self, Claims, CommitPlan, DeletedRow},
};
use crate::wire::DeviceAddress;

/// How one back end performs each phase of a commit, inside its open transaction.
pub(super) trait CommitPhases {
    /// Deletes the acked rows, each only from the acking device's own mailbox, and returns
    /// what was deleted.
    async fn delete_acked<'b>(
        &mut self,
        acks: &'b [(DeviceAddress, Vec<u64>)],
    ) -> Result<Vec<DeletedRow<'b>>, StoreError>;

    /// Lowers each payload's reference count and deletes payloads nobody references.
    async fn release_payloads(&mut self, released: &[(i64, i64)]) -> Result<(), StoreError>;

    /// Records when devices were last seen.
    async fn upsert_seen(&mut self, seen: &[(DeviceAddress, u64)]) -> Result<(), StoreError>;

    /// Claims each envelope's (sender, msg id) in the dedup table for `dedup_ms`; a claim
    /// whose window has passed counts as new. Returns, per envelope, whether it was new.
    async fn claim_dedup(
        &mut self,
        envelopes: &[&NewEnvelope],
        dedup_ms: u64,
    ) -> Result<Vec<bool>, StoreError>;

    /// The number of rows in each mailbox.
    async fn count_mailboxes(
        &mut self,
        mailboxes: &[&DeviceAddress],
    ) -> Result<Vec<u64>, StoreError>;

    /// `n` unused sequence numbers, ascending.
    async fn allocate_seqs(&mut self, n: usize) -> Result<Vec<u64>, StoreError>;

    /// Writes the plan: payloads, mailbox rows, and the released claims.
    async fn write_plan(&mut self, plan: &CommitPlan<'_>) -> Result<(), StoreError>;
}

/// Runs every phase of one commit; the caller commits the transaction if this succeeds.
/// Returns one outcome per envelope per send.
pub(super) async fn run(
    phases: &mut impl CommitPhases,
    batch: &WriteBatch,
    counts: &mut MailboxCounts,
    limits: StoreLimits,
) -> Result<Vec<Vec<Committed>>, StoreError> {
    let deleted = phases.delete_acked(&batch.acks).await?;
    let released = plan::release_acked(deleted, counts);
    phases.release_payloads(&released).await?;
    phases.upsert_seen(&batch.seen).await?;

    let claims = Claims::new(batch);
    let claimed = phases
        .claim_dedup(&claims.envelopes(), limits.dedup_ms)
        .await?;
    let fresh = claims.fresh(&claimed);
    let uncounted = fresh.uncounted(counts);
    let sizes = phases.count_mailboxes(&uncounted).await?;
    for (mailbox, size) in uncounted.into_iter().zip(sizes) {
        counts.set(mailbox, size);
    }
    let admission = fresh.admit(counts, limits.max_mailbox);
    let seqs = phases.allocate_seqs(admission.rows()).await?;
    let plan = admission.lay_out(&seqs, limits)?;
    phases.write_plan(&plan).await?;
    Ok(plan.outcomes)
}

/// Runs a future that never waits to completion on this thread. The SQLite phases are plain
/// blocking calls behind `async fn`s, so [`run`] over them is ready on its first poll; a
/// future that is not is refused rather than blocked on.
pub(super) fn run_ready<T>(
    future: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        Poll::Pending => Err(StoreError::Internal("a SQLite commit phase waited")),
    }
}
