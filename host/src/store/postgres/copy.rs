//! `bss-host migrate-store`: a SQLite store copied into an empty PostgreSQL database, and read
//! back and compared before it is committed.
//!
//! The copy is one PostgreSQL transaction over one SQLite read snapshot: it lands whole or not at
//! all, and a process writing the SQLite file meanwhile changes nothing in it. Tables are copied in
//! the order their foreign keys need, each column converted to the PostgreSQL column's type; the
//! identity sequences then continue after the copied ids. Rows stream through a chunk at a time,
//! so a store of any size copies in constant memory. Before committing, every table is read
//! back from PostgreSQL through a cursor and compared with what was sent: the row count and the
//! sum of the rows' SHA-256 digests (a multiset digest, so the two databases' row orders do not
//! matter); and lookup rows keep their order.
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
    "trusted_keys",
    "audit_log",
];

/// Not copied: held by (or describing) processes on the old store.
const TRANSIENT: &[&str] = &["leases", "workers"];

/// Identity columns whose sequences must continue after the copied ids.
const IDENTITIES: &[(&str, &str)] = &[
    ("runs", "id"),
    ("feed", "seq"),
    ("hook_events", "seq"),
    ("jobs", "id"),
    ("audit_log", "id"),
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

/// A table's rows as a multiset: how many, and the sum (per 64-bit lane, wrapping) of each row's
/// SHA-256. Equal for two tables holding the same rows in any order, in constant memory however
/// large the table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct RowsDigest {
    rows: usize,
    sum: [u64; 4],
}

impl RowsDigest {
    fn add(&mut self, row: &[Cell]) {
        let mut bytes = Vec::new();
        row.iter().for_each(|cell| cell.render(&mut bytes));
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        for (lane, chunk) in self.sum.iter_mut().zip(digest.chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            *lane = lane.wrapping_add(u64::from_le_bytes(word));
        }
        self.rows += 1;
    }
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

/// The SQLite store being copied: one read transaction (so every table is read from the same
/// snapshot), checked, with each table's columns mapped to PostgreSQL's.
struct Source<'p> {
    connection: rusqlite::Connection,
    path: &'p Path,
    tables: Vec<(&'static str, Vec<(String, PgType)>)>,
}

impl<'p> Source<'p> {
    fn open(
        path: &'p Path,
        pg_columns: &BTreeMap<&'static str, Vec<(String, PgType)>>,
    ) -> StoreResult<Source<'p>> {
        // Brings an older file up to this host's schema first (and refuses a newer or damaged one).
        drop(super::super::sqlite::SqliteStore::open(path)?);
        let connection =
            rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(sqlite_error(path))?;
        // Held until the source is dropped: every read below sees one snapshot.
        connection
            .execute_batch("BEGIN DEFERRED")
            .map_err(sqlite_error(path))?;
        let present: Vec<String> = connection
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
        let live: Option<(String, String, String)> = connection
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
            let from = sqlite_columns(&connection, path, table)?;
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
            tables.push((*table, columns));
        }
        Ok(Source {
            connection,
            path,
            tables,
        })
    }

    /// Copies `table` into `client` a chunk of rows at a time, in rowid order (lookup rows keep
    /// the order they were added in); the digest of what it sent.
    async fn copy_table(
        &self,
        client: &impl deadpool_postgres::GenericClient,
        table: &str,
        columns: &[(String, PgType)],
    ) -> StoreResult<RowsDigest> {
        let path = self.path;
        let mut statement = self
            .connection
            .prepare(&format!(
                "SELECT {} FROM {table} ORDER BY rowid",
                column_list(columns)
            ))
            .map_err(sqlite_error(path))?;
        let mut read = statement.query([]).map_err(sqlite_error(path))?;
        let mut digest = RowsDigest::default();
        let mut chunk = Vec::with_capacity(ROWS_PER_INSERT);
        loop {
            let row = read.next().map_err(sqlite_error(path))?;
            if let Some(row) = row {
                let mut cells = Vec::with_capacity(columns.len());
                for (index, (column, kind)) in columns.iter().enumerate() {
                    let value: SqliteValue = row.get(index).map_err(sqlite_error(path))?;
                    cells.push(Cell::from_sqlite(value, *kind, table, column)?);
                }
                digest.add(&cells);
                chunk.push(cells);
            }
            if chunk.len() == ROWS_PER_INSERT || (row.is_none() && !chunk.is_empty()) {
                insert_rows(client, table, columns, &chunk).await?;
                chunk.clear();
            }
            if row.is_none() {
                return Ok(digest);
            }
        }
    }

    /// The lookup rows as (instance, lookup, BSS value), in the order they were added.
    fn lookups_in_order(&self) -> StoreResult<Vec<(String, String, String)>> {
        let mut statement = self
            .connection
            .prepare("SELECT instance, lookup, bss_value FROM instance_lookups ORDER BY rowid")
            .map_err(sqlite_error(self.path))?;
        let rows = statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(sqlite_error(self.path))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sqlite_error(self.path))?;
        Ok(rows)
    }
}

