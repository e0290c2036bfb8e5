//! [`ScheduleStore`] on SQLite: schedules claimed in one `IMMEDIATE` transaction, and the change
//! feed kept idempotent by a unique index on (instance, entity, remote id, version, change).

use super::*;
use crate::store::schedule_store::{
    Cadence, FeedEntry, FeedSinkRow, FeedState, Job, NewFeedEntry, ScheduleRow, ScheduleStore,
};

const SCHEDULE_COLUMNS: &str = "instance, entity, job, every_secs, daily_minute, next_due, last_run, last_started, last_finished, last_outcome, last_millis, blocked";

fn schedule_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ScheduleRow> {
    let every: Option<i64> = row.get(3)?;
    let daily: Option<i64> = row.get(4)?;
    let cadence = match (every, daily) {
        (Some(seconds), _) => Cadence::Every { seconds },
        (None, Some(minute)) => Cadence::Daily { minute },
        (None, None) => {
            return Err(rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Null,
                "a schedule with neither an interval nor a time of day".into(),
            ));
        }
    };
    Ok(ScheduleRow {
        instance: row.get(0)?,
        entity: named(row, 1)?,
        job: named(row, 2)?,
        cadence,
        next_due: row.get(5)?,
        last_run: row.get(6)?,
        last_started: row.get(7)?,
        last_finished: row.get(8)?,
        last_outcome: row.get(9)?,
        last_millis: row.get(10)?,
        blocked: row.get(11)?,
    })
}

const SINK_COLUMNS: &str = "instance, url, secret, delivered, attempts, next_try, last_error";

fn sink_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<FeedSinkRow> {
    Ok(FeedSinkRow {
        instance: row.get(0)?,
        url: row.get(1)?,
        sealed_secret: row.get(2)?,
        delivered: row.get(3)?,
        attempts: row.get(4)?,
        next_try: row.get(5)?,
        last_error: row.get(6)?,
    })
}

fn feed_state_of(connection: &Connection, instance: &str) -> StoreResult<FeedState> {
    connection
        .query_row(
            "SELECT COALESCE((SELECT acked FROM feed_acks WHERE instance = ?1), 0),
                    MAX(COALESCE((SELECT MAX(seq) FROM feed WHERE instance = ?1), 0),
                        COALESCE((SELECT acked FROM feed_acks WHERE instance = ?1), 0))",
            [instance],
            |r| {
                let (acknowledged, newest): (i64, i64) = (r.get(0)?, r.get(1)?);
                Ok((acknowledged, newest))
            },
        )
        .map_err(db)
        .and_then(|(acknowledged, newest)| {
            let backlog = connection
                .query_row(
                    "SELECT COUNT(*) FROM feed WHERE instance = ?1 AND seq > ?2",
                    params![instance, acknowledged],
                    |r| r.get(0),
                )
                .map_err(db)?;
            Ok(FeedState {
                acknowledged,
                newest,
                backlog,
            })
        })
}

impl ScheduleStore for SqliteStore {
    fn set_schedule(
        &self,
        instance: &str,
        entity: Entity,
        job: Job,
        cadence: Cadence,
        next_due: i64,
    ) -> StoreResult<()> {
        let connection = self.lock();
        Self::require_instance(&connection, instance)?;
        let (every, daily) = match cadence {
            Cadence::Every { seconds } => (Some(seconds), None),
            Cadence::Daily { minute } => (None, Some(minute)),
        };
        connection
            .execute(
                "INSERT INTO schedules (instance, entity, job, every_secs, daily_minute, next_due)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (instance, entity, job) DO UPDATE
                 SET every_secs = ?4, daily_minute = ?5, next_due = ?6, blocked = NULL",
                params![
                    instance,
                    name_of(&entity),
                    job.as_str(),
                    every,
                    daily,
                    next_due
                ],
            )
            .map_err(db)?;
        Ok(())
    }

