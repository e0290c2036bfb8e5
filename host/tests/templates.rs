//! The connector templates (`templates/rust`, `templates/python`, `templates/javascript`), each
//! built from the repository's `wit/` with its pinned toolchain and run through the real binary
//! against the sandbox with rate limits and server errors injected: `connectors check` passes,
//! the instance activates, lookup choices come from the remote, 100 accounts are pushed with each
//! created exactly once, a second push changes nothing, and a pull reads them back. A contract
//! change that breaks a language fails here. The Rust template is also built lean
//! (`build.sh --lean`: no WASI), from a copy that can be told to panic, to see the component
//! import the contract only, sync the same, and have its panic message reported.
//!
//! The toolchains are installed by `scripts/install-test-deps.sh` (which the README's test
//! command runs): componentize-py in `target/connector-tools/python`, ComponentizeJS in
//! `templates/javascript/node_modules`; a missing one fails the test saying so.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::cli::{HOST, blocking};
use common::records::account;
use cw_sandbox::{Faults, Sandbox, SandboxConfig};
use serde_json::Value;

const ACCOUNTS: usize = 100;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the host is a workspace member")
        .to_path_buf()
}

/// How a template is built.
#[derive(Clone, Copy, PartialEq)]
enum Build {
    /// `templates/<lang>` with its build script as it is.
    AsShipped,
    /// The Rust template built with `build.sh --lean`, from a copy whose `lookup-choices` panics
    /// when asked for the key `panic` ([`lean_copy`]).
    LeanWithPanic,
}

/// A copy of the Rust template (every file but its build outputs; its target folder kept across
/// runs) whose `lookup-choices` panics for the key `panic`; `wit` points at the repository's
/// contract.
fn lean_copy() -> PathBuf {
    let template = repository().join("templates/rust");
    let copy = Path::new(env!("CARGO_TARGET_TMPDIR")).join("templates/rust-lean");
    std::fs::create_dir_all(&copy).unwrap();
    // What an earlier run copied goes (a file the template no longer has must not stay).
    for entry in std::fs::read_dir(&copy).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|name| name == "target") {
            continue;
        }
        if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
    fn mirror(from: &Path, to: &Path) {
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name();
            let (source, target) = (entry.path(), to.join(&name));
            let skipped = name == "target"
                || name == "wit"
                || source.extension().is_some_and(|x| x == "wasm");
            if skipped {
                continue;
            }
            if source.is_dir() {
                std::fs::create_dir_all(&target).unwrap();
                mirror(&source, &target);
            } else {
                std::fs::copy(&source, &target).unwrap();
            }
        }
    }
    mirror(&template, &copy);
    let source = std::fs::read_to_string(template.join("src/lib.rs")).unwrap();
    let entry = "fn lookup_choices(key: String) -> Result<Vec<Choice>> {";
    assert!(
        source.contains(entry),
        "the template's lookup_choices changed shape"
    );
    let source = source.replacen(
        entry,
        &format!(
            "{entry}\n        if key == \"panic\" {{ panic!(\"asked to panic for {{key}}\") }}"
        ),
        1,
    );
    std::fs::write(copy.join("src/lib.rs"), source).unwrap();
    std::os::unix::fs::symlink(repository().join("wit"), copy.join("wit")).unwrap();
    copy
}

/// Builds `templates/<lang>` with its build script into the tests' target folder, signed with
/// `key` when one is given (the build script's `BSS_SIGNING_KEY`).
fn build(lang: &str, how: Build, key: Option<&Path>) -> PathBuf {
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("templates");
    std::fs::create_dir_all(&out_dir).unwrap();
    let (script, out) = match how {
        Build::AsShipped => (
            repository().join("templates").join(lang).join("build.sh"),
            out_dir.join(format!("{lang}.wasm")),
        ),
        Build::LeanWithPanic => (
            lean_copy().join("build.sh"),
            out_dir.join(format!("{lang}-lean.wasm")),
        ),
    };
    let mut command = Command::new("bash");
    command.arg(&script);
    if how == Build::LeanWithPanic {
        command.arg("--lean");
    }
    command.arg(&out);
    // The outer cargo's settings are not the template's (a Rust template is its own workspace).
    for var in common::fixture_variants::guest_build::OUTER_CARGO_SETTINGS {
        command.env_remove(var);
    }
    if let Some(key) = key {
        command
            .env("BSS_SIGNING_KEY", key)
            .env("BSS_HOST_BIN", common::cli::BIN);
    }
    let built = command
        .output()
        .unwrap_or_else(|e| panic!("{} could not run: {e}", script.display()));
    assert!(
        built.status.success(),
        "the {lang} template did not build ({}); its toolchain comes from scripts/install-test-deps.sh (scripts/toolchains/):\n{}\n{}",
        built.status,
        String::from_utf8_lossy(&built.stdout),
        String::from_utf8_lossy(&built.stderr)
    );
    out
}

