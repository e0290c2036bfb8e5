//! [`SyncStore`] on PostgreSQL: the id map, run leases, runs and their outcomes, the retry queue
//! and cursors, for workers on several machines at once.
//!
//! Lease times are the database server's clock (`clock_timestamp()`), never a worker's: workers'
//! clocks differ, and a lease must lapse at the same moment for all of them. Writes lock in one
//! order — the lease row, then the run row, then id map and queue rows — so two transactions never
//! wait for each other in a cycle. The fenced writes (`mark_pending`, `commit_pull`) hold the
//! run's lease row `FOR SHARE` until they commit, so a takeover (an `UPDATE` of that row) waits
//! for them and the new holder reads what they wrote. Queue claims skip rows another claimer has
//! locked (`FOR UPDATE SKIP LOCKED`): claimers never wait for each other and never share an item.

use std::collections::{BTreeMap, BTreeSet};

use deadpool_postgres::GenericClient;

use super::super::sync_store::{NEEDS_LINK, STALE_CLAIM_SECS};
use super::super::{
    Cursor, IdMapEntry, LeaseHolder, LinkOutcome, Outcome, QueueItem, RunItem, RunKind, RunRow,
    RunStatus, RunTrigger, StoreError, StoreResult, SyncStore,
};
use super::instances::require_instance;
use super::{NOW_MS, PgStore, db, parsed};
use crate::contract::manifest::Entity;

const RUN_COLUMNS: &str = "id, instance, kind, entity, dry_run, started_at, finished_at, status, message, created, updated, unchanged, reconciled, failed, queued, pulled, skipped, held, trigger";

const QUEUE_COLUMNS: &str = "entity, bss_id, record, error, attempts, queued_at";

const INTERRUPTED: &str = "the process running it stopped before it finished (its lease lapsed); the outcomes recorded up to then are kept";

fn run_row(row: &tokio_postgres::Row) -> StoreResult<RunRow> {
    let entity: Option<&str> = row.get(3);
    Ok(RunRow {
        id: row.get(0),
        instance: row.get(1),
        kind: parsed::<RunKind>(row.get(2), "runs.kind")?,
        entity: entity
            .map(|e| parsed::<Entity>(e, "runs.entity"))
            .transpose()?,
        dry_run: row.get(4),
        started_at: row.get(5),
        finished_at: row.get(6),
        status: parsed::<RunStatus>(row.get(7), "runs.status")?,
        message: row.get(8),
        created: row.get(9),
        updated: row.get(10),
        unchanged: row.get(11),
        reconciled: row.get(12),
        failed: row.get(13),
        queued: row.get(14),
        pulled: row.get(15),
        skipped: row.get(16),
        held: row.get(17),
        trigger: parsed::<RunTrigger>(row.get(18), "runs.trigger")?,
    })
}

