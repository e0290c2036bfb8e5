//! What `serve` runs unattended, apart from the API: the schedules operators set (`schedules.rs`:
//! pulls into the change feed and retries, per instance and entity), checked every
//! [`TICK`] by the leading worker, which queues each due one as a job for any worker of the fleet
//! (`fleet`); the change feed posted to BSS webhook sinks (`sink.rs`); a retry job for every
//! enabled instance's queued entities once a minute, also queued by the leader; an `events` job
//! for each instance and entity whose callback events are due (`callbacks`); the
//! check, every few minutes, of instances whose failed check holds their schedules back; and the
//! pruning of acknowledged feed entries. Every run takes
//! its entity's lease, so none overlaps a manual run.

pub mod schedules;
pub mod sink;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::instances::Instances;
use crate::store::job_store::{JobKind, NewJob};

/// How often `serve` retries the queues of enabled instances.
pub const RETRY_EVERY: Duration = Duration::from_secs(60);

/// How often `serve` looks for due schedules.
pub const TICK: Duration = Duration::from_secs(1);

/// Acknowledged feed entries are kept this long by default.
pub const FEED_RETENTION_DAYS: i64 = 7;

/// The lease that makes one worker of the fleet the one that starts scheduled work.
const LEADER_INSTANCE: &str = "*";
const LEADER_SCOPE: &str = "scheduler";
/// How long the leader stays leader without renewing (it renews every tick).
const LEADER_TTL_MS: i64 = 10_000;

/// Whether `worker` leads the scheduled work now: it takes or keeps the scheduler lease. Slots
/// are claimed once whoever claims them (`claim_due`), so two leaders for a moment (a stalled
/// one and its successor) do no harm; the lease keeps the other workers from useless ticks.
fn leads(instances: &Instances, worker: &str) -> bool {
    match instances.store().acquire_lease(
        LEADER_INSTANCE,
        LEADER_SCOPE,
        worker,
        &format!("scheduled work led by worker {worker}"),
        LEADER_TTL_MS,
    ) {
        Ok(None) => true,
        Ok(Some(_)) => false,
        Err(error) => {
            tracing::warn!("the scheduler lease could not be taken: {error}");
            false
        }
    }
}

/// Gives up the lead (at shutdown), so another worker leads at its next tick rather than after
/// the lease lapses.
pub fn step_down(instances: &Instances, worker: &str) {
    if let Err(error) = instances
        .store()
        .release_lease(LEADER_INSTANCE, LEADER_SCOPE, worker)
    {
        tracing::warn!("the scheduler lease was not released (it lapses by itself): {error}");
    }
}

/// Starts the schedules, the scheduled retries and the feed pruning, which run while `worker`
/// leads the fleet; they stop when the returned tasks are aborted or the runtime ends.
pub fn start(
    instances: std::sync::Arc<Instances>,
    feed_retention_days: i64,
    worker: String,
) -> Vec<tokio::task::JoinHandle<()>> {
    let schedules = {
        let instances = instances.clone();
        let worker = worker.clone();
        tokio::spawn(async move {
            let mut last_prune: Option<std::time::Instant> = None;
            let mut last_recheck: Option<std::time::Instant> = None;
            loop {
                if !leads(&instances, &worker) {
                    tokio::time::sleep(TICK).await;
                    continue;
                }
                if last_recheck.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
                    last_recheck = Some(std::time::Instant::now());
                    let instances = instances.clone();
                    tokio::spawn(async move { schedules::recheck_failed(&instances).await });
                }
                if let Err(error) = crate::callbacks::worker::queue_due(&instances) {
                    tracing::warn!("due callback events could not be queued: {error}");
                }
                // Each due schedule becomes a job, so any worker of the fleet may run it and a
                // long pull of one instance delays no other.
                match schedules::claim_due(&instances) {
                    Ok(claimed) => {
                        for schedule in claimed {
                            queue_scheduled(&instances, &schedule);
                        }
                    }
                    Err(error) => tracing::warn!("the schedules could not be read: {error}"),
                }
                if last_prune.is_none_or(|at| at.elapsed() > Duration::from_secs(3_600)) {
                    last_prune = Some(std::time::Instant::now());
                    let before = crate::time::rfc3339(
                        crate::time::now_unix() - feed_retention_days * 86_400,
                    );
                    match instances.store().prune_feed(&before) {
                        Ok(0) => {}
                        Ok(dropped) => tracing::info!(dropped, "acknowledged feed entries pruned"),
                        Err(error) => tracing::warn!("the feed could not be pruned: {error}"),
                    }
                    // Finished callback events as long as the feed: a delivery repeated later
                    // than that is fetched again, which the feed's versions keep harmless.
                    let events_before = crate::time::now_unix() - feed_retention_days * 86_400;
                    match instances.store().prune_events(events_before) {
                        Ok(0) => {}
                        Ok(dropped) => tracing::info!(dropped, "finished callback events pruned"),
                        Err(error) => {
                            tracing::warn!("callback events could not be pruned: {error}")
                        }
                    }
                }
                tokio::time::sleep(TICK).await;
            }
        })
    };
    vec![
        schedules,
        sinks(instances.clone()),
        retry_queues(instances, worker),
    ]
}

