//! [`TokenStore`] on SQLite: one row per named token, unique names and hashes.

use super::*;
use crate::store::token_store::{TokenRow, TokenStore};

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
}
