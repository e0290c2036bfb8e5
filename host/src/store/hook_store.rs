//! What the store keeps for remote callbacks: each instance's hook (its secret URL token, sealed;
//! the public URL it was registered under; the remote's registrations) and the events the hook
//! received, each handled once.
//!
//! Guarantees, per method, for any backend:
//! - [`HookStore::record_event`] is idempotent: one (instance, message id, entity, remote id,
//!   action) is stored once however often the remote delivers it, and says whether it was new.
//! - [`HookStore::claim_events`] is one write transaction: a pending event is handed to one
//!   claimer only; a claim older than [`EVENT_CLAIM_SECS`] belongs to a worker that died and is
//!   taken over.
//! - [`HookStore::finish_event`] writes only onto the caller's own claim.

use serde::{Deserialize, Serialize};

use super::StoreResult;
use crate::contract::manifest::Entity;

/// Failed events count as callback errors (in `/health`) this long after they failed.
pub const FAILED_SHOWN_SECS: i64 = 24 * 3_600;

/// A claimed event not finished after this long is claimed again (its worker died or hangs).
pub const EVENT_CLAIM_SECS: i64 = 300;

/// What the remote announced about a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Added,
    Updated,
    Deleted,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Added, Action::Updated, Action::Deleted];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Added => "added",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Action {
    type Err = String;

    fn from_str(text: &str) -> Result<Action, String> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| format!("{text:?} is not a callback action (added, updated or deleted)"))
    }
}

/// One registration the connector keeps on the remote for an instance's hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Registration {
    pub entity: Entity,
    /// The remote's name for the entity in its deliveries (ConnectWise `Type`).
    pub remote_type: String,
    /// The remote's id of the registration.
    pub remote_id: String,
}

/// An instance's callback hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct HookRow {
    pub instance: String,
    /// The URL token, sealed (`secrets.rs`); never shown.
    #[serde(skip)]
    pub sealed_token: String,
    /// The base URL the remote reaches `serve` at (the hook is `{public_url}/hooks/{instance}/…`).
    pub public_url: String,
    /// The entities whose changes the instance asked to be called back for.
    pub entities: Vec<Entity>,
    /// The remote's registrations, as the connector last reported them.
    pub registrations: Vec<Registration>,
    /// Whether the registrations are in place: false once unsubscribed (the instance disabled),
    /// and while a subscribe or unsubscribe failed (see `last_error`).
    pub active: bool,
    pub last_error: Option<String>,
    pub updated_at: String,
}

/// A callback event as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct HookEvent {
    pub seq: i64,
    pub instance: String,
    pub message_id: String,
    pub entity: Entity,
    pub remote_id: String,
    pub action: Action,
    /// Unix seconds.
    pub received_at: i64,
    /// `pending`, `done` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub outcome: Option<String>,
}

/// How a claimed event ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventEnd {
    /// Handled; the outcome says how (fed, deleted, echo, …).
    Done(String),
    /// Try again at this unix second.
    Retry { error: String, next_try: i64 },
    /// Given up on (not retryable).
    Failed(String),
    /// Not tried (another run held the entity's lease): again at this unix second, the attempt
    /// not counted.
    Later { reason: String, next_try: i64 },
}

/// Pending events of one instance, recent failures, and the last failure.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EventCounts {
    pub pending: i64,
    pub failed: i64,
    /// Events whose last attempt failed and that wait for another.
    pub retrying: i64,
    pub last_error: Option<String>,
}

/// Callback hooks and their events.
pub trait HookStore: Send + Sync {
    /// Creates or replaces an instance's hook.
    fn set_hook(&self, hook: &HookRow) -> StoreResult<()>;
    fn hook(&self, instance: &str) -> StoreResult<Option<HookRow>>;
    /// Every hook, of every instance.
    fn hooks(&self) -> StoreResult<Vec<HookRow>>;
    /// Removes an instance's hook and its events; false when it had none.
    fn remove_hook(&self, instance: &str) -> StoreResult<bool>;
    /// Stores an event unless the same one is there already; true when it is new.
    fn record_event(
        &self,
        instance: &str,
        message_id: &str,
        entity: Entity,
        remote_id: &str,
        action: Action,
    ) -> StoreResult<bool>;
    /// Claims up to `limit` pending events due at `now` (unix seconds), oldest first.
    fn claim_events(&self, claimer: &str, now: i64, limit: usize) -> StoreResult<Vec<HookEvent>>;
    /// As [`HookStore::claim_events`], for one instance and entity only (an `events` job's).
    fn claim_events_of(
        &self,
        claimer: &str,
        instance: &str,
        entity: Entity,
        now: i64,
        limit: usize,
    ) -> StoreResult<Vec<HookEvent>>;
    /// The instances and entities with events [`HookStore::claim_events`] would claim at `now`.
    fn due_event_groups(&self, now: i64) -> StoreResult<Vec<(String, Entity)>>;
    /// Renews the claimer's claims of pending events as of `now`, so a long batch keeps them
    /// (a claim is taken over [`EVENT_CLAIM_SECS`] after its last renewal); how many it renewed.
    fn renew_event_claims(&self, claimer: &str, now: i64) -> StoreResult<usize>;
    /// Ends a claimed event; false when the claim is no longer the caller's.
    fn finish_event(&self, seq: i64, claimer: &str, end: &EventEnd) -> StoreResult<bool>;
    /// An instance's events, newest first, at most `limit`.
    fn events(&self, instance: &str, limit: usize) -> StoreResult<Vec<HookEvent>>;
    /// Pending events, and events failed since `failed_since` (unix seconds), per instance
    /// (instances with none are absent).
    fn event_counts(
        &self,
        failed_since: i64,
    ) -> StoreResult<std::collections::BTreeMap<String, EventCounts>>;
    /// Drops finished (done or failed) events that finished before `before` (unix seconds):
    /// a delivery repeated after that is taken as new, and its record fetched again.
    fn prune_events(&self, before: i64) -> StoreResult<usize>;
}
