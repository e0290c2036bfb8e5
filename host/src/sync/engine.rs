//! The sync engine: push and pull runs over any [`SyncConnector`].
//!
//! Push, per run: refuse what the instance's sync options do not enable; look each record up in
//! the id map (a known remote id means update, none means create); resolve its references through
//! the id map (a missing one fails the record, naming it, and queues it; a deferrable one — an
//! account's primary contact — is left out and the record is queued to be sent again); mark the
//! creates pending; send in batches small enough for the per-call request cap; retry rate-limited
//! and transient failures within the run with backoff (honouring `Retry-After`); write each batch's
//! outcomes with the id map and the retry queue in one transaction. A pending create (a crash or
//! timeout left its outcome unknown) is sent with `maybe-created`, so the connector looks it up by
//! its natural key before creating it again.
//!
//! Pull, per run: page through the connector from the stored cursor (the remote's own largest
//! `lastUpdated`, asked again with `>=`), fold the records already delivered at that stamp, map
//! remote ids and references back to BSS ids, write each record out, and commit the new cursor
//! only after every record it covers has been written.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::connector::SyncConnector;
use super::lease::RunLease;
use super::records::{self, BssRecord, InvalidRecord, RecordReference};
use crate::capabilities::context::InstanceContext;
use crate::contract::bindings::connector::{
    Change, ConflictPolicy, LastPushed, OverwrittenValue, PushItem, PushOptions, Pushed,
};
use crate::contract::bindings::types::{self as wit, ConnectorError};
use crate::contract::manifest::{Direction, Entity, Operations};
use crate::store::{
    Applied, Counter, Cursor, NewFeedEntry, Outcome, PushedCopy, RunKind, RunStatus, RunTrigger,
    Store, StoreError, Waiting, WouldDo,
};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(
        "{direction} of {entity} is not enabled for instance {instance}; enable it with `bss-host sync-options set {instance} {entity}:{direction}:create,update`"
    )]
    NotEnabled {
        instance: String,
        entity: &'static str,
        direction: &'static str,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "pull of {entity} failed: {reason}; the cursor was not moved, so the next pull starts from the same point"
    )]
    Pull {
        entity: &'static str,
        reason: String,
    },
    #[error("writing the pulled records failed: {0}; the cursor was not moved")]
    Output(std::io::Error),
    #[error(
        "the run stopped: another process took its lease over after this one could not renew it in time; the outcomes recorded so far are kept, the rest was not sent"
    )]
    LeaseLost,
    #[error("reading the records failed: {0}; the records read before were pushed (run {1})")]
    Input(String, i64),
}

/// How the engine paces itself.
#[derive(Debug, Clone)]
pub struct Pacing {
    /// Records per connector call.
    pub batch_size: usize,
    /// Tries per record within one run (for transient failures) before it goes to the retry queue.
    pub max_attempts: u32,
    /// Waits for a rate limit within one run before the records still waiting are queued.
    pub max_rate_limit_waits: u32,
    /// The first backoff; doubled on each further try, up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Pacing {
    /// Batches sized so that even a record needing several requests (a lookup, a create, its lines
    /// or type association) keeps a call within the instance's request cap.
    pub fn for_context(context: &InstanceContext) -> Pacing {
        let cap = context.options().max_requests_per_call as usize;
        Pacing {
            batch_size: (cap / 8).clamp(1, 50),
            max_attempts: 5,
            max_rate_limit_waits: 120,
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
        }
    }

    pub(super) fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// One record in a run's report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReportItem {
    pub id: String,
    pub outcome: String,
    #[serde(rename = "remote-id")]
    pub remote_id: Option<String>,
    pub message: Option<String>,
}

/// How many records' outcomes a report carries; the store keeps every one (`runs show`).
pub const REPORT_ITEMS_KEPT: usize = 10_000;

/// What a push run did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct PushReport {
    pub run: i64,
    pub dry_run: bool,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub reconciled: usize,
    pub failed: usize,
    pub queued: usize,
    /// Not synchronised by configuration, with the reason: not a failure.
    pub skipped: usize,
    /// Held for review: both sides changed a field and `host.conflicts` is `report`.
    pub held: usize,
    /// Records with an outcome (all of them, whether or not `items` holds them).
    pub records: usize,
    /// The first [`REPORT_ITEMS_KEPT`] outcomes; `items_truncated` says whether there were more.
    pub items: Vec<ReportItem>,
    pub items_truncated: bool,
}

impl PushReport {
    fn add(&mut self, id: &str, outcome: &Outcome) {
        let count = match outcome.counter() {
            Counter::Created => &mut self.created,
            Counter::Updated => &mut self.updated,
            Counter::Unchanged => &mut self.unchanged,
            Counter::Reconciled => &mut self.reconciled,
            Counter::Failed => &mut self.failed,
            Counter::Queued => &mut self.queued,
            Counter::Skipped => &mut self.skipped,
            Counter::Held => &mut self.held,
        };
        *count += 1;
        let remote_id = match outcome {
            Outcome::Done { remote_id, .. } => Some(remote_id.clone()),
            Outcome::DryRun { remote_id, .. } => remote_id.clone(),
            _ => None,
        };
        let (label, message) = (outcome.label().to_string(), outcome.message());
        self.records += 1;
        if self.items.len() < REPORT_ITEMS_KEPT {
            self.items.push(ReportItem {
                id: id.to_string(),
                outcome: label,
                remote_id,
                message,
            });
        } else {
            self.items_truncated = true;
        }
    }

    pub fn total(&self) -> usize {
        self.records
    }

    /// Whether every record succeeded: created, updated, unchanged or reconciled (a dry run's
    /// would-create and would-update count as success).
    pub fn all_succeeded(&self) -> bool {
        self.failed == 0 && self.queued == 0
    }

    /// Adds another run's counts (a follow-up run that sent queued records).
    pub fn absorb(&mut self, other: &PushReport) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.reconciled += other.reconciled;
        self.failed += other.failed;
        self.queued += other.queued;
        self.skipped += other.skipped;
        self.held += other.held;
        self.records += other.records;
    }
}

/// Where a pull starts and what it returns.
#[derive(Debug, Clone, Default)]
pub struct PullFrom {
    /// Read changes at or after this stamp instead of the stored cursor.
    pub since: Option<String>,
    /// Also return records that are echoes of this instance's own pushes.
    pub include_echoes: bool,
    /// Also append what is delivered to the instance's change feed (idempotently: a version of a
    /// record already there is not added again).
    pub feed: bool,
}

