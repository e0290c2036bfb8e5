//! The component runtime: one wasmtime `Engine` per host, compiled components (cached on disk),
//! one `InstancePre` per component, and a store per instance, armed with each call's limits.
//! Instances are fresh, or kept from an earlier call of the same version and context (`kept`).
//!
//! Limits of every call:
//! - **deadline**: epoch interruption (a ticker advances the epoch every 10 ms; the guest yields to
//!   tokio at each tick and traps once the deadline has passed), plus a tokio timeout around the
//!   whole call so that a call blocked inside a host import (a request that never gets an answer)
//!   ends at the same deadline;
//! - **memory**: a resource limiter at the instance's `host.memory-limit`;
//! - **answers**: what the guest hands back is checked in its memory before the host copies it
//!   (`answer`): items per list, bytes per string, bytes in all; an import's arguments are capped
//!   by wasmtime's hostcall fuel at `host.max-answer-bytes`;
//! - **manifest()**: its own short deadline ([`MANIFEST_DEADLINE`]), so a component that loops
//!   there costs whoever loads it seconds, not the call deadline;
//! - **imports**: only what `capabilities` grants.
//!
//! Whatever a guest does, the call comes back as a value or as a [`CallError`]. A call that ended
//! normally may leave its instance for the next call of the same connector version under the same
//! instance context (`kept`: the instance's settings, lookups and options unchanged); any other
//! ends with its store dropped, so nothing it did survives into another call.

pub mod answer;
pub mod cache;
pub mod compiler;
pub mod error;
mod exports;
pub mod imports;
mod kept;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Instance, InstancePre, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
    UpdateDeadline,
};

use self::answer::{AnswerCap, AnswerLimits, Oversized, with_limits};
use self::cache::{CompileCache, content_hash};
pub use self::error::{CallError, CallFailure, LoadError};
use self::exports::Exports;
pub use self::kept::MAX_KEPT;
use self::kept::{KeptInstance, KeptInstances, Warm};
use crate::capabilities::CallState;
use crate::capabilities::context::InstanceContext;
use crate::capabilities::http::HttpClient;
use crate::capabilities::log::Labels;
use crate::capabilities::options::MAX_MEMORY_LIMIT;
use crate::capabilities::settings;
use crate::contract::bindings::Plugin;
use crate::contract::bindings::connector::{
    Choice, PullPage, PushItem, PushOptions, Pushed, Removal, Subscription,
};
use crate::contract::bindings::types::{ConnectorError, Entity, PulledRecord};
use crate::contract::manifest::{self, Manifest};
use crate::contract::{CONTRACT_VERSION, Contract};

/// How often the epoch advances; the granularity of deadlines and of guest yields.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The name under which [`Connector::instantiate`] runs: a call that runs no export.
const INSTANTIATE_ONLY: &str = "(instantiate)";

/// The deadline of a `manifest()` call: it must only describe the connector (it may call no
/// import), so a few seconds are plenty even for a debug build, and a component that loops or
/// sleeps there is refused quickly instead of holding every command that loads it.
pub const MANIFEST_DEADLINE: Duration = Duration::from_secs(5);

/// wasmtime's message when a guest hands an import more than the store's hostcall fuel allows.
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

/// Linear memory of a pooled slot kept mapped between calls (only pages a call dirtied are reset
/// and stay resident): 4 MiB covers what a call of our connectors touches; measured 2 MiB still
/// took faults, 8 and 16 MiB gained nothing.
const KEEP_RESIDENT_BYTES: usize = 4 << 20;
const KEEP_RESIDENT_TABLE_BYTES: usize = 64 << 10;
/// Our Rust connectors (program + WASI adapter) use 2 memories; instances and tables are capped
/// with room to spare. The caps stop one component from taking the pool's slots for itself.
const MAX_MEMORIES_PER_CALL: u32 = 2;
const MAX_CORE_INSTANCES_PER_CALL: u32 = 16;
const MAX_TABLES_PER_CALL: u32 = 16;
/// Idle slots kept warm (with their resident pages) for reuse.
const MAX_WARM_SLOTS: u32 = 16;

