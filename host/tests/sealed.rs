//! A sealed value stays sealed, whatever a connector's manifest says later — through the real
//! binary: a second version that declares the secret `api-key` as text is refused while an
//! instance holds a sealed value under it; a file whose manifest alternates is read once and the
//! stored answer decides; a file whose two answers differ is refused as non-deterministic, by
//! content, so later commands do not ask it again.

mod common;

use std::path::Path;
use std::time::Duration;

use common::cli::Folder;
use common::fixture_variants::{Variant, fixture_variant};
use serde_json::Value;

const V1: &str = env!("BSS_FIXTURE_WASM");
const SECRET: &str = "s3cr3t-value-never-shown";

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

#[test]
fn a_later_version_declaring_a_secret_as_text_is_refused_and_reads_nothing() {
    let folder = Folder::new();
    folder.plugin(V1, "fixture-0.1.0.wasm");
    folder.ok_all(&["activate", "fixture", "--name", "fx"]);
    let secret = format!("api-key={SECRET}");
    folder.ok_all(&probe_settings(&[&secret]));

    folder.plugin(fixture_variant(Variant::Unseal), "fixture-0.5.0.wasm");
    let checked = folder.ok_all(&["check", "fx"]);
    assert!(checked.contains("secret none"), "{checked}");
    assert!(!checked.contains(SECRET), "the secret leaked: {checked}");
    assert!(
        checked.contains("holds a sealed (secret) value"),
        "the refusal is said: {checked}"
    );
    let listed = folder.run(&["connectors", "list", "--json"]);
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
    let cleared = folder.run(&["settings", "set", "fx", "api-key="]);
    assert!(
        String::from_utf8_lossy(&cleared.stdout).contains("saved 1 setting(s) of fx"),
        "{cleared:?}"
    );
    folder.ok_all(&["settings", "set", "fx", "tenant=t", "api-key=plain-now"]);
    let checked = folder.ok_all(&["check", "fx"]);
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
    let folder = Folder::new();
    folder.plugin(fixture_variant(Variant::Flap), "fixture-flap.wasm");
    // Compile it once in another data folder and take its compile cache along, so the first
    // command here reads the manifest within a second of starting, not after compiling.
    let scratch = Folder::new();
    scratch.plugin(fixture_variant(Variant::Flap), "fixture-flap.wasm");
    scratch.ok_all(&["connectors", "list"]);
    copy_folder(&scratch.data.join("cache"), &folder.data.join("cache"));
    // First seen while it says "secret": that answer is stored with its content hash.
    wait_for_window(true);
    // (The copied cache makes the folder look used: starting its database is said explicitly.)
    folder.ok_all(&["--new-database", "activate", "fixture", "--name", "fx"]);
    let inspected = folder.run(&["connectors", "inspect", "fixture", "--json"]);
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
    folder.ok_all(&probe_settings(&[&secret, "tenant=t"]));
    // Later, while it would say "text", nothing reads it again: the secret stays sealed.
    {
        wait_for_window(false);
        let checked = folder.ok_all(&["check", "fx"]);
        assert!(checked.contains("secret none"), "{checked}");
        assert!(!checked.contains(SECRET), "{checked}");
        let shown = folder.ok_all(&["settings", "show", "fx", "--json"]);
        assert!(!shown.contains(SECRET), "{shown}");
    }
}

#[test]
fn a_manifest_that_answers_differently_each_time_is_refused_once_by_content() {
    let folder = Folder::new();
    folder.plugin(fixture_variant(Variant::FlapRandom), "fixture-random.wasm");
    let first = folder.ok_all(&["connectors", "list"]);
    assert!(
        first.contains("answered differently from one call to the next"),
        "{first}"
    );
    let again = folder.ok_all(&["connectors", "list"]);
    assert!(
        again.contains("was refused before, by content"),
        "a later command does not ask it again: {again}"
    );
}

#[test]
fn a_manifest_that_never_answers_costs_listing_nothing_and_is_asked_once() {
    let folder = Folder::new();
    folder.plugin(fixture_variant(Variant::ManifestLoop), "fixture-loop.wasm");
    // Listing instances calls no connector: it does not load the looping one at all.
    let listed = folder.ok_all(&["instances", "list"]);
    assert!(!listed.contains("fixture-loop"), "{listed}");
    // The first command that loads connectors meets the manifest deadline once…
    let first = folder.ok_all(&["connectors", "list"]);
    assert!(first.contains("manifest()"), "{first}");
    // …and later ones refuse the same bytes without asking again.
    let again = folder.ok_all(&["connectors", "list"]);
    assert!(again.contains("was refused before, by content"), "{again}");
}
