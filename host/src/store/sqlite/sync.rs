//! [`SyncStore`] on SQLite: the id map, leases, runs and their outcomes, the retry queue, cursors.

use super::*;

/// Takes a record out of the retry queue (its newest outcome settles it).
fn unqueue(tx: &Connection, instance: &str, entity: &str, bss_id: &str) -> StoreResult<()> {
    tx.execute(
        "DELETE FROM retry_queue WHERE instance = ?1 AND entity = ?2 AND bss_id = ?3",
        params![instance, entity, bss_id],
    )
    .map_err(db)?;
    Ok(())
}

impl SyncStore for SqliteStore {
    fn id_map(
        &self,
        instance: &str,
        entity: Entity,
        bss_ids: &[String],
    ) -> StoreResult<BTreeMap<String, IdMapEntry>> {
        let connection = self.lock();
        let mut statement = connection
            .prepare_cached("SELECT remote_id, pending, last_pushed FROM id_map WHERE instance = ?1 AND entity = ?2 AND bss_id = ?3")
            .map_err(db)?;
        let entity = name_of(&entity);
        let mut found = BTreeMap::new();
        for id in bss_ids {
            let row = statement
                .query_row(params![instance, entity, id], |r| {
                    Ok(IdMapEntry {
                        remote_id: r.get(0)?,
                        pending: r.get(1)?,
                        last_pushed: r.get(2)?,
                    })
                })
                .optional()
                .map_err(db)?;
            if let Some(entry) = row {
                found.insert(id.clone(), entry);
            }
        }
        Ok(found)
    }

    fn stored_copies(
        &self,
        instance: &str,
        entity: Entity,
        remote_ids: &[String],
    ) -> StoreResult<BTreeMap<String, String>> {
        self.each_found(
            "SELECT stored FROM id_map WHERE instance = ?1 AND entity = ?2 AND remote_id = ?3 AND stored IS NOT NULL",
            instance,
            entity,
            remote_ids,
        )
    }

    fn bss_ids(
        &self,
        instance: &str,
        entity: Entity,
        remote_ids: &[String],
    ) -> StoreResult<BTreeMap<String, String>> {
        self.each_found(
            "SELECT bss_id FROM id_map WHERE instance = ?1 AND entity = ?2 AND remote_id = ?3",
            instance,
            entity,
            remote_ids,
        )
    }

