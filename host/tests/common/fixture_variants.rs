//! Builds of the fixture connector told apart by build environment and features, for the version,
//! hot-reload, sealed-secret and contract-minor tests; built the first time a test asks for one,
//! not by `build.rs` (a plain `cargo build` of the host does not pay for them).
//!
//! A variant is built by a nested cargo into `<target>/guests-fixture-variants` (a target directory
//! of its own, so it neither waits on the outer build's lock nor invalidates `target/guests`) and
//! copied aside as `<variant>.wasm` with a stamp beside it: a SHA-256 over the fixture's sources,
//! the contract (`wit/`), the workspace manifest, `Cargo.lock`, the toolchain file and the variant's
//! environment and features. A copy whose stamp matches is used as it is, so a variant is rebuilt
//! only when its inputs change, not by every test binary. Every variant builds to the same file
//! before it is copied, so the builds (of all test binaries and benches running at once, and of
//! `build.rs`, which builds the legacy variant into the same directory) take turns under an
//! exclusive lock on `variants.lock`.
//!
//! Used from integration tests as `common::fixture_variants` and from benches through
//! `#[path = "../tests/common/fixture_variants.rs"] mod fixture_variants;`: it finds the target
//! directory as the parent of `CARGO_TARGET_TMPDIR`, which cargo sets only for those two.

#![allow(dead_code)]

#[path = "guest_build.rs"]
pub mod guest_build;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// The fixture's inputs below the workspace, hashed into every variant's stamp (directories
/// recursively).
const INPUTS: &[&str] = &[
    "tests/fixtures/guest/src",
    "tests/fixtures/guest/Cargo.toml",
    "wit",
    "Cargo.toml",
    "Cargo.lock",
    "rust-toolchain.toml",
];

/// A build of the fixture other than the base one (`BSS_FIXTURE_WASM`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// A connector whose manifest() never answers.
    ManifestLoop,
    /// Version 0.2.0, with one more required setting (`tenant`) than 0.1.0.
    V2,
    /// Built against the frozen bss:integration@1.0.0 in wit/1.0.0 (named `legacy-fixture`). This
    /// one is still built by `build.rs` (`BSS_FIXTURE_LEGACY_WASM`): a unit test of the runtime's
    /// private types loads it, and unit tests have no `CARGO_TARGET_TMPDIR` to build it from.
    Legacy,
    /// Just another connector (`other-fixture`), so tests can install several.
    Other,
    /// A newer version (0.3.0) whose manifest() traps: must be refused.
    Traps,
    /// A newer version (0.4.0) whose manifest is invalid: must be refused.
    Invalid,
    /// A later version (0.5.0) declaring the secret `api-key` as text.
    Unseal,
    /// A version (0.6.0) whose manifest alternates every ten seconds.
    Flap,
    /// A version (0.7.0) whose every manifest answer differs.
    FlapRandom,
}

impl Variant {
    pub const ALL: [Variant; 9] = [
        Variant::ManifestLoop,
        Variant::V2,
        Variant::Legacy,
        Variant::Other,
        Variant::Traps,
        Variant::Invalid,
        Variant::Unseal,
        Variant::Flap,
        Variant::FlapRandom,
    ];

    /// The copy's file stem.
    fn name(self) -> &'static str {
        match self {
            Variant::ManifestLoop => "manifest-loop",
            Variant::V2 => "v2",
            Variant::Legacy => "legacy",
            Variant::Other => "other",
            Variant::Traps => "traps",
            Variant::Invalid => "invalid",
            Variant::Unseal => "unseal",
            Variant::Flap => "flap",
            Variant::FlapRandom => "flap-random",
        }
    }

    /// The build environment the fixture reads with `option_env!`.
    fn envs(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Variant::ManifestLoop => &[
                ("FIXTURE_NAME", "manifest-loop-fixture"),
                ("FIXTURE_MANIFEST", "loop"),
            ],
            Variant::V2 => &[("FIXTURE_VERSION", "0.2.0")],
            Variant::Legacy => unreachable!("build.rs builds the legacy variant"),
            Variant::Other => &[("FIXTURE_NAME", "other-fixture")],
            Variant::Traps => &[("FIXTURE_VERSION", "0.3.0"), ("FIXTURE_MANIFEST", "trap")],
            Variant::Invalid => &[
                ("FIXTURE_VERSION", "0.4.0"),
                ("FIXTURE_MANIFEST", "invalid"),
            ],
            Variant::Unseal => &[("FIXTURE_VERSION", "0.5.0"), ("FIXTURE_MANIFEST", "unseal")],
            Variant::Flap => &[("FIXTURE_VERSION", "0.6.0"), ("FIXTURE_MANIFEST", "flap")],
            Variant::FlapRandom => &[
                ("FIXTURE_VERSION", "0.7.0"),
                ("FIXTURE_MANIFEST", "flap-random"),
            ],
        }
    }

    /// Features of `bss-fixture`.
    fn features(self) -> &'static [&'static str] {
        match self {
            Variant::Legacy => unreachable!("build.rs builds the legacy variant"),
            _ => &[],
        }
    }
}

