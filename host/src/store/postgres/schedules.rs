//! [`ScheduleStore`] on PostgreSQL: schedules claimed with `FOR UPDATE SKIP LOCKED` in one
//! transaction (schedulers claiming at once take disjoint slots without waiting), the change feed
//! kept idempotent by the unique index on (instance, entity, remote id, version, change), and
//! every write to an instance's feed or its acknowledgement serialised by a per-instance
//! advisory lock, so sequence numbers become visible in the order they were given.

use std::collections::{BTreeMap, BTreeSet};

use deadpool_postgres::GenericClient;
use tokio_postgres::error::SqlState;

use super::super::schedule_store::{
    Cadence, FeedEntry, FeedSinkRow, FeedState, Job, NewFeedEntry, STUCK_AFTER_SECS, ScheduleRow,
    ScheduleStore,
};
use super::super::{StoreError, StoreResult};
use super::instances::require_instance;
use super::{PgStore, db, parsed};
use crate::contract::manifest::Entity;

const SCHEDULE_COLUMNS: &str = "instance, entity, job, every_secs, daily_minute, next_due, last_run, last_started, last_finished, last_outcome, last_millis, blocked";
const SINK_COLUMNS: &str = "instance, url, secret, delivered, attempts, next_try, last_error";

fn schedule_row(row: &tokio_postgres::Row) -> StoreResult<ScheduleRow> {
    let cadence = match (row.get(3), row.get(4)) {
        (Some(seconds), _) => Cadence::Every { seconds },
        (None, Some(minute)) => Cadence::Daily { minute },
        (None, None) => {
            return Err(StoreError::Database(
                "schedules: a schedule with neither an interval nor a time of day".into(),
            ));
        }
    };
    Ok(ScheduleRow {
        instance: row.get(0),
        entity: parsed::<Entity>(row.get(1), "schedules.entity")?,
        job: parsed::<Job>(row.get(2), "schedules.job")?,
        cadence,
        next_due: row.get(5),
        last_run: row.get(6),
        last_started: row.get(7),
        last_finished: row.get(8),
        last_outcome: row.get(9),
        last_millis: row.get(10),
        blocked: row.get(11),
    })
}

fn sink_row(row: &tokio_postgres::Row) -> FeedSinkRow {
    FeedSinkRow {
        instance: row.get(0),
        url: row.get(1),
        sealed_secret: row.get(2),
        delivered: row.get(3),
        attempts: row.get(4),
        next_try: row.get(5),
        last_error: row.get(6),
    }
}

fn feed_entry(row: &tokio_postgres::Row) -> StoreResult<FeedEntry> {
    Ok(FeedEntry {
        seq: row.get(0),
        entity: parsed::<Entity>(row.get(1), "feed.entity")?,
        remote_id: row.get(2),
        change: row.get(3),
        record: row.get(4),
        run: row.get(5),
        at: row.get(6),
    })
}

/// A write's error, with a missing instance (the only foreign key these tables have) named.
fn no_instance_or_db(error: tokio_postgres::Error, instance: &str) -> StoreError {
    if error.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
        StoreError::NoInstance(instance.to_string())
    } else {
        db(error)
    }
}

/// Holds the instance's feed lock until the transaction ends. Appends take it before their
/// sequence numbers are drawn, so one appender's entries are committed before the next
/// appender's are numbered: a reader that sees entry 11 has already been able to see 10, and
/// acknowledging 11 never skips an entry still to become visible.
async fn lock_feed(client: &impl GenericClient, instance: &str) -> StoreResult<()> {
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('feed/' || $1::text, 0))",
            &[&instance],
        )
        .await
        .map_err(db)?;
    Ok(())
}

/// How far the instance's feed is read, in one statement (one snapshot).
async fn feed_state_of(client: &impl GenericClient, instance: &str) -> StoreResult<FeedState> {
    let row = client
        .query_one(
            "WITH a AS (SELECT COALESCE((SELECT acked FROM feed_acks WHERE instance = $1), 0) AS acked)
             SELECT a.acked,
                    GREATEST(COALESCE((SELECT max(seq) FROM feed WHERE instance = $1), 0), a.acked),
                    (SELECT count(*) FROM feed WHERE instance = $1 AND seq > a.acked)
             FROM a",
            &[&instance],
        )
        .await
        .map_err(db)?;
    Ok(FeedState {
        acknowledged: row.get(0),
        newest: row.get(1),
        backlog: row.get(2),
    })
}