    fn linked(&self, instance: &str, entity: Entity) -> StoreResult<BTreeMap<String, String>> {
        let connection = self.lock();
        let mut statement = connection
            .prepare(
                "SELECT remote_id, bss_id FROM id_map
                 WHERE instance = ?1 AND entity = ?2 AND remote_id IS NOT NULL",
            )
            .map_err(db)?;
        let rows = statement
            .query_map(params![instance, name_of(&entity)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(db)?
            .collect::<Result<BTreeMap<_, _>, _>>()
            .map_err(db)?;
        Ok(rows)
    }

    fn record_removal(
        &self,
        instance: &str,
        entity: Entity,
        bss_id: &str,
        remote: Option<(&str, bool)>,
    ) -> StoreResult<bool> {
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        let entity_name = name_of(&entity);
        let queued = tx
            .execute(
                "DELETE FROM retry_queue WHERE instance = ?1 AND entity = ?2 AND bss_id = ?3",
                params![instance, entity_name, bss_id],
            )
            .map_err(db)?
            > 0;
        if let Some((remote_id, deleted)) = remote {
            tx.execute(
                "INSERT OR REPLACE INTO remote_deletions (instance, entity, remote_id, bss_id, by_removal, at)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5)",
                params![instance, entity_name, remote_id, bss_id, crate::time::now_rfc3339()],
            )
            .map_err(db)?;
            if deleted {
                tx.execute(
                    "DELETE FROM id_map WHERE instance = ?1 AND entity = ?2 AND bss_id = ?3 AND pending = 0",
                    params![instance, entity_name, bss_id],
                )
                .map_err(db)?;
            }
        }
        tx.commit().map_err(db)?;
        Ok(queued)
    }

    fn known_deletions(
        &self,
        instance: &str,
        entity: Entity,
        remote_ids: &[String],
    ) -> StoreResult<std::collections::BTreeSet<String>> {
        Ok(self
            .each_found(
                "SELECT remote_id FROM remote_deletions WHERE instance = ?1 AND entity = ?2 AND remote_id = ?3",
                instance,
                entity,
                remote_ids,
            )?
            .into_keys()
            .collect())
    }

    fn note_deletions(
        &self,
        instance: &str,
        entity: Entity,
        deleted: &[(String, Option<String>)],
    ) -> StoreResult<()> {
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        let at = crate::time::now_rfc3339();
        for (remote_id, bss_id) in deleted {
            tx.execute(
                "INSERT OR IGNORE INTO remote_deletions (instance, entity, remote_id, bss_id, by_removal, at)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5)",
                params![instance, name_of(&entity), remote_id, bss_id, at],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(())
    }

    fn forget_deletion(&self, instance: &str, entity: Entity, remote_id: &str) -> StoreResult<()> {
        let connection = self.lock();
        connection
            .execute(
                "DELETE FROM remote_deletions WHERE instance = ?1 AND entity = ?2 AND remote_id = ?3",
                params![instance, name_of(&entity), remote_id],
            )
            .map_err(db)?;
        Ok(())
    }

    fn mark_pending(
        &self,
        run: i64,
        instance: &str,
        entity: Entity,
        bss_ids: &[String],
    ) -> StoreResult<()> {
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        // Fencing: a run whose lease lapsed (its process stalled past the time-to-live, and
        // another run may hold the lease now) must not send creates.
        refuse_without_lease(&tx, run)?;
        let now = crate::time::now_rfc3339();
        for id in bss_ids {
            tx.execute(
                "INSERT INTO id_map (instance, entity, bss_id, remote_id, pending, pending_run, updated_at) VALUES (?1, ?2, ?3, NULL, 1, ?5, ?4)
                 ON CONFLICT (instance, entity, bss_id) DO UPDATE
                 SET pending_run = CASE WHEN pending = 1 THEN pending_run ELSE ?5 END, pending = 1, updated_at = ?4
                 WHERE remote_id IS NULL",
                params![instance, name_of(&entity), id, now, run],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    fn case_collisions(
        &self,
        instance: &str,
        entity: Entity,
        bss_ids: &[String],
    ) -> StoreResult<BTreeMap<String, String>> {
        self.each_found(
            // Queued records count too: they are sent later, by another run.
            "SELECT bss_id FROM id_map WHERE instance = ?1 AND entity = ?2 AND lower(bss_id) = lower(?3) AND bss_id <> ?3
             UNION ALL
             SELECT bss_id FROM retry_queue WHERE instance = ?1 AND entity = ?2 AND lower(bss_id) = lower(?3) AND bss_id <> ?3
             LIMIT 1",
            instance,
            entity,
            bss_ids,
        )
    }

    fn link(
        &self,
        instance: &str,
        entity: Entity,
        bss_id: &str,
        remote_id: &str,
    ) -> StoreResult<LinkOutcome> {
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        Self::require_instance(&tx, instance)?;
        let entity_name = name_of(&entity);
        let current: Option<Option<String>> = tx
            .query_row(
                "SELECT remote_id FROM id_map WHERE instance = ?1 AND entity = ?2 AND bss_id = ?3",
                params![instance, entity_name, bss_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        match current {
            Some(Some(existing)) if existing == remote_id => return Ok(LinkOutcome::AlreadyLinked),
            Some(Some(existing)) => {
                return Err(StoreError::Conflict(format!(
                    "{} {bss_id:?} is already linked to remote id {existing}; it is not changed",
                    entity.as_str()
                )));
            }
            _ => {}
        }
        let other: Option<String> = tx
            .query_row(
                "SELECT bss_id FROM id_map WHERE instance = ?1 AND entity = ?2 AND remote_id = ?3",
                params![instance, entity_name, remote_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        if let Some(other) = other {
            return Err(StoreError::Conflict(format!(
                "remote {} {remote_id} is already linked to BSS id {other:?}; one remote record is linked to one BSS record",
                entity.as_str()
            )));
        }
        tx.execute(
            "INSERT INTO id_map (instance, entity, bss_id, remote_id, pending, pending_run, updated_at) VALUES (?1, ?2, ?3, ?4, 0, NULL, ?5)
             ON CONFLICT (instance, entity, bss_id) DO UPDATE SET remote_id = ?4, pending = 0, pending_run = NULL, updated_at = ?5, last_pushed = NULL, stored = NULL",
            params![instance, entity_name, bss_id, remote_id, crate::time::now_rfc3339()],
        )
        .map_err(db)?;
        // A record held for this link is now an ordinary update for the next retry.
        tx.execute(
            "UPDATE retry_queue SET claimed_by = NULL, claimed_at = NULL, error = 'linked by hand; the next retry updates it'
             WHERE instance = ?1 AND entity = ?2 AND bss_id = ?3 AND claimed_by = ?4",
            params![instance, entity_name, bss_id, NEEDS_LINK],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(LinkOutcome::Linked)
    }

    fn acquire_lease(
        &self,
        instance: &str,
        scope: &str,
        owner: &str,
        purpose: &str,
        ttl_ms: i64,
    ) -> StoreResult<Option<LeaseHolder>> {
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        let now = unix_millis();
        let held: Option<LeaseHolder> = tx
            .query_row(
                "SELECT owner, purpose, acquired_at, expires_at FROM leases WHERE instance = ?1 AND scope = ?2",
                params![instance, scope],
                |r| {
                    Ok(LeaseHolder {
                        owner: r.get(0)?,
                        purpose: r.get(1)?,
                        acquired_at: r.get(2)?,
                        expires_in_ms: r.get::<_, i64>(3)? - now,
                    })
                },
            )
            .optional()
            .map_err(db)?;
        if let Some(holder) = held
            && holder.owner != owner
            && holder.expires_in_ms >= 0
        {
            return Ok(Some(holder));
        }
        tx.execute(
            "INSERT INTO leases (instance, scope, owner, purpose, acquired_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (instance, scope) DO UPDATE SET owner = ?3, purpose = ?4, acquired_at = ?5, expires_at = ?6",
            params![instance, scope, owner, purpose, crate::time::now_rfc3339(), now + ttl_ms],
        )
        .map_err(db)?;
        sweep_interrupted(&tx).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(None)
    }

    fn renew_lease(
        &self,
        instance: &str,
        scope: &str,
        owner: &str,
        ttl_ms: i64,
    ) -> StoreResult<bool> {
        let changed = self
            .lock()
            .execute(
                "UPDATE leases SET expires_at = ?4 WHERE instance = ?1 AND scope = ?2 AND owner = ?3",
                params![instance, scope, owner, unix_millis() + ttl_ms],
            )
            .map_err(db)?;
        Ok(changed == 1)
    }

    fn release_lease(&self, instance: &str, scope: &str, owner: &str) -> StoreResult<()> {
        self.lock()
            .execute(
                "DELETE FROM leases WHERE instance = ?1 AND scope = ?2 AND owner = ?3",
                params![instance, scope, owner],
            )
            .map_err(db)?;
        Ok(())
    }

    fn record_outcomes(
        &self,
        run: i64,
        instance: &str,
        entity: Entity,
        outcomes: &[(String, Outcome)],
    ) -> StoreResult<()> {
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        let now = crate::time::now_rfc3339();
        let entity_name = name_of(&entity);
        let mut seq: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM run_items WHERE run = ?1",
                [run],
                |r| r.get(0),
            )
            .map_err(db)?;
        for (bss_id, outcome) in outcomes {
            seq += 1;
            let remote_id: Option<String> = match outcome {
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
                    tx.execute(
                            "INSERT INTO id_map (instance, entity, bss_id, remote_id, pending, pending_run, updated_at, last_pushed, stored) VALUES (?1, ?2, ?3, ?4, 0, NULL, ?5, ?6, ?7)
                             ON CONFLICT (instance, entity, bss_id) DO UPDATE SET remote_id = ?4, pending = 0, pending_run = NULL, updated_at = ?5, last_pushed = ?6, stored = ?7",
                            params![instance, entity_name, bss_id, remote_id, now, last_pushed, stored],
                        )
                        .map_err(db)?;
                    unqueue(&tx, instance, &entity_name, bss_id)?;
                    if let Some(waiting) = waiting {
                        tx.execute(
                                "INSERT INTO retry_queue (instance, entity, bss_id, record, error, attempts, queued_at, waits_entity, waits_bss_id)
                                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8)",
                                params![
                                    instance,
                                    entity_name,
                                    bss_id,
                                    waiting.record,
                                    waiting.message,
                                    now,
                                    name_of(&waiting.waits.0),
                                    waiting.waits.1
                                ],
                            )
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
                        // Only the run that set a pending mark knows its create did not
                        // happen; an older mark stays for the next try to look up.
                        tx.execute(
                                "DELETE FROM id_map WHERE instance = ?1 AND entity = ?2 AND bss_id = ?3 AND remote_id IS NULL AND (pending = 0 OR pending_run = ?4)",
                                params![instance, entity_name, bss_id, run],
                            )
                            .map_err(db)?;
                    }
                    if *retryable {
                        let (waits_entity, waits_id) = match waits {
                            Some((entity, id)) => (Some(name_of(entity)), Some(id.as_str())),
                            None => (None, None),
                        };
                        tx.execute(
                                "INSERT INTO retry_queue (instance, entity, bss_id, record, error, attempts, queued_at, claimed_by, claimed_at, waits_entity, waits_bss_id)
                                 VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, NULL, NULL, ?7, ?8)
                                 ON CONFLICT (instance, entity, bss_id) DO UPDATE SET record = ?4, error = ?5, attempts = attempts + 1, claimed_by = NULL, claimed_at = NULL, waits_entity = ?7, waits_bss_id = ?8",
                                params![instance, entity_name, bss_id, record, message, now, waits_entity, waits_id],
                            )
                            .map_err(db)?;
                    } else if label.is_some() {
                        // Kept for `link`, which checks the remote record against it, and
                        // held (never claimed by a retry) until then.
                        tx.execute(
                                "INSERT INTO retry_queue (instance, entity, bss_id, record, error, attempts, queued_at, claimed_by, claimed_at, waits_entity, waits_bss_id)
                                 VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8, NULL, NULL)
                                 ON CONFLICT (instance, entity, bss_id) DO UPDATE SET record = ?4, error = ?5, attempts = attempts + 1, claimed_by = ?7, claimed_at = ?8",
                                params![instance, entity_name, bss_id, record, message, now, NEEDS_LINK, i64::MAX],
                            )
                            .map_err(db)?;
                    } else {
                        unqueue(&tx, instance, &entity_name, bss_id)?;
                    }
                    None
                }
                Outcome::Invalid { .. } => {
                    // The newest version of the record is unusable: an older queued one
                    // must not be sent in its place.
                    unqueue(&tx, instance, &entity_name, bss_id)?;
                    None
                }
                Outcome::Skipped { .. } => {
                    unqueue(&tx, instance, &entity_name, bss_id)?;
                    None
                }
                Outcome::Held { .. } => {
                    // The BSS's version is not the remote's yet: nothing queued (a retry
                    // would be held again), the record waits for a decision.
                    unqueue(&tx, instance, &entity_name, bss_id)?;
                    tx
                            .query_row(
                                "SELECT remote_id FROM id_map WHERE instance = ?1 AND entity = ?2 AND bss_id = ?3",
                                params![instance, entity_name, bss_id],
                                |r| r.get::<_, Option<String>>(0),
                            )
                            .optional()
                            .map_err(db)?
                            .flatten()
                }
            };
            tx.execute(
                "INSERT INTO run_items (run, seq, entity, bss_id, outcome, remote_id, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![run, seq, entity_name, bss_id, outcome.label(), remote_id, outcome.message()],
            )
            .map_err(db)?;
            tx.execute(
                &format!(
                    "UPDATE runs SET {column} = {column} + 1 WHERE id = ?1",
                    column = outcome.counter().column()
                ),
                [run],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)
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
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        Self::require_instance(&tx, instance)?;
        tx.execute(
            "INSERT INTO runs (instance, kind, entity, dry_run, started_at, status, owner, trigger) VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7)",
            params![instance, kind.as_str(), entity.map(|e| name_of(&e)), dry_run, crate::time::now_rfc3339(), owner, trigger.as_str()],
        )
        .map_err(db)?;
        let run = tx.last_insert_rowid();
        if let Some((job, attempt, worker)) =
            owner.and_then(crate::store::job_store::parse_job_owner)
        {
            tx.execute(
                "UPDATE jobs SET run = ?3
                 WHERE id = ?1 AND worker = ?2 AND attempts = ?4 AND state = 'running' AND run IS NULL",
                params![job, worker, run, attempt],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(run)
    }

    fn finish_run(
        &self,
        run: i64,
        status: RunStatus,
        message: Option<&str>,
        pulled: i64,
    ) -> StoreResult<()> {
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        let now = crate::time::now_rfc3339();
        tx.execute(
            "UPDATE runs SET status = ?2, message = ?3, finished_at = ?4, pulled = ?5 WHERE id = ?1",
            params![run, status.as_str(), message, now, pulled],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(())
    }

    fn runs(&self, instance: &str) -> StoreResult<Vec<RunRow>> {
        let connection = self.lock();
        Self::require_instance(&connection, instance)?;
        sweep_interrupted(&connection).map_err(db)?;
        let mut statement = connection
            .prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE instance = ?1 ORDER BY id"
            ))
            .map_err(db)?;
        let rows = statement.query_map([instance], run_row).map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn run(&self, run: i64) -> StoreResult<Option<(RunRow, Vec<RunItem>)>> {
        let connection = self.lock();
        sweep_interrupted(&connection).map_err(db)?;
        let Some(row) = connection
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                [run],
                run_row,
            )
            .optional()
            .map_err(db)?
        else {
            return Ok(None);
        };
        let mut statement = connection
            .prepare("SELECT entity, bss_id, outcome, remote_id, message FROM run_items WHERE run = ?1 ORDER BY seq")
            .map_err(db)?;
        let items = statement
            .query_map([run], |r| {
                Ok(RunItem {
                    entity: named(r, 0)?,
                    bss_id: r.get(1)?,
                    outcome: r.get(2)?,
                    remote_id: r.get(3)?,
                    message: r.get(4)?,
                })
            })
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(Some((row, items)))
    }

    fn claim_queue(
        &self,
        instance: &str,
        only: Option<Entity>,
        claimer: &str,
    ) -> StoreResult<Vec<QueueItem>> {
        let connection = self.lock();
        let now = unix_now();
        // One UPDATE ... RETURNING: SQLite runs it as a single write, so two claimers never take
        // an item at the same moment. A claim older than STALE_CLAIM_SECS is taken over (its
        // claimer is presumed dead); a claimer re-reads what it still holds before sending.
        let mut statement = connection
            .prepare(
                "UPDATE retry_queue SET claimed_by = ?2, claimed_at = ?3
                 WHERE instance = ?1 AND (claimed_by IS NULL OR claimed_at < ?4)
                   AND (?5 IS NULL OR entity = ?5)
                 RETURNING entity, bss_id, record, error, attempts, queued_at",
            )
            .map_err(db)?;
        let rows = statement
            .query_map(
                params![
                    instance,
                    claimer,
                    now,
                    now - STALE_CLAIM_SECS,
                    only.map(|e| name_of(&e))
                ],
                queue_item,
            )
            .map_err(db)?;
        sorted_items(rows)
    }

    fn claim_settled(
        &self,
        instance: &str,
        entity: Entity,
        claimer: &str,
    ) -> StoreResult<Vec<QueueItem>> {
        let connection = self.lock();
        let now = unix_now();
        let mut statement = connection
            .prepare(
                "UPDATE retry_queue SET claimed_by = ?3, claimed_at = ?4
                 WHERE instance = ?1 AND waits_entity = ?2 AND (claimed_by IS NULL OR claimed_at < ?5)
                   AND EXISTS (SELECT 1 FROM id_map m WHERE m.instance = retry_queue.instance AND m.entity = retry_queue.waits_entity
                               AND m.bss_id = retry_queue.waits_bss_id AND m.remote_id IS NOT NULL)
                 RETURNING entity, bss_id, record, error, attempts, queued_at",
            )
            .map_err(db)?;
        let rows = statement
            .query_map(
                params![
                    instance,
                    name_of(&entity),
                    claimer,
                    now,
                    now - STALE_CLAIM_SECS
                ],
                queue_item,
            )
            .map_err(db)?;
        sorted_items(rows)
    }

    fn claimed(
        &self,
        instance: &str,
        claimer: &str,
        entity: Entity,
    ) -> StoreResult<Vec<QueueItem>> {
        let connection = self.lock();
        let mut statement = connection
            .prepare("SELECT entity, bss_id, record, error, attempts, queued_at FROM retry_queue WHERE instance = ?1 AND claimed_by = ?2 AND entity = ?3 ORDER BY bss_id")
            .map_err(db)?;
        let rows = statement
            .query_map(params![instance, claimer, name_of(&entity)], queue_item)
            .map_err(db)?;
        sorted_items(rows)
    }

    fn release_queue(&self, instance: &str, claimer: &str) -> StoreResult<()> {
        self.lock()
            .execute(
                "UPDATE retry_queue SET claimed_by = NULL, claimed_at = NULL WHERE instance = ?1 AND claimed_by = ?2",
                params![instance, claimer],
            )
            .map_err(db)?;
        Ok(())
    }

    fn queue(&self, instance: &str) -> StoreResult<Vec<QueueItem>> {
        let connection = self.lock();
        Self::require_instance(&connection, instance)?;
        let mut statement = connection
            .prepare("SELECT entity, bss_id, record, error, attempts, queued_at FROM retry_queue WHERE instance = ?1 ORDER BY entity, bss_id")
            .map_err(db)?;
        let rows = statement.query_map([instance], queue_item).map_err(db)?;
        sorted_items(rows)
    }

    fn queue_depths(&self) -> StoreResult<BTreeMap<String, i64>> {
        counts_by_instance(
            &self.lock(),
            "SELECT instance, COUNT(*) FROM retry_queue GROUP BY instance",
        )
    }

    fn runs_running_since(&self, started_before: &str) -> StoreResult<Vec<RunRow>> {
        let connection = self.lock();
        let mut statement = connection
            .prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE status = 'running' AND started_at < ?1 ORDER BY id"
            ))
            .map_err(db)?;
        let rows = statement
            .query_map([started_before], run_row)
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(rows)
    }

    fn cursor(&self, instance: &str, entity: Entity) -> StoreResult<Cursor> {
        let row: Option<(Option<String>, String)> = self
            .lock()
            .query_row(
                "SELECT stamp, delivered FROM cursors WHERE instance = ?1 AND entity = ?2",
                params![instance, name_of(&entity)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db)?;
        Ok(match row {
            Some((stamp, delivered)) => Cursor {
                stamp,
                delivered_at_stamp: serde_json::from_str(&delivered).unwrap_or_default(),
            },
            None => Cursor::default(),
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
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        // A pull that lost its lease must not move the cursor another run now owns.
        refuse_without_lease(&tx, run)?;
        let delivered = serde_json::to_string(&cursor.delivered_at_stamp)
            .map_err(|e| StoreError::Database(e.to_string()))?;
        tx.execute(
            "INSERT INTO cursors (instance, entity, stamp, delivered) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (instance, entity) DO UPDATE SET stamp = ?3, delivered = ?4",
            params![instance, name_of(&entity), cursor.stamp, delivered],
        )
        .map_err(db)?;
        tx.execute(
            "UPDATE runs SET status = 'done', finished_at = ?2, pulled = ?3 WHERE id = ?1",
            params![run, crate::time::now_rfc3339(), pulled],
        )
        .map_err(db)?;
        tx.commit().map_err(db)
    }
}

#[cfg(test)]
mod tests {
    //! The shared sync behaviour (`store/behaviour/sync.rs`) on SQLite files.
    use super::*;
    use crate::store::behaviour;

    #[test]
    fn a_removal_is_known_unlinks_and_unqueues() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::sync::a_removal_is_known_unlinks_and_unqueues(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }

    #[test]
    fn a_queue_item_is_claimed_by_one_claimer_only() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::sync::a_queue_item_is_claimed_by_one_claimer_only(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }

    #[test]
    fn a_lease_has_one_live_owner_and_a_lapsed_one_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::sync::a_lease_has_one_live_owner_and_a_lapsed_one_is_taken_over(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }

    #[test]
    fn outcomes_write_items_id_map_queue_and_counters() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::sync::outcomes_write_items_id_map_queue_and_counters(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }

    #[test]
    fn a_pull_commits_its_cursor_and_run_end_together() {
        let dir = tempfile::tempdir().unwrap();
        behaviour::sync::a_pull_commits_its_cursor_and_run_end_together(&|| {
            Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
        });
    }
}