/// What a pull run did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct PullReport {
    pub run: i64,
    /// Records this pull added to the change feed (not there already).
    pub fed: usize,
    pub delivered: usize,
    pub folded: usize,
    /// Records equal to how the remote stored this instance's last push of them: its own
    /// changes coming back, not delivered unless asked for (`include_echoes`).
    pub echoes: usize,
    pub pages: usize,
    pub cursor: Option<String>,
    /// Records the connector handed back that the host refused (another entity, a stamp in the
    /// future or not a stamp, an unusable remote id): not delivered, and the cursor never moves
    /// on their account. The first 1,000 are listed.
    pub refused: usize,
    pub refusals: Vec<ReportItem>,
    /// Why the run stopped before the last page (a cap of the instance), with the cursor kept.
    pub stopped: Option<String>,
}

impl PullReport {
    /// Whether every record was delivered and the run read to the end.
    pub fn complete(&self) -> bool {
        self.refused == 0 && self.stopped.is_none()
    }
}

/// Called after each batch with (records done, records in the run).
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Send + Sync);

pub struct Engine<'a, C: SyncConnector> {
    pub store: &'a dyn Store,
    pub connector: &'a C,
    pub context: Arc<InstanceContext>,
    pub pacing: Pacing,
    pub progress: Option<Progress<'a>>,
    /// The lease the run holds (none in tests that drive the engine alone): its owner is
    /// recorded on the run, and the run stops sending if the lease is lost.
    pub lease: Option<&'a RunLease>,
    /// What started the runs, as `runs list` shows it.
    pub trigger: RunTrigger,
}

/// The longest remote id the host keeps (bytes).
pub const MAX_REMOTE_ID_BYTES: usize = 256;

/// What is wrong with a remote id a connector handed back, if anything: ids are keys of the id
/// map and are printed, so they are short, printable and not blank.
pub fn remote_id_problem(id: &str) -> Option<String> {
    if id.trim().is_empty() {
        return Some("it is empty".into());
    }
    if id.len() > MAX_REMOTE_ID_BYTES {
        return Some(format!(
            "it is {} bytes long; remote ids are at most {MAX_REMOTE_ID_BYTES} bytes",
            id.len()
        ));
    }
    if let Some(c) = id.chars().find(|c| c.is_control()) {
        return Some(format!(
            "it contains the control character U+{:04X}",
            c as u32
        ));
    }
    None
}

/// How far ahead of the host's clock a pulled record's stamp may be (clocks drift).
pub const STAMP_SKEW_SECS: i64 = 600;

/// Why a pulled record cannot be delivered, if it cannot: it is of another entity than asked,
/// its stamp lies in the future (it would move the cursor past every later change), or its
/// remote id is unusable. A stamp that does not parse is delivered with a warning instead, and
/// never becomes the cursor.
pub(super) fn pulled_problem(
    record: &crate::contract::bindings::connector::PulledRecord,
    entity: Entity,
    now: i64,
) -> Option<String> {
    let got = Entity::from(data_entity(&record.data));
    if got != entity {
        return Some(format!(
            "the connector returned a {} to a pull of {}",
            got.as_str(),
            entity.as_str()
        ));
    }
    if let Some(problem) = remote_id_problem(&record.remote_id) {
        return Some(format!("remote id: {problem}"));
    }
    if record.last_updated.len() > 64 {
        return Some(format!(
            "last-updated is {} bytes long; it is not a stamp",
            record.last_updated.len()
        ));
    }
    match crate::time::parse_rfc3339(&record.last_updated) {
        // Delivered with a warning; it never moves the cursor (see `pull`).
        None => None,
        Some(stamp) if stamp > now + STAMP_SKEW_SECS => Some(format!(
            "last-updated {} is in the future (the host's clock says {}); it would move the cursor past every change made until then",
            record.last_updated,
            crate::time::rfc3339(now)
        )),
        Some(_) => None,
    }
}

/// Moves a pull's cursor candidate to `stamp` when it is newer, keeping the keys of the records
/// delivered at the newest stamp (the next pull, which asks at or after it, folds them).
fn advance(
    newest: &mut Option<String>,
    at_newest: &mut BTreeSet<String>,
    stamp: &str,
    key: String,
) {
    match newest.as_deref() {
        Some(n) if stamp < n => {}
        Some(n) if stamp == n => {
            at_newest.insert(key);
        }
        _ => {
            *newest = Some(stamp.to_string());
            *at_newest = BTreeSet::from([key]);
        }
    }
}

/// Whether a pulled record is the remote's copy of this instance's last push (`copy`, a stored
/// `pulled-record` as JSON): the same data and references, whatever its stamp or warnings. The
/// copy was mapped by the connector the way pull maps, so values the remote normalises (a state's
/// name stored as its code) compare as the remote holds them.
pub(super) fn is_echo(pulled: &crate::contract::bindings::types::PulledRecord, copy: &str) -> bool {
    let Ok(copy) = serde_json::from_str::<serde_json::Value>(copy) else {
        return false;
    };
    let sorted = |v: Option<serde_json::Value>| {
        let mut items = match v {
            Some(serde_json::Value::Array(items)) => items,
            _ => Vec::new(),
        };
        items.sort_by_key(|i| i.to_string());
        items
    };
    serde_json::to_value(&pulled.data).ok().as_ref() == copy.get("data")
        && sorted(serde_json::to_value(&pulled.references).ok())
            == sorted(copy.get("references").cloned())
}

/// A connector-given text cut to a length fit for a report line.
pub(super) fn shortened(text: &str) -> String {
    crate::capabilities::log::cap(text, 80).into_owned()
}

/// The entity of a record's data.
fn data_entity(data: &wit::EntityData) -> wit::Entity {
    match data {
        wit::EntityData::Account(_) => wit::Entity::Account,
        wit::EntityData::Contact(_) => wit::Entity::Contact,
        wit::EntityData::Product(_) => wit::Entity::Product,
        wit::EntityData::Invoice(_) => wit::Entity::Invoice,
        wit::EntityData::Order(_) => wit::Entity::Order,
        wit::EntityData::Payment(_) => wit::Entity::Payment,
        wit::EntityData::Subscription(_) => wit::Entity::Subscription,
    }
}

/// Records' outcomes by BSS id, as the store records them.
type Outcomes = Vec<(String, Outcome)>;

/// Records of one push, read a chunk at a time so memory does not grow with the file.
pub type Chunk = (Vec<BssRecord>, Vec<InvalidRecord>);

/// Failures worth another try within the run, and how long to wait first.
pub(super) fn retry_in_run(error: &Failure) -> Option<Option<Duration>> {
    match error {
        Failure::Connector(ConnectorError::RateLimited(after))
        | Failure::Batch(ConnectorError::RateLimited(after)) => {
            Some(after.map(Duration::from_millis))
        }
        Failure::Connector(ConnectorError::Transient(_))
        | Failure::Batch(ConnectorError::Transient(_))
        | Failure::Call(_) => Some(None),
        _ => None,
    }
}

