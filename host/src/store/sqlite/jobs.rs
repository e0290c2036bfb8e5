//! [`JobStore`] on SQLite: the job queue and the `serve` workers sharing one file. Every write
//! that reads first is one `IMMEDIATE` transaction, so a claim sees no other process's claim
//! half-made; the unique index on running jobs (`jobs_one_running`) is the hard guarantee that one
//! job per instance and entity runs at a time. Leases, due times and heartbeats are this process's
//! clock in unix milliseconds: every process on the file is on the same machine, so they agree.

use super::*;
use crate::store::job_store::{
    CANCELLED, Cancel, ClaimedJob, ENDED_RUN_STATUSES, JobEnd, JobKind, JobRow, JobState, JobStore,
    MAX_ATTEMPTS, NewJob, WorkerRow,
};

const JOB_COLUMNS: &str = "id, kind, instance, entity, trigger, dry_run, state, attempts, worker, run, submitted_at, started_at, finished_at, outcome, error";

fn job_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: row.get(0)?,
        kind: named(row, 1)?,
        instance: row.get(2)?,
        entity: named(row, 3)?,
        trigger: named(row, 4)?,
        dry_run: row.get(5)?,
        state: named(row, 6)?,
        attempts: row.get(7)?,
        worker: row.get(8)?,
        run: row.get(9)?,
        submitted_at: row.get(10)?,
        started_at: row.get(11)?,
        finished_at: row.get(12)?,
        outcome: row.get(13)?,
        error: row.get(14)?,
    })
}

/// `now` plus `secs` seconds, in milliseconds; a huge lease or delay saturates rather than wraps.
/// Ends the running jobs matching `which` (with `?1`; `?2` is now, RFC 3339) whose tied run
/// ended: their worker stopped after the run's end was committed, so the job has done its work
/// and takes the run's status rather than running again.
fn end_with_their_runs(which: &str) -> String {
    format!(
        "UPDATE jobs SET
             state = CASE (SELECT status FROM runs WHERE id = jobs.run) WHEN 'failed' THEN 'failed' ELSE 'done' END,
             error = CASE (SELECT status FROM runs WHERE id = jobs.run) WHEN 'failed'
                 THEN 'its run failed: ' || coalesce((SELECT message FROM runs WHERE id = jobs.run), 'no reason given')
                 ELSE 'its worker ' || worker || ' stopped before reporting; the run''s report is its own' END,
             finished_at = ?2, lease_until = NULL
         WHERE state = 'running' AND {which} AND run IS NOT NULL
           AND (SELECT status FROM runs WHERE id = jobs.run) IN ({ENDED_RUN_STATUSES})"
    )
}

fn after(now: i64, secs: i64) -> i64 {
    now.saturating_add(secs.saturating_mul(1000))
}

