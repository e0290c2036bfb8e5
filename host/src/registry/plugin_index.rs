//! What each `.wasm` of the plugins folder held when this data folder last read it: its size and
//! modification time, its content hash and the connector it is (none when it was refused).
//!
//! With it, a command that touches one connector skips the files known to hold others without
//! reading them (a 19 MB Python connector costs every unrelated command its read, hash and map
//! otherwise), and `cache prune` learns which compiled code is still wanted without hashing
//! unchanged files. It lives in the data folder's cache folder, which only the host writes, and
//! is rewritten whole (a temporary file renamed into place). It is only a shortcut: a missing,
//! unreadable or stale entry means the file is read again, never that it is trusted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The index's file name in the cache folder.
pub const FILE_NAME: &str = "plugins-index.json";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginIndex {
    files: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    len: u64,
    modified_ns: u128,
    /// The SHA-256 of the file's bytes.
    pub hash: String,
    /// The connector's name, or none when the file was refused.
    pub connector: Option<String>,
}

/// A file's size and modification time: when both are as recorded, the entry holds.
fn stamp(file: &Path) -> Option<(u64, u128)> {
    let meta = std::fs::metadata(file).ok()?;
    let modified = meta.modified().ok()?;
    let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some((meta.len(), since.as_nanos()))
}

fn key(file: &Path) -> String {
    file.display().to_string()
}

impl PluginIndex {
    /// The index at `path`; empty when there is none or it cannot be read.
    pub fn read(path: &Path) -> PluginIndex {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Writes the index to `path` (a temporary file renamed into place).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
        std::fs::write(
            &temporary,
            serde_json::to_vec(self).expect("the index serialises"),
        )?;
        std::fs::rename(&temporary, path)
    }

    /// What `file` held when it was last read, if it has not changed since.
    pub fn known(&self, file: &Path) -> Option<&Entry> {
        let entry = self.files.get(&key(file))?;
        let (len, modified_ns) = stamp(file)?;
        (entry.len == len && entry.modified_ns == modified_ns).then_some(entry)
    }

    /// Records what `file` holds now (its stamp read now: a file changed after its bytes were read
    /// gets a newer stamp later and is read again).
    pub fn record(&mut self, file: &Path, hash: &str, connector: Option<&str>) {
        if let Some((len, modified_ns)) = stamp(file) {
            self.files.insert(
                key(file),
                Entry {
                    len,
                    modified_ns,
                    hash: hash.to_string(),
                    connector: connector.map(str::to_string),
                },
            );
        }
    }

    /// Drops the entries of files that are no longer in `files`.
    pub fn keep_only(&mut self, files: &[PathBuf]) {
        let present: std::collections::BTreeSet<String> = files.iter().map(|f| key(f)).collect();
        self.files.retain(|file, _| present.contains(file));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_holds_until_its_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.wasm");
        std::fs::write(&file, b"one").unwrap();
        let mut index = PluginIndex::default();
        index.record(&file, "h1", Some("alpha"));
        let path = dir.path().join(FILE_NAME);
        index.write(&path).unwrap();
        let read = PluginIndex::read(&path);
        assert_eq!(
            read.known(&file).unwrap().connector.as_deref(),
            Some("alpha")
        );
        std::fs::write(&file, b"three").unwrap();
        assert!(
            read.known(&file).is_none(),
            "a changed size is a changed file"
        );
        std::fs::write(path.as_path(), b"not json").unwrap();
        assert_eq!(PluginIndex::read(&path), PluginIndex::default());
    }
}