    fn remove_schedule(&self, instance: &str, entity: Entity, job: Job) -> StoreResult<bool> {
        let connection = self.lock();
        Self::require_instance(&connection, instance)?;
        let removed = connection
            .execute(
                "DELETE FROM schedules WHERE instance = ?1 AND entity = ?2 AND job = ?3",
                params![instance, name_of(&entity), job.as_str()],
            )
            .map_err(db)?;
        Ok(removed > 0)
    }

    fn schedules(&self, instance: Option<&str>) -> StoreResult<Vec<ScheduleRow>> {
        let connection = self.lock();
        if let Some(name) = instance {
            Self::require_instance(&connection, name)?;
        }
        let mut statement = connection
            .prepare(&format!(
                "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE ?1 IS NULL OR instance = ?1
                 ORDER BY instance, entity, job"
            ))
            .map_err(db)?;
        let rows = statement
            .query_map([instance], schedule_row)
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(rows)
    }

    fn claim_due(
        &self,
        now: i64,
        ready: &mut dyn FnMut(&ScheduleRow) -> Option<String>,
        next: &dyn Fn(&ScheduleRow) -> i64,
        started: &str,
    ) -> StoreResult<Vec<ScheduleRow>> {
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        let due = {
            let mut statement = tx
                .prepare(&format!(
                    "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE next_due <= ?1
                       AND (last_outcome IS NOT 'running' OR last_started < ?2)
                     ORDER BY next_due, instance, entity, job"
                ))
                .map_err(db)?;
            // A run still going is not started again; one running past the stuck threshold
            // belongs to a process that died (or hangs), and its slot is taken.
            let stuck_before =
                crate::time::rfc3339(now - crate::store::schedule_store::STUCK_AFTER_SECS);
            statement
                .query_map(params![now, stuck_before], schedule_row)
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?
        };
        let mut claimed = Vec::new();
        for mut schedule in due {
            let keys = params![
                schedule.instance,
                name_of(&schedule.entity),
                schedule.job.as_str()
            ];
            if let Some(reason) = ready(&schedule) {
                if schedule.blocked.as_deref() != Some(reason.as_str()) {
                    tx.execute(
                        "UPDATE schedules SET blocked = ?4 WHERE instance = ?1 AND entity = ?2 AND job = ?3",
                        params![keys[0], keys[1], keys[2], reason],
                    )
                    .map_err(db)?;
                }
                continue;
            }
            schedule.next_due = next(&schedule);
            schedule.last_started = Some(started.to_string());
            schedule.blocked = None;
            tx.execute(
                "UPDATE schedules SET next_due = ?4, last_started = ?5, last_finished = NULL,
                     last_outcome = 'running', last_millis = NULL, last_run = NULL, blocked = NULL
                 WHERE instance = ?1 AND entity = ?2 AND job = ?3",
                params![keys[0], keys[1], keys[2], schedule.next_due, started],
            )
            .map_err(db)?;
            claimed.push(schedule);
        }
        tx.commit().map_err(db)?;
        Ok(claimed)
    }

    fn finish_schedule(
        &self,
        claimed: &ScheduleRow,
        run: Option<i64>,
        outcome: &str,
        millis: i64,
    ) -> StoreResult<()> {
        let connection = self.lock();
        connection
            .execute(
                "UPDATE schedules SET last_run = ?4, last_outcome = ?5, last_millis = ?6, last_finished = ?7
                 WHERE instance = ?1 AND entity = ?2 AND job = ?3 AND last_started = ?8",
                params![
                    claimed.instance,
                    name_of(&claimed.entity),
                    claimed.job.as_str(),
                    run,
                    outcome,
                    millis,
                    crate::time::now_rfc3339(),
                    claimed.last_started
                ],
            )
            .map_err(db)?;
        Ok(())
    }

    fn append_feed(
        &self,
        instance: &str,
        run: Option<i64>,
        entries: &[NewFeedEntry],
    ) -> StoreResult<usize> {
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        let mut added = 0;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO feed (instance, entity, remote_id, version, change, record, run, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(db)?;
            let at = crate::time::now_rfc3339();
            for entry in entries {
                added += insert
                    .execute(params![
                        instance,
                        name_of(&entry.entity),
                        entry.remote_id,
                        entry.version,
                        entry.change,
                        entry.record,
                        run,
                        at
                    ])
                    .map_err(db)?;
            }
        }
        tx.commit().map_err(db)?;
        Ok(added)
    }