/// The field a connector names in a `rejected` error, with a message starting `ambiguous:` or
/// `in use:`, when the record's identity is in question: several remote records may be it, or
/// its unique key is held by a remote record that does not carry its BSS key.
pub const IDENTITY_FIELD: &str = "bss-id";

#[derive(Clone)]
pub(super) enum Failure {
    Connector(ConnectorError),
    /// The connector failed the whole call: it may have done part of the batch before.
    Batch(ConnectorError),
    /// The call itself failed (trap, deadline, an answer that does not fit the batch): the
    /// batch's outcome is unknown.
    Call(String),
}

impl Failure {
    pub(super) fn message(&self) -> String {
        match self {
            Failure::Connector(e) | Failure::Batch(e) => crate::capabilities::log::cap(
                &crate::contract::describe_connector_error(e),
                crate::capabilities::log::MAX_TEXT_BYTES,
            )
            .into_owned(),
            Failure::Call(m) => m.clone(),
        }
    }

    /// Whether a later retry may succeed without changing the record.
    pub(super) fn retryable(&self) -> bool {
        match self {
            Failure::Call(_) => true,
            Failure::Connector(e) | Failure::Batch(e) => matches!(
                e,
                ConnectorError::RateLimited(_)
                    | ConnectorError::Transient(_)
                    | ConnectorError::MissingReference(_)
                    | ConnectorError::Unauthorized(_)
                    | ConnectorError::InvalidSettings(_)
            ),
        }
    }

    /// `ambiguous` or `in-use` when the connector could not tell which remote record this one
    /// is (it answers `rejected` on the field `bss-id`): an operator links it by hand.
    fn identity_conflict(&self) -> Option<&'static str> {
        let Failure::Connector(ConnectorError::Rejected(fields)) = self else {
            return None;
        };
        fields
            .iter()
            .filter(|f| f.field == IDENTITY_FIELD)
            .find_map(|f| {
                let message = f.message.trim_start();
                if message.starts_with("ambiguous:") {
                    Some("ambiguous")
                } else if message.starts_with("in use:") {
                    Some("in-use")
                } else {
                    None
                }
            })
    }

    /// The reason when the connector says the record is not synchronised by configuration
    /// (`unsupported` with a message starting `skipped:` or `not synchronised:`).
    fn skipped(&self) -> Option<String> {
        match self {
            Failure::Connector(ConnectorError::Unsupported(message))
                if message.starts_with("skipped:") || message.starts_with("not synchronised:") =>
            {
                Some(message.clone())
            }
            _ => None,
        }
    }

    /// Whether a create might have happened despite the failure.
    fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            Failure::Call(_)
                | Failure::Batch(_)
                | Failure::Connector(ConnectorError::Transient(_) | ConnectorError::RateLimited(_))
        )
    }
}

/// A record ready to send.
struct Ready {
    record: BssRecord,
    wit: wit::Record,
    /// What was last pushed for it: the base of a three-way update.
    last_pushed: Option<LastPushed>,
    waiting: Option<(String, (Entity, String))>,
}

