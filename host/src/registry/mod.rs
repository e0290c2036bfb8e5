//! The connector registry: which connector versions exist and which one serves an instance.
//!
//! Connectors come from two places: those bundled in the host (ConnectWise, `connectwise`) and the
//! `.wasm` files in the plugins folder. Each is compiled (or loaded from the compile cache),
//! instantiated and its manifest validated before it is listed; one that fails is reported with
//! its reason and skipped, and the others load. A plugin file must first pass the trust list
//! (`trust`): signed by a key trusted for its connector's name, or unsigned where unsigned
//! connectors are allowed. Loaded versions are recorded in the store, and loads, refusals,
//! rollbacks and restores in its audit log. An instance is served by the newest loaded version
//! that meets its version requirement.

pub mod plugin_index;
pub mod signature;
pub mod trust;
mod watch;

pub(crate) use watch::{Completed, next_completed, notifications};
pub use watch::{WATCH_EVERY, watch};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use semver::{Version, VersionReq};

use crate::contract::manifest::{Manifest, VariableKind};
use crate::runtime::{Connector, LoadError, Runtime};
use crate::store::{ConnectorVersion, Store, StoreError};

/// The ConnectWise connector, built by the host's build script and shipped inside the binary.
pub const BUNDLED_CONNECTWISE: &[u8] = include_bytes!(env!("BSS_CONNECTWISE_WASM"));

/// A connector file that could not be loaded, and why.
#[derive(Debug)]
pub struct LoadProblem {
    pub source: String,
    pub error: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("no connector named {0:?} is installed; `bss-host connectors list` shows them")]
    Unknown(String),
    #[error("connector {name} has no version matching {requirement} (installed: {installed})")]
    NoMatchingVersion {
        name: String,
        requirement: String,
        installed: String,
    },
    #[error("{0:?} is not a version requirement such as 1.2, ^1.2.0, =1.0.3 or *")]
    BadRequirement(String),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the plugins folder {path} could not be read: {reason}")]
    PluginsFolder { path: PathBuf, reason: String },
    #[error("the compiled-code cache could not be pruned: {0}")]
    Cache(#[from] std::io::Error),
    #[error("{origin} was refused before, by content (same bytes): {reason}")]
    RefusedBefore { origin: String, reason: String },
    /// A version that would make a sealed value readable (the message says which and how).
    #[error("{0}")]
    Unsealing(String),
    /// Refused by the trust list (the message names the signer, or its absence, and the fix).
    #[error("{0}")]
    Untrusted(String),
    /// Its signature does not match its bytes, or cannot be read: refused for what it is.
    #[error("{0}")]
    Tampered(String),
    /// A trust list change that cannot be made (the message names the argument).
    #[error("{0}")]
    BadTrust(String),
    #[error("no key named {0:?} is on the trust list; `bss-host trust list` shows them")]
    UnknownKey(String),
}

impl RegistryError {
    /// Refused for what the bytes are (the same bytes are refused again), not for something
    /// passing (a store, a deadline, the compiler) nor for the trust list, which may change.
    pub fn is_for_content(&self) -> bool {
        matches!(
            self,
            RegistryError::RefusedBefore { .. }
                | RegistryError::Tampered(_)
                | RegistryError::Load(
                    LoadError::NotAComponent { .. }
                        | LoadError::CompileOverMemoryCap { .. }
                        | LoadError::ManifestCall { .. }
                        | LoadError::Manifest { .. }
                        | LoadError::Exports { .. }
                        | LoadError::Link { .. }
                        | LoadError::ContractVersion { .. }
                        | LoadError::NotAConnector { .. }
                )
        )
    }
}

/// One loaded version of a connector.
#[derive(Clone)]
pub struct Loaded {
    pub version: Version,
    pub connector: Connector,
    pub source: String,
    /// When this process loaded it (RFC 3339, UTC).
    pub loaded_at: String,
    /// Who vouches for it: the host, a trusted key, or nobody (unsigned, allowed).
    pub provenance: trust::Provenance,
}

