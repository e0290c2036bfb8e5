//! [`TrustStore`] on PostgreSQL: trusted keys (unique names and keys, enforced by the database, so
//! two workers adding the same key at once get one entry and one conflict) and the append-only
//! audit log (a unique `once_key` makes a repeated load or refusal one entry across the fleet;
//! appends take an advisory lock, so ids become visible in order).

use super::super::trust_store::{
    AuditEntry, NewAuditEntry, TrustStore, TrustedKey, conflict_message,
};
use super::super::{StoreError, StoreResult};
use super::{PgStore, db, is_unique_violation};

const KEY_COLUMNS: &str = "name, public_key, key_id, connectors, added_at, added_by";

fn key_row(row: &tokio_postgres::Row) -> TrustedKey {
    TrustedKey {
        name: row.get(0),
        public_key: row.get(1),
        key_id: row.get(2),
        connectors: row.get(3),
        added_at: row.get(4),
        added_by: row.get(5),
    }
}

impl TrustStore for PgStore {
    fn add_trusted_key(&self, key: &TrustedKey) -> StoreResult<()> {
        self.run(async |client| {
            let inserted = client
                .execute(
                    &format!(
                        "INSERT INTO trusted_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
                    ),
                    &[
                        &key.name,
                        &key.public_key,
                        &key.key_id,
                        &key.connectors,
                        &key.added_at,
                        &key.added_by,
                    ],
                )
                .await;
            match inserted {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => {
                    let taken: String = client
                        .query_opt(
                            "SELECT name FROM trusted_keys WHERE name = $1 OR public_key = $2
                             ORDER BY (name = $1) DESC LIMIT 1",
                            &[&key.name, &key.public_key],
                        )
                        .await
                        .map_err(db)?
                        .map(|row| row.get(0))
                        .unwrap_or_else(|| key.name.clone());
                    Err(StoreError::Conflict(conflict_message(&key.name, &taken)))
                }
                Err(e) => Err(db(e)),
            }
        })
    }

    fn trusted_keys(&self) -> StoreResult<Vec<TrustedKey>> {
        self.run(async |client| {
            Ok(client
                .query(
                    &format!("SELECT {KEY_COLUMNS} FROM trusted_keys ORDER BY name"),
                    &[],
                )
                .await
                .map_err(db)?
                .iter()
                .map(key_row)
                .collect())
        })
    }

    fn remove_trusted_key(&self, name: &str) -> StoreResult<Option<TrustedKey>> {
        self.run(async |client| {
            Ok(client
                .query_opt(
                    &format!("DELETE FROM trusted_keys WHERE name = $1 RETURNING {KEY_COLUMNS}"),
                    &[&name],
                )
                .await
                .map_err(db)?
                .as_ref()
                .map(key_row))
        })
    }

    fn append_audit(&self, entry: &NewAuditEntry<'_>) -> StoreResult<bool> {
        self.run(async |client| {
            // Appenders take turns before their id is drawn, so ids become visible in order: a
            // reader paging with `after` never skips an entry committed late with a lower id.
            let transaction = client.transaction().await.map_err(db)?;
            transaction
                .execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended('audit_log', 0))",
                    &[],
                )
                .await
                .map_err(db)?;
            let appended = transaction
                .execute(
                    "INSERT INTO audit_log (at, actor, action, subject, detail, once_key)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (once_key) DO NOTHING",
                    &[
                        &crate::time::now_rfc3339(),
                        &entry.actor,
                        &entry.action,
                        &entry.subject,
                        &entry.detail,
                        &entry.once,
                    ],
                )
                .await
                .map_err(db)?;
            transaction.commit().await.map_err(db)?;
            Ok(appended > 0)
        })
    }

    fn audit_entries(&self, after: i64, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        self.run(async |client| {
            Ok(client
                .query(
                    "SELECT id, at, actor, action, subject, detail FROM audit_log
                     WHERE id > $1 ORDER BY id LIMIT $2",
                    &[&after, &(limit as i64)],
                )
                .await
                .map_err(db)?
                .iter()
                .map(|row| AuditEntry {
                    id: row.get(0),
                    at: row.get(1),
                    actor: row.get(2),
                    action: row.get(3),
                    subject: row.get(4),
                    detail: row.get(5),
                })
                .collect())
        })
    }
}