impl JobStore for SqliteStore {
    fn submit_job(&self, job: &NewJob) -> StoreResult<i64> {
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        // Checked first so a missing instance is `NoInstance`, not a foreign key failure.
        Self::require_instance(&tx, &job.instance)?;
        tx.execute(
            "INSERT INTO jobs (kind, instance, entity, trigger, dry_run, payload, run_at, submitted_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                job.kind.as_str(),
                job.instance,
                job.entity.as_str(),
                job.trigger.as_str(),
                job.dry_run,
                job.payload,
                unix_millis(),
                crate::time::now_rfc3339()
            ],
        )
        .map_err(db)?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(db)?;
        Ok(id)
    }

    fn queued_job(
        &self,
        kind: JobKind,
        instance: &str,
        entity: Entity,
    ) -> StoreResult<Option<i64>> {
        self.lock()
            .query_row(
                "SELECT id FROM jobs WHERE state = 'queued' AND kind = ?1 AND instance = ?2 AND entity = ?3
                 ORDER BY id LIMIT 1",
                params![kind.as_str(), instance, entity.as_str()],
                |row| row.get(0),
            )
            .optional()
            .map_err(db)
    }

    fn claim_job(&self, worker: &str, lease_secs: i64) -> StoreResult<Option<ClaimedJob>> {
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        let now = unix_millis();
        // Lapsed claims first, so the job of a worker that died can be claimed in this very
        // call. `worker` stays: it names the worker that ran it last, as the message does.
        // A job whose worker stopped after its run ended did its work: it ends with the run.
        tx.execute(
            &end_with_their_runs("lease_until < ?1"),
            params![now, crate::time::now_rfc3339()],
        )
        .map_err(db)?;
        // A job whose workers died under it too often is given up: it may be what kills them.
        tx.execute(
            "UPDATE jobs SET state = 'failed', lease_until = NULL, finished_at = ?3,
                 error = 'its worker ' || worker || ' stopped heartbeating while running it, '
                     || attempts || ' times; given up, since it may be what stops them'
             WHERE state = 'running' AND lease_until < ?1 AND attempts >= ?2",
            params![now, MAX_ATTEMPTS, crate::time::now_rfc3339()],
        )
        .map_err(db)?;
        tx.execute(
            "UPDATE jobs SET state = 'queued', lease_until = NULL, run = NULL, run_at = ?1,
                 error = 'its worker ' || worker || ' stopped heartbeating; taken over'
             WHERE state = 'running' AND lease_until < ?1",
            [now],
        )
        .map_err(db)?;
        // Kinds a newer host queued wait for a worker that knows them (a fleet being upgraded),
        // holding back only the later jobs of their own entity.
        let known = JobKind::ALL
            .iter()
            .map(|k| format!("'{}'", k.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let next: Option<i64> = tx
            .query_row(
                &format!("SELECT id FROM jobs j
                 WHERE state = 'queued' AND run_at <= ?1 AND kind IN ({known})
                   AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.state = 'running'
                                   AND r.instance = j.instance AND r.entity = j.entity)
                   -- Jobs of one entity run in the order they were submitted: a newer push of
                   -- a record never lands before an older one (a requeued job keeps its place).
                   AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.state = 'queued'
                                   AND o.instance = j.instance AND o.entity = j.entity AND o.id < j.id)
                 ORDER BY run_at, id LIMIT 1"),
                [now],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        let Some(id) = next else {
            // The takeovers above are kept even when nothing is claimable now.
            tx.commit().map_err(db)?;
            return Ok(None);
        };
        tx.execute(
            "UPDATE jobs SET state = 'running', worker = ?2, lease_until = ?3,
                 attempts = attempts + 1, started_at = ?4, error = NULL
             WHERE id = ?1",
            params![
                id,
                worker,
                after(now, lease_secs),
                crate::time::now_rfc3339()
            ],
        )
        .map_err(db)?;
        let (row, payload) = tx
            .query_row(
                &format!("SELECT {JOB_COLUMNS}, payload FROM jobs WHERE id = ?1"),
                [id],
                |r| Ok((job_row(r), r.get::<_, Vec<u8>>(15)?)),
            )
            .map_err(db)?;
        match row {
            Ok(row) => {
                tx.commit().map_err(db)?;
                Ok(Some(ClaimedJob { row, payload }))
            }
            Err(unreadable) => {
                // A job this build cannot read (a newer host wrote it) fails here, once, rather
                // than staying first in the queue and failing every claim after this one.
                let unreadable = db(unreadable);
                tx.execute(
                    "UPDATE jobs SET state = 'failed', error = ?2, finished_at = ?3,
                         lease_until = NULL
                     WHERE id = ?1",
                    params![
                        id,
                        format!("this bss-host cannot run it: {unreadable}"),
                        crate::time::now_rfc3339()
                    ],
                )
                .map_err(db)?;
                tx.commit().map_err(db)?;
                Err(unreadable)
            }
        }
    }

    fn renew_jobs(&self, worker: &str, lease_secs: i64) -> StoreResult<Vec<i64>> {
        let mut connection = self.lock();
        // One transaction, so the ids answered are exactly the jobs whose leases were extended.
        let tx = connection.transaction().map_err(db)?;
        let now = unix_millis();
        tx.execute(
            "UPDATE workers SET heartbeat_at = ?2 WHERE id = ?1",
            params![worker, now],
        )
        .map_err(db)?;
        tx.execute(
            "UPDATE jobs SET lease_until = ?2 WHERE worker = ?1 AND state = 'running'",
            params![worker, after(now, lease_secs)],
        )
        .map_err(db)?;
        let held = {
            let mut statement = tx
                .prepare("SELECT id FROM jobs WHERE worker = ?1 AND state = 'running' ORDER BY id")
                .map_err(db)?;
            statement
                .query_map([worker], |r| r.get(0))
                .map_err(db)?
                .collect::<Result<Vec<i64>, _>>()
                .map_err(db)?
        };
        tx.commit().map_err(db)?;
        Ok(held)
    }

    fn finish_job(&self, id: i64, worker: &str, end: &JobEnd) -> StoreResult<bool> {
        let connection = self.lock();
        let now = unix_millis();
        // One statement each, whose WHERE is the caller's own running claim: a worker that lost
        // the job (taken over, or its worker stopped) writes nothing.
        let changed = match end {
            JobEnd::Done { run, outcome } => connection.execute(
                "UPDATE jobs SET state = 'done', run = ?3, outcome = ?4, error = NULL,
                     finished_at = ?5, lease_until = NULL
                 WHERE id = ?1 AND worker = ?2 AND state = 'running'",
                params![id, worker, run, outcome, crate::time::now_rfc3339()],
            ),
            JobEnd::Failed { run, error } => connection.execute(
                "UPDATE jobs SET state = 'failed', run = ?3, error = ?4, finished_at = ?5,
                     lease_until = NULL
                 WHERE id = ?1 AND worker = ?2 AND state = 'running'",
                params![id, worker, run, error, crate::time::now_rfc3339()],
            ),
            // Not started after all: the attempt the claim counted is taken back.
            JobEnd::Later { delay_secs, reason } => connection.execute(
                "UPDATE jobs SET state = 'queued', run_at = ?3, attempts = attempts - 1,
                     error = ?4, lease_until = NULL
                 WHERE id = ?1 AND worker = ?2 AND state = 'running'",
                params![id, worker, after(now, *delay_secs), reason],
            ),
        }
        .map_err(db)?;
        Ok(changed > 0)
    }

    fn cancel_job(&self, id: i64) -> StoreResult<Cancel> {
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        let state: Option<String> = tx
            .query_row("SELECT state FROM jobs WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(db)?;
        let Some(state) = state else {
            return Ok(Cancel::NoSuchJob);
        };
        let state: JobState = state.parse().map_err(StoreError::Database)?;
        if state != JobState::Queued {
            return Ok(Cancel::NotQueued(state));
        }
        tx.execute(
            "UPDATE jobs SET state = 'failed', error = ?2, finished_at = ?3 WHERE id = ?1",
            params![id, CANCELLED, crate::time::now_rfc3339()],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(Cancel::Cancelled)
    }

    fn job(&self, id: i64) -> StoreResult<Option<JobRow>> {
        let connection = self.lock();
        connection
            .query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                job_row,
            )
            .optional()
            .map_err(db)
    }

    fn jobs(&self, instance: Option<&str>, limit: usize) -> StoreResult<Vec<JobRow>> {
        let connection = self.lock();
        let mut statement = connection
            .prepare(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE (?1 IS NULL OR instance = ?1)
                 ORDER BY id DESC LIMIT ?2"
            ))
            .map_err(db)?;
        let rows = statement
            .query_map(
                params![instance, i64::try_from(limit).unwrap_or(i64::MAX)],
                job_row,
            )
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(rows)
    }

    fn register_worker(&self, id: &str, host: &str, pid: i64, version: &str) -> StoreResult<()> {
        let connection = self.lock();
        connection
            .execute(
                "INSERT INTO workers (id, host, pid, version, started_at, heartbeat_at, stopped)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)
                 ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
                     version = excluded.version, started_at = excluded.started_at,
                     heartbeat_at = excluded.heartbeat_at, stopped = 0",
                params![
                    id,
                    host,
                    pid,
                    version,
                    crate::time::now_rfc3339(),
                    unix_millis()
                ],
            )
            .map_err(db)?;
        Ok(())
    }

    fn stop_worker(&self, id: &str) -> StoreResult<()> {
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        tx.execute("UPDATE workers SET stopped = 1 WHERE id = ?1", [id])
            .map_err(db)?;
        // Due at once: a clean shutdown need not wait for the lease to lapse. The attempt stays
        // counted (the job did start), and `worker` still names who ran it last.
        tx.execute(
            &end_with_their_runs("worker = ?1"),
            params![id, crate::time::now_rfc3339()],
        )
        .map_err(db)?;
        tx.execute(
            "UPDATE jobs SET state = 'queued', lease_until = NULL, run = NULL, run_at = ?2,
                 error = 'its worker stopped; queued again'
             WHERE worker = ?1 AND state = 'running'",
            params![id, unix_millis()],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(())
    }

    fn workers(&self, alive_secs: i64, within_secs: i64) -> StoreResult<Vec<WorkerRow>> {
        let connection = self.lock();
        let now = unix_millis();
        let mut statement = connection
            .prepare(
                "SELECT w.id, w.host, w.pid, w.version, w.started_at, ?1 - w.heartbeat_at, w.stopped,
                        (SELECT COUNT(*) FROM jobs j WHERE j.worker = w.id AND j.state = 'running')
                 FROM workers w
                 WHERE w.heartbeat_at >= ?2
                    OR EXISTS (SELECT 1 FROM jobs j WHERE j.worker = w.id AND j.state = 'running')
                 ORDER BY w.id",
            )
            .map_err(db)?;
        let alive_ms = alive_secs.saturating_mul(1000);
        let rows = statement
            .query_map(
                params![now, now.saturating_sub(within_secs.saturating_mul(1000))],
                |r| {
                    let heartbeat_ago_ms: i64 = r.get(5)?;
                    let stopped: bool = r.get(6)?;
                    Ok(WorkerRow {
                        id: r.get(0)?,
                        host: r.get(1)?,
                        pid: r.get(2)?,
                        version: r.get(3)?,
                        started_at: r.get(4)?,
                        heartbeat_ago_ms,
                        stopped,
                        alive: !stopped && heartbeat_ago_ms <= alive_ms,
                        jobs_held: r.get(7)?,
                    })
                },
            )
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(rows)
    }
}

/// The shared job-queue behaviour (`store/behaviour/jobs.rs`), run on SQLite files.
#[cfg(test)]
mod tests {
    use super::SqliteStore;
    use crate::store::JobStore;
    use crate::store::behaviour::jobs as behaviour;
    use crate::store::job_store::{JOB_LEASE_SECS, JobKind, NewJob};
    use crate::store::{InstanceStore, RunTrigger};

    /// Only SQLite lets a test write a job this build cannot read (as a newer host would).
    #[test]
    fn a_job_this_build_cannot_read_fails_once_and_one_of_a_newer_kind_waits_for_a_newer_worker() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bss.db");
        let store = SqliteStore::open(&path).unwrap();
        store
            .create_instance(&crate::store::behaviour::instance("acme"))
            .unwrap();
        let job = |entity| NewJob {
            kind: JobKind::Push,
            instance: "acme".into(),
            entity,
            trigger: RunTrigger::Api,
            payload: b"{}".to_vec(),
            dry_run: false,
        };
        let newer = store
            .submit_job(&job(crate::contract::manifest::Entity::Contact))
            .unwrap();
        let next = store
            .submit_job(&job(crate::contract::manifest::Entity::Account))
            .unwrap();
        let newer_kind = store
            .submit_job(&job(crate::contract::manifest::Entity::Product))
            .unwrap();
        let behind_it = store
            .submit_job(&job(crate::contract::manifest::Entity::Product))
            .unwrap();
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE jobs SET kind = 'transmogrify' WHERE id = ?1",
                [newer_kind],
            )
            .unwrap();
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE jobs SET trigger = 'telepathy' WHERE id = ?1",
                [newer],
            )
            .unwrap();

        let err = store
            .claim_job("w1", JOB_LEASE_SECS)
            .expect_err("unreadable");
        assert!(err.to_string().contains("\"telepathy\""), "{err}");
        let (state, error): (String, String) = rusqlite::Connection::open(&path)
            .unwrap()
            .query_row(
                "SELECT state, error FROM jobs WHERE id = ?1",
                [newer],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(state, "failed");
        assert!(
            error.starts_with("this bss-host cannot run it: "),
            "{error}"
        );
        let claimed = store.claim_job("w1", JOB_LEASE_SECS).unwrap().unwrap();
        assert_eq!(claimed.row.id, next, "the queue goes on");
        // The job of a kind only a newer host knows is left queued for one, and the job of its
        // entity submitted after it waits behind it.
        assert_eq!(store.claim_job("w1", JOB_LEASE_SECS).unwrap(), None);
        let waiting: Vec<String> = rusqlite::Connection::open(&path)
            .unwrap()
            .prepare("SELECT state FROM jobs WHERE id IN (?1, ?2) ORDER BY id")
            .unwrap()
            .query_map([newer_kind, behind_it], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(waiting, ["queued", "queued"]);
    }

    #[test]
    fn a_job_is_submitted_claimed_and_finished_with_its_payload_intact() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::a_job_is_submitted_claimed_and_finished_with_its_payload_intact(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }

    #[test]
    fn a_queued_job_is_found_by_kind_instance_and_entity_until_it_runs() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::a_queued_job_is_found_by_kind_instance_and_entity_until_it_runs(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }

    #[test]
    fn a_queued_job_is_cancelled_and_a_running_or_ended_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::a_queued_job_is_cancelled_and_a_running_or_ended_one_is_not(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }

    #[test]
    fn a_job_whose_worker_stopped_after_its_run_ended_ends_with_the_run() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::a_job_whose_worker_stopped_after_its_run_ended_ends_with_the_run(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }

    #[test]
    fn a_job_of_an_unknown_instance_is_refused_and_jobs_go_with_their_instance() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::a_job_of_an_unknown_instance_is_refused_and_jobs_go_with_their_instance(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }

    #[test]
    fn a_job_is_claimed_by_one_worker_and_never_beside_a_running_one_of_its_entity() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::a_job_is_claimed_by_one_worker_and_never_beside_a_running_one_of_its_entity(
            &|| Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap()),
        );
    }

    #[test]
    fn a_lapsed_lease_is_taken_over_and_its_old_worker_can_no_longer_end_it() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::a_lapsed_lease_is_taken_over_and_its_old_worker_can_no_longer_end_it(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }

    #[test]
    fn a_job_put_off_is_queued_again_after_its_delay_without_counting_the_attempt() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::a_job_put_off_is_queued_again_after_its_delay_without_counting_the_attempt(
            &|| Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap()),
        );
    }

    #[test]
    fn a_stopped_worker_s_jobs_are_queued_again_at_once() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::a_stopped_worker_s_jobs_are_queued_again_at_once(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }

    #[test]
    fn workers_are_listed_alive_stopped_and_with_the_jobs_they_hold() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::workers_are_listed_alive_stopped_and_with_the_jobs_they_hold(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }

    #[test]
    fn a_job_that_outlives_its_workers_too_often_fails() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::a_job_that_outlives_its_workers_too_often_fails(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }
}
