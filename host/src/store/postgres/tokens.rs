//! [`TokenStore`] on PostgreSQL: named tokens (unique names and hashes, enforced by the
//! database, so two workers creating the same name at once get one token and one conflict) and
//! console sessions.

use super::super::token_store::{Role, SessionRow, TokenRow, TokenStore};
use super::super::{StoreError, StoreResult};
use super::{PgStore, db, is_unique_violation};

const TOKEN_COLUMNS: &str = "name, role, hash, created_at, revoked_at";

fn token_row(row: &tokio_postgres::Row) -> StoreResult<TokenRow> {
    let role: String = row.get(1);
    Ok(TokenRow {
        name: row.get(0),
        role: role
            .parse::<Role>()
            .map_err(|e| StoreError::Database(format!("api_tokens.role: {e}")))?,
        hash: row.get(2),
        created_at: row.get(3),
        revoked_at: row.get(4),
    })
}

impl TokenStore for PgStore {
    fn create_token(&self, token: &TokenRow) -> StoreResult<()> {
        self.run(async |client| {
            let inserted = client
                .execute(
                    &format!(
                        "INSERT INTO api_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
                    ),
                    &[
                        &token.name,
                        &token.role.as_str(),
                        &token.hash,
                        &token.created_at,
                        &token.revoked_at,
                    ],
                )
                .await;
            match inserted {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                    "a token named {:?} exists (revoked names are kept too); choose another name",
                    token.name
                ))),
                Err(e) => Err(db(e)),
            }
        })
    }

    fn tokens(&self) -> StoreResult<Vec<TokenRow>> {
        self.run(async |client| {
            client
                .query(
                    &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY name"),
                    &[],
                )
                .await
                .map_err(db)?
                .iter()
                .map(token_row)
                .collect()
        })
    }

    fn revoke_token(&self, name: &str) -> StoreResult<bool> {
        self.run(async |client| {
            let changed = client
                .execute(
                    "UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL",
                    &[&name, &crate::time::now_rfc3339()],
                )
                .await
                .map_err(db)?;
            Ok(changed > 0)
        })
    }

    fn token_by_hash(&self, hash: &str) -> StoreResult<Option<TokenRow>> {
        self.run(async |client| {
            client
                .query_opt(
                    &format!(
                        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash = $1 AND revoked_at IS NULL"
                    ),
                    &[&hash],
                )
                .await
                .map_err(db)?
                .as_ref()
                .map(token_row)
                .transpose()
        })
    }

    fn create_session(
        &self,
        hash: &str,
        token: &str,
        csrf: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        self.run(async |client| {
            client
                .execute(
                    "INSERT INTO console_sessions (hash, token, csrf, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[&hash, &token, &csrf, &crate::time::now_unix(), &expires_at],
                )
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    fn session(&self, hash: &str, now: i64) -> StoreResult<Option<SessionRow>> {
        self.run(async |client| {
            let row = client
                .query_opt(
                    "SELECT t.name, t.role, t.hash, t.created_at, t.revoked_at, s.csrf, s.expires_at
                     FROM console_sessions s JOIN api_tokens t ON t.name = s.token
                     WHERE s.hash = $1 AND s.expires_at > $2 AND t.revoked_at IS NULL",
                    &[&hash, &now],
                )
                .await
                .map_err(db)?;
            row.map(|row| {
                Ok(SessionRow {
                    token: token_row(&row)?,
                    csrf: row.get(5),
                    expires_at: row.get(6),
                })
            })
            .transpose()
        })
    }

    fn end_session(&self, hash: &str) -> StoreResult<()> {
        self.run(async |client| {
            client
                .execute("DELETE FROM console_sessions WHERE hash = $1", &[&hash])
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    fn prune_sessions(&self, now: i64) -> StoreResult<usize> {
        self.run(async |client| {
            let removed = client
                .execute(
                    "DELETE FROM console_sessions WHERE expires_at <= $1",
                    &[&now],
                )
                .await
                .map_err(db)?;
            Ok(removed as usize)
        })
    }
}