/// Whether pooled memory may be reset by copying back only the pages the kernel reports dirty and
/// present. Not with swap: a dirty page that was swapped out is not reported present, would not be
/// reset, and the next call in the slot (another instance's) would read it (wasmtime issue, PR
/// 14357). So only when the kernel has the scan and `/proc/swaps` lists no swap device at start;
/// turning swap on while the host runs is not supported.
fn dirty_page_reset_is_safe() -> bool {
    let no_swap = std::fs::read_to_string("/proc/swaps")
        .map(|swaps| swaps.lines().skip(1).all(|line| line.trim().is_empty()))
        .unwrap_or(false);
    no_swap && PoolingAllocationConfig::is_pagemap_scan_available()
}

/// How the runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled code is cached; `None` compiles every load.
    pub cache_dir: Option<PathBuf>,
    /// Pre-allocated instance slots (fast instantiation) instead of allocating per call.
    pub pooling: bool,
    /// Calls that may run at once when pooling (each holds one slot).
    pub max_concurrent_calls: u32,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            pooling: true,
            max_concurrent_calls: 128,
        }
    }
}

/// Advances the engine's epoch until dropped, and once a second drops the kept instances that
/// have been idle too long.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine, kept: Arc<KeptInstances>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let ticks_per_sweep = (Duration::from_secs(1).as_millis() / EPOCH_TICK.as_millis()) as u32;
        std::thread::Builder::new()
            .name("bss-epoch".into())
            .spawn(move || {
                let mut ticks = 0u32;
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                    ticks += 1;
                    if ticks == ticks_per_sweep {
                        ticks = 0;
                        kept.drop_idle();
                    }
                }
            })
            .expect("spawn the epoch ticker thread");
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct RuntimeInner {
    engine: Engine,
    config: RuntimeConfig,
    linker: Linker<CallState>,
    cache: Option<CompileCache>,
    compiles: AtomicU64,
    peak_guest_memory: AtomicU64,
    resets_dirty_pages_only: bool,
    http: HttpClient,
    kept: Arc<KeptInstances>,
    /// Numbers each linked component, so kept instances are never handed to another version.
    next_version_id: AtomicU64,
    _ticker: EpochTicker,
}

/// Loads and runs connector components. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

