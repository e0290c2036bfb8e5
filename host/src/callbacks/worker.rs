//! Applying stored callback events as `events` jobs: the hook queues one for the event's
//! instance and entity when it stores a new event (unless one is waiting already), and the
//! leading worker queues one for every instance and entity whose events are due (retries,
//! events put off while their entity was busy). Any worker of the fleet runs the job: it claims
//! the due events of its instance and entity (one claimer each, across processes) a batch at a
//! time and applies each batch as one run under the entity's lease
//! (`sync::service::apply_events`). An entity busy with another run is tried again in two
//! seconds without counting an attempt; a failure backs off (5 s doubling) and is given up after
//! `EVENT_MAX_ATTEMPTS`.

use std::collections::BTreeMap;

use crate::contract::manifest::Entity;
use crate::instances::{InstanceError, Instances};
use crate::store::hook_store::{EventEnd, HookEvent};
use crate::store::job_store::{JobKind, NewJob, job_submitted};
use crate::store::{RunTrigger, StoreError, StoreResult};
use crate::sync::lease::{WaitPolicy, new_owner};
use crate::sync::remote_changes::{EVENT_MAX_ATTEMPTS, EventIn};
use crate::sync::service::{self, RunBy, RunError};

/// Events claimed at a time.
const BATCH: usize = 100;
/// How long an event waits when its entity is busy.
const BUSY_WAIT_SECS: i64 = 2;
/// How long an event waits while its instance is disabled.
const DISABLED_WAIT_SECS: i64 = 60;

/// Queues an `events` job for the instance and entity, unless one is already waiting (it will
/// claim this event too); true when it queued one.
pub fn queue_events(instances: &Instances, name: &str, entity: Entity) -> StoreResult<bool> {
    let store = instances.store();
    if store.queued_job(JobKind::Events, name, entity)?.is_some() {
        return Ok(false);
    }
    store.submit_job(&NewJob {
        kind: JobKind::Events,
        instance: name.to_string(),
        entity,
        trigger: RunTrigger::Callback,
        payload: Vec::new(),
        dry_run: false,
    })?;
    job_submitted();
    Ok(true)
}

/// Queues an `events` job for every instance and entity with events due now (a retry's time
/// came, an entity stopped being busy, a job was lost with its worker); how many it queued.
pub fn queue_due(instances: &Instances) -> StoreResult<usize> {
    let mut queued = 0;
    for (name, entity) in instances
        .store()
        .due_event_groups(crate::time::now_unix())?
    {
        match queue_events(instances, &name, entity) {
            Ok(true) => queued += 1,
            Ok(false) => {}
            // Removed meanwhile: its events went with it.
            Err(StoreError::NoInstance(_)) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(queued)
}

/// An `events` job: claims the instance's due events of the entity a batch at a time and
/// applies them, until none is left; how many it handled.
pub async fn apply_due(instances: &Instances, claimer: &str, name: &str, entity: Entity) -> usize {
    let mut handled = 0;
    loop {
        let claimed = instances.store().claim_events_of(
            claimer,
            name,
            entity,
            crate::time::now_unix(),
            BATCH,
        );
        match claimed {
            Ok(events) if !events.is_empty() => handled += apply(instances, claimer, events).await,
            Ok(_) => return handled,
            Err(error) => {
                tracing::warn!(
                    instance = name,
                    "callback events could not be claimed: {error}"
                );
                return handled;
            }
        }
    }
}

/// Applies claimed events, a run per instance and entity; returns how many were handled.
pub async fn apply(instances: &Instances, claimer: &str, events: Vec<HookEvent>) -> usize {
    let mut groups: BTreeMap<(String, Entity), Vec<HookEvent>> = BTreeMap::new();
    for event in events {
        groups
            .entry((event.instance.clone(), event.entity))
            .or_default()
            .push(event);
    }
    let mut handled = 0;
    for ((name, entity), events) in groups {
        // The groups before this one may have taken long (a remote's rate limit): the claims of
        // the rest are renewed so no other worker takes them over meanwhile.
        if let Err(error) = instances
            .store()
            .renew_event_claims(claimer, crate::time::now_unix())
        {
            tracing::warn!("callback event claims could not be renewed: {error}");
        }
        let owner = new_owner("callback");
        let by = RunBy {
            owner: &owner,
            who: "a callback",
            trigger: RunTrigger::Callback,
            policy: WaitPolicy::Refuse,
        };
        let inputs: Vec<EventIn> = events
            .iter()
            .map(|e| EventIn {
                seq: e.seq,
                remote_id: e.remote_id.clone(),
                action: e.action,
                attempts: e.attempts,
            })
            .collect();
        let now = crate::time::now_unix();
        let ends: Vec<(i64, EventEnd)> =
            match service::apply_events(instances, &name, entity, &inputs, by).await {
                Ok(report) => report.ends,
                Err(error) => {
                    let end = |event: &HookEvent| match &error {
                        RunError::Busy(busy) => EventEnd::Later {
                            reason: format!("busy: {busy}"),
                            next_try: now + BUSY_WAIT_SECS,
                        },
                        // Kept for when it is enabled again (a deletion announced meanwhile
                        // must not be lost); not an attempt.
                        RunError::Instance(InstanceError::Disabled(_)) => EventEnd::Later {
                            reason: "waiting: the instance is disabled".into(),
                            next_try: now + DISABLED_WAIT_SECS,
                        },
                        other if event.attempts + 1 >= EVENT_MAX_ATTEMPTS => {
                            EventEnd::Failed(other.to_string())
                        }
                        other => EventEnd::Retry {
                            error: other.to_string(),
                            next_try: now + (5_i64 << event.attempts.clamp(0, 8)).min(900),
                        },
                    };
                    events.iter().map(|e| (e.seq, end(e))).collect()
                }
            };
        for (seq, end) in ends {
            match instances.store().finish_event(seq, claimer, &end) {
                Ok(true) => handled += 1,
                Ok(false) => tracing::warn!(
                    instance = name,
                    seq,
                    "a callback event's claim was taken over before it finished"
                ),
                Err(error) => tracing::warn!(
                    instance = name,
                    seq,
                    "a callback event's end could not be recorded: {error}"
                ),
            }
        }
    }
    handled
}
