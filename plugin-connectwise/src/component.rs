//! Exports the connector as a component: each export builds the imports-backed [`Imports`] host
//! and hands over to `connector`.

use crate::connector;
use crate::exports::{
    Choice, ConnectorManifest, Guest, PullPage, PushItem, PushOptions, Pushed, Removal,
    Subscription,
};
use crate::host::{Host, HttpError, Level, Request, Response};
use crate::types::{ConnectorError, Entity, PulledRecord};
use crate::wit::bss::integration::{http, log, settings};

/// The host's imports behind the connector's [`Host`] trait.
struct Imports;

impl Host for Imports {
    fn send(&self, request: &Request) -> Result<Response, HttpError> {
        http::send(request)
    }

    fn setting(&self, key: &str) -> Option<String> {
        settings::get(key)
    }

    fn lookup(&self, key: &str, bss_value: &str) -> Option<String> {
        settings::lookup(key, bss_value)
    }

    fn reverse_lookup(&self, key: &str, remote_value: &str) -> Option<String> {
        settings::reverse_lookup(key, remote_value)
    }

    fn lookup_remote_values(&self, key: &str) -> Vec<String> {
        settings::lookup_table(key)
            .into_iter()
            .map(|e| e.remote_value)
            .collect()
    }

    fn log(&self, level: Level, message: &str) {
        log::write(level, message)
    }
}

struct ConnectWise;

impl Guest for ConnectWise {
    fn manifest() -> ConnectorManifest {
        crate::manifest::manifest()
    }

    fn activate() -> Result<String, ConnectorError> {
        connector::activate(&Imports)
    }

    fn lookup_choices(key: String) -> Result<Vec<Choice>, ConnectorError> {
        connector::lookup_choices(&Imports, &key)
    }

    fn push(
        entity: Entity,
        records: Vec<PushItem>,
        options: PushOptions,
    ) -> Result<Vec<Result<Pushed, ConnectorError>>, ConnectorError> {
        connector::push(&Imports, entity, records, options)
    }

    fn pull(
        entity: Entity,
        since: Option<String>,
        page_token: Option<String>,
    ) -> Result<PullPage, ConnectorError> {
        connector::pull(&Imports, entity, since.as_deref(), page_token.as_deref())
    }

    fn fetch(entity: Entity, remote_id: String) -> Result<Option<PulledRecord>, ConnectorError> {
        connector::fetch(&Imports, entity, &remote_id)
    }

    fn subscribe(url: String, entities: Vec<Entity>) -> Result<Vec<Subscription>, ConnectorError> {
        connector::subscribe(&Imports, &url, &entities)
    }

    fn remove(
        entity: Entity,
        remote_ids: Vec<String>,
        options: PushOptions,
    ) -> Result<Vec<Result<Removal, ConnectorError>>, ConnectorError> {
        connector::remove(&Imports, entity, &remote_ids, options)
    }
}

crate::wit::export!(ConnectWise with_types_in crate::wit);
