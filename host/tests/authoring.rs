//! What the host does for connector authors, through the real binary: `connectors check` says
//! what loads and what is refused with its fix (without touching a data folder), `connectors call`
//! runs one export without an instance, `connectors new` writes each template with its name and
//! the contract; and the host fixes behind them: a command loads only the connectors it touches
//! (a refused file known to the plugins index is not read again until it changes), and the
//! compiled code of a replaced version is removed.

mod common;

use std::path::{Path, PathBuf};

use common::cli::HOST;
use common::fixture_variants::{Variant, fixture_variant};
use serde_json::Value;

const V1: &str = env!("BSS_FIXTURE_WASM");
const FIXTURE_SETTINGS: [&str; 10] = [
    "--set",
    "base-url=http://127.0.0.1:9",
    "--set",
    "user=u",
    "--set",
    "api-key=fixture-api-key",
    "--set",
    "mode=version",
    "--set",
    "host.allow-private-network=on",
];

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn check_says_what_loads_and_what_is_refused_with_its_fix() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let report: Value =
        serde_json::from_str(&HOST.ok(&data, &["connectors", "check", V1, "--json"])).unwrap();
    assert_eq!(report["contract"], "1.1.0", "{report:#}");
    assert_eq!(report["manifest"], "fixture 0.1.0", "{report:#}");
    assert_eq!(report["problems"], Value::Array(Vec::new()), "{report:#}");
    let imports = report["imports"].as_array().unwrap();
    assert!(
        imports
            .iter()
            .any(|i| i["name"] == "bss:integration/http@1.1.0" && i["verdict"] == "granted"),
        "{report:#}"
    );
    let said = HOST.ok(&data, &["connectors", "check", V1]);
    assert!(said.contains("ok: this host loads it"), "{said}");
    assert!(
        !data.exists(),
        "check made the data folder, which would then look used without its database"
    );

    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"not a component").unwrap();
    let refused = HOST.fails(&data, &["connectors", "check", garbage.to_str().unwrap()]);
    assert!(refused.contains("not WebAssembly"), "{refused}");
    let module = dir.path().join("module.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
    let refused = HOST.fails(&data, &["connectors", "check", module.to_str().unwrap()]);
    assert!(
        refused.contains("core WebAssembly module") && refused.contains("wasm32-wasip2"),
        "{refused}"
    );
}

/// The bundled connector is built without WASI (`host/build.rs`): it imports the contract and the
/// wall clock, nothing else, so instantiating it makes no filesystem, stream, environment or random
/// imports. The host still grants the rest of WASI to connectors that import it (the fixture).
#[test]
fn the_bundled_connector_imports_the_contract_and_the_clock_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bundled = env!("BSS_CONNECTWISE_WASM");
    let report: Value =
        serde_json::from_str(&HOST.ok(&data, &["connectors", "check", bundled, "--json"])).unwrap();
    assert_eq!(report["problems"], Value::Array(Vec::new()), "{report:#}");
    let imports = common::cli::import_names(&report);
    let wanted = ["http", "log", "settings", "types"].map(|interface| {
        format!(
            "bss:integration/{interface}@{}",
            report["contract"].as_str().unwrap()
        )
    });
    let mut expected: Vec<&str> = wanted.iter().map(String::as_str).collect();
    expected.push("wasi:clocks/wall-clock@0.2.6");
    expected.sort();
    assert_eq!(imports, expected, "{report:#}");

    let fixture: Value =
        serde_json::from_str(&HOST.ok(&data, &["connectors", "check", V1, "--json"])).unwrap();
    let fixture_imports = fixture["imports"].as_array().unwrap();
    assert!(
        fixture_imports.len() > imports.len()
            && fixture_imports
                .iter()
                .any(|i| i["name"].as_str().unwrap().starts_with("wasi:cli/stderr")),
        "{fixture:#}"
    );
}

