//! The SQLite store: one file (`bss.db`) in the data folder, WAL mode so `serve` and the other
//! subcommands share it, foreign keys on, a busy timeout instead of "database is locked".
//! Migrations are numbered; `PRAGMA user_version` records the last applied, and a database from
//! a newer bss-host is refused rather than misread. This file holds the connection, the
//! migrations and shared helpers; each store trait is implemented in its own file (`registry.rs`,
//! `instances.rs`, `sync.rs`, `schedules.rs`, `hooks.rs`, `tokens.rs`, `jobs.rs`, `trust.rs`).

mod hooks;
mod instances;
mod jobs;
mod registry;
mod schedules;
#[cfg(test)]
mod shared_tests;
mod sync;
mod tokens;
mod trust;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::sync_store::{NEEDS_LINK, STALE_CLAIM_SECS};
use super::{
    CheckRow, ConnectorVersion, Cursor, IdMapEntry, InstanceRow, InstanceStore, LeaseHolder,
    LinkOutcome, LookupRow, Outcome, QueueItem, RegistryStore, RunItem, RunKind, RunRow, RunStatus,
    RunTrigger, StoreError, StoreResult, StoredValue, SyncStore,
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
    (
        11,
        "schedules and the change feed",
        "CREATE TABLE schedules (
            instance TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
            entity TEXT NOT NULL,
            job TEXT NOT NULL,
            every_secs INTEGER,
            daily_minute INTEGER,
            next_due INTEGER NOT NULL,
            last_run INTEGER,
            last_started TEXT,
            last_finished TEXT,
            last_outcome TEXT,
            last_millis INTEGER,
            blocked TEXT,
            PRIMARY KEY (instance, entity, job)
        );
        CREATE TABLE feed (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            instance TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
            entity TEXT NOT NULL,
            remote_id TEXT NOT NULL,
            version TEXT NOT NULL,
            change TEXT NOT NULL,
            record TEXT NOT NULL,
            run INTEGER,
            at TEXT NOT NULL
        );
        CREATE UNIQUE INDEX feed_versions ON feed (instance, entity, remote_id, version, change);
        CREATE INDEX feed_order ON feed (instance, seq);
        CREATE TABLE feed_acks (
            instance TEXT PRIMARY KEY REFERENCES instances(name) ON DELETE CASCADE,
            acked INTEGER NOT NULL
        );
        CREATE TABLE feed_sinks (
            instance TEXT PRIMARY KEY REFERENCES instances(name) ON DELETE CASCADE,
            url TEXT NOT NULL,
            secret TEXT NOT NULL,
            delivered INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_try INTEGER NOT NULL DEFAULT 0,
            last_error TEXT
        );
        ALTER TABLE runs ADD COLUMN trigger TEXT NOT NULL DEFAULT 'command';",
    ),
    (
        12,
        "callback hooks and their events, remote deletions known, sink claims",
        "CREATE TABLE hooks (
            instance TEXT PRIMARY KEY REFERENCES instances(name) ON DELETE CASCADE,
            token TEXT NOT NULL,
            public_url TEXT NOT NULL,
            entities TEXT NOT NULL,
            registrations TEXT NOT NULL,
            active INTEGER NOT NULL,
            last_error TEXT,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE hook_events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            instance TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
            message_id TEXT NOT NULL,
            entity TEXT NOT NULL,
            remote_id TEXT NOT NULL,
            action TEXT NOT NULL,
            received_at INTEGER NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_try INTEGER NOT NULL DEFAULT 0,
            claimed_by TEXT,
            claimed_at INTEGER,
            outcome TEXT,
            finished_at INTEGER
        );
        CREATE UNIQUE INDEX hook_events_once ON hook_events (instance, message_id, entity, remote_id, action);
        CREATE INDEX hook_events_due ON hook_events (state, next_try);
        CREATE TABLE remote_deletions (
            instance TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
            entity TEXT NOT NULL,
            remote_id TEXT NOT NULL,
            bss_id TEXT,
            by_removal INTEGER NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (instance, entity, remote_id)
        );
        ALTER TABLE feed_sinks ADD COLUMN claimed_by TEXT;
        ALTER TABLE feed_sinks ADD COLUMN claimed_until INTEGER NOT NULL DEFAULT 0;",
    ),
    (
        13,
        "API tokens with roles",
        "CREATE TABLE api_tokens (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        );",
    ),
    (
        14,
        "console sessions",
        "CREATE TABLE console_sessions (
            hash TEXT PRIMARY KEY,
            token TEXT NOT NULL REFERENCES api_tokens(name),
            csrf TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL
        );
        CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);",
    ),
    (
        15,
        "the job queue and its workers",
        // Times that decide a takeover (heartbeat_at, lease_until, run_at) are unix milliseconds;
        // the others RFC 3339 text. The partial unique index is the hard guarantee that one job
        // per instance and entity runs at a time, whatever claims it.
        "CREATE TABLE workers (
            id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            version TEXT NOT NULL,
            started_at TEXT NOT NULL,
            heartbeat_at INTEGER NOT NULL,
            stopped INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            instance TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
            entity TEXT NOT NULL,
            trigger TEXT NOT NULL,
            dry_run INTEGER NOT NULL,
            payload BLOB NOT NULL,
            state TEXT NOT NULL DEFAULT 'queued',
            attempts INTEGER NOT NULL DEFAULT 0,
            worker TEXT,
            lease_until INTEGER,
            run_at INTEGER NOT NULL,
            run INTEGER,
            submitted_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            outcome TEXT,
            error TEXT
        );
        CREATE INDEX jobs_ready ON jobs (run_at, id) WHERE state = 'queued';
        CREATE UNIQUE INDEX jobs_one_running ON jobs (instance, entity) WHERE state = 'running';
        CREATE INDEX jobs_by_instance ON jobs (instance, id);
        CREATE INDEX jobs_by_worker ON jobs (worker) WHERE state = 'running';",
    ),
    (
        16,
        "a job's run ends the job",
        "CREATE INDEX jobs_by_run ON jobs (run) WHERE state = 'running';",
    ),
    (
        17,
        "the trust list, the audit log and who signed each connector version",
        "ALTER TABLE connector_versions ADD COLUMN signer TEXT;
        CREATE TABLE trusted_keys (
            name TEXT PRIMARY KEY,
            public_key TEXT NOT NULL UNIQUE,
            key_id TEXT NOT NULL,
            connectors TEXT NOT NULL,
            added_at TEXT NOT NULL,
            added_by TEXT NOT NULL
        );
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            subject TEXT NOT NULL,
            detail TEXT NOT NULL,
            once_key TEXT UNIQUE
        );",
    ),
];

