//! What the sync engine persists, where exactly once is decided: the id map (with pending creates
//! and the last push of each record), run leases, runs and their items, the retry queue and the
//! pull cursors.
//!
//! Guarantees, per method (a second backend must give the same):
//! - every write is one transaction taking the write lock before it reads (SQLite: `BEGIN
//!   IMMEDIATE`, busy timeout shorter than the lease TTL; a server database: the rows it changes
//!   locked `FOR UPDATE`), so concurrent processes serialise per instance and entity;
//! - `acquire_lease` is a compare-and-set: at most one live owner per (instance, scope); a lapsed
//!   lease is taken over and its holder's running run marked `interrupted` in the same transaction;
//! - `mark_pending` and `commit_pull` are fenced: they fail unless the run's owner still holds a
//!   live lease, so a run that lost its lease sends no new create and moves no cursor another run
//!   owns. `record_outcomes` is not: what a send did has happened whoever holds the lease now, and
//!   dropping it would lose the remote id of a record that exists (the next run would create it
//!   again);
//! - `record_outcomes` writes a batch's run items, id map rows, queue rows and counters together;
//!   `commit_pull` writes the cursor and the run's end together;
//! - `claim_queue` and `claim_settled` hand an item to one claimer only (a server database would
//!   use `FOR UPDATE SKIP LOCKED`); a claim older than ten minutes is stale and may be taken over.
//!
//! Reads (`id_map`, `bss_ids`, `stored_copies`, `queue`, `runs`, `cursor`) see committed data only.

use std::collections::BTreeMap;

use super::{
    Cursor, IdMapEntry, LeaseHolder, LinkOutcome, Outcome, QueueItem, RunItem, RunKind, RunRow,
    RunStatus, RunTrigger, StoreResult,
};
use crate::contract::manifest::Entity;

/// The claimer of queue items that wait for an operator's `link`: never stale, never retried.
pub const NEEDS_LINK: &str = "needs-link";

/// A queue claim older than this (seconds) belongs to a process that died: it may be taken over.
pub const STALE_CLAIM_SECS: i64 = 600;

