//! The SQLite store: one file (`bss.db`) in the data folder, WAL mode so `serve` and the other
//! subcommands share it, foreign keys on, a busy timeout instead of "database is locked".
//! Migrations are numbered; `PRAGMA user_version` records the last applied, and a database from
//! a newer bss-host is refused rather than misread.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::{
    CheckRow, ConnectorVersion, InstanceRow, LookupRow, Store, StoreError, StoreResult, StoredValue,
};
use crate::runtime::manifest::{Direction, Entity, Operations};

/// (version, what it adds, SQL). Each part of the host appends its own.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "registry",
        "CREATE TABLE connector_versions (
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            source TEXT NOT NULL,
            manifest TEXT NOT NULL,
            loaded_at TEXT NOT NULL,
            PRIMARY KEY (name, version)
        );",
    ),
    (
        2,
        "instances",
        "CREATE TABLE instances (
            name TEXT PRIMARY KEY,
            connector TEXT NOT NULL,
            version_req TEXT,
            installation TEXT NOT NULL,
            enabled INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL
        );
        CREATE TABLE instance_settings (
            instance TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            sealed INTEGER NOT NULL,
            PRIMARY KEY (instance, key)
        );
        CREATE TABLE instance_lookups (
            instance TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
            lookup TEXT NOT NULL,
            bss_value TEXT NOT NULL,
            remote_value TEXT NOT NULL,
            pull_default INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (instance, lookup, bss_value)
        );
        CREATE TABLE instance_sync_options (
            instance TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
            entity TEXT NOT NULL,
            direction TEXT NOT NULL,
            op_create INTEGER NOT NULL,
            op_update INTEGER NOT NULL,
            op_delete INTEGER NOT NULL,
            PRIMARY KEY (instance, entity, direction)
        );
        CREATE TABLE instance_checks (
            instance TEXT PRIMARY KEY REFERENCES instances(name) ON DELETE CASCADE,
            checked_at TEXT NOT NULL,
            ok INTEGER NOT NULL,
            summary TEXT NOT NULL,
            problems TEXT NOT NULL
        );",
    ),
];

/// The newest schema this build knows.
pub fn known_schema() -> i64 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

pub struct SqliteStore {
    connection: Mutex<Connection>,
}

fn db(error: rusqlite::Error) -> StoreError {
    StoreError::Database(error.to_string())
}

fn name_of<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn parse_name<T: serde::de::DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|_| StoreError::Database(format!("unknown value {text:?} in the database")))
}

