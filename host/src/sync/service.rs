//! Sync runs of an instance as the command and the API start them: read a record file and push
//! it, pull to a writer, retry the queue. Each builds the instance's context (refusing a
//! disabled instance), takes the run lease of the instance and entity (waiting for, or refused
//! by, a run already holding it), and runs the engine on the connector version serving it. A push
//! that creates records others were queued for sends those queued records straight after, as
//! runs of their own, so references settle without a manual `retry`.

use std::io::Write;
use std::sync::Arc;

use serde::Serialize;

use super::engine::{Chunk, Engine, Progress, PullFrom, PullReport, PushReport};
use super::lease::{LeaseError, RunLease, WaitPolicy};
use super::records::{self, RecordChecker, RecordReader};
use super::remote_changes::{EventIn, EventsReport, ReconcileReport, RemoveReport};
use crate::capabilities::context::InstanceContext;
use crate::contract::manifest::Entity;
use crate::instances::{InstanceError, Instances};
use crate::registry::Loaded;
use crate::store::{QueueItem, RunKind, RunTrigger, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Instance(#[from] InstanceError),
    #[error(transparent)]
    Sync(#[from] super::SyncError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Busy(#[from] LeaseError),
}

/// Who runs a sync and what it does when the instance and entity are busy.
#[derive(Clone, Copy)]
pub struct RunBy<'a> {
    /// The lease owner (see [`super::lease::new_owner`]).
    pub owner: &'a str,
    /// Said to whoever waits for this run (`bss-host push, pid 4711`).
    pub who: &'a str,
    /// Recorded on the runs it starts.
    pub trigger: RunTrigger,
    pub policy: WaitPolicy<'a>,
}

/// What a retry run did, per entity.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RetryReport {
    pub claimed: usize,
    pub runs: Vec<(Entity, PushReport)>,
    /// Entities whose queued records were left for later: another run held their lease.
    pub busy: Vec<Entity>,
}

impl RetryReport {
    pub fn all_succeeded(&self) -> bool {
        self.busy.is_empty() && self.runs.iter().all(|(_, r)| r.all_succeeded())
    }
}

/// A push and the runs that followed it to send records that waited for what it created.
#[derive(Debug, Clone, Serialize)]
pub struct PushOutcome {
    #[serde(flatten)]
    pub report: PushReport,
    /// Runs that sent queued records whose references this push created.
    pub settled: Vec<(Entity, PushReport)>,
    /// Why sending the queued records failed, if it did (they stay queued).
    pub settle_error: Option<String>,
}

impl PushOutcome {
    pub fn all_succeeded(&self) -> bool {
        self.report.all_succeeded() && self.settle_error.is_none()
    }
}

/// Parses an entity name as commands and routes write it.
pub fn parse_entity(text: &str) -> Result<Entity, InstanceError> {
    text.parse()
        .map_err(|e: crate::contract::manifest::UnknownEntity| {
            InstanceError::Invalid(vec![("entity".into(), e.to_string())])
        })
}

/// Records per chunk read from a file: large enough for full batches, small enough that memory
/// stays flat.
const CHUNK_RECORDS: usize = 1_000;

/// Reads `input` chunk by chunk into parsed records.
fn chunks<R: std::io::BufRead>(
    entity: Entity,
    input: R,
) -> impl Iterator<Item = Result<Chunk, String>> {
    let mut reader = RecordReader::new(input).peekable();
    let mut checker = RecordChecker::default();
    std::iter::from_fn(move || {
        reader.peek()?;
        let (mut records, mut invalid) = (Vec::new(), Vec::new());
        while records.len() + invalid.len() < CHUNK_RECORDS {
            match reader.next()? {
                Err(message) => return Some(Err(message)),
                Ok(item) => match checker.check(entity, item) {
                    Ok(record) => records.push(record),
                    Err(bad) => invalid.push(bad),
                },
            }
            if reader.peek().is_none() {
                break;
            }
        }
        Some(Ok((records, invalid)))
    })
}

async fn lease(
    instances: &Instances,
    name: &str,
    entity: Entity,
    what: &str,
    by: RunBy<'_>,
) -> Result<RunLease, RunError> {
    Ok(RunLease::acquire(
        instances.store().clone(),
        name,
        entity,
        by.owner,
        &format!("{what} of {} by {}", entity.as_str(), by.who),
        by.policy,
    )
    .await?)
}

