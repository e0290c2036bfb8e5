//! What the sync engine needs of a connector: push and pull, and (contract 1.3) one record by id
//! and removals. The wasm component implements it
//! through the runtime; a connector's core compiled natively (for comparison) or a test double
//! can implement it too, and the same engine drives them all.
//!
//! The trait speaks the host's vocabulary ([`Entity`] from the manifest); the records and answers
//! are the contract's data types, which live in the leaf `contract` layer and which every
//! contract minor converts into at its edge. Only the implementations convert to a binding's own
//! types.

use std::future::Future;
use std::sync::Arc;

use crate::capabilities::context::InstanceContext;
use crate::contract::bindings::connector::{PullPage, PushItem, PushOptions, Pushed, Removal};
use crate::contract::bindings::types::{ConnectorError, PulledRecord};
use crate::contract::manifest::Entity;
use crate::runtime::{CallError, Connector};

pub type PushResult =
    Result<Result<Vec<Result<Pushed, ConnectorError>>, ConnectorError>, CallError>;
pub type PullResult = Result<Result<PullPage, ConnectorError>, CallError>;
pub type FetchResult = Result<Result<Option<PulledRecord>, ConnectorError>, CallError>;
pub type RemoveResult =
    Result<Result<Vec<Result<Removal, ConnectorError>>, ConnectorError>, CallError>;

/// What a connector that has no `fetch` or `remove` answers.
fn lacks(export: &str) -> ConnectorError {
    ConnectorError::Unsupported(format!("this connector has no `{export}`"))
}

pub trait SyncConnector: Send + Sync {
    fn push(
        &self,
        context: &Arc<InstanceContext>,
        entity: Entity,
        records: &[PushItem],
        options: PushOptions,
    ) -> impl Future<Output = PushResult> + Send;

    fn pull(
        &self,
        context: &Arc<InstanceContext>,
        entity: Entity,
        since: Option<&str>,
        page_token: Option<&str>,
    ) -> impl Future<Output = PullResult> + Send;

    /// One record by remote id; none when the remote has no such record.
    fn fetch(
        &self,
        _context: &Arc<InstanceContext>,
        _entity: Entity,
        _remote_id: &str,
    ) -> impl Future<Output = FetchResult> + Send {
        async { Ok(Err(lacks("fetch"))) }
    }

    /// Deletes or deactivates remote records.
    fn remove(
        &self,
        _context: &Arc<InstanceContext>,
        _entity: Entity,
        _remote_ids: &[String],
        _options: PushOptions,
    ) -> impl Future<Output = RemoveResult> + Send {
        async { Ok(Err(lacks("remove"))) }
    }
}

impl SyncConnector for Connector {
    async fn push(
        &self,
        context: &Arc<InstanceContext>,
        entity: Entity,
        records: &[PushItem],
        options: PushOptions,
    ) -> PushResult {
        Connector::push(self, context, entity.into(), records, options).await
    }

    async fn pull(
        &self,
        context: &Arc<InstanceContext>,
        entity: Entity,
        since: Option<&str>,
        page_token: Option<&str>,
    ) -> PullResult {
        Connector::pull(self, context, entity.into(), since, page_token).await
    }

    async fn fetch(
        &self,
        context: &Arc<InstanceContext>,
        entity: Entity,
        remote_id: &str,
    ) -> FetchResult {
        Connector::fetch(self, context, entity.into(), remote_id).await
    }

    async fn remove(
        &self,
        context: &Arc<InstanceContext>,
        entity: Entity,
        remote_ids: &[String],
        options: PushOptions,
    ) -> RemoveResult {
        Connector::remove(self, context, entity.into(), remote_ids, options).await
    }
}
