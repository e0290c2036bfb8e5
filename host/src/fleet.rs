//! A `serve` process as one worker of a fleet sharing a store: it registers under its worker id,
//! claims queued jobs (pushes submitted through the API, callback events to apply, the runs of
//! due schedules and the minute's retries, which the leading worker queues) a few at a time, keeps them with a
//! heartbeat, and ends each with its run's report. A worker that dies stops heartbeating; its
//! jobs' leases lapse and another worker takes them over, and the run it left is continued the
//! way any interrupted run is: the id map and the pending marks make sending again harmless.
//!
//! A job's run is tied to it (its lease owner names the job's attempt, `job_owner_who`): a worker
//! that stops after the run's end was committed leaves a job that ends with the run, not one
//! that runs again.
//!
//! A job also takes its entity's run lease, as every run does, so a job never overlaps a run
//! started from the command line; when the entity is busy the job goes back to the queue for a
//! moment (not counted as an attempt).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::instances::Instances;
use crate::store::job_store::{
    ClaimedJob, JOB_LEASE_SECS, JobEnd, JobKind, job_owner_who, submitted_here,
};
use crate::store::schedule_store::ScheduleRow;
use crate::sync::service::{RunBy, RunError};

/// Jobs one worker runs at once.
pub const CONCURRENT_JOBS: usize = 4;

/// How often an idle worker looks for jobs without being woken.
pub const LOOK_EVERY: Duration = Duration::from_secs(1);

/// How long a job whose entity is busy waits before it is tried again.
const BUSY_DELAY_SECS: i64 = 2;

/// Listed by `workers list` when it heartbeated within this long.
pub const LISTED_WITHIN_SECS: i64 = 24 * 3600;

/// The lease of a job, in seconds: `BSS_HOST_JOB_LEASE_SECS` (tests shorten it), else
/// [`JOB_LEASE_SECS`].
pub fn job_lease_secs() -> i64 {
    match std::env::var("BSS_HOST_JOB_LEASE_SECS") {
        Ok(text) => match text.trim().parse::<i64>() {
            Ok(secs) if secs >= 1 => secs,
            _ => {
                tracing::warn!(
                    "BSS_HOST_JOB_LEASE_SECS={text:?} is not a whole number of seconds of at least 1; using {JOB_LEASE_SECS}"
                );
                JOB_LEASE_SECS
            }
        },
        Err(_) => JOB_LEASE_SECS,
    }
}

/// A worker id for this process when none is given: host, process id and a nonce.
pub fn default_worker_id() -> String {
    crate::sync::lease::new_owner("worker")
}

/// This process's worker: stop it to hand its jobs back at once, or shut it down to let them
/// end first.
pub struct Worker {
    id: String,
    instances: Arc<Instances>,
    heartbeat: tokio::task::JoinHandle<()>,
    /// The claim loop, until a shutdown has stopped it.
    claims: Option<tokio::task::JoinHandle<()>>,
    /// Set when the worker claims no more jobs (it is shutting down).
    draining: Arc<std::sync::atomic::AtomicBool>,
    running: Running,
}

/// What a shutdown did with the jobs the worker was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shutdown {
    /// Jobs that ended within the grace period.
    pub finished: usize,
    /// Jobs still running when it ran out: stopped and queued again for another worker.
    pub handed_back: usize,
}

impl Worker {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Shuts the worker down: it claims no more jobs, gives the ones it runs up to `grace` to
    /// end (their heartbeat goes on meanwhile), then stops the rest and hands them back.
    pub async fn shut_down(mut self, grace: Duration) -> Shutdown {
        self.draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        // The claim loop ends first, and is waited for: a claim in flight either lists its job
        // among those running (ended or handed back below) or hands it back itself, before the
        // process can exit.
        if let Some(claims) = self.claims.take() {
            claims.abort();
            let _ = claims.await;
        }
        let held = |running: &Running| running.lock().unwrap_or_else(|p| p.into_inner()).len();
        let at_start = held(&self.running);
        let deadline = tokio::time::Instant::now() + grace;
        while held(&self.running) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let left: Vec<tokio::task::AbortHandle> =
            std::mem::take(&mut *self.running.lock().unwrap_or_else(|p| p.into_inner()))
                .into_values()
                .collect();
        for task in &left {
            // Its run's lease is released as the task drops it; what it sent is in the id map.
            task.abort();
        }
        let handed_back = left.len();
        self.stop();
        Shutdown {
            finished: at_start.saturating_sub(handed_back),
            handed_back,
        }
    }

