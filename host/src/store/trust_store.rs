//! What the store keeps of connector provenance: the trust list (the Ed25519 keys whose signed
//! connectors may load, each for a set of connector names) and the audit log (who changed what:
//! loads, refusals, trust and settings changes, rollbacks and restores), append-only.
//!
//! Guarantees, per method: key names and keys are unique (`add_trusted_key` refuses a second entry
//! with either, so one key has one set of connector names); a removal is seen by every process's
//! next load, which reads the list afresh. Audit entries are never changed or removed; an entry
//! with a `once` key is appended at most once (a load or refusal that every command repeats is
//! recorded when first seen, not by every process that meets it again).

use serde::{Deserialize, Serialize};

use super::StoreResult;

/// One key of the trust list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TrustedKey {
    /// The operator's name for the key (a vendor, a team).
    pub name: String,
    /// `ed25519:BASE64`.
    pub public_key: String,
    /// The key id signatures name (`registry::signature::key_id`).
    pub key_id: String,
    /// The connector names it may sign: comma-separated patterns, `*` any run of characters.
    pub connectors: String,
    pub added_at: String,
    /// Who added it (an audit actor).
    pub added_by: String,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AuditEntry {
    /// Increasing; the order entries were appended.
    pub id: i64,
    pub at: String,
    /// Who: `cli:USER`, `token:NAME` (API), `console:NAME`, or `host` (the host itself: a load).
    pub actor: String,
    /// What: `connector.loaded`, `connector.refused`, `trust.added`, `trust.removed`,
    /// `settings.changed`, `connector.rolled-back`, `connector.restored`.
    pub action: String,
    /// What it was done to: a connector (`name version` or a file), a key name, an instance.
    pub subject: String,
    /// The rest: a reason, the keys changed (never their values), the key id.
    pub detail: String,
}

/// An entry to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub detail: &'a str,
    /// Appended only if no entry with this key was (a repeated load or refusal).
    pub once: Option<&'a str>,
}

/// The trust list and the audit log.
pub trait TrustStore: Send + Sync {
    /// Adds a key; refuses (conflict) a name or a key already listed.
    fn add_trusted_key(&self, key: &TrustedKey) -> StoreResult<()>;
    /// Every trusted key, by name.
    fn trusted_keys(&self) -> StoreResult<Vec<TrustedKey>>;
    /// Removes a key by name; the removed entry, or none when there was none.
    fn remove_trusted_key(&self, name: &str) -> StoreResult<Option<TrustedKey>>;
    /// Appends an entry (at `now`); false when its `once` key was appended before.
    fn append_audit(&self, entry: &NewAuditEntry<'_>) -> StoreResult<bool>;
    /// Entries after id `after`, oldest first, at most `limit`.
    fn audit_entries(&self, after: i64, limit: usize) -> StoreResult<Vec<AuditEntry>>;
}

/// Why a key cannot be added: its name, or its key, is listed already.
pub fn conflict_message(name: &str, taken: &str) -> String {
    if name == taken {
        format!(
            "a key named {name:?} is trusted already; remove it first (`bss-host trust remove {name}`) or choose another name"
        )
    } else {
        format!(
            "this public key is trusted already, as {taken:?}; one key has one entry (remove {taken:?} first to change the connectors it may sign)"
        )
    }
}

/// The audit actor of a command-line user: `cli:USER` (the operating-system user running it).
pub fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

/// The audit actor of an API request made with token `name`.
pub fn token_actor(name: &str) -> String {
    format!("token:{name}")
}

/// The audit actor of a console session signed in with token `name`.
pub fn console_actor(name: &str) -> String {
    format!("console:{name}")
}
