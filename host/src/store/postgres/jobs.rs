//! [`JobStore`] on PostgreSQL: jobs claimed with `FOR UPDATE SKIP LOCKED`, so workers claiming at
//! once take different jobs without waiting for each other; a unique index on the running jobs'
//! (instance, entity) keeps two workers from running one entity at once even when both pick a
//! job of it in the same instant (the second claim fails on the index and looks again). Leases and
//! heartbeats are the server's clock. Submitting or ending a job notifies `bss_jobs`, which wakes
//! idle workers at once (a one-second tick covers a notification lost while reconnecting).

use std::sync::Arc;

use deadpool_postgres::GenericClient;

use super::super::job_store::{
    CANCELLED, Cancel, ClaimedJob, ENDED_RUN_STATUSES, JobEnd, JobKind, JobRow, JobState, JobStore,
    MAX_ATTEMPTS, NewJob, WorkerRow,
};
use super::super::{RunTrigger, StoreError, StoreResult};
use super::{NOW_MS, PgStore, db, is_unique_violation, parsed};
use crate::contract::manifest::Entity;

/// The channel that says a job may be claimable now.
pub const JOBS_CHANNEL: &str = "bss_jobs";

const JOB_COLUMNS: &str = "id, kind, instance, entity, trigger, dry_run, state, attempts, worker, run, submitted_at, started_at, finished_at, outcome, error";

/// Ends the running jobs matching `which` (over `jobs j`; `$1` is now, RFC 3339, further
/// parameters the caller's) whose tied run ended: their worker stopped after the run's end was
/// committed, so the job has done its work and takes the run's status rather than running again.
fn end_with_their_runs(which: &str) -> String {
    format!(
        "UPDATE jobs j SET
             state = CASE r.status WHEN 'failed' THEN 'failed' ELSE 'done' END,
             error = CASE r.status WHEN 'failed'
                 THEN 'its run failed: ' || coalesce(r.message, 'no reason given')
                 ELSE 'its worker ' || j.worker || ' stopped before reporting; the run''s report is its own' END,
             finished_at = $1, lease_until = NULL
         FROM runs r
         WHERE j.state = 'running' AND {which} AND r.id = j.run
           AND r.status IN ({ENDED_RUN_STATUSES})"
    )
}

/// How often a claim looks again after losing a race on the running-jobs index.
const CLAIM_RACES: usize = 5;

fn job_row(row: &tokio_postgres::Row) -> StoreResult<JobRow> {
    Ok(JobRow {
        id: row.get(0),
        kind: parsed::<JobKind>(row.get(1), "jobs.kind")?,
        instance: row.get(2),
        entity: parsed::<Entity>(row.get(3), "jobs.entity")?,
        trigger: parsed::<RunTrigger>(row.get(4), "jobs.trigger")?,
        dry_run: row.get(5),
        state: parsed::<JobState>(row.get(6), "jobs.state")?,
        attempts: row.get(7),
        worker: row.get(8),
        run: row.get(9),
        submitted_at: row.get(10),
        started_at: row.get(11),
        finished_at: row.get(12),
        outcome: row.get(13),
        error: row.get(14),
    })
}

pub(super) async fn notify_jobs(client: &impl GenericClient, instance: &str) -> StoreResult<()> {
    client
        .execute("SELECT pg_notify($1, $2)", &[&JOBS_CHANNEL, &instance])
        .await
        .map_err(db)?;
    Ok(())
}

/// Why a claim attempt claimed nothing.
enum Lost {
    /// Another worker started a job of the same entity in the same instant: look again.
    Race,
    Failed(StoreError),
}

impl From<tokio_postgres::Error> for Lost {
    fn from(error: tokio_postgres::Error) -> Lost {
        if is_unique_violation(&error) {
            Lost::Race
        } else {
            Lost::Failed(db(error))
        }
    }
}

