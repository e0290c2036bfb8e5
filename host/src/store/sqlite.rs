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
    CheckRow, ConnectorVersion, Cursor, IdMapEntry, InstanceRow, InstanceStore, LeaseHolder,
    LinkOutcome, LookupRow, Outcome, QueueItem, RegistryStore, RunItem, RunRow, StoreError,
    StoreResult, StoredValue, SyncStore,
};
use crate::contract::manifest::{Direction, Entity, Operations};

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
    (
        3,
        "sync",
        "CREATE TABLE id_map (
            instance TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
            entity TEXT NOT NULL,
            bss_id TEXT NOT NULL,
            remote_id TEXT,
            pending INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (instance, entity, bss_id)
        );
        CREATE INDEX id_map_remote ON id_map (instance, entity, remote_id);
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            instance TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            entity TEXT,
            dry_run INTEGER NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,
            message TEXT,
            created INTEGER NOT NULL DEFAULT 0,
            updated INTEGER NOT NULL DEFAULT 0,
            unchanged INTEGER NOT NULL DEFAULT 0,
            reconciled INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0,
            queued INTEGER NOT NULL DEFAULT 0,
            pulled INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE run_items (
            run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            entity TEXT NOT NULL,
            bss_id TEXT NOT NULL,
            outcome TEXT NOT NULL,
            remote_id TEXT,
            message TEXT,
            PRIMARY KEY (run, seq)
        );
        CREATE TABLE retry_queue (
            instance TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
            entity TEXT NOT NULL,
            bss_id TEXT NOT NULL,
            record TEXT NOT NULL,
            error TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 1,
            queued_at TEXT NOT NULL,
            claimed_by TEXT,
            claimed_at INTEGER,
            PRIMARY KEY (instance, entity, bss_id)
        );
        CREATE TABLE cursors (
            instance TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
            entity TEXT NOT NULL,
            stamp TEXT,
            delivered TEXT NOT NULL,
            PRIMARY KEY (instance, entity)
        );",
    ),
    (
        4,
        "rollback",
        "ALTER TABLE connector_versions ADD COLUMN withdrawn INTEGER NOT NULL DEFAULT 0;",
    ),
    (
        5,
        "request budget",
        // Not tied to `instances` by a foreign key: a budget row is harmless, and a call of an
        // instance being deleted must not fail on it. `delete_instance` removes it.
        "CREATE TABLE request_budget (
            instance TEXT PRIMARY KEY,
            tokens REAL NOT NULL,
            updated REAL NOT NULL
        );",
    ),
    (
        6,
        "exactly once",
        // Leases: one run per instance and scope (an entity) across every process on the file.
        // `runs.owner` names the lease holder, so a run whose holder's lease lapsed is known to be
        // interrupted. `pending_run` is the run that set a pending mark: only that run may clear
        // it without a remote id. `waits_*` name the record a queued record waits for, so the
        // push that creates it can send the queued ones. The folded index finds ids that differ
        // only in case (ConnectWise identifiers are case-insensitive).
        "CREATE TABLE leases (
            instance TEXT NOT NULL,
            scope TEXT NOT NULL,
            owner TEXT NOT NULL,
            purpose TEXT NOT NULL,
            acquired_at TEXT NOT NULL,
            expires_at INTEGER NOT NULL,
            PRIMARY KEY (instance, scope)
        );
        ALTER TABLE runs ADD COLUMN owner TEXT;
        ALTER TABLE id_map ADD COLUMN pending_run INTEGER;
        CREATE INDEX id_map_folded ON id_map (instance, entity, lower(bss_id));
        ALTER TABLE retry_queue ADD COLUMN waits_entity TEXT;
        ALTER TABLE retry_queue ADD COLUMN waits_bss_id TEXT;
        CREATE INDEX retry_queue_waits ON retry_queue (instance, waits_entity, waits_bss_id);",
    ),
    (
        7,
        "refused components",
        // A component refused for what it is (its manifest() traps, loops or flaps, its exports
        // are wrong) is refused by content hash, so no later command pays for asking it again.
        "CREATE TABLE refused_components (
            content_hash TEXT PRIMARY KEY,
            reason TEXT NOT NULL,
            refused_at TEXT NOT NULL
        );",
    ),
    (
        8,
        "skipped records",
        "ALTER TABLE runs ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;",
    ),
    (
        9,
        "runs from before leases",
        // Runs left `running` by a bss-host without leases have no owner to lapse.
        "UPDATE runs SET status = 'interrupted', message = 'left running by an earlier bss-host that stopped before it finished'
         WHERE status = 'running' AND owner IS NULL;",
    ),
    (
        10,
        "three-way updates",
        "ALTER TABLE id_map ADD COLUMN last_pushed TEXT;
         ALTER TABLE id_map ADD COLUMN stored TEXT;
         ALTER TABLE runs ADD COLUMN held INTEGER NOT NULL DEFAULT 0;",
    ),
];

