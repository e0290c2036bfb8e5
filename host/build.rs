//! Builds the guest components (the bundled ConnectWise connector and the test fixture) for
//! wasm32-wasip2, so that a plain `cargo build` or `cargo test` on a fresh clone produces them.
//!
//! The guests are built by a nested cargo with its own target directory (`target/guests`): sharing
//! the outer build's directory would wait forever on its lock. rustup installs the wasm target only
//! when it installs a toolchain, so a missing target is added here first.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "guest";
/// (package, artifact stem, environment variable the host reads the path from)
const GUESTS: &[(&str, &str, &str)] = &[
    (
        "plugin-connectwise",
        "plugin_connectwise",
        "BSS_CONNECTWISE_WASM",
    ),
    ("bss-fixture", "bss_fixture", "BSS_FIXTURE_WASM"),
];
/// Further builds of the fixture, told apart by build environment and features, for the version,
/// hot-reload and contract-minor tests: (environment variable the host reads the path from, build
/// environment, features of `bss-fixture`).
type Variant = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
);
const FIXTURE_VARIANTS: &[Variant] = &[
    // A connector whose manifest() never answers.
    (
        "BSS_FIXTURE_MANIFEST_LOOP_WASM",
        &[
            ("FIXTURE_NAME", "manifest-loop-fixture"),
            ("FIXTURE_MANIFEST", "loop"),
        ],
        &[],
    ),
    // One more required setting than 0.1.0.
    ("BSS_FIXTURE_V2_WASM", &[("FIXTURE_VERSION", "0.2.0")], &[]),
    // Built against the frozen bss:integration@1.0.0 in wit/1.0.0.
    (
        "BSS_FIXTURE_LEGACY_WASM",
        &[("FIXTURE_NAME", "legacy-fixture")],
        &["contract-1-0"],
    ),
    // Just another connector, so tests can install five.
    (
        "BSS_FIXTURE_OTHER_WASM",
        &[("FIXTURE_NAME", "other-fixture")],
        &[],
    ),
    // Newer versions that must be refused: manifest() traps; the manifest is invalid.
    (
        "BSS_FIXTURE_TRAPS_WASM",
        &[("FIXTURE_VERSION", "0.3.0"), ("FIXTURE_MANIFEST", "trap")],
        &[],
    ),
    (
        "BSS_FIXTURE_INVALID_WASM",
        &[
            ("FIXTURE_VERSION", "0.4.0"),
            ("FIXTURE_MANIFEST", "invalid"),
        ],
        &[],
    ),
    // Manifests that lie about a secret: a later version declaring `api-key` as text; one whose
    // answer alternates every ten seconds; one whose every answer differs.
    (
        "BSS_FIXTURE_UNSEAL_WASM",
        &[("FIXTURE_VERSION", "0.5.0"), ("FIXTURE_MANIFEST", "unseal")],
        &[],
    ),
    (
        "BSS_FIXTURE_FLAP_WASM",
        &[("FIXTURE_VERSION", "0.6.0"), ("FIXTURE_MANIFEST", "flap")],
        &[],
    ),
    (
        "BSS_FIXTURE_FLAP_RANDOM_WASM",
        &[
            ("FIXTURE_VERSION", "0.7.0"),
            ("FIXTURE_MANIFEST", "flap-random"),
        ],
        &[],
    ),
];

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
    build_guests(&workspace, &guests, &packages, &[], &[]);
    for (_, stem, variable) in GUESTS {
        let artifact = artifact(&guests, stem);
        println!("cargo:rustc-env={variable}={}", artifact.display());
    }
    // The variants share one target directory of their own (so they do not invalidate the main
    // build); only the fixture crate itself is rebuilt for each, and its output copied aside.
    let variants = targets.join("guests-fixture-variants");
    std::fs::create_dir_all(&variants).expect("create the fixture variants' target directory");
    // Every variant is built to the same file before it is copied aside: two builds of this script
    // at once (a test and a bench build) must not interleave.
    let lock = std::fs::File::create(variants.join("variants.lock")).expect("create the lock file");
    lock.lock().expect("lock the fixture variants' directory");
    for (variable, envs, features) in FIXTURE_VARIANTS {
        build_guests(&workspace, &variants, &["bss-fixture"], envs, features);
        let copy = variants.join(format!("{}.wasm", variable.to_lowercase()));
        std::fs::copy(artifact(&variants, "bss_fixture"), &copy)
            .unwrap_or_else(|e| panic!("could not copy the fixture to {}: {e}", copy.display()));
        println!("cargo:rustc-env={variable}={}", copy.display());
    }
}

/// Builds guest packages for wasm32-wasip2 with a nested cargo.
fn build_guests(
    workspace: &Path,
    target_dir: &Path,
    packages: &[&str],
    envs: &[(&str, &str)],
    features: &[&str],
) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut build = Command::new(&cargo);
    build
        .current_dir(workspace)
        .args([
            "build",
            "--target",
            TARGET,
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
    // Flags and wrappers meant for the host build must not leak into the guest build.
    for var in [
        "FIXTURE_VERSION",
        "FIXTURE_NAME",
        "FIXTURE_MANIFEST",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        build.env_remove(var);
    }
    build.envs(envs.iter().copied());
    let output = build
        .output()
        .expect("could not run cargo to build the guest components");
    if !output.status.success() {
        panic!(
            "building the guest components failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Where a guest build put a component; panics if it is not there.
fn artifact(target_dir: &Path, stem: &str) -> PathBuf {
    let artifact = target_dir
        .join(TARGET)
        .join(PROFILE)
        .join(format!("{stem}.wasm"));
    assert!(
        artifact.exists(),
        "the guest build did not produce {}",
        artifact.display()
    );
    artifact
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
