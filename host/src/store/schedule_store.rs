//! What the store keeps for unattended work: schedules (per instance, entity and job: when each
//! is next due, what its last run did, why it is held back) and the change feed (pulled records
//! in order, with a sequence number, and how far the BSS has read them).
//!
//! Guarantees, per method, for any backend:
//! - [`ScheduleStore::claim_due`] is one write transaction: a due schedule is handed to one
//!   claimer only, and its next due time moves past `now` in the same transaction, so two
//!   schedulers never start the same slot and slots missed during a downtime run once.
//! - [`ScheduleStore::append_feed`] is idempotent: one version of one remote record (its entity,
//!   remote id, `last-updated` and change) is in the feed once, however often it is pulled
//!   (a crash between the feed and the cursor, a repeated callback).
//! - [`ScheduleStore::ack_feed`] only moves forward, and never past the newest entry.
//! - [`ScheduleStore::claim_sink`] hands a sink to one claimer at a time (until its claim
//!   lapses), with the sink's state as of the claim.

use serde::{Deserialize, Serialize};

use super::StoreResult;

/// A scheduled run still going after this long is stuck: listed as such, and its schedule may be
/// claimed again (its process died or hangs).
pub const STUCK_AFTER_SECS: i64 = 15 * 60;
use crate::contract::manifest::Entity;

/// What a schedule runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Job {
    /// A pull of the entity into the change feed.
    Pull,
    /// A retry of the entity's queued records.
    Retry,
    /// A full read of the entity's remote ids, reporting linked records deleted remotely.
    Reconcile,
}

impl Job {
    pub const ALL: [Job; 3] = [Job::Pull, Job::Retry, Job::Reconcile];

    pub fn as_str(self) -> &'static str {
        match self {
            Job::Pull => "pull",
            Job::Retry => "retry",
            Job::Reconcile => "reconcile",
        }
    }
}

impl std::fmt::Display for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Job {
    type Err = String;

    fn from_str(text: &str) -> Result<Job, String> {
        Job::ALL
            .into_iter()
            .find(|j| j.as_str() == text.trim())
            .ok_or_else(|| format!("{text:?} is not a scheduled job (pull, retry or reconcile)"))
    }
}

/// When a schedule is due: every so many seconds, or once a day at a UTC minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum Cadence {
    Every {
        seconds: i64,
    },
    /// Minutes after midnight, UTC.
    Daily {
        minute: i64,
    },
}

/// One schedule and what it last did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ScheduleRow {
    pub instance: String,
    pub entity: Entity,
    pub job: Job,
    pub cadence: Cadence,
    /// Unix seconds.
    pub next_due: i64,
    pub last_run: Option<i64>,
    pub last_started: Option<String>,
    pub last_finished: Option<String>,
    /// `done`, `failed: …`, `busy: …` (another run held the lease), …
    pub last_outcome: Option<String>,
    pub last_millis: Option<i64>,
    /// Why it does not start now (instance disabled, settings incomplete, last check failed).
    pub blocked: Option<String>,
}

/// One entry of the change feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FeedEntry {
    pub seq: i64,
    pub entity: Entity,
    pub remote_id: String,
    /// `changed` (created or updated remotely) or `deleted`.
    pub change: String,
    /// The record as a line of a pulled file (JSON).
    pub record: String,
    pub run: Option<i64>,
    pub at: String,
}

/// A record to append to the feed: `version` is its `last-updated`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFeedEntry {
    pub entity: Entity,
    pub remote_id: String,
    pub version: String,
    pub change: String,
    pub record: String,
}

/// How far the BSS has read an instance's feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FeedState {
    pub acknowledged: i64,
    /// The newest sequence number there has been (entries up to it may have been pruned).
    pub newest: i64,
    /// Entries after the acknowledged one.
    pub backlog: i64,
}