fn engine_config(config: &RuntimeConfig) -> Config {
    let mut wasm = Config::new();
    wasm.wasm_component_model(true);
    wasm.epoch_interruption(true);
    if std::env::var_os("BSS_HOST_PERFMAP").is_some() {
        // Names guest functions in `perf` profiles (/tmp/perf-<pid>.map).
        wasm.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if config.pooling {
        let slots = config.max_concurrent_calls.max(1);
        // Kept instances hold their slots between calls: each gets, on top, as many as one call
        // may hold at most, so live calls have the same pool with or without them.
        let kept = MAX_KEPT;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(slots + kept)
            .total_core_instances(slots * 8 + kept * MAX_CORE_INSTANCES_PER_CALL)
            .total_memories(slots * 2 + kept * MAX_MEMORIES_PER_CALL)
            .total_tables(slots * 8 + kept * MAX_TABLES_PER_CALL)
            .total_stacks(slots + kept)
            .max_memory_size(MAX_MEMORY_LIMIT as usize);
        // One call may not hold more than its share of the pool, whatever its component declares.
        pool.max_memories_per_component(MAX_MEMORIES_PER_CALL)
            .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_CALL)
            .max_tables_per_component(MAX_TABLES_PER_CALL)
            .max_unused_warm_slots(MAX_WARM_SLOTS);
        // Where the kernel can list a slot's dirty pages (Linux 6.7+), reset only those by copy
        // and keep them mapped: the next call then takes no page faults. Halves the cost of a
        // call (see BENCHMARKS.md). Without the scan, keeping memory resident would mean a memset
        // of the whole span per call, so the default (madvise) stays.
        if dirty_page_reset_is_safe() {
            pool.pagemap_scan(wasmtime::Enabled::Yes)
                .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
                .table_keep_resident(KEEP_RESIDENT_TABLE_BYTES);
        }
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    wasm
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Runtime> {
        let engine = Engine::new(&engine_config(&config))?;
        let mut linker = Linker::<CallState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        Plugin::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |state| state)?;
        crate::capabilities::log_import::link(&mut linker)?;
        let cache = match &config.cache_dir {
            Some(dir) => Some(CompileCache::new(dir, &engine)?),
            None => None,
        };
        let kept = Arc::new(KeptInstances::default());
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                _ticker: EpochTicker::start(engine.clone(), kept.clone()),
                engine,
                config: config.clone(),
                linker,
                cache,
                compiles: AtomicU64::new(0),
                peak_guest_memory: AtomicU64::new(0),
                resets_dirty_pages_only: config.pooling && dirty_page_reset_is_safe(),
                http: HttpClient::new()?,
                kept,
                next_version_id: AtomicU64::new(0),
            }),
        })
    }

    /// Prunes the compiled-code cache to the components in `keep` (see `CompileCache::prune`);
    /// nothing when this runtime has no cache.
    pub fn prune_cache(
        &self,
        keep: &std::collections::BTreeSet<String>,
    ) -> std::io::Result<cache::Pruned> {
        match &self.inner.cache {
            Some(cache) => cache.prune(keep),
            None => Ok(cache::Pruned::default()),
        }
    }

    /// The pooled HTTP client every call of this runtime sends through.
    pub fn http_client(&self) -> HttpClient {
        self.inner.http.clone()
    }

    /// How many components this runtime has compiled (cache hits do not count).
    pub fn compile_count(&self) -> u64 {
        self.inner.compiles.load(Ordering::Relaxed)
    }

    /// Whether pooled memory is reset by copying back only dirtied pages (kept resident), rather
    /// than by `madvise`: see `dirty_page_reset_is_safe`.
    pub fn resets_dirty_pages_only(&self) -> bool {
        self.inner.resets_dirty_pages_only
    }

    /// The most linear memory any one call's instance has held since the last time this was
    /// asked (bytes, over all of the instance's memories; a kept instance's over its life so
    /// far); resets it.
    pub fn take_peak_guest_memory(&self) -> u64 {
        self.inner.peak_guest_memory.swap(0, Ordering::Relaxed)
    }

    /// Instances kept now for later calls (see `kept`).
    pub fn kept_instances(&self) -> usize {
        self.inner.kept.len()
    }

    /// Guest memory held by idle pooled slots (bytes): what the calls that left them dirtied, reset
    /// by copy and kept mapped, up to the keep-resident cap per slot. After one call on an idle
    /// runtime this is that call's dirtied memory (benchmarks). `None` without pooling.
    pub fn idle_slots_resident_bytes(&self) -> Option<usize> {
        self.inner
            .engine
            .pooling_allocator_metrics()
            .map(|metrics| metrics.unused_memory_bytes_resident())
    }

    /// Loads a connector from a `.wasm` file.
    pub async fn load_file(&self, path: &Path) -> Result<Connector, LoadError> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|source| LoadError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        self.load(&bytes, &path.display().to_string()).await
    }

    /// Loads a connector from a component's bytes; `origin` names it in errors (a file name).
    /// Compiles (or loads the cached compilation), links, and calls `manifest()` to check it.
    pub async fn load(&self, bytes: &[u8], origin: &str) -> Result<Connector, LoadError> {
        self.load_with(bytes, origin, None).await
    }

    /// As [`Runtime::load`]; `known` is the manifest recorded for this content hash when it was
    /// first loaded. With it, `manifest()` is not called again: a component's manifest is read
    /// once, so it cannot answer differently later. Without it, `manifest()` is called twice and
    /// a component whose two answers differ is refused as non-deterministic.
    pub async fn load_with(
        &self,
        bytes: &[u8],
        origin: &str,
        known: Option<Manifest>,
    ) -> Result<Connector, LoadError> {
        let hash = content_hash(bytes);
        let component = self.compile(bytes, &hash, origin).await?;
        let engine = &self.inner.engine;
        let ty = component.component_type();
        let imports: Vec<String> = ty
            .imports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let exports: Vec<String> = ty
            .exports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let contract = check_contract(&imports, &exports, origin)?;
        let link_error = |e: wasmtime::Error| LoadError::Link {
            origin: origin.to_string(),
            reason: format!("{e:#}"),
        };
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(link_error)?;
        let exports = Exports::new(&pre, contract).map_err(|reason| LoadError::Exports {
            origin: origin.to_string(),
            reason,
        })?;
        let linked = Linked {
            runtime: self.clone(),
            version_id: self.inner.next_version_id.fetch_add(1, Ordering::Relaxed),
            pre,
            exports,
            hash,
            contract,
        };
        let manifest = match known {
            Some(manifest) => manifest,
            None => {
                let first = read_manifest(&linked, origin).await?;
                let second = read_manifest(&linked, origin).await?;
                if first != second {
                    return Err(LoadError::Manifest {
                        origin: origin.to_string(),
                        source: manifest::ManifestError {
                            problems: vec![
                                "manifest() answered differently from one call to the next; a manifest must be the same every time (it decides which settings are secrets)".to_string(),
                            ],
                        },
                    });
                }
                first
            }
        };
        let mut problems = manifest
            .validate()
            .err()
            .map(|e| e.problems)
            .unwrap_or_default();
        problems.extend(settings::default_problems(&manifest));
        if !problems.is_empty() {
            return Err(LoadError::Manifest {
                origin: origin.to_string(),
                source: manifest::ManifestError { problems },
            });
        }
        Ok(Connector {
            inner: Arc::new(ConnectorInner { linked, manifest }),
        })
    }

    async fn compile(
        &self,
        bytes: &[u8],
        hash: &str,
        origin: &str,
    ) -> Result<Component, LoadError> {
        let inner = &self.inner;
        if let Some(component) = inner
            .cache
            .as_ref()
            .and_then(|c| c.load(&inner.engine, hash))
        {
            return Ok(component);
        }
        let artifact = inner.cache.as_ref().map(|cache| cache.path(hash));
        let component = compiler::compile(
            &inner.engine,
            &inner.config,
            bytes,
            origin,
            artifact.clone(),
        )
        .await
        .map_err(|failure| match failure {
            compiler::CompileFailure::Invalid(reason) => LoadError::NotAComponent {
                origin: origin.to_string(),
                reason,
            },
            compiler::CompileFailure::Stopped(reason) => LoadError::CompileStopped {
                origin: origin.to_string(),
                reason,
            },
            compiler::CompileFailure::OverMemoryCap { cap_mib, said } => {
                LoadError::CompileOverMemoryCap {
                    origin: origin.to_string(),
                    cap_mib,
                    said,
                }
            }
        })?;
        inner.compiles.fetch_add(1, Ordering::Relaxed);
        // A child compiler wrote the cache entry itself.
        if let Some(cache) = &inner.cache
            && !artifact.as_ref().is_some_and(|path| path.exists())
            && let Err(error) = cache.store(hash, &component)
        {
            tracing::warn!(origin, "could not write the compiled-code cache: {error}");
        }
        Ok(component)
    }
}

