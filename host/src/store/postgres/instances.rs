//! [`InstanceStore`] on PostgreSQL: instances, settings, lookups, sync options, checks and the
//! request budget. Every change that reads before it writes is one transaction; the instance row
//! is locked `FOR SHARE` while its settings, lookups or options change, so a concurrent delete
//! waits rather than orphaning them.

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;

use super::super::{
    CheckRow, InstanceRow, InstanceStore, LookupRow, StoreError, StoreResult, StoredValue,
};
use super::{PgStore, db, is_unique_violation, parsed};
use crate::contract::manifest::{Direction, Entity, Operations};

const INSTANCE_COLUMNS: &str = "name, connector, version_req, installation, enabled, created_at";

fn instance_row(row: &tokio_postgres::Row) -> InstanceRow {
    InstanceRow {
        name: row.get(0),
        connector: row.get(1),
        version_req: row.get(2),
        installation: row.get(3),
        enabled: row.get(4),
        created_at: row.get(5),
    }
}

/// Fails with `NoInstance` unless the instance exists; in a transaction, holds it until the end.
pub(super) async fn require_instance(client: &impl GenericClient, name: &str) -> StoreResult<()> {
    let found = client
        .query_opt(
            "SELECT 1 FROM instances WHERE name = $1 FOR SHARE",
            &[&name],
        )
        .await
        .map_err(db)?;
    match found {
        Some(_) => Ok(()),
        None => Err(StoreError::NoInstance(name.to_string())),
    }
}

/// One updated row, or `NoInstance`.
fn one_instance(changed: u64, name: &str) -> StoreResult<()> {
    if changed == 0 {
        Err(StoreError::NoInstance(name.to_string()))
    } else {
        Ok(())
    }
}

impl InstanceStore for PgStore {
    fn create_instance(&self, i: &InstanceRow) -> StoreResult<()> {
        self.run(async |client| {
            let inserted = client
                .execute(
                    &format!(
                        "INSERT INTO instances ({INSTANCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
                    ),
                    &[
                        &i.name,
                        &i.connector,
                        &i.version_req,
                        &i.installation,
                        &i.enabled,
                        &i.created_at,
                    ],
                )
                .await;
            match inserted {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => {
                    Err(StoreError::DuplicateInstance(i.name.clone()))
                }
                Err(e) => Err(db(e)),
            }
        })
    }

    fn instance(&self, name: &str) -> StoreResult<Option<InstanceRow>> {
        self.run(async |client| {
            Ok(client
                .query_opt(
                    &format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE name = $1"),
                    &[&name],
                )
                .await
                .map_err(db)?
                .as_ref()
                .map(instance_row))
        })
    }

    fn instances(&self) -> StoreResult<Vec<InstanceRow>> {
        self.run(async |client| {
            Ok(client
                .query(
                    &format!("SELECT {INSTANCE_COLUMNS} FROM instances ORDER BY name"),
                    &[],
                )
                .await
                .map_err(db)?
                .iter()
                .map(instance_row)
                .collect())
        })
    }

    fn set_enabled(&self, name: &str, enabled: bool) -> StoreResult<()> {
        self.run(async |client| {
            let changed = client
                .execute(
                    "UPDATE instances SET enabled = $2 WHERE name = $1",
                    &[&name, &enabled],
                )
                .await
                .map_err(db)?;
            one_instance(changed, name)
        })
    }

    fn set_version_req(&self, name: &str, requirement: Option<&str>) -> StoreResult<()> {
        self.run(async |client| {
            let changed = client
                .execute(
                    "UPDATE instances SET version_req = $2 WHERE name = $1",
                    &[&name, &requirement],
                )
                .await
                .map_err(db)?;
            one_instance(changed, name)
        })
    }