/// What one run of an instance and entity needs: the version serving it, the context it is
/// granted (refused when disabled or incomplete), and the entity's lease.
async fn prepared(
    instances: &Instances,
    name: &str,
    entity: Entity,
    what: &str,
    by: RunBy<'_>,
) -> Result<(Loaded, Arc<InstanceContext>, RunLease), RunError> {
    let (loaded, context) = instances.context(name)?;
    let held = lease(instances, name, entity, what, by).await?;
    Ok((loaded, context, held))
}

/// Pushes a record file (or any reader of one) as one run, a chunk at a time.
pub async fn push_reader<R: std::io::BufRead>(
    instances: &Instances,
    name: &str,
    entity: Entity,
    input: R,
    dry_run: bool,
    progress: Option<Progress<'_>>,
    by: RunBy<'_>,
) -> Result<PushOutcome, RunError> {
    let (loaded, context) = instances.context(name)?;
    let held = lease(instances, name, entity, "push", by).await?;
    let mut engine = Engine::new(
        instances.store().as_ref(),
        &loaded.connector,
        context,
        Some(&held),
        by.trigger,
    );
    engine.progress = progress;
    let report = engine
        .push_chunks(entity, chunks(entity, input), 0, dry_run, RunKind::Push)
        .await?;
    let (settled, settle_error) = if dry_run {
        (Vec::new(), None)
    } else {
        // The push is done and recorded whatever happens here: a failure to send what waited
        // for it is said beside its report (those records stay queued), not in its place.
        match settle(instances, name, entity, &held, by).await {
            Ok(settled) => (settled, None),
            Err(error) => (Vec::new(), Some(error.to_string())),
        }
    };
    Ok(PushOutcome {
        report,
        settled,
        settle_error,
    })
}

pub async fn push_text(
    instances: &Instances,
    name: &str,
    entity: Entity,
    text: &str,
    dry_run: bool,
    progress: Option<Progress<'_>>,
    by: RunBy<'_>,
) -> Result<PushOutcome, RunError> {
    push_reader(
        instances,
        name,
        entity,
        text.as_bytes(),
        dry_run,
        progress,
        by,
    )
    .await
}

/// Sends the queued records that waited for records of `created` which now exist, and again for
/// what those create, as `retry` runs. An entity whose lease another run holds is left queued
/// for that run, the next push or the next scheduled retry.
async fn settle(
    instances: &Instances,
    name: &str,
    created: Entity,
    held: &RunLease,
    by: RunBy<'_>,
) -> Result<Vec<(Entity, PushReport)>, RunError> {
    let store = instances.store();
    let mut runs = Vec::new();
    let mut frontier = vec![created];
    // A chain of waits is as long as the entities are many; the bound only stops a loop.
    for _ in 0..Entity::DEPENDENCY_ORDER.len() * 2 {
        let Some(waited_for) = frontier.pop() else {
            break;
        };
        let claimer = format!("{}-settle", by.owner);
        let items = store.claim_settled(name, waited_for, &claimer)?;
        if items.is_empty() {
            continue;
        }
        let mut entities: Vec<Entity> = items.iter().map(|i| i.entity).collect();
        entities.dedup();
        for entity in entities {
            let own;
            let lease = if entity == created {
                held
            } else {
                let refuse = RunBy {
                    policy: WaitPolicy::Refuse,
                    ..by
                };
                match lease(instances, name, entity, "push of queued records", refuse).await {
                    Ok(l) => {
                        own = l;
                        &own
                    }
                    Err(RunError::Busy(_)) => continue,
                    Err(e) => {
                        store.release_queue(name, &claimer)?;
                        return Err(e);
                    }
                }
            };
            // What is held now, read under the lease: a newer version queued since the claim
            // released the claim and is sent by whoever claims it next.
            let group = store.claimed(name, &claimer, entity)?;
            let group: Vec<&QueueItem> = group.iter().collect();
            let report = push_queued(instances, name, entity, &group, lease, by.trigger).await;
            let report = match report {
                Ok(r) => r,
                Err(e) => {
                    store.release_queue(name, &claimer)?;
                    return Err(e);
                }
            };
            if report.created + report.reconciled + report.updated > 0
                && !frontier.contains(&entity)
            {
                frontier.push(entity);
            }
            runs.push((entity, report));
        }
        store.release_queue(name, &claimer)?;
    }
    Ok(runs)
}

