//! Persistence: everything the host must remember, behind the [`Store`] trait, which is eight
//! traits with one owner each: [`RegistryStore`], [`InstanceStore`], [`SyncStore`],
//! [`ScheduleStore`], [`HookStore`], [`TokenStore`](token_store::TokenStore), [`JobStore`] and
//! [`TrustStore`](trust_store::TrustStore), each module saying
//! what its methods guarantee (transaction, locking, fencing). Two backends give the same
//! guarantees, checked by one set of behaviour tests run on both (`behaviour/`): SQLite
//! (`sqlite/`, one file in the data folder, WAL mode), the embedded default, and PostgreSQL
//! (`postgres/`), shared by a fleet of workers; `location.rs` says which one a process opens.
//! Secret setting values arrive here already sealed (`secrets.rs`); the store never sees a key.

#[cfg(test)]
mod behaviour;
pub mod hook_store;
mod instance_store;
pub mod location;
pub mod postgres;
mod registry_store;
pub mod schedule_store;
pub mod secrets;
pub mod sqlite;
mod sync_store;

pub use hook_store::HookStore;
pub use instance_store::InstanceStore;
pub use registry_store::RegistryStore;
pub use schedule_store::{NewFeedEntry, ScheduleStore};
pub use sync_store::SyncStore;

use serde::{Deserialize, Serialize};

use crate::contract::manifest::Entity;

/// A connector version the registry has loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorVersion {
    pub name: String,
    pub version: String,
    pub content_hash: String,
    /// `bundled`, or the file it was loaded from.
    pub source: String,
    /// The manifest as JSON.
    pub manifest: String,
    pub loaded_at: String,
    /// Rolled back: instances do not follow it (unless pinned to exactly it).
    pub withdrawn: bool,
    /// The key id of the key that signed it; none for an unsigned file or a bundled connector.
    #[serde(default)]
    pub signer: Option<String>,
}

/// An activated connector instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRow {
    pub name: String,
    pub connector: String,
    /// A semantic-version requirement (`^1.2`, `=1.0.3`); none follows the newest.
    pub version_req: Option<String>,
    pub installation: String,
    pub enabled: bool,
    pub created_at: String,
}

/// A stored setting value: plain, or sealed (a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredValue {
    Plain(String),
    Sealed(String),
}

/// One row of a lookup table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupRow {
    pub bss_value: String,
    pub remote_value: String,
    pub pull_default: bool,
}

/// The result of the last `activate` check of an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRow {
    pub checked_at: String,
    pub ok: bool,
    /// The connector's summary, or the reason it failed.
    pub summary: String,
    /// (key, problem) pairs.
    pub problems: Vec<(String, String)>,
}

/// What the id map knows of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMapEntry {
    pub remote_id: Option<String>,
    /// A create was sent and its outcome is not known yet.
    pub pending: bool,
    /// What was last pushed and accepted (a `last-pushed` as JSON), the base of a three-way update.
    pub last_pushed: Option<String>,
}

/// Implements the one spelling of a closed set of names: `as_str`, `FromStr` (an unknown text is
/// an error naming the accepted ones, never a default) and `Display`.
macro_rules! spelled {
    ($name:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == text)
                    .ok_or_else(|| {
                        let known: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                        format!("{text:?} is not a {} ({})", $what, known.join(", "))
                    })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

// After `spelled!`, which they use.
pub mod job_store;
pub mod token_store;
pub mod trust_store;

pub use job_store::JobStore;
pub use token_store::TokenStore;
pub use trust_store::TrustStore;

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    Push,
    Pull,
    /// A push of the retry queue's records.
    Retry,
    /// A full read of an entity's remote ids, to find records deleted remotely.
    Reconcile,
    /// A removal (delete or deactivate) of remote records the BSS deleted.
    Remove,
}

spelled!(RunKind, "run kind", {
    Push => "push",
    Pull => "pull",
    Retry => "retry",
    Reconcile => "reconcile",
    Remove => "remove",
});

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Done,
    /// Ended by an error before it finished (the reason is the run's message).
    Failed,
    /// Ended early by a bound (time, records) it reached; what it did is kept.
    Stopped,
    /// The process running it stopped; the outcomes it recorded are kept.
    Interrupted,
}

spelled!(RunStatus, "run status", {
    Running => "running",
    Done => "done",
    Failed => "failed",
    Stopped => "stopped",
    Interrupted => "interrupted",
});

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunTrigger {
    /// A `bss-host` command.
    Command,
    /// The admin API.
    Api,
    /// A schedule (`schedules`).
    Schedule,
    /// `serve`'s own retry of the queues.
    Serve,
    /// A remote's callback (`serve`'s hook).
    Callback,
    /// The operator console (`serve`'s pages).
    Console,
}

