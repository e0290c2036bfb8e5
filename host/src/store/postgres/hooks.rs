//! [`HookStore`] on PostgreSQL: events kept once by the unique index on (instance, message id,
//! entity, remote id, action); claimed with `FOR UPDATE SKIP LOCKED`, so workers claiming at
//! once take disjoint events without waiting for each other.

use std::collections::BTreeMap;

use super::super::hook_store::{
    Action, EVENT_CLAIM_SECS, EventCounts, EventEnd, HookEvent, HookRow, HookStore, Registration,
};
use super::super::{StoreError, StoreResult};
use super::{PgStore, db, parsed};
use crate::contract::manifest::Entity;

const HOOK_COLUMNS: &str =
    "instance, token, public_url, entities, registrations, active, last_error, updated_at";
const EVENT_COLUMNS: &str =
    "seq, instance, message_id, entity, remote_id, action, received_at, state, attempts, outcome";

fn from_json<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Database(format!("hooks.{column}: {e}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Database(e.to_string()))
}

fn hook_row(row: &tokio_postgres::Row) -> StoreResult<HookRow> {
    Ok(HookRow {
        instance: row.get(0),
        sealed_token: row.get(1),
        public_url: row.get(2),
        entities: from_json(row.get(3), "entities")?,
        registrations: from_json::<Vec<Registration>>(row.get(4), "registrations")?,
        active: row.get(5),
        last_error: row.get(6),
        updated_at: row.get(7),
    })
}

fn event_row(row: &tokio_postgres::Row) -> StoreResult<HookEvent> {
    Ok(HookEvent {
        seq: row.get(0),
        instance: row.get(1),
        message_id: row.get(2),
        entity: parsed::<Entity>(row.get(3), "hook_events.entity")?,
        remote_id: row.get(4),
        action: parsed::<Action>(row.get(5), "hook_events.action")?,
        received_at: row.get(6),
        state: row.get(7),
        attempts: row.get(8),
        outcome: row.get(9),
    })
}

impl HookStore for PgStore {
    fn set_hook(&self, hook: &HookRow) -> StoreResult<()> {
        let (entities, registrations) = (to_json(&hook.entities)?, to_json(&hook.registrations)?);
        self.run(async |client| {
            let written = client
                .execute(
                    &format!(
                        "INSERT INTO hooks ({HOOK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                         ON CONFLICT (instance) DO UPDATE SET token = $2, public_url = $3,
                             entities = $4, registrations = $5, active = $6, last_error = $7,
                             updated_at = $8"
                    ),
                    &[
                        &hook.instance,
                        &hook.sealed_token,
                        &hook.public_url,
                        &entities,
                        &registrations,
                        &hook.active,
                        &hook.last_error,
                        &hook.updated_at,
                    ],
                )
                .await;
            match written {
                Ok(_) => Ok(()),
                Err(e)
                    if e.code()
                        == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) =>
                {
                    Err(StoreError::NoInstance(hook.instance.clone()))
                }
                Err(e) => Err(db(e)),
            }
        })
    }

    fn hook(&self, instance: &str) -> StoreResult<Option<HookRow>> {
        self.run(async |client| {
            client
                .query_opt(
                    &format!("SELECT {HOOK_COLUMNS} FROM hooks WHERE instance = $1"),
                    &[&instance],
                )
                .await
                .map_err(db)?
                .as_ref()
                .map(hook_row)
                .transpose()
        })
    }

    fn hooks(&self) -> StoreResult<Vec<HookRow>> {
        self.run(async |client| {
            client
                .query(
                    &format!("SELECT {HOOK_COLUMNS} FROM hooks ORDER BY instance"),
                    &[],
                )
                .await
                .map_err(db)?
                .iter()
                .map(hook_row)
                .collect()
        })
    }

    fn remove_hook(&self, instance: &str) -> StoreResult<bool> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            transaction
                .execute("DELETE FROM hook_events WHERE instance = $1", &[&instance])
                .await
                .map_err(db)?;
            let removed = transaction
                .execute("DELETE FROM hooks WHERE instance = $1", &[&instance])
                .await
                .map_err(db)?;
            transaction.commit().await.map_err(db)?;
            Ok(removed > 0)
        })
    }

    fn record_event(
        &self,
        instance: &str,
        message_id: &str,
        entity: Entity,
        remote_id: &str,
        action: Action,
    ) -> StoreResult<bool> {
        self.run(async |client| {
            let added = client
                .execute(
                    "INSERT INTO hook_events (instance, message_id, entity, remote_id, action, received_at)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    &[
                        &instance,
                        &message_id,
                        &entity.as_str(),
                        &remote_id,
                        &action.as_str(),
                        &crate::time::now_unix(),
                    ],
                )
                .await
                .map_err(db)?;
            Ok(added > 0)
        })
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
        self.run(async |client| {
            client
                .query(
                    "SELECT DISTINCT instance, entity FROM hook_events
                     WHERE state = 'pending' AND next_try <= $1
                       AND (claimed_by IS NULL OR claimed_at < $2)
                     ORDER BY instance, entity",
                    &[&now, &(now - EVENT_CLAIM_SECS)],
                )
                .await
                .map_err(db)?
                .iter()
                .map(|r| {
                    Ok((
                        r.get::<_, String>(0),
                        parsed::<Entity>(r.get(1), "hook_events.entity")?,
                    ))
                })
                .collect()
        })
    }

    fn renew_event_claims(&self, claimer: &str, now: i64) -> StoreResult<usize> {
        self.run(async |client| {
            let renewed = client
                .execute(
                    "UPDATE hook_events SET claimed_at = $2 WHERE claimed_by = $1 AND state = 'pending'",
                    &[&claimer, &now],
                )
                .await
                .map_err(db)?;
            Ok(renewed as usize)
        })
    }

    fn finish_event(&self, seq: i64, claimer: &str, end: &EventEnd) -> StoreResult<bool> {
        let (state, outcome, next_try, tried): (&str, &str, i64, i64) = match end {
            EventEnd::Done(outcome) => ("done", outcome.as_str(), 0, 1),
            EventEnd::Retry { error, next_try } => ("pending", error.as_str(), *next_try, 1),
            EventEnd::Failed(error) => ("failed", error.as_str(), 0, 1),
            EventEnd::Later { reason, next_try } => ("pending", reason.as_str(), *next_try, 0),
        };
        self.run(async |client| {
            let changed = client
                .execute(
                    "UPDATE hook_events SET state = $3, outcome = $4, next_try = $5,
                         attempts = attempts + $7, claimed_by = NULL, claimed_at = NULL, finished_at = $6
                     WHERE seq = $1 AND claimed_by = $2",
                    &[
                        &seq,
                        &claimer,
                        &state,
                        &outcome,
                        &next_try,
                        &crate::time::now_unix(),
                        &tried,
                    ],
                )
                .await
                .map_err(db)?;
            Ok(changed > 0)
        })
    }

    fn events(&self, instance: &str, limit: usize) -> StoreResult<Vec<HookEvent>> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            super::instances::require_instance(&transaction, instance).await?;
            let rows = transaction
                .query(
                    &format!(
                        "SELECT {EVENT_COLUMNS} FROM hook_events WHERE instance = $1 ORDER BY seq DESC LIMIT $2"
                    ),
                    &[&instance, &(limit as i64)],
                )
                .await
                .map_err(db)?;
            transaction.commit().await.map_err(db)?;
            rows.iter().map(event_row).collect()
        })
    }

    fn event_counts(&self, failed_since: i64) -> StoreResult<BTreeMap<String, EventCounts>> {
        self.run(async |client| {
            let rows = client
                .query(
                    "SELECT instance,
                            count(*) FILTER (WHERE state = 'pending'),
                            count(*) FILTER (WHERE state = 'failed'),
                            count(*) FILTER (WHERE state = 'pending' AND attempts > 0),
                            (SELECT outcome FROM hook_events l WHERE l.instance = e.instance
                                 AND ((l.state = 'failed' AND l.finished_at >= $1)
                                      OR (l.state = 'pending' AND l.attempts > 0))
                                 ORDER BY l.finished_at DESC NULLS LAST, l.seq DESC LIMIT 1)
                     FROM hook_events e
                     WHERE state = 'pending' OR (state = 'failed' AND finished_at >= $1)
                     GROUP BY instance",
                    &[&failed_since],
                )
                .await
                .map_err(db)?;
            Ok(rows
                .iter()
                .map(|r| {
                    (
                        r.get::<_, String>(0),
                        EventCounts {
                            pending: r.get(1),
                            failed: r.get(2),
                            retrying: r.get(3),
                            last_error: r.get(4),
                        },
                    )
                })
                .collect())
        })
    }

    fn prune_events(&self, before: i64) -> StoreResult<usize> {
        self.run(async |client| {
            let removed = client
                .execute(
                    "DELETE FROM hook_events WHERE state IN ('done', 'failed') AND finished_at < $1",
                    &[&before],
                )
                .await
                .map_err(db)?;
            Ok(removed as usize)
        })
    }
}

