//! Exports the connector as a component: each export builds the imports-backed [`Imports`] host
//! and hands over to `connector`.
//!
//! The component is built for `wasm32-unknown-unknown` and linked by `wasm-component-ld` (see
//! `host/build.rs`), so it imports only `bss:integration/*` and the one WASI function it uses, the
//! wall clock: no WASI adapter, no filesystem, environment, streams or random imports, and fewer
//! core instances for the host to make per call. Without WASI a panic cannot print to stderr, so
//! [`Imports::new`] sends panic messages through `log` at error level, where the host reports them
//! with the trap.

use crate::connector;
use crate::exports::{
    Choice, ConnectorManifest, Guest, PullPage, PushItem, PushOptions, Pushed, Removal,
    Subscription,
};
use crate::host::{Host, HttpError, Level, Request, Response};
use crate::types::{ConnectorError, Entity, PulledRecord};
use crate::wit::bss::integration::{http, log, settings};

/// `wasi:clocks/wall-clock`, the one WASI interface the connector imports (declared here, so the
/// build needs no WASI bindings crate).
mod clock {
    wit_bindgen::generate!({
        inline: r#"
            package bss:connectwise-clock;

            world clock {
                import wasi:clocks/wall-clock@0.2.6;
            }

            package wasi:clocks@0.2.6 {
                interface wall-clock {
                    record datetime {
                        seconds: u64,
                        nanoseconds: u32,
                    }
                    now: func() -> datetime;
                    resolution: func() -> datetime;
                }
            }
        "#,
        world: "clock",
        generate_all,
    });
}

/// The host's imports behind the connector's [`Host`] trait.
struct Imports;

impl Imports {
    /// The imports for one export call; the first sets the panic hook of this (fresh) instance.
    fn new() -> Imports {
        static REPORT_PANICS: std::sync::Once = std::sync::Once::new();
        REPORT_PANICS.call_once(|| {
            std::panic::set_hook(Box::new(|panic| {
                log::write(Level::Error, &panic.to_string());
            }));
        });
        Imports
    }
}

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

    fn unix_seconds(&self) -> i64 {
        clock::wasi::clocks::wall_clock::now().seconds as i64
    }
}

struct ConnectWise;

impl Guest for ConnectWise {
    fn manifest() -> ConnectorManifest {
        crate::manifest::manifest()
    }

    fn activate() -> Result<String, ConnectorError> {
        connector::activate(&Imports::new())
    }

    fn lookup_choices(key: String) -> Result<Vec<Choice>, ConnectorError> {
        connector::lookup_choices(&Imports::new(), &key)
    }

    fn push(
        entity: Entity,
        records: Vec<PushItem>,
        options: PushOptions,
    ) -> Result<Vec<Result<Pushed, ConnectorError>>, ConnectorError> {
        connector::push(&Imports::new(), entity, records, options)
    }

    fn pull(
        entity: Entity,
        since: Option<String>,
        page_token: Option<String>,
    ) -> Result<PullPage, ConnectorError> {
        connector::pull(
            &Imports::new(),
            entity,
            since.as_deref(),
            page_token.as_deref(),
        )
    }

    fn fetch(entity: Entity, remote_id: String) -> Result<Option<PulledRecord>, ConnectorError> {
        connector::fetch(&Imports::new(), entity, &remote_id)
    }

    fn subscribe(url: String, entities: Vec<Entity>) -> Result<Vec<Subscription>, ConnectorError> {
        connector::subscribe(&Imports::new(), &url, &entities)
    }

    fn remove(
        entity: Entity,
        remote_ids: Vec<String>,
        options: PushOptions,
    ) -> Result<Vec<Result<Removal, ConnectorError>>, ConnectorError> {
        connector::remove(&Imports::new(), entity, &remote_ids, options)
    }
}

crate::wit::export!(ConnectWise with_types_in crate::wit);
