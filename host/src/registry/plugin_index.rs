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
    /// The host build that wrote it: another build may judge a file differently (a file an older
    /// build refused may load now), so its entries are not used.
    build: String,
    files: BTreeMap<String, Entry>,
}

/// What tells a file's versions apart without reading it: size, modification and change times,
/// and inode (a file replaced by a rename has another inode, even with the same size and time).
pub type Stamp = (u64, u128, u64, i64, i64);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    stamp: Stamp,
    /// The SHA-256 of the file's bytes.
    pub hash: String,
    /// The connector's name, or none when the file was refused.
    pub connector: Option<String>,
}

/// A file's stamp now (none when it cannot be read).
pub fn stamp(file: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(file).ok()?;
    let modified = meta.modified().ok()?;
    let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some((
        meta.len(),
        since.as_nanos(),
        meta.ino(),
        meta.ctime(),
        meta.ctime_nsec(),
    ))
}

fn key(file: &Path) -> String {
    file.display().to_string()
}

impl PluginIndex {
    /// The index at `path` as `build` wrote it; empty when there is none, it cannot be read, or
    /// another build wrote it.
    pub fn read(path: &Path, build: &str) -> PluginIndex {
        let index: PluginIndex = std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        if index.build == build {
            index
        } else {
            PluginIndex {
                build: build.to_string(),
                files: BTreeMap::new(),
            }
        }
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
        (stamp(file)? == entry.stamp).then_some(entry)
    }

    /// Records what `file` held when its bytes were read, `before` being its stamp then; nothing
    /// when the file changed since (it is read again next time).
    pub fn record(&mut self, file: &Path, before: Stamp, hash: &str, connector: Option<&str>) {
        if stamp(file) != Some(before) {
            self.files.remove(&key(file));
            return;
        }
        self.files.insert(
            key(file),
            Entry {
                stamp: before,
                hash: hash.to_string(),
                connector: connector.map(str::to_string),
            },
        );
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
        let mut index = PluginIndex::read(&dir.path().join("none"), "build-1");
        index.record(&file, stamp(&file).unwrap(), "h1", Some("alpha"));
        let path = dir.path().join(FILE_NAME);
        index.write(&path).unwrap();
        let read = PluginIndex::read(&path, "build-1");
        assert_eq!(
            read.known(&file).unwrap().connector.as_deref(),
            Some("alpha")
        );
        assert!(
            PluginIndex::read(&path, "build-2").known(&file).is_none(),
            "another build's entries are not used"
        );
        // Replaced by a rename, same size: another inode.
        let other = dir.path().join("b.wasm");
        std::fs::write(&other, b"two").unwrap();
        std::fs::rename(&other, &file).unwrap();
        assert!(
            read.known(&file).is_none(),
            "a replaced file is a changed file"
        );
        // A file that changed while it was read is not recorded.
        let before = stamp(&file).unwrap();
        std::fs::write(&file, b"three").unwrap();
        let mut index = read.clone();
        index.record(&file, before, "h2", Some("beta"));
        assert!(index.known(&file).is_none());
        std::fs::write(path.as_path(), b"not json").unwrap();
        assert!(PluginIndex::read(&path, "build-1").known(&file).is_none());
    }
}