/// The claimer of queue items that wait for an operator's `link`: never stale, never retried.
pub const NEEDS_LINK: &str = "needs-link";

/// A claim older than this (seconds) belongs to a process that died: it may be taken over.
const STALE_CLAIM_SECS: i64 = 600;

fn unix_now() -> i64 {
    unix_millis() / 1000
}

fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How long a writer waits for another process's write transaction before giving up. Every
/// write transaction takes the write lock first (`IMMEDIATE`), so this wait always applies.
/// Shorter than a run lease's time-to-live, so a renewal waiting for the lock fails (and the
/// run notices) before its lease could lapse.
const BUSY_TIMEOUT: Duration = Duration::from_secs(20);

/// Refuses to go on for a run (with an owner) whose owner no longer holds a live lease of its
/// instance and entity: another process may be running the same records now.
fn refuse_without_lease(connection: &Connection, run: i64) -> StoreResult<()> {
    let fenced: bool = connection
        .query_row(
            "SELECT r.owner IS NOT NULL AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.instance = r.instance
                 AND l.owner = r.owner AND l.scope = r.entity AND l.expires_at >= ?2)
             FROM runs r WHERE r.id = ?1",
            params![run, unix_millis()],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)?
        .unwrap_or(false);
    if fenced {
        return Err(StoreError::Conflict(format!(
            "run {run} no longer holds its lease (another process may hold it now); it stops here"
        )));
    }
    Ok(())
}

/// Marks `running` runs whose holder no longer holds a live lease as `interrupted`.
fn sweep_interrupted(connection: &Connection) -> rusqlite::Result<usize> {
    connection.execute(
        "UPDATE runs SET status = 'interrupted', finished_at = ?1,
             message = 'the process running it stopped before it finished (its lease lapsed); the outcomes recorded up to then are kept'
         WHERE status = 'running' AND owner IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.instance = runs.instance AND l.owner = runs.owner
                           AND l.scope = runs.entity AND l.expires_at >= ?2)",
        params![crate::time::now_rfc3339(), unix_millis()],
    )
}

fn run_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    let entity: Option<String> = row.get(3)?;
    Ok(RunRow {
        id: row.get(0)?,
        instance: row.get(1)?,
        kind: row.get(2)?,
        entity: entity
            .map(|e| {
                parse_name(&e).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        3,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })
            })
            .transpose()?,
        dry_run: row.get(4)?,
        started_at: row.get(5)?,
        finished_at: row.get(6)?,
        status: row.get(7)?,
        message: row.get(8)?,
        created: row.get(9)?,
        updated: row.get(10)?,
        unchanged: row.get(11)?,
        reconciled: row.get(12)?,
        failed: row.get(13)?,
        queued: row.get(14)?,
        pulled: row.get(15)?,
        skipped: row.get(16)?,
        held: row.get(17)?,
    })
}

const RUN_COLUMNS: &str = "id, instance, kind, entity, dry_run, started_at, finished_at, status, message, created, updated, unchanged, reconciled, failed, queued, pulled, skipped, held";

fn queue_item(row: &rusqlite::Row<'_>) -> rusqlite::Result<QueueItem> {
    let entity: String = row.get(0)?;
    Ok(QueueItem {
        // An entity this build does not know is an error, never another entity's record.
        entity: parse_name(&entity).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })?,
        bss_id: row.get(1)?,
        record: row.get(2)?,
        error: row.get(3)?,
        attempts: row.get(4)?,
        queued_at: row.get(5)?,
    })
}

/// Queue rows as items, in the order runs send them (by entity, then BSS id).
fn sorted_items(
    rows: impl Iterator<Item = rusqlite::Result<QueueItem>>,
) -> StoreResult<Vec<QueueItem>> {
    let mut items: Vec<QueueItem> = rows.collect::<Result<_, _>>().map_err(db)?;
    items.sort_by(|a, b| (a.entity, &a.bss_id).cmp(&(b.entity, &b.bss_id)));
    Ok(items)
}

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

/// How the store writes an entity or direction: its one spelling.
fn name_of(value: &impl std::fmt::Display) -> String {
    value.to_string()
}

