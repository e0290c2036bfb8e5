//! [`TokenStore`] on SQLite: one row per named token, unique names and hashes.

use super::*;
use crate::store::token_store::{SessionRow, TokenRow, TokenStore};

const TOKEN_COLUMNS: &str = "name, role, hash, created_at, revoked_at";

fn token_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        name: row.get(0)?,
        role: named(row, 1)?,
        hash: row.get(2)?,
        created_at: row.get(3)?,
        revoked_at: row.get(4)?,
    })
}

impl TokenStore for SqliteStore {
    fn create_token(&self, token: &TokenRow) -> StoreResult<()> {
        let connection = self.lock();
        let taken: bool = connection
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM api_tokens WHERE name = ?1)",
                [&token.name],
                |r| r.get(0),
            )
            .map_err(db)?;
        if taken {
            return Err(StoreError::Conflict(format!(
                "a token named {:?} exists (revoked names are kept too); choose another name",
                token.name
            )));
        }
        connection
            .execute(
                &format!("INSERT INTO api_tokens ({TOKEN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
                params![
                    token.name,
                    name_of(&token.role),
                    token.hash,
                    token.created_at,
                    token.revoked_at
                ],
            )
            .map_err(db)?;
        Ok(())
    }

    fn tokens(&self) -> StoreResult<Vec<TokenRow>> {
        let connection = self.lock();
        let mut statement = connection
            .prepare(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY name"
            ))
            .map_err(db)?;
        let rows = statement
            .query_map([], token_row)
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(rows)
    }

    fn revoke_token(&self, name: &str) -> StoreResult<bool> {
        let connection = self.lock();
        let changed = connection
            .execute(
                "UPDATE api_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
                params![name, crate::time::now_rfc3339()],
            )
            .map_err(db)?;
        Ok(changed > 0)
    }

    fn token_by_hash(&self, hash: &str) -> StoreResult<Option<TokenRow>> {
        let connection = self.lock();
        connection
            .query_row(
                &format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash = ?1 AND revoked_at IS NULL"
                ),
                [hash],
                token_row,
            )
            .optional()
            .map_err(db)
    }

    fn create_session(
        &self,
        hash: &str,
        token: &str,
        csrf: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        self.lock()
            .execute(
                "INSERT INTO console_sessions (hash, token, csrf, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![hash, token, csrf, unix_now(), expires_at],
            )
            .map_err(db)?;
        Ok(())
    }

    fn session(&self, hash: &str, now: i64) -> StoreResult<Option<SessionRow>> {
        let connection = self.lock();
        connection
            .query_row(
                "SELECT t.name, t.role, t.hash, t.created_at, t.revoked_at, s.csrf, s.expires_at
                 FROM console_sessions s JOIN api_tokens t ON t.name = s.token
                 WHERE s.hash = ?1 AND s.expires_at > ?2 AND t.revoked_at IS NULL",
                params![hash, now],
                |row| {
                    Ok(SessionRow {
                        token: token_row(row)?,
                        csrf: row.get(5)?,
                        expires_at: row.get(6)?,
                    })
                },
            )
            .optional()
            .map_err(db)
    }

    fn end_session(&self, hash: &str) -> StoreResult<()> {
        self.lock()
            .execute("DELETE FROM console_sessions WHERE hash = ?1", [hash])
            .map_err(db)?;
        Ok(())
    }

    fn prune_sessions(&self, now: i64) -> StoreResult<usize> {
        self.lock()
            .execute("DELETE FROM console_sessions WHERE expires_at <= ?1", [now])
            .map_err(db)
    }
}
