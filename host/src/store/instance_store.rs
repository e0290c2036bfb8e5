//! What instances persist: the instance rows, their settings (secrets sealed before they get
//! here), lookup tables, sync options, the last settings check, and the request budget shared by
//! every process on the data folder.
//!
//! Guarantees, per method: every write is one transaction that takes the store's write lock before
//! it reads (SQLite: `BEGIN IMMEDIATE`; a server database: the instance's row locked `FOR UPDATE`),
//! so two processes changing one instance serialise and neither loses the other's change. Settings
//! changed together (`change_settings`) land together or not at all. `take_request_tokens` reads,
//! refills and takes under that lock, so the budget is one per instance across processes.
//! Deleting an instance removes everything keyed by it in the same transaction.

use std::collections::BTreeMap;

use super::{CheckRow, InstanceRow, LookupRow, StoreResult, StoredValue};
use crate::contract::manifest::{Direction, Entity, Operations};

/// Instances, settings, lookups, sync options, checks and the request budget.
pub trait InstanceStore: Send + Sync {
    fn create_instance(&self, instance: &InstanceRow) -> StoreResult<()>;
    fn instance(&self, name: &str) -> StoreResult<Option<InstanceRow>>;
    fn instances(&self) -> StoreResult<Vec<InstanceRow>>;
    fn set_enabled(&self, name: &str, enabled: bool) -> StoreResult<()>;
    /// Pins the instance to the versions `requirement` accepts; `None` follows the newest.
    fn set_version_req(&self, name: &str, requirement: Option<&str>) -> StoreResult<()>;
    /// Deletes the instance with its settings, lookups, options and checks.
    fn delete_instance(&self, name: &str) -> StoreResult<()>;
    fn settings(&self, instance: &str) -> StoreResult<BTreeMap<String, StoredValue>>;
    /// How many sealed (secret) values the store holds, across instances.
    fn sealed_count(&self) -> StoreResult<i64>;
    /// The instance's request budget shared by every process of the data folder: refills the
    /// bucket (capacity and refill `per_minute`) for the time passed, takes up to `want` tokens,
    /// returns how many it took.
    fn take_request_tokens(&self, instance: &str, per_minute: u32, want: u32) -> StoreResult<u32>;
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