/// Pushes claimed queue items of one entity as a `retry` run.
async fn push_queued(
    instances: &Instances,
    name: &str,
    entity: Entity,
    items: &[&QueueItem],
    held: &RunLease,
    trigger: RunTrigger,
) -> Result<PushReport, RunError> {
    let (loaded, context) = instances.context(name)?;
    let engine = Engine::new(
        instances.store().as_ref(),
        &loaded.connector,
        context,
        Some(held),
        trigger,
    );
    let mut batch = Vec::new();
    let mut invalid = Vec::new();
    for (position, item) in items.iter().enumerate() {
        let value: serde_json::Value =
            serde_json::from_str(&item.record).unwrap_or(serde_json::Value::Null);
        match records::parse_record(entity, value) {
            Ok(record) => batch.push(record),
            Err(message) => invalid.push(records::InvalidRecord {
                position: position + 1,
                id: Some(item.bss_id.clone()),
                message,
            }),
        }
    }
    Ok(engine
        .push(entity, batch, invalid, false, RunKind::Retry)
        .await?)
}

pub async fn pull_to(
    instances: &Instances,
    name: &str,
    entity: Entity,
    from: PullFrom,
    out: &mut (dyn Write + Send),
    by: RunBy<'_>,
) -> Result<PullReport, RunError> {
    let (loaded, context, held) = prepared(instances, name, entity, "pull", by).await?;
    let engine = Engine::new(
        instances.store().as_ref(),
        &loaded.connector,
        context,
        Some(&held),
        by.trigger,
    );
    Ok(engine.pull(entity, from, out).await?)
}

/// Applies callback events of one entity (see [`Engine::apply_events`]) under its lease.
pub async fn apply_events(
    instances: &Instances,
    name: &str,
    entity: Entity,
    events: &[EventIn],
    by: RunBy<'_>,
) -> Result<EventsReport, RunError> {
    let (loaded, context, held) = prepared(instances, name, entity, "callback fetch", by).await?;
    let engine = Engine::new(
        instances.store().as_ref(),
        &loaded.connector,
        context,
        Some(&held),
        by.trigger,
    );
    Ok(engine.apply_events(entity, events).await?)
}

/// Finds records of one entity deleted remotely (see [`Engine::reconcile`]) under its lease.
pub async fn reconcile(
    instances: &Instances,
    name: &str,
    entity: Entity,
    by: RunBy<'_>,
) -> Result<ReconcileReport, RunError> {
    let (loaded, context, held) = prepared(instances, name, entity, "reconcile", by).await?;
    let engine = Engine::new(
        instances.store().as_ref(),
        &loaded.connector,
        context,
        Some(&held),
        by.trigger,
    );
    Ok(engine.reconcile(entity).await?)
}

/// Removes the remote records of BSS ids the BSS deleted (see [`Engine::remove`]) under the
/// entity's lease.
pub async fn remove(
    instances: &Instances,
    name: &str,
    entity: Entity,
    bss_ids: &[String],
    dry_run: bool,
    by: RunBy<'_>,
) -> Result<RemoveReport, RunError> {
    if bss_ids.is_empty() {
        return Err(InstanceError::Invalid(vec![(
            "bss-ids".into(),
            "name at least one BSS id to remove".into(),
        )])
        .into());
    }
    let problems: Vec<(String, String)> = bss_ids
        .iter()
        .filter_map(|id| {
            if id.is_empty() {
                return Some("an empty id is not a BSS id".to_string());
            }
            records::check_id(id).err()
        })
        .map(|problem| ("bss-ids".to_string(), problem))
        .collect();
    if !problems.is_empty() {
        return Err(InstanceError::Invalid(problems).into());
    }
    let (loaded, context, held) = prepared(instances, name, entity, "removal", by).await?;
    let engine = Engine::new(
        instances.store().as_ref(),
        &loaded.connector,
        context,
        Some(&held),
        by.trigger,
    );
    Ok(engine.remove(entity, bss_ids, dry_run).await?)
}