/// A component compiled, linked and type-checked against the contract minor it speaks: it can
/// be called, but nothing is known of it yet beyond its types (loading reads its manifest next).
struct Linked {
    runtime: Runtime,
    /// This linking's number, which its kept instances carry.
    version_id: u64,
    pre: InstancePre<CallState>,
    exports: Exports,
    hash: String,
    contract: Contract,
}

impl Drop for Linked {
    fn drop(&mut self) {
        self.runtime.inner.kept.forget(self.version_id);
    }
}

struct ConnectorInner {
    linked: Linked,
    manifest: Manifest,
}

/// A loaded, validated connector component. Cheap to clone; calls run concurrently.
#[derive(Clone)]
pub struct Connector {
    inner: Arc<ConnectorInner>,
}

type CallFuture<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

impl Connector {
    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    /// SHA-256 of the component's bytes.
    pub fn content_hash(&self) -> &str {
        &self.inner.linked.hash
    }

    /// The contract version the component was built against.
    pub fn contract(&self) -> Contract {
        self.inner.linked.contract
    }

    /// Instantiates the component in a fresh store under the instance's limits and drops it,
    /// calling no export and keeping nothing: what a call in a fresh instance costs before guest
    /// code runs (benchmarks).
    pub async fn instantiate(&self, context: &Arc<InstanceContext>) -> Result<(), CallError> {
        self.call(context, INSTANTIATE_ONLY, false, |_, _, _| {
            Box::pin(async { Ok(()) })
        })
        .await
    }