/// The component file of `variant`, built (or found up to date) on first use in this process.
/// Panics with cargo's output and the command to run by hand when the build fails.
pub fn fixture_variant(variant: Variant) -> PathBuf {
    static BUILT: [OnceLock<PathBuf>; Variant::ALL.len()] =
        [const { OnceLock::new() }; Variant::ALL.len()];
    BUILT[variant as usize]
        .get_or_init(|| match variant {
            Variant::Legacy => PathBuf::from(env!("BSS_FIXTURE_LEGACY_WASM")),
            _ => build(variant),
        })
        .clone()
}

/// The workspace root (the host crate's parent).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ lives inside the workspace")
        .to_path_buf()
}

/// `<target>/guests-fixture-variants`, next to `build.rs`'s `target/guests`.
fn variants_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR lies inside the target directory")
        .join("guests-fixture-variants")
}

/// A hash of the inputs every variant shares, computed once per process.
fn sources_digest() -> &'static [u8] {
    static DIGEST: OnceLock<Vec<u8>> = OnceLock::new();
    DIGEST.get_or_init(|| {
        let workspace = workspace();
        let mut files = Vec::new();
        for input in INPUTS {
            collect_files(&workspace.join(input), &mut files);
        }
        files.sort();
        let mut hash = Sha256::new();
        for file in files {
            let contents = std::fs::read(&file)
                .unwrap_or_else(|e| panic!("could not read {}: {e}", file.display()));
            let relative = file.strip_prefix(&workspace).unwrap_or(&file);
            hash.update(relative.to_string_lossy().as_bytes());
            hash.update((contents.len() as u64).to_le_bytes());
            hash.update(&contents);
        }
        hash.finalize().to_vec()
    })
}

fn collect_files(path: &Path, files: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let entries = std::fs::read_dir(path)
            .unwrap_or_else(|e| panic!("could not list {}: {e}", path.display()));
        for entry in entries {
            collect_files(&entry.expect("a directory entry").path(), files);
        }
    } else if path.exists() {
        files.push(path.to_path_buf());
    }
}

/// The stamp of `variant`: its shared inputs, environment and features.
fn stamp(variant: Variant) -> String {
    let mut hash = Sha256::new();
    hash.update(sources_digest());
    for (name, value) in variant.envs() {
        hash.update(format!("env {name}={value}\n"));
    }
    for feature in variant.features() {
        hash.update(format!("feature {feature}\n"));
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Builds `variant` unless an up-to-date copy exists, and returns the copy's path.
fn build(variant: Variant) -> PathBuf {
    let dir = variants_dir();
    let copy = dir.join(format!("{}.wasm", variant.name()));
    let stamp_file = dir.join(format!("{}.wasm.stamp", variant.name()));
    let stamp = stamp(variant);
    let _lock = guest_build::lock_variants(&dir);
    if copy.exists() && std::fs::read_to_string(&stamp_file).is_ok_and(|s| s == stamp) {
        return copy;
    }
    let _ = std::fs::remove_file(&stamp_file);
    let (envs, features) = (variant.envs(), variant.features());
    guest_build::build_fixture_variant(&workspace(), &dir, envs, features, &copy);
    std::fs::write(&stamp_file, &stamp)
        .unwrap_or_else(|e| panic!("could not write {}: {e}", stamp_file.display()));
    copy
}

/// The bundled ConnectWise connector built for wasm32-wasip2 (std's WASI adapter and every import
/// it brings) instead of without WASI, as it was bundled before: the "before" of the benchmark of
/// instantiation against the number of imports. Built on first use into
/// `<target>/guests-connectwise-wasip2` (cargo decides whether it is fresh).
pub fn connectwise_with_wasi() -> PathBuf {
    let dir = variants_dir().with_file_name("guests-connectwise-wasip2");
    let _lock = guest_build::lock_variants(&dir);
    let build = guest_build::command(
        &workspace(),
        &dir,
        guest_build::TARGET,
        &["plugin-connectwise"],
        &[],
        &[],
    );
    guest_build::run(build, "the ConnectWise connector for wasm32-wasip2");
    guest_build::artifact(&dir, guest_build::TARGET, "plugin_connectwise")
}
