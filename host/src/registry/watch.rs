//! The plugins folder watched while `serve` runs: a `.wasm` that is complete is loaded (compiled,
//! instantiated, its manifest checked) and then serves new calls; calls already running finish on
//! the version they started with, since each holds its own handle to it. A file that fails is
//! refused with its reason, and what was serving keeps serving.
//!
//! | how the file arrives | when it is loaded |
//! |---|---|
//! | written elsewhere, renamed into the folder (the recommended install) | at the rename (notified) |
//! | copied or written in place, then closed | when its writer closes it (notified) |
//! | anything the notifications miss (a hard link, a network file system, no inotify) | once it has held still for one rescan interval |
//!
//! File-system notifications come from the `notify` crate (inotify on Linux); a rescan of the
//! folder every `every` catches what they miss, and is all there is where they cannot be had.
//! When the trust list changes, the files refused by it are tried again (a key just trusted admits
//! what it signed without touching the files).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher as _};

use super::Registry;

/// How often the folder is rescanned for what notifications missed (and the trust list read). A
/// changed file found by a rescan is loaded once it has held still for one more interval. Listing
/// a folder of a few files this often costs nothing measurable.
pub const WATCH_EVERY: Duration = Duration::from_millis(250);

/// What identifies a version of a file without reading it: size, modification and change times,
/// inode (a `chmod` or a rename into place changes it even when size and times are kept).
type Stamp = super::plugin_index::Stamp;

fn stamp_of(path: &Path) -> Option<Stamp> {
    super::plugin_index::stamp(path)
}

fn is_plugin(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "wasm")
}

/// The plugin files whose stamp differs from what was seen.
fn changed(plugins: &Path, seen: &BTreeMap<PathBuf, Stamp>) -> Vec<(PathBuf, Stamp)> {
    let Ok(entries) = std::fs::read_dir(plugins) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| is_plugin(p))
        .filter_map(|p| {
            let stamp = stamp_of(&p)?;
            (seen.get(&p) != Some(&stamp)).then_some((p, stamp))
        })
        .collect()
}

/// An event that says a file is complete: closed after writing, or renamed into place.
fn completes_a_file(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
    )
}

/// The paths of files completed in one folder, as notifications tell them; keep the watcher.
pub(crate) type Completed = (
    notify::RecommendedWatcher,
    tokio::sync::mpsc::UnboundedReceiver<PathBuf>,
);

/// Starts notifications for `folder`, handing the paths of completed files that `wanted` picks
/// to the channel; none (with a warning) where the platform or the folder cannot give them, and
/// the caller's rescan then does all.
pub(crate) fn notifications(
    folder: &Path,
    wanted: impl Fn(&Path) -> bool + Send + 'static,
) -> Option<Completed> {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    // Paths as the caller names the folder (notify makes a relative one absolute), so a file
    // has one name whether an event or a rescan finds it.
    let named = folder.to_path_buf();
    let handler = move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && completes_a_file(&event.kind)
        {
            for path in event.paths {
                let Some(name) = path.file_name() else {
                    continue;
                };
                let path = named.join(name);
                if wanted(&path) {
                    let _ = sender.send(path);
                }
            }
        }
    };
    let started = notify::recommended_watcher(handler).and_then(|mut watcher| {
        watcher.watch(folder, RecursiveMode::NonRecursive)?;
        Ok(watcher)
    });
    match started {
        Ok(watcher) => Some((watcher, receiver)),
        Err(error) => {
            tracing::warn!(
                folder = %folder.display(),
                "no file-system notifications for this folder ({error}); it is rescanned every {} ms instead",
                WATCH_EVERY.as_millis()
            );
            None
        }
    }
}