    /// Verifies the instance's settings against the remote.
    pub async fn activate(
        &self,
        context: &Arc<InstanceContext>,
    ) -> Result<Result<String, ConnectorError>, CallError> {
        self.call(context, "activate", false, |exports, instance, store| {
            Box::pin(exports.activate(instance, store))
        })
        .await
    }

    /// The remote values an admin can choose for a lookup or server variable.
    pub async fn lookup_choices(
        &self,
        context: &Arc<InstanceContext>,
        key: &str,
    ) -> Result<Result<Vec<Choice>, ConnectorError>, CallError> {
        let key = key.to_string();
        self.call(
            context,
            "lookup-choices",
            false,
            move |exports, instance, store| Box::pin(exports.lookup_choices(instance, store, key)),
        )
        .await
    }

    /// Creates or updates records remotely; a dry run sends no write.
    pub async fn push(
        &self,
        context: &Arc<InstanceContext>,
        entity: Entity,
        records: &[PushItem],
        options: PushOptions,
    ) -> Result<Result<Vec<Result<Pushed, ConnectorError>>, ConnectorError>, CallError> {
        let records = records.to_vec();
        self.call(
            context,
            "push",
            options.dry_run,
            move |exports, instance, store| {
                Box::pin(exports.push(instance, store, entity, records, options))
            },
        )
        .await
    }

    /// Reads one page of records changed since `since`.
    pub async fn pull(
        &self,
        context: &Arc<InstanceContext>,
        entity: Entity,
        since: Option<&str>,
        page_token: Option<&str>,
    ) -> Result<Result<PullPage, ConnectorError>, CallError> {
        let since = since.map(str::to_string);
        let page_token = page_token.map(str::to_string);
        self.call(context, "pull", false, move |exports, instance, store| {
            Box::pin(exports.pull(instance, store, entity, since, page_token))
        })
        .await
    }

    /// Reads one record by remote id (contract 1.3); none when the remote has no such record.
    pub async fn fetch(
        &self,
        context: &Arc<InstanceContext>,
        entity: Entity,
        remote_id: &str,
    ) -> Result<Result<Option<PulledRecord>, ConnectorError>, CallError> {
        let remote_id = remote_id.to_string();
        self.call(context, "fetch", false, move |exports, instance, store| {
            Box::pin(exports.fetch(instance, store, entity, remote_id))
        })
        .await
    }

    /// Makes the remote's callbacks to `url` exactly those for `entities` (contract 1.3).
    pub async fn subscribe(
        &self,
        context: &Arc<InstanceContext>,
        url: &str,
        entities: &[Entity],
    ) -> Result<Result<Vec<Subscription>, ConnectorError>, CallError> {
        let url = url.to_string();
        let entities = entities.to_vec();
        self.call(
            context,
            "subscribe",
            false,
            move |exports, instance, store| {
                Box::pin(exports.subscribe(instance, store, url, entities))
            },
        )
        .await
    }

    /// Deletes or deactivates remote records (contract 1.3); a dry run sends no write.
    pub async fn remove(
        &self,
        context: &Arc<InstanceContext>,
        entity: Entity,
        remote_ids: &[String],
        options: PushOptions,
    ) -> Result<Result<Vec<Result<Removal, ConnectorError>>, ConnectorError>, CallError> {
        let remote_ids = remote_ids.to_vec();
        self.call(
            context,
            "remove",
            options.dry_run,
            move |exports, instance, store| {
                Box::pin(exports.remove(instance, store, entity, remote_ids, options))
            },
        )
        .await
    }

