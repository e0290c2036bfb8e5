//! The BSS integration host: runs third-party connector components in a sandbox and keeps the BSS
//! and outside systems in sync through them.
//!
//! | module | owns |
//! |---|---|
//! | `api` | the admin HTTP API that `bss-host serve` runs |
//! | `app` | the data folder: the store, the secrets key, the plugins registry, opened together |
//! | `callbacks` | remote callbacks: the hook that verifies and stores a delivery once, and the worker that fetches each named record into the change feed |
//! | `capabilities` | everything a component may import (HTTP, its settings and lookups, logging) and the per-instance `host.` options that bound it |
//! | `cli` | the `bss-host` command |
//! | `console` | the operator console `serve` runs at `/`: sign-in sessions, the setup pages, runs, tokens |
//! | `contract` | the connector contract as the host sees it: bindings per minor, the typed manifest, connector errors in words (the bottom layer) |
//! | `demo` | `bss-host demo`, with a ConnectWise sandbox in-process (cargo feature `demo`) |
//! | `dev` | `bss-host dev FILE`: a connector author's loop against the sandbox (cargo feature `demo`) |
//! | `instances` | named connector instances: settings, sync options, lookups, the settings check |
//! | `metrics` | the process's Prometheus metrics (calls, remote statuses, records, queue and feed gauges), counted from any layer |
//! | `registry` | connector versions found in the plugins folder, hot reload and rollback |
//! | `runtime` | the wasmtime engine: loading and linking components, calls under deadline and memory caps, answers bounded in guest memory |
//! | `scheduler` | what `serve` runs unattended: the schedules (pulls into the change feed, retries), the retry of every queue once a minute, feed pruning, and the health they report |
//! | `serve` | `bss-host serve`: the plugins watcher, the scheduler, the API and the console in one process |
//! | `safe_text` | text from a connector or a remote made safe to print |
//! | `store` | the store traits and their SQLite implementation: instances, id map, runs, retry queue, cursors, leases, schedules, the change feed |
//! | `sync` | push and pull that never duplicate or lose a record: engine, leases, record files, runs |
//! | `time` | RFC 3339 stamps, written and parsed strictly |

pub mod api;
pub mod app;
pub mod callbacks;
pub mod capabilities;
pub mod cli;
pub mod console;
pub mod contract;
#[cfg(feature = "demo")]
pub mod demo;
#[cfg(feature = "demo")]
pub mod dev;
pub mod fleet;
pub mod instances;
pub mod metrics;
pub mod registry;
pub mod runtime;
pub mod safe_text;
pub mod scheduler;
pub mod serve;
pub mod store;
pub mod sync;
pub mod time;

/// The layers: each module imports only from the modules below it, so a change at the bottom
/// (the contract) reaches up and never the other way round. A new upward import fails here.
#[cfg(test)]
mod layers {
    /// Bottom first: a module may import from the modules of any lower layer, never from its own
    /// layer or one above.
    const LAYERS: &[&[&str]] = &[
        &["time", "safe_text", "contract", "metrics"],
        &["capabilities", "store"],
        &["runtime"],
        &["registry"],
        &["instances"],
        &["sync"],
        &["callbacks"],
        &["app", "scheduler"],
        &["fleet"],
        &["api", "demo", "dev"],
        &["console"],
        &["serve"],
        &["cli"],
    ];

    fn layer_of(module: &str) -> Option<usize> {
        LAYERS.iter().position(|layer| layer.contains(&module))
    }

    fn files(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }

    #[test]
    fn no_module_imports_from_a_layer_above_it() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut all = Vec::new();
        files(&src, &mut all);
        let mut upward = Vec::new();
        for path in all {
            let relative = path.strip_prefix(&src).unwrap();
            let first = relative.components().next().unwrap().as_os_str();
            let module = first.to_str().unwrap().trim_end_matches(".rs");
            if matches!(module, "lib" | "main") {
                continue;
            }
            let Some(layer) = layer_of(module) else {
                panic!("src/{module} is not placed in a layer; add it to LAYERS");
            };
            let text = std::fs::read_to_string(&path).unwrap();
            for (number, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                assert!(
                    !line.contains("crate::{"),
                    "{}:{}: name each module in its own `use crate::…` so layers can be checked",
                    relative.display(),
                    number + 1
                );
                for (at, _) in line.match_indices("crate::") {
                    let rest = &line[at + "crate::".len()..];
                    let target: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    let fine =
                        target == module || layer_of(&target).is_some_and(|below| below < layer);
                    if !fine {
                        upward.push(format!(
                            "src/{}:{}: {module} imports {target}",
                            relative.display(),
                            number + 1
                        ));
                    }
                }
            }
        }
        assert!(
            upward.is_empty(),
            "imports against the layers (each may import only from a lower one: {LAYERS:?}):\n{}",
            upward.join("\n")
        );
    }
}