/// One loaded version, as listed.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Listed {
    pub name: String,
    pub version: String,
    /// The contract it was built against (`bss:integration@1.0.0`).
    pub wit: String,
    pub sha256: String,
    /// Where it came from: "bundled" or its file.
    pub source: String,
    pub loaded_at: String,
    /// Rolled back: instances that follow the newest version skip it.
    pub withdrawn: bool,
    /// Who vouches for it: "the host (bundled)", "KEY-NAME (key ID)" or "unsigned (…)".
    pub signed_by: String,
    pub provenance: trust::Provenance,
    pub manifest: crate::contract::manifest::Manifest,
}

/// The source of the connectors built into the binary.
pub const BUNDLED_SOURCE: &str = "bundled";

/// A connector file that was refused, and why; kept for the API and `connectors list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Refusal {
    pub source: String,
    pub reason: String,
    pub at: String,
    /// Refused by the trust list, which may change (then it is tried again).
    #[serde(skip)]
    pub by_trust: bool,
    /// A failure that says nothing about the component (a compile that was stopped, a store
    /// that did not answer): when it may be tried again, and how many times in a row it failed.
    #[serde(skip)]
    pub retry: Option<(std::time::Instant, u32)>,
}

/// How long a load that failed for a passing reason waits before it is tried again: 30 s, doubled
/// for each failure in a row, at most an hour (a component whose compile is stopped every time
/// must not keep a core busy).
pub fn retry_wait(failures_in_a_row: u32) -> std::time::Duration {
    const FIRST: std::time::Duration = std::time::Duration::from_secs(30);
    const AT_MOST: std::time::Duration = std::time::Duration::from_secs(3600);
    FIRST
        .saturating_mul(2u32.saturating_pow(failures_in_a_row.saturating_sub(1)))
        .min(AT_MOST)
}

pub struct Registry {
    runtime: Runtime,
    store: Arc<dyn Store>,
    connectors: RwLock<BTreeMap<String, Vec<Loaded>>>,
    refusals: RwLock<Vec<Refusal>>,
    /// Where the plugins folder's index is kept (`plugin_index`), when it is.
    plugin_index: RwLock<Option<PathBuf>>,
    /// Unsigned plugin files load (`--allow-unsigned`).
    allow_unsigned: AtomicBool,
}

fn now() -> String {
    crate::time::now_rfc3339()
}

/// This host build, as the plugins index records it: the package version and the bundled
/// connector's hash (which changes with every build of it).
fn host_build() -> &'static str {
    static BUILD: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BUILD.get_or_init(|| {
        format!(
            "{}+{}",
            env!("CARGO_PKG_VERSION"),
            &crate::runtime::cache::content_hash(BUNDLED_CONNECTWISE)[..16]
        )
    })
}

