//! The ConnectWise connector's core compiled natively, as a [`SyncConnector`]: the baseline the
//! sandboxed component is measured against, driven by the same engine and the same HTTP client
//! (the instance's allow-list, address guard, credentials and budget all apply). It is trusted
//! code: no deadline or memory cap. Records cross by their shared WIT shape (both sides' generated
//! types serialise alike), and the core's blocking calls run on a blocking thread.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::connector::{PullResult, PushResult, SyncConnector};
use crate::capabilities::context::InstanceContext;
use crate::capabilities::http::{HttpCall, HttpClient};
use crate::capabilities::log::Labels;
use crate::contract::bindings::connector::{PushItem, PushOptions};
use crate::contract::bindings::http as wit_http;
use crate::contract::bindings::types::{self as wit, ConnectorError};
use crate::contract::manifest::Entity;
use plugin_connectwise::host as native;

/// Moves a value between the two generated type families of the same WIT type.
fn cross<T: Serialize, U: DeserializeOwned>(value: &T) -> Result<U, ConnectorError> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .map_err(|e| {
            ConnectorError::Internal(format!(
                "a value did not cross to the native connector: {e}"
            ))
        })
}

/// The host's capabilities behind the native core's [`native::Host`] trait.
struct NativeHost {
    http: Mutex<HttpCall>,
    context: Arc<InstanceContext>,
    runtime: tokio::runtime::Handle,
}

impl native::Host for NativeHost {
    fn send(&self, request: &native::Request) -> Result<native::Response, native::HttpError> {
        let request: wit_http::Request =
            cross(request).map_err(|e| native::HttpError::InvalidRequest(format!("{e:?}")))?;
        let mut http = self.http.lock().unwrap_or_else(|p| p.into_inner());
        let result = self.runtime.block_on(http.send(request));
        match result {
            Ok(response) => {
                cross(&response).map_err(|e| native::HttpError::Transport(format!("{e:?}")))
            }
            Err(error) => {
                Err(cross(&error)
                    .unwrap_or_else(|e| native::HttpError::Transport(format!("{e:?}"))))
            }
        }
    }

    fn setting(&self, key: &str) -> Option<String> {
        self.context.setting(key).map(str::to_string)
    }

    fn lookup(&self, key: &str, bss_value: &str) -> Option<String> {
        self.context.lookup(key, bss_value).map(str::to_string)
    }

    fn reverse_lookup(&self, key: &str, remote_value: &str) -> Option<String> {
        self.context
            .reverse_lookup(key, remote_value)
            .map(str::to_string)
    }

    fn lookup_remote_values(&self, key: &str) -> Vec<String> {
        self.context
            .lookup_table(key)
            .iter()
            .map(|e| e.remote_value.clone())
            .collect()
    }

    fn log(&self, _level: native::Level, message: &str) {
        tracing::debug!(
            connector = "connectwise (native)",
            instance = self.context.instance(),
            "{message}"
        );
    }
}

/// The ConnectWise core, natively, on the host's HTTP client.
#[derive(Clone)]
pub struct NativeConnectWise {
    client: HttpClient,
}

impl NativeConnectWise {
    pub fn new(client: HttpClient) -> Self {
        NativeConnectWise { client }
    }

    fn host(&self, context: &Arc<InstanceContext>, dry_run: bool) -> NativeHost {
        let labels = Arc::new(Labels {
            connector: plugin_connectwise::manifest::NAME.to_string(),
            version: format!("{} (native)", plugin_connectwise::manifest::VERSION),
            instance: context.instance().to_string(),
        });
        NativeHost {
            http: Mutex::new(HttpCall::new(
                self.client.clone(),
                context.clone(),
                labels,
                dry_run,
            )),
            context: context.clone(),
            runtime: tokio::runtime::Handle::current(),
        }
    }
}

impl SyncConnector for NativeConnectWise {
    async fn push(
        &self,
        context: &Arc<InstanceContext>,
        entity: Entity,
        records: &[PushItem],
        options: PushOptions,
    ) -> PushResult {
        let host = self.host(context, options.dry_run);
        let converted: Result<
            (
                plugin_connectwise::types::Entity,
                Vec<plugin_connectwise::exports::PushItem>,
                plugin_connectwise::exports::PushOptions,
            ),
            ConnectorError,
        > = cross(&wit::Entity::from(entity))
            .and_then(|e| Ok((e, cross(&records)?, cross(&options)?)));
        let (entity, records, options) = match converted {
            Ok(all) => all,
            Err(error) => return Ok(Err(error)),
        };
        let result = tokio::task::spawn_blocking(move || {
            plugin_connectwise::connector::push(&host, entity, records, options)
        })
        .await
        .map_err(|e| ConnectorError::Internal(format!("the native connector panicked: {e}")));
        Ok(result.and_then(|r| cross(&r)).and_then(|r| r))
    }

    async fn pull(
        &self,
        context: &Arc<InstanceContext>,
        entity: Entity,
        since: Option<&str>,
        page_token: Option<&str>,
    ) -> PullResult {
        let host = self.host(context, false);
        let entity: plugin_connectwise::types::Entity = match cross(&wit::Entity::from(entity)) {
            Ok(e) => e,
            Err(error) => return Ok(Err(error)),
        };
        let (since, token) = (since.map(str::to_string), page_token.map(str::to_string));
        let result = tokio::task::spawn_blocking(move || {
            plugin_connectwise::connector::pull(&host, entity, since.as_deref(), token.as_deref())
        })
        .await
        .map_err(|e| ConnectorError::Internal(format!("the native connector panicked: {e}")));
        Ok(result.and_then(|r| cross(&r)).and_then(|r| r))
    }
}
