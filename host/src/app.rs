//! The host's parts assembled on one data folder: the store (`bss.db`, or the PostgreSQL database
//! `--database` names), the secret key, the component runtime with its compile cache (`cache/`),
//! and the registry with the bundled connectors and the plugins folder (`plugins/` unless given).
//! Every subcommand and `serve` start here, so they all see the same state.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use crate::instances::Instances;
use crate::registry::{LoadProblem, Registry};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::store::Store;
use crate::store::location::StoreLocation;
use crate::store::secrets::SecretBox;

pub struct App {
    pub data: PathBuf,
    /// Where the store is (for messages: a PostgreSQL URL without its password).
    pub database: StoreLocation,
    pub plugins: PathBuf,
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    pub instances: Arc<Instances>,
    /// Connector files that could not be loaded at start.
    pub load_problems: Vec<LoadProblem>,
}

/// Refuses a data folder that was used (its key file or compile cache is there) but whose
/// database is missing or empty: opening it would silently start an empty id map, and every
/// record synced before would be created again. `new_database` says to start afresh.
fn guard_database(data: &Path, new_database: bool) -> anyhow::Result<()> {
    let database = data.join("bss.db");
    let length = std::fs::metadata(&database).map(|m| m.len()).ok();
    // The key file itself, not `BSS_HOST_KEY`: a key in the environment says nothing of this folder.
    let used = data.join("key").exists() || data.join("cache").is_dir();
    match length {
        Some(length) if length > 0 => {
            if new_database {
                anyhow::bail!(
                    "--new-database: {} already holds a database; nothing was changed. Move it away first if you really mean to start afresh",
                    database.display()
                );
            }
        }
        _ if !used => {}
        _ if new_database => {
            if length == Some(0) {
                std::fs::remove_file(&database).with_context(|| {
                    format!(
                        "the empty database {} could not be removed",
                        database.display()
                    )
                })?;
            }
            tracing::warn!(
                "starting a new, empty database in {} as asked (--new-database)",
                data.display()
            );
        }
        _ => anyhow::bail!(
            "the data folder {} was used before (it has a key file or a compile cache) but its database {} is {}: the id map that stops duplicates is not there. Restore bss.db from a backup into the folder; or, to start afresh knowing that records synced before will be created again, run the command again with --new-database",
            data.display(),
            database.display(),
            if length == Some(0) {
                "empty"
            } else {
                "missing"
            }
        ),
    }
    Ok(())
}

/// How to open the data folder beyond its path.
#[derive(Debug, Clone)]
pub struct OpenOptions<'a> {
    /// The connectors folder (default `plugins/` in the data folder).
    pub plugins: Option<&'a Path>,
    /// The store: `None` for the data folder's SQLite file, or a `postgres://` URL.
    pub database: Option<&'a str>,
    /// Allows a fresh SQLite database in a used folder.
    pub new_database: bool,
    /// Which connectors to load: a command loads only those it calls (a broken, slow or large
    /// plugin then costs the others nothing).
    pub connectors: Connectors,
    /// Unsigned plugin files load too (`--allow-unsigned`).
    pub allow_unsigned: bool,
}

/// Which connectors a command loads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Connectors {
    /// Every one (the bundled ones, the plugins folder and, on a shared store, the store's).
    #[default]
    All,
    /// None: the command calls no connector.
    None,
    /// The connectors serving these instances and those named (plus the bundled ones).
    Only {
        instances: Vec<String>,
        connectors: Vec<String>,
    },
}

impl Default for OpenOptions<'_> {
    fn default() -> Self {
        OpenOptions {
            plugins: None,
            database: None,
            new_database: false,
            connectors: Connectors::All,
            allow_unsigned: false,
        }
    }
}

/// Refuses a PostgreSQL store with no instances beside a data folder whose SQLite store has some:
/// the operator most likely meant to copy it first, and syncing on the empty one would create
/// every record synced before again.
fn refuse_a_forgotten_sqlite_store(
    data: &Path,
    location: &StoreLocation,
    store: &dyn Store,
) -> anyhow::Result<()> {
    let file = data.join("bss.db");
    if !file.is_file() || !store.instances()?.is_empty() {
        return Ok(());
    }
    let left = crate::store::sqlite::instance_count(&file)?;
    if left > 0 {
        anyhow::bail!(
            "{} holds no instances, but the data folder's SQLite store {} holds {left}: syncing on the empty one would create every record synced before again. Copy it first (`bss-host migrate-store --from {} --to …`), or move {} away to start afresh",
            location.shown(),
            file.display(),
            data.display(),
            file.display()
        );
    }
    Ok(())
}

