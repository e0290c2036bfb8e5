//! Test support for tests that drive the command line: the real `bss-host` binary run on a data
//! folder (and a plugins folder of its own where a test installs connectors), with the log filter
//! and extra environment a test file chooses through a [`Host`]; a temporary [`Folder`] holding
//! both; and what a run left in the data folder (the id map, the database's bytes). The binary never
//! sees the developer's `BSS_HOST_KEY`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_bss-host");

/// How the binary is run: its plugins folder, log filter and further environment. Test files that
/// need something other than [`HOST`] keep a `const` of their own, e.g.
/// `Host { log: "trace", ..HOST }`.
#[derive(Clone, Copy, Debug)]
pub struct Host<'a> {
    /// `--plugins`, or none (the data folder's own).
    pub plugins: Option<&'a Path>,
    /// `BSS_HOST_LOG`.
    pub log: &'a str,
    /// Further environment variables.
    pub env: &'a [(&'a str, &'a str)],
    /// Only signed connectors load (the host's default); tests of other things install unsigned
    /// fixtures, so the binary runs with `BSS_HOST_ALLOW_UNSIGNED=1` unless this is set.
    pub signed_only: bool,
}

/// The data folder's own plugins, warnings only, nothing more in the environment.
pub const HOST: Host<'static> = Host {
    plugins: None,
    log: "warn",
    env: &[],
    signed_only: false,
};

impl<'a> Host<'a> {
    pub fn plugins(self, plugins: &'a Path) -> Host<'a> {
        Host {
            plugins: Some(plugins),
            ..self
        }
    }

    pub fn log(self, log: &'a str) -> Host<'a> {
        Host { log, ..self }
    }

    /// As the host runs by default: unsigned connectors are refused.
    pub fn signed_only(self) -> Host<'a> {
        Host {
            signed_only: true,
            ..self
        }
    }

    /// The command line `bss-host --data <data> [--plugins <plugins>] <args>`, not yet run.
    pub fn command(self, data: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command.arg("--data").arg(data);
        if let Some(plugins) = self.plugins {
            command.arg("--plugins").arg(plugins);
        }
        command
            .args(args)
            .env_remove("BSS_HOST_KEY")
            .env("BSS_HOST_LOG", self.log)
            .envs(self.env.iter().copied());
        if self.signed_only {
            command.env_remove("BSS_HOST_ALLOW_UNSIGNED");
        } else {
            command.env("BSS_HOST_ALLOW_UNSIGNED", "1");
        }
        command
    }

    pub fn run(self, data: &Path, args: &[&str]) -> Output {
        self.command(data, args).output().expect("bss-host runs")
    }

    /// The output of a command that must succeed (its output is shown if it does not).
    pub fn succeeds(self, data: &Path, args: &[&str]) -> Output {
        let out = self.run(data, args);
        assert!(
            out.status.success(),
            "bss-host {args:?} failed:\n{}",
            text(&out)
        );
        out
    }

    /// Standard output of a command that must succeed.
    pub fn ok(self, data: &Path, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.succeeds(data, args).stdout).to_string()
    }

    /// Standard error of a command that must fail.
    pub fn fails(self, data: &Path, args: &[&str]) -> String {
        let out = self.run(data, args);
        assert!(!out.status.success(), "bss-host {args:?} should fail");
        String::from_utf8_lossy(&out.stderr).to_string()
    }
}

/// [`Host::command`] with [`HOST`].
pub fn command(data: &Path, args: &[&str]) -> Command {
    HOST.command(data, args)
}

/// [`Host::run`] with [`HOST`].
pub fn run(data: &Path, args: &[&str]) -> Output {
    HOST.run(data, args)
}

/// [`Host::succeeds`] with [`HOST`].
pub fn succeeds(data: &Path, args: &[&str]) -> Output {
    HOST.succeeds(data, args)
}

/// [`Host::ok`] with [`HOST`].
pub fn ok(data: &Path, args: &[&str]) -> String {
    HOST.ok(data, args)
}

/// [`Host::fails`] with [`HOST`].
pub fn fails(data: &Path, args: &[&str]) -> String {
    HOST.fails(data, args)
}

/// Standard output, then standard error.
pub fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a blocking command off the async workers, so servers in this process (the sandbox, a
/// loopback remote) keep answering while the binary talks to them.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// A temporary data folder (`data`) with its plugins folder (`plugins`), removed when dropped; the
/// binary run on it with [`HOST`]'s log filter.
pub struct Folder {
    _dir: tempfile::TempDir,
    pub data: PathBuf,
    pub plugins: PathBuf,
}

impl Folder {
    pub fn new() -> Folder {
        let dir = tempfile::tempdir().unwrap();
        let (data, plugins) = (dir.path().join("data"), dir.path().join("plugins"));
        std::fs::create_dir_all(&plugins).unwrap();
        Folder {
            _dir: dir,
            data,
            plugins,
        }
    }

    /// Copies a connector component into the plugins folder as `name`.
    pub fn plugin(&self, wasm: impl AsRef<Path>, name: &str) {
        std::fs::copy(wasm, self.plugins.join(name)).unwrap();
    }

    /// [`HOST`] with this folder's plugins (to change the log filter, say).
    pub fn host(&self) -> Host<'_> {
        HOST.plugins(&self.plugins)
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.host().run(&self.data, args)
    }

    /// Standard output of a command that must succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        self.host().ok(&self.data, args)
    }

    /// Standard output and error of a command that must succeed.
    pub fn ok_all(&self, args: &[&str]) -> String {
        text(&self.host().succeeds(&self.data, args))
    }

    /// Standard error of a command that must fail.
    pub fn fails(&self, args: &[&str]) -> String {
        self.host().fails(&self.data, args)
    }
}

/// The id map's rows for `entity` in the data folder's database: BSS id, remote id, and whether
/// the create is still pending; by BSS id.
pub fn id_map(data: &Path, entity: &str) -> Vec<(String, Option<String>, bool)> {
    let connection = rusqlite::Connection::open(data.join("bss.db")).unwrap();
    let mut statement = connection
        .prepare("SELECT bss_id, remote_id, pending FROM id_map WHERE entity = ?1 ORDER BY bss_id")
        .unwrap();
    statement
        .query_map([entity], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Every file of the data folder's database (the main file and its write-ahead log) as bytes, to
/// search for what must never be stored in the clear.
pub fn database_bytes(data: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for name in ["bss.db", "bss.db-wal"] {
        if let Ok(b) = std::fs::read(data.join(name)) {
            bytes.extend(b);
        }
    }
    bytes
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The import names of a `connectors check --json` report, sorted.
pub fn import_names(report: &serde_json::Value) -> Vec<&str> {
    let mut imports: Vec<&str> = report["imports"]
        .as_array()
        .expect("the report lists imports")
        .iter()
        .map(|i| i["name"].as_str().expect("an import has a name"))
        .collect();
    imports.sort();
    imports
}
