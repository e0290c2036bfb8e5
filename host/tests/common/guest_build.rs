//! The nested cargo that builds guest components, shared by `host/build.rs`
//! (which includes this file with `#[path]`: the bundled connector, the base fixture and the legacy
//! variant) and by the tests' `fixture_variants.rs` (the other variants, on first use). Only the
//! standard library is used here, since build scripts have no other dependencies.
//!
//! A guest build runs in the workspace with a target directory of its own (sharing the outer
//! build's would wait forever on its lock) and without the flags, wrappers and target meant for the
//! outer build. The fixture's variants all build to the same file in their shared directory before
//! it is copied aside, so whoever builds there holds [`lock_variants`] first.

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The fixture's target: std with WASI (the fixture's adversarial modes use files, clocks and
/// streams).
pub const TARGET: &str = "wasm32-wasip2";
/// The bundled connector's target: no WASI adapter. `wasm-component-ld` (shipped with the
/// toolchain for wasm32-wasip2) links it into a component from wit-bindgen's type information, told
/// to add no adapter, so the component imports only what its bindings name.
pub const LEAN_TARGET: &str = "wasm32-unknown-unknown";
/// The settings that make cargo link [`LEAN_TARGET`] into a component: no WASI adapter, and an
/// initial memory of 3 MiB (1 MiB of stack, the static data, the rest an arena the bundled
/// connector allocates from before it grows memory: `plugin-connectwise/src/arena.rs`).
pub const LEAN_LINKING: &[(&str, &str)] = &[
    (
        "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER",
        "wasm-component-ld",
    ),
    (
        "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS",
        "-Clink-arg=--wasi-adapter=none -Clink-arg=--initial-memory=3145728",
    ),
];

/// The environment an outer cargo sets for the host's build that a nested build of a guest must
/// not inherit (flags, wrappers, the target directory).
pub const OUTER_CARGO_SETTINGS: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
];
pub const PROFILE: &str = "guest";

/// `cargo build` of `packages` for `target` ([`TARGET`] or [`LEAN_TARGET`]) with [`PROFILE`] into `target_dir`, with `features`
/// of `bss-fixture` and `envs` set. Runs `$CARGO` (set for build scripts and for tests run by
/// cargo), else `cargo`.
pub fn command(
    workspace: &Path,
    target_dir: &Path,
    target: &str,
    packages: &[&str],
    envs: &[(&str, &str)],
    features: &[&str],
) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut build = Command::new(cargo);
    build
        .current_dir(workspace)
        .args([
            "build",
            "--target",
            target,
            "--profile",
            PROFILE,
            "--target-dir",
        ])
        .arg(target_dir);
    for package in packages {
        build.args(["-p", package]);
    }
    for feature in features {
        build.args(["--features", &format!("bss-fixture/{feature}")]);
    }
    // Flags and wrappers meant for the host build, and an earlier variant's settings, must not
    // leak into the guest build.
    for var in ["FIXTURE_VERSION", "FIXTURE_NAME", "FIXTURE_MANIFEST"]
        .iter()
        .chain(OUTER_CARGO_SETTINGS)
    {
        build.env_remove(var);
    }
    if target == LEAN_TARGET {
        build.envs(LEAN_LINKING.iter().copied());
    }
    build.envs(envs.iter().copied());
    build
}

/// Runs a guest build; if it fails, panics with cargo's standard error and the command line to run
/// by hand.
pub fn run(mut build: Command, what: &str) {
    let output = build
        .output()
        .unwrap_or_else(|e| panic!("could not run cargo to build {what}: {e}"));
    if output.status.success() {
        return;
    }
    let dir = build.get_current_dir().unwrap_or(Path::new("."));
    let words: Vec<String> = build
        .get_envs()
        .filter_map(|(name, value)| Some(format!("{}={}", name.display(), value?.display())))
        .chain(std::iter::once(build.get_program().display().to_string()))
        .chain(build.get_args().map(OsStr::display).map(|a| a.to_string()))
        .collect();
    panic!(
        "building {what} failed:\n{}\nTo build it by hand:\n  cd {} && {}",
        String::from_utf8_lossy(&output.stderr),
        dir.display(),
        words.join(" ")
    );
}

/// Where a guest build put a package's component; panics if it is not there.
pub fn artifact(target_dir: &Path, target: &str, stem: &str) -> PathBuf {
    let artifact = target_dir
        .join(target)
        .join(PROFILE)
        .join(format!("{stem}.wasm"));
    assert!(
        artifact.exists(),
        "the guest build did not produce {}",
        artifact.display()
    );
    artifact
}

/// Creates the fixture variants' target directory and takes its exclusive lock, held until the
/// returned file is dropped.
pub fn lock_variants(variants: &Path) -> File {
    std::fs::create_dir_all(variants)
        .unwrap_or_else(|e| panic!("could not create {}: {e}", variants.display()));
    let lock =
        File::create(variants.join("variants.lock")).expect("create the variants' lock file");
    lock.lock().expect("lock the fixture variants' directory");
    lock
}

/// Builds the fixture with `envs` and `features` in `variants` (whose lock the caller holds) and
/// copies it to `copy`, through a rename so that a reader never sees half a file.
pub fn build_fixture_variant(
    workspace: &Path,
    variants: &Path,
    envs: &[(&str, &str)],
    features: &[&str],
    copy: &Path,
) {
    let build = command(
        workspace,
        variants,
        TARGET,
        &["bss-fixture"],
        envs,
        features,
    );
    run(build, &format!("the fixture variant {}", copy.display()));
    let partial = copy.with_extension("wasm.partial");
    std::fs::copy(artifact(variants, TARGET, "bss_fixture"), &partial)
        .unwrap_or_else(|e| panic!("could not copy the fixture to {}: {e}", partial.display()));
    std::fs::rename(&partial, copy)
        .unwrap_or_else(|e| panic!("could not rename to {}: {e}", copy.display()));
}