/// Queue rows as items, in the order runs send them (by entity, then BSS id). An entity this
/// build does not know is an error, never another entity's record.
fn queue_items(rows: &[tokio_postgres::Row]) -> StoreResult<Vec<QueueItem>> {
    let mut items = rows
        .iter()
        .map(|row| {
            Ok(QueueItem {
                entity: parsed::<Entity>(row.get(0), "retry_queue.entity")?,
                bss_id: row.get(1),
                record: row.get(2),
                error: row.get(3),
                attempts: row.get(4),
                queued_at: row.get(5),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    items.sort_by(|a, b| (a.entity, &a.bss_id).cmp(&(b.entity, &b.bss_id)));
    Ok(items)
}

/// Each id once, in order: a statement must not touch a row twice, and rows locked in one
/// order never deadlock two batches against each other.
fn distinct(ids: &[String]) -> Vec<&str> {
    ids.iter()
        .map(String::as_str)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Fails unless the run (when it has an owner) still holds a live lease of its instance and
/// entity; the lease row stays locked `FOR SHARE` until the transaction ends, so no takeover
/// commits in between.
async fn refuse_without_lease(client: &impl GenericClient, run: i64) -> StoreResult<()> {
    let Some(row) = client
        .query_opt(
            "SELECT instance, entity, owner FROM runs WHERE id = $1",
            &[&run],
        )
        .await
        .map_err(db)?
    else {
        return Ok(());
    };
    let (instance, entity, owner): (String, Option<String>, Option<String>) =
        (row.get(0), row.get(1), row.get(2));
    let Some(owner) = owner else {
        return Ok(());
    };
    let held = client
        .query_opt(
            &format!(
                "SELECT 1 FROM leases WHERE instance = $1 AND scope = $2 AND owner = $3
                   AND expires_at >= {NOW_MS} FOR SHARE"
            ),
            &[&instance, &entity, &owner],
        )
        .await
        .map_err(db)?;
    match held {
        Some(_) => Ok(()),
        None => Err(StoreError::Conflict(format!(
            "run {run} no longer holds its lease (another process may hold it now); it stops here"
        ))),
    }
}

/// Marks `running` runs whose holder no longer holds a live lease as `interrupted`.
async fn sweep_interrupted(client: &impl GenericClient) -> StoreResult<()> {
    client
        .execute(
            &format!(
                "UPDATE runs SET status = 'interrupted', finished_at = $1, message = $2
                 WHERE status = 'running' AND owner IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.instance = runs.instance
                       AND l.owner = runs.owner AND l.scope = runs.entity AND l.expires_at >= {NOW_MS})"
            ),
            &[&crate::time::now_rfc3339(), &INTERRUPTED],
        )
        .await
        .map_err(db)?;
    Ok(())
}

/// Takes a record out of the retry queue (its newest outcome settles it).
async fn unqueue(
    client: &impl GenericClient,
    instance: &str,
    entity: &str,
    bss_id: &str,
) -> StoreResult<()> {
    client
        .execute(
            "DELETE FROM retry_queue WHERE instance = $1 AND entity = $2 AND bss_id = $3",
            &[&instance, &entity, &bss_id],
        )
        .await
        .map_err(db)?;
    Ok(())
}

/// The first column of `sql`'s rows keyed by the second; `sql` takes (instance, entity, ids).
async fn found_by_id(
    client: &impl GenericClient,
    sql: &str,
    instance: &str,
    entity: Entity,
    ids: &[String],
) -> StoreResult<BTreeMap<String, String>> {
    let rows = client
        .query(sql, &[&instance, &entity.as_str(), &ids])
        .await
        .map_err(db)?;
    Ok(rows.iter().map(|r| (r.get(1), r.get(0))).collect())
}

/// What one outcome writes besides its run item; returns the item's remote id.
async fn apply_outcome(
    client: &impl GenericClient,
    run: i64,
    instance: &str,
    entity: &str,
    bss_id: &str,
    outcome: &Outcome,
    now: &str,
) -> StoreResult<Option<String>> {
    Ok(match outcome {
        Outcome::Done {
            remote_id,
            waiting,
            copy,
            ..
        } => {
            let (last_pushed, stored) = match copy {
                Some(copy) => (Some(copy.last_pushed.as_str()), copy.stored.as_deref()),
                None => (None, None),
            };
            client
                .execute(
                    "INSERT INTO id_map (instance, entity, bss_id, remote_id, pending, pending_run, updated_at, last_pushed, stored)
                     VALUES ($1, $2, $3, $4, false, NULL, $5, $6, $7)
                     ON CONFLICT (instance, entity, bss_id) DO UPDATE SET remote_id = $4, pending = false,
                         pending_run = NULL, updated_at = $5, last_pushed = $6, stored = $7",
                    &[&instance, &entity, &bss_id, remote_id, &now, &last_pushed, &stored],
                )
                .await
                .map_err(db)?;
            unqueue(client, instance, entity, bss_id).await?;
            if let Some(waiting) = waiting {
                client
                    .execute(
                        "INSERT INTO retry_queue (instance, entity, bss_id, record, error, attempts, queued_at, waits_entity, waits_bss_id)
                         VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8)",
                        &[
                            &instance,
                            &entity,
                            &bss_id,
                            &waiting.record,
                            &waiting.message,
                            &now,
                            &waiting.waits.0.as_str(),
                            &waiting.waits.1,
                        ],
                    )
                    .await
                    .map_err(db)?;
            }
            Some(remote_id.clone())
        }
        Outcome::DryRun { remote_id, .. } => remote_id.clone(),
        Outcome::Failed {
            message,
            retryable,
            outcome_unknown,
            record,
            waits,
            label,
        } => {
            if !outcome_unknown {
                // Only the run that set a pending mark knows its create did not happen; an
                // older mark stays for the next try to look up.
                client
                    .execute(
                        "DELETE FROM id_map WHERE instance = $1 AND entity = $2 AND bss_id = $3
                           AND remote_id IS NULL AND (NOT pending OR pending_run = $4)",
                        &[&instance, &entity, &bss_id, &run],
                    )
                    .await
                    .map_err(db)?;
            }
            if *retryable {
                let (waits_entity, waits_id) = match waits {
                    Some((entity, id)) => (Some(entity.as_str()), Some(id.as_str())),
                    None => (None, None),
                };
                client
                    .execute(
                        "INSERT INTO retry_queue (instance, entity, bss_id, record, error, attempts, queued_at, claimed_by, claimed_at, waits_entity, waits_bss_id)
                         VALUES ($1, $2, $3, $4, $5, 1, $6, NULL, NULL, $7, $8)
                         ON CONFLICT (instance, entity, bss_id) DO UPDATE SET record = $4, error = $5,
                             attempts = retry_queue.attempts + 1, claimed_by = NULL, claimed_at = NULL,
                             waits_entity = $7, waits_bss_id = $8",
                        &[&instance, &entity, &bss_id, record, message, &now, &waits_entity, &waits_id],
                    )
                    .await
                    .map_err(db)?;
            } else if label.is_some() {
                // Kept for `link`, which checks the remote record against it, and held (never
                // claimed by a retry) until then.
                client
                    .execute(
                        "INSERT INTO retry_queue (instance, entity, bss_id, record, error, attempts, queued_at, claimed_by, claimed_at, waits_entity, waits_bss_id)
                         VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, NULL, NULL)
                         ON CONFLICT (instance, entity, bss_id) DO UPDATE SET record = $4, error = $5,
                             attempts = retry_queue.attempts + 1, claimed_by = $7, claimed_at = $8",
                        &[&instance, &entity, &bss_id, record, message, &now, &NEEDS_LINK, &i64::MAX],
                    )
                    .await
                    .map_err(db)?;
            } else {
                unqueue(client, instance, entity, bss_id).await?;
            }
            None
        }
        // The newest version of the record is unusable (an older queued one must not be sent in
        // its place), or not to be synchronised.
        Outcome::Invalid { .. } | Outcome::Skipped { .. } => {
            unqueue(client, instance, entity, bss_id).await?;
            None
        }
        Outcome::Held { .. } => {
            // The BSS's version is not the remote's yet: nothing queued (a retry would be held
            // again), the record waits for a decision.
            unqueue(client, instance, entity, bss_id).await?;
            client
                .query_opt(
                    "SELECT remote_id FROM id_map WHERE instance = $1 AND entity = $2 AND bss_id = $3",
                    &[&instance, &entity, &bss_id],
                )
                .await
                .map_err(db)?
                .and_then(|row| row.get::<_, Option<String>>(0))
        }
    })
}

impl SyncStore for PgStore {
    fn id_map(
        &self,
        instance: &str,
        entity: Entity,
        bss_ids: &[String],
    ) -> StoreResult<BTreeMap<String, IdMapEntry>> {
        self.run(async |client| {
            let rows = client
                .query(
                    "SELECT bss_id, remote_id, pending, last_pushed FROM id_map
                     WHERE instance = $1 AND entity = $2 AND bss_id = ANY($3)",
                    &[&instance, &entity.as_str(), &bss_ids],
                )
                .await
                .map_err(db)?;
            Ok(rows
                .iter()
                .map(|r| {
                    (
                        r.get(0),
                        IdMapEntry {
                            remote_id: r.get(1),
                            pending: r.get(2),
                            last_pushed: r.get(3),
                        },
                    )
                })
                .collect())
        })
    }

    fn bss_ids(
        &self,
        instance: &str,
        entity: Entity,
        remote_ids: &[String],
    ) -> StoreResult<BTreeMap<String, String>> {
        self.run(async |client| {
            found_by_id(
                &*client,
                "SELECT bss_id, remote_id FROM id_map
                 WHERE instance = $1 AND entity = $2 AND remote_id = ANY($3)",
                instance,
                entity,
                remote_ids,
            )
            .await
        })
    }

    fn linked(&self, instance: &str, entity: Entity) -> StoreResult<BTreeMap<String, String>> {
        self.run(async |client| {
            let rows = client
                .query(
                    "SELECT remote_id, bss_id FROM id_map
                     WHERE instance = $1 AND entity = $2 AND remote_id IS NOT NULL",
                    &[&instance, &entity.as_str()],
                )
                .await
                .map_err(db)?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn record_removal(
        &self,
        instance: &str,
        entity: Entity,
        bss_id: &str,
        remote: Option<(&str, bool)>,
    ) -> StoreResult<bool> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            let queued = transaction
                .execute(
                    "DELETE FROM retry_queue WHERE instance = $1 AND entity = $2 AND bss_id = $3",
                    &[&instance, &entity.as_str(), &bss_id],
                )
                .await
                .map_err(db)?
                > 0;
            if let Some((remote_id, deleted)) = remote {
                transaction
                    .execute(
                        "INSERT INTO remote_deletions (instance, entity, remote_id, bss_id, by_removal, at)
                         VALUES ($1, $2, $3, $4, true, $5)
                         ON CONFLICT (instance, entity, remote_id) DO UPDATE
                         SET bss_id = EXCLUDED.bss_id, by_removal = true, at = EXCLUDED.at",
                        &[
                            &instance,
                            &entity.as_str(),
                            &remote_id,
                            &bss_id,
                            &crate::time::now_rfc3339(),
                        ],
                    )
                    .await
                    .map_err(db)?;
                if deleted {
                    transaction
                        .execute(
                            "DELETE FROM id_map WHERE instance = $1 AND entity = $2 AND bss_id = $3 AND NOT pending",
                            &[&instance, &entity.as_str(), &bss_id],
                        )
                        .await
                        .map_err(db)?;
                }
            }
            transaction.commit().await.map_err(db)?;
            Ok(queued)
        })
    }

    fn known_deletions(
        &self,
        instance: &str,
        entity: Entity,
        remote_ids: &[String],
    ) -> StoreResult<BTreeSet<String>> {
        self.run(async |client| {
            let rows = client
                .query(
                    "SELECT remote_id FROM remote_deletions
                     WHERE instance = $1 AND entity = $2 AND remote_id = ANY($3)",
                    &[&instance, &entity.as_str(), &remote_ids],
                )
                .await
                .map_err(db)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn note_deletions(
        &self,
        instance: &str,
        entity: Entity,
        deleted: &[(String, Option<String>)],
    ) -> StoreResult<()> {
        let (remote_ids, bss_ids): (Vec<&str>, Vec<Option<&str>>) = deleted
            .iter()
            .map(|(remote, bss)| (remote.as_str(), bss.as_deref()))
            .unzip();
        self.run(async |client| {
            client
                .execute(
                    "INSERT INTO remote_deletions (instance, entity, remote_id, bss_id, by_removal, at)
                     SELECT $1, $2, remote_id, bss_id, false, $5
                     FROM unnest($3::text[], $4::text[]) AS given (remote_id, bss_id)
                     ON CONFLICT DO NOTHING",
                    &[
                        &instance,
                        &entity.as_str(),
                        &remote_ids,
                        &bss_ids,
                        &crate::time::now_rfc3339(),
                    ],
                )
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    fn forget_deletion(&self, instance: &str, entity: Entity, remote_id: &str) -> StoreResult<()> {
        self.run(async |client| {
            client
                .execute(
                    "DELETE FROM remote_deletions WHERE instance = $1 AND entity = $2 AND remote_id = $3",
                    &[&instance, &entity.as_str(), &remote_id],
                )
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    fn stored_copies(
        &self,
        instance: &str,
        entity: Entity,
        remote_ids: &[String],
    ) -> StoreResult<BTreeMap<String, String>> {
        self.run(async |client| {
            found_by_id(
                &*client,
                "SELECT stored, remote_id FROM id_map WHERE instance = $1 AND entity = $2
                   AND remote_id = ANY($3) AND stored IS NOT NULL",
                instance,
                entity,
                remote_ids,
            )
            .await
        })
    }

    fn mark_pending(
        &self,
        run: i64,
        instance: &str,
        entity: Entity,
        bss_ids: &[String],
    ) -> StoreResult<()> {
        let ids = distinct(bss_ids);
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            // Fencing: a run whose lease lapsed (its process stalled past the time-to-live, and
            // another run may hold the lease now) must not send creates.
            refuse_without_lease(&transaction, run).await?;
            transaction
                .execute(
                    "INSERT INTO id_map (instance, entity, bss_id, remote_id, pending, pending_run, updated_at)
                     SELECT $1, $2, bss_id, NULL, true, $4, $5 FROM unnest($3::text[]) AS given (bss_id)
                     ON CONFLICT (instance, entity, bss_id) DO UPDATE
                     SET pending_run = CASE WHEN id_map.pending THEN id_map.pending_run ELSE EXCLUDED.pending_run END,
                         pending = true, updated_at = EXCLUDED.updated_at
                     WHERE id_map.remote_id IS NULL",
                    &[&instance, &entity.as_str(), &ids, &run, &crate::time::now_rfc3339()],
                )
                .await
                .map_err(db)?;
            transaction.commit().await.map_err(db)
        })
    }

    fn case_collisions(
        &self,
        instance: &str,
        entity: Entity,
        bss_ids: &[String],
    ) -> StoreResult<BTreeMap<String, String>> {
        self.run(async |client| {
            // `COLLATE "C"` folds ASCII only, as SQLite's lower() does, whatever the database's
            // default collation. Queued records count too: they are sent later, by another run.
            let rows = client
                .query(
                    r#"SELECT given.id, (
                         SELECT bss_id FROM (
                           SELECT bss_id FROM id_map WHERE instance = $1 AND entity = $2
                             AND lower(bss_id) = lower(given.id COLLATE "C") AND bss_id <> given.id
                           UNION ALL
                           SELECT bss_id FROM retry_queue WHERE instance = $1 AND entity = $2
                             AND lower(bss_id) = lower(given.id COLLATE "C") AND bss_id <> given.id
                         ) AS other LIMIT 1)
                       FROM unnest($3::text[]) AS given (id)"#,
                    &[&instance, &entity.as_str(), &bss_ids],
                )
                .await
                .map_err(db)?;
            Ok(rows
                .iter()
                .filter_map(|r| Some((r.get(0), r.get::<_, Option<String>>(1)?)))
                .collect())
        })
    }

    fn link(
        &self,
        instance: &str,
        entity: Entity,
        bss_id: &str,
        remote_id: &str,
    ) -> StoreResult<LinkOutcome> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            require_instance(&transaction, instance).await?;
            // A new link has no row to lock yet: links of one entity take turns.
            transaction
                .execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended('link/' || $1 || '/' || $2, 0))",
                    &[&instance, &entity.as_str()],
                )
                .await
                .map_err(db)?;
            let current: Option<Option<String>> = transaction
                .query_opt(
                    "SELECT remote_id FROM id_map WHERE instance = $1 AND entity = $2 AND bss_id = $3",
                    &[&instance, &entity.as_str(), &bss_id],
                )
                .await
                .map_err(db)?
                .map(|r| r.get(0));
            match current {
                Some(Some(existing)) if existing == remote_id => {
                    return Ok(LinkOutcome::AlreadyLinked);
                }
                Some(Some(existing)) => {
                    return Err(StoreError::Conflict(format!(
                        "{} {bss_id:?} is already linked to remote id {existing}; it is not changed",
                        entity.as_str()
                    )));
                }
                _ => {}
            }
            let other: Option<String> = transaction
                .query_opt(
                    "SELECT bss_id FROM id_map WHERE instance = $1 AND entity = $2 AND remote_id = $3",
                    &[&instance, &entity.as_str(), &remote_id],
                )
                .await
                .map_err(db)?
                .map(|r| r.get(0));
            if let Some(other) = other {
                return Err(StoreError::Conflict(format!(
                    "remote {} {remote_id} is already linked to BSS id {other:?}; one remote record is linked to one BSS record",
                    entity.as_str()
                )));
            }
            transaction
                .execute(
                    "INSERT INTO id_map (instance, entity, bss_id, remote_id, pending, pending_run, updated_at)
                     VALUES ($1, $2, $3, $4, false, NULL, $5)
                     ON CONFLICT (instance, entity, bss_id) DO UPDATE SET remote_id = $4, pending = false,
                         pending_run = NULL, updated_at = $5, last_pushed = NULL, stored = NULL",
                    &[&instance, &entity.as_str(), &bss_id, &remote_id, &crate::time::now_rfc3339()],
                )
                .await
                .map_err(db)?;
            // A record held for this link is now an ordinary update for the next retry.
            transaction
                .execute(
                    "UPDATE retry_queue SET claimed_by = NULL, claimed_at = NULL,
                         error = 'linked by hand; the next retry updates it'
                     WHERE instance = $1 AND entity = $2 AND bss_id = $3 AND claimed_by = $4",
                    &[&instance, &entity.as_str(), &bss_id, &NEEDS_LINK],
                )
                .await
                .map_err(db)?;
            transaction.commit().await.map_err(db)?;
            Ok(LinkOutcome::Linked)
        })
    }

    fn acquire_lease(
        &self,
        instance: &str,
        scope: &str,
        owner: &str,
        purpose: &str,
        ttl_ms: i64,
    ) -> StoreResult<Option<LeaseHolder>> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            // A compare-and-set in one statement: the row is taken when it is free, ours, or
            // lapsed; under a concurrent taker the condition is checked again once its row lock
            // is ours, so only one of two takers gets a row back.
            let taken = transaction
                .query_opt(
                    &format!(
                        "INSERT INTO leases (instance, scope, owner, purpose, acquired_at, expires_at)
                         VALUES ($1, $2, $3, $4, $5, {NOW_MS} + $6)
                         ON CONFLICT (instance, scope) DO UPDATE
                         SET owner = EXCLUDED.owner, purpose = EXCLUDED.purpose,
                             acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at
                         WHERE leases.owner = EXCLUDED.owner OR leases.expires_at < {NOW_MS}
                         RETURNING owner"
                    ),
                    &[&instance, &scope, &owner, &purpose, &crate::time::now_rfc3339(), &ttl_ms],
                )
                .await
                .map_err(db)?;
            if taken.is_none() {
                let holder = transaction
                    .query_opt(
                        &format!(
                            "SELECT owner, purpose, acquired_at, expires_at - {NOW_MS} FROM leases
                             WHERE instance = $1 AND scope = $2"
                        ),
                        &[&instance, &scope],
                    )
                    .await
                    .map_err(db)?;
                transaction.commit().await.map_err(db)?;
                return Ok(Some(match holder {
                    Some(row) => LeaseHolder {
                        owner: row.get(0),
                        purpose: row.get(1),
                        acquired_at: row.get(2),
                        expires_in_ms: row.get(3),
                    },
                    // Released between the two statements: say so rather than take it unseen.
                    None => LeaseHolder {
                        owner: "(released just now)".into(),
                        purpose: "another run that has just ended; try again".into(),
                        acquired_at: crate::time::now_rfc3339(),
                        expires_in_ms: 0,
                    },
                }));
            }
            sweep_interrupted(&transaction).await?;
            transaction.commit().await.map_err(db)?;
            Ok(None)
        })
    }

    fn renew_lease(
        &self,
        instance: &str,
        scope: &str,
        owner: &str,
        ttl_ms: i64,
    ) -> StoreResult<bool> {
        self.run(async |client| {
            let changed = client
                .execute(
                    &format!(
                        "UPDATE leases SET expires_at = {NOW_MS} + $4
                         WHERE instance = $1 AND scope = $2 AND owner = $3"
                    ),
                    &[&instance, &scope, &owner, &ttl_ms],
                )
                .await
                .map_err(db)?;
            Ok(changed == 1)
        })
    }

    fn release_lease(&self, instance: &str, scope: &str, owner: &str) -> StoreResult<()> {
        self.run(async |client| {
            client
                .execute(
                    "DELETE FROM leases WHERE instance = $1 AND scope = $2 AND owner = $3",
                    &[&instance, &scope, &owner],
                )
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    fn record_outcomes(
        &self,
        run: i64,
        instance: &str,
        entity: Entity,
        outcomes: &[(String, Outcome)],
    ) -> StoreResult<()> {
        let now = crate::time::now_rfc3339();
        let entity_name = entity.as_str();
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            // The run's row lock numbers its items: two batches of one run take turns.
            let locked = transaction
                .query_opt("SELECT 1 FROM runs WHERE id = $1 FOR UPDATE", &[&run])
                .await
                .map_err(db)?;
            if locked.is_none() {
                return Err(StoreError::Database(format!(
                    "run {run} is not in the store; its outcomes are not recorded"
                )));
            }
            let first: i64 = transaction
                .query_one(
                    "SELECT coalesce(max(seq), 0) FROM run_items WHERE run = $1",
                    &[&run],
                )
                .await
                .map_err(db)?
                .get(0);
            let mut items = ItemColumns::default();
            let mut counters: BTreeMap<&'static str, i64> = BTreeMap::new();
            for (bss_id, outcome) in outcomes {
                let remote_id = apply_outcome(
                    &transaction,
                    run,
                    instance,
                    entity_name,
                    bss_id,
                    outcome,
                    &now,
                )
                .await?;
                items.push(bss_id, outcome, remote_id);
                *counters.entry(outcome.counter().column()).or_default() += 1;
            }
            let seqs: Vec<i64> = (first + 1..).take(outcomes.len()).collect();
            transaction
                .execute(
                    "INSERT INTO run_items (run, seq, entity, bss_id, outcome, remote_id, message)
                     SELECT $1, seq, $2, bss_id, outcome, remote_id, message
                     FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
                          AS item (seq, bss_id, outcome, remote_id, message)",
                    &[
                        &run,
                        &entity_name,
                        &seqs,
                        &items.bss_ids,
                        &items.outcomes,
                        &items.remote_ids,
                        &items.messages,
                    ],
                )
                .await
                .map_err(db)?;
            if !counters.is_empty() {
                let sets = counters
                    .iter()
                    .map(|(column, added)| format!("{column} = {column} + {added}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                transaction
                    .execute(&format!("UPDATE runs SET {sets} WHERE id = $1"), &[&run])
                    .await
                    .map_err(db)?;
            }
            transaction.commit().await.map_err(db)
        })
    }

    fn start_run(
        &self,
        instance: &str,
        kind: RunKind,
        trigger: RunTrigger,
        entity: Option<Entity>,
        dry_run: bool,
        owner: Option<&str>,
    ) -> StoreResult<i64> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            let started = transaction
                .query_one(
                    "INSERT INTO runs (instance, kind, entity, dry_run, started_at, status, owner, trigger)
                     VALUES ($1, $2, $3, $4, $5, 'running', $6, $7) RETURNING id",
                    &[
                        &instance,
                        &kind.as_str(),
                        &entity.map(Entity::as_str),
                        &dry_run,
                        &crate::time::now_rfc3339(),
                        &owner,
                        &trigger.as_str(),
                    ],
                )
                .await;
            let run: i64 = match started {
                Ok(row) => row.get(0),
                Err(e)
                    if e.code()
                        == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) =>
                {
                    return Err(StoreError::NoInstance(instance.to_string()));
                }
                Err(e) => return Err(db(e)),
            };
            if let Some((job, attempt, worker)) =
                owner.and_then(crate::store::job_store::parse_job_owner)
            {
                transaction
                    .execute(
                        "UPDATE jobs SET run = $3
                         WHERE id = $1 AND worker = $2 AND attempts = $4 AND state = 'running'
                           AND run IS NULL",
                        &[&job, &worker, &run, &attempt],
                    )
                    .await
                    .map_err(db)?;
            }
            transaction.commit().await.map_err(db)?;
            Ok(run)
        })
    }

    fn finish_run(
        &self,
        run: i64,
        status: RunStatus,
        message: Option<&str>,
        pulled: i64,
    ) -> StoreResult<()> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            let now = crate::time::now_rfc3339();
            transaction
                .execute(
                    "UPDATE runs SET status = $2, message = $3, finished_at = $4, pulled = $5 WHERE id = $1",
                    &[&run, &status.as_str(), &message, &now, &pulled],
                )
                .await
                .map_err(db)?;
            transaction.commit().await.map_err(db)?;
            Ok(())
        })
    }

    fn runs(&self, instance: &str) -> StoreResult<Vec<RunRow>> {
        self.run(async |client| {
            require_instance(&*client, instance).await?;
            sweep_interrupted(&*client).await?;
            client
                .query(
                    &format!("SELECT {RUN_COLUMNS} FROM runs WHERE instance = $1 ORDER BY id"),
                    &[&instance],
                )
                .await
                .map_err(db)?
                .iter()
                .map(run_row)
                .collect()
        })
    }

    fn run(&self, run: i64) -> StoreResult<Option<(RunRow, Vec<RunItem>)>> {
        self.run(async |client| {
            sweep_interrupted(&*client).await?;
            let Some(row) = client
                .query_opt(
                    &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"),
                    &[&run],
                )
                .await
                .map_err(db)?
            else {
                return Ok(None);
            };
            let items = client
                .query(
                    "SELECT entity, bss_id, outcome, remote_id, message FROM run_items
                     WHERE run = $1 ORDER BY seq",
                    &[&run],
                )
                .await
                .map_err(db)?
                .iter()
                .map(|r| {
                    Ok(RunItem {
                        entity: parsed::<Entity>(r.get(0), "run_items.entity")?,
                        bss_id: r.get(1),
                        outcome: r.get(2),
                        remote_id: r.get(3),
                        message: r.get(4),
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(Some((run_row(&row)?, items)))
        })
    }

    fn claim_queue(
        &self,
        instance: &str,
        only: Option<Entity>,
        claimer: &str,
    ) -> StoreResult<Vec<QueueItem>> {
        self.run(async |client| {
            let rows = client
                .query(
                    &format!(
                        "WITH now AS (SELECT {NOW_MS} / 1000 AS s)
                         UPDATE retry_queue SET claimed_by = $2, claimed_at = (SELECT s FROM now)
                         WHERE (instance, entity, bss_id) IN (
                             SELECT instance, entity, bss_id FROM retry_queue
                             WHERE instance = $1
                               AND (claimed_by IS NULL OR claimed_at < (SELECT s FROM now) - $3)
                               AND ($4::text IS NULL OR entity = $4)
                             FOR UPDATE SKIP LOCKED)
                         RETURNING {QUEUE_COLUMNS}"
                    ),
                    &[
                        &instance,
                        &claimer,
                        &STALE_CLAIM_SECS,
                        &only.map(Entity::as_str),
                    ],
                )
                .await
                .map_err(db)?;
            queue_items(&rows)
        })
    }

    fn claim_settled(
        &self,
        instance: &str,
        entity: Entity,
        claimer: &str,
    ) -> StoreResult<Vec<QueueItem>> {
        self.run(async |client| {
            let rows = client
                .query(
                    &format!(
                        "WITH now AS (SELECT {NOW_MS} / 1000 AS s)
                         UPDATE retry_queue SET claimed_by = $3, claimed_at = (SELECT s FROM now)
                         WHERE (instance, entity, bss_id) IN (
                             SELECT q.instance, q.entity, q.bss_id FROM retry_queue q
                             WHERE q.instance = $1 AND q.waits_entity = $2
                               AND (q.claimed_by IS NULL OR q.claimed_at < (SELECT s FROM now) - $4)
                               AND EXISTS (SELECT 1 FROM id_map m WHERE m.instance = q.instance
                                   AND m.entity = q.waits_entity AND m.bss_id = q.waits_bss_id
                                   AND m.remote_id IS NOT NULL)
                             FOR UPDATE OF q SKIP LOCKED)
                         RETURNING {QUEUE_COLUMNS}"
                    ),
                    &[&instance, &entity.as_str(), &claimer, &STALE_CLAIM_SECS],
                )
                .await
                .map_err(db)?;
            queue_items(&rows)
        })
    }

    fn claimed(
        &self,
        instance: &str,
        claimer: &str,
        entity: Entity,
    ) -> StoreResult<Vec<QueueItem>> {
        self.run(async |client| {
            let rows = client
                .query(
                    &format!(
                        "SELECT {QUEUE_COLUMNS} FROM retry_queue
                         WHERE instance = $1 AND claimed_by = $2 AND entity = $3"
                    ),
                    &[&instance, &claimer, &entity.as_str()],
                )
                .await
                .map_err(db)?;
            queue_items(&rows)
        })
    }

    fn release_queue(&self, instance: &str, claimer: &str) -> StoreResult<()> {
        self.run(async |client| {
            client
                .execute(
                    "UPDATE retry_queue SET claimed_by = NULL, claimed_at = NULL
                     WHERE instance = $1 AND claimed_by = $2",
                    &[&instance, &claimer],
                )
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    fn queue(&self, instance: &str) -> StoreResult<Vec<QueueItem>> {
        self.run(async |client| {
            require_instance(&*client, instance).await?;
            let rows = client
                .query(
                    &format!("SELECT {QUEUE_COLUMNS} FROM retry_queue WHERE instance = $1"),
                    &[&instance],
                )
                .await
                .map_err(db)?;
            queue_items(&rows)
        })
    }

    fn queue_depths(&self) -> StoreResult<BTreeMap<String, i64>> {
        self.run(async |client| {
            let rows = client
                .query(
                    "SELECT instance, count(*) FROM retry_queue GROUP BY instance",
                    &[],
                )
                .await
                .map_err(db)?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn runs_running_since(&self, started_before: &str) -> StoreResult<Vec<RunRow>> {
        self.run(async |client| {
            client
                .query(
                    &format!(
                        "SELECT {RUN_COLUMNS} FROM runs WHERE status = 'running' AND started_at < $1 ORDER BY id"
                    ),
                    &[&started_before],
                )
                .await
                .map_err(db)?
                .iter()
                .map(run_row)
                .collect()
        })
    }

    fn cursor(&self, instance: &str, entity: Entity) -> StoreResult<Cursor> {
        self.run(async |client| {
            let row = client
                .query_opt(
                    "SELECT stamp, delivered FROM cursors WHERE instance = $1 AND entity = $2",
                    &[&instance, &entity.as_str()],
                )
                .await
                .map_err(db)?;
            Ok(match row {
                Some(row) => Cursor {
                    stamp: row.get(0),
                    delivered_at_stamp: serde_json::from_str(row.get(1)).unwrap_or_default(),
                },
                None => Cursor::default(),
            })
        })
    }

    fn commit_pull(
        &self,
        run: i64,
        instance: &str,
        entity: Entity,
        cursor: &Cursor,
        pulled: i64,
    ) -> StoreResult<()> {
        let delivered = serde_json::to_string(&cursor.delivered_at_stamp)
            .map_err(|e| StoreError::Database(e.to_string()))?;
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            // A pull that lost its lease must not move the cursor another run now owns.
            refuse_without_lease(&transaction, run).await?;
            transaction
                .execute(
                    "INSERT INTO cursors (instance, entity, stamp, delivered) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (instance, entity) DO UPDATE SET stamp = $3, delivered = $4",
                    &[&instance, &entity.as_str(), &cursor.stamp, &delivered],
                )
                .await
                .map_err(db)?;
            transaction
                .execute(
                    "UPDATE runs SET status = 'done', finished_at = $2, pulled = $3 WHERE id = $1",
                    &[&run, &crate::time::now_rfc3339(), &pulled],
                )
                .await
                .map_err(db)?;
            transaction.commit().await.map_err(db)
        })
    }
}

/// A batch's run items as columns, inserted with one `unnest`.
#[derive(Default)]
struct ItemColumns {
    bss_ids: Vec<String>,
    outcomes: Vec<&'static str>,
    remote_ids: Vec<Option<String>>,
    messages: Vec<Option<String>>,
}

impl ItemColumns {
    fn push(&mut self, bss_id: &str, outcome: &Outcome, remote_id: Option<String>) {
        self.bss_ids.push(bss_id.to_string());
        self.outcomes.push(outcome.label());
        self.remote_ids.push(remote_id);
        self.messages.push(outcome.message());
    }
}

#[cfg(test)]
mod tests {
    //! The shared sync behaviour (`store/behaviour/sync.rs`) on a PostgreSQL scratch database.
    use super::*;
    use crate::store::behaviour;
    use crate::store::postgres::scratch::ScratchDb;

    #[test]
    fn a_removal_is_known_unlinks_and_unqueues() {
        let scratch = ScratchDb::create();
        behaviour::sync::a_removal_is_known_unlinks_and_unqueues(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }

    #[test]
    fn a_queue_item_is_claimed_by_one_claimer_only() {
        let scratch = ScratchDb::create();
        behaviour::sync::a_queue_item_is_claimed_by_one_claimer_only(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }

    #[test]
    fn a_lease_has_one_live_owner_and_a_lapsed_one_is_taken_over() {
        let scratch = ScratchDb::create();
        behaviour::sync::a_lease_has_one_live_owner_and_a_lapsed_one_is_taken_over(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }

    #[test]
    fn outcomes_write_items_id_map_queue_and_counters() {
        let scratch = ScratchDb::create();
        behaviour::sync::outcomes_write_items_id_map_queue_and_counters(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }

    #[test]
    fn a_pull_commits_its_cursor_and_run_end_together() {
        let scratch = ScratchDb::create();
        behaviour::sync::a_pull_commits_its_cursor_and_run_end_together(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }
}
