//! [`HookStore`] on SQLite: events kept once by a unique index on (instance, message id, entity,
//! remote id, action), claimed in one `IMMEDIATE` transaction.

use super::*;
use crate::store::hook_store::{
    EVENT_CLAIM_SECS, EventCounts, EventEnd, HookEvent, HookRow, HookStore, Registration,
};

const HOOK_COLUMNS: &str =
    "instance, token, public_url, entities, registrations, active, last_error, updated_at";
const EVENT_COLUMNS: &str =
    "seq, instance, message_id, entity, remote_id, action, received_at, state, attempts, outcome";

fn json_column<T: serde::de::DeserializeOwned>(
    row: &rusqlite::Row<'_>,
    index: usize,
) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, e.into())
    })
}

fn hook_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<HookRow> {
    Ok(HookRow {
        instance: row.get(0)?,
        sealed_token: row.get(1)?,
        public_url: row.get(2)?,
        entities: json_column(row, 3)?,
        registrations: json_column::<Vec<Registration>>(row, 4)?,
        active: row.get(5)?,
        last_error: row.get(6)?,
        updated_at: row.get(7)?,
    })
}

fn event_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<HookEvent> {
    Ok(HookEvent {
        seq: row.get(0)?,
        instance: row.get(1)?,
        message_id: row.get(2)?,
        entity: named(row, 3)?,
        remote_id: row.get(4)?,
        action: named(row, 5)?,
        received_at: row.get(6)?,
        state: row.get(7)?,
        attempts: row.get(8)?,
        outcome: row.get(9)?,
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Database(e.to_string()))
}

impl HookStore for SqliteStore {
    fn set_hook(&self, hook: &HookRow) -> StoreResult<()> {
        let connection = self.lock();
        Self::require_instance(&connection, &hook.instance)?;
        connection
            .execute(
                &format!(
                    "INSERT OR REPLACE INTO hooks ({HOOK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ),
                params![
                    hook.instance,
                    hook.sealed_token,
                    hook.public_url,
                    to_json(&hook.entities)?,
                    to_json(&hook.registrations)?,
                    hook.active,
                    hook.last_error,
                    hook.updated_at
                ],
            )
            .map_err(db)?;
        Ok(())
    }

    fn hook(&self, instance: &str) -> StoreResult<Option<HookRow>> {
        let connection = self.lock();
        connection
            .query_row(
                &format!("SELECT {HOOK_COLUMNS} FROM hooks WHERE instance = ?1"),
                [instance],
                hook_row,
            )
            .optional()
            .map_err(db)
    }

    fn hooks(&self) -> StoreResult<Vec<HookRow>> {
        let connection = self.lock();
        let mut statement = connection
            .prepare(&format!(
                "SELECT {HOOK_COLUMNS} FROM hooks ORDER BY instance"
            ))
            .map_err(db)?;
        let rows = statement
            .query_map([], hook_row)
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(rows)
    }

    fn remove_hook(&self, instance: &str) -> StoreResult<bool> {
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        tx.execute("DELETE FROM hook_events WHERE instance = ?1", [instance])
            .map_err(db)?;
        let removed = tx
            .execute("DELETE FROM hooks WHERE instance = ?1", [instance])
            .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(removed > 0)
    }

    fn record_event(
        &self,
        instance: &str,
        message_id: &str,
        entity: Entity,
        remote_id: &str,
        action: crate::store::hook_store::Action,
    ) -> StoreResult<bool> {
        let connection = self.lock();
        let added = connection
            .execute(
                "INSERT OR IGNORE INTO hook_events (instance, message_id, entity, remote_id, action, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    instance,
                    message_id,
                    name_of(&entity),
                    remote_id,
                    name_of(&action),
                    unix_now()
                ],
            )
            .map_err(db)?;
        Ok(added > 0)
    }

    fn claim_events(&self, claimer: &str, now: i64, limit: usize) -> StoreResult<Vec<HookEvent>> {
        self.claim_due_events(claimer, None, now, limit)
    }

    fn claim_events_of(
        &self,
        claimer: &str,
        instance: &str,
        entity: Entity,
        now: i64,
        limit: usize,
    ) -> StoreResult<Vec<HookEvent>> {
        self.claim_due_events(claimer, Some((instance, entity)), now, limit)
    }

    fn due_event_groups(&self, now: i64) -> StoreResult<Vec<(String, Entity)>> {
        let connection = self.lock();
        let mut statement = connection
            .prepare(
                "SELECT DISTINCT instance, entity FROM hook_events
                 WHERE state = 'pending' AND next_try <= ?1
                   AND (claimed_by IS NULL OR claimed_at < ?2)
                 ORDER BY instance, entity",
            )
            .map_err(db)?;
        let rows = statement
            .query_map(params![now, now - EVENT_CLAIM_SECS], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        rows.into_iter()
            .map(|(instance, entity)| {
                let entity = entity
                    .parse::<Entity>()
                    .map_err(|e| StoreError::Database(format!("hook_events.entity: {e}")))?;
                Ok((instance, entity))
            })
            .collect()
    }

    fn renew_event_claims(&self, claimer: &str, now: i64) -> StoreResult<usize> {
        let connection = self.lock();
        connection
            .execute(
                "UPDATE hook_events SET claimed_at = ?2 WHERE claimed_by = ?1 AND state = 'pending'",
                params![claimer, now],
            )
            .map_err(db)
    }

    fn finish_event(&self, seq: i64, claimer: &str, end: &EventEnd) -> StoreResult<bool> {
        let connection = self.lock();
        let (state, outcome, next_try, tried) = match end {
            EventEnd::Done(outcome) => ("done", outcome.as_str(), 0, 1),
            EventEnd::Retry { error, next_try } => ("pending", error.as_str(), *next_try, 1),
            EventEnd::Failed(error) => ("failed", error.as_str(), 0, 1),
            EventEnd::Later { reason, next_try } => ("pending", reason.as_str(), *next_try, 0),
        };
        let changed = connection
            .execute(
                "UPDATE hook_events SET state = ?3, outcome = ?4, next_try = ?5,
                     attempts = attempts + ?7, claimed_by = NULL, claimed_at = NULL, finished_at = ?6
                 WHERE seq = ?1 AND claimed_by = ?2",
                params![seq, claimer, state, outcome, next_try, unix_now(), tried],
            )
            .map_err(db)?;
        Ok(changed > 0)
    }

    fn events(&self, instance: &str, limit: usize) -> StoreResult<Vec<HookEvent>> {
        let connection = self.lock();
        Self::require_instance(&connection, instance)?;
        let mut statement = connection
            .prepare(&format!(
                "SELECT {EVENT_COLUMNS} FROM hook_events WHERE instance = ?1 ORDER BY seq DESC LIMIT ?2"
            ))
            .map_err(db)?;
        let rows = statement
            .query_map(params![instance, limit as i64], event_row)
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(rows)
    }

    fn event_counts(&self, failed_since: i64) -> StoreResult<BTreeMap<String, EventCounts>> {
        let connection = self.lock();
        let mut statement = connection
            .prepare(
                "SELECT instance,
                        SUM(state = 'pending'),
                        SUM(state = 'failed'),
                        SUM(state = 'pending' AND attempts > 0),
                        (SELECT outcome FROM hook_events l WHERE l.instance = e.instance
                             AND ((l.state = 'failed' AND l.finished_at >= ?1)
                                  OR (l.state = 'pending' AND l.attempts > 0))
                             ORDER BY l.finished_at DESC, l.seq DESC LIMIT 1)
                 FROM hook_events e
                 WHERE state = 'pending' OR (state = 'failed' AND finished_at >= ?1)
                 GROUP BY instance",
            )
            .map_err(db)?;
        let rows = statement
            .query_map([failed_since], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    EventCounts {
                        pending: r.get(1)?,
                        failed: r.get(2)?,
                        retrying: r.get(3)?,
                        last_error: r.get(4)?,
                    },
                ))
            })
            .map_err(db)?
            .collect::<Result<BTreeMap<_, _>, _>>()
            .map_err(db)?;
        Ok(rows)
    }

    fn prune_events(&self, before: i64) -> StoreResult<usize> {
        let connection = self.lock();
        connection
            .execute(
                "DELETE FROM hook_events WHERE state IN ('done', 'failed') AND finished_at < ?1",
                [before],
            )
            .map_err(db)
    }
}

impl SqliteStore {
    /// Claims up to `limit` due events, of one instance and entity or of all, oldest first.
    fn claim_due_events(
        &self,
        claimer: &str,
        only: Option<(&str, Entity)>,
        now: i64,
        limit: usize,
    ) -> StoreResult<Vec<HookEvent>> {
        let (instance, entity) = only.map_or((None, None), |(i, e)| (Some(i), Some(e.as_str())));
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        let claimed = {
            let mut statement = tx
                .prepare(&format!(
                    "SELECT {EVENT_COLUMNS} FROM hook_events
                     WHERE state = 'pending' AND next_try <= ?1
                       AND (claimed_by IS NULL OR claimed_at < ?2)
                       AND (?4 IS NULL OR (instance = ?4 AND entity = ?5))
                     ORDER BY seq LIMIT ?3"
                ))
                .map_err(db)?;
            statement
                .query_map(
                    params![now, now - EVENT_CLAIM_SECS, limit as i64, instance, entity],
                    event_row,
                )
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?
        };
        for event in &claimed {
            tx.execute(
                "UPDATE hook_events SET claimed_by = ?2, claimed_at = ?3 WHERE seq = ?1",
                params![event.seq, claimer, now],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(claimed)
    }
}