/// Posts the change feed to the sinks set, each [`TICK`], apart from the schedules so a slow sink
/// delays no run.
fn sinks(instances: std::sync::Arc<Instances>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = match sink::client() {
            Ok(client) => client,
            Err(error) => {
                tracing::error!("no HTTP client for the feed sinks: {error}");
                return;
            }
        };
        let owner = crate::sync::lease::new_owner("sinks");
        loop {
            if let Err(error) = sink::deliver_due(&instances, &client, &owner).await {
                tracing::warn!("the feed sinks could not be served: {error}");
            }
            tokio::time::sleep(TICK).await;
        }
    })
}

/// Queues a claimed schedule as a job of its kind; when it cannot be queued (its instance was
/// removed meanwhile), the schedule records why.
fn queue_scheduled(instances: &Instances, schedule: &crate::store::schedule_store::ScheduleRow) {
    let kind = match schedule.job {
        crate::store::schedule_store::Job::Pull => JobKind::Pull,
        crate::store::schedule_store::Job::Retry => JobKind::Retry,
        crate::store::schedule_store::Job::Reconcile => JobKind::Reconcile,
    };
    let job = NewJob {
        kind,
        instance: schedule.instance.clone(),
        entity: schedule.entity,
        trigger: crate::store::RunTrigger::Schedule,
        payload: serde_json::to_vec(schedule).unwrap_or_default(),
        dry_run: false,
    };
    match instances.store().submit_job(&job) {
        Ok(id) => {
            crate::store::job_store::job_submitted();
            tracing::debug!(
                instance = schedule.instance,
                job = id,
                "schedule {}:{} queued",
                schedule.entity,
                schedule.job
            );
        }
        Err(error) => {
            tracing::warn!(
                instance = schedule.instance,
                "the schedule {}:{} could not be queued: {error}",
                schedule.entity,
                schedule.job
            );
            let outcome = format!("failed: it could not be queued: {error}");
            if let Err(error) = instances
                .store()
                .finish_schedule(schedule, None, &outcome, 0)
            {
                tracing::warn!(instance = schedule.instance, "{error}");
            }
        }
    }
}

/// Once a minute, on the leading worker: queues a retry job for each entity with queued records
/// of every enabled instance, unless one is already waiting.
fn retry_queues(
    instances: std::sync::Arc<Instances>,
    worker: String,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(RETRY_EVERY).await;
            if !leads(&instances, &worker) {
                continue;
            }
            if let Err(error) = queue_retries(&instances) {
                tracing::warn!("the minute's retries could not be queued: {error}");
            }
        }
    })
}

