//! What the registry persists: the connector versions seen in the plugins folder, their stored
//! manifests, withdrawals, and the components refused for what they are (by content hash).
//!
//! Guarantees, per method: each is one statement or one transaction; writes are idempotent
//! (recording a version or a refusal twice keeps the first). Nothing here is contended: versions
//! are recorded by whichever process loads a file first, and later loads read them.
//!
//! A store shared by workers on several machines also keeps the components themselves, by
//! content hash, so a version installed on one worker reaches the others; a store on one
//! machine (SQLite) does not, since its processes read the same plugins folder.

use super::{ConnectorVersion, StoreResult};

/// Connector versions and refused components.
pub trait RegistryStore: Send + Sync {
    fn record_connector_version(&self, version: &ConnectorVersion) -> StoreResult<()>;
    fn connector_versions(&self) -> StoreResult<Vec<ConnectorVersion>>;
    /// Why a component (by content hash) was refused for what it is, if it was.
    fn component_refusal(&self, content_hash: &str) -> StoreResult<Option<String>>;
    fn record_component_refusal(&self, content_hash: &str, reason: &str) -> StoreResult<()>;
    fn set_withdrawn(&self, name: &str, version: &str, withdrawn: bool) -> StoreResult<()>;
    /// Keeps a loaded component's bytes for the other workers (idempotent by content hash) and
    /// tells them; nothing where the store is not shared between machines.
    fn store_component(&self, _content_hash: &str, _bytes: &[u8]) -> StoreResult<()> {
        Ok(())
    }
    /// A component's bytes by content hash, when the store keeps them.
    fn component(&self, _content_hash: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(None)
    }
    /// Woken when another worker stored a component; none where components are not shared.
    fn component_wakeup(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }
}
