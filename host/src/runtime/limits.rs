//! The per-call resource limiter. It caps linear memory at the instance's `host.memory-limit` and
//! remembers that it refused a grow: a Rust guest that cannot allocate aborts with an
//! `unreachable` trap, and only the limiter knows the real cause, so the call is reported as having
//! hit its memory cap. It also adds up the linear memory it granted (all of an instance's
//! memories), which is the call's peak guest memory: wasm memories never shrink.

use wasmtime::ResourceLimiter;

/// Table elements one instance may hold: generous for real code, small enough to stop a runaway.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

#[derive(Debug)]
pub struct MemoryGuard {
    limit: u64,
    refused: Option<u64>,
    granted: u64,
}

impl MemoryGuard {
    pub fn new(limit: u64) -> Self {
        MemoryGuard {
            limit,
            refused: None,
            granted: 0,
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
}

impl ResourceLimiter for MemoryGuard {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit {
            self.refused = Some(self.refused.unwrap_or(0).max(desired as u64));
            return Ok(false);
        }
        self.granted += desired.saturating_sub(current) as u64;
        Ok(true)
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