    /// Runs one export under the instance's limits (in a kept instance when there is one).
    async fn call<R, F>(
        &self,
        context: &Arc<InstanceContext>,
        name: &'static str,
        dry_run: bool,
        export: F,
    ) -> Result<R, CallError>
    where
        F: for<'a> FnOnce(&'a Exports, &'a Instance, &'a mut Store<CallState>) -> CallFuture<'a, R>,
    {
        let manifest = &self.inner.manifest;
        let labels = Labels {
            connector: manifest.name.clone(),
            version: manifest.version.clone(),
            instance: context.instance().to_string(),
        };
        self.inner
            .linked
            .call(labels, context, name, dry_run, export)
            .await
    }
}

impl Linked {
    /// Runs one export under the instance's limits, in an instance kept from an earlier call of
    /// this version under the same context when there is one (see `kept`), else in a fresh one;
    /// `labels` name the call in logs and errors.
    async fn call<R, F>(
        &self,
        labels: Labels,
        context: &Arc<InstanceContext>,
        name: &'static str,
        dry_run: bool,
        export: F,
    ) -> Result<R, CallError>
    where
        F: for<'a> FnOnce(&'a Exports, &'a Instance, &'a mut Store<CallState>) -> CallFuture<'a, R>,
    {
        let runtime = &self.runtime.inner;
        let labels = Arc::new(labels);
        let fail = |failure: CallFailure| CallError {
            connector: labels.connector.clone(),
            version: labels.version.clone(),
            instance: labels.instance.clone(),
            failure,
        };
        let options = context.options();
        let deadline = if name == "manifest" {
            MANIFEST_DEADLINE.min(options.call_deadline)
        } else {
            options.call_deadline
        };
        let deadline_failure = |deadline| match name {
            "manifest" => CallFailure::ManifestDeadline(deadline),
            _ => CallFailure::DeadlineExceeded(deadline),
        };
        let limits = AnswerLimits::of(options);
        let may_reuse = options.keep_instance && name != "manifest" && name != INSTANTIATE_ONLY;
        // A dry run may run in a kept instance but leaves none: what it was handed must not
        // reach a later call that may write.
        let may_keep = may_reuse && !dry_run;
        let kept = if may_reuse {
            runtime.kept.take(self.version_id, context.fingerprint())
        } else {
            None
        };
        let reused = kept.is_some();
        let (mut store, warm) = match kept {
            Some(KeptInstance { mut store, warm }) => {
                store
                    .data_mut()
                    .begin_call(context.clone(), labels.clone(), dry_run);
                (store, Some(warm))
            }
            None => {
                let state = CallState::new(
                    context.clone(),
                    labels.clone(),
                    runtime.http.clone(),
                    dry_run,
                );
                let mut store = Store::new(&runtime.engine, state);
                store.limiter(|state| &mut state.memory);
                (store, None)
            }
        };
        // One import call's arguments (a log line, a request) may hold no more than one answer.
        store.set_hostcall_fuel(usize::try_from(limits.max_answer_bytes).unwrap_or(usize::MAX));
        let started = Instant::now();
        let ends_at = started + deadline;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= ends_at {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });

        let outcome = tokio::time::timeout(deadline, async {
            let warm = match warm {
                Some(warm) => warm,
                None => Warm {
                    instance: self
                        .pre
                        .instantiate_async(&mut store)
                        .await
                        .map_err(CallOutcome::Instantiate)?,
                    calls: 0,
                    instantiated_memory: store.data().memory.granted(),
                },
            };
            let value = with_limits(limits, export(&self.exports, &warm.instance, &mut store))
                .await
                .map_err(CallOutcome::Trap)?;
            Ok((value, warm))
        })
        .await;
        let guest_said = store.data().finish_log();
        let refused_memory = store.data().memory.refused();
        let limit = store.data().memory.limit();
        let guest_memory = store.data().memory.granted();
        runtime
            .peak_guest_memory
            .fetch_max(guest_memory, Ordering::Relaxed);
        // One line per call for operators (off unless `bss_host::calls=debug` is asked for).
        tracing::debug!(
            target: "bss_host::calls",
            connector = %labels.connector,
            version = %labels.version,
            instance = %labels.instance,
            export = name,
            micros = started.elapsed().as_micros() as u64,
            guest_memory,
            requests = store.data().requests_sent(),
            kept_instance = reused,
            ok = matches!(outcome, Ok(Ok(_))),
            "connector call"
        );
        // A call that ended normally may leave its instance for the next; any other's instance
        // is dropped with its store when this returns, whatever state it was left in.
        let outcome = outcome.map(|ended| {
            ended.map(|(value, warm)| {
                if may_keep && refused_memory.is_none() {
                    let warm = Warm {
                        calls: warm.calls + 1,
                        ..warm
                    };
                    runtime.kept.keep(
                        self.version_id,
                        *context.fingerprint(),
                        KeptInstance { store, warm },
                        guest_memory,
                        limit,
                    );
                }
                value
            })
        });
        let outcome_label = match &outcome {
            Ok(Ok(_)) => "ok",
            Err(_) => "deadline",
            Ok(Err(CallOutcome::Instantiate(_))) => "instantiate-failed",
            Ok(Err(CallOutcome::Trap(_))) => "trap",
        };
        crate::metrics::connector_call(
            &labels.connector,
            &labels.instance,
            name,
            outcome_label,
            started.elapsed().as_secs_f64(),
        );
        crate::metrics::connector_call_instance(&labels.connector, &labels.instance, reused);
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Err(_elapsed) => Err(fail(deadline_failure(deadline))),
            Ok(Err(CallOutcome::Instantiate(error))) => match refused_memory {
                Some(requested) => Err(fail(CallFailure::MemoryCap { limit, requested })),
                None => Err(fail(CallFailure::Instantiate(format!("{error:#}")))),
            },
            Ok(Err(CallOutcome::Trap(error))) => {
                if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                    return Err(fail(deadline_failure(deadline)));
                }
                if let Some(requested) = refused_memory {
                    return Err(fail(CallFailure::MemoryCap { limit, requested }));
                }
                if let Some(oversized) = error.downcast_ref::<Oversized>() {
                    return Err(fail(CallFailure::AnswerTooLarge(oversized.clone())));
                }
                if format!("{error:#}").contains(HOSTCALL_FUEL_EXHAUSTED) {
                    return Err(fail(CallFailure::AnswerTooLarge(Oversized {
                        cap: AnswerCap::AnswerBytes,
                        at: "the arguments of one import call".to_string(),
                        found: None,
                        limit: limits.max_answer_bytes,
                    })));
                }
                let trap = match error.downcast_ref::<Trap>() {
                    Some(trap) => trap.to_string(),
                    None => format!("{error:#}"),
                };
                Err(fail(CallFailure::Trap { trap, guest_said }))
            }
        }
    }
}

