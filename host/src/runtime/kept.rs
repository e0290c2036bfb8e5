//! Instances kept between calls: which may be reused, for how long, and how many.
//!
//! Instantiating a large component costs far more than calling it: a componentize-py connector
//! takes about 0.5 ms to instantiate and as much again in its first call's page faults and
//! interpreter warm-up, against 4 µs for the same call in a warm instance (BENCHMARKS.md). So
//! after a call that ended normally the runtime may keep its instance for a later call of the
//! **same connector version under the same instance context** (same fingerprint: the same
//! settings, secrets, lookups and options — see `InstanceContext::fingerprint`), never another's.
//! What the guest kept in its globals is then its own instance's, under the grants it had: nothing
//! crosses between instances, versions or settings.
//!
//! | an instance is dropped, not kept, when | because |
//! |---|---|
//! | its call trapped, hit its deadline, was refused memory or answered oversized | its state is whatever the interruption left |
//! | its call was a dry run | what a dry run was handed must not reach a later call that may write |
//! | its instance sets `host.keep-instance=false` | the admin asked for a fresh instance per call |
//! | it has served [`MAX_CALLS_PER_INSTANCE`] calls | a slow leak or fragmentation does not live forever |
//! | it holds more than [`MAX_KEPT_GUEST_MEMORY`] of linear memory, or more than half its `host.memory-limit`, or has grown by more than a quarter of that limit since it was instantiated | a kept instance is not a way to hold memory, and the next call must have nearly the room a fresh instance would (wasm memory never shrinks; the cap counts what the instance holds) |
//! | it has been idle [`MAX_IDLE`] (checked at every call and every second) | settings that are no longer used let go of their instances |
//! | [`MAX_KEPT`] instances or [`MAX_KEPT_TOTAL_MEMORY`] are kept already | the oldest goes first |
//! | its connector version is dropped (a swap, an unload) | its code is gone |
//!
//! The manifest call never keeps its instance (it is read twice to check it is deterministic).
//! The pooling allocator reserves slots for kept instances on top of those for live calls, so a
//! call never waits for or fails on a slot a kept instance holds.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use wasmtime::Store;
use wasmtime::component::Instance;

use crate::capabilities::CallState;

/// Instances kept at most, over all versions and contexts.
pub const MAX_KEPT: u32 = 16;
/// Calls one instance serves before it is dropped.
pub const MAX_CALLS_PER_INSTANCE: u32 = 1_000;
/// Linear memory above which an instance is not kept.
pub const MAX_KEPT_GUEST_MEMORY: u64 = 64 << 20;
/// Linear memory of all kept instances together.
pub const MAX_KEPT_TOTAL_MEMORY: u64 = 256 << 20;
/// How long an instance may wait for its next call.
pub const MAX_IDLE: Duration = Duration::from_secs(60);

/// An instantiated component and its store, between two calls.
pub struct KeptInstance {
    pub store: Store<CallState>,
    pub warm: Warm,
}

/// What is known of an instance besides its store: kept with it, carried through a call.
pub struct Warm {
    pub instance: Instance,
    /// Calls it has served.
    pub calls: u32,
    /// The linear memory it held once instantiated, before any call.
    pub instantiated_memory: u64,
}

struct Entry {
    version: u64,
    fingerprint: [u8; 32],
    guest_memory: u64,
    idle_since: Instant,
    kept: KeptInstance,
}

/// The runtime's kept instances, oldest first.
#[derive(Default)]
pub struct KeptInstances {
    entries: Mutex<Vec<Entry>>,
}

impl KeptInstances {
    /// Takes the most recently kept instance of `version` under `fingerprint`, if any. Drops
    /// what has been idle too long on the way.
    pub fn take(&self, version: u64, fingerprint: &[u8; 32]) -> Option<KeptInstance> {
        let mut stale = Vec::new();
        let found = {
            let mut entries = self.lock();
            remove_idle(&mut entries, &mut stale);
            entries
                .iter()
                .rposition(|e| e.version == version && &e.fingerprint == fingerprint)
                .map(|at| entries.remove(at).kept)
        };
        // Stores are dropped outside the lock: dropping one resets its pooled memory.
        drop(stale);
        found
    }

    /// Keeps `kept` for a later call of `version` under `fingerprint`, unless it has served its
    /// calls or holds too much memory (`guest_memory` of its `memory_limit`); makes room by
    /// dropping the oldest.
    pub fn keep(
        &self,
        version: u64,
        fingerprint: [u8; 32],
        kept: KeptInstance,
        guest_memory: u64,
        memory_limit: u64,
    ) {
        let grown = guest_memory.saturating_sub(kept.warm.instantiated_memory);
        if kept.warm.calls >= MAX_CALLS_PER_INSTANCE
            || guest_memory > MAX_KEPT_GUEST_MEMORY.min(memory_limit / 2)
            || grown > memory_limit / 4
        {
            return;
        }
        let mut evicted = Vec::new();
        {
            let mut entries = self.lock();
            remove_idle(&mut entries, &mut evicted);
            entries.push(Entry {
                version,
                fingerprint,
                guest_memory,
                idle_since: Instant::now(),
                kept,
            });
            let mut total: u64 = entries.iter().map(|e| e.guest_memory).sum();
            while entries.len() > MAX_KEPT as usize || total > MAX_KEPT_TOTAL_MEMORY {
                let oldest = entries.remove(0);
                total -= oldest.guest_memory;
                evicted.push(oldest);
            }
        }
        drop(evicted);
    }

    /// Drops what has been idle [`MAX_IDLE`]; the runtime's ticker calls it every second, so an
    /// idle host does not hold instances for ever.
    pub fn drop_idle(&self) {
        let mut stale = Vec::new();
        remove_idle(&mut self.lock(), &mut stale);
        drop(stale);
    }

    /// Drops every instance of `version` (its connector version is gone).
    pub fn forget(&self, version: u64) {
        let gone: Vec<Entry> = {
            let mut entries = self.lock();
            let (gone, kept) = std::mem::take(&mut *entries)
                .into_iter()
                .partition(|e| e.version == version);
            *entries = kept;
            gone
        };
        drop(gone);
    }

    /// How many instances are kept now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        // An entry is pushed or removed whole, so a panic elsewhere leaves the list consistent.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Moves the entries idle for [`MAX_IDLE`] or longer from `entries` to `into` (to be dropped by
/// the caller outside the lock).
fn remove_idle(entries: &mut Vec<Entry>, into: &mut Vec<Entry>) {
    let now = Instant::now();
    let (idle, busy): (Vec<Entry>, Vec<Entry>) = std::mem::take(entries)
        .into_iter()
        .partition(|e| now.duration_since(e.idle_since) >= MAX_IDLE);
    *entries = busy;
    into.extend(idle);
}