    /// Ends the worker at once: its loops stop, and the jobs it held are queued again now rather
    /// than after their lease.
    pub fn stop(self) {
        // A claim already in flight hands its job back when it returns (see `claim_loop`).
        self.draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.heartbeat.abort();
        if let Some(claims) = &self.claims {
            claims.abort();
        }
        for task in self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            task.abort();
        }
        if let Err(error) = self.instances.store().stop_worker(&self.id) {
            tracing::warn!(
                worker = self.id,
                "the worker's stop was not recorded: {error}"
            );
        }
    }
}

/// The jobs this worker runs now, so the heartbeat can stop those taken over.
type Running = Arc<Mutex<BTreeMap<i64, tokio::task::AbortHandle>>>;

/// Registers the worker and starts its claim loop and heartbeat.
pub fn start(instances: Arc<Instances>, id: String) -> anyhow::Result<Worker> {
    let store = instances.store();
    store.register_worker(
        &id,
        &crate::sync::lease::hostname(),
        i64::from(std::process::id()),
        env!("CARGO_PKG_VERSION"),
    )?;
    let lease = job_lease_secs();
    let running: Running = Arc::default();
    let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let heartbeat = tokio::spawn(heartbeat(
        instances.clone(),
        id.clone(),
        lease,
        running.clone(),
    ));
    let claims = tokio::spawn(claim_loop(
        instances.clone(),
        id.clone(),
        lease,
        running.clone(),
        draining.clone(),
    ));
    Ok(Worker {
        id,
        instances,
        heartbeat,
        claims: Some(claims),
        draining,
        running,
    })
}

async fn heartbeat(instances: Arc<Instances>, id: String, lease: i64, running: Running) {
    let every = Duration::from_millis((lease * 1000 / 3).max(200) as u64);
    loop {
        tokio::time::sleep(every).await;
        // Only jobs running before the renewal was asked can be missing from its answer because
        // they were taken over: one claimed meanwhile is simply not in it yet.
        let before: Vec<i64> = running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        match instances.store().renew_jobs(&id, lease) {
            Ok(held) => {
                let mut running = running.lock().unwrap_or_else(|p| p.into_inner());
                running.retain(|job, task| {
                    let kept = held.contains(job) || !before.contains(job);
                    if !kept {
                        tracing::warn!(
                            worker = id,
                            job,
                            "the job was taken over by another worker; it stops here"
                        );
                        task.abort();
                    }
                    kept
                });
            }
            Err(error) => tracing::warn!(worker = id, "the heartbeat failed: {error}"),
        }
    }
}