fn column_list(columns: &[(String, PgType)]) -> String {
    columns
        .iter()
        .map(|(c, _)| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ")
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
        let source = Source::open(sqlite, &pg_columns)?;
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
            for (table, columns) in &source.tables {
                let sent = source.copy_table(&transaction, table, columns).await?;
                let back = digest_back(&transaction, table, columns).await?;
                if back != sent {
                    return Err(StoreError::Database(format!(
                        "{table} read back from {} differs from the SQLite file ({} rows written, {} read); nothing was copied",
                        self.shown, sent.rows, back.rows
                    )));
                }
                copied.push(CopiedTable {
                    table,
                    rows: sent.rows,
                });
            }
            check_lookup_order(&transaction, source.lookups_in_order()?).await?;
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
    let list = column_list(columns);
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

/// The digest of `table` as PostgreSQL has it, read through a cursor a chunk at a time.
async fn digest_back(
    client: &impl deadpool_postgres::GenericClient,
    table: &str,
    columns: &[(String, PgType)],
) -> StoreResult<RowsDigest> {
    client
        .batch_execute(&format!(
            "DECLARE read_back NO SCROLL CURSOR FOR SELECT {} FROM {table}",
            column_list(columns)
        ))
        .await
        .map_err(db)?;
    let mut digest = RowsDigest::default();
    loop {
        let rows = client
            .query(&format!("FETCH {ROWS_PER_INSERT} FROM read_back"), &[])
            .await
            .map_err(db)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let cells: Vec<Cell> = columns
                .iter()
                .enumerate()
                .map(|(index, (_, kind))| Cell::from_postgres(row, index, *kind))
                .collect();
            digest.add(&cells);
        }
    }
    client.batch_execute("CLOSE read_back").await.map_err(db)?;
    Ok(digest)
}

/// Lookup rows read in the order they were added (SQLite's rowid, PostgreSQL's `pos`).
async fn check_lookup_order(
    client: &impl deadpool_postgres::GenericClient,
    mut expected: Vec<(String, String, String)>,
) -> StoreResult<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::InstanceStore;
    use crate::store::postgres::scratch::ScratchDb;

    /// A SQLite store with one instance and `links` id map rows (several insert chunks).
    fn sqlite_store(dir: &Path, links: usize) -> std::path::PathBuf {
        let path = dir.join("bss.db");
        let store = crate::store::sqlite::SqliteStore::open(&path).unwrap();
        store
            .create_instance(&crate::store::behaviour::instance("acme"))
            .unwrap();
        drop(store);
        let mut connection = rusqlite::Connection::open(&path).unwrap();
        let tx = connection.transaction().unwrap();
        for i in 0..links {
            tx.execute(
                "INSERT INTO id_map (instance, entity, bss_id, remote_id, pending, updated_at)
                 VALUES ('acme', 'account', ?1, ?2, 0, '2026-01-01T00:00:00Z')",
                rusqlite::params![
                    format!("A{i}"),
                    (i % 7 != 0).then(|| format!("{}", 1000 + i))
                ],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        path
    }

    #[test]
    fn a_store_larger_than_a_chunk_is_copied_whole_and_compared() {
        let dir = tempfile::tempdir().unwrap();
        let path = sqlite_store(dir.path(), 3 * ROWS_PER_INSERT + 17);
        let scratch = ScratchDb::create();
        let target = PgStore::open(&scratch.url).unwrap();
        let copied = target.copy_from_sqlite(&path).unwrap();
        let rows = |table: &str| copied.iter().find(|c| c.table == table).unwrap().rows;
        assert_eq!(rows("id_map"), 3 * ROWS_PER_INSERT + 17);
        assert_eq!(rows("instances"), 1);
        let (count, unlinked): (i64, i64) = target
            .run(async |client| {
                let row = client
                    .query_one(
                        "SELECT count(*), count(*) FILTER (WHERE remote_id IS NULL) FROM id_map",
                        &[],
                    )
                    .await
                    .map_err(db)?;
                Ok((row.get(0), row.get(1)))
            })
            .unwrap();
        assert_eq!(count as usize, 3 * ROWS_PER_INSERT + 17);
        assert_eq!(unlinked as usize, (3 * ROWS_PER_INSERT + 17).div_ceil(7));
    }

    /// The read-back comparison is what stands between a faulty copy and a committed one: a
    /// trigger that alters one row on its way in makes the copy fail, and nothing stays.
    #[test]
    fn a_row_that_arrives_changed_fails_the_copy_and_nothing_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = sqlite_store(dir.path(), 1200);
        let scratch = ScratchDb::create();
        let target = PgStore::open(&scratch.url).unwrap();
        target
            .run(async |client| {
                client
                    .batch_execute(
                        "CREATE FUNCTION garble() RETURNS trigger AS $$
                         BEGIN
                           IF NEW.bss_id = 'A777' THEN NEW.remote_id := 'somewhere else'; END IF;
                           RETURN NEW;
                         END $$ LANGUAGE plpgsql;
                         CREATE TRIGGER garble BEFORE INSERT ON id_map
                           FOR EACH ROW EXECUTE FUNCTION garble();",
                    )
                    .await
                    .map_err(db)
            })
            .unwrap();
        let refused = target.copy_from_sqlite(&path).unwrap_err().to_string();
        assert!(
            refused.contains("id_map read back") && refused.contains("nothing was copied"),
            "{refused}"
        );
        let instances: i64 = target
            .run(async |client| {
                Ok(client
                    .query_one("SELECT count(*) FROM instances", &[])
                    .await
                    .map_err(db)?
                    .get(0))
            })
            .unwrap();
        assert_eq!(instances, 0, "the copy was rolled back");
    }
}