/// Finds which served contract minor a component speaks, from the version on its
/// `bss:integration/connector` export, and refuses (before linking turns it into an obscure error)
/// a component built against another major or a newer minor, or one that is not a connector.
pub fn check_contract(
    imports: &[String],
    exports: &[String],
    origin: &str,
) -> Result<Contract, LoadError> {
    let served = format!("{} to {}", Contract::SERVED[0].version(), CONTRACT_VERSION);
    let refuse = |version: &str, fix: &str| LoadError::ContractVersion {
        origin: origin.to_string(),
        found: format!("bss:integration@{version}"),
        served: served.clone(),
        fix: fix.to_string(),
    };
    let mut exported: Option<Contract> = None;
    for name in imports.iter().chain(exports) {
        let Some((interface, version)) = name
            .strip_prefix("bss:integration/")
            .and_then(|rest| rest.split_once('@'))
        else {
            continue;
        };
        let Ok(parsed) = semver::Version::parse(version) else {
            return Err(refuse(
                version,
                "its version is not semantic; rebuild it against a released 1.x contract",
            ));
        };
        if parsed.major != 1 {
            return Err(refuse(version, "rebuild it against a 1.x contract"));
        }
        if !parsed.pre.is_empty() {
            return Err(refuse(
                version,
                "that is a pre-release; rebuild it against a released 1.x contract",
            ));
        }
        // Every 1.x below the newest is served, so an unknown minor is a newer one.
        let Some(contract) = Contract::of_minor(parsed.minor) else {
            return Err(refuse(
                version,
                &format!("upgrade the host, or rebuild the connector against {CONTRACT_VERSION}"),
            ));
        };
        if interface == "connector" && exports.contains(name) {
            // A component exporting several minors is served through the newest.
            exported = exported.max(Some(contract));
        }
    }
    exported.ok_or_else(|| LoadError::NotAConnector {
        origin: origin.to_string(),
        exports: exports.join(", "),
    })
}

