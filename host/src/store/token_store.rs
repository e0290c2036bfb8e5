//! What the store keeps of API access: named tokens, each with a role, kept only as the SHA-256
//! of the token; revoking keeps the row (who had access, until when) and ends the access.
//!
//! Guarantees, per method: names and hashes are unique (`create_token` refuses a taken name);
//! `token_by_hash` finds only unrevoked tokens, so a revocation takes effect on the next request
//! of every process on the store. Console sessions belong to a token: `session` finds one only
//! while it has not expired and its token is not revoked, so revoking a token signs its sessions
//! out everywhere; only a session's SHA-256 is kept, like a token's.

use serde::{Deserialize, Serialize};

use super::StoreResult;

/// What a token may do. Ordered: each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything but secrets (which nothing shows).
    Viewer,
    /// Also runs syncs: push, pull, retry, link, checks, due schedules, feed acknowledgements.
    Operator,
    /// Also changes connectors, instances, settings, secrets, lookups, options, schedules,
    /// callbacks, sinks, removals and tokens.
    Admin,
}

spelled!(Role, "role", {
    Viewer => "viewer",
    Operator => "operator",
    Admin => "admin",
});

/// One named token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TokenRow {
    pub name: String,
    pub role: Role,
    /// SHA-256 (hex) of the token; the token itself is never kept.
    #[serde(skip)]
    pub hash: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// A console session as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// The token the session was signed in with (unrevoked).
    pub token: TokenRow,
    /// The session's CSRF token, which every form it posts must carry.
    pub csrf: String,
    /// Unix seconds after which the session is over.
    pub expires_at: i64,
}

/// API tokens and the console sessions signed in with them.
pub trait TokenStore: Send + Sync {
    /// Adds a token; refuses a name already used (revoked ones included).
    fn create_token(&self, token: &TokenRow) -> StoreResult<()>;
    /// Every token, revoked ones included, by name.
    fn tokens(&self) -> StoreResult<Vec<TokenRow>>;
    /// Revokes a token; false when there is no such unrevoked token.
    fn revoke_token(&self, name: &str) -> StoreResult<bool>;
    /// The unrevoked token with this hash.
    fn token_by_hash(&self, hash: &str) -> StoreResult<Option<TokenRow>>;
    /// Starts a session (its SHA-256 `hash`) for token `token` until `expires_at` (unix seconds).
    fn create_session(
        &self,
        hash: &str,
        token: &str,
        csrf: &str,
        expires_at: i64,
    ) -> StoreResult<()>;
    /// The session with this hash, unexpired at `now`, whose token is unrevoked.
    fn session(&self, hash: &str, now: i64) -> StoreResult<Option<SessionRow>>;
    /// Ends a session (signing out); ending one that is not there is not an error.
    fn end_session(&self, hash: &str) -> StoreResult<()>;
    /// Forgets sessions expired at `now`; how many.
    fn prune_sessions(&self, now: i64) -> StoreResult<usize>;
}