impl SqliteStore {
    /// Opens (creating when absent) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        let shown = path.display().to_string();
        let open_error = |reason: String| StoreError::Open {
            path: shown.clone(),
            reason,
        };
        let connection = Connection::open(path).map_err(|e| open_error(e.to_string()))?;
        connection
            .busy_timeout(Duration::from_secs(10))
            .map_err(|e| open_error(e.to_string()))?;
        let check: String = connection
            .query_row("PRAGMA quick_check", [], |row| row.get(0))
            .map_err(|e| {
                open_error(format!(
                    "{e}; it is not a bss-host database or it is damaged"
                ))
            })?;
        if check != "ok" {
            return Err(open_error(format!(
                "it is damaged ({check}); restore it from a backup"
            )));
        }
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| open_error(format!("{e}; is the data folder writable?")))?;
        connection
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| open_error(e.to_string()))?;
        let found: i64 = connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(db)?;
        if found > known_schema() {
            return Err(StoreError::NewerSchema {
                path: shown,
                found,
                known: known_schema(),
            });
        }
        let store = SqliteStore {
            connection: Mutex::new(connection),
        };
        store
            .migrate(found)
            .map_err(|e| open_error(e.to_string()))?;
        Ok(store)
    }

    fn migrate(&self, from: i64) -> StoreResult<()> {
        let mut connection = self.lock();
        for (version, _, sql) in MIGRATIONS.iter().filter(|m| m.0 > from) {
            let tx = connection.transaction().map_err(db)?;
            tx.execute_batch(sql).map_err(db)?;
            tx.pragma_update(None, "user_version", version)
                .map_err(db)?;
            tx.commit().map_err(db)?;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn require_instance(connection: &Connection, name: &str) -> StoreResult<()> {
        let found: Option<String> = connection
            .query_row(
                "SELECT name FROM instances WHERE name = ?1",
                [name],
                |row| row.get(0),
            )
            .optional()
            .map_err(db)?;
        found
            .map(|_| ())
            .ok_or_else(|| StoreError::NoInstance(name.to_string()))
    }
}

fn instance_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<InstanceRow> {
    Ok(InstanceRow {
        name: row.get(0)?,
        connector: row.get(1)?,
        version_req: row.get(2)?,
        installation: row.get(3)?,
        enabled: row.get(4)?,
        created_at: row.get(5)?,
    })
}

impl Store for SqliteStore {
    fn record_connector_version(&self, v: &ConnectorVersion) -> StoreResult<()> {
        self.lock()
            .execute(
                "INSERT INTO connector_versions (name, version, content_hash, source, manifest, loaded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (name, version) DO UPDATE SET content_hash = ?3, source = ?4, manifest = ?5, loaded_at = ?6",
                params![v.name, v.version, v.content_hash, v.source, v.manifest, v.loaded_at],
            )
            .map_err(db)?;
        Ok(())
    }

    fn connector_versions(&self) -> StoreResult<Vec<ConnectorVersion>> {
        let connection = self.lock();
        let mut statement = connection
            .prepare("SELECT name, version, content_hash, source, manifest, loaded_at FROM connector_versions ORDER BY name, version")
            .map_err(db)?;
        let rows = statement
            .query_map([], |row| {
                Ok(ConnectorVersion {
                    name: row.get(0)?,
                    version: row.get(1)?,
                    content_hash: row.get(2)?,
                    source: row.get(3)?,
                    manifest: row.get(4)?,
                    loaded_at: row.get(5)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

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
        let changed = self
            .lock()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(name: &str) -> InstanceRow {
        InstanceRow {
            name: name.into(),
            connector: "connectwise".into(),
            version_req: None,
            installation: "Main".into(),
            enabled: true,
            created_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn instances_settings_and_options_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bss.db");
        {
            let store = SqliteStore::open(&path).unwrap();
            store.create_instance(&instance("acme")).unwrap();
            assert!(matches!(
                store.create_instance(&instance("acme")),
                Err(StoreError::DuplicateInstance(_))
            ));
            store
                .change_settings(
                    "acme",
                    &[
                        ("url".into(), Some(StoredValue::Plain("x".into()))),
                        ("k".into(), Some(StoredValue::Sealed("v1:zz".into()))),
                    ],
                )
                .unwrap();
            store
                .set_sync_options(
                    "acme",
                    &[(
                        Entity::Account,
                        Direction::Push,
                        Operations {
                            create: true,
                            update: true,
                            delete: false,
                        },
                    )],
                )
                .unwrap();
            store
                .set_lookup_rows(
                    "acme",
                    "currency",
                    &[LookupRow {
                        bss_value: "USD".into(),
                        remote_value: "1".into(),
                        pull_default: false,
                    }],
                )
                .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.instances().unwrap(), vec![instance("acme")]);
        let settings = store.settings("acme").unwrap();
        assert_eq!(settings["k"], StoredValue::Sealed("v1:zz".into()));
        assert_eq!(store.sync_options("acme").unwrap()[0].0, Entity::Account);
        assert_eq!(
            store.lookups("acme").unwrap()["currency"][0].remote_value,
            "1"
        );
        store.delete_instance("acme").unwrap();
        assert!(matches!(
            store.settings("acme"),
            Err(StoreError::NoInstance(_))
        ));
    }

    #[test]
    fn newer_and_damaged_databases_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bss.db");
        SqliteStore::open(&path).unwrap();
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 999)
            .unwrap();
        let err = SqliteStore::open(&path).err().unwrap();
        assert!(
            err.to_string()
                .contains("written by a newer bss-host (schema 999"),
            "{err}"
        );

        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, vec![b'x'; 8192]).unwrap();
        let err = SqliteStore::open(&garbage).err().unwrap();
        assert!(
            err.to_string().contains("garbage.db could not be opened"),
            "{err}"
        );
    }
}
