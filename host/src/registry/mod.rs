//! The connector registry: which connector versions exist and which one serves an instance.
//!
//! Connectors come from two places: those bundled in the host (ConnectWise, `connectwise`) and the
//! `.wasm` files in the plugins folder. Each is compiled (or loaded from the compile cache),
//! instantiated and its manifest validated before it is listed; one that fails is reported with
//! its reason and skipped, and the others load. Loaded versions are recorded in the store. An
//! instance is served by the newest loaded version that meets its version requirement.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use semver::{Version, VersionReq};

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
}

/// One loaded version of a connector.
#[derive(Clone)]
pub struct Loaded {
    pub version: Version,
    pub connector: Connector,
    pub source: String,
}

pub struct Registry {
    runtime: Runtime,
    store: Arc<dyn Store>,
    connectors: RwLock<BTreeMap<String, Vec<Loaded>>>,
}

fn now() -> String {
    crate::time::now_rfc3339()
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
        }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Loads the bundled connectors and every `.wasm` in `plugins`; returns what failed to load.
    pub async fn load_all(&self, plugins: &Path) -> Result<Vec<LoadProblem>, RegistryError> {
        let mut problems = Vec::new();
        if let Err(error) = self.load_bytes(BUNDLED_CONNECTWISE, "bundled").await {
            problems.push(LoadProblem {
                source: "bundled connectwise".into(),
                error: error.to_string(),
            });
        }
        if plugins.is_dir() {
            let entries = std::fs::read_dir(plugins).map_err(|e| RegistryError::PluginsFolder {
                path: plugins.to_path_buf(),
                reason: e.to_string(),
            })?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                .collect();
            files.sort();
            for file in files {
                if let Err(error) = self.load_file(&file).await {
                    tracing::warn!(file = %file.display(), "refused a connector: {error}");
                    problems.push(LoadProblem {
                        source: file.display().to_string(),
                        error: error.to_string(),
                    });
                }
            }
        }
        Ok(problems)
    }

    pub async fn load_file(&self, path: &Path) -> Result<Loaded, RegistryError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.load_bytes(&bytes, &path.display().to_string()).await
    }

    /// Loads one component, records it, and makes it available.
    pub async fn load_bytes(&self, bytes: &[u8], source: &str) -> Result<Loaded, RegistryError> {
        let connector = self.runtime.load(bytes, source).await?;
        let manifest = connector.manifest().clone();
        let version = Version::parse(&manifest.version).map_err(|e| {
            RegistryError::Load(LoadError::Manifest {
                origin: source.to_string(),
                source: crate::runtime::manifest::ManifestError {
                    problems: vec![format!("version {:?}: {e}", manifest.version)],
                },
            })
        })?;
        self.store.record_connector_version(&ConnectorVersion {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            content_hash: connector.content_hash().to_string(),
            source: source.to_string(),
            manifest: serde_json::to_string(&manifest).expect("manifests serialise"),
            loaded_at: now(),
        })?;
        let loaded = Loaded {
            version,
            connector,
            source: source.to_string(),
        };
        let mut connectors = self.connectors.write().unwrap_or_else(|p| p.into_inner());
        let versions = connectors.entry(manifest.name.clone()).or_default();
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

    /// The newest loaded version of `name` that meets `requirement` (any, when none).
    pub fn resolve(&self, name: &str, requirement: Option<&str>) -> Result<Loaded, RegistryError> {
        let requirement = requirement.map(parse_requirement).transpose()?;
        let connectors = self.connectors.read().unwrap_or_else(|p| p.into_inner());
        let versions = connectors
            .get(name)
            .ok_or_else(|| RegistryError::Unknown(name.to_string()))?;
        versions
            .iter()
            .rev()
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
