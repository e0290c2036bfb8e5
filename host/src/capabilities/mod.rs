//! What a guest may import, and nothing more: outbound HTTP under its instance's policy, its own
//! instance's non-secret settings and lookups, and logging. WASI is linked because every wasip2
//! guest imports it, but with no files, no environment, no arguments, no sockets and no stdin;
//! stdout and stderr go to the log.
//!
//! [`CallState`] is the data of one instance's store: built from the instance's
//! [`InstanceContext`] when the component is instantiated, re-armed by [`CallState::begin_call`]
//! for each further call when the runtime keeps the instance (a fresh log, request budget and
//! dry-run flag per call), dropped with the instance.

pub mod address;
pub mod allowed_hosts;
pub mod context;
pub mod http;
pub mod limits;
pub mod log;
pub mod log_import;
pub mod options;
pub mod settings;

use std::sync::{Arc, Mutex};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use self::context::InstanceContext;
use self::http::{HttpCall, HttpClient};
use self::log::{GuestOutput, Labels, Level, LogSink, LogSource};
use crate::capabilities::limits::MemoryGuard;
use crate::contract::bindings::{
    http as wit_http, log as wit_log, settings as wit_settings, types as wit_types,
};

/// The data of one instance's store, armed for its current call.
pub struct CallState {
    /// Made on the first WASI call: a guest built without the WASI adapter may never make one,
    /// and making it costs (it seeds random generators).
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    context: Arc<InstanceContext>,
    http: HttpCall,
    log: Arc<Mutex<LogSink>>,
    pub(crate) memory: MemoryGuard,
}

impl CallState {
    pub fn new(
        context: Arc<InstanceContext>,
        labels: Arc<Labels>,
        client: HttpClient,
        dry_run: bool,
    ) -> Self {
        let log = Arc::new(Mutex::new(LogSink::of_call(labels, &context)));
        CallState {
            wasi: None,
            table: ResourceTable::new(),
            http: HttpCall::with_log(client, context.clone(), log.clone(), dry_run),
            memory: MemoryGuard::new(context.options().memory_limit),
            context,
            log,
        }
    }

    /// Arms a kept instance's state for its next call: `context` grants the same as the one the
    /// instance was made under (same fingerprint), `labels` name the call, and the log, request
    /// budget, dry-run flag and memory refusals start over. WASI's context and the resource table
    /// stay: the guest's streams live there.
    pub fn begin_call(
        &mut self,
        context: Arc<InstanceContext>,
        labels: Arc<Labels>,
        dry_run: bool,
    ) {
        debug_assert_eq!(context.fingerprint(), self.context.fingerprint());
        // Replaced in place: stdout, stderr and the HTTP capability hold this same sink.
        *self.log.lock().unwrap_or_else(|p| p.into_inner()) = LogSink::of_call(labels, &context);
        self.http.begin_call(context.clone(), dry_run);
        self.memory.begin_call();
        self.context = context;
    }

    pub fn requests_sent(&self) -> u32 {
        self.http.sent()
    }

    /// Ends the call's log (flushes partial lines, reports suppressed volume) and returns what the
    /// guest said last (see [`LogSink::last_words`]).
    pub fn finish_log(&self) -> String {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.finish();
        log.last_words()
    }
}

/// WASI with nothing in it: no files, environment, arguments, sockets or stdin; stdout and
/// stderr go to the call's log.
fn empty_wasi(log: &Arc<Mutex<LogSink>>) -> WasiCtx {
    WasiCtxBuilder::new()
        .stdout(GuestOutput::new(log.clone(), LogSource::Stdout))
        .stderr(GuestOutput::new(log.clone(), LogSource::Stderr))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }))
        .build()
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let log = &self.log;
        WasiCtxView {
            ctx: self.wasi.get_or_insert_with(|| empty_wasi(log)),
            table: &mut self.table,
        }
    }
}

impl wit_types::Host for CallState {}

impl wit_http::Host for CallState {
    async fn send(
        &mut self,
        request: wit_http::Request,
    ) -> Result<wit_http::Response, wit_http::HttpError> {
        self.http.send(request).await
    }
}

impl wit_settings::Host for CallState {
    async fn get(&mut self, key: String) -> Option<String> {
        self.context.setting(&key).map(str::to_string)
    }

    async fn all(&mut self) -> Vec<(String, String)> {
        self.context
            .visible_settings()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    async fn lookup(&mut self, key: String, bss_value: String) -> Option<String> {
        self.context.lookup(&key, &bss_value).map(str::to_string)
    }

    async fn reverse_lookup(&mut self, key: String, remote_value: String) -> Option<String> {
        self.context
            .reverse_lookup(&key, &remote_value)
            .map(str::to_string)
    }

    async fn lookup_table(&mut self, key: String) -> Vec<wit_settings::LookupEntry> {
        self.context
            .lookup_table(&key)
            .iter()
            .map(|e| wit_settings::LookupEntry {
                bss_value: e.bss_value.clone(),
                remote_value: e.remote_value.clone(),
                pull_default: e.pull_default,
            })
            .collect()
    }
}

fn host_level(level: wit_log::Level) -> Level {
    match level {
        wit_log::Level::Trace => Level::Trace,
        wit_log::Level::Debug => Level::Debug,
        wit_log::Level::Info => Level::Info,
        wit_log::Level::Warn => Level::Warn,
        wit_log::Level::Error => Level::Error,
    }
}

impl wit_log::Host for CallState {
    /// Not reached from guests: the runtime links [`log_import`]'s `write`, which lifts the line
    /// lazily, over this one. Kept because the generated trait requires it.
    async fn write(&mut self, level: wit_log::Level, message: String) {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).line(
            host_level(level),
            LogSource::Log,
            &message,
        );
    }

    async fn enabled(&mut self, level: wit_log::Level) -> bool {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .enabled(host_level(level))
    }
}
