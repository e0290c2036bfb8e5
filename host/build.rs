//! Builds the guest components (the bundled ConnectWise connector for wasm32-unknown-unknown,
//! linked without a WASI adapter; the test fixture and its frozen-contract build for
//! wasm32-wasip2), so that a plain `cargo build` or `cargo test` on a fresh clone produces them. The fixture's other variants are built by the tests that use them.
//!
//! The guests are built by a nested cargo with its own target directory (`target/guests`): sharing
//! the outer build's directory would wait forever on its lock. That nested build is shared with the
//! tests' fixture variants, in `tests/common/guest_build.rs`. rustup installs the wasm targets only
//! when it installs a toolchain, so a missing target is added here first.

#[path = "tests/common/guest_build.rs"]
mod guest_build;

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use guest_build::{LEAN_TARGET, TARGET, artifact};

/// (target, package, artifact stem, environment variable the host reads the path from)
const GUESTS: &[(&str, &str, &str, &str)] = &[
    (
        LEAN_TARGET,
        "plugin-connectwise",
        "plugin_connectwise",
        "BSS_CONNECTWISE_WASM",
    ),
    (TARGET, "bss-fixture", "bss_fixture", "BSS_FIXTURE_WASM"),
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

    embed_templates(&workspace);

    let targets = match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace.join("target"),
    };
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    for target in [TARGET, LEAN_TARGET] {
        ensure_wasm_target(&rustc, target);
    }

    let guests = targets.join("guests");
    for (target, package, stem, variable) in GUESTS {
        let build = guest_build::command(&workspace, &guests, target, &[package], &[], &[]);
        guest_build::run(build, &format!("the guest component {package} ({target})"));
        let artifact = artifact(&guests, target, stem);
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

/// Adds a wasm target to the active toolchain when its standard library is missing.
fn ensure_wasm_target(rustc: &str, target: &str) {
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    if sysroot
        .as_deref()
        .is_some_and(|sysroot| has_target(sysroot, target))
    {
        return;
    }
    let mut add = Command::new("rustup");
    add.args(["target", "add", target]);
    if let Ok(toolchain) = env::var("RUSTUP_TOOLCHAIN") {
        add.args(["--toolchain", &toolchain]);
    }
    let status = add.status().unwrap_or_else(|err| {
        panic!("the {target} target is missing and rustup could not be run to add it ({err}); run `rustup target add {target}`")
    });
    assert!(
        status.success(),
        "`rustup target add {target}` failed; run it by hand and build again"
    );
}

fn has_target(sysroot: &Path, target: &str) -> bool {
    sysroot
        .join("lib")
        .join("rustlib")
        .join(target)
        .join("lib")
        .is_dir()
}

/// The connector templates `connectors new` writes, and the contract beside them: generated into
/// `$OUT_DIR/templates.rs` as `include_bytes!` tables. Build outputs, installed tools and caches
/// (`node_modules`, `target`, `*.wasm`, `__pycache__`) and the repository's `wit` symlinks stay out.
/// Each embedded file is watched; a file added to a template is picked up by the next build that
/// reruns this script.
fn embed_templates(workspace: &Path) {
    const LANGUAGES: &[&str] = &["rust", "python", "javascript"];
    const SKIPPED: &[&str] = &[
        "node_modules",
        "target",
        "__pycache__",
        "wit",
        ".venv",
        "venv",
        "dist",
        ".git",
    ];
    fn walk(dir: &Path, root: &Path, files: &mut Vec<(String, PathBuf)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if SKIPPED.contains(&name.as_str())
                || name.ends_with(".wasm")
                || name.starts_with(".bss")
            {
                continue;
            }
            if path.is_dir() {
                walk(&path, root, files);
            } else if path.is_file() {
                let relative = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
                files.push((relative, path));
            }
        }
    }
    let mut out = String::from(
        "/// (language, path in the template, bytes)\npub const TEMPLATE_FILES: &[(&str, &str, &[u8])] = &[\n",
    );
    for lang in LANGUAGES {
        let root = workspace.join("templates").join(lang);
        let mut files = Vec::new();
        walk(&root, &root, &mut files);
        for (relative, path) in files {
            println!("cargo:rerun-if-changed={}", path.display());
            out.push_str(&format!(
                "    ({lang:?}, {relative:?}, include_bytes!({:?})),\n",
                path.display().to_string()
            ));
        }
    }
    out.push_str("];\n/// The newest contract's files (`wit/*.wit`).\npub const CONTRACT_FILES: &[(&str, &[u8])] = &[\n");
    let mut wit: Vec<PathBuf> = std::fs::read_dir(workspace.join("wit"))
        .expect("wit/ is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wit"))
        .collect();
    wit.sort();
    for path in wit {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        out.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    out.push_str("];\n");
    let generated = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("templates.rs");
    std::fs::write(generated, out).expect("OUT_DIR is writable");
}