/// One claim attempt in its own transaction.
async fn try_claim(
    client: &mut deadpool_postgres::Object,
    worker: &str,
    lease_secs: i64,
) -> Result<Option<ClaimedJob>, Lost> {
    let transaction = client.transaction().await?;
    // A job whose worker stopped after its run ended did its work: it ends with the run.
    transaction
        .execute(
            &end_with_their_runs(&format!("j.lease_until < {NOW_MS}")),
            &[&crate::time::now_rfc3339()],
        )
        .await?;
    // A job whose workers died under it too often is given up: it may be what kills them.
    transaction
        .execute(
            &format!(
                "UPDATE jobs SET state = 'failed', lease_until = NULL, finished_at = $2,
                     error = 'its worker ' || worker || ' stopped heartbeating while running it, '
                         || attempts || ' times; given up, since it may be what stops them'
                 WHERE state = 'running' AND lease_until < {NOW_MS} AND attempts >= $1"
            ),
            &[&MAX_ATTEMPTS, &crate::time::now_rfc3339()],
        )
        .await?;
    transaction
        .execute(
            &format!(
                "UPDATE jobs SET state = 'queued', lease_until = NULL, run = NULL, run_at = {NOW_MS},
                     error = 'its worker ' || worker || ' stopped heartbeating; taken over'
                 WHERE state = 'running' AND lease_until < {NOW_MS}"
            ),
            &[],
        )
        .await?;
    let Some(claimed) = transaction
        .query_opt(
            &format!(
                "UPDATE jobs SET state = 'running', worker = $1, lease_until = {NOW_MS} + $2::bigint * 1000,
                     attempts = jobs.attempts + 1, started_at = $3, error = NULL
                 WHERE id = (
                     SELECT q.id FROM jobs q
                     WHERE q.state = 'queued' AND q.run_at <= {NOW_MS}
                       -- Kinds a newer host queued wait for a worker that knows them (a fleet
                       -- being upgraded), holding back only the later jobs of their entity.
                       AND q.kind = ANY($4::text[])
                       AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.state = 'running'
                                       AND r.instance = q.instance AND r.entity = q.entity)
                       -- Jobs of one entity run in the order they were submitted: a newer push
                       -- of a record never lands before an older one (a requeued job keeps its
                       -- place, and a claimer racing for the same entity finds nothing).
                       AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.state = 'queued'
                                       AND o.instance = q.instance AND o.entity = q.entity AND o.id < q.id)
                     ORDER BY q.run_at, q.id
                     FOR UPDATE SKIP LOCKED
                     LIMIT 1)
                 RETURNING {JOB_COLUMNS}, payload"
            ),
            &[
                &worker,
                &lease_secs,
                &crate::time::now_rfc3339(),
                &JobKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<&str>>(),
            ],
        )
        .await?
    else {
        transaction.commit().await?;
        return Ok(None);
    };
    match job_row(&claimed) {
        Ok(row) => {
            transaction.commit().await?;
            Ok(Some(ClaimedJob {
                row,
                payload: claimed.get(15),
            }))
        }
        Err(unreadable) => {
            // A job this build cannot read (a newer host wrote it) fails here, once, rather
            // than being claimed and taken over for ever.
            let id: i64 = claimed.get(0);
            transaction
                .execute(
                    "UPDATE jobs SET state = 'failed', error = $2, finished_at = $3, lease_until = NULL
                     WHERE id = $1",
                    &[&id, &format!("this bss-host cannot run it: {unreadable}"), &crate::time::now_rfc3339()],
                )
                .await?;
            transaction.commit().await?;
            Err(Lost::Failed(unreadable))
        }
    }
}