spelled!(RunTrigger, "run trigger", {
    Command => "command",
    Api => "api",
    Schedule => "schedule",
    Serve => "serve",
    Callback => "callback",
    Console => "console",
});

/// A run of push, pull or retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRow {
    pub id: i64,
    pub instance: String,
    pub kind: RunKind,
    pub trigger: RunTrigger,
    pub entity: Option<Entity>,
    pub dry_run: bool,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: RunStatus,
    pub message: Option<String>,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub reconciled: i64,
    pub failed: i64,
    pub queued: i64,
    pub pulled: i64,
    pub skipped: i64,
    /// Records held because both sides changed a field and the policy is `report`.
    pub held: i64,
}

/// One record's outcome in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunItem {
    pub entity: Entity,
    pub bss_id: String,
    /// created, updated, unchanged, reconciled, would-create, would-update, failed, queued,
    /// invalid, skipped, held, ambiguous, in-use
    pub outcome: String,
    pub remote_id: Option<String>,
    pub message: Option<String>,
}

/// What a push did with a record the remote holds: the run item's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    Updated,
    Unchanged,
    /// Found (not created) for a record the id map had no remote id for.
    Reconciled,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Created => "created",
            Applied::Updated => "updated",
            Applied::Unchanged => "unchanged",
            Applied::Reconciled => "reconciled",
        }
    }
}

/// What a dry run says a push would do: the run item's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WouldDo {
    Create,
    Update,
    Nothing,
    /// Hold for review (`host.conflicts=report`).
    Hold,
}

impl WouldDo {
    pub fn as_str(self) -> &'static str {
        match self {
            WouldDo::Create => "would-create",
            WouldDo::Update => "would-update",
            WouldDo::Nothing => "unchanged",
            WouldDo::Hold => "would-hold",
        }
    }
}

/// The count of a run an outcome adds one to: a column of `runs` and a field of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Created,
    Updated,
    Unchanged,
    Reconciled,
    Failed,
    Queued,
    Skipped,
    Held,
}

impl Counter {
    /// The column of `runs` that holds it.
    pub fn column(self) -> &'static str {
        match self {
            Counter::Created => "created",
            Counter::Updated => "updated",
            Counter::Unchanged => "unchanged",
            Counter::Reconciled => "reconciled",
            Counter::Failed => "failed",
            Counter::Queued => "queued",
            Counter::Skipped => "skipped",
            Counter::Held => "held",
        }
    }
}

impl Outcome {
    /// The run counter this outcome adds to (one mapping, for the store and the report).
    pub fn counter(&self) -> Counter {
        match self {
            Outcome::Done { kind, .. } => match kind {
                Applied::Created => Counter::Created,
                Applied::Updated => Counter::Updated,
                Applied::Unchanged => Counter::Unchanged,
                Applied::Reconciled => Counter::Reconciled,
            },
            Outcome::DryRun { kind, .. } => match kind {
                WouldDo::Create => Counter::Created,
                WouldDo::Update => Counter::Updated,
                WouldDo::Nothing => Counter::Unchanged,
                WouldDo::Hold => Counter::Held,
            },
            Outcome::Failed { retryable, .. } => {
                if *retryable {
                    Counter::Queued
                } else {
                    Counter::Failed
                }
            }
            Outcome::Invalid { .. } => Counter::Failed,
            Outcome::Skipped { .. } => Counter::Skipped,
            Outcome::Held { .. } => Counter::Held,
        }
    }

    /// The run item's message: what went wrong, or what the run noted about a success.
    pub fn message(&self) -> Option<String> {
        match self {
            Outcome::Done { waiting, note, .. } => match (waiting, note) {
                (Some(w), Some(n)) => Some(format!("{n}; {}", w.message)),
                (Some(w), None) => Some(w.message.clone()),
                (None, note) => note.clone(),
            },
            Outcome::DryRun { .. } => None,
            Outcome::Failed { message, .. }
            | Outcome::Invalid { message }
            | Outcome::Skipped { message }
            | Outcome::Held { message } => Some(message.clone()),
        }
    }

    /// The run item's label.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Done { kind, .. } => kind.as_str(),
            Outcome::DryRun { kind, .. } => kind.as_str(),
            Outcome::Failed {
                label, retryable, ..
            } => label.unwrap_or(if *retryable { "queued" } else { "failed" }),
            Outcome::Invalid { .. } => "invalid",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Held { .. } => "held",
        }
    }
}

