//! The BSS integration host: runs third-party connector components in a sandbox and keeps the BSS
//! and outside systems in sync through them.
//!
//! `runtime` loads and calls components; `capabilities` is everything a component may import;
//! `cli` is the `bss-host` command.

pub mod api;
pub mod app;
pub mod capabilities;
pub mod cli;
pub mod demo;
pub mod instances;
pub mod registry;
pub mod runtime;
pub mod safe_text;
pub mod store;
pub mod sync;
pub mod time;