fn unix_now() -> i64 {
    unix_millis() / 1000
}

pub(crate) fn unix_millis() -> i64 {
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

/// (instance, count) rows of a `GROUP BY instance` query, as a map.
fn counts_by_instance(connection: &Connection, sql: &str) -> StoreResult<BTreeMap<String, i64>> {
    let mut statement = connection.prepare(sql).map_err(db)?;
    let rows = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(db)?
        .collect::<Result<BTreeMap<String, i64>, _>>()
        .map_err(db)?;
    Ok(rows)
}

/// A stored name parsed into its host type at column `index`; an unknown one fails the read.
fn named<T: std::str::FromStr>(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    parse_name(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn run_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    let entity: Option<String> = row.get(3)?;
    Ok(RunRow {
        id: row.get(0)?,
        instance: row.get(1)?,
        kind: named(row, 2)?,
        entity: match entity {
            Some(_) => Some(named(row, 3)?),
            None => None,
        },
        dry_run: row.get(4)?,
        started_at: row.get(5)?,
        finished_at: row.get(6)?,
        status: named(row, 7)?,
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
        trigger: named(row, 18)?,
    })
}

const RUN_COLUMNS: &str = "id, instance, kind, entity, dry_run, started_at, finished_at, status, message, created, updated, unchanged, reconciled, failed, queued, pulled, skipped, held, trigger";

fn queue_item(row: &rusqlite::Row<'_>) -> rusqlite::Result<QueueItem> {
    Ok(QueueItem {
        // An entity this build does not know is an error, never another entity's record.
        entity: named(row, 0)?,
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

/// How many instances the SQLite store at `path` holds, read without changing the file (none
/// when it has no instances table yet).
pub fn instance_count(path: &Path) -> StoreResult<i64> {
    let connection = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    let has_table: bool = connection
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'instances')",
            [],
            |r| r.get(0),
        )
        .map_err(db)?;
    if !has_table {
        return Ok(0);
    }
    connection
        .query_row("SELECT COUNT(*) FROM instances", [], |r| r.get(0))
        .map_err(db)
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

#[cfg(test)]
mod tests {
    use super::*;

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