/// A stored entity or direction; an unknown one is an error, never another value.
fn parse_name<T: std::str::FromStr>(text: &str) -> StoreResult<T> {
    text.parse()
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
        let mut connection = Connection::open(path).map_err(|e| open_error(e.to_string()))?;
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| open_error(e.to_string()))?;
        // A deferred transaction that reads first and then writes cannot wait for the lock: SQLite
        // answers "database is locked" at once. Immediate ones take the lock up front and wait.
        connection.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
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
            // Another process opening the same old file may have applied it meanwhile: the
            // version is read again under the write lock.
            let applied: i64 = tx
                .pragma_query_value(None, "user_version", |row| row.get(0))
                .map_err(db)?;
            if applied >= *version {
                continue;
            }
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

    /// Runs `sql` (parameters: instance, entity, key; one text column) once per key; returns
    /// what it found, by key.
    fn each_found(
        &self,
        sql: &str,
        instance: &str,
        entity: Entity,
        keys: &[String],
    ) -> StoreResult<BTreeMap<String, String>> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(sql).map_err(db)?;
        let entity = name_of(&entity);
        let mut found = BTreeMap::new();
        for key in keys {
            let row: Option<String> = statement
                .query_row(params![instance, entity, key], |r| r.get(0))
                .optional()
                .map_err(db)?;
            if let Some(value) = row {
                found.insert(key.clone(), value);
            }
        }
        Ok(found)
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

impl RegistryStore for SqliteStore {
    fn record_connector_version(&self, v: &ConnectorVersion) -> StoreResult<()> {
        self.lock()
            .execute(
                "INSERT INTO connector_versions (name, version, content_hash, source, manifest, loaded_at, withdrawn)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)
                 ON CONFLICT (name, version) DO UPDATE SET
                     -- The first manifest stored for a build stays: a second process reading a
                     -- flapping component at the same moment cannot replace it.
                     manifest = CASE WHEN content_hash = ?3 THEN manifest ELSE ?5 END,
                     content_hash = ?3, source = ?4, loaded_at = ?6",
                params![v.name, v.version, v.content_hash, v.source, v.manifest, v.loaded_at],
            )
            .map_err(db)?;
        Ok(())
    }

    fn component_refusal(&self, content_hash: &str) -> StoreResult<Option<String>> {
        self.lock()
            .query_row(
                "SELECT reason FROM refused_components WHERE content_hash = ?1",
                [content_hash],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)
    }

    fn record_component_refusal(&self, content_hash: &str, reason: &str) -> StoreResult<()> {
        self.lock()
            .execute(
                "INSERT INTO refused_components (content_hash, reason, refused_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (content_hash) DO UPDATE SET reason = ?2, refused_at = ?3",
                params![content_hash, reason, crate::time::now_rfc3339()],
            )
            .map_err(db)?;
        Ok(())
    }