/// The id map, leases, runs, the retry queue and cursors.
pub trait SyncStore: Send + Sync {
    /// What the id map holds for these BSS ids (absent ids are unknown).
    fn id_map(
        &self,
        instance: &str,
        entity: Entity,
        bss_ids: &[String],
    ) -> StoreResult<BTreeMap<String, IdMapEntry>>;
    /// The BSS ids of these remote ids (absent when unknown).
    fn bss_ids(
        &self,
        instance: &str,
        entity: Entity,
        remote_ids: &[String],
    ) -> StoreResult<BTreeMap<String, String>>;
    /// Every BSS id of the entity linked to a remote id, by remote id.
    fn linked(&self, instance: &str, entity: Entity) -> StoreResult<BTreeMap<String, String>>;
    /// Records what a removal did, in one transaction: the BSS id leaves the retry queue (it
    /// must not be sent again); with `remote` (its remote id, and whether the remote deleted it
    /// rather than keeping it deactivated) the deletion is known, so the remote's word of it
    /// later is not reported back, and a deleted record is unlinked. True when it was queued.
    fn record_removal(
        &self,
        instance: &str,
        entity: Entity,
        bss_id: &str,
        remote: Option<(&str, bool)>,
    ) -> StoreResult<bool>;
    /// Which of these remote ids are known deleted (reported once, or removed by this instance).
    fn known_deletions(
        &self,
        instance: &str,
        entity: Entity,
        remote_ids: &[String],
    ) -> StoreResult<std::collections::BTreeSet<String>>;
    /// Marks remote records as deleted and reported; the ones already known are left as they
    /// are.
    fn note_deletions(
        &self,
        instance: &str,
        entity: Entity,
        deleted: &[(String, Option<String>)],
    ) -> StoreResult<()>;
    /// Forgets that a remote record was deleted (it was fetched again).
    fn forget_deletion(&self, instance: &str, entity: Entity, remote_id: &str) -> StoreResult<()>;
    /// How the remote stored what this instance last pushed, per remote id (a `pulled-record` as
    /// JSON; absent when unknown): a pulled record equal to it is an echo of that push.
    fn stored_copies(
        &self,
        instance: &str,
        entity: Entity,
        remote_ids: &[String],
    ) -> StoreResult<BTreeMap<String, String>>;
    /// Marks creates as sent-but-unconfirmed, before they are sent. A mark already there keeps
    /// the run that set it (only that run may clear it without a remote id).
    fn mark_pending(
        &self,
        run: i64,
        instance: &str,
        entity: Entity,
        bss_ids: &[String],
    ) -> StoreResult<()>;
    /// For each of `bss_ids`, another BSS id of the entity already in the id map or the retry
    /// queue that differs from it only in ASCII case.
    fn case_collisions(
        &self,
        instance: &str,
        entity: Entity,
        bss_ids: &[String],
    ) -> StoreResult<BTreeMap<String, String>>;
    /// Links a BSS id to a remote id by hand; refuses when either side is linked to another.
    fn link(
        &self,
        instance: &str,
        entity: Entity,
        bss_id: &str,
        remote_id: &str,
    ) -> StoreResult<LinkOutcome>;
    /// Takes the lease on (instance, scope) for `owner`, or says who holds it. A lapsed lease is
    /// taken over, and its holder's running run becomes `interrupted`.
    fn acquire_lease(
        &self,
        instance: &str,
        scope: &str,
        owner: &str,
        purpose: &str,
        ttl_ms: i64,
    ) -> StoreResult<Option<LeaseHolder>>;
    /// Extends the lease; false when `owner` no longer holds it.
    fn renew_lease(
        &self,
        instance: &str,
        scope: &str,
        owner: &str,
        ttl_ms: i64,
    ) -> StoreResult<bool>;
    fn release_lease(&self, instance: &str, scope: &str, owner: &str) -> StoreResult<()>;
    /// Writes the outcomes of one batch — run items, id map, retry queue, run counters — at once.
    fn record_outcomes(
        &self,
        run: i64,
        instance: &str,
        entity: Entity,
        outcomes: &[(String, Outcome)],
    ) -> StoreResult<()>;
    /// Starts a run; `owner` is the lease holder running it (its run becomes `interrupted` when
    /// the lease lapses).
    fn start_run(
        &self,
        instance: &str,
        kind: RunKind,
        trigger: RunTrigger,
        entity: Option<Entity>,
        dry_run: bool,
        owner: Option<&str>,
    ) -> StoreResult<i64>;
    fn finish_run(
        &self,
        run: i64,
        status: RunStatus,
        message: Option<&str>,
        pulled: i64,
    ) -> StoreResult<()>;
    fn runs(&self, instance: &str) -> StoreResult<Vec<RunRow>>;
    fn run(&self, run: i64) -> StoreResult<Option<(RunRow, Vec<RunItem>)>>;
    /// Claims every unclaimed (or stale-claimed) queue item of the instance for `claimer`; two
    /// claimers never get the same item.
    fn claim_queue(
        &self,
        instance: &str,
        only: Option<Entity>,
        claimer: &str,
    ) -> StoreResult<Vec<QueueItem>>;
    /// Claims the queue items of the instance that wait for a record of `entity` which now has a
    /// remote id.
    fn claim_settled(
        &self,
        instance: &str,
        entity: Entity,
        claimer: &str,
    ) -> StoreResult<Vec<QueueItem>>;
    /// The items of `entity` that `claimer` still holds, as they are now (another run may have
    /// queued a newer version of a record since the claim, which releases it).
    fn claimed(&self, instance: &str, claimer: &str, entity: Entity)
    -> StoreResult<Vec<QueueItem>>;
    /// Releases whatever `claimer` still holds (items that were not retried).
    fn release_queue(&self, instance: &str, claimer: &str) -> StoreResult<()>;
    fn queue(&self, instance: &str) -> StoreResult<Vec<QueueItem>>;
    /// How many records wait in each instance's retry queue (instances with none left out).
    fn queue_depths(&self) -> StoreResult<BTreeMap<String, i64>>;
    /// Runs of any instance still `running` that started before `started_before` (RFC 3339).
    fn runs_running_since(&self, started_before: &str) -> StoreResult<Vec<RunRow>>;
    fn cursor(&self, instance: &str, entity: Entity) -> StoreResult<Cursor>;
    /// Commits a pull: the new cursor and the run's end, together.
    fn commit_pull(
        &self,
        run: i64,
        instance: &str,
        entity: Entity,
        cursor: &Cursor,
        pulled: i64,
    ) -> StoreResult<()>;
}
