//! `bss-host migrate-store`: a SQLite store copied into an empty PostgreSQL database, and read
//! back and compared before it is committed.
//!
//! The copy is one PostgreSQL transaction over one SQLite read snapshot: it lands whole or not at
//! all, and a process writing the SQLite file meanwhile changes nothing in it. Tables are copied in
//! the order their foreign keys need, each column converted to the PostgreSQL column's type; the
//! identity sequences then continue after the copied ids. Before committing, every table is read
//! back from PostgreSQL and compared with the snapshot row by row (as a sorted list of row
//! digests, so the two databases' sort orders do not matter), and lookup rows keep their order.
//! Secret values are copied sealed: the key stays in the data folder, and every worker needs it.
//! Leases are not copied (they belong to processes on the old store, which must be stopped; a live
//! one refuses the copy).

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::types::Value as SqliteValue;
use sha2::{Digest, Sha256};
use tokio_postgres::types::ToSql;

use super::super::{StoreError, StoreResult};
use super::{PgStore, db};

/// Every SQLite table but `leases`, parents before children.
pub const TABLES: &[&str] = &[
    "connector_versions",
    "refused_components",
    "instances",
    "instance_settings",
    "instance_lookups",
    "instance_sync_options",
    "instance_checks",
    "request_budget",
    "id_map",
    "runs",
    "run_items",
    "retry_queue",
    "cursors",
    "remote_deletions",
    "schedules",
    "feed",
    "feed_acks",
    "feed_sinks",
    "hooks",
    "hook_events",
    "api_tokens",
    "console_sessions",
    "jobs",
];

/// Not copied: held by (or describing) processes on the old store.
const TRANSIENT: &[&str] = &["leases", "workers"];

/// Identity columns whose sequences must continue after the copied ids.
const IDENTITIES: &[(&str, &str)] = &[
    ("runs", "id"),
    ("feed", "seq"),
    ("hook_events", "seq"),
    ("jobs", "id"),
];

/// Rows per INSERT statement (PostgreSQL takes at most 65 535 parameters per statement).
const ROWS_PER_INSERT: usize = 500;

/// One table's copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedTable {
    pub table: &'static str,
    pub rows: usize,
}

/// The PostgreSQL types the schema uses, as the copy converts to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PgType {
    Text,
    BigInt,
    Boolean,
    Double,
    Bytes,
}

impl PgType {
    fn of(table: &str, column: &str, name: &str) -> StoreResult<PgType> {
        match name {
            "text" => Ok(PgType::Text),
            "bigint" => Ok(PgType::BigInt),
            "boolean" => Ok(PgType::Boolean),
            "double precision" => Ok(PgType::Double),
            "bytea" => Ok(PgType::Bytes),
            other => Err(StoreError::Database(format!(
                "{table}.{column} is of type {other} in PostgreSQL, which migrate-store does not copy"
            ))),
        }
    }
}

/// One value on its way to PostgreSQL, typed as its column.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Text(Option<String>),
    BigInt(Option<i64>),
    Boolean(Option<bool>),
    Double(Option<f64>),
    Bytes(Option<Vec<u8>>),
}

impl Cell {
    fn from_sqlite(
        value: SqliteValue,
        kind: PgType,
        table: &str,
        column: &str,
    ) -> StoreResult<Cell> {
        let wrong = |value: &SqliteValue| {
            StoreError::Database(format!(
                "{table}.{column} holds {value:?} in the SQLite file, which is not a {kind:?}; the file is damaged or was written by another program"
            ))
        };
        Ok(match (kind, value) {
            (PgType::Text, SqliteValue::Null) => Cell::Text(None),
            (PgType::Text, SqliteValue::Text(text)) => Cell::Text(Some(text)),
            (PgType::Text, SqliteValue::Integer(i)) => Cell::Text(Some(i.to_string())),
            (PgType::BigInt, SqliteValue::Null) => Cell::BigInt(None),
            (PgType::BigInt, SqliteValue::Integer(i)) => Cell::BigInt(Some(i)),
            (PgType::Boolean, SqliteValue::Null) => Cell::Boolean(None),
            (PgType::Boolean, SqliteValue::Integer(i)) => Cell::Boolean(Some(i != 0)),
            (PgType::Double, SqliteValue::Null) => Cell::Double(None),
            (PgType::Double, SqliteValue::Real(f)) => Cell::Double(Some(f)),
            (PgType::Double, SqliteValue::Integer(i)) => Cell::Double(Some(i as f64)),
            (PgType::Bytes, SqliteValue::Null) => Cell::Bytes(None),
            (PgType::Bytes, SqliteValue::Blob(bytes)) => Cell::Bytes(Some(bytes)),
            (PgType::Bytes, SqliteValue::Text(text)) => Cell::Bytes(Some(text.into_bytes())),
            (_, other) => return Err(wrong(&other)),
        })
    }