/// Retries the instance's queue: claims its items (so a concurrent retry takes none of them),
/// pushes them entity by entity in dependency order under each entity's lease, and releases what
/// it did not settle. An entity whose lease is held (and the policy refuses) is left queued.
pub async fn retry(
    instances: &Instances,
    name: &str,
    by: RunBy<'_>,
) -> Result<RetryReport, RunError> {
    retry_entity(instances, name, None, by).await
}

/// As [`retry`], for the queued records of one entity only (`None`: every entity).
pub async fn retry_entity(
    instances: &Instances,
    name: &str,
    only: Option<Entity>,
    by: RunBy<'_>,
) -> Result<RetryReport, RunError> {
    instances.context(name)?;
    let store = instances.store();
    let claimer = format!("{}-retry", by.owner);
    let claimed = store.claim_queue(name, only, &claimer)?;
    let mut report = RetryReport {
        claimed: claimed
            .iter()
            .filter(|i| only.is_none_or(|o| o == i.entity))
            .count(),
        ..RetryReport::default()
    };
    let result = async {
        for entity in Entity::DEPENDENCY_ORDER {
            if only.is_some_and(|o| o != entity) || !claimed.iter().any(|i| i.entity == entity) {
                continue;
            }
            let held = match lease(instances, name, entity, "retry", by).await {
                Ok(held) => held,
                Err(RunError::Busy(_)) => {
                    report.busy.push(entity);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let group = store.claimed(name, &claimer, entity)?;
            let group: Vec<&QueueItem> = group.iter().collect();
            if group.is_empty() {
                continue;
            }
            let pushed = push_queued(instances, name, entity, &group, &held, by.trigger).await?;
            report.runs.push((entity, pushed));
        }
        Ok::<(), RunError>(())
    }
    .await;
    store.release_queue(name, &claimer)?;
    result?;
    Ok(report)
}

/// Links BSS record `bss_id` to remote record `remote_id` after checking, with a dry-run update
/// through the connector, that the remote record exists. The record's data comes from the retry
/// queue (where an `ambiguous` or `in-use` record is held) or from `file` (a record file that
/// holds it). Takes the entity's lease, so no run of it is going on meanwhile.
pub async fn link(
    instances: &Instances,
    name: &str,
    entity: Entity,
    bss_id: &str,
    remote_id: &str,
    file: Option<&str>,
    by: RunBy<'_>,
) -> Result<String, RunError> {
    let invalid = |message: String| {
        RunError::Instance(InstanceError::Invalid(vec![("link".into(), message)]))
    };
    let (loaded, context) = instances.context(name)?;
    let held = lease(instances, name, entity, "link", by).await?;
    let store = instances.store();
    let record = match file {
        Some(text) => {
            let (records, _) = records::parse_file(entity, text);
            records
                .into_iter()
                .find(|r| r.id == bss_id)
                .ok_or_else(|| {
                    invalid(format!(
                        "the file holds no {} with id {bss_id:?}",
                        entity.as_str()
                    ))
                })?
        }
        None => {
            let item = store
                .queue(name)?
                .into_iter()
                .find(|i| i.entity == entity && i.bss_id == bss_id)
                .ok_or_else(|| {
                    invalid(format!(
                        "{} {bss_id:?} is not in the retry queue; give the record with --file FILE (the file it was pushed from)",
                        entity.as_str()
                    ))
                })?;
            let value = serde_json::from_str(&item.record).unwrap_or(serde_json::Value::Null);
            records::parse_record(entity, value).map_err(invalid)?
        }
    };
    let engine = Engine::new(
        store.as_ref(),
        &loaded.connector,
        context,
        Some(&held),
        by.trigger,
    );
    let change = engine
        .probe(entity, &record, remote_id)
        .await
        .map_err(|reason| {
            invalid(format!(
                "remote {} {remote_id} could not be checked, so nothing was linked: {reason}",
                entity.as_str()
            ))
        })?;
    let outcome = store.link(name, entity, bss_id, remote_id)?;
    Ok(match outcome {
        crate::store::LinkOutcome::AlreadyLinked => {
            format!(
                "{} {bss_id} was already linked to {remote_id}",
                entity.as_str()
            )
        }
        crate::store::LinkOutcome::Linked => format!(
            "{} {bss_id} is linked to remote {remote_id} ({}); the next push or retry updates it",
            entity.as_str(),
            if change == "unchanged" {
                "it already matches the BSS record"
            } else {
                "it differs from the BSS record"
            }
        ),
    })
}
