//! [`InstanceStore`] on SQLite: instances, settings, lookups, sync options, checks, the request
//! budget.

use super::*;

impl InstanceStore for SqliteStore {
    fn create_instance(&self, i: &InstanceRow) -> StoreResult<()> {
        let result = self.lock().execute(
            "INSERT INTO instances (name, connector, version_req, installation, enabled, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![i.name, i.connector, i.version_req, i.installation, i.enabled, i.created_at],
        );
        match result {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::DuplicateInstance(i.name.clone()))
            }
            Err(e) => Err(db(e)),
        }
    }

    fn instance(&self, name: &str) -> StoreResult<Option<InstanceRow>> {
        self.lock()
            .query_row(
                "SELECT name, connector, version_req, installation, enabled, created_at FROM instances WHERE name = ?1",
                [name],
                instance_row,
            )
            .optional()
            .map_err(db)
    }

    fn instances(&self) -> StoreResult<Vec<InstanceRow>> {
        let connection = self.lock();
        let mut statement = connection
            .prepare("SELECT name, connector, version_req, installation, enabled, created_at FROM instances ORDER BY name")
            .map_err(db)?;
        let rows = statement.query_map([], instance_row).map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn set_version_req(&self, name: &str, requirement: Option<&str>) -> StoreResult<()> {
        let changed = self
            .lock()
            .execute(
                "UPDATE instances SET version_req = ?2 WHERE name = ?1",
                params![name, requirement],
            )
            .map_err(db)?;
        if changed == 0 {
            Err(StoreError::NoInstance(name.to_string()))
        } else {
            Ok(())
        }
    }

    fn set_enabled(&self, name: &str, enabled: bool) -> StoreResult<()> {
        let changed = self
            .lock()
            .execute(
                "UPDATE instances SET enabled = ?2 WHERE name = ?1",
                params![name, enabled],
            )
            .map_err(db)?;
        if changed == 0 {
            Err(StoreError::NoInstance(name.to_string()))
        } else {
            Ok(())
        }
    }

    fn delete_instance(&self, name: &str) -> StoreResult<()> {
        let connection = self.lock();
        connection
            .execute("DELETE FROM request_budget WHERE instance = ?1", [name])
            .map_err(db)?;
        connection
            .execute("DELETE FROM leases WHERE instance = ?1", [name])
            .map_err(db)?;
        let changed = connection
            .execute("DELETE FROM instances WHERE name = ?1", [name])
            .map_err(db)?;
        if changed == 0 {
            Err(StoreError::NoInstance(name.to_string()))
        } else {
            Ok(())
        }
    }

    fn settings(&self, instance: &str) -> StoreResult<BTreeMap<String, StoredValue>> {
        let connection = self.lock();
        Self::require_instance(&connection, instance)?;
        let mut statement = connection
            .prepare("SELECT key, value, sealed FROM instance_settings WHERE instance = ?1")
            .map_err(db)?;
        let rows = statement
            .query_map([instance], |row| {
                let (key, value, sealed): (String, String, bool) =
                    (row.get(0)?, row.get(1)?, row.get(2)?);
                Ok((
                    key,
                    if sealed {
                        StoredValue::Sealed(value)
                    } else {
                        StoredValue::Plain(value)
                    },
                ))
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn take_request_tokens(&self, instance: &str, per_minute: u32, want: u32) -> StoreResult<u32> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let capacity = f64::from(per_minute.max(1));
        let mut connection = self.lock();
        // IMMEDIATE: take the write lock before reading, so two processes cannot both spend the
        // same tokens.
        let tx = connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        let row: Option<(f64, f64)> = tx
            .query_row(
                "SELECT tokens, updated FROM request_budget WHERE instance = ?1",
                [instance],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(db)?;
        let tokens = match row {
            // A clock that went back refills nothing rather than draining the bucket.
            Some((tokens, updated)) => {
                (tokens + (now - updated).max(0.0) * capacity / 60.0).min(capacity)
            }
            None => capacity,
        };
        let took = (tokens.floor() as u32).min(want);
        tx.execute(
            "INSERT INTO request_budget (instance, tokens, updated) VALUES (?1, ?2, ?3)
             ON CONFLICT (instance) DO UPDATE SET tokens = ?2, updated = ?3",
            params![instance, tokens - f64::from(took), now],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(took)
    }

    fn sealed_count(&self) -> StoreResult<i64> {
        self.lock()
            .query_row(
                "SELECT COUNT(*) FROM instance_settings WHERE sealed = 1",
                [],
                |row| row.get(0),
            )
            .map_err(db)
    }

    fn change_settings(
        &self,
        instance: &str,
        changes: &[(String, Option<StoredValue>)],
    ) -> StoreResult<()> {
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        Self::require_instance(&tx, instance)?;
        for (key, value) in changes {
            match value {
                Some(value) => {
                    let (text, sealed) = match value {
                        StoredValue::Plain(v) => (v, false),
                        StoredValue::Sealed(v) => (v, true),
                    };
                    tx.execute(
                        "INSERT INTO instance_settings (instance, key, value, sealed) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (instance, key) DO UPDATE SET value = ?3, sealed = ?4",
                        params![instance, key, text, sealed],
                    )
                    .map_err(db)?;
                }
                None => {
                    tx.execute(
                        "DELETE FROM instance_settings WHERE instance = ?1 AND key = ?2",
                        params![instance, key],
                    )
                    .map_err(db)?;
                }
            }
        }
        tx.commit().map_err(db)
    }

    fn lookups(&self, instance: &str) -> StoreResult<BTreeMap<String, Vec<LookupRow>>> {
        let connection = self.lock();
        Self::require_instance(&connection, instance)?;
        let mut statement = connection
            .prepare("SELECT lookup, bss_value, remote_value, pull_default FROM instance_lookups WHERE instance = ?1 ORDER BY lookup, rowid")
            .map_err(db)?;
        let rows = statement
            .query_map([instance], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    LookupRow {
                        bss_value: row.get(1)?,
                        remote_value: row.get(2)?,
                        pull_default: row.get(3)?,
                    },
                ))
            })
            .map_err(db)?;
        let mut tables: BTreeMap<String, Vec<LookupRow>> = BTreeMap::new();
        for row in rows {
            let (lookup, entry) = row.map_err(db)?;
            tables.entry(lookup).or_default().push(entry);
        }
        Ok(tables)
    }

    fn set_lookup_rows(&self, instance: &str, lookup: &str, rows: &[LookupRow]) -> StoreResult<()> {
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        Self::require_instance(&tx, instance)?;
        for row in rows {
            tx.execute(
                "INSERT INTO instance_lookups (instance, lookup, bss_value, remote_value, pull_default) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (instance, lookup, bss_value) DO UPDATE SET remote_value = ?4, pull_default = ?5",
                params![instance, lookup, row.bss_value, row.remote_value, row.pull_default],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    fn remove_lookup_rows(
        &self,
        instance: &str,
        lookup: &str,
        bss_values: &[String],
    ) -> StoreResult<()> {
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        Self::require_instance(&tx, instance)?;
        for value in bss_values {
            tx.execute(
                "DELETE FROM instance_lookups WHERE instance = ?1 AND lookup = ?2 AND bss_value = ?3",
                params![instance, lookup, value],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    fn sync_options(&self, instance: &str) -> StoreResult<Vec<(Entity, Direction, Operations)>> {
        let connection = self.lock();
        Self::require_instance(&connection, instance)?;
        let mut statement = connection
            .prepare("SELECT entity, direction, op_create, op_update, op_delete FROM instance_sync_options WHERE instance = ?1 ORDER BY entity, direction")
            .map_err(db)?;
        let rows = statement
            .query_map([instance], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            })
            .map_err(db)?;
        let mut options = Vec::new();
        for row in rows {
            let (entity, direction, create, update, delete) = row.map_err(db)?;
            options.push((
                parse_name(&entity)?,
                parse_name(&direction)?,
                Operations {
                    create,
                    update,
                    delete,
                },
            ));
        }
        Ok(options)
    }

    fn set_sync_options(
        &self,
        instance: &str,
        options: &[(Entity, Direction, Operations)],
    ) -> StoreResult<()> {
        let mut connection = self.lock();
        let tx = connection.transaction().map_err(db)?;
        Self::require_instance(&tx, instance)?;
        for (entity, direction, ops) in options {
            tx.execute(
                "INSERT INTO instance_sync_options (instance, entity, direction, op_create, op_update, op_delete) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (instance, entity, direction) DO UPDATE SET op_create = ?4, op_update = ?5, op_delete = ?6",
                params![instance, name_of(entity), name_of(direction), ops.create, ops.update, ops.delete],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    fn record_check(&self, instance: &str, check: &CheckRow) -> StoreResult<()> {
        let problems = serde_json::to_string(&check.problems)
            .map_err(|e| StoreError::Database(e.to_string()))?;
        let connection = self.lock();
        Self::require_instance(&connection, instance)?;
        connection
            .execute(
                "INSERT INTO instance_checks (instance, checked_at, ok, summary, problems) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (instance) DO UPDATE SET checked_at = ?2, ok = ?3, summary = ?4, problems = ?5",
                params![instance, check.checked_at, check.ok, check.summary, problems],
            )
            .map_err(db)?;
        Ok(())
    }

    fn last_check(&self, instance: &str) -> StoreResult<Option<CheckRow>> {
        let connection = self.lock();
        let row = connection
            .query_row(
                "SELECT checked_at, ok, summary, problems FROM instance_checks WHERE instance = ?1",
                [instance],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, bool>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(db)?;
        row.map(|(checked_at, ok, summary, problems)| {
            let problems =
                serde_json::from_str(&problems).map_err(|e| StoreError::Database(e.to_string()))?;
            Ok(CheckRow {
                checked_at,
                ok,
                summary,
                problems,
            })
        })
        .transpose()
    }
}
