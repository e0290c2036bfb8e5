//! The BSS integration host: runs third-party connector components in a sandbox and keeps the BSS
//! and outside systems in sync through them.
//!
//! | module | owns |
//! |---|---|
//! | `api` | the admin HTTP API that `bss-host serve` runs |
//! | `app` | the data folder: the store, the secrets key, the plugins registry, opened together |
//! | `capabilities` | everything a component may import (HTTP, its settings and lookups, logging) and the per-instance `host.` options that bound it |
//! | `cli` | the `bss-host` command |
//! | `demo` | `bss-host demo`, with a ConnectWise sandbox in-process (cargo feature `demo`) |
//! | `instances` | named connector instances: settings, sync options, lookups, the settings check |
//! | `registry` | connector versions found in the plugins folder, hot reload and rollback |
//! | `runtime` | the wasmtime engine, the contract's bindings per minor, calls under deadline and memory caps |
//! | `safe_text` | text from a connector or a remote made safe to print |
//! | `store` | the SQLite store: instances, id map, runs, retry queue, cursors, leases |
//! | `sync` | push and pull that never duplicate or lose a record: engine, leases, record files, runs |
//! | `time` | RFC 3339 stamps, written and parsed strictly |

pub mod api;
pub mod app;
pub mod capabilities;
pub mod cli;
#[cfg(feature = "demo")]
pub mod demo;
pub mod instances;
pub mod registry;
pub mod runtime;
pub mod safe_text;
pub mod store;
pub mod sync;
pub mod time;