#[test]
fn call_runs_one_export_without_an_instance() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let manifest: Value =
        serde_json::from_str(&HOST.ok(&data, &["connectors", "call", V1, "manifest"])).unwrap();
    assert_eq!(manifest["name"], "fixture");
    let mut args = vec!["connectors", "call", V1, "activate"];
    args.extend(FIXTURE_SETTINGS);
    let answer: Value = serde_json::from_str(&HOST.ok(&data, &args)).unwrap();
    assert_eq!(answer, "version 0.1.0");
    // A trap fails the command and says so; the settings are checked as `settings set` does.
    let mut args = vec!["connectors", "call", V1, "activate"];
    args.extend(&FIXTURE_SETTINGS[..6]);
    args.extend(["--set", "mode=panic"]);
    let trapped = HOST.fails(&data, &args);
    assert!(trapped.contains("panicked on purpose"), "{trapped}");
    let unknown = HOST.fails(
        &data,
        &["connectors", "call", V1, "activate", "--set", "colour=blue"],
    );
    assert!(
        unknown.contains("colour") && unknown.contains("base-url"),
        "{unknown}"
    );
    // A push file is read as `push` reads one: a repeated id is refused, naming the record.
    let records = dir.path().join("accounts.ndjson");
    let account = r#"{"id": "A1", "code": "C1", "name": "Acme", "remote-id": "7"}"#;
    std::fs::write(&records, format!("{account}\n{account}\n")).unwrap();
    let mut args = vec!["connectors", "call", V1, "push", "account", "--records"];
    args.push(records.to_str().unwrap());
    args.extend(FIXTURE_SETTINGS);
    let repeated = HOST.fails(&data, &args);
    assert!(repeated.contains("record 2"), "{repeated}");
    let usage = HOST.fails(&data, &["connectors", "call", V1, "lookup-choices"]);
    assert!(usage.contains("lookup-choices KEY"), "{usage}");
    assert!(!data.exists());
}

#[test]
fn commands_load_only_the_connectors_they_touch() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let plugins = data.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(V1, plugins.join("fixture.wasm")).unwrap();
    let broken = plugins.join("broken.wasm");
    std::fs::write(&broken, b"this is not a component").unwrap();
    // A command over every connector reads (and refuses) the broken file.
    let listed = HOST.run(&data, &["connectors", "list"]);
    let said = String::from_utf8_lossy(&listed.stderr);
    assert!(said.contains("broken.wasm was not loaded"), "{said}");
    HOST.ok(&data, &["activate", "fixture", "--name", "fx"]);
    // A command on instance fx loads the fixture only: the broken file, known and unchanged, is
    // not read.
    let shown = HOST.run(&data, &["instances", "show", "fx"]);
    assert!(shown.status.success());
    let said = String::from_utf8_lossy(&shown.stderr);
    assert!(!said.contains("broken.wasm"), "{said}");
    // Changed, it is read again (it might be this connector now).
    std::fs::write(&broken, b"still not a component, but longer").unwrap();
    let shown = HOST.run(&data, &["instances", "show", "fx"]);
    let said = String::from_utf8_lossy(&shown.stderr);
    assert!(said.contains("broken.wasm was not loaded"), "{said}");
}

fn compiled(data: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|name| name.ends_with(".cwasm"))
        .collect();
    names.sort();
    names
}

fn sha256(path: &str) -> String {
    bss_host::runtime::cache::content_hash(&std::fs::read(path).unwrap())
}

