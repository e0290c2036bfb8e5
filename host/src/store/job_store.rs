//! The job queue shared by every `serve` worker on one store, and the workers themselves: work
//! submitted through the API, the runs of due schedules and the minute's retries wait here as
//! jobs until a worker claims one, keeps it with a heartbeat, and ends it; a job whose worker
//! stopped heartbeating goes back to the queue and another worker takes it over. Callback events
//! stay in their own table (`hook_store`, each claimed once); an `events` job applies those due.
//!
//! Guarantees, per method, for any backend:
//! - [`JobStore::claim_job`] is one write transaction: a queued job goes to one worker only, and
//!   never while another job of the same instance and entity is running anywhere (a unique index
//!   on the running ones is the hard guarantee). Jobs of one instance and entity start in the
//!   order they were submitted, so a newer push of a record never lands before an older one.
//!   Jobs whose lease lapsed are queued again first, keeping their place, unless they were
//!   started [`MAX_ATTEMPTS`] times: those fail. A job of a kind this build does not know (a
//!   newer host queued it while the fleet is being upgraded) is left for a worker that does.
//! - [`JobStore::renew_jobs`] extends only the caller's own running jobs and says which it still
//!   holds: a job missing from the answer was taken over, and its worker must stop it.
//! - [`JobStore::finish_job`] writes only onto the caller's own claim, so a worker that lost a
//!   job cannot end it over the worker that took it.
//! - A job's run ends the job in the run's own last transaction: a run started under
//!   [`job_owner`] is tied to the job at its start (only while the caller still holds the job),
//!   and `SyncStore::finish_run` marks the job done (or failed) in the transaction that records
//!   the run's end, after the id map and cursors it wrote. A worker that dies between the run's
//!   end and its own `finish_job` leaves a finished job, not one that runs again. A takeover
//!   unties the old run, so only the new holder's run can end the job.
//! - Times that decide a takeover (leases, due times, heartbeats) are the store's clock where it
//!   has one (PostgreSQL's), so workers on several machines agree on them.

use serde::{Deserialize, Serialize};

use super::{RunTrigger, StoreResult};
use crate::contract::manifest::Entity;

/// How long a job's claim lasts without a heartbeat (seconds), unless the worker says otherwise.
pub const JOB_LEASE_SECS: i64 = 30;

/// Starts after which a job whose worker stopped heartbeating again is failed, not taken over:
/// a job that takes down every worker that runs it must not take down the fleet.
pub const MAX_ATTEMPTS: i64 = 5;

/// The `WHO` part of the run-lease owner (`WHO@HOST:PID:NONCE`) for runs of attempt `attempt`
/// of job `job` held by `worker`: the store ties the first run started under it to the job. The
/// worker id is hex-encoded, so the owner keeps the shape the lease code reads.
pub fn job_owner_who(job: i64, attempt: i64, worker: &str) -> String {
    format!("job{job}.{attempt}.{}", hex::encode(worker))
}

/// Jobs submitted in this process: wakes its own worker at once (other processes learn of them
/// from the store's notifications, or at their next look).
pub fn submitted_here() -> &'static tokio::sync::Notify {
    static SUBMITTED: std::sync::OnceLock<tokio::sync::Notify> = std::sync::OnceLock::new();
    SUBMITTED.get_or_init(tokio::sync::Notify::new)
}

/// Says that a job was just submitted by this process.
pub fn job_submitted() {
    submitted_here().notify_one();
}

/// The job, attempt and worker a run-lease owner built on [`job_owner_who`] names.
pub fn parse_job_owner(owner: &str) -> Option<(i64, i64, String)> {
    let (who, _) = owner.split_once('@')?;
    let (job, rest) = who.strip_prefix("job")?.split_once('.')?;
    let (attempt, hex) = rest.split_once('.')?;
    Some((
        job.parse().ok()?,
        attempt.parse().ok()?,
        String::from_utf8(hex::decode(hex).ok()?).ok()?,
    ))
}

/// Run statuses that say a run ended (not `running`, not `interrupted`: an interrupted run's job
/// runs again).
pub const ENDED_RUN_STATUSES: &str = "'done', 'stopped', 'failed'";

/// The error of a cancelled job.
pub const CANCELLED: &str = "cancelled before it started";

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// A push of the payload's records (NDJSON).
    Push,
    /// A scheduled pull into the change feed (payload: the claimed schedule, JSON).
    Pull,
    /// A retry of the entity's queued records: serve's minute retry (no payload) or a schedule's
    /// (payload: the claimed schedule).
    Retry,
    /// A scheduled reconcile (payload: the claimed schedule).
    Reconcile,
    /// The due callback events of the entity, applied (no payload: they are in the store).
    Events,
}

spelled!(JobKind, "job kind", {
    Push => "push",
    Pull => "pull",
    Retry => "retry",
    Reconcile => "reconcile",
    Events => "events",
});

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    /// It ran to its end; its run says how each record went.
    Done,
    /// It could not run (the instance is gone, the payload is unreadable, …); `error` says why.
    Failed,
}

spelled!(JobState, "job state", {
    Queued => "queued",
    Running => "running",
    Done => "done",
    Failed => "failed",
});

