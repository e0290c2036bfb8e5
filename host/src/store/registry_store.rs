//! What the registry persists: the connector versions seen in the plugins folder, their stored
//! manifests, withdrawals, and the components refused for what they are (by content hash).
//!
//! Guarantees, per method: each is one statement or one transaction; writes are idempotent
//! (recording a version or a refusal twice keeps the first). Nothing here is contended: versions
//! are recorded by whichever process loads a file first, and later loads read them.

use super::{ConnectorVersion, StoreResult};

/// Connector versions and refused components.
pub trait RegistryStore: Send + Sync {
    fn record_connector_version(&self, version: &ConnectorVersion) -> StoreResult<()>;
    fn connector_versions(&self) -> StoreResult<Vec<ConnectorVersion>>;
    /// Why a component (by content hash) was refused for what it is, if it was.
    fn component_refusal(&self, content_hash: &str) -> StoreResult<Option<String>>;
    fn record_component_refusal(&self, content_hash: &str, reason: &str) -> StoreResult<()>;
    fn set_withdrawn(&self, name: &str, version: &str, withdrawn: bool) -> StoreResult<()>;
}