/// The `.wasm` files of the plugins folder, sorted (none when the folder does not exist).
fn plugin_files(plugins: &Path) -> Result<Vec<PathBuf>, RegistryError> {
    if !plugins.is_dir() {
        return Ok(Vec::new());
    }
    let entries = std::fs::read_dir(plugins).map_err(|e| RegistryError::PluginsFolder {
        path: plugins.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    files.sort();
    Ok(files)
}

/// Parses a requirement as an admin writes it; a bare version means "this or a compatible newer".
pub fn parse_requirement(text: &str) -> Result<VersionReq, RegistryError> {
    VersionReq::parse(text.trim()).map_err(|_| RegistryError::BadRequirement(text.to_string()))
}

impl Registry {
    pub fn new(runtime: Runtime, store: Arc<dyn Store>) -> Self {
        Registry {
            runtime,
            store,
            connectors: RwLock::default(),
            refusals: RwLock::default(),
            plugin_index: RwLock::default(),
            allow_unsigned: AtomicBool::new(false),
        }
    }

    /// Lets unsigned plugin files load (they are listed as unsigned); signed ones are still
    /// checked against the trust list.
    pub fn set_allow_unsigned(&self, allow: bool) {
        self.allow_unsigned.store(allow, Ordering::Relaxed);
    }

    pub fn allows_unsigned(&self) -> bool {
        self.allow_unsigned.load(Ordering::Relaxed)
    }

    /// Appends to the audit log; a store that cannot take it is warned about, not fatal (the
    /// action itself was done).
    pub fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
        once: Option<&str>,
    ) {
        let entry = crate::store::trust_store::NewAuditEntry {
            actor,
            action,
            subject,
            detail,
            once,
        };
        if let Err(error) = self.store.append_audit(&entry) {
            tracing::warn!(
                action,
                subject,
                "the audit log did not take an entry: {error}"
            );
        }
    }

    /// Keeps the plugins folder's index at `path` (see `plugin_index`).
    pub fn keep_plugin_index(&self, path: PathBuf) {
        *self.plugin_index.write().unwrap_or_else(|p| p.into_inner()) = Some(path);
    }

    fn plugin_index_path(&self) -> Option<PathBuf> {
        self.plugin_index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Loads the bundled connectors and every `.wasm` in `plugins`; returns what failed to load.
    pub async fn load_all(&self, plugins: &Path) -> Result<Vec<LoadProblem>, RegistryError> {
        self.load_selected(plugins, None).await
    }

    /// As [`Registry::load_all`], but with `only`, a file known (by the plugins index) to hold
    /// another connector, or to have been refused, is not read. The bundled connectors always
    /// load (they are small and in the binary).
    pub async fn load_selected(
        &self,
        plugins: &Path,
        only: Option<&BTreeSet<String>>,
    ) -> Result<Vec<LoadProblem>, RegistryError> {
        let mut problems = Vec::new();
        if let Err(error) = self.load_bytes(BUNDLED_CONNECTWISE, BUNDLED_SOURCE).await {
            self.refuse("bundled connectwise", &error);
            problems.push(LoadProblem {
                source: "bundled connectwise".into(),
                error: error.to_string(),
            });
        }
        let files = plugin_files(plugins)?;
        let index_path = self.plugin_index_path();
        let mut index = index_path
            .as_deref()
            .map(|path| plugin_index::PluginIndex::read(path, host_build()))
            .unwrap_or_default();
        let before = index.clone();
        for file in &files {
            if let Some(only) = only
                && let Some(entry) = index.known(file)
                && !entry.connector.as_ref().is_some_and(|c| only.contains(c))
            {
                continue;
            }
            let source = file.display().to_string();
            // Taken before the bytes are read: a file that changes while it loads is not
            // recorded with its new stamp and its old contents.
            let stamp = plugin_index::stamp(file);
            let bytes = match std::fs::read(file) {
                Ok(bytes) => bytes,
                Err(source_error) => {
                    let error = RegistryError::Load(LoadError::Read {
                        path: file.clone(),
                        source: source_error,
                    });
                    self.refuse(&source, &error);
                    problems.push(LoadProblem {
                        source,
                        error: error.to_string(),
                    });
                    continue;
                }
            };
            let hash = crate::runtime::cache::content_hash(&bytes);
            match self.load_bytes(&bytes, &source).await {
                Ok(loaded) => {
                    if let Some(stamp) = stamp {
                        index.record(file, stamp, &hash, Some(&loaded.connector.manifest().name));
                    }
                }
                Err(error) => {
                    // Only what the bytes are is remembered (as the store remembers refusals);
                    // a passing failure (a store, a deadline, the compiler) is tried again.
                    if error.is_for_content()
                        && let Some(stamp) = stamp
                    {
                        index.record(file, stamp, &hash, None);
                    }
                    self.refuse(&source, &error);
                    problems.push(LoadProblem {
                        source,
                        error: error.to_string(),
                    });
                }
            }
        }
        index.keep_only(&files);
        if let Some(path) = index_path
            && index != before
            && let Err(error) = index.write(&path)
        {
            tracing::warn!(path = %path.display(), "the plugins index could not be written: {error}");
        }
        Ok(problems)
    }

    /// The content hashes of the components this host can still load: the bundled ones, every
    /// file in `plugins` and, on a shared store, every version stored there. Compiled code of
    /// anything else is garbage.
    pub fn loadable_hashes(&self, plugins: &Path) -> Result<BTreeSet<String>, RegistryError> {
        let mut hashes = BTreeSet::from([crate::runtime::cache::content_hash(BUNDLED_CONNECTWISE)]);
        let index = self
            .plugin_index_path()
            .as_deref()
            .map(|path| plugin_index::PluginIndex::read(path, host_build()))
            .unwrap_or_default();
        for file in plugin_files(plugins)? {
            match index.known(&file) {
                Some(entry) => {
                    hashes.insert(entry.hash.clone());
                }
                None => {
                    // A file that cannot be read now (being replaced, no permission) may be
                    // installed all the same: nothing is pruned rather than its code.
                    let bytes = std::fs::read(&file).map_err(|e| RegistryError::PluginsFolder {
                        path: file.clone(),
                        reason: format!("could not be read, so nothing was pruned: {e}"),
                    })?;
                    hashes.insert(crate::runtime::cache::content_hash(&bytes));
                }
            }
        }
        if self.store.component_wakeup().is_some() {
            hashes.extend(
                self.store
                    .connector_versions()?
                    .into_iter()
                    .map(|v| v.content_hash),
            );
        }
        Ok(hashes)
    }

    /// Removes the compiled code of components this host can no longer load (see
    /// [`Registry::loadable_hashes`]) and of other engine builds.
    pub fn prune_compiled(
        &self,
        plugins: &Path,
    ) -> Result<crate::runtime::cache::Pruned, RegistryError> {
        let keep = self.loadable_hashes(plugins)?;
        Ok(self.runtime.prune_cache(&keep)?)
    }

    pub async fn load_file(&self, path: &Path) -> Result<Loaded, RegistryError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.load_bytes(&bytes, &path.display().to_string()).await
    }

    /// The manifest recorded when a component with this content hash was first loaded.
    fn known_manifest(&self, hash: &str) -> Result<Option<Manifest>, RegistryError> {
        Ok(self
            .store
            .connector_versions()?
            .into_iter()
            .find(|v| v.content_hash == hash)
            .and_then(|v| serde_json::from_str(&v.manifest).ok()))
    }

    /// Refuses a manifest that declares as not secret a variable under which an instance of the
    /// connector holds a sealed (secret) value: whether a value is secret was decided when it
    /// was stored, and a new version cannot make it readable.
    fn refuse_unsealing(&self, manifest: &Manifest, source: &str) -> Result<(), RegistryError> {
        for instance in self.store.instances()? {
            if instance.connector != manifest.name {
                continue;
            }
            for (key, value) in self.store.settings(&instance.name)? {
                if !matches!(value, crate::store::StoredValue::Sealed(_)) {
                    continue;
                }
                let Some(variable) = manifest.variable(&key) else {
                    continue;
                };
                if variable.kind != VariableKind::Secret {
                    return Err(RegistryError::Unsealing(format!(
                        "{source}: {} {} declares {key:?} as {}, but instance {} holds a sealed (secret) value under it, and a sealed value never becomes readable; keep {key:?} a secret in this version, or clear it (`bss-host settings set {} {key}=`) and set it again once this version is loaded",
                        manifest.name,
                        manifest.version,
                        format!("{:?}", variable.kind).to_lowercase(),
                        instance.name,
                        instance.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// Loads one component, records it, and makes it available (here, and on the other workers
    /// of a shared store).
    pub async fn load_bytes(&self, bytes: &[u8], source: &str) -> Result<Loaded, RegistryError> {
        let loaded = self.load(bytes, source).await?;
        // Every worker has the bundled build of its own binary.
        if source != BUNDLED_SOURCE {
            self.store
                .store_component(loaded.connector.content_hash(), bytes)?;
        }
        Ok(loaded)
    }

    /// Loads the components other workers installed that this one does not serve yet (a shared
    /// store only); returns what failed to load.
    pub async fn load_shared(&self) -> Vec<LoadProblem> {
        self.load_shared_selected(None).await
    }

    /// As [`Registry::load_shared`], for the connectors in `only` (all without it).
    pub async fn load_shared_selected(&self, only: Option<&BTreeSet<String>>) -> Vec<LoadProblem> {
        let versions = match self.store.connector_versions() {
            Ok(versions) => versions,
            Err(error) => {
                return vec![LoadProblem {
                    source: "the store".into(),
                    error: error.to_string(),
                }];
            }
        };
        let mut problems = Vec::new();
        for version in versions {
            let known = self
                .loaded()
                .iter()
                .any(|l| l.connector.content_hash() == version.content_hash);
            let wanted = only.is_none_or(|only| only.contains(&version.name));
            if known || !wanted || version.source == BUNDLED_SOURCE {
                continue;
            }
            let source = format!("{} (installed on another worker)", version.source);
            // Refused for what it is: not again. Failed for a passing reason: again once its wait
            // is over.
            let now = std::time::Instant::now();
            if self
                .refusals()
                .iter()
                .any(|r| r.source == source && r.retry.is_none_or(|(at, _)| now < at))
            {
                continue;
            }
            let bytes = match self.store.component(&version.content_hash) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => continue,
                Err(error) => {
                    problems.push(LoadProblem {
                        source,
                        error: error.to_string(),
                    });
                    continue;
                }
            };
            match self.load(&bytes, &source).await {
                Ok(loaded) => tracing::info!(
                    "loaded connector {} {} from the store; new calls use it",
                    loaded.connector.manifest().name,
                    loaded.version
                ),
                Err(error) => {
                    self.refuse(&source, &error);
                    problems.push(LoadProblem {
                        source,
                        error: error.to_string(),
                    });
                }
            }
        }
        problems
    }

    /// Loads one component (see `load_trusted`), with its load or refusal in the audit log once
    /// per build (every command meets the same files again).
    async fn load(&self, bytes: &[u8], source: &str) -> Result<Loaded, RegistryError> {
        let hash = crate::runtime::cache::content_hash(bytes);
        let keys = self.store.trusted_keys()?;
        let generation = trust::generation(&keys);
        match self.load_trusted(bytes, source, &hash, &keys).await {
            Ok(loaded) => {
                let provenance = &loaded.provenance;
                self.audit(
                    "host",
                    "connector.loaded",
                    &format!("{} {}", loaded.connector.manifest().name, loaded.version),
                    &format!("from {source}; signed by {provenance}; sha256 {hash}"),
                    Some(&format!(
                        "loaded:{hash}:{}:{generation}",
                        provenance.key_id().unwrap_or_default()
                    )),
                );
                // What this source was refused for before no longer stands.
                self.refusals
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .retain(|r| r.source != source);
                Ok(loaded)
            }
            Err(error) => {
                let reason = error.to_string();
                let digest = crate::runtime::cache::content_hash(reason.as_bytes());
                self.audit(
                    "host",
                    "connector.refused",
                    source,
                    &format!("{reason} (sha256 {hash})"),
                    Some(&format!("refused:{hash}:{}:{generation}", &digest[..16])),
                );
                Err(error)
            }
        }
    }

    async fn load_trusted(
        &self,
        bytes: &[u8],
        source: &str,
        hash: &str,
        keys: &[crate::store::trust_store::TrustedKey],
    ) -> Result<Loaded, RegistryError> {
        // Before any of its code runs (its manifest export is code): a file nobody trusted
        // vouches for is not compiled nor called.
        let admitted = if source == BUNDLED_SOURCE {
            None
        } else {
            match trust::admit(bytes, source, keys, self.allows_unsigned()) {
                Ok(admitted) => Some(admitted),
                Err(refused) if refused.by_content => {
                    return Err(RegistryError::Tampered(refused.reason));
                }
                Err(refused) => return Err(RegistryError::Untrusted(refused.reason)),
            }
        };
        let hash = hash.to_string();
        if let Some(reason) = self.store.component_refusal(&hash)? {
            return Err(RegistryError::RefusedBefore {
                origin: source.to_string(),
                reason,
            });
        }
        let known = self.known_manifest(&hash)?;
        let connector = match self.runtime.load_with(bytes, source, known).await {
            Ok(connector) => connector,
            Err(error) => {
                // What the component is does not change: a later command would meet the same
                // refusal, after paying for it again (a manifest() that loops costs its deadline).
                if matches!(
                    error,
                    LoadError::ManifestCall { .. }
                        | LoadError::Manifest { .. }
                        | LoadError::Exports { .. }
                        | LoadError::Link { .. }
                        | LoadError::ContractVersion { .. }
                        | LoadError::NotAConnector { .. }
                ) {
                    self.store
                        .record_component_refusal(&hash, &error.to_string())?;
                }
                return Err(error.into());
            }
        };
        let manifest = connector.manifest().clone();
        let provenance = match &admitted {
            None => trust::Provenance::Bundled,
            Some(admitted) => trust::allow_name(admitted, &manifest.name, source)
                .map_err(RegistryError::Untrusted)?,
        };
        let earlier: Vec<String> = self
            .store
            .connector_versions()?
            .into_iter()
            .filter(|v| v.name == manifest.name)
            .filter_map(|v| v.signer)
            .collect();
        trust::keep_publisher(&provenance, &manifest.name, source, &earlier, keys)
            .map_err(RegistryError::Untrusted)?;
        self.refuse_unsealing(&manifest, source)?;
        let version = Version::parse(&manifest.version).map_err(|e| {
            RegistryError::Load(LoadError::Manifest {
                origin: source.to_string(),
                source: crate::contract::manifest::ManifestError {
                    problems: vec![format!("version {:?}: {e}", manifest.version)],
                },
            })
        })?;
        let loaded_at = now();
        self.store.record_connector_version(&ConnectorVersion {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            content_hash: connector.content_hash().to_string(),
            source: source.to_string(),
            manifest: serde_json::to_string(&manifest).expect("manifests serialise"),
            loaded_at: loaded_at.clone(),
            withdrawn: false,
            signer: provenance.key_id(),
        })?;
        let loaded = Loaded {
            version,
            connector,
            source: source.to_string(),
            loaded_at,
            provenance,
        };
        // A file refused before and fixed since is no longer refused.
        self.refusals
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|r| r.source != source);
        let mut connectors = self.connectors.write().unwrap_or_else(|p| p.into_inner());
        let versions = connectors.entry(manifest.name.clone()).or_default();
        if let Some(replaced) = versions.iter().find(|l| {
            l.version == loaded.version
                && l.connector.content_hash() != loaded.connector.content_hash()
        }) {
            tracing::warn!(
                source,
                "{} {} was replaced by a different build of the same version (was {}); new calls use the new build",
                manifest.name,
                loaded.version,
                replaced.source
            );
        }
        versions.retain(|l| l.version != loaded.version);
        versions.push(loaded.clone());
        versions.sort_by(|a, b| a.version.cmp(&b.version));
        Ok(loaded)
    }

    /// Every loaded version, oldest first within each connector.
    pub fn loaded(&self) -> Vec<Loaded> {
        let connectors = self.connectors.read().unwrap_or_else(|p| p.into_inner());
        connectors.values().flatten().cloned().collect()
    }

    /// Every loaded version as `connectors list` and the API show it.
    pub fn listing(&self) -> Result<Vec<Listed>, StoreError> {
        let withdrawn: Vec<(String, String)> = self
            .store
            .connector_versions()?
            .into_iter()
            .filter(|v| v.withdrawn)
            .map(|v| (v.name, v.version))
            .collect();
        Ok(self
            .loaded()
            .into_iter()
            .map(|l| {
                let manifest = l.connector.manifest().clone();
                let version = l.version.to_string();
                Listed {
                    withdrawn: withdrawn.contains(&(manifest.name.clone(), version.clone())),
                    name: manifest.name.clone(),
                    version,
                    wit: format!("bss:integration@{}", l.connector.contract().version()),
                    sha256: l.connector.content_hash().to_string(),
                    source: l.source,
                    loaded_at: l.loaded_at,
                    signed_by: l.provenance.to_string(),
                    provenance: l.provenance,
                    manifest,
                }
            })
            .collect())
    }

    fn refuse(&self, source: &str, error: &RegistryError) {
        tracing::warn!(
            source,
            "refused a connector: {error}; the versions already loaded keep serving"
        );
        let mut refusals = self.refusals.write().unwrap_or_else(|p| p.into_inner());
        let by_trust = matches!(error, RegistryError::Untrusted(_));
        // Only a stopped compile waits longer each time (trying costs a compile); a store or a
        // file that did not answer is tried again after the first wait.
        let stopped = matches!(error, RegistryError::Load(LoadError::CompileStopped { .. }));
        let retry = (!by_trust && !error.is_for_content()).then(|| {
            let in_a_row = refusals
                .iter()
                .find(|r| r.source == source)
                .and_then(|r| r.retry)
                .filter(|_| stopped)
                .map_or(1, |(_, count)| count + 1);
            (std::time::Instant::now() + retry_wait(in_a_row), in_a_row)
        });
        refusals.retain(|r| r.source != source);
        refusals.push(Refusal {
            source: source.to_string(),
            reason: error.to_string(),
            at: now(),
            by_trust,
            retry,
        });
    }

    /// Forgets the refusals the trust list made, after it changed: the files (and, on a shared
    /// store, the stored components) are tried again; returns their sources.
    pub fn forget_trust_refusals(&self) -> BTreeSet<String> {
        let mut refusals = self.refusals.write().unwrap_or_else(|p| p.into_inner());
        let forgotten = refusals
            .iter()
            .filter(|r| r.by_trust)
            .map(|r| r.source.clone())
            .collect();
        refusals.retain(|r| !r.by_trust);
        forgotten
    }

    /// Connector files refused since start (the latest reason per file).
    pub fn refusals(&self) -> Vec<Refusal> {
        self.refusals
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Versions rolled back (withdrawn), as (name, version).
    fn withdrawn(&self) -> Result<Vec<(String, String)>, RegistryError> {
        Ok(self
            .store
            .connector_versions()?
            .into_iter()
            .filter(|v| v.withdrawn)
            .map(|v| (v.name, v.version))
            .collect())
    }

    /// Adds a key to the trust list: `public_key` is `ed25519:BASE64`, `connectors` the names it
    /// may sign (patterns, see `trust`). Files it signed load from the next load on.
    pub fn trust_key(
        &self,
        name: &str,
        public_key: &str,
        connectors: &str,
        actor: &str,
    ) -> Result<crate::store::trust_store::TrustedKey, RegistryError> {
        let bad = |message: String| RegistryError::BadTrust(message);
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(bad(format!(
                "NAME {name:?}: name the key with letters, digits, '-', '_' or '.' (e.g. the vendor: acme)"
            )));
        }
        let bytes =
            signature::parse_public_key(public_key).map_err(|e| bad(format!("PUBLIC-KEY: {e}")))?;
        let patterns =
            trust::Patterns::parse(connectors).map_err(|e| bad(format!("--connectors: {e}")))?;
        let key = crate::store::trust_store::TrustedKey {
            name: name.to_string(),
            public_key: signature::public_key_text(&bytes),
            key_id: signature::key_id(&bytes),
            connectors: patterns.to_string(),
            added_at: now(),
            added_by: actor.to_string(),
        };
        self.store.add_trusted_key(&key)?;
        self.audit(
            actor,
            "trust.added",
            name,
            &format!("key {} for connectors {}", key.key_id, key.connectors),
            None,
        );
        Ok(key)
    }

    /// Removes a key from the trust list: files it signed are refused from the next load on.
    /// Returns the entry and the versions recorded as signed by it, which processes that loaded
    /// them keep serving until they are rolled back or the process restarts.
    pub fn distrust_key(
        &self,
        name: &str,
        actor: &str,
    ) -> Result<(crate::store::trust_store::TrustedKey, Vec<ConnectorVersion>), RegistryError> {
        let Some(key) = self.store.remove_trusted_key(name)? else {
            return Err(RegistryError::UnknownKey(name.to_string()));
        };
        let signed: Vec<ConnectorVersion> = self
            .store
            .connector_versions()?
            .into_iter()
            .filter(|v| v.signer.as_deref() == Some(key.key_id.as_str()))
            .collect();
        let versions: Vec<String> = signed
            .iter()
            .map(|v| format!("{} {}", v.name, v.version))
            .collect();
        self.audit(
            actor,
            "trust.removed",
            name,
            &format!(
                "key {}; versions it signed, left serving where loaded until rolled back: {}",
                key.key_id,
                if versions.is_empty() {
                    "none".to_string()
                } else {
                    versions.join(", ")
                }
            ),
            None,
        );
        Ok((key, signed))
    }

    /// Rolls `name` back: withdraws its newest version in service, so instances that follow the
    /// newest version go back to the one before. Returns (withdrawn, now serving).
    pub fn rollback(&self, name: &str, actor: &str) -> Result<(Version, Version), RegistryError> {
        let current = self.resolve(name, None)?;
        let withdrawn = self.withdrawn()?;
        let previous = {
            let connectors = self.connectors.read().unwrap_or_else(|p| p.into_inner());
            connectors
                .get(name)
                .into_iter()
                .flatten()
                .rev()
                .filter(|l| l.version < current.version)
                .find(|l| !withdrawn.contains(&(name.to_string(), l.version.to_string())))
                .map(|l| l.version.clone())
        };
        let previous = previous.ok_or_else(|| RegistryError::NoMatchingVersion {
            name: name.to_string(),
            requirement: format!("<{}", current.version),
            installed: current.version.to_string(),
        })?;
        self.store
            .set_withdrawn(name, &current.version.to_string(), true)?;
        tracing::info!(
            connector = name,
            "rolled back from {} to {previous}",
            current.version
        );
        self.audit(
            actor,
            "connector.rolled-back",
            &format!("{name} {}", current.version),
            &format!("instances that follow the newest version now use {previous}"),
            None,
        );
        Ok((current.version, previous))
    }

    /// Puts a withdrawn version back in service.
    pub fn restore(&self, name: &str, version: &str, actor: &str) -> Result<(), RegistryError> {
        self.resolve(name, Some(&format!("={version}")))?;
        self.store.set_withdrawn(name, version, false)?;
        self.audit(
            actor,
            "connector.restored",
            &format!("{name} {version}"),
            "back in service",
            None,
        );
        Ok(())
    }

    /// The newest loaded version of `name` that meets `requirement` (any, when none) and was not
    /// rolled back; a requirement pinning exactly one version still gets it.
    pub fn resolve(&self, name: &str, requirement: Option<&str>) -> Result<Loaded, RegistryError> {
        let exact = requirement
            .map(str::trim)
            .and_then(|r| r.strip_prefix('='))
            .map(|r| r.trim().to_string());
        let requirement = requirement.map(parse_requirement).transpose()?;
        let withdrawn = self.withdrawn()?;
        let connectors = self.connectors.read().unwrap_or_else(|p| p.into_inner());
        let versions = connectors
            .get(name)
            .ok_or_else(|| RegistryError::Unknown(name.to_string()))?;
        versions
            .iter()
            .rev()
            .filter(|l| {
                let version = l.version.to_string();
                exact.as_deref() == Some(version.as_str())
                    || !withdrawn.contains(&(name.to_string(), version))
            })
            .find(|l| requirement.as_ref().is_none_or(|r| r.matches(&l.version)))
            .cloned()
            .ok_or_else(|| RegistryError::NoMatchingVersion {
                name: name.to_string(),
                requirement: requirement.map(|r| r.to_string()).unwrap_or_default(),
                installed: versions
                    .iter()
                    .map(|l| l.version.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// How often a worker looks for components other workers stored, besides being told.
pub const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Loads the components other workers of a shared store install, as they are stored (the
/// store's notification) and every [`FOLLOW_EVERY`] (a notification lost while reconnecting).
/// Rollbacks and restores need nothing here: they are in the store, which every call reads.
pub fn follow_store(registry: Arc<Registry>) -> Option<tokio::task::JoinHandle<()>> {
    let woken = registry.store.component_wakeup()?;
    Some(tokio::spawn(async move {
        loop {
            for problem in registry.load_shared().await {
                tracing::warn!(
                    source = problem.source,
                    "a connector from the store was not loaded: {}",
                    problem.error
                );
            }
            tokio::select! {
                _ = woken.notified() => {}
                _ = tokio::time::sleep(FOLLOW_EVERY) => {}
            }
        }
    }))
}