async fn exercise(lang: &str, how: Build) -> PathBuf {
    let dir = tempfile::tempdir().unwrap();
    // The Rust template is built signed, as a vendor would ship it.
    let key = (lang == "rust").then(|| dir.path().join("vendor.key"));
    if let Some(key) = &key {
        HOST.ok(
            dir.path(),
            &["keys", "generate", "--out", key.to_str().unwrap()],
        );
    }
    let wasm = blocking({
        let lang = lang.to_string();
        move || build(&lang, how, key.as_deref())
    })
    .await;
    let sandbox = Sandbox::start(SandboxConfig {
        faults: Faults {
            rate_limit_every: Some(7),
            retry_after_secs: 1,
            server_error_every: Some(11),
            ..Faults::default()
        },
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("plugins")).unwrap();
    let installed = data.join("plugins").join(format!("{lang}-template.wasm"));
    std::fs::copy(&wasm, &installed).unwrap();
    let built = wasm.clone();
    let records = dir.path().join("accounts.ndjson");
    let lines: String = (1..=ACCOUNTS)
        .map(|i| format!("{}\n", account(i)))
        .collect();
    std::fs::write(&records, lines).unwrap();
    let base = sandbox.base_url();
    let (data2, installed2, records2) = (data.clone(), installed.clone(), records.clone());
    let pulled = dir.path().join("pulled.ndjson");
    let pulled2 = pulled.clone();
    let lang2 = lang.to_string();
    blocking(move || {
        let (data, lang) = (&data2, lang2.as_str());
        let checked = HOST.ok(data, &["connectors", "check", installed2.to_str().unwrap()]);
        assert!(
            checked.contains("ok: this host loads it"),
            "{lang}: {checked}"
        );
        let signed = checked.contains("signature: signed by key");
        assert_eq!(signed, lang == "rust", "{lang}: {checked}");
        HOST.ok(data, &["activate", "template-connector", "--name", "t"]);
        let set = HOST.ok(
            data,
            &[
                "settings",
                "set",
                "t",
                &format!("url={base}"),
                "company-id=sandbox",
                "public-key=sandbox-public",
                "private-key=sandbox-private",
                "client-id=0c8f3c52-5b7e-4c1a",
                "host.allow-private-network=on",
                "host.requests-per-minute=100000",
            ],
        );
        assert!(
            set.contains("check ok"),
            "{lang}: activate did not pass: {set}"
        );
        // The declared reach (contract 1.4) bounds the URL setting, and is shown.
        let outside = HOST.fails(
            data,
            &["settings", "set", "t", "url=https://evil.example.org"],
        );
        assert!(
            outside.contains("outside the hosts") && outside.contains("*.myconnectwise.net"),
            "{lang}: a URL outside the reach was not refused: {outside}"
        );
        let inspected = HOST.ok(data, &["connectors", "inspect", "template-connector"]);
        assert!(
            inspected.contains("reaches *.myconnectwise.net, *.connectwisedev.com, 127.0.0.1"),
            "{lang}: {inspected}"
        );
        let choices = HOST.ok(data, &["lookups", "choices", "t", "account-type"]);
        assert!(
            choices.lines().count() >= 2,
            "{lang}: the company types were not listed: {choices}"
        );
        HOST.ok(data, &["lookups", "set", "t", "account-type", "Customer=1"]);
        HOST.ok(
            data,
            &[
                "sync-options",
                "set",
                "t",
                "account:push:create,update",
                "account:pull:create,update",
            ],
        );
        let file = records2.to_str().unwrap();
        let first: Value = serde_json::from_str(
            &HOST.ok(data, &["push", "t", "account", "--file", file, "--json"]),
        )
        .unwrap();
        assert_eq!(first["created"], ACCOUNTS, "{lang}: {first:#}");
        assert_eq!(first["failed"], 0, "{lang}: {first:#}");
        let second: Value = serde_json::from_str(
            &HOST.ok(data, &["push", "t", "account", "--file", file, "--json"]),
        )
        .unwrap();
        assert_eq!(second["unchanged"], ACCOUNTS, "{lang}: {second:#}");
        HOST.ok(
            data,
            &[
                "pull",
                "t",
                "account",
                "--since",
                "2020-01-01T00:00:00Z",
                "--include-echoes",
                "--out",
                pulled2.to_str().unwrap(),
            ],
        );
    })
    .await;
    // Every account exactly once, whatever the 429s and 500s did.
    let mut identifiers: Vec<String> = sandbox
        .records("company/companies")
        .iter()
        .filter_map(|c| c["identifier"].as_str().map(str::to_string))
        // The accounts' BSS ids (A0001…), not the sandbox's seeded companies.
        .filter(|identifier| {
            identifier.len() == 5
                && identifier.starts_with('A')
                && identifier[1..].bytes().all(|b| b.is_ascii_digit())
        })
        .collect();
    let total = identifiers.len();
    identifiers.sort();
    identifiers.dedup();
    assert_eq!(
        identifiers.len(),
        total,
        "{lang}: a company was created twice"
    );
    assert_eq!(total, ACCOUNTS, "{lang}: {identifiers:?}");
    let pulled = std::fs::read_to_string(&pulled).unwrap();
    let ours = pulled.lines().filter(|line| line.contains("\"A0")).count();
    assert_eq!(
        ours, ACCOUNTS,
        "{lang}: the pull did not read every account back"
    );
    built
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_template_builds_and_syncs_against_the_sandbox() {
    exercise("rust", Build::AsShipped).await;
    // `dev`: the sandbox in-process, instance `dev` set up from the manifest, checked.
    blocking(|| {
        let wasm = Path::new(env!("CARGO_TARGET_TMPDIR")).join("templates/rust.wasm");
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("dev");
        let said = HOST.ok(
            dir.path(),
            &[
                "dev",
                wasm.to_str().unwrap(),
                "--dev-data",
                folder.to_str().unwrap(),
                "--once",
            ],
        );
        assert!(
            said.contains("instance dev of template-connector 0.1.0") && said.contains("check ok"),
            "{said}"
        );
        // Run again on the same folder: the instance is kept, and checked again.
        let again = HOST.ok(
            dir.path(),
            &[
                "dev",
                wasm.to_str().unwrap(),
                "--dev-data",
                folder.to_str().unwrap(),
                "--once",
            ],
        );
        assert!(again.contains("check ok"), "{again}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_template_builds_lean_imports_the_contract_only_and_reports_its_panics() {
    let wasm = exercise("rust", Build::LeanWithPanic).await;
    blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let report: Value = serde_json::from_str(&HOST.ok(
            &data,
            &["connectors", "check", wasm.to_str().unwrap(), "--json"],
        ))
        .unwrap();
        let imports = common::cli::import_names(&report);
        let contract = report["contract"].as_str().unwrap();
        let expected: Vec<String> = ["http", "log", "settings", "types"]
            .iter()
            .map(|interface| format!("bss:integration/{interface}@{contract}"))
            .collect();
        assert_eq!(imports, expected, "{report:#}");
        // No stderr in the lean build: the SDK's hook writes the panic message to the log, and the
        // host reports it with the trap.
        let trapped = HOST.fails(
            &data,
            &[
                "connectors",
                "call",
                wasm.to_str().unwrap(),
                "lookup-choices",
                "panic",
                "--set",
                "url=http://127.0.0.1:9",
                "--set",
                "company-id=sandbox",
                "--set",
                "public-key=not-a-real-public-key",
                "--set",
                "private-key=not-a-real-private-key",
                "--set",
                "client-id=c",
            ],
        );
        assert!(
            trapped.contains("asked to panic for panic") && trapped.contains("src/lib.rs"),
            "{trapped}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_template_builds_and_syncs_against_the_sandbox() {
    exercise("python", Build::AsShipped).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_template_builds_and_syncs_against_the_sandbox() {
    exercise("javascript", Build::AsShipped).await;
    // The trap every JavaScript author met first: a default ComponentizeJS build imports
    // wasi:http. `connectors check` refuses it and says how to build instead.
    blocking(|| {
        let template = repository().join("templates/javascript");
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("default-build.wasm");
        let built = Command::new(template.join("node_modules/.bin/componentize-js"))
            .current_dir(&template)
            .args(["connector.js", "--wit"])
            .arg(repository().join("wit"))
            .args(["--world-name", "plugin", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            built.status.success(),
            "{}",
            String::from_utf8_lossy(&built.stderr)
        );
        let data = dir.path().join("data");
        let refused = HOST.fails(&data, &["connectors", "check", out.to_str().unwrap()]);
        assert!(
            refused.contains("wasi:http") && refused.contains("-d http fetch-event"),
            "{refused}"
        );
    })
    .await;
}