async fn claim_loop(
    instances: Arc<Instances>,
    id: String,
    lease: i64,
    running: Running,
    draining: Arc<std::sync::atomic::AtomicBool>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_JOBS));
    let woken = instances.store().job_wakeup();
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        if draining.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let claimed = match instances.store().claim_job(&id, lease) {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(worker = id, "jobs could not be claimed: {error}");
                None
            }
        };
        if let Some(job) = &claimed
            && draining.load(std::sync::atomic::Ordering::SeqCst)
        {
            // The worker began stopping while this claim was in flight: it may already have
            // handed its jobs back, so this one goes back too rather than run on a worker
            // that is going away.
            end(
                &instances,
                &id,
                job.row.id,
                JobEnd::Later {
                    delay_secs: 0,
                    reason: "its worker was stopping when it claimed the job; queued again".into(),
                },
            );
            return;
        }
        let Some(job) = claimed else {
            drop(slot);
            tokio::select! {
                _ = async { match &woken { Some(woken) => woken.notified().await, None => std::future::pending().await } } => {}
                _ = submitted_here().notified() => {}
                _ = tokio::time::sleep(LOOK_EVERY) => {}
            }
            continue;
        };
        let job_id = job.row.id;
        // Held while the task is spawned and listed, so a job that ends at once is not listed
        // after it removed itself.
        let mut listed = running.lock().unwrap_or_else(|p| p.into_inner());
        let task = tokio::spawn({
            let (instances, id, running) = (instances.clone(), id.clone(), running.clone());
            async move {
                // A job whose run panics is failed here; otherwise it would stay `running`, its
                // lease renewed by this worker's heartbeat for as long as the worker lives.
                let ran = Unwinding(Box::pin(run_job(&instances, &id, job))).await;
                if let Err(panic) = ran {
                    end(
                        &instances,
                        &id,
                        job_id,
                        JobEnd::Failed {
                            run: None,
                            error: format!(
                                "the host failed while running it: {}",
                                panic_text(&panic)
                            ),
                        },
                    );
                }
                running
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&job_id);
                drop(slot);
            }
        });
        listed.insert(job_id, task.abort_handle());
    }
}

/// A future that returns its panic instead of unwinding through the task.
struct Unwinding<F>(std::pin::Pin<Box<F>>);

impl<F: std::future::Future> std::future::Future for Unwinding<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(output)) => std::task::Poll::Ready(Ok(output)),
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(text), _) => text.to_string(),
        (_, Some(text)) => text.clone(),
        _ => "a panic without a message".into(),
    }
}

/// Runs one claimed job and records how it ended.
async fn run_job(instances: &Instances, worker: &str, job: ClaimedJob) {
    // (A job this build cannot read never gets here: the store fails it at its claim.)
    let row = &job.row;
    let end_of = match row.kind {
        JobKind::Push => push(instances, worker, &job).await,
        JobKind::Pull | JobKind::Retry | JobKind::Reconcile if !job.payload.is_empty() => {
            scheduled(instances, worker, &job).await
        }
        JobKind::Retry => retry(instances, worker, &job).await,
        JobKind::Events => {
            // Its runs are not tied to the job (a job may apply several batches): the job ends
            // when no due event of its entity is left.
            let claimer = crate::sync::lease::new_owner(&format!("events-job{}", row.id));
            let handled =
                crate::callbacks::worker::apply_due(instances, &claimer, &row.instance, row.entity)
                    .await;
            JobEnd::Done {
                run: None,
                outcome: serde_json::json!({ "handled": handled }).to_string(),
            }
        }
        JobKind::Pull | JobKind::Reconcile => JobEnd::Failed {
            run: None,
            error: format!("a {} job needs the schedule it runs", row.kind),
        },
    };
    let (instance, entity, id) = (&row.instance, row.entity, row.id);
    match &end_of {
        JobEnd::Done { run, .. } => {
            tracing::info!(worker, job = id, instance, %entity, run, "job done")
        }
        JobEnd::Failed { error, .. } => {
            tracing::warn!(worker, job = id, instance, %entity, "job failed: {error}")
        }
        JobEnd::Later { reason, .. } => {
            tracing::info!(worker, job = id, instance, %entity, "job put back: {reason}")
        }
    }
    end(instances, worker, id, end_of);
}

fn end(instances: &Instances, worker: &str, job: i64, end: JobEnd) {
    match instances.store().finish_job(job, worker, &end) {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            worker,
            job,
            "the job had been taken over by another worker; its end here is not recorded"
        ),
        Err(error) => tracing::warn!(worker, job, "the job's end was not recorded: {error}"),
    }
}

