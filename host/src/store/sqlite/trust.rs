//! [`TrustStore`] on SQLite: trusted keys (unique names and keys) and the append-only audit log
//! (a unique `once_key` makes a repeated load or refusal one entry).

use super::*;
use crate::store::trust_store::{
    AuditEntry, NewAuditEntry, TrustStore, TrustedKey, conflict_message,
};

const KEY_COLUMNS: &str = "name, public_key, key_id, connectors, added_at, added_by";

fn key_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TrustedKey> {
    Ok(TrustedKey {
        name: row.get(0)?,
        public_key: row.get(1)?,
        key_id: row.get(2)?,
        connectors: row.get(3)?,
        added_at: row.get(4)?,
        added_by: row.get(5)?,
    })
}

impl TrustStore for SqliteStore {
    fn add_trusted_key(&self, key: &TrustedKey) -> StoreResult<()> {
        let connection = self.lock();
        // Inserted first, the unique indexes deciding: a name or key added by another process a
        // moment ago gets the same answer as one added long before (as on PostgreSQL).
        let inserted = connection.execute(
            &format!("INSERT INTO trusted_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![
                key.name,
                key.public_key,
                key.key_id,
                key.connectors,
                key.added_at,
                key.added_by
            ],
        );
        match inserted {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                let taken: String = connection
                    .query_row(
                        "SELECT name FROM trusted_keys WHERE name = ?1 OR public_key = ?2
                         ORDER BY (name = ?1) DESC LIMIT 1",
                        params![key.name, key.public_key],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(db)?
                    .unwrap_or_else(|| key.name.clone());
                Err(StoreError::Conflict(conflict_message(&key.name, &taken)))
            }
            Err(error) => Err(db(error)),
        }
    }

    fn trusted_keys(&self) -> StoreResult<Vec<TrustedKey>> {
        let connection = self.lock();
        let mut statement = connection
            .prepare(&format!(
                "SELECT {KEY_COLUMNS} FROM trusted_keys ORDER BY name"
            ))
            .map_err(db)?;
        let rows = statement
            .query_map([], key_row)
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(rows)
    }

    fn remove_trusted_key(&self, name: &str) -> StoreResult<Option<TrustedKey>> {
        let connection = self.lock();
        connection
            .query_row(
                &format!("DELETE FROM trusted_keys WHERE name = ?1 RETURNING {KEY_COLUMNS}"),
                [name],
                key_row,
            )
            .optional()
            .map_err(db)
    }

    fn append_audit(&self, entry: &NewAuditEntry<'_>) -> StoreResult<bool> {
        let appended = self
            .lock()
            .execute(
                "INSERT INTO audit_log (at, actor, action, subject, detail, once_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (once_key) DO NOTHING",
                params![
                    crate::time::now_rfc3339(),
                    entry.actor,
                    entry.action,
                    entry.subject,
                    entry.detail,
                    entry.once
                ],
            )
            .map_err(db)?;
        Ok(appended > 0)
    }

    fn audit_entries(&self, after: i64, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        let connection = self.lock();
        let mut statement = connection
            .prepare(
                "SELECT id, at, actor, action, subject, detail FROM audit_log
                 WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(db)?;
        let rows = statement
            .query_map(params![after, limit as i64], |row| {
                Ok(AuditEntry {
                    id: row.get(0)?,
                    at: row.get(1)?,
                    actor: row.get(2)?,
                    action: row.get(3)?,
                    subject: row.get(4)?,
                    detail: row.get(5)?,
                })
            })
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(rows)
    }
}