/// Remote values as a report says them: `field "remote" (last pushed "ours")`.
fn said_values(values: &[OverwrittenValue]) -> String {
    values
        .iter()
        .map(|v| match &v.last_pushed {
            Some(ours) => format!(
                "{} {:?} (last pushed {:?})",
                v.field,
                shortened(&v.remote_value),
                shortened(ours)
            ),
            None => format!("{} {:?}", v.field, shortened(&v.remote_value)),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a push keeps of an accepted record: its data and references as sent, and how the remote
/// stored it when the connector said (only when it names the same remote record).
fn pushed_copy(ready: &Ready, pushed: &Pushed) -> Option<PushedCopy> {
    let last_pushed = serde_json::to_string(&LastPushed {
        data: ready.wit.data.clone(),
        references: ready.wit.references.clone(),
    })
    .ok()?;
    let stored = pushed
        .stored
        .as_ref()
        .filter(|s| s.remote_id == pushed.remote_id)
        .and_then(|s| serde_json::to_string(s).ok());
    Some(PushedCopy {
        last_pushed,
        stored,
    })
}

/// Tries spent in one chunk: per record (passing failures), and rate-limit waits of the run.
#[derive(Default)]
struct Tries {
    per_record: std::collections::HashMap<String, u32>,
    rate_waits: u32,
}

/// Records of one wave to send again, and how long to wait first.
#[derive(Default)]
struct Again {
    records: Vec<BssRecord>,
    wait: Duration,
    hit_rate_limit: bool,
}

/// What one record's answer means for the run.
enum Verdict {
    Outcome(Outcome),
    Again { after: Duration, rate_limited: bool },
}

/// A wave where nothing can go first. A record whose chain of references leads back to itself
/// is in a cycle and fails; one whose chain ends at a record refused in this run (queued for a
/// reference of its own) is queued to wait for that record instead.
fn stuck_records(postponed: Vec<(BssRecord, RecordReference)>) -> Vec<(String, Outcome)> {
    let targets: std::collections::HashMap<String, String> = postponed
        .iter()
        .map(|(record, reference)| (record.id.clone(), reference.bss_id.clone()))
        .collect();
    let in_cycle = |id: &str| {
        let mut at = targets.get(id);
        for _ in 0..targets.len() {
            match at {
                Some(next) if next == id => return true,
                Some(next) => at = targets.get(next),
                None => return false,
            }
        }
        false
    };
    postponed
        .into_iter()
        .map(|(record, reference)| {
            let json = records::to_json(Some(&record.id), &record.data).to_string();
            let outcome = if in_cycle(&record.id) {
                Outcome::Failed {
                    message: format!(
                        "{} refers to {} {:?}, which refers back to it (directly or through others); push one of them without the reference first",
                        reference.field,
                        reference.entity.as_str(),
                        reference.bss_id
                    ),
                    retryable: false,
                    outcome_unknown: true,
                    record: json,
                    waits: None,
                    label: None,
                }
            } else {
                Outcome::Failed {
                    message: format!(
                        "{} refers to {} {:?}, which could not be pushed in this run; it is retried once that {} is pushed",
                        reference.field,
                        reference.entity.as_str(),
                        reference.bss_id,
                        reference.entity.as_str()
                    ),
                    retryable: true,
                    outcome_unknown: true,
                    record: json,
                    waits: Some((reference.entity, reference.bss_id.clone())),
                    label: None,
                }
            };
            (record.id, outcome)
        })
        .collect()
}

/// A record's references as the id map resolves them.
#[derive(Default)]
pub struct Resolved {
    pub references: Vec<wit::Reference>,
    /// The first reference with no remote id that the record cannot go without.
    pub missing: Option<RecordReference>,
    /// A reference left out for now (a cycle), with the message saying so and the record it
    /// waits for.
    pub waiting: Option<(String, (Entity, String))>,
}

pub(super) fn enabled(
    options: &[(Entity, Direction, Operations)],
    entity: Entity,
    direction: Direction,
) -> Operations {
    options
        .iter()
        .find(|(e, d, _)| *e == entity && *d == direction)
        .map(|(_, _, o)| *o)
        .unwrap_or_default()
}

impl<'a, C: SyncConnector> Engine<'a, C> {
    /// An engine for one run of the instance `context` grants: paced by its options, with no
    /// progress callback (set `progress` to have one).
    pub fn new(
        store: &'a dyn Store,
        connector: &'a C,
        context: Arc<InstanceContext>,
        lease: Option<&'a RunLease>,
        trigger: RunTrigger,
    ) -> Self {
        Engine {
            store,
            connector,
            pacing: Pacing::for_context(&context),
            context,
            progress: None,
            lease,
            trigger,
        }
    }

    pub(super) fn instance(&self) -> &str {
        self.context.instance()
    }

    /// Pushes records of one entity. `kind` is [`RunKind::Push`] or [`RunKind::Retry`].
    pub async fn push(
        &self,
        entity: Entity,
        records: Vec<BssRecord>,
        invalid: Vec<InvalidRecord>,
        dry_run: bool,
        kind: RunKind,
    ) -> Result<PushReport, SyncError> {
        let total = records.len() + invalid.len();
        self.push_chunks(
            entity,
            std::iter::once(Ok((records, invalid))),
            total,
            dry_run,
            kind,
        )
        .await
    }

    /// Pushes records of one entity read chunk by chunk, as one run. `total` is the number of
    /// records when known (for progress), else 0. A chunk that cannot be read ends the run
    /// after what came before was recorded.
    pub async fn push_chunks(
        &self,
        entity: Entity,
        chunks: impl Iterator<Item = Result<Chunk, String>>,
        total: usize,
        dry_run: bool,
        kind: RunKind,
    ) -> Result<PushReport, SyncError> {
        let instance = self.instance().to_string();
        let options = self.store.sync_options(&instance)?;
        let ops = enabled(&options, entity, Direction::Push);
        if !ops.create && !ops.update {
            return Err(SyncError::NotEnabled {
                instance,
                entity: entity.as_str(),
                direction: "push",
            });
        }
        let run = self.store.start_run(
            &instance,
            kind,
            self.trigger,
            Some(entity),
            dry_run,
            self.lease.map(RunLease::owner),
        )?;
        let mut report = PushReport {
            run,
            dry_run,
            ..PushReport::default()
        };
        let result = async {
            for chunk in chunks {
                let (records, invalid) = chunk.map_err(|e| SyncError::Input(e, run))?;
                self.push_chunk(
                    run,
                    entity,
                    ops,
                    records,
                    invalid,
                    dry_run,
                    total,
                    &mut report,
                )
                .await?;
            }
            Ok::<(), SyncError>(())
        }
        .await;
        match result {
            Ok(()) => {
                self.store.finish_run(run, RunStatus::Done, None, 0)?;
                Ok(report)
            }
            Err(error) => {
                // Best effort: the run's outcomes so far are recorded; a store that fails here
                // leaves the run to be shown as interrupted once its lease lapses.
                let _ = self
                    .store
                    .finish_run(run, RunStatus::Failed, Some(&error.to_string()), 0);
                Err(error)
            }
        }
    }

    /// Pushes one chunk of a run in four steps: refuse what cannot be sent ([`Self::refuse_up_front`]),
    /// resolve references into waves ([`Self::prepare`]; records that reference records of this
    /// run go in a later wave, and a wave where nothing can go first is settled by
    /// [`stuck_records`]), send each wave in batches ([`Self::send_batch`]), and classify each
    /// answer ([`Self::classify`]) into an outcome or another try after a wait.
    #[allow(clippy::too_many_arguments)]
    async fn push_chunk(
        &self,
        run: i64,
        entity: Entity,
        ops: Operations,
        records: Vec<BssRecord>,
        invalid: Vec<InvalidRecord>,
        dry_run: bool,
        total: usize,
        report: &mut PushReport,
    ) -> Result<(), SyncError> {
        let mut pending = self.refuse_up_front(run, entity, records, invalid, report)?;
        let mut tries = Tries::default();
        while !pending.is_empty() {
            let in_run: BTreeSet<String> = pending.iter().map(|r| r.id.clone()).collect();
            let (ready, mut refused, postponed) = self.prepare(entity, ops, pending, &in_run)?;
            if ready.is_empty() && !postponed.is_empty() {
                refused.extend(stuck_records(postponed));
                self.record(run, entity, &refused, report)?;
                break;
            }
            if !refused.is_empty() {
                self.record(run, entity, &refused, report)?;
            }
            let mut again = Again::default();
            for batch in ready.chunks(self.pacing.batch_size) {
                let results = self.send_batch(run, entity, batch, dry_run).await?;
                let mut outcomes = Vec::new();
                for (ready, result) in batch.iter().zip(results) {
                    match self.classify(ready, result, dry_run, &mut tries) {
                        Verdict::Outcome(outcome) => {
                            outcomes.push((ready.record.id.clone(), outcome))
                        }
                        Verdict::Again {
                            after,
                            rate_limited,
                        } => {
                            again.wait = again.wait.max(after);
                            again.hit_rate_limit |= rate_limited;
                            again.records.push(ready.record.clone());
                        }
                    }
                }
                self.refuse_taken_remote_ids(entity, batch, &mut outcomes)?;
                self.record(run, entity, &outcomes, report)?;
                if let Some(progress) = self.progress {
                    progress(report.total(), total);
                }
            }
            if !again.records.is_empty() {
                tokio::time::sleep(again.wait).await;
                if again.hit_rate_limit {
                    tries.rate_waits += 1;
                }
            }
            pending = again.records;
            pending.extend(postponed.into_iter().map(|(record, _)| record));
        }
        Ok(())
    }

    /// Step 1: records that cannot be sent at all (ids that differ only in case, lines of the
    /// file that are not records) get their outcome now; the others are returned.
    fn refuse_up_front(
        &self,
        run: i64,
        entity: Entity,
        records: Vec<BssRecord>,
        invalid: Vec<InvalidRecord>,
        report: &mut PushReport,
    ) -> Result<Vec<BssRecord>, SyncError> {
        let (records, colliding) = self.refuse_case_collisions(entity, records)?;
        if !colliding.is_empty() {
            self.record(run, entity, &colliding, report)?;
        }
        if !invalid.is_empty() {
            let outcomes: Vec<(String, Outcome)> = invalid
                .iter()
                .map(|i| {
                    let id = i.id.clone().unwrap_or_else(|| format!("#{}", i.position));
                    (
                        id,
                        Outcome::Invalid {
                            message: format!("record {} of the file: {}", i.position, i.message),
                        },
                    )
                })
                .collect();
            self.record(run, entity, &outcomes, report)?;
        }
        Ok(records)
    }

    /// Step 3: sends one batch. Creates are marked pending just before they are sent, batch by
    /// batch: a crash leaves pending only what may have been created, so the next run looks up
    /// no more than that. A lost lease stops the run before anything more is sent.
    async fn send_batch(
        &self,
        run: i64,
        entity: Entity,
        batch: &[Ready],
        dry_run: bool,
    ) -> Result<Vec<Result<Pushed, Failure>>, SyncError> {
        if self.lease.is_some_and(RunLease::is_lost) {
            return Err(SyncError::LeaseLost);
        }
        if !dry_run {
            let creates: Vec<String> = batch
                .iter()
                .filter(|r| r.wit.remote_id.is_none())
                .map(|r| r.record.id.clone())
                .collect();
            self.store
                .mark_pending(run, self.instance(), entity, &creates)?;
        }
        let items: Vec<PushItem> = batch
            .iter()
            .map(|r| PushItem {
                record: r.wit.clone(),
                last_pushed: r.last_pushed.clone(),
            })
            .collect();
        Ok(self.send(entity, &items, dry_run).await)
    }

    /// Step 4: what one record's answer means: an outcome to record, or another try in this run
    /// after a wait (a rate limit, or a passing failure with tries left).
    fn classify(
        &self,
        ready: &Ready,
        result: Result<Pushed, Failure>,
        dry_run: bool,
        tries: &mut Tries,
    ) -> Verdict {
        let json = records::to_json(Some(&ready.record.id), &ready.record.data).to_string();
        let pushed = match result {
            Ok(pushed) => pushed,
            Err(failure) => return self.classify_failure(ready, failure, json, tries),
        };
        if dry_run {
            let kind = match pushed.change {
                Change::Created => WouldDo::Create,
                Change::Updated => WouldDo::Update,
                Change::Unchanged => WouldDo::Nothing,
                Change::Held => WouldDo::Hold,
            };
            return Verdict::Outcome(Outcome::DryRun {
                kind,
                remote_id: ready.wit.remote_id.clone(),
            });
        }
        if let Some(problem) = remote_id_problem(&pushed.remote_id) {
            return Verdict::Outcome(Outcome::Failed {
                message: format!(
                    "the connector reported success with an unusable remote id: {problem}"
                ),
                retryable: false,
                outcome_unknown: true,
                record: json,
                waits: None,
                label: None,
            });
        }
        if pushed.change == Change::Held {
            return Verdict::Outcome(Outcome::Held {
                message: self.context.redactor().bounded(&format!(
                    "held for review (host.conflicts=report): the BSS and the remote both changed {} since the last push; nothing was written",
                    said_values(&pushed.overwritten)
                )),
            });
        }
        // A success without a create for a record the id map had no remote id for: the
        // connector found it (a lost answer, or a record that provably carries this one's key)
        // and linked it.
        let kind = match pushed.change {
            Change::Created => Applied::Created,
            _ if ready.wit.remote_id.is_none() => Applied::Reconciled,
            Change::Updated => Applied::Updated,
            Change::Unchanged | Change::Held => Applied::Unchanged,
        };
        let waiting = ready.waiting.clone().map(|(message, waits)| Waiting {
            message,
            record: json,
            waits,
        });
        let mut said: Vec<String> = pushed
            .warnings
            .iter()
            .take(10)
            .map(|w| crate::capabilities::log::cap(w, 200).into_owned())
            .collect();
        if !pushed.overwritten.is_empty() {
            said.insert(
                0,
                format!(
                    "overwrote remote values: {}",
                    said_values(&pushed.overwritten)
                ),
            );
        }
        let note = (!said.is_empty()).then(|| self.context.redactor().bounded(&said.join("; ")));
        Verdict::Outcome(Outcome::Done {
            kind,
            copy: pushed_copy(ready, &pushed),
            remote_id: pushed.remote_id,
            waiting,
            note,
        })
    }

    /// A failed record: another try when the failure passes and tries are left, else skipped or
    /// failed (queued when retryable).
    fn classify_failure(
        &self,
        ready: &Ready,
        failure: Failure,
        json: String,
        tries: &mut Tries,
    ) -> Verdict {
        // A rate limit says nothing about the record: it waits as long as the remote asks, up to
        // a bound per run. Other passing failures count against the record's own tries.
        let rate_limited = matches!(
            failure,
            Failure::Connector(ConnectorError::RateLimited(_))
                | Failure::Batch(ConnectorError::RateLimited(_))
        );
        let tried = tries.per_record.entry(ready.record.id.clone()).or_insert(0);
        if !rate_limited {
            *tried += 1;
        }
        // A wait longer than the instance allows is not waited for: the record goes to the retry
        // queue and the run goes on.
        let too_long = self.too_long_a_wait(&failure);
        let more = if rate_limited {
            tries.rate_waits < self.pacing.max_rate_limit_waits && too_long.is_none()
        } else {
            *tried < self.pacing.max_attempts
        };
        if let (Some(after), true) = (retry_in_run(&failure), more) {
            return Verdict::Again {
                after: after.unwrap_or_else(|| self.pacing.backoff(*tried)),
                rate_limited,
            };
        }
        if let Some(reason) = failure.skipped() {
            return Verdict::Outcome(Outcome::Skipped {
                message: self.context.redactor().bounded(&reason),
            });
        }
        let label = failure.identity_conflict();
        let said = match &too_long {
            Some(note) => format!("{}; {note}", failure.message()),
            None => failure.message(),
        };
        Verdict::Outcome(Outcome::Failed {
            // A connector's words may carry a secret it guessed: never store one.
            message: self.context.redactor().bounded(&said),
            retryable: failure.retryable(),
            // An identity conflict keeps any pending mark: what a lost create made may be among
            // the candidates; so does any failure of a record sent as maybe-created (an earlier
            // send of it, in this run or another, may have created it).
            outcome_unknown: failure.outcome_unknown()
                || label.is_some()
                || ready.wit.maybe_created,
            record: json,
            waits: None,
            label,
        })
    }

    /// A record the connector found (rather than created) under a remote id that the id map
    /// already gives another BSS record, or any record answered with a remote id another record
    /// of the same batch got, is not linked: one remote record is one BSS record. It fails as
    /// `ambiguous`, held for an operator's `link`, and keeps its pending mark.
    fn refuse_taken_remote_ids(
        &self,
        entity: Entity,
        batch: &[Ready],
        outcomes: &mut [(String, Outcome)],
    ) -> Result<(), SyncError> {
        let mut seen: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        for (bss_id, outcome) in outcomes.iter_mut() {
            let Outcome::Done {
                kind, remote_id, ..
            } = outcome
            else {
                continue;
            };
            // Another record of this batch already came back with the same remote id.
            let twin = seen.get(remote_id.as_str()).cloned();
            seen.entry(remote_id.clone())
                .or_insert_with(|| bss_id.clone());
            let Some(ready) = batch
                .iter()
                .find(|r| r.record.id == *bss_id && r.wit.remote_id.is_none())
            else {
                continue;
            };
            let holder = match twin {
                Some(twin) => twin,
                None if *kind == Applied::Reconciled => {
                    let holders = self.store.bss_ids(
                        self.instance(),
                        entity,
                        std::slice::from_ref(remote_id),
                    )?;
                    match holders.get(remote_id.as_str()).filter(|h| *h != bss_id) {
                        Some(holder) => holder.clone(),
                        None => continue,
                    }
                }
                None => continue,
            };
            let record = records::to_json(Some(&ready.record.id), &ready.record.data).to_string();
            *outcome = Outcome::Failed {
                message: format!(
                    "ambiguous: the connector found remote {} {remote_id} for this record, but it is already linked to BSS id {holder:?}; link the right remote record with bss-host link {} {} {bss_id:?} REMOTE_ID",
                    entity.as_str(),
                    self.instance(),
                    entity.as_str()
                ),
                retryable: false,
                outcome_unknown: true,
                record,
                waits: None,
                label: Some("ambiguous"),
            };
        }
        Ok(())
    }

    /// Says so when a rate limit asks for a longer wait than `host.max-retry-after`.
    pub(super) fn too_long_a_wait(&self, failure: &Failure) -> Option<String> {
        let cap = self.context.options().max_retry_after;
        match failure {
            Failure::Connector(ConnectorError::RateLimited(Some(ms)))
            | Failure::Batch(ConnectorError::RateLimited(Some(ms)))
                if Duration::from_millis(*ms) > cap =>
            {
                Some(format!(
                    "the remote asked to wait {} s, longer than host.max-retry-after ({} s), so the run does not wait for it (a record goes to the retry queue)",
                    ms / 1000,
                    cap.as_secs()
                ))
            }
            _ => None,
        }
    }

    /// Splits off records whose id differs only in case from one already in the id map: the
    /// remote (ConnectWise identifiers are case-insensitive) would take them for the same record.
    fn refuse_case_collisions(
        &self,
        entity: Entity,
        records: Vec<BssRecord>,
    ) -> Result<(Vec<BssRecord>, Outcomes), SyncError> {
        let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        let collisions = self.store.case_collisions(self.instance(), entity, &ids)?;
        if collisions.is_empty() {
            return Ok((records, Vec::new()));
        }
        let mut kept = Vec::new();
        let mut refused = Vec::new();
        for record in records {
            match collisions.get(&record.id) {
                Some(other) => refused.push((
                    record.id.clone(),
                    Outcome::Invalid {
                        message: format!(
                            "id {:?} differs only in case from {} {other:?}, already synced; the remote treats them as one record, so give it an id of its own",
                            record.id,
                            entity.as_str()
                        ),
                    },
                )),
                None => kept.push(record),
            }
        }
        Ok((kept, refused))
    }

    fn record(
        &self,
        run: i64,
        entity: Entity,
        outcomes: &[(String, Outcome)],
        report: &mut PushReport,
    ) -> Result<(), SyncError> {
        self.store
            .record_outcomes(run, self.instance(), entity, outcomes)?;
        for (id, outcome) in outcomes {
            report.add(id, outcome);
            crate::metrics::records(self.instance(), entity.as_str(), outcome.label(), 1);
        }
        Ok(())
    }

    /// The remote ids of the records `record` references, as the id map knows them.
    pub fn resolve(&self, record: &BssRecord) -> Result<Resolved, SyncError> {
        let mut resolved = Resolved::default();
        for reference in records::references(&record.data) {
            let known = self.store.id_map(
                self.instance(),
                reference.entity,
                std::slice::from_ref(&reference.bss_id),
            )?;
            match known
                .get(&reference.bss_id)
                .and_then(|e| e.remote_id.clone())
            {
                Some(remote_id) => resolved.references.push(wit::Reference {
                    field: reference.field,
                    entity: reference.entity.into(),
                    bss_id: reference.bss_id,
                    remote_id,
                }),
                None if reference.deferrable => {
                    resolved.waiting = Some((
                        format!(
                            "sent without {}: {} {:?} has not been pushed yet; it is sent again once it has",
                            reference.field,
                            reference.entity.as_str(),
                            reference.bss_id
                        ),
                        (reference.entity, reference.bss_id),
                    ))
                }
                None => {
                    resolved.missing = Some(reference);
                    break;
                }
            }
        }
        Ok(resolved)
    }

    /// Asks the connector, in a dry run, to update `record` as remote record `remote_id`: an
    /// answer other than an error shows the remote record exists (and what an update would do).
    pub async fn probe(
        &self,
        entity: Entity,
        record: &BssRecord,
        remote_id: &str,
    ) -> Result<&'static str, String> {
        let resolved = self.resolve(record).map_err(|e| e.to_string())?;
        if let Some(missing) = resolved.missing {
            return Err(format!(
                "{} refers to {} {:?}, which has not been pushed yet; push it first",
                missing.field,
                missing.entity.as_str(),
                missing.bss_id
            ));
        }
        let wit = wit::Record {
            entity: entity.into(),
            bss_id: record.id.clone(),
            remote_id: Some(remote_id.to_string()),
            maybe_created: false,
            data: record.data.clone(),
            references: resolved.references,
        };
        let item = PushItem {
            record: wit,
            last_pushed: None,
        };
        match self.send(entity, &[item], true).await.pop() {
            Some(Ok(pushed)) => Ok(match pushed.change {
                Change::Unchanged => "unchanged",
                _ => "would-update",
            }),
            Some(Err(failure)) => Err(self.context.redactor().bounded(&failure.message())),
            None => Err("the connector gave no answer".into()),
        }
    }

    /// Looks records up in the id map and resolves their references; returns what can be sent
    /// and the outcomes of what cannot.
    #[allow(clippy::type_complexity)]
    fn prepare(
        &self,
        entity: Entity,
        ops: Operations,
        records: Vec<BssRecord>,
        in_run: &BTreeSet<String>,
    ) -> Result<
        (
            Vec<Ready>,
            Vec<(String, Outcome)>,
            Vec<(BssRecord, RecordReference)>,
        ),
        SyncError,
    > {
        let instance = self.instance();
        let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        let map = self.store.id_map(instance, entity, &ids)?;
        let mut ready = Vec::new();
        let mut refused = Vec::new();
        let mut postponed = Vec::new();
        for record in records {
            let entry = map.get(&record.id);
            let remote_id = entry.and_then(|e| e.remote_id.clone());
            let pending = entry.is_some_and(|e| e.pending);
            let json = || records::to_json(Some(&record.id), &record.data).to_string();
            let (allowed, operation) = if remote_id.is_some() {
                (ops.update, "update")
            } else {
                (ops.create, "create")
            };
            if !allowed {
                let message = format!(
                    "not synchronised: {operation} of {} by push is not enabled for instance {instance} (sync options)",
                    entity.as_str()
                );
                refused.push((record.id.clone(), Outcome::Skipped { message }));
                continue;
            }
            let Resolved {
                references,
                mut missing,
                waiting,
            } = self.resolve(&record)?;
            if let Some(reference) = missing.take_if(|r| {
                r.entity == entity && r.bss_id != record.id && in_run.contains(&r.bss_id)
            }) {
                postponed.push((record, reference));
                continue;
            }
            if let Some(reference) = missing {
                let message = format!(
                    "{} refers to {} {:?}, which has not been pushed yet; it is retried once that {} is pushed",
                    reference.field,
                    reference.entity.as_str(),
                    reference.bss_id,
                    reference.entity.as_str()
                );
                refused.push((
                    record.id.clone(),
                    Outcome::Failed {
                        message,
                        retryable: true,
                        outcome_unknown: pending,
                        record: json(),
                        waits: Some((reference.entity, reference.bss_id.clone())),
                        label: None,
                    },
                ));
                continue;
            }
            // A base that no longer reads (written by another build) is no base: the update
            // then removes nothing, which is the safe side.
            let last_pushed = remote_id
                .as_ref()
                .and(entry.and_then(|e| e.last_pushed.as_deref()))
                .and_then(|json| serde_json::from_str::<LastPushed>(json).ok());
            let wit = wit::Record {
                entity: entity.into(),
                bss_id: record.id.clone(),
                maybe_created: remote_id.is_none() && pending,
                remote_id,
                data: record.data.clone(),
                references,
            };
            ready.push(Ready {
                record,
                wit,
                last_pushed,
                waiting,
            });
        }
        Ok((ready, refused, postponed))
    }

    /// One connector call; every record gets a result, whatever the connector did.
    async fn send(
        &self,
        entity: Entity,
        records: &[PushItem],
        dry_run: bool,
    ) -> Vec<Result<Pushed, Failure>> {
        let all = |make: &dyn Fn() -> Failure| records.iter().map(|_| Err(make())).collect();
        let options = PushOptions {
            dry_run,
            conflicts: if self.context.options().conflicts_held {
                ConflictPolicy::Report
            } else {
                ConflictPolicy::BssWins
            },
        };
        match self
            .connector
            .push(&self.context, entity, records, options)
            .await
        {
            Err(call) => {
                let message = call.to_string();
                all(&|| Failure::Call(message.clone()))
            }
            Ok(Err(error)) => all(&|| Failure::Batch(error.clone())),
            Ok(Ok(results)) if results.len() != records.len() => {
                let message = format!(
                    "the connector answered {} outcomes for {} records, so which happened is unknown",
                    results.len(),
                    records.len()
                );
                all(&|| Failure::Call(message.clone()))
            }
            Ok(Ok(results)) => results
                .into_iter()
                .map(|r| r.map_err(Failure::Connector))
                .collect(),
        }
    }

    /// Pulls every record of `entity` changed since the cursor (or `since`), writing one JSON
    /// object per line to `out`; the cursor moves only after all of them are written.
    pub async fn pull(
        &self,
        entity: Entity,
        from: PullFrom,
        out: &mut (dyn Write + Send),
    ) -> Result<PullReport, SyncError> {
        let instance = self.instance().to_string();
        let options = self.store.sync_options(&instance)?;
        let ops = enabled(&options, entity, Direction::Pull);
        if !ops.create && !ops.update {
            return Err(SyncError::NotEnabled {
                instance,
                entity: entity.as_str(),
                direction: "pull",
            });
        }
        let run = self.store.start_run(
            &instance,
            RunKind::Pull,
            self.trigger,
            Some(entity),
            false,
            self.lease.map(RunLease::owner),
        )?;
        let result = self.pull_run(run, entity, from, out).await;
        if let Err(error) = &result
            && !matches!(error, SyncError::Pull { .. })
        {
            // Best effort, as for a push: otherwise the run shows as interrupted once its lease
            // lapses, which is less precise but not wrong.
            let _ = self
                .store
                .finish_run(run, RunStatus::Failed, Some(&error.to_string()), 0);
        }
        result
    }

    async fn pull_run(
        &self,
        run: i64,
        entity: Entity,
        PullFrom {
            since,
            include_echoes,
            feed,
        }: PullFrom,
        out: &mut (dyn Write + Send),
    ) -> Result<PullReport, SyncError> {
        let instance = self.instance().to_string();
        let stored = self.store.cursor(&instance, entity)?;
        let from = since.clone().or(stored.stamp.clone());
        let folded_keys: BTreeSet<String> = if since.is_none() {
            stored.delivered_at_stamp.iter().cloned().collect()
        } else {
            BTreeSet::new()
        };
        let mut report = PullReport {
            run,
            ..PullReport::default()
        };
        let mut newest = from.clone();
        let mut at_newest: BTreeSet<String> = folded_keys.clone();
        let mut token: Option<String> = None;
        let mut fed: Vec<NewFeedEntry> = Vec::new();
        loop {
            if self.lease.is_some_and(RunLease::is_lost) {
                return Err(SyncError::LeaseLost);
            }
            let page = match self
                .pull_page(entity, from.as_deref(), token.as_deref())
                .await
            {
                Ok(page) => page,
                Err(reason) => {
                    // The connector's words, stored and printed: redacted and capped.
                    let reason = self.context.redactor().bounded(&reason);
                    self.store.finish_run(
                        run,
                        RunStatus::Failed,
                        Some(&reason),
                        report.delivered as i64,
                    )?;
                    return Err(SyncError::Pull {
                        entity: entity.as_str(),
                        reason,
                    });
                }
            };
            report.pages += 1;
            let now = crate::time::now_unix();
            let mut page_records = Vec::with_capacity(page.records.len());
            for record in page.records {
                let Some(problem) = pulled_problem(&record, entity, now) else {
                    page_records.push(record);
                    continue;
                };
                report.refused += 1;
                if report.refusals.len() < 1_000 {
                    let redactor = self.context.redactor();
                    report.refusals.push(ReportItem {
                        // Redacted whole, then cut: a cut could leave part of a value unmatched.
                        id: shortened(&redactor.redact(&record.remote_id)),
                        outcome: "refused".into(),
                        remote_id: None,
                        message: Some(redactor.bounded(&problem)),
                    });
                }
            }
            let remote_ids: Vec<String> =
                page_records.iter().map(|r| r.remote_id.clone()).collect();
            let known = self.store.bss_ids(&instance, entity, &remote_ids)?;
            let copies = if include_echoes {
                Default::default()
            } else {
                self.store.stored_copies(&instance, entity, &remote_ids)?
            };
            for mut pulled in page_records {
                let key = format!("{}@{}", pulled.remote_id, pulled.last_updated);
                if from.as_deref() == Some(pulled.last_updated.as_str())
                    && folded_keys.contains(&key)
                {
                    report.folded += 1;
                    continue;
                }
                let echo = copies
                    .get(&pulled.remote_id)
                    .is_some_and(|copy| is_echo(&pulled, copy));
                if echo {
                    report.echoes += 1;
                }
                let stamp_valid = crate::time::parse_rfc3339(&pulled.last_updated).is_some();
                if echo {
                    // Not a change, but seen: the cursor moves past it like any record.
                    if stamp_valid {
                        advance(&mut newest, &mut at_newest, &pulled.last_updated, key);
                    }
                    continue;
                }
                let mut warnings = pulled.warnings.clone();
                if !stamp_valid {
                    warnings.push(format!(
                        "last-updated {:?} is not a stamp of the form 2026-01-31T12:00:00Z; the record is delivered but does not move the cursor",
                        shortened(&pulled.last_updated)
                    ));
                }
                let bss_id = known.get(&pulled.remote_id).map(String::as_str);
                let line = self.pulled_line(&mut pulled, bss_id, warnings)?;
                writeln!(out, "{line}").map_err(SyncError::Output)?;
                if feed {
                    fed.push(NewFeedEntry {
                        entity,
                        remote_id: pulled.remote_id.clone(),
                        version: pulled.last_updated.clone(),
                        change: "changed".into(),
                        record: line.to_string(),
                    });
                }
                report.delivered += 1;
                if stamp_valid {
                    advance(&mut newest, &mut at_newest, &pulled.last_updated, key);
                }
            }
            token = page.next_page_token;
            if token.is_none() {
                break;
            }
            let options = self.context.options();
            let cap = if report.pages >= options.max_pull_pages as usize {
                Some(format!(
                    "{} pages (host.max-pull-pages)",
                    options.max_pull_pages
                ))
            } else if report.delivered >= options.max_pull_records as usize {
                Some(format!(
                    "{} records (host.max-pull-records)",
                    options.max_pull_records
                ))
            } else {
                None
            };
            if let Some(cap) = cap {
                // Pages come in id order, not stamp order: a cursor moved to the newest stamp seen
                // so far could skip older changes on pages not read. It stays where it was.
                let reason = format!(
                    "stopped after {cap} with more pages to read; the cursor was not moved, so the next pull starts from the same point (raise the option if the backlog is real)"
                );
                out.flush().map_err(SyncError::Output)?;
                report.fed = self.store.append_feed(&instance, Some(run), &fed)?;
                crate::metrics::records(
                    &instance,
                    entity.as_str(),
                    "pulled",
                    report.delivered as u64,
                );
                self.store.finish_run(
                    run,
                    RunStatus::Stopped,
                    Some(&reason),
                    report.delivered as i64,
                )?;
                report.cursor = from;
                report.stopped = Some(reason);
                return Ok(report);
            }
        }
        out.flush().map_err(SyncError::Output)?;
        // Before the cursor: a crash between the two pulls the same versions again, which the
        // feed does not add twice.
        report.fed = self.store.append_feed(&instance, Some(run), &fed)?;
        crate::metrics::records(
            &instance,
            entity.as_str(),
            "pulled",
            report.delivered as u64,
        );
        let cursor = Cursor {
            stamp: newest.clone(),
            delivered_at_stamp: at_newest.into_iter().collect(),
        };
        self.store
            .commit_pull(run, &instance, entity, &cursor, report.delivered as i64)?;
        if report.refused > 0 {
            let message = format!(
                "{} record(s) refused (not delivered): {}",
                report.refused,
                report
                    .refusals
                    .iter()
                    .take(3)
                    .map(|r| format!("{}: {}", r.id, r.message.as_deref().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            self.store.finish_run(
                run,
                RunStatus::Done,
                Some(&message),
                report.delivered as i64,
            )?;
        }
        report.cursor = newest;
        Ok(report)
    }

    /// A pulled record as a line of a pulled file: its references resolved to BSS ids through
    /// the id map (a warning for each the BSS does not know), with its remote id, stamp and
    /// warnings.
    pub(super) fn pulled_line(
        &self,
        pulled: &mut crate::contract::bindings::types::PulledRecord,
        bss_id: Option<&str>,
        mut warnings: Vec<String>,
    ) -> Result<serde_json::Value, SyncError> {
        for reference in &pulled.references {
            let target: Entity = reference.entity.into();
            let found = self.store.bss_ids(
                self.instance(),
                target,
                std::slice::from_ref(&reference.remote_id),
            )?;
            match found.get(&reference.remote_id) {
                Some(bss) => records::set_reference(&mut pulled.data, &reference.field, bss),
                None => warnings.push(format!(
                    "{} is {} {} in the remote, which the BSS does not know",
                    reference.field,
                    target.as_str(),
                    reference.remote_id
                )),
            }
        }
        let mut line = records::to_json(bss_id, &pulled.data);
        line["remote-id"] = serde_json::json!(pulled.remote_id);
        line["last-updated"] = serde_json::json!(pulled.last_updated);
        if !warnings.is_empty() {
            line["warnings"] = serde_json::json!(warnings);
        }
        Ok(line)
    }

    pub(super) async fn pull_page(
        &self,
        entity: Entity,
        since: Option<&str>,
        token: Option<&str>,
    ) -> Result<crate::contract::bindings::connector::PullPage, String> {
        self.in_run(|| async {
            match self
                .connector
                .pull(&self.context, entity, since, token)
                .await
            {
                Ok(Ok(page)) => Ok(page),
                Ok(Err(error)) => Err(Failure::Connector(error)),
                Err(call) => Err(Failure::Call(call.to_string())),
            }
        })
        .await
        .map_err(|failure| match self.too_long_a_wait(&failure) {
            Some(note) => format!("{}; {note}", failure.message()),
            None => failure.message(),
        })
    }

    /// Runs one connector call until it answers, retrying within the run: a rate limit or a
    /// transient failure waits (as long as the remote said, or the pacing's backoff) and tries
    /// again, up to `pacing.max_attempts`; a wait too long for the run, or any other failure, is
    /// the answer.
    pub(super) async fn in_run<T, Fut>(&self, mut once: impl FnMut() -> Fut) -> Result<T, Failure>
    where
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match once().await {
                Ok(answer) => return Ok(answer),
                Err(failure) => failure,
            };
            if self.too_long_a_wait(&failure).is_some() {
                return Err(failure);
            }
            match retry_in_run(&failure) {
                Some(after) if attempt < self.pacing.max_attempts => {
                    tokio::time::sleep(after.unwrap_or_else(|| self.pacing.backoff(attempt))).await;
                }
                _ => return Err(failure),
            }
        }
    }
}