/// The next completed path, or never when there are no notifications.
pub(crate) async fn next_completed(completed: &mut Option<Completed>) -> Option<PathBuf> {
    match completed.as_mut() {
        Some((_, receiver)) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// Loads one file for the watcher: logs what happened, prunes the compiled code of a replaced
/// build. When it failed for a passing reason (unreadable, a store failure, a compile that was
/// stopped), how long to wait before trying it again ([`super::retry_wait`], through the
/// registry's refusal); none when it loaded or was refused for what it is.
async fn load(registry: &Registry, plugins: &Path, path: &Path) -> Option<Duration> {
    match registry.load_file(path).await {
        Ok(loaded) => {
            tracing::info!(
                file = %path.display(),
                "loaded connector {} {}; new calls use it",
                loaded.connector.manifest().name,
                loaded.version
            );
            // A replaced file's old build can no longer be loaded: its compiled code goes (the
            // version keeps serving from what is mapped).
            if let Err(error) = registry.prune_compiled(plugins) {
                tracing::warn!("the compiled-code cache was not pruned: {error}");
            }
            None
        }
        Err(error) => {
            let source = path.display().to_string();
            registry.refuse(&source, &error);
            let now = Instant::now();
            registry
                .refusals()
                .iter()
                .find(|r| r.source == source)
                .and_then(|r| r.retry)
                .map(|(at, _)| at.saturating_duration_since(now))
        }
    }
}

/// Watches the plugins folder (see the module's table); `every` is the rescan interval.
pub fn watch(
    registry: Arc<Registry>,
    plugins: PathBuf,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    // Started before the first look, so nothing completed in between is missed.
    let mut notified = notifications(&plugins, is_plugin);
    // A file the registry already has, as it is now, needs nothing; anything else in the folder
    // (dropped or replaced after `load_all` read it, before this first look) is loaded like a new
    // drop. Assuming "what is there was loaded" lost such a file for good.
    let already_known = |path: &Path| -> bool {
        let source = path.display().to_string();
        let Ok(bytes) = std::fs::read(path) else {
            return false;
        };
        let hash = crate::runtime::cache::content_hash(&bytes);
        registry
            .loaded()
            .iter()
            .any(|l| l.source == source && l.connector.content_hash() == hash)
            || registry.refusals().iter().any(|r| r.source == source)
    };
    let mut seen: BTreeMap<PathBuf, Stamp> = changed(&plugins, &BTreeMap::new())
        .into_iter()
        .filter(|(path, _)| already_known(path))
        .collect();
    let trusted = |registry: &Registry| registry.store.trusted_keys().ok();
    let mut trust = trusted(&registry);
    tokio::spawn(async move {
        // Files that failed for a passing reason, and when to try them again.
        let mut retry: BTreeMap<PathBuf, Instant> = BTreeMap::new();
        // Files a rescan found changed, as it found them: loaded at the next one if unchanged.
        let mut pending: BTreeMap<PathBuf, Stamp> = BTreeMap::new();
        let mut rescan = tokio::time::interval(every);
        rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                completed = next_completed(&mut notified) => {
                    let Some(path) = completed else {
                        tracing::warn!(
                            folder = %plugins.display(),
                            "file-system notifications for the plugins folder ended; it is rescanned every {} ms instead",
                            every.as_millis()
                        );
                        notified = None;
                        continue;
                    };
                    // Complete now: loaded at once, unless this build was loaded already (a
                    // rename is told twice, and a rescan may have been first).
                    let Some(stamp) = stamp_of(&path) else { continue };
                    if seen.get(&path) == Some(&stamp) {
                        continue;
                    }
                    seen.insert(path.clone(), stamp);
                    if let Some(wait) = load(&registry, &plugins, &path).await {
                        retry.insert(path, Instant::now() + wait);
                    }
                }
                _ = rescan.tick() => {
                    // A trust list change may admit a file refused before, unchanged since.
                    let now_trusted = trusted(&registry);
                    if now_trusted.is_some() && now_trusted != trust {
                        trust = now_trusted;
                        let refused = registry.forget_trust_refusals();
                        seen.retain(|path, _| !refused.contains(&path.display().to_string()));
                    }
                    let now = Instant::now();
                    retry.retain(|path, at| {
                        let due = *at <= now || !path.exists();
                        if due {
                            seen.remove(path);
                        }
                        !due
                    });
                    seen.retain(|path, _| path.exists());
                    // Found by a rescan, a file may still be being written: it is loaded at the
                    // next rescan if it has held still since. Nothing here waits, so a
                    // notification meanwhile is served at once (a wait here once held a
                    // notified swap up for a whole interval).
                    let mut held_still = Vec::new();
                    let mut found_now = BTreeMap::new();
                    for (path, stamp) in changed(&plugins, &seen) {
                        if pending.get(&path) == Some(&stamp) {
                            held_still.push((path, stamp));
                        } else {
                            found_now.insert(path, stamp);
                        }
                    }
                    pending = found_now;
                    for (path, stamp) in held_still {
                        seen.insert(path.clone(), stamp);
                        if let Some(wait) = load(&registry, &plugins, &path).await {
                            retry.insert(path, Instant::now() + wait);
                        }
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    /// The next path notified within two seconds, if any.
    async fn next(completed: &mut Option<Completed>) -> Option<PathBuf> {
        tokio::time::timeout(Duration::from_secs(2), next_completed(completed))
            .await
            .ok()
            .flatten()
    }

    #[tokio::test]
    async fn a_file_is_notified_when_closed_after_writing_or_renamed_in_and_not_before() {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        let mut completed = notifications(&plugins, is_plugin);
        assert!(completed.is_some(), "inotify is there on Linux");

        // Written in place: nothing while the writer holds it open, the path once it closes.
        let in_place = plugins.join("in-place.wasm");
        let mut writer = std::fs::File::create(&in_place).unwrap();
        writer.write_all(b"half of a component").unwrap();
        assert_eq!(
            tokio::time::timeout(Duration::from_millis(300), next_completed(&mut completed))
                .await
                .ok(),
            None,
            "a file still open for writing was announced"
        );
        writer.write_all(b" and the rest").unwrap();
        drop(writer);
        assert_eq!(next(&mut completed).await, Some(in_place));

        // Written elsewhere and renamed in: the path at the rename.
        let elsewhere = dir.path().join("built.wasm");
        std::fs::write(&elsewhere, b"a component").unwrap();
        let renamed = plugins.join("renamed.wasm");
        std::fs::rename(&elsewhere, &renamed).unwrap();
        assert_eq!(next(&mut completed).await, Some(renamed));

        // Not a plugin: not announced (the next announcement is the plugin after it).
        std::fs::write(plugins.join("notes.txt"), b"not a plugin").unwrap();
        let after = plugins.join("after.wasm");
        std::fs::write(&after, b"x").unwrap();
        assert_eq!(next(&mut completed).await, Some(after));
    }

    #[tokio::test]
    async fn a_relative_folder_is_announced_under_the_name_the_caller_gave() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        // Relative to the test process's working folder, which the tests do not change.
        let cwd = std::env::current_dir().unwrap();
        let relative: PathBuf = pathdiff(dir.path(), &cwd).join("plugins");
        assert!(relative.is_relative());
        let mut completed = notifications(&relative, is_plugin);
        std::fs::write(relative.join("one.wasm"), b"x").unwrap();
        assert_eq!(
            next(&mut completed).await,
            Some(relative.join("one.wasm")),
            "the rescan names it so: one file, one name"
        );
    }

    /// `to` as a path relative to `from` (both absolute).
    fn pathdiff(to: &Path, from: &Path) -> PathBuf {
        let (to, from): (Vec<_>, Vec<_>) = (to.components().collect(), from.components().collect());
        let common = to.iter().zip(&from).take_while(|(a, b)| a == b).count();
        let mut relative = PathBuf::new();
        for _ in common..from.len() {
            relative.push("..");
        }
        for part in &to[common..] {
            relative.push(part);
        }
        relative
    }

    #[test]
    fn a_load_that_keeps_failing_waits_longer_each_time_up_to_an_hour() {
        let waits: Vec<u64> = (1..=9)
            .map(|n| super::super::retry_wait(n).as_secs())
            .collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(super::super::retry_wait(u32::MAX).as_secs(), 3600);
    }

    #[test]
    fn only_a_close_after_writing_or_a_rename_into_place_completes_a_file() {
        assert!(completes_a_file(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(completes_a_file(&EventKind::Modify(ModifyKind::Name(
            RenameMode::To
        ))));
        assert!(!completes_a_file(&EventKind::Create(
            notify::event::CreateKind::File
        )));
        assert!(!completes_a_file(&EventKind::Modify(ModifyKind::Data(
            notify::event::DataChange::Any
        ))));
        assert!(!completes_a_file(&EventKind::Modify(ModifyKind::Name(
            RenameMode::From
        ))));
    }
}