    fn from_postgres(row: &tokio_postgres::Row, index: usize, kind: PgType) -> Cell {
        match kind {
            PgType::Text => Cell::Text(row.get(index)),
            PgType::BigInt => Cell::BigInt(row.get(index)),
            PgType::Boolean => Cell::Boolean(row.get(index)),
            PgType::Double => Cell::Double(row.get(index)),
            PgType::Bytes => Cell::Bytes(row.get(index)),
        }
    }

    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Cell::Text(v) => v,
            Cell::BigInt(v) => v,
            Cell::Boolean(v) => v,
            Cell::Double(v) => v,
            Cell::Bytes(v) => v,
        }
    }

    /// A spelling equal on both sides exactly when the values are.
    fn render(&self, into: &mut Vec<u8>) {
        let text = match self {
            Cell::Text(None)
            | Cell::BigInt(None)
            | Cell::Boolean(None)
            | Cell::Double(None)
            | Cell::Bytes(None) => "N".to_string(),
            Cell::Bytes(Some(b)) => format!("X{}", hex::encode(b)),
            Cell::Text(Some(t)) => format!("T{}:{t}", t.len()),
            Cell::BigInt(Some(i)) => format!("I{i}"),
            Cell::Boolean(Some(b)) => format!("B{b}"),
            Cell::Double(Some(f)) => format!("D{:x}", f.to_bits()),
        };
        into.extend_from_slice(text.as_bytes());
        into.push(0);
    }
}

/// The sorted digests of `rows`: equal for two tables holding the same rows in any order.
fn digests(rows: &[Vec<Cell>]) -> Vec<[u8; 32]> {
    let mut digests: Vec<[u8; 32]> = rows
        .iter()
        .map(|row| {
            let mut bytes = Vec::new();
            row.iter().for_each(|cell| cell.render(&mut bytes));
            Sha256::digest(&bytes).into()
        })
        .collect();
    digests.sort_unstable();
    digests
}