enum CallOutcome {
    Instantiate(wasmtime::Error),
    Trap(wasmtime::Error),
}

/// Calls a linked component's `manifest()`; until it answers, the file names the connector.
async fn read_manifest(linked: &Linked, origin: &str) -> Result<Manifest, LoadError> {
    let context = Arc::new(InstanceContext::empty("(none)"));
    let labels = Labels {
        connector: origin.to_string(),
        version: "(loading)".to_string(),
        instance: context.instance().to_string(),
    };
    Ok(linked
        .call(
            labels,
            &context,
            "manifest",
            false,
            |exports, instance, store| Box::pin(exports.manifest(instance, store)),
        )
        .await
        .map_err(|source| LoadError::ManifestCall {
            origin: origin.to_string(),
            source: Box::new(source),
        })?
        .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn contract_versions_are_checked_before_linking() {
        let exports = names(&["bss:integration/connector@1.0.0"]);
        let contract = check_contract(
            &names(&["bss:integration/http@1.0.0", "wasi:cli/stdout@0.2.6"]),
            &exports,
            "ok.wasm",
        )
        .unwrap();
        assert_eq!(contract, Contract::V1_0);
        let contract = check_contract(
            &names(&["bss:integration/log@1.1.0"]),
            &names(&["bss:integration/connector@1.1.0"]),
            "new.wasm",
        )
        .unwrap();
        assert_eq!(contract, Contract::V1_1);
        let err = check_contract(
            &[],
            &names(&["bss:integration/connector@1.5.0"]),
            "newer.wasm",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "newer.wasm is built against bss:integration@1.5.0, but this host serves bss:integration@1.0.0 to 1.4.0; upgrade the host, or rebuild the connector against 1.4.0"
        );
        let err = check_contract(
            &names(&["bss:integration/http@2.0.0"]),
            &names(&["bss:integration/connector@2.0.0"]),
            "v2.wasm",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "v2.wasm is built against bss:integration@2.0.0, but this host serves bss:integration@1.0.0 to 1.4.0; rebuild it against a 1.x contract"
        );
        let err = check_contract(&[], &names(&["wasi:cli/run@0.2.0"]), "app.wasm").unwrap_err();
        assert!(err.to_string().contains("not a connector"), "{err}");
        let err = check_contract(
            &[],
            &names(&["bss:integration/connector@1.1.0-rc.1"]),
            "rc.wasm",
        )
        .unwrap_err();
        assert!(err.to_string().contains("pre-release"), "{err}");
        let both = names(&[
            "bss:integration/connector@1.0.0",
            "bss:integration/connector@1.1.0",
        ]);
        assert_eq!(
            check_contract(&[], &both, "both.wasm").unwrap(),
            Contract::V1_1
        );
    }

    /// The export types are checked against the minor a component is bound as: a 1.0 component
    /// bound as 1.1 is refused (its manifest lacks 1.1's field), so no call can run unchecked.
    #[tokio::test]
    async fn exports_of_the_wrong_minor_are_refused_at_load() {
        let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
        let legacy = runtime
            .load_file(Path::new(env!("BSS_FIXTURE_LEGACY_WASM")))
            .await
            .unwrap();
        assert_eq!(legacy.contract(), Contract::V1_0);
        let pre = &legacy.inner.linked.pre;
        assert!(Exports::new(pre, Contract::V1_0).is_ok());
        let Err(refused) = Exports::new(pre, Contract::V1_1) else {
            panic!("a 1.0 component passed the 1.1 type check");
        };
        assert!(
            refused.contains("`manifest` does not have the contract's type"),
            "{refused}"
        );
    }
}
