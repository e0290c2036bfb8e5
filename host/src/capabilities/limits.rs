//! The per-call resource limiter. It caps linear memory at the instance's `host.memory-limit` and
//! remembers that it refused a grow: a Rust guest that cannot allocate aborts with an
//! `unreachable` trap, and only the limiter knows the real cause, so the call is reported as having
//! hit its memory cap. The cap is on all of the instance's memories together; what it granted is
//! the call's peak guest memory (wasm memories never shrink). An instance kept for later calls
//! keeps its guard, so the cap holds over the instance's whole life, not per call.

use wasmtime::ResourceLimiter;

/// Table elements one instance may hold: generous for real code, small enough to stop a runaway.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

#[derive(Debug)]
pub struct MemoryGuard {
    limit: u64,
    refused: Option<u64>,
    granted: u64,
    /// The last grow granted, taken back if wasmtime then fails it.
    last_grant: u64,
}

impl MemoryGuard {
    pub fn new(limit: u64) -> Self {
        MemoryGuard {
            limit,
            refused: None,
            granted: 0,
            last_grant: 0,
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes of linear memory the call's instance holds, over all its memories.
    pub fn granted(&self) -> u64 {
        self.granted
    }

    /// The size of the largest grow request refused in this call, if any.
    pub fn refused(&self) -> Option<u64> {
        self.refused
    }

    /// Starts another call in the same instance: what it holds stays counted, refusals are
    /// forgotten.
    pub fn begin_call(&mut self) {
        self.refused = None;
        self.last_grant = 0;
    }
}

impl ResourceLimiter for MemoryGuard {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // The limit is on all of the instance's memories together, not on each.
        let grow = desired.saturating_sub(current) as u64;
        let total = self.granted + grow;
        if total > self.limit {
            self.refused = Some(self.refused.unwrap_or(0).max(total));
            return Ok(false);
        }
        self.granted = total;
        self.last_grant = grow;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.granted -= std::mem::take(&mut self.last_grant);
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