/// Where `serve` posts an instance's feed: a BSS webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FeedSinkRow {
    pub instance: String,
    pub url: String,
    /// The HMAC secret, sealed (`secrets.rs`); never shown.
    #[serde(skip)]
    pub sealed_secret: String,
    /// The newest sequence number delivered (and so acknowledged).
    pub delivered: i64,
    /// Failed deliveries in a row.
    pub attempts: i64,
    /// Unix seconds before which no delivery is tried (backoff).
    pub next_try: i64,
    pub last_error: Option<String>,
}

/// Schedules and the change feed.
pub trait ScheduleStore: Send + Sync {
    /// Creates or replaces the schedule of (instance, entity, job), first due at `next_due`.
    fn set_schedule(
        &self,
        instance: &str,
        entity: Entity,
        job: Job,
        cadence: Cadence,
        next_due: i64,
    ) -> StoreResult<()>;
    /// Whether there was one to remove.
    fn remove_schedule(&self, instance: &str, entity: Entity, job: Job) -> StoreResult<bool>;
    /// Every schedule, or those of one instance.
    fn schedules(&self, instance: Option<&str>) -> StoreResult<Vec<ScheduleRow>>;
    /// Takes every schedule due at `now` (unix seconds), not running (unless stuck), whose
    /// instance `ready` accepts: each gets
    /// its next due time from `next` and `started` as its last start, in one transaction. Those
    /// `ready` refuses keep their due time and get the reason as `blocked`.
    fn claim_due(
        &self,
        now: i64,
        ready: &mut dyn FnMut(&ScheduleRow) -> Option<String>,
        next: &dyn Fn(&ScheduleRow) -> i64,
        started: &str,
    ) -> StoreResult<Vec<ScheduleRow>>;
    /// Records how a claimed schedule's run ended, unless the schedule was claimed again since
    /// (its `last_started` is no longer the claim's).
    fn finish_schedule(
        &self,
        claimed: &ScheduleRow,
        run: Option<i64>,
        outcome: &str,
        millis: i64,
    ) -> StoreResult<()>;
    /// Appends records to the instance's feed (a version already there is skipped); returns how
    /// many were new.
    fn append_feed(
        &self,
        instance: &str,
        run: Option<i64>,
        entries: &[NewFeedEntry],
    ) -> StoreResult<usize>;
    /// Entries after `after`, oldest first, at most `limit`.
    fn feed(&self, instance: &str, after: i64, limit: usize) -> StoreResult<Vec<FeedEntry>>;
    /// Marks entries up to `upto` as read by the BSS.
    fn ack_feed(&self, instance: &str, upto: i64) -> StoreResult<FeedState>;
    fn feed_state(&self, instance: &str) -> StoreResult<FeedState>;
    /// Unacknowledged entries per instance (instances with none left out).
    fn feed_backlogs(&self) -> StoreResult<std::collections::BTreeMap<String, i64>>;
    /// Drops acknowledged entries older than `before` (an RFC 3339 stamp); returns how many.
    fn prune_feed(&self, before: &str) -> StoreResult<usize>;
    /// Creates or replaces the instance's webhook sink; delivery starts after what is
    /// acknowledged already.
    fn set_feed_sink(&self, instance: &str, url: &str, sealed_secret: &str) -> StoreResult<()>;
    /// Whether there was one to remove.
    fn remove_feed_sink(&self, instance: &str) -> StoreResult<bool>;
    fn feed_sinks(&self) -> StoreResult<Vec<FeedSinkRow>>;
    /// Records a delivery the sink accepted: up to `upto` is delivered and acknowledged, in one
    /// transaction.
    fn sink_delivered(&self, instance: &str, upto: i64) -> StoreResult<()>;
    /// Records a failed delivery and when to try again.
    fn sink_failed(&self, instance: &str, error: &str, next_try: i64) -> StoreResult<()>;
    /// Claims an instance's sink for one delivery until `until` (unix seconds): the sink as it
    /// is now, or none when another claimer holds it (or it is gone). Two `serve` processes on
    /// one store never post the same batch at once.
    fn claim_sink(
        &self,
        instance: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<Option<FeedSinkRow>>;
    /// Ends the owner's claim.
    fn release_sink(&self, instance: &str, owner: &str) -> StoreResult<()>;
}