    fn delete_instance(&self, name: &str) -> StoreResult<()> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            for table in ["request_budget", "leases"] {
                transaction
                    .execute(
                        &format!("DELETE FROM {table} WHERE instance = $1"),
                        &[&name],
                    )
                    .await
                    .map_err(db)?;
            }
            let changed = transaction
                .execute("DELETE FROM instances WHERE name = $1", &[&name])
                .await
                .map_err(db)?;
            one_instance(changed, name)?;
            transaction.commit().await.map_err(db)
        })
    }

    fn settings(&self, instance: &str) -> StoreResult<BTreeMap<String, StoredValue>> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            require_instance(&transaction, instance).await?;
            let rows = transaction
                .query(
                    "SELECT key, value, sealed FROM instance_settings WHERE instance = $1",
                    &[&instance],
                )
                .await
                .map_err(db)?;
            transaction.commit().await.map_err(db)?;
            Ok(rows
                .iter()
                .map(|row| {
                    let (key, value, sealed): (String, String, bool) =
                        (row.get(0), row.get(1), row.get(2));
                    let value = if sealed {
                        StoredValue::Sealed(value)
                    } else {
                        StoredValue::Plain(value)
                    };
                    (key, value)
                })
                .collect())
        })
    }

    fn sealed_count(&self) -> StoreResult<i64> {
        self.run(async |client| {
            Ok(client
                .query_one("SELECT count(*) FROM instance_settings WHERE sealed", &[])
                .await
                .map_err(db)?
                .get(0))
        })
    }

    fn take_request_tokens(&self, instance: &str, per_minute: u32, want: u32) -> StoreResult<u32> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let capacity = f64::from(per_minute.max(1));
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            // The row exists (full) before it is locked, so two workers never both spend the
            // same tokens: the second waits for the first's lock.
            transaction
                .execute(
                    "INSERT INTO request_budget (instance, tokens, updated) VALUES ($1, $2, $3)
                     ON CONFLICT (instance) DO NOTHING",
                    &[&instance, &capacity, &now],
                )
                .await
                .map_err(db)?;
            let row = transaction
                .query_one(
                    "SELECT tokens, updated FROM request_budget WHERE instance = $1 FOR UPDATE",
                    &[&instance],
                )
                .await
                .map_err(db)?;
            let (tokens, updated): (f64, f64) = (row.get(0), row.get(1));
            // A clock that went back refills nothing rather than draining the bucket.
            let tokens = (tokens + (now - updated).max(0.0) * capacity / 60.0).min(capacity);
            let took = (tokens.floor() as u32).min(want);
            transaction
                .execute(
                    "UPDATE request_budget SET tokens = $2, updated = $3 WHERE instance = $1",
                    &[&instance, &(tokens - f64::from(took)), &now],
                )
                .await
                .map_err(db)?;
            transaction.commit().await.map_err(db)?;
            Ok(took)
        })
    }

    fn change_settings(
        &self,
        instance: &str,
        changes: &[(String, Option<StoredValue>)],
    ) -> StoreResult<()> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            require_instance(&transaction, instance).await?;
            for (key, value) in changes {
                match value {
                    Some(value) => {
                        let (text, sealed) = match value {
                            StoredValue::Plain(v) => (v, false),
                            StoredValue::Sealed(v) => (v, true),
                        };
                        transaction
                            .execute(
                                "INSERT INTO instance_settings (instance, key, value, sealed) VALUES ($1, $2, $3, $4)
                                 ON CONFLICT (instance, key) DO UPDATE SET value = $3, sealed = $4",
                                &[&instance, key, text, &sealed],
                            )
                            .await
                            .map_err(db)?;
                    }
                    None => {
                        transaction
                            .execute(
                                "DELETE FROM instance_settings WHERE instance = $1 AND key = $2",
                                &[&instance, key],
                            )
                            .await
                            .map_err(db)?;
                    }
                }
            }
            transaction.commit().await.map_err(db)
        })
    }

    fn lookups(&self, instance: &str) -> StoreResult<BTreeMap<String, Vec<LookupRow>>> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            require_instance(&transaction, instance).await?;
            let rows = transaction
                .query(
                    "SELECT lookup, bss_value, remote_value, pull_default FROM instance_lookups
                     WHERE instance = $1 ORDER BY lookup, pos",
                    &[&instance],
                )
                .await
                .map_err(db)?;
            transaction.commit().await.map_err(db)?;
            let mut tables: BTreeMap<String, Vec<LookupRow>> = BTreeMap::new();
            for row in &rows {
                tables.entry(row.get(0)).or_default().push(LookupRow {
                    bss_value: row.get(1),
                    remote_value: row.get(2),
                    pull_default: row.get(3),
                });
            }
            Ok(tables)
        })
    }

    fn set_lookup_rows(&self, instance: &str, lookup: &str, rows: &[LookupRow]) -> StoreResult<()> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            require_instance(&transaction, instance).await?;
            for row in rows {
                transaction
                    .execute(
                        "INSERT INTO instance_lookups (instance, lookup, bss_value, remote_value, pull_default)
                         VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (instance, lookup, bss_value)
                         DO UPDATE SET remote_value = $4, pull_default = $5",
                        &[&instance, &lookup, &row.bss_value, &row.remote_value, &row.pull_default],
                    )
                    .await
                    .map_err(db)?;
            }
            transaction.commit().await.map_err(db)
        })
    }

    fn remove_lookup_rows(
        &self,
        instance: &str,
        lookup: &str,
        bss_values: &[String],
    ) -> StoreResult<()> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            require_instance(&transaction, instance).await?;
            transaction
                .execute(
                    "DELETE FROM instance_lookups WHERE instance = $1 AND lookup = $2 AND bss_value = ANY($3)",
                    &[&instance, &lookup, &bss_values],
                )
                .await
                .map_err(db)?;
            transaction.commit().await.map_err(db)
        })
    }

    fn sync_options(&self, instance: &str) -> StoreResult<Vec<(Entity, Direction, Operations)>> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            require_instance(&transaction, instance).await?;
            let rows = transaction
                .query(
                    "SELECT entity, direction, op_create, op_update, op_delete FROM instance_sync_options
                     WHERE instance = $1 ORDER BY entity, direction",
                    &[&instance],
                )
                .await
                .map_err(db)?;
            transaction.commit().await.map_err(db)?;
            rows.iter()
                .map(|row| {
                    Ok((
                        parsed::<Entity>(row.get(0), "instance_sync_options.entity")?,
                        parsed::<Direction>(row.get(1), "instance_sync_options.direction")?,
                        Operations {
                            create: row.get(2),
                            update: row.get(3),
                            delete: row.get(4),
                        },
                    ))
                })
                .collect()
        })
    }

    fn set_sync_options(
        &self,
        instance: &str,
        options: &[(Entity, Direction, Operations)],
    ) -> StoreResult<()> {
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            require_instance(&transaction, instance).await?;
            for (entity, direction, ops) in options {
                transaction
                    .execute(
                        "INSERT INTO instance_sync_options (instance, entity, direction, op_create, op_update, op_delete)
                         VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (instance, entity, direction)
                         DO UPDATE SET op_create = $4, op_update = $5, op_delete = $6",
                        &[
                            &instance,
                            &entity.as_str(),
                            &direction.as_str(),
                            &ops.create,
                            &ops.update,
                            &ops.delete,
                        ],
                    )
                    .await
                    .map_err(db)?;
            }
            transaction.commit().await.map_err(db)
        })
    }

    fn record_check(&self, instance: &str, check: &CheckRow) -> StoreResult<()> {
        let problems = serde_json::to_string(&check.problems)
            .map_err(|e| StoreError::Database(e.to_string()))?;
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            require_instance(&transaction, instance).await?;
            transaction
                .execute(
                    "INSERT INTO instance_checks (instance, checked_at, ok, summary, problems) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (instance) DO UPDATE SET checked_at = $2, ok = $3, summary = $4, problems = $5",
                    &[&instance, &check.checked_at, &check.ok, &check.summary, &problems],
                )
                .await
                .map_err(db)?;
            transaction.commit().await.map_err(db)
        })
    }

    fn last_check(&self, instance: &str) -> StoreResult<Option<CheckRow>> {
        self.run(async |client| {
            let row = client
                .query_opt(
                    "SELECT checked_at, ok, summary, problems FROM instance_checks WHERE instance = $1",
                    &[&instance],
                )
                .await
                .map_err(db)?;
            row.map(|row| {
                let problems: String = row.get(3);
                Ok(CheckRow {
                    checked_at: row.get(0),
                    ok: row.get(1),
                    summary: row.get(2),
                    problems: serde_json::from_str(&problems)
                        .map_err(|e| StoreError::Database(e.to_string()))?,
                })
            })
            .transpose()
        })
    }
}