    fn feed(&self, instance: &str, after: i64, limit: usize) -> StoreResult<Vec<FeedEntry>> {
        let connection = self.lock();
        Self::require_instance(&connection, instance)?;
        let mut statement = connection
            .prepare(
                "SELECT seq, entity, remote_id, change, record, run, at FROM feed
                 WHERE instance = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )
            .map_err(db)?;
        let rows = statement
            .query_map(params![instance, after, limit as i64], |r| {
                Ok(FeedEntry {
                    seq: r.get(0)?,
                    entity: named(r, 1)?,
                    remote_id: r.get(2)?,
                    change: r.get(3)?,
                    record: r.get(4)?,
                    run: r.get(5)?,
                    at: r.get(6)?,
                })
            })
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(rows)
    }

    fn ack_feed(&self, instance: &str, upto: i64) -> StoreResult<FeedState> {
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        Self::require_instance(&tx, instance)?;
        let state = feed_state_of(&tx, instance)?;
        if upto > state.newest {
            return Err(StoreError::Conflict(format!(
                "cannot acknowledge up to {upto}: the newest entry of {instance}'s feed is {}",
                state.newest
            )));
        }
        tx.execute(
            "INSERT INTO feed_acks (instance, acked) VALUES (?1, ?2)
             ON CONFLICT (instance) DO UPDATE SET acked = MAX(acked, ?2)",
            params![instance, upto],
        )
        .map_err(db)?;
        let state = feed_state_of(&tx, instance)?;
        tx.commit().map_err(db)?;
        Ok(state)
    }

    fn feed_state(&self, instance: &str) -> StoreResult<FeedState> {
        let connection = self.lock();
        Self::require_instance(&connection, instance)?;
        feed_state_of(&connection, instance)
    }

    fn set_feed_sink(&self, instance: &str, url: &str, sealed_secret: &str) -> StoreResult<()> {
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        Self::require_instance(&tx, instance)?;
        let acknowledged = feed_state_of(&tx, instance)?.acknowledged;
        tx.execute(
            "INSERT INTO feed_sinks (instance, url, secret, delivered) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (instance) DO UPDATE SET url = ?2, secret = ?3, attempts = 0, next_try = 0, last_error = NULL",
            params![instance, url, sealed_secret, acknowledged],
        )
        .map_err(db)?;
        tx.commit().map_err(db)
    }

    fn remove_feed_sink(&self, instance: &str) -> StoreResult<bool> {
        let connection = self.lock();
        Self::require_instance(&connection, instance)?;
        let removed = connection
            .execute("DELETE FROM feed_sinks WHERE instance = ?1", [instance])
            .map_err(db)?;
        Ok(removed > 0)
    }

    fn feed_sinks(&self) -> StoreResult<Vec<FeedSinkRow>> {
        let connection = self.lock();
        let mut statement = connection
            .prepare(&format!(
                "SELECT {SINK_COLUMNS} FROM feed_sinks ORDER BY instance"
            ))
            .map_err(db)?;
        let rows = statement
            .query_map([], sink_row)
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(rows)
    }

    fn sink_delivered(&self, instance: &str, upto: i64) -> StoreResult<()> {
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        tx.execute(
            "UPDATE feed_sinks SET delivered = MAX(delivered, ?2), attempts = 0, next_try = 0, last_error = NULL
             WHERE instance = ?1",
            params![instance, upto],
        )
        .map_err(db)?;
        tx.execute(
            "INSERT INTO feed_acks (instance, acked) VALUES (?1, ?2)
             ON CONFLICT (instance) DO UPDATE SET acked = MAX(acked, ?2)",
            params![instance, upto],
        )
        .map_err(db)?;
        tx.commit().map_err(db)
    }