/// Queues the minute's retries; returns how many jobs it queued.
pub fn queue_retries(instances: &Instances) -> Result<usize, crate::instances::InstanceError> {
    let store = instances.store();
    let mut queued = 0;
    for instance in instances.list()?.into_iter().filter(|i| i.enabled) {
        let entities: std::collections::BTreeSet<_> = store
            .queue(&instance.name)?
            .into_iter()
            .map(|item| item.entity)
            .collect();
        for entity in entities {
            if store
                .queued_job(JobKind::Retry, &instance.name, entity)?
                .is_some()
            {
                continue;
            }
            store.submit_job(&NewJob {
                kind: JobKind::Retry,
                instance: instance.name.clone(),
                entity,
                trigger: crate::store::RunTrigger::Serve,
                payload: Vec::new(),
                dry_run: false,
            })?;
            queued += 1;
        }
    }
    if queued > 0 {
        crate::store::job_store::job_submitted();
        tracing::info!(queued, "the minute's retries queued");
    }
    Ok(queued)
}

/// A due schedule this much past its time means no `serve` is running it.
pub const BEHIND_AFTER_SECS: i64 = 60;

/// What an operator (or a probe) needs to know of the unattended host.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Health {
    /// `ok`, or `degraded` when anything below is not empty.
    pub status: &'static str,
    /// Schedules due for longer than [`BEHIND_AFTER_SECS`], or whose run is stuck.
    pub schedules_behind: Vec<schedules::ScheduleView>,
    /// Schedules held back, with why.
    pub schedules_blocked: Vec<schedules::ScheduleView>,
    /// Runs still `running` after [`schedules::STUCK_AFTER_SECS`].
    pub stuck_runs: Vec<crate::store::RunRow>,
    /// Feed entries the BSS has not acknowledged, per instance (instances with none left out).
    pub feed_backlog: BTreeMap<String, i64>,
    /// Callback trouble per instance: events given up or waiting for another try, and a hook
    /// whose subscribe or unsubscribe failed (instances with none left out).
    pub callback_errors: BTreeMap<String, CallbackErrors>,
}

/// An instance's callback trouble.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CallbackErrors {
    pub failed_events: i64,
    pub retrying_events: i64,
    pub pending_events: i64,
    pub last_event_error: Option<String>,
    /// Why the hook's registrations are not in place, if they should be.
    pub hook_error: Option<String>,
}

/// The health of the unattended host, read from the store.
pub fn health(instances: &Instances) -> Result<Health, crate::instances::InstanceError> {
    let now = crate::time::now_unix();
    let mut behind = Vec::new();
    let mut blocked = Vec::new();
    for view in schedules::list(instances, None)? {
        let due_at = crate::time::parse_rfc3339(&view.next_run).unwrap_or(now);
        match view.state {
            "stuck" => behind.push(view),
            "blocked" => blocked.push(view),
            "due" if now - due_at > BEHIND_AFTER_SECS => behind.push(view),
            _ => {}
        }
    }
    let store = instances.store();
    let stuck_runs =
        store.runs_running_since(&crate::time::rfc3339(now - schedules::STUCK_AFTER_SECS))?;
    let feed_backlog = store.feed_backlogs()?;
    let mut callback_errors = BTreeMap::new();
    let mut counts = store.event_counts(now - crate::store::hook_store::FAILED_SHOWN_SECS)?;
    for hook in store.hooks()? {
        let events = counts.remove(&hook.instance).unwrap_or_default();
        if events.failed > 0 || events.retrying > 0 || hook.last_error.is_some() {
            callback_errors.insert(
                hook.instance.clone(),
                CallbackErrors {
                    failed_events: events.failed,
                    retrying_events: events.retrying,
                    pending_events: events.pending,
                    last_event_error: events.last_error,
                    hook_error: hook.last_error,
                },
            );
        }
    }
    let degraded = !(behind.is_empty()
        && blocked.is_empty()
        && stuck_runs.is_empty()
        && callback_errors.is_empty());
    Ok(Health {
        status: if degraded { "degraded" } else { "ok" },
        schedules_behind: behind,
        schedules_blocked: blocked,
        stuck_runs,
        feed_backlog,
        callback_errors,
    })
}