#[test]
fn compiled_code_of_a_replaced_version_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let plugins = data.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(V1, plugins.join("fixture.wasm")).unwrap();
    HOST.ok(&data, &["connectors", "list"]);
    let v1 = sha256(V1);
    assert!(
        compiled(&data).iter().any(|name| name.starts_with(&v1)),
        "{:?}",
        compiled(&data)
    );
    // The file is replaced by the next version: its old build's code goes at the next full load.
    let v2_path = fixture_variant(Variant::V2);
    std::fs::copy(&v2_path, plugins.join("fixture.wasm")).unwrap();
    HOST.ok(&data, &["connectors", "list"]);
    let v2 = sha256(v2_path.to_str().unwrap());
    let now = compiled(&data);
    assert!(!now.iter().any(|name| name.starts_with(&v1)), "{now:?}");
    assert!(now.iter().any(|name| name.starts_with(&v2)), "{now:?}");
    assert_eq!(now.len(), 2, "the bundled connector and v2: {now:?}");
    // Code of another host build, and `cache prune` saying what it did.
    let stale = data
        .join("cache")
        .join(format!("{v2}-0123456789abcdef.cwasm"));
    std::fs::write(&stale, b"old engine").unwrap();
    let pruned: Value =
        serde_json::from_str(&HOST.ok(&data, &["cache", "prune", "--json"])).unwrap();
    assert_eq!(pruned["removed"], 1, "{pruned:#}");
    assert!(pruned["kept"].as_u64().unwrap() >= 2, "{pruned:#}");
    assert!(!stale.exists());
}

/// The files of `templates/<lang>` that `connectors new` writes (what build.rs embeds).
fn template_files(root: &Path, dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if [
            "node_modules",
            "target",
            "__pycache__",
            "wit",
            ".venv",
            "venv",
            "dist",
            ".git",
        ]
        .contains(&name.as_str())
            || name.ends_with(".wasm")
            || name.starts_with(".bss")
        {
            continue;
        }
        if path.is_dir() {
            template_files(root, &path, found);
        } else {
            found.push(path.strip_prefix(root).unwrap().to_path_buf());
        }
    }
}

#[test]
fn connectors_new_writes_each_template_with_its_name_and_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for lang in ["rust", "python", "javascript"] {
        let out = dir.path().join(lang);
        HOST.ok(
            &data,
            &[
                "connectors",
                "new",
                "acme-crm",
                "--lang",
                lang,
                "--dir",
                out.to_str().unwrap(),
            ],
        );
        let root = repository().join("templates").join(lang);
        let mut files = Vec::new();
        template_files(&root, &root, &mut files);
        assert!(files.len() >= 3, "{lang}: {files:?}");
        let mut named = false;
        for file in &files {
            let original = std::fs::read(root.join(file)).unwrap();
            let written = std::fs::read(out.join(file))
                .unwrap_or_else(|e| panic!("{lang}: {} was not written: {e}", file.display()));
            match String::from_utf8(original.clone()) {
                Ok(text) => {
                    named |= text.contains("template-connector");
                    assert_eq!(
                        String::from_utf8(written).unwrap(),
                        text.replace("template-connector", "acme-crm"),
                        "{lang}: {}",
                        file.display()
                    );
                }
                Err(_) => assert_eq!(written, original),
            }
        }
        assert!(
            named,
            "{lang}: no file names the connector template-connector"
        );
        for wit in std::fs::read_dir(repository().join("wit")).unwrap() {
            let path = wit.unwrap().path();
            if path.extension().is_some_and(|e| e == "wit") {
                assert_eq!(
                    std::fs::read(&path).unwrap(),
                    std::fs::read(out.join("wit").join(path.file_name().unwrap())).unwrap(),
                    "{lang}: {}",
                    path.display()
                );
            }
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("build.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_ne!(mode & 0o111, 0, "{lang}: build.sh is not executable");
        let refused = HOST.fails(
            &data,
            &[
                "connectors",
                "new",
                "acme-crm",
                "--lang",
                lang,
                "--dir",
                out.to_str().unwrap(),
            ],
        );
        assert!(refused.contains("not empty"), "{refused}");
    }
    let refused = HOST.fails(&data, &["connectors", "new", "Acme CRM", "--lang", "rust"]);
    assert!(refused.contains("lower-kebab-case"), "{refused}");
}

/// `dev` watching its file: a rebuild is loaded and checked, a broken one is refused while the
/// last good build keeps serving.
#[test]
fn dev_reloads_each_rebuild_and_refuses_a_broken_one() {
    use std::io::{BufRead, BufReader};
    // Built (if need be) before dev starts: a build here would eat the time dev is given.
    let v2 = fixture_variant(Variant::V2);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("connector.wasm");
    std::fs::copy(V1, &file).unwrap();
    /// Kills `dev` however the test ends (a failed one must not leave it running).
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stderr_file = dir.path().join("dev.stderr");
    let mut dev = HOST
        .command(
            dir.path(),
            &[
                "dev",
                file.to_str().unwrap(),
                "--dev-data",
                dir.path().join("dev").to_str().unwrap(),
                "--set",
                "user=u",
                "--set",
                "api-key=fixture-api-key",
                "--set",
                "mode=version",
            ],
        )
        .stdout(std::process::Stdio::piped())
        // Kept for the failure message: what dev warned about while the test waited.
        .stderr(std::fs::File::create(&stderr_file).unwrap())
        .spawn()
        .map(Killed)
        .unwrap();
    let (sender, lines) = std::sync::mpsc::channel::<String>();
    let stdout = dev.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if sender.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let mut wait_for = |what: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !seen.contains(what) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    seen.push_str(&line);
                    seen.push('\n');
                }
                Err(_) => panic!(
                    "dev never said {what:?}; it said:\n{seen}\nand on stderr:\n{}",
                    std::fs::read_to_string(&stderr_file).unwrap_or_default()
                ),
            }
        }
    };
    wait_for("check ok: version 0.1.0");
    wait_for("watching");
    // A rebuild: written elsewhere and renamed into place, as a build tool does.
    let next = dir.path().join("next.wasm");
    std::fs::copy(&v2, &next).unwrap();
    std::fs::rename(&next, &file).unwrap();
    wait_for("rebuilt: fixture 0.2.0 loaded");
    std::fs::write(&file, b"a build that went wrong").unwrap();
    wait_for("refused (the last good build keeps serving)");
    drop(dev);
}