/// Raises the instance's acknowledgement to `upto` (never lowers it).
async fn raise_ack(client: &impl GenericClient, instance: &str, upto: i64) -> StoreResult<()> {
    client
        .execute(
            "INSERT INTO feed_acks (instance, acked) VALUES ($1, $2)
             ON CONFLICT (instance) DO UPDATE SET acked = GREATEST(feed_acks.acked, EXCLUDED.acked)",
            &[&instance, &upto],
        )
        .await
        .map_err(|e| no_instance_or_db(e, instance))?;
    Ok(())
}

/// The entries as column arrays, each version once (first occurrence kept, order kept). A
/// duplicate in one statement would still draw a sequence number before its conflict is found.
fn feed_columns(entries: &[NewFeedEntry]) -> [Vec<&str>; 5] {
    let mut seen = BTreeSet::new();
    let mut columns: [Vec<&str>; 5] = Default::default();
    for e in entries {
        let key = (
            e.entity.as_str(),
            e.remote_id.as_str(),
            e.version.as_str(),
            e.change.as_str(),
        );
        if seen.insert(key) {
            let values = [key.0, key.1, key.2, key.3, e.record.as_str()];
            for (column, value) in columns.iter_mut().zip(values) {
                column.push(value);
            }
        }
    }
    columns
}

impl ScheduleStore for PgStore {
    fn set_schedule(
        &self,
        instance: &str,
        entity: Entity,
        job: Job,
        cadence: Cadence,
        next_due: i64,
    ) -> StoreResult<()> {
        let (every, daily) = match cadence {
            Cadence::Every { seconds } => (Some(seconds), None),
            Cadence::Daily { minute } => (None, Some(minute)),
        };
        self.run(async |client| {
            // One statement: the foreign key is the existence check.
            client
                .execute(
                    "INSERT INTO schedules (instance, entity, job, every_secs, daily_minute, next_due)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (instance, entity, job) DO UPDATE
                     SET every_secs = $4, daily_minute = $5, next_due = $6, blocked = NULL",
                    &[&instance, &entity.as_str(), &job.as_str(), &every, &daily, &next_due],
                )
                .await
                .map_err(|e| no_instance_or_db(e, instance))?;
            Ok(())
        })
    }