    fn sink_failed(&self, instance: &str, error: &str, next_try: i64) -> StoreResult<()> {
        let connection = self.lock();
        connection
            .execute(
                "UPDATE feed_sinks SET attempts = attempts + 1, next_try = ?2, last_error = ?3
                 WHERE instance = ?1",
                params![instance, next_try, error],
            )
            .map_err(db)?;
        Ok(())
    }

    fn claim_sink(
        &self,
        instance: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<Option<FeedSinkRow>> {
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        let claimed = tx
            .execute(
                "UPDATE feed_sinks SET claimed_by = ?2, claimed_until = ?4
                 WHERE instance = ?1 AND (claimed_by IS NULL OR claimed_by = ?2 OR claimed_until < ?3)",
                params![instance, owner, now, until],
            )
            .map_err(db)?;
        let row = if claimed == 0 {
            None
        } else {
            tx.query_row(
                &format!("SELECT {SINK_COLUMNS} FROM feed_sinks WHERE instance = ?1"),
                [instance],
                sink_row,
            )
            .optional()
            .map_err(db)?
        };
        tx.commit().map_err(db)?;
        Ok(row)
    }

    fn release_sink(&self, instance: &str, owner: &str) -> StoreResult<()> {
        let connection = self.lock();
        connection
            .execute(
                "UPDATE feed_sinks SET claimed_by = NULL, claimed_until = 0
                 WHERE instance = ?1 AND claimed_by = ?2",
                params![instance, owner],
            )
            .map_err(db)?;
        Ok(())
    }

    fn feed_backlogs(&self) -> StoreResult<BTreeMap<String, i64>> {
        counts_by_instance(
            &self.lock(),
            "SELECT f.instance, COUNT(*) FROM feed f
             WHERE f.seq > COALESCE((SELECT acked FROM feed_acks a WHERE a.instance = f.instance), 0)
             GROUP BY f.instance",
        )
    }

    fn prune_feed(&self, before: &str) -> StoreResult<usize> {
        let connection = self.lock();
        connection
            .execute(
                "DELETE FROM feed WHERE at < ?1
                 AND seq <= COALESCE((SELECT acked FROM feed_acks a WHERE a.instance = feed.instance), 0)",
                [before],
            )
            .map_err(db)
    }
}

/// The shared schedule and feed behaviour (`store/behaviour/schedules.rs`), run on SQLite files.
#[cfg(test)]
mod tests {
    use super::SqliteStore;
    use crate::store::behaviour::schedules as behaviour;

    #[test]
    fn schedules_are_set_replaced_listed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::schedules_are_set_replaced_listed_and_removed(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }

    #[test]
    fn a_due_schedule_is_claimed_once_and_not_while_it_runs() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::a_due_schedule_is_claimed_once_and_not_while_it_runs(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }

    #[test]
    fn concurrent_schedulers_split_the_due_slots() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::concurrent_schedulers_split_the_due_slots(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }

    #[test]
    fn a_refused_schedule_keeps_its_due_time_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::a_refused_schedule_keeps_its_due_time_and_says_why(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }

    #[test]
    fn the_feed_keeps_each_version_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::the_feed_keeps_each_version_once_in_order(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }

    #[test]
    fn acknowledgement_only_moves_forward_and_never_past_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::acknowledgement_only_moves_forward_and_never_past_the_newest(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }

    #[test]
    fn pruning_drops_only_acknowledged_older_entries() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::pruning_drops_only_acknowledged_older_entries(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }

    #[test]
    fn concurrent_appenders_never_make_a_reader_skip_an_entry() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::concurrent_appenders_never_make_a_reader_skip_an_entry(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }

    #[test]
    fn a_sink_is_claimed_by_one_process_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::a_sink_is_claimed_by_one_process_at_a_time(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }

    #[test]
    fn a_sink_starts_after_what_is_acknowledged_and_records_deliveries() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::a_sink_starts_after_what_is_acknowledged_and_records_deliveries(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }
}