/// `keys generate` and `connectors sign`: the signature travels inside the component, `check`
/// names the signer, a changed byte reads as tampered, and a signed component still loads.
#[test]
fn a_signed_component_names_its_signer_and_a_changed_byte_reads_as_tampered() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = dir.path().join("vendor.key");
    let said = HOST.ok(&data, &["keys", "generate", "--out", key.to_str().unwrap()]);
    let key_id = said
        .lines()
        .find_map(|line| line.strip_prefix("key id "))
        .unwrap_or_else(|| panic!("{said}"))
        .to_string();
    assert!(said.contains("public key ed25519:"), "{said}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = HOST.fails(&data, &["keys", "generate", "--out", key.to_str().unwrap()]);
    assert!(again.contains("must not exist"), "{again}");

    let signed = dir.path().join("signed.wasm");
    HOST.ok(
        &data,
        &[
            "connectors",
            "sign",
            V1,
            "--key",
            key.to_str().unwrap(),
            "--out",
            signed.to_str().unwrap(),
        ],
    );
    let report: Value = serde_json::from_str(&HOST.ok(
        &data,
        &["connectors", "check", signed.to_str().unwrap(), "--json"],
    ))
    .unwrap();
    assert!(
        report["signature"]
            .as_str()
            .unwrap()
            .starts_with(&format!("signed by key {key_id}")),
        "{report:#}"
    );
    let unsigned: Value =
        serde_json::from_str(&HOST.ok(&data, &["connectors", "check", V1, "--json"])).unwrap();
    assert_eq!(unsigned["signature"], "unsigned");

    // One byte of the code changed after signing.
    let mut bytes = std::fs::read(&signed).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    let tampered = dir.path().join("tampered.wasm");
    std::fs::write(&tampered, &bytes).unwrap();
    let refused = HOST.fails(&data, &["connectors", "check", tampered.to_str().unwrap()]);
    assert!(refused.contains("tampered"), "{refused}");

    // The signed component loads like any other.
    let plugins = data.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(&signed, plugins.join("fixture.wasm")).unwrap();
    let listed = HOST.ok(&data, &["connectors", "list"]);
    assert!(listed.contains("fixture"), "{listed}");
}
