//! The ConnectWise Manage connector.
//!
//! `core` holds the connector's logic as plain Rust (built natively too, so the sync engine can
//! drive it without the sandbox for comparison); `component` is the thin shim that exports it as a
//! `bss:integration@1.0.0` component on wasm32-wasip2. This is the skeleton the connector issues
//! fill in: today it describes itself and refuses every operation as unsupported.

pub mod core;

#[cfg(target_arch = "wasm32")]
mod component;