    fn remove_schedule(&self, instance: &str, entity: Entity, job: Job) -> StoreResult<bool> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            require_instance(&transaction, instance).await?;
            let removed = transaction
                .execute(
                    "DELETE FROM schedules WHERE instance = $1 AND entity = $2 AND job = $3",
                    &[&instance, &entity.as_str(), &job.as_str()],
                )
                .await
                .map_err(db)?;
            transaction.commit().await.map_err(db)?;
            Ok(removed > 0)
        })
    }

    fn schedules(&self, instance: Option<&str>) -> StoreResult<Vec<ScheduleRow>> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            if let Some(name) = instance {
                require_instance(&transaction, name).await?;
            }
            let rows = transaction
                .query(
                    &format!(
                        "SELECT {SCHEDULE_COLUMNS} FROM schedules
                         WHERE $1::text IS NULL OR instance = $1
                         ORDER BY instance, entity, job"
                    ),
                    &[&instance],
                )
                .await
                .map_err(db)?;
            transaction.commit().await.map_err(db)?;
            rows.iter().map(schedule_row).collect()
        })
    }

    fn claim_due(
        &self,
        now: i64,
        ready: &mut dyn FnMut(&ScheduleRow) -> Option<String>,
        next: &dyn Fn(&ScheduleRow) -> i64,
        started: &str,
    ) -> StoreResult<Vec<ScheduleRow>> {
        // A run still going is not started again; one running past the stuck threshold belongs
        // to a process that died (or hangs), and its slot is taken.
        let stuck_before = crate::time::rfc3339(now - STUCK_AFTER_SECS);
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            // Rows another scheduler is claiming are skipped, not waited for: when it commits,
            // their next due time has moved on anyway.
            let due = transaction
                .query(
                    &format!(
                        "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE next_due <= $1
                           AND (last_outcome IS DISTINCT FROM 'running' OR last_started < $2)
                         ORDER BY next_due, instance, entity, job
                         FOR UPDATE SKIP LOCKED"
                    ),
                    &[&now, &stuck_before],
                )
                .await
                .map_err(db)?
                .iter()
                .map(schedule_row)
                .collect::<StoreResult<Vec<_>>>()?;
            let block = transaction
                .prepare_cached(
                    "UPDATE schedules SET blocked = $4 WHERE instance = $1 AND entity = $2 AND job = $3",
                )
                .await
                .map_err(db)?;
            let claim = transaction
                .prepare_cached(
                    "UPDATE schedules SET next_due = $4, last_started = $5, last_finished = NULL,
                         last_outcome = 'running', last_millis = NULL, last_run = NULL, blocked = NULL
                     WHERE instance = $1 AND entity = $2 AND job = $3",
                )
                .await
                .map_err(db)?;
            let mut claimed = Vec::new();
            for mut schedule in due {
                let (instance, entity, job) = (
                    schedule.instance.clone(),
                    schedule.entity.as_str(),
                    schedule.job.as_str(),
                );
                if let Some(reason) = ready(&schedule) {
                    if schedule.blocked.as_deref() != Some(reason.as_str()) {
                        transaction
                            .execute(&block, &[&instance, &entity, &job, &reason])
                            .await
                            .map_err(db)?;
                    }
                    continue;
                }
                schedule.next_due = next(&schedule);
                schedule.last_started = Some(started.to_string());
                schedule.blocked = None;
                transaction
                    .execute(
                        &claim,
                        &[&instance, &entity, &job, &schedule.next_due, &started],
                    )
                    .await
                    .map_err(db)?;
                claimed.push(schedule);
            }
            transaction.commit().await.map_err(db)?;
            Ok(claimed)
        })
    }

    fn finish_schedule(
        &self,
        claimed: &ScheduleRow,
        run: Option<i64>,
        outcome: &str,
        millis: i64,
    ) -> StoreResult<()> {
        self.run(async |client| {
            client
                .execute(
                    "UPDATE schedules SET last_run = $4, last_outcome = $5, last_millis = $6, last_finished = $7
                     WHERE instance = $1 AND entity = $2 AND job = $3 AND last_started = $8",
                    &[
                        &claimed.instance,
                        &claimed.entity.as_str(),
                        &claimed.job.as_str(),
                        &run,
                        &outcome,
                        &millis,
                        &crate::time::now_rfc3339(),
                        &claimed.last_started,
                    ],
                )
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    fn append_feed(
        &self,
        instance: &str,
        run: Option<i64>,
        entries: &[NewFeedEntry],
    ) -> StoreResult<usize> {
        if entries.is_empty() {
            return Ok(0);
        }
        let [entities, remote_ids, versions, changes, records] = feed_columns(entries);
        let at = crate::time::now_rfc3339();
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            lock_feed(&transaction, instance).await?;
            // Versions already there are left out before the insert (under the lock no other
            // appender adds any meanwhile), so they draw no sequence number; sequence numbers
            // follow the entries' order. ON CONFLICT only backs that up.
            let insert = transaction
                .prepare_cached(
                    "INSERT INTO feed (instance, entity, remote_id, version, change, record, run, at)
                     SELECT $1, n.entity, n.remote_id, n.version, n.change, n.record, $2, $3
                     FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
                          WITH ORDINALITY AS n (entity, remote_id, version, change, record, place)
                     WHERE NOT EXISTS (
                         SELECT 1 FROM feed f WHERE f.instance = $1 AND f.entity = n.entity
                           AND f.remote_id = n.remote_id AND f.version = n.version AND f.change = n.change)
                     ORDER BY n.place
                     ON CONFLICT DO NOTHING",
                )
                .await
                .map_err(db)?;
            let added = transaction
                .execute(
                    &insert,
                    &[&instance, &run, &at, &entities, &remote_ids, &versions, &changes, &records],
                )
                .await
                .map_err(|e| no_instance_or_db(e, instance))?;
            transaction.commit().await.map_err(db)?;
            Ok(added as usize)
        })
    }

    fn feed(&self, instance: &str, after: i64, limit: usize) -> StoreResult<Vec<FeedEntry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            require_instance(&transaction, instance).await?;
            let read = transaction
                .prepare_cached(
                    "SELECT seq, entity, remote_id, change, record, run, at FROM feed
                     WHERE instance = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .await
                .map_err(db)?;
            let rows = transaction
                .query(&read, &[&instance, &after, &limit])
                .await
                .map_err(db)?;
            transaction.commit().await.map_err(db)?;
            rows.iter().map(feed_entry).collect()
        })
    }

    fn ack_feed(&self, instance: &str, upto: i64) -> StoreResult<FeedState> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            // Under the feed lock, the newest entry cannot change between the check and the
            // write.
            lock_feed(&transaction, instance).await?;
            require_instance(&transaction, instance).await?;
            let state = feed_state_of(&transaction, instance).await?;
            if upto > state.newest {
                return Err(StoreError::Conflict(format!(
                    "cannot acknowledge up to {upto}: the newest entry of {instance}'s feed is {}",
                    state.newest
                )));
            }
            raise_ack(&transaction, instance, upto).await?;
            let state = feed_state_of(&transaction, instance).await?;
            transaction.commit().await.map_err(db)?;
            Ok(state)
        })
    }

    fn feed_state(&self, instance: &str) -> StoreResult<FeedState> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            require_instance(&transaction, instance).await?;
            let state = feed_state_of(&transaction, instance).await?;
            transaction.commit().await.map_err(db)?;
            Ok(state)
        })
    }

    fn feed_backlogs(&self) -> StoreResult<BTreeMap<String, i64>> {
        self.run(async |client| {
            let rows = client
                .query(
                    "SELECT f.instance, count(*) FROM feed f
                     WHERE f.seq > COALESCE((SELECT acked FROM feed_acks a WHERE a.instance = f.instance), 0)
                     GROUP BY f.instance",
                    &[],
                )
                .await
                .map_err(db)?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn prune_feed(&self, before: &str) -> StoreResult<usize> {
        self.run(async |client| {
            let removed = client
                .execute(
                    "DELETE FROM feed WHERE at < $1
                     AND seq <= COALESCE((SELECT acked FROM feed_acks a WHERE a.instance = feed.instance), 0)",
                    &[&before],
                )
                .await
                .map_err(db)?;
            Ok(removed as usize)
        })
    }

    fn set_feed_sink(&self, instance: &str, url: &str, sealed_secret: &str) -> StoreResult<()> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            // The acknowledgement read here stays what it is until the sink is written.
            lock_feed(&transaction, instance).await?;
            require_instance(&transaction, instance).await?;
            let acknowledged = feed_state_of(&transaction, instance).await?.acknowledged;
            transaction
                .execute(
                    "INSERT INTO feed_sinks (instance, url, secret, delivered) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (instance) DO UPDATE
                     SET url = $2, secret = $3, attempts = 0, next_try = 0, last_error = NULL",
                    &[&instance, &url, &sealed_secret, &acknowledged],
                )
                .await
                .map_err(db)?;
            transaction.commit().await.map_err(db)
        })
    }

    fn remove_feed_sink(&self, instance: &str) -> StoreResult<bool> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            require_instance(&transaction, instance).await?;
            let removed = transaction
                .execute("DELETE FROM feed_sinks WHERE instance = $1", &[&instance])
                .await
                .map_err(db)?;
            transaction.commit().await.map_err(db)?;
            Ok(removed > 0)
        })
    }

    fn feed_sinks(&self) -> StoreResult<Vec<FeedSinkRow>> {
        self.run(async |client| {
            let rows = client
                .query(
                    &format!("SELECT {SINK_COLUMNS} FROM feed_sinks ORDER BY instance"),
                    &[],
                )
                .await
                .map_err(db)?;
            Ok(rows.iter().map(sink_row).collect())
        })
    }

    fn sink_delivered(&self, instance: &str, upto: i64) -> StoreResult<()> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            lock_feed(&transaction, instance).await?;
            transaction
                .execute(
                    "UPDATE feed_sinks SET delivered = GREATEST(delivered, $2), attempts = 0,
                         next_try = 0, last_error = NULL
                     WHERE instance = $1",
                    &[&instance, &upto],
                )
                .await
                .map_err(db)?;
            raise_ack(&transaction, instance, upto).await?;
            transaction.commit().await.map_err(db)
        })
    }

    fn sink_failed(&self, instance: &str, error: &str, next_try: i64) -> StoreResult<()> {
        self.run(async |client| {
            client
                .execute(
                    "UPDATE feed_sinks SET attempts = attempts + 1, next_try = $2, last_error = $3
                     WHERE instance = $1",
                    &[&instance, &next_try, &error],
                )
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    fn claim_sink(
        &self,
        instance: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<Option<FeedSinkRow>> {
        self.run(async |client| {
            // One compare-and-set: a second claimer waits for the first's row lock, then checks
            // the condition again on the row the first wrote, and finds it held.
            let row = client
                .query_opt(
                    &format!(
                        "UPDATE feed_sinks SET claimed_by = $2, claimed_until = $4
                         WHERE instance = $1
                           AND (claimed_by IS NULL OR claimed_by = $2 OR claimed_until < $3)
                         RETURNING {SINK_COLUMNS}"
                    ),
                    &[&instance, &owner, &now, &until],
                )
                .await
                .map_err(db)?;
            Ok(row.as_ref().map(sink_row))
        })
    }

    fn release_sink(&self, instance: &str, owner: &str) -> StoreResult<()> {
        self.run(async |client| {
            client
                .execute(
                    "UPDATE feed_sinks SET claimed_by = NULL, claimed_until = 0
                     WHERE instance = $1 AND claimed_by = $2",
                    &[&instance, &owner],
                )
                .await
                .map_err(db)?;
            Ok(())
        })
    }
}

/// The shared schedule and feed behaviour (`store/behaviour/schedules.rs`), each test on a
/// scratch database of its own.
#[cfg(test)]
mod tests {
    use super::super::scratch::ScratchDb;
    use super::PgStore;
    use crate::store::behaviour::schedules as behaviour;

    #[test]
    fn schedules_are_set_replaced_listed_and_removed() {
        let scratch = ScratchDb::create();
        behaviour::schedules_are_set_replaced_listed_and_removed(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }

    #[test]
    fn a_due_schedule_is_claimed_once_and_not_while_it_runs() {
        let scratch = ScratchDb::create();
        behaviour::a_due_schedule_is_claimed_once_and_not_while_it_runs(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }

    #[test]
    fn concurrent_schedulers_split_the_due_slots() {
        let scratch = ScratchDb::create();
        behaviour::concurrent_schedulers_split_the_due_slots(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }

    #[test]
    fn a_refused_schedule_keeps_its_due_time_and_says_why() {
        let scratch = ScratchDb::create();
        behaviour::a_refused_schedule_keeps_its_due_time_and_says_why(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }

    #[test]
    fn the_feed_keeps_each_version_once_in_order() {
        let scratch = ScratchDb::create();
        behaviour::the_feed_keeps_each_version_once_in_order(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }

    #[test]
    fn acknowledgement_only_moves_forward_and_never_past_the_newest() {
        let scratch = ScratchDb::create();
        behaviour::acknowledgement_only_moves_forward_and_never_past_the_newest(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }

    #[test]
    fn pruning_drops_only_acknowledged_older_entries() {
        let scratch = ScratchDb::create();
        behaviour::pruning_drops_only_acknowledged_older_entries(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }

    #[test]
    fn concurrent_appenders_never_make_a_reader_skip_an_entry() {
        let scratch = ScratchDb::create();
        behaviour::concurrent_appenders_never_make_a_reader_skip_an_entry(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }

    #[test]
    fn a_sink_is_claimed_by_one_process_at_a_time() {
        let scratch = ScratchDb::create();
        behaviour::a_sink_is_claimed_by_one_process_at_a_time(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }

    #[test]
    fn a_sink_starts_after_what_is_acknowledged_and_records_deliveries() {
        let scratch = ScratchDb::create();
        behaviour::a_sink_starts_after_what_is_acknowledged_and_records_deliveries(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }
}
