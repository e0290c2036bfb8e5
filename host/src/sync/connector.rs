//! What the sync engine needs of a connector: push and pull. The wasm component implements it
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
use crate::contract::bindings::connector::{PullPage, PushItem, PushOptions, Pushed};
use crate::contract::bindings::types::ConnectorError;
use crate::contract::manifest::Entity;
use crate::runtime::{CallError, Connector};

pub type PushResult =
    Result<Result<Vec<Result<Pushed, ConnectorError>>, ConnectorError>, CallError>;
pub type PullResult = Result<Result<PullPage, ConnectorError>, CallError>;

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
}