impl PgStore {
    /// Claims up to `limit` due events, of one instance and entity or of all, oldest first.
    fn claim_due_events(
        &self,
        claimer: &str,
        only: Option<(&str, Entity)>,
        now: i64,
        limit: usize,
    ) -> StoreResult<Vec<HookEvent>> {
        let (instance, entity) = only.map_or((None, None), |(i, e)| (Some(i), Some(e.as_str())));
        self.run(async |client| {
            let rows = client
                .query(
                    &format!(
                        "UPDATE hook_events SET claimed_by = $1, claimed_at = $2
                         WHERE seq IN (
                             SELECT seq FROM hook_events
                             WHERE state = 'pending' AND next_try <= $2
                               AND (claimed_by IS NULL OR claimed_at < $3)
                               AND ($5::text IS NULL OR (instance = $5 AND entity = $6::text))
                             ORDER BY seq LIMIT $4
                             FOR UPDATE SKIP LOCKED)
                         RETURNING {EVENT_COLUMNS}"
                    ),
                    &[
                        &claimer,
                        &now,
                        &(now - EVENT_CLAIM_SECS),
                        &(limit as i64),
                        &instance,
                        &entity,
                    ],
                )
                .await
                .map_err(db)?;
            let mut claimed = rows
                .iter()
                .map(event_row)
                .collect::<StoreResult<Vec<_>>>()?;
            claimed.sort_by_key(|e| e.seq);
            Ok(claimed)
        })
    }
}