fn sqlite_error(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::Open {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// The table's columns in the SQLite file, in order.
fn sqlite_columns(
    connection: &rusqlite::Connection,
    path: &Path,
    table: &str,
) -> StoreResult<Vec<String>> {
    let mut statement = connection
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
        .map_err(sqlite_error(path))?;
    let columns = statement
        .query_map([], |r| r.get(0))
        .map_err(sqlite_error(path))?
        .collect::<Result<Vec<String>, _>>()
        .map_err(sqlite_error(path))?;
    Ok(columns)
}

/// Reads a SQLite store into memory as PostgreSQL-typed rows, from one read snapshot.
struct Snapshot {
    tables: Vec<SnapshotTable>,
}

/// One table of a [`Snapshot`]: the columns both stores have, and the rows in rowid order.
struct SnapshotTable {
    table: &'static str,
    columns: Vec<(String, PgType)>,
    rows: Vec<Vec<Cell>>,
}

impl Snapshot {
    fn read(
        path: &Path,
        pg_columns: &BTreeMap<&'static str, Vec<(String, PgType)>>,
    ) -> StoreResult<Snapshot> {
        // Brings an older file up to this host's schema first (and refuses a newer or damaged one).
        drop(super::super::sqlite::SqliteStore::open(path)?);
        let mut connection =
            rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(sqlite_error(path))?;
        let snapshot = connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)
            .map_err(sqlite_error(path))?;
        let present: Vec<String> = snapshot
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(sqlite_error(path))?;
        if let Some(unknown) = present
            .iter()
            .find(|t| !TABLES.contains(&t.as_str()) && !TRANSIENT.contains(&t.as_str()))
        {
            return Err(StoreError::Database(format!(
                "{} has a table {unknown:?} that migrate-store does not know how to copy; nothing was copied",
                path.display()
            )));
        }
        // SQLite's leases are timed by the process clock, as its store times them.
        let now_ms = super::super::sqlite::unix_millis();
        let live: Option<(String, String, String)> = snapshot
            .query_row(
                "SELECT instance, scope, purpose FROM leases WHERE expires_at >= ?1 LIMIT 1",
                [now_ms],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(sqlite_error(path))?;
        if let Some((instance, scope, purpose)) = live {
            return Err(StoreError::Conflict(format!(
                "a run is going on in {} ({purpose}: instance {instance:?}, {scope}); stop every bss-host process on it, then copy it; nothing was copied",
                path.display()
            )));
        }
        let mut tables = Vec::new();
        for table in TABLES {
            let from = sqlite_columns(&snapshot, path, table)?;
            let to = &pg_columns[table];
            let mut columns = Vec::new();
            for column in &from {
                let Some((_, kind)) = to.iter().find(|(name, _)| name == column) else {
                    return Err(StoreError::Database(format!(
                        "{table}.{column} of {} has no column to go to in PostgreSQL; nothing was copied",
                        path.display()
                    )));
                };
                columns.push((column.clone(), *kind));
            }
            let list = columns
                .iter()
                .map(|(c, _)| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ");
            // Rowid order: lookup rows keep the order they were added in.
            let mut statement = snapshot
                .prepare(&format!("SELECT {list} FROM {table} ORDER BY rowid"))
                .map_err(sqlite_error(path))?;
            let mut rows = Vec::new();
            let mut read = statement.query([]).map_err(sqlite_error(path))?;
            while let Some(row) = read.next().map_err(sqlite_error(path))? {
                let mut cells = Vec::with_capacity(columns.len());
                for (index, (column, kind)) in columns.iter().enumerate() {
                    let value: SqliteValue = row.get(index).map_err(sqlite_error(path))?;
                    cells.push(Cell::from_sqlite(value, *kind, table, column)?);
                }
                rows.push(cells);
            }
            tables.push(SnapshotTable {
                table,
                columns,
                rows,
            });
        }
        Ok(Snapshot { tables })
    }
}

/// The columns of each table in PostgreSQL with their types (generated columns left out).
async fn postgres_columns(
    client: &impl deadpool_postgres::GenericClient,
) -> StoreResult<BTreeMap<&'static str, Vec<(String, PgType)>>> {
    let mut found = BTreeMap::new();
    for table in TABLES {
        let rows = client
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns
                 WHERE table_schema::text = current_schema() AND table_name::text = $1
                   AND (is_identity::text = 'NO' OR identity_generation::text = 'BY DEFAULT')
                 ORDER BY ordinal_position",
                &[table],
            )
            .await
            .map_err(db)?;
        let columns = rows
            .iter()
            .map(|r| {
                let (column, kind): (String, String) = (r.get(0), r.get(1));
                let kind = PgType::of(table, &column, &kind)?;
                Ok((column, kind))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        found.insert(*table, columns);
    }
    Ok(found)
}

impl PgStore {
    /// Copies the SQLite store at `sqlite` into this database, which must hold no instances,
    /// tokens or connector versions yet; verifies the copy before committing it.
    pub fn copy_from_sqlite(&self, sqlite: &Path) -> StoreResult<Vec<CopiedTable>> {
        let pg_columns = self.run(async |client| postgres_columns(&*client).await)?;
        let snapshot = Snapshot::read(sqlite, &pg_columns)?;
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            // Workers starting on the database meanwhile wait rather than see half a copy.
            transaction
                .execute(
                    "LOCK TABLE instances, api_tokens, connector_versions IN EXCLUSIVE MODE",
                    &[],
                )
                .await
                .map_err(db)?;
            let held: i64 = transaction
                .query_one(
                    "SELECT (SELECT count(*) FROM instances) + (SELECT count(*) FROM api_tokens)
                          + (SELECT count(*) FROM connector_versions)",
                    &[],
                )
                .await
                .map_err(db)?
                .get(0);
            if held > 0 {
                return Err(StoreError::Conflict(format!(
                    "{} is not empty (it holds {held} instances, tokens and connector versions); migrate-store copies into an empty database only, so nothing was copied",
                    self.shown
                )));
            }
            let mut copied = Vec::new();
            for SnapshotTable {
                table,
                columns,
                rows,
            } in &snapshot.tables
            {
                insert_rows(&transaction, table, columns, rows).await?;
                let back = read_back(&transaction, table, columns).await?;
                if back.len() != rows.len() || digests(&back) != digests(rows) {
                    return Err(StoreError::Database(format!(
                        "{table} read back from {} differs from the SQLite file ({} rows written, {} read); nothing was copied",
                        self.shown,
                        rows.len(),
                        back.len()
                    )));
                }
                copied.push(CopiedTable {
                    table,
                    rows: rows.len(),
                });
            }
            check_lookup_order(&transaction, &snapshot).await?;
            for (table, column) in IDENTITIES {
                transaction
                    .execute(
                        &format!(
                            "SELECT setval(pg_get_serial_sequence('{table}', '{column}'),
                                    coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"
                        ),
                        &[],
                    )
                    .await
                    .map_err(db)?;
            }
            transaction.commit().await.map_err(db)?;
            Ok(copied)
        })
    }
}

async fn insert_rows(
    client: &impl deadpool_postgres::GenericClient,
    table: &str,
    columns: &[(String, PgType)],
    rows: &[Vec<Cell>],
) -> StoreResult<()> {
    let list = columns
        .iter()
        .map(|(c, _)| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let values = (0..chunk.len())
            .map(|r| {
                let row = (0..columns.len())
                    .map(|c| format!("${}", r * columns.len() + c + 1))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("({row})")
            })
            .collect::<Vec<_>>()
            .join(", ");
        let parameters: Vec<&(dyn ToSql + Sync)> =
            chunk.iter().flatten().map(Cell::as_sql).collect();
        client
            .execute(
                &format!("INSERT INTO {table} ({list}) VALUES {values}"),
                &parameters,
            )
            .await
            .map_err(|e| StoreError::Database(format!("copying {table}: {}", db(e))))?;
    }
    Ok(())
}

async fn read_back(
    client: &impl deadpool_postgres::GenericClient,
    table: &str,
    columns: &[(String, PgType)],
) -> StoreResult<Vec<Vec<Cell>>> {
    let list = columns
        .iter()
        .map(|(c, _)| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = client
        .query(&format!("SELECT {list} FROM {table}"), &[])
        .await
        .map_err(db)?;
    Ok(rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .enumerate()
                .map(|(index, (_, kind))| Cell::from_postgres(row, index, *kind))
                .collect()
        })
        .collect())
}