/// What to write for one record's final outcome, in one transaction with the others of its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The remote holds the record under `remote_id`; `kind` is created, updated, unchanged or
    /// reconciled. `waiting` names a deferred reference: the record is queued for a later update.
    Done {
        kind: Applied,
        remote_id: String,
        waiting: Option<Waiting>,
        /// What was pushed and how the remote stored it (absent for a link by hand, which
        /// forgets both: the next update removes nothing).
        copy: Option<PushedCopy>,
        /// Remote values the push overwrote, said in the run's item.
        note: Option<String>,
    },
    /// A dry run's answer: would-create / would-update / unchanged; nothing is written but the item.
    DryRun {
        kind: WouldDo,
        remote_id: Option<String>,
    },
    /// Failed for good in this run. `retryable` queues `record` (canonical JSON) for a later
    /// retry; `outcome_unknown` keeps a pending create pending (it may have happened).
    Failed {
        message: String,
        retryable: bool,
        outcome_unknown: bool,
        record: String,
        /// The record it waits for (a missing reference): the push that creates that record
        /// sends this one again.
        waits: Option<(Entity, String)>,
        /// The run item's label when not `failed`/`queued` (`ambiguous`, `in-use`).
        label: Option<&'static str>,
    },
    /// Could not be read from the file; never sent.
    Invalid { message: String },
    /// Not written: the remote changed a field the BSS changed too and the policy is `report`.
    Held { message: String },
    /// Not synchronised by configuration (a sync option that is off, a payment method not
    /// configured, a document closed remotely): said with its reason, and not a failure.
    Skipped { message: String },
}

/// The base of the next three-way update and the copy later pulls are compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedCopy {
    /// The record's data and resolved references as pushed (a `last-pushed` as JSON).
    pub last_pushed: String,
    /// The record as the remote stored it, in pulled form (a `pulled-record` as JSON).
    pub stored: Option<String>,
}

/// A record sent without a reference that could wait (a cycle), queued to be sent again once the
/// referenced record exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub message: String,
    /// The record as canonical JSON.
    pub record: String,
    /// The record whose creation it waits for.
    pub waits: (Entity, String),
}

/// Who holds a run lease another run asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHolder {
    pub owner: String,
    /// What the holder is doing (`push of account by bss-host pid 4711`).
    pub purpose: String,
    pub acquired_at: String,
    /// Milliseconds until the lease lapses unless its holder renews it.
    pub expires_in_ms: i64,
}

/// What `link` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutcome {
    Linked,
    /// The BSS id was already linked to exactly this remote id.
    AlreadyLinked,
}

/// One record in the retry queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueItem {
    pub entity: Entity,
    pub bss_id: String,
    /// The record as canonical JSON.
    pub record: String,
    pub error: String,
    pub attempts: i64,
    pub queued_at: String,
}

/// The pull cursor of one entity: the largest remote `lastUpdated` delivered, and which records
/// were delivered with exactly that stamp (so a pull from `>=` the cursor can fold them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cursor {
    pub stamp: Option<String>,
    pub delivered_at_stamp: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("an instance named {0:?} already exists; choose another name")]
    DuplicateInstance(String),
    #[error("there is no instance named {0:?}; `bss-host instances list` shows them")]
    NoInstance(String),
    #[error("the database {path} could not be opened: {reason}")]
    Open { path: String, reason: String },
    #[error(
        "the database {path} was written by a newer bss-host (schema {found}; this one knows up to {known}); use that version or newer"
    )]
    NewerSchema {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("the database failed: {0}")]
    Database(String),
    #[error("{0}")]
    Conflict(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Every operation the host persists, in six parts with one owner each: the registry's
/// ([`RegistryStore`]), the instances' ([`InstanceStore`]), the sync engine's ([`SyncStore`]), the
/// unattended host's schedules and change feed ([`ScheduleStore`]), remote callbacks
/// ([`HookStore`]), API access ([`TokenStore`]), the fleet's job queue ([`JobStore`]) and the
/// trust list with the audit log ([`TrustStore`]); each part's module says what its methods
/// guarantee. A backend implements the eight.
pub trait Store:
    RegistryStore
    + InstanceStore
    + SyncStore
    + ScheduleStore
    + HookStore
    + TokenStore
    + JobStore
    + TrustStore
{
}

impl<
    T: RegistryStore
        + InstanceStore
        + SyncStore
        + ScheduleStore
        + HookStore
        + TokenStore
        + JobStore
        + TrustStore,
> Store for T
{
}
