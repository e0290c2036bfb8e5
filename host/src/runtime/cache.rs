//! The compiled-code cache on disk: one file per component, named by the SHA-256 of the component's
//! bytes and a hash of the engine's compilation settings, so a restart loads native code instead of
//! compiling, and a changed engine (version, flags, CPU features) never loads stale code.
//!
//! Loading a cached artifact trusts the file (wasmtime maps it as native code), so the cache folder
//! must be the host's own (under the data folder), never a place connectors or users write. A file
//! that fails to load is removed and the component is compiled again. Writes go to a temporary file
//! first and are renamed into place, so a crash never leaves half an artifact.

use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Feeds `Hash` output into SHA-256, which (unlike `DefaultHasher`) is stable across Rust releases.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        unreachable!("only the digest is used")
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The SHA-256 of a component's bytes, in hex: its content hash.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
}

impl CompileCache {
    pub fn new(dir: &Path, engine: &Engine) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..8]);
        Ok(CompileCache {
            dir: dir.to_path_buf(),
            engine_key,
        })
    }

    /// Where the compilation of the component with this content hash is kept.
    pub fn path(&self, content_hash: &str) -> PathBuf {
        self.dir
            .join(format!("{content_hash}-{}.cwasm", self.engine_key))
    }

    /// The cached compilation of the component with this content hash, if present and loadable.
    pub fn load(&self, engine: &Engine, content_hash: &str) -> Option<Component> {
        let path = self.path(content_hash);
        if !path.exists() {
            return None;
        }
        // SAFETY: the cache folder belongs to the host and holds only what `store` wrote with an
        // engine of the same compatibility hash (part of the file name).
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), "discarding a compiled-code cache entry that does not load: {error}");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Saves a compiled component under its content hash.
    pub fn store(&self, content_hash: &str, component: &Component) -> io::Result<()> {
        let bytes = component.serialize().map_err(io::Error::other)?;
        let path = self.path(content_hash);
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let unique = WRITES.fetch_add(1, Ordering::Relaxed);
        let temporary = path.with_extension(format!("tmp-{}-{unique}", std::process::id()));
        std::fs::write(&temporary, bytes)?;
        std::fs::rename(&temporary, &path)
    }

    /// Removes every compiled component but those in `keep` (content hashes), every file of
    /// another engine build, and temporary files left for over an hour (a crashed write).
    pub fn prune(&self, keep: &std::collections::BTreeSet<String>) -> io::Result<Pruned> {
        let mut pruned = Pruned::default();
        let stale = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let wanted = match name.strip_suffix(".cwasm") {
                Some(stem) => match stem.rsplit_once('-') {
                    Some((hash, engine)) => engine == self.engine_key && keep.contains(hash),
                    None => false,
                },
                // Temporary files: a write in progress, unless it is old.
                None if name.contains(".tmp-") || name.contains(".compiling-") => {
                    meta.modified().map(|m| m > stale).unwrap_or(true)
                }
                // Not compiled code (the plugins index, …).
                None => true,
            };
            if wanted {
                pruned.kept += 1;
                pruned.kept_bytes += meta.len();
            } else if std::fs::remove_file(entry.path()).is_ok() {
                pruned.removed += 1;
                pruned.removed_bytes += meta.len();
            }
        }
        Ok(pruned)
    }
}

/// What a prune of the compiled-code cache did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Pruned {
    pub removed: u64,
    pub removed_bytes: u64,
    pub kept: u64,
    pub kept_bytes: u64,
}