    fn connector_versions(&self) -> StoreResult<Vec<ConnectorVersion>> {
        let connection = self.lock();
        let mut statement = connection
            .prepare("SELECT name, version, content_hash, source, manifest, loaded_at, withdrawn FROM connector_versions ORDER BY name, version")
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
                    withdrawn: row.get(6)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn set_withdrawn(&self, name: &str, version: &str, withdrawn: bool) -> StoreResult<()> {
        self.lock()
            .execute(
                "UPDATE connector_versions SET withdrawn = ?3 WHERE name = ?1 AND version = ?2",
                params![name, version, withdrawn],
            )
            .map_err(db)?;
        Ok(())
    }
}

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
                    entity.name()
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
                entity.name()
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
                    tx.execute(
                            "DELETE FROM retry_queue WHERE instance = ?1 AND entity = ?2 AND bss_id = ?3",
                            params![instance, entity_name, bss_id],
                        )
                        .map_err(db)?;
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
                        tx.execute(
                                "DELETE FROM retry_queue WHERE instance = ?1 AND entity = ?2 AND bss_id = ?3",
                                params![instance, entity_name, bss_id],
                            )
                            .map_err(db)?;
                    }
                    None
                }
                Outcome::Invalid { .. } => {
                    // The newest version of the record is unusable: an older queued one
                    // must not be sent in its place.
                    tx.execute(
                            "DELETE FROM retry_queue WHERE instance = ?1 AND entity = ?2 AND bss_id = ?3",
                            params![instance, entity_name, bss_id],
                        )
                        .map_err(db)?;
                    None
                }
                Outcome::Skipped { .. } => {
                    tx.execute(
                            "DELETE FROM retry_queue WHERE instance = ?1 AND entity = ?2 AND bss_id = ?3",
                            params![instance, entity_name, bss_id],
                        )
                        .map_err(db)?;
                    None
                }
                Outcome::Held { .. } => {
                    // The BSS's version is not the remote's yet: nothing queued (a retry
                    // would be held again), the record waits for a decision.
                    tx.execute(
                            "DELETE FROM retry_queue WHERE instance = ?1 AND entity = ?2 AND bss_id = ?3",
                            params![instance, entity_name, bss_id],
                        )
                        .map_err(db)?;
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
        kind: &str,
        entity: Option<Entity>,
        dry_run: bool,
        owner: Option<&str>,
    ) -> StoreResult<i64> {
        let connection = self.lock();
        Self::require_instance(&connection, instance)?;
        connection
            .execute(
                "INSERT INTO runs (instance, kind, entity, dry_run, started_at, status, owner) VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6)",
                params![instance, kind, entity.map(|e| name_of(&e)), dry_run, crate::time::now_rfc3339(), owner],
            )
            .map_err(db)?;
        Ok(connection.last_insert_rowid())
    }

    fn finish_run(
        &self,
        run: i64,
        status: &str,
        message: Option<&str>,
        pulled: i64,
    ) -> StoreResult<()> {
        self.lock()
            .execute(
                "UPDATE runs SET status = ?2, message = ?3, finished_at = ?4, pulled = ?5 WHERE id = ?1",
                params![run, status, message, crate::time::now_rfc3339(), pulled],
            )
            .map_err(db)?;
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
                let entity: String = r.get(0)?;
                Ok(RunItem {
                    entity: parse_name(&entity).map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(
                            0,
                            rusqlite::types::Type::Text,
                            Box::new(e),
                        )
                    })?,
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

    fn claim_queue(&self, instance: &str, claimer: &str) -> StoreResult<Vec<QueueItem>> {
        let connection = self.lock();
        let now = unix_now();
        // One UPDATE ... RETURNING: SQLite runs it as a single write, so two claimers never take
        // an item at the same moment. A claim older than STALE_CLAIM_SECS is taken over (its
        // claimer is presumed dead); a claimer re-reads what it still holds before sending.
        let mut statement = connection
            .prepare(
                "UPDATE retry_queue SET claimed_by = ?2, claimed_at = ?3
                 WHERE instance = ?1 AND (claimed_by IS NULL OR claimed_at < ?4)
                 RETURNING entity, bss_id, record, error, attempts, queued_at",
            )
            .map_err(db)?;
        let rows = statement
            .query_map(
                params![instance, claimer, now, now - STALE_CLAIM_SECS],
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

    #[test]
    fn a_request_budget_is_shared_by_every_handle_on_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bss.db");
        let (first, second) = (
            SqliteStore::open(&path).unwrap(),
            SqliteStore::open(&path).unwrap(),
        );
        // A full bucket holds a minute's worth; what one process takes, the other cannot.
        assert_eq!(first.take_request_tokens("acme", 60, 45).unwrap(), 45);
        assert_eq!(second.take_request_tokens("acme", 60, 45).unwrap(), 15);
        assert_eq!(first.take_request_tokens("acme", 60, 1).unwrap(), 0);
        // Other instances have their own bucket; a lower limit caps what is left.
        assert_eq!(second.take_request_tokens("other", 600, 1000).unwrap(), 600);
        assert_eq!(first.take_request_tokens("other", 10, 1000).unwrap(), 0);
        // Tokens come back with time (at 6,000 a minute, 100 a second).
        assert_eq!(
            first.take_request_tokens("fast", 6_000, 6_000).unwrap(),
            6_000
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
        let refilled = second.take_request_tokens("fast", 6_000, 6_000).unwrap();
        assert!((15..=60).contains(&refilled), "{refilled}");
    }

    #[test]
    fn a_queue_item_is_claimed_by_one_claimer_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bss.db");
        let store = SqliteStore::open(&path).unwrap();
        store.create_instance(&instance("acme")).unwrap();
        let run = store
            .start_run("acme", "push", Some(Entity::Contact), false, None)
            .unwrap();
        let failed = |id: &str| {
            (
                id.to_string(),
                Outcome::Failed {
                    message: "waiting".into(),
                    retryable: true,
                    outcome_unknown: false,
                    record: format!("{{\"id\":\"{id}\"}}"),
                    waits: None,
                    label: None,
                },
            )
        };
        store
            .record_outcomes(run, "acme", Entity::Contact, &[failed("K1"), failed("K2")])
            .unwrap();
        // Two processes on the same file, claiming at once.
        let other = SqliteStore::open(&path).unwrap();
        let (a, b) = std::thread::scope(|scope| {
            let a = scope.spawn(|| store.claim_queue("acme", "serve-1").unwrap());
            let b = scope.spawn(|| other.claim_queue("acme", "cli-2").unwrap());
            (a.join().unwrap(), b.join().unwrap())
        });
        assert_eq!(a.len() + b.len(), 2, "every item is claimed exactly once");
        assert!(a.is_empty() || b.is_empty(), "one claimer took both");
        assert!(store.claim_queue("acme", "third").unwrap().is_empty());
        let holder = if a.is_empty() { "cli-2" } else { "serve-1" };
        store.release_queue("acme", holder).unwrap();
        assert_eq!(
            store.claim_queue("acme", "third").unwrap().len(),
            2,
            "released items can be claimed again"
        );
    }
}