impl App {
    pub async fn open(data: &Path, plugins: Option<&Path>) -> anyhow::Result<App> {
        Self::open_with(
            data,
            OpenOptions {
                plugins,
                ..OpenOptions::default()
            },
        )
        .await
    }

    /// Opens the data folder and the store the options name.
    pub async fn open_with(data: &Path, options: OpenOptions<'_>) -> anyhow::Result<App> {
        let OpenOptions {
            plugins,
            database,
            new_database,
            connectors,
            allow_unsigned,
        } = options;
        let location = StoreLocation::parse(database, data).map_err(anyhow::Error::msg)?;
        std::fs::create_dir_all(data)
            .with_context(|| format!("the data folder {} could not be created", data.display()))?;
        let probe = data.join(".writable");
        std::fs::write(&probe, b"")
            .with_context(|| format!("the data folder {} is not writable", data.display()))?;
        let _ = std::fs::remove_file(&probe);
        let plugins = plugins
            .map(Path::to_path_buf)
            .unwrap_or_else(|| data.join("plugins"));
        std::fs::create_dir_all(&plugins).with_context(|| {
            format!(
                "the plugins folder {} could not be created",
                plugins.display()
            )
        })?;

        if location.is_postgres() {
            if new_database {
                anyhow::bail!(
                    "--new-database applies to the SQLite file in the data folder, not to --database {}; an empty PostgreSQL database is simply one with nothing in it",
                    location.shown()
                );
            }
        } else {
            guard_database(data, new_database)?;
        }
        let store = location.open()?;
        if location.is_postgres() {
            refuse_a_forgotten_sqlite_store(data, &location, store.as_ref())?;
        }
        if !SecretBox::key_exists(data) && store.sealed_count()? > 0 {
            anyhow::bail!(
                "the key file {} is missing but the database holds sealed secrets ({}); restore the key file (or set {}; every worker on one database needs the same key) — a new key cannot open them",
                data.join("key").display(),
                location.shown(),
                crate::store::secrets::KEY_VARIABLE
            );
        }
        let secrets = Arc::new(SecretBox::open_or_create(data)?);
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(data.join("cache")),
            ..RuntimeConfig::default()
        })
        .context("the component runtime could not start")?;
        runtime
            .http_client()
            .share_budget(Arc::new(StoreBudget(store.clone())));
        let registry = Arc::new(Registry::new(runtime, store.clone()));
        registry.set_allow_unsigned(allow_unsigned);
        if allow_unsigned && connectors != Connectors::None {
            tracing::warn!(
                "unsigned connectors are allowed (--allow-unsigned): any .wasm in {} loads without a signature; signed ones are still checked against the trust list",
                plugins.display()
            );
        }
        registry.keep_plugin_index(
            data.join("cache")
                .join(crate::registry::plugin_index::FILE_NAME),
        );
        let only = match &connectors {
            Connectors::All | Connectors::None => None,
            Connectors::Only {
                instances,
                connectors,
            } => {
                let mut names: BTreeSet<String> = connectors.iter().cloned().collect();
                for instance in store.instances()? {
                    if instances.contains(&instance.name) {
                        names.insert(instance.connector);
                    }
                }
                Some(names)
            }
        };
        let load_problems = if connectors == Connectors::None {
            Vec::new()
        } else {
            let mut problems = registry.load_selected(&plugins, only.as_ref()).await?;
            // Versions installed on other workers of a shared store.
            problems.extend(registry.load_shared_selected(only.as_ref()).await);
            if connectors == Connectors::All {
                // Everything loadable is known now: compiled code of versions no longer
                // installed goes.
                match registry.prune_compiled(&plugins) {
                    Ok(pruned) if pruned.removed > 0 => tracing::info!(
                        "removed the compiled code of {} component(s) no longer installed ({:.1} MB)",
                        pruned.removed,
                        pruned.removed_bytes as f64 / 1e6
                    ),
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!("the compiled-code cache was not pruned: {error}")
                    }
                }
            }
            problems
        };
        let instances = Arc::new(Instances::new(store.clone(), secrets, registry.clone()));
        Ok(App {
            data: data.to_path_buf(),
            database: location,
            plugins,
            store,
            registry,
            instances,
            load_problems,
        })
    }
}

/// Instances' request budgets kept in the store, so every process on this data folder shares them.
struct StoreBudget(Arc<dyn Store>);

impl crate::capabilities::http::SharedBudget for StoreBudget {
    fn take_tokens(&self, instance: &str, per_minute: u32, want: u32) -> anyhow::Result<u32> {
        Ok(self.0.take_request_tokens(instance, per_minute, want)?)
    }
}
