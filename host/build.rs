//! Builds the guest components (the bundled ConnectWise connector, the test fixture and its
//! frozen-contract build) for wasm32-wasip2, so that a plain `cargo build` or `cargo test` on a
//! fresh clone produces them. The fixture's other variants are built by the tests that use them.
//!
//! The guests are built by a nested cargo with its own target directory (`target/guests`): sharing
//! the outer build's directory would wait forever on its lock. That nested build is shared with the
//! tests' fixture variants, in `tests/common/guest_build.rs`. rustup installs the wasm target only
//! when it installs a toolchain, so a missing target is added here first.

#[path = "tests/common/guest_build.rs"]
mod guest_build;

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use guest_build::{TARGET, artifact};

/// (package, artifact stem, environment variable the host reads the path from)
const GUESTS: &[(&str, &str, &str)] = &[
    (
        "plugin-connectwise",
        "plugin_connectwise",
        "BSS_CONNECTWISE_WASM",
    ),
    ("bss-fixture", "bss_fixture", "BSS_FIXTURE_WASM"),
];
/// The one variant of the fixture built here, the frozen-contract build: (environment variable the
/// host reads the path from, build environment, features of `bss-fixture`). The other variants are
/// test fixtures built on first use by `host/tests/common/fixture_variants.rs`; this one stays
/// because a unit test of the runtime's private types
/// (`runtime::tests::exports_of_the_wrong_minor_are_refused_at_load`) loads it, and unit tests get
/// no `CARGO_TARGET_TMPDIR` to build it from. The integration tests read it through the same helper.
const LEGACY_FIXTURE: (&str, &[(&str, &str)], &[&str]) = (
    "BSS_FIXTURE_LEGACY_WASM",
    &[("FIXTURE_NAME", "legacy-fixture")],
    &["contract-1-0"],
);

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ lives inside the workspace")
        .to_path_buf();
    for watched in [
        "wit",
        "plugin-connectwise/src",
        "plugin-connectwise/Cargo.toml",
        "tests/fixtures/guest/src",
        "tests/fixtures/guest/Cargo.toml",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }

    let targets = match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace.join("target"),
    };
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    ensure_wasm_target(&rustc);

    let packages: Vec<&str> = GUESTS.iter().map(|(package, _, _)| *package).collect();
    let guests = targets.join("guests");
    let build = guest_build::command(&workspace, &guests, &packages, &[], &[]);
    guest_build::run(build, "the guest components");
    for (_, stem, variable) in GUESTS {
        let artifact = artifact(&guests, stem);
        println!("cargo:rustc-env={variable}={}", artifact.display());
    }
    // The legacy fixture is built in the directory the test-time variants share (so it does not
    // invalidate the main build), under their lock.
    let variants = targets.join("guests-fixture-variants");
    let _lock = guest_build::lock_variants(&variants);
    let (variable, envs, features) = LEGACY_FIXTURE;
    let copy = variants.join(format!("{}.wasm", variable.to_lowercase()));
    guest_build::build_fixture_variant(&workspace, &variants, envs, features, &copy);
    println!("cargo:rustc-env={variable}={}", copy.display());
}

/// Adds the wasm32-wasip2 target to the active toolchain when its standard library is missing.
fn ensure_wasm_target(rustc: &str) {
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    if sysroot.as_deref().is_some_and(has_target) {
        return;
    }
    let mut add = Command::new("rustup");
    add.args(["target", "add", TARGET]);
    if let Ok(toolchain) = env::var("RUSTUP_TOOLCHAIN") {
        add.args(["--toolchain", &toolchain]);
    }
    let status = add.status().unwrap_or_else(|err| {
        panic!("the {TARGET} target is missing and rustup could not be run to add it ({err}); run `rustup target add {TARGET}`")
    });
    assert!(
        status.success(),
        "`rustup target add {TARGET}` failed; run it by hand and build again"
    );
}

fn has_target(sysroot: &Path) -> bool {
    sysroot
        .join("lib")
        .join("rustlib")
        .join(TARGET)
        .join("lib")
        .is_dir()
}
