//! The lean build's global allocator (`./build.sh --lean`, target `wasm32-unknown-unknown`): the
//! free part of the initial linear memory first, then std's.
//!
//! On `wasm32-unknown-unknown` std's allocator (dlmalloc) never uses the initial memory past the
//! heap base: its first allocation grows memory. The host gives a grown memory back to its initial
//! size when it reuses the pooled slot, so every call would pay for the growth again (two
//! `mprotect`s with a TLB flush, and fresh zero pages: slower than the `wasm32-wasip2` build).
//! `build.sh --lean` links an initial memory larger than the stack and data (`--initial-memory`),
//! and this allocator hands out that space as an arena before falling back to dlmalloc. The arena
//! only moves forward (a block freed or shrunk at its end is taken back; others are left): an
//! instance often lives for one call, and one the host keeps for later calls (at most 1,000) uses
//! the arena up once and then grows dlmalloc's heap once. The component is single-threaded, so
//! plain cells suffice.
//!
//! The same allocator as the bundled ConnectWise connector's (`plugin-connectwise/src/arena.rs` in
//! the host's repository): this template is a standalone project, so it carries its own copy.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

pub struct ArenaFirst {
    /// The next free byte of the arena, and its end; both 0 until the first allocation.
    next: Cell<usize>,
    end: Cell<usize>,
}

// SAFETY: wasm32 components here run on one thread; the cells are never shared across threads.
unsafe impl Sync for ArenaFirst {}

unsafe extern "C" {
    /// The first byte after the stack and static data, set by the linker.
    static __heap_base: u8;
}

impl ArenaFirst {
    pub const fn new() -> ArenaFirst {
        ArenaFirst {
            next: Cell::new(0),
            end: Cell::new(0),
        }
    }

    fn owns(&self, ptr: *mut u8) -> bool {
        let at = ptr as usize;
        at < self.end.get() && at >= self.arena_start()
    }

    fn arena_start(&self) -> usize {
        // Only the address of the linker's symbol is taken (which needs no `unsafe`).
        std::ptr::addr_of!(__heap_base) as usize
    }

    /// Carves `layout` from the arena, or none when it does not fit.
    fn carve(&self, layout: Layout) -> Option<*mut u8> {
        if self.end.get() == 0 {
            // Before anything grew memory: its current size is the initial one.
            self.next.set(self.arena_start());
            // Saturating: a 4 GiB initial memory does not fit a wasm32 `usize` (and a 0 here would
            // mean "not set up yet" again on the next allocation).
            self.end
                .set(core::arch::wasm32::memory_size(0).saturating_mul(65_536));
        }
        let start = self.next.get().checked_next_multiple_of(layout.align())?;
        let end = start.checked_add(layout.size())?;
        if end > self.end.get() {
            return None;
        }
        self.next.set(end);
        Some(start as *mut u8)
    }
}

impl Default for ArenaFirst {
    fn default() -> Self {
        ArenaFirst::new()
    }
}

// SAFETY: arena blocks are disjoint, aligned and inside the initial memory, which dlmalloc never
// hands out (it only uses memory it grew); everything else is dlmalloc's.
unsafe impl GlobalAlloc for ArenaFirst {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.carve(layout) {
            Some(block) => block,
            // SAFETY: the caller's contract for `alloc`, passed on.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.owns(ptr) {
            if ptr as usize + layout.size() == self.next.get() {
                self.next.set(ptr as usize);
            }
            return;
        }
        // SAFETY: `ptr` came from `System` (it is not in the arena).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.owns(ptr) {
            // SAFETY: `ptr` came from `System` (it is not in the arena).
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let start = ptr as usize;
        if start + layout.size() == self.next.get() && start + new_size <= self.end.get() {
            // The last block grows or shrinks in place.
            self.next.set(start + new_size);
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: `layout.align()` is a valid alignment and `new_size` is non-zero (the caller's
        // contract for `realloc`).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: the caller's contract for `realloc`, passed on to `alloc`.
        let moved = unsafe { self.alloc(new_layout) };
        if !moved.is_null() {
            // SAFETY: both blocks are at least `layout.size()` long and do not overlap; the old
            // block is this allocator's and is not used again.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, moved, layout.size());
                self.dealloc(ptr, layout);
            }
        }
        moved
    }
}
