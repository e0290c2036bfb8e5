//! A sealed value stays sealed, whatever a connector's manifest says later — through the real
//! binary: a second version that declares the secret `api-key` as text is refused while an
//! instance holds a sealed value under it; a file whose manifest alternates is read once and the
//! stored answer decides; a file whose two answers differ is refused as non-deterministic, by
//! content, so later commands do not ask it again.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_bss-host");
const V1: &str = env!("BSS_FIXTURE_WASM");
const UNSEAL: &str = env!("BSS_FIXTURE_UNSEAL_WASM");
const FLAP: &str = env!("BSS_FIXTURE_FLAP_WASM");
const FLAP_RANDOM: &str = env!("BSS_FIXTURE_FLAP_RANDOM_WASM");
const SECRET: &str = "s3cr3t-value-never-shown";

fn run(data: &Path, plugins: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data")
        .arg(data)
        .arg("--plugins")
        .arg(plugins)
        .args(args)
        .env("BSS_HOST_LOG", "warn")
        .env_remove("BSS_HOST_KEY")
        .output()
        .unwrap()
}

fn ok(data: &Path, plugins: &Path, args: &[&str]) -> String {
    let out = run(data, plugins, args);
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "bss-host {args:?} failed:\n{all}");
    all
}

/// Settings of a fixture instance `fx` whose check says what `settings.get("api-key")` gives it.
fn probe_settings<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "settings",
        "set",
        "fx",
        "base-url=http://127.0.0.1:9",
        "user=u",
        "mode=probe",
        "param=api-key",
        "host.allow-private-network=on",
    ];
    args.extend(extra);
    args
}

fn folders() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (data, plugins) = (dir.path().join("data"), dir.path().join("plugins"));
    std::fs::create_dir_all(&plugins).unwrap();
    (dir, data, plugins)
}

#[test]
fn a_later_version_declaring_a_secret_as_text_is_refused_and_reads_nothing() {
    let (_dir, data, plugins) = folders();
    std::fs::copy(V1, plugins.join("fixture-0.1.0.wasm")).unwrap();
    ok(&data, &plugins, &["activate", "fixture", "--name", "fx"]);
    let secret = format!("api-key={SECRET}");
    ok(&data, &plugins, &probe_settings(&[&secret]));

    std::fs::copy(UNSEAL, plugins.join("fixture-0.5.0.wasm")).unwrap();
    let checked = ok(&data, &plugins, &["check", "fx"]);
    assert!(checked.contains("secret none"), "{checked}");
    assert!(!checked.contains(SECRET), "the secret leaked: {checked}");
    assert!(
        checked.contains("holds a sealed (secret) value"),
        "the refusal is said: {checked}"
    );
    let listed = run(&data, &plugins, &["connectors", "list", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let loaded: Vec<&str> = listed["loaded"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "fixture")
        .map(|c| c["version"].as_str().unwrap())
        .collect();
    assert_eq!(loaded, ["0.1.0"], "0.5.0 is not loaded: {listed}");

    // Cleared, the value is gone; the version loads, and a value set now is text, as declared.
    // (Its check fails: the credentials need a key. The value is cleared all the same.)
    let cleared = run(&data, &plugins, &["settings", "set", "fx", "api-key="]);
    assert!(
        String::from_utf8_lossy(&cleared.stdout).contains("saved 1 setting(s) of fx"),
        "{cleared:?}"
    );
    ok(
        &data,
        &plugins,
        &["settings", "set", "fx", "tenant=t", "api-key=plain-now"],
    );
    let checked = ok(&data, &plugins, &["check", "fx"]);
    // Readable now (not "none"); still printed redacted, as it builds the credentials.
    assert!(checked.contains("secret [REDACTED]"), "{checked}");
    assert!(!checked.contains(SECRET), "{checked}");
}

fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_folder(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Waits until the flapping fixture's ten-second window is `secret` (or not), near its start.
fn wait_for_window(secret: bool) {
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let in_secret = (now.as_secs() / 10).is_multiple_of(2);
        let into = (now.as_secs() % 10) * 1000 + u64::from(now.subsec_millis());
        if in_secret == secret && into < 1000 {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_manifest_is_read_once_and_the_stored_answer_decides() {
    let (_dir, data, plugins) = folders();
    std::fs::copy(FLAP, plugins.join("fixture-flap.wasm")).unwrap();
    // Compile it once in another data folder and take its compile cache along, so the first
    // command here reads the manifest within a second of starting, not after compiling.
    let (_scratch_dir, scratch, _) = folders();
    ok(&scratch, &plugins, &["connectors", "list"]);
    copy_folder(&scratch.join("cache"), &data.join("cache"));
    // First seen while it says "secret": that answer is stored with its content hash.
    wait_for_window(true);
    // (The copied cache makes the folder look used: starting its database is said explicitly.)
    ok(
        &data,
        &plugins,
        &["--new-database", "activate", "fixture", "--name", "fx"],
    );
    let inspected = run(
        &data,
        &plugins,
        &["connectors", "inspect", "fixture", "--json"],
    );
    let manifest: Value = serde_json::from_slice(&inspected.stdout).unwrap();
    let kind = manifest["server-variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["key"] == "api-key")
        .map(|v| v["kind"].clone());
    assert_eq!(
        kind,
        Some(Value::from("secret")),
        "the first read fell in the secret window"
    );
    let secret = format!("api-key={SECRET}");
    ok(&data, &plugins, &probe_settings(&[&secret, "tenant=t"]));
    // Later, while it would say "text", nothing reads it again: the secret stays sealed.
    {
        wait_for_window(false);
        let checked = ok(&data, &plugins, &["check", "fx"]);
        assert!(checked.contains("secret none"), "{checked}");
        assert!(!checked.contains(SECRET), "{checked}");
        let shown = ok(&data, &plugins, &["settings", "show", "fx", "--json"]);
        assert!(!shown.contains(SECRET), "{shown}");
    }
}

#[test]
fn a_manifest_that_answers_differently_each_time_is_refused_once_by_content() {
    let (_dir, data, plugins) = folders();
    std::fs::copy(FLAP_RANDOM, plugins.join("fixture-random.wasm")).unwrap();
    let first = ok(&data, &plugins, &["connectors", "list"]);
    assert!(
        first.contains("answered differently from one call to the next"),
        "{first}"
    );
    let again = ok(&data, &plugins, &["connectors", "list"]);
    assert!(
        again.contains("was refused before, by content"),
        "a later command does not ask it again: {again}"
    );
}

#[test]
fn a_manifest_that_never_answers_costs_listing_nothing_and_is_asked_once() {
    let (_dir, data, plugins) = folders();
    std::fs::copy(
        env!("BSS_FIXTURE_MANIFEST_LOOP_WASM"),
        plugins.join("fixture-loop.wasm"),
    )
    .unwrap();
    // Listing instances calls no connector: it does not load the looping one at all.
    let listed = ok(&data, &plugins, &["instances", "list"]);
    assert!(!listed.contains("fixture-loop"), "{listed}");
    // The first command that loads connectors meets the manifest deadline once…
    let first = ok(&data, &plugins, &["connectors", "list"]);
    assert!(first.contains("manifest()"), "{first}");
    // …and later ones refuse the same bytes without asking again.
    let again = ok(&data, &plugins, &["connectors", "list"]);
    assert!(again.contains("was refused before, by content"), "{again}");
}