/// Lookup rows read in the order they were added (SQLite's rowid, PostgreSQL's `pos`).
async fn check_lookup_order(
    client: &impl deadpool_postgres::GenericClient,
    snapshot: &Snapshot,
) -> StoreResult<()> {
    let Some(SnapshotTable { columns, rows, .. }) = snapshot
        .tables
        .iter()
        .find(|t| t.table == "instance_lookups")
    else {
        return Ok(());
    };
    let position = |name: &str| columns.iter().position(|(c, _)| c == name);
    let (Some(instance), Some(lookup), Some(value)) = (
        position("instance"),
        position("lookup"),
        position("bss_value"),
    ) else {
        return Ok(());
    };
    let key = |row: &Vec<Cell>, index: usize| match &row[index] {
        Cell::Text(Some(t)) => t.clone(),
        _ => String::new(),
    };
    let mut expected: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (key(r, instance), key(r, lookup), key(r, value)))
        .collect();
    // Stable: within one lookup, rowid order stays.
    expected.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let found: Vec<(String, String, String)> = client
        .query(
            "SELECT instance, lookup, bss_value FROM instance_lookups ORDER BY instance, lookup, pos",
            &[],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    if found != expected {
        return Err(StoreError::Database(
            "lookup rows would not keep their order in PostgreSQL; nothing was copied".into(),
        ));
    }
    Ok(())
}