impl JobStore for PgStore {
    fn submit_job(&self, job: &NewJob) -> StoreResult<i64> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            let inserted = transaction
                .query_one(
                    &format!(
                        "INSERT INTO jobs (kind, instance, entity, trigger, dry_run, payload, run_at, submitted_at)
                         VALUES ($1, $2, $3, $4, $5, $6, {NOW_MS}, $7) RETURNING id"
                    ),
                    &[
                        &job.kind.as_str(),
                        &job.instance,
                        &job.entity.as_str(),
                        &job.trigger.as_str(),
                        &job.dry_run,
                        &job.payload,
                        &crate::time::now_rfc3339(),
                    ],
                )
                .await;
            let id: i64 = match inserted {
                Ok(row) => row.get(0),
                Err(e)
                    if e.code()
                        == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) =>
                {
                    return Err(StoreError::NoInstance(job.instance.clone()));
                }
                Err(e) => return Err(db(e)),
            };
            notify_jobs(&transaction, &job.instance).await?;
            transaction.commit().await.map_err(db)?;
            Ok(id)
        })
    }

    fn queued_job(
        &self,
        kind: JobKind,
        instance: &str,
        entity: Entity,
    ) -> StoreResult<Option<i64>> {
        self.run(async |client| {
            let row = client
                .query_opt(
                    "SELECT id FROM jobs WHERE state = 'queued' AND kind = $1 AND instance = $2 AND entity = $3
                     ORDER BY id LIMIT 1",
                    &[&kind.as_str(), &instance, &entity.as_str()],
                )
                .await
                .map_err(db)?;
            Ok(row.map(|row| row.get(0)))
        })
    }

    fn claim_job(&self, worker: &str, lease_secs: i64) -> StoreResult<Option<ClaimedJob>> {
        self.run(async |client| {
            for _ in 0..CLAIM_RACES {
                match try_claim(client, worker, lease_secs).await {
                    Ok(claimed) => return Ok(claimed),
                    Err(Lost::Race) => continue,
                    Err(Lost::Failed(error)) => return Err(error),
                }
            }
            // Lost every race: others are claiming this entity's jobs; the next tick looks again.
            Ok(None)
        })
    }

    fn renew_jobs(&self, worker: &str, lease_secs: i64) -> StoreResult<Vec<i64>> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            transaction
                .execute(
                    &format!("UPDATE workers SET heartbeat_at = {NOW_MS} WHERE id = $1"),
                    &[&worker],
                )
                .await
                .map_err(db)?;
            let rows = transaction
                .query(
                    &format!(
                        "UPDATE jobs SET lease_until = {NOW_MS} + $2::bigint * 1000
                         WHERE worker = $1 AND state = 'running' RETURNING id"
                    ),
                    &[&worker, &lease_secs],
                )
                .await
                .map_err(db)?;
            transaction.commit().await.map_err(db)?;
            let mut held: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
            held.sort_unstable();
            Ok(held)
        })
    }

    fn finish_job(&self, id: i64, worker: &str, end: &JobEnd) -> StoreResult<bool> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            let now = crate::time::now_rfc3339();
            let ended = match end {
                JobEnd::Done { run, outcome } => {
                    transaction
                        .query_opt(
                            "UPDATE jobs SET state = 'done', run = $3, outcome = $4, error = NULL,
                             finished_at = $5, lease_until = NULL
                         WHERE id = $1 AND worker = $2 AND state = 'running' RETURNING instance",
                            &[&id, &worker, run, outcome, &now],
                        )
                        .await
                }
                JobEnd::Failed { run, error } => transaction
                    .query_opt(
                        "UPDATE jobs SET state = 'failed', run = $3, error = $4, finished_at = $5,
                             lease_until = NULL
                         WHERE id = $1 AND worker = $2 AND state = 'running' RETURNING instance",
                        &[&id, &worker, run, error, &now],
                    )
                    .await,
                JobEnd::Later { delay_secs, reason } => {
                    transaction
                        .query_opt(
                            &format!(
                            "UPDATE jobs SET state = 'queued', run_at = {NOW_MS} + $3::bigint * 1000,
                                 attempts = jobs.attempts - 1, error = $4, lease_until = NULL
                             WHERE id = $1 AND worker = $2 AND state = 'running' RETURNING instance"
                        ),
                            &[&id, &worker, delay_secs, reason],
                        )
                        .await
                }
            }
            .map_err(db)?;
            let Some(row) = ended else {
                return Ok(false);
            };
            // Its entity is free: a queued job of it may start now.
            notify_jobs(&transaction, row.get::<_, &str>(0)).await?;
            transaction.commit().await.map_err(db)?;
            Ok(true)
        })
    }

    fn cancel_job(&self, id: i64) -> StoreResult<Cancel> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            let Some(row) = transaction
                .query_opt(
                    "SELECT state, instance FROM jobs WHERE id = $1 FOR UPDATE",
                    &[&id],
                )
                .await
                .map_err(db)?
            else {
                return Ok(Cancel::NoSuchJob);
            };
            let state = parsed::<JobState>(row.get(0), "jobs.state")?;
            if state != JobState::Queued {
                return Ok(Cancel::NotQueued(state));
            }
            transaction
                .execute(
                    "UPDATE jobs SET state = 'failed', error = $2, finished_at = $3 WHERE id = $1",
                    &[&id, &CANCELLED, &crate::time::now_rfc3339()],
                )
                .await
                .map_err(db)?;
            // The entity's later jobs no longer wait behind it.
            notify_jobs(&transaction, row.get::<_, &str>(1)).await?;
            transaction.commit().await.map_err(db)?;
            Ok(Cancel::Cancelled)
        })
    }

    fn job(&self, id: i64) -> StoreResult<Option<JobRow>> {
        self.run(async |client| {
            client
                .query_opt(
                    &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"),
                    &[&id],
                )
                .await
                .map_err(db)?
                .as_ref()
                .map(job_row)
                .transpose()
        })
    }

    fn jobs(&self, instance: Option<&str>, limit: usize) -> StoreResult<Vec<JobRow>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(async |client| {
            client
                .query(
                    &format!(
                        "SELECT {JOB_COLUMNS} FROM jobs WHERE $1::text IS NULL OR instance = $1
                         ORDER BY id DESC LIMIT $2"
                    ),
                    &[&instance, &limit],
                )
                .await
                .map_err(db)?
                .iter()
                .map(job_row)
                .collect()
        })
    }

    fn register_worker(&self, id: &str, host: &str, pid: i64, version: &str) -> StoreResult<()> {
        self.run(async |client| {
            client
                .execute(
                    &format!(
                        "INSERT INTO workers (id, host, pid, version, started_at, heartbeat_at, stopped)
                         VALUES ($1, $2, $3, $4, $5, {NOW_MS}, false)
                         ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid,
                             version = EXCLUDED.version, started_at = EXCLUDED.started_at,
                             heartbeat_at = EXCLUDED.heartbeat_at, stopped = false"
                    ),
                    &[&id, &host, &pid, &version, &crate::time::now_rfc3339()],
                )
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    fn stop_worker(&self, id: &str) -> StoreResult<()> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            transaction
                .execute("UPDATE workers SET stopped = true WHERE id = $1", &[&id])
                .await
                .map_err(db)?;
            transaction
                .execute(
                    &end_with_their_runs("j.worker = $2"),
                    &[&crate::time::now_rfc3339(), &id],
                )
                .await
                .map_err(db)?;
            let requeued = transaction
                .query(
                    &format!(
                        "UPDATE jobs SET state = 'queued', lease_until = NULL, run = NULL, run_at = {NOW_MS},
                             error = 'its worker stopped; queued again'
                         WHERE worker = $1 AND state = 'running' RETURNING instance"
                    ),
                    &[&id],
                )
                .await
                .map_err(db)?;
            if let Some(row) = requeued.first() {
                notify_jobs(&transaction, row.get::<_, &str>(0)).await?;
            }
            transaction.commit().await.map_err(db)
        })
    }

    fn workers(&self, alive_secs: i64, within_secs: i64) -> StoreResult<Vec<WorkerRow>> {
        self.run(async |client| {
            let rows = client
                .query(
                    &format!(
                        "WITH now AS (SELECT {NOW_MS} AS ms)
                         SELECT w.id, w.host, w.pid, w.version, w.started_at,
                                (SELECT ms FROM now) - w.heartbeat_at, w.stopped,
                                (SELECT count(*) FROM jobs j WHERE j.worker = w.id AND j.state = 'running')
                         FROM workers w
                         WHERE w.heartbeat_at >= (SELECT ms FROM now) - $1::bigint * 1000
                            OR EXISTS (SELECT 1 FROM jobs j WHERE j.worker = w.id AND j.state = 'running')
                         ORDER BY w.id"
                    ),
                    &[&within_secs],
                )
                .await
                .map_err(db)?;
            Ok(rows
                .iter()
                .map(|r| {
                    let (ago, stopped): (i64, bool) = (r.get(5), r.get(6));
                    WorkerRow {
                        id: r.get(0),
                        host: r.get(1),
                        pid: r.get(2),
                        version: r.get(3),
                        started_at: r.get(4),
                        heartbeat_ago_ms: ago,
                        stopped,
                        alive: !stopped && ago <= alive_secs * 1000,
                        jobs_held: r.get(7),
                    }
                })
                .collect())
        })
    }

    fn job_wakeup(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(self.listener().jobs)
    }
}
