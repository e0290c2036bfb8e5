//! Persistence: everything the host must remember, behind the [`Store`] trait. Each trait method
//! is one transaction — it happens whole or not at all — so a PostgreSQL backend can implement the
//! same trait with the same guarantees. SQLite (`sqlite.rs`, one file in the data folder, WAL mode)
//! is the embedded default. Each part of the host adds its tables in a migration of its own.
//! Secret setting values arrive here already sealed (`secrets.rs`); the store never sees a key.

pub mod secrets;
pub mod sqlite;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::runtime::manifest::{Direction, Entity, Operations};

/// A connector version the registry has loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorVersion {
    pub name: String,
    pub version: String,
    pub content_hash: String,
    /// `bundled`, or the file it was loaded from.
    pub source: String,
    /// The manifest as JSON.
    pub manifest: String,
    pub loaded_at: String,
}

/// An activated connector instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRow {
    pub name: String,
    pub connector: String,
    /// A semantic-version requirement (`^1.2`, `=1.0.3`); none follows the newest.
    pub version_req: Option<String>,
    pub installation: String,
    pub enabled: bool,
    pub created_at: String,
}

/// A stored setting value: plain, or sealed (a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredValue {
    Plain(String),
    Sealed(String),
}

/// One row of a lookup table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupRow {
    pub bss_value: String,
    pub remote_value: String,
    pub pull_default: bool,
}

/// The result of the last `activate` check of an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRow {
    pub checked_at: String,
    pub ok: bool,
    /// The connector's summary, or the reason it failed.
    pub summary: String,
    /// (key, problem) pairs.
    pub problems: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("an instance named {0:?} already exists; choose another name")]
    DuplicateInstance(String),
    #[error("there is no instance named {0:?}; `bss-host instances list` shows them")]
    NoInstance(String),
    #[error("the database {path} could not be opened: {reason}")]
    Open { path: String, reason: String },
    #[error(
        "the database {path} was written by a newer bss-host (schema {found}; this one knows up to {known}); use that version or newer"
    )]
    NewerSchema {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("the database failed: {0}")]
    Database(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Every operation the host persists; each is one transaction.
pub trait Store: Send + Sync {
    fn record_connector_version(&self, version: &ConnectorVersion) -> StoreResult<()>;
    fn connector_versions(&self) -> StoreResult<Vec<ConnectorVersion>>;

    fn create_instance(&self, instance: &InstanceRow) -> StoreResult<()>;
    fn instance(&self, name: &str) -> StoreResult<Option<InstanceRow>>;
    fn instances(&self) -> StoreResult<Vec<InstanceRow>>;
    fn set_enabled(&self, name: &str, enabled: bool) -> StoreResult<()>;
    /// Deletes the instance with its settings, lookups, options and checks.
    fn delete_instance(&self, name: &str) -> StoreResult<()>;

    fn settings(&self, instance: &str) -> StoreResult<BTreeMap<String, StoredValue>>;
    /// Sets (`Some`) and clears (`None`) settings together.
    fn change_settings(
        &self,
        instance: &str,
        changes: &[(String, Option<StoredValue>)],
    ) -> StoreResult<()>;

    fn lookups(&self, instance: &str) -> StoreResult<BTreeMap<String, Vec<LookupRow>>>;
    /// Adds or replaces rows (by BSS value) of one lookup table.
    fn set_lookup_rows(&self, instance: &str, lookup: &str, rows: &[LookupRow]) -> StoreResult<()>;
    fn remove_lookup_rows(
        &self,
        instance: &str,
        lookup: &str,
        bss_values: &[String],
    ) -> StoreResult<()>;

    fn sync_options(&self, instance: &str) -> StoreResult<Vec<(Entity, Direction, Operations)>>;
    fn set_sync_options(
        &self,
        instance: &str,
        options: &[(Entity, Direction, Operations)],
    ) -> StoreResult<()>;

    fn record_check(&self, instance: &str, check: &CheckRow) -> StoreResult<()>;
    fn last_check(&self, instance: &str) -> StoreResult<Option<CheckRow>>;
}
