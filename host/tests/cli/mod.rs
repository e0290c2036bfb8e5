//! Test support: a data folder and a plugins folder of their own, and the real `bss-host` binary
//! run on them, for tests that drive the command line.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_bss-host");

/// A temporary data folder (`data`) with its plugins folder (`plugins`), removed when dropped.
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
    pub fn plugin(&self, wasm: &str, name: &str) {
        std::fs::copy(wasm, self.plugins.join(name)).unwrap();
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--data")
            .arg(&self.data)
            .arg("--plugins")
            .arg(&self.plugins)
            .args(args)
            .env("BSS_HOST_LOG", "warn")
            .env_remove("BSS_HOST_KEY")
            .output()
            .unwrap()
    }

    /// Standard output of a command that must succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "bss-host {args:?} failed:\n{}",
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Standard output and error of a command that must succeed.
    pub fn ok_all(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "bss-host {args:?} failed:\n{}",
            text(&out)
        );
        text(&out)
    }
}

/// Standard output, then standard error.
pub fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