/// A job to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub kind: JobKind,
    pub instance: String,
    pub entity: Entity,
    pub trigger: RunTrigger,
    pub payload: Vec<u8>,
    pub dry_run: bool,
}

/// A job as the store has it (without its payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct JobRow {
    pub id: i64,
    pub kind: JobKind,
    pub instance: String,
    pub entity: Entity,
    pub trigger: RunTrigger,
    pub dry_run: bool,
    pub state: JobState,
    /// Times a worker started it (a takeover counts; a busy entity does not).
    pub attempts: i64,
    /// The worker running it, or that ran it last.
    pub worker: Option<String>,
    /// The run it made, once it ran.
    pub run: Option<i64>,
    pub submitted_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// What the run reported (JSON), once done.
    pub outcome: Option<String>,
    pub error: Option<String>,
}

/// A job a worker claimed: the row and what to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    pub row: JobRow,
    pub payload: Vec<u8>,
}

/// How a claimed job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd {
    Done {
        run: Option<i64>,
        outcome: String,
    },
    Failed {
        run: Option<i64>,
        error: String,
    },
    /// Not started after all (another run holds its entity): queued again, due after
    /// `delay_secs`, and the attempt not counted.
    Later {
        delay_secs: i64,
        reason: String,
    },
}

/// What a cancellation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// It was queued; it is failed now, with why, and runs nowhere.
    Cancelled,
    /// It is running or ended already: nothing was changed.
    NotQueued(JobState),
    NoSuchJob,
}

/// A `serve` worker, as `workers list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct WorkerRow {
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub version: String,
    pub started_at: String,
    /// Milliseconds since its last heartbeat, by the store's clock.
    pub heartbeat_ago_ms: i64,
    /// Whether it said it stopped (a clean shutdown).
    pub stopped: bool,
    /// Heartbeating within the time asked, and not stopped.
    pub alive: bool,
    /// Jobs it holds now.
    pub jobs_held: i64,
}

/// The job queue and the workers.
pub trait JobStore: Send + Sync {
    /// Queues a job; its id. `NoInstance` when the instance does not exist.
    fn submit_job(&self, job: &NewJob) -> StoreResult<i64>;
    /// The oldest queued job of this kind, instance and entity, if any: a submitter that would
    /// only repeat it (the minute's retry) leaves it at that.
    fn queued_job(&self, kind: JobKind, instance: &str, entity: Entity)
    -> StoreResult<Option<i64>>;
    /// Queues again the running jobs whose lease lapsed, then claims the oldest due job whose
    /// instance and entity run nowhere, for `lease_secs`.
    fn claim_job(&self, worker: &str, lease_secs: i64) -> StoreResult<Option<ClaimedJob>>;
    /// The heartbeat: the worker's own row, and the leases of its running jobs, extended by
    /// `lease_secs`. Returns the ids of the jobs it still holds.
    fn renew_jobs(&self, worker: &str, lease_secs: i64) -> StoreResult<Vec<i64>>;
    /// Ends the caller's own running job; false when it is no longer the caller's.
    fn finish_job(&self, id: i64, worker: &str, end: &JobEnd) -> StoreResult<bool>;
    /// Cancels a queued job (failed, `error` saying so); a running or ended one is left as it is.
    fn cancel_job(&self, id: i64) -> StoreResult<Cancel>;
    fn job(&self, id: i64) -> StoreResult<Option<JobRow>>;
    /// The newest `limit` jobs, of one instance or all, newest first.
    fn jobs(&self, instance: Option<&str>, limit: usize) -> StoreResult<Vec<JobRow>>;
    /// Records a worker starting (or starting again under the same id).
    fn register_worker(&self, id: &str, host: &str, pid: i64, version: &str) -> StoreResult<()>;
    /// Records a clean shutdown: the worker's running jobs go back to the queue at once.
    fn stop_worker(&self, id: &str) -> StoreResult<()>;
    /// The workers that heartbeated in the last `within_secs` or hold a job, by id; alive are
    /// those that heartbeated in the last `alive_secs` and did not stop.
    fn workers(&self, alive_secs: i64, within_secs: i64) -> StoreResult<Vec<WorkerRow>>;
    /// Woken when a job may have become claimable (submitted, or its entity freed) by any
    /// process on the store; none when the backend cannot tell other processes' changes, and
    /// workers then look every tick.
    fn job_wakeup(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_owner_names_its_job_and_worker_and_keeps_the_lease_owner_shape() {
        for worker in ["w1", "worker@host:12:ab#x", ""] {
            let who = job_owner_who(42, 3, worker);
            assert!(
                who.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'),
                "no '@' or ':' that would break the owner's shape: {who}"
            );
            let owner = format!("{who}@host-1:77:0a1b");
            assert_eq!(
                parse_job_owner(&owner),
                Some((42, 3, worker.to_string())),
                "{owner}"
            );
        }
        for other in [
            "serve@host:1:ff",
            "job@host:1:ff",
            "jobx.1.77@host:1:ff",
            "job1.7@host:1:ff",
            "job1.x.77@host:1:ff",
            "job1.zz@h:1:f",
        ] {
            assert_eq!(parse_job_owner(other), None, "{other}");
        }
    }
}