async fn push(instances: &Instances, worker: &str, job: &ClaimedJob) -> JobEnd {
    let row = &job.row;
    let Ok(text) = std::str::from_utf8(&job.payload) else {
        return JobEnd::Failed {
            run: None,
            error: "the submitted records are not UTF-8 text".into(),
        };
    };
    let owner = crate::sync::lease::new_owner(&job_owner_who(row.id, row.attempts, worker));
    let who = format!("job {} on worker {worker}", row.id);
    let by = RunBy {
        owner: &owner,
        who: &who,
        trigger: row.trigger,
        policy: crate::sync::lease::WaitPolicy::Refuse,
    };
    let pushed = crate::sync::service::push_text(
        instances,
        &row.instance,
        row.entity,
        text,
        row.dry_run,
        None,
        by,
    )
    .await;
    ended(pushed, |outcome| Some(outcome.report.run))
}

/// The end of a job whose run returned `result`: done with its report, put off a moment when
/// the entity was busy, or failed.
fn ended<T: serde::Serialize>(
    result: Result<T, RunError>,
    run_of: impl Fn(&T) -> Option<i64>,
) -> JobEnd {
    match result {
        Ok(report) => JobEnd::Done {
            run: run_of(&report),
            outcome: serde_json::to_string(&report).unwrap_or_else(|e| format!("{e}")),
        },
        Err(RunError::Busy(busy)) => JobEnd::Later {
            delay_secs: BUSY_DELAY_SECS,
            reason: busy.to_string(),
        },
        Err(error) => JobEnd::Failed {
            run: None,
            error: error.to_string(),
        },
    }
}

/// Runs the schedule a leader claimed and queued; the schedule records how it went, as when it
/// ran in the leader's process.
async fn scheduled(instances: &Instances, worker: &str, job: &ClaimedJob) -> JobEnd {
    let schedule: ScheduleRow = match serde_json::from_slice(&job.payload) {
        Ok(schedule) => schedule,
        Err(error) => {
            return JobEnd::Failed {
                run: None,
                error: format!("the job's schedule is not readable: {error}"),
            };
        }
    };
    if (
        schedule.instance.as_str(),
        schedule.entity,
        schedule.job.as_str(),
    ) != (
        job.row.instance.as_str(),
        job.row.entity,
        job.row.kind.as_str(),
    ) {
        return JobEnd::Failed {
            run: None,
            error: format!(
                "the job's schedule ({} {}:{}) is not the job's own",
                schedule.instance, schedule.entity, schedule.job
            ),
        };
    }
    let owner = crate::sync::lease::new_owner(&job_owner_who(job.row.id, job.row.attempts, worker));
    match crate::scheduler::schedules::run_one_as(instances, &schedule, &owner).await {
        Ok(ran) if ran.ok => JobEnd::Done {
            run: ran.run,
            outcome: serde_json::to_string(&ran).unwrap_or_else(|e| format!("{e}")),
        },
        Ok(ran) => JobEnd::Failed {
            run: ran.run,
            error: ran.outcome,
        },
        Err(error) => JobEnd::Failed {
            run: None,
            error: format!("the scheduled run could not be recorded: {error}"),
        },
    }
}

/// Sends the entity's queued records again (serve's minute retry).
async fn retry(instances: &Instances, worker: &str, job: &ClaimedJob) -> JobEnd {
    let row = &job.row;
    let owner = crate::sync::lease::new_owner(&job_owner_who(row.id, row.attempts, worker));
    let who = format!("job {} on worker {worker}", row.id);
    let by = RunBy {
        owner: &owner,
        who: &who,
        trigger: row.trigger,
        policy: crate::sync::lease::WaitPolicy::Refuse,
    };
    match crate::sync::service::retry_entity(instances, &row.instance, Some(row.entity), by).await {
        Ok(report) if !report.busy.is_empty() => JobEnd::Later {
            delay_secs: BUSY_DELAY_SECS,
            reason: "another run holds the entity's lease".into(),
        },
        other => ended(other, |report| {
            report.runs.last().map(|(_, pushed)| pushed.run)
        }),
    }
}
