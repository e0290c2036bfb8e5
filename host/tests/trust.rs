//! Only connectors the operator trusts load — through the real binary, with fixture builds signed
//! by `bss-host connectors sign` and keys made by `bss-host keys generate`: signed and trusted
//! loads; tampered, unsigned and untrusted files are refused with the reason; a key trusted for
//! other names cannot publish this one; `--allow-unsigned` loads unsigned files and lists them so;
//! removing a key stops new loads while what `serve` loaded keeps serving; and every action is in
//! the audit log with who did it.

mod common;
mod cw;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::cli::{HOST, Host};
use common::fixture_variants::{Variant, fixture_variant};
use serde_json::Value;

const V1: &str = env!("BSS_FIXTURE_WASM");
/// The binary as an operator runs it: only signed connectors load.
const SIGNED_ONLY: Host = Host {
    signed_only: true,
    ..HOST
};

/// A signing key: its file and its public key (`ed25519:…`) as `keys generate` prints it.
struct Key {
    file: PathBuf,
    public: String,
    id: String,
}

fn generate_key(dir: &Path, name: &str) -> Key {
    let file = dir.join(format!("{name}.key"));
    let out = HOST.ok(dir, &["keys", "generate", "--out", file.to_str().unwrap()]);
    let field = |prefix: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {out}"))
            .to_string()
    };
    Key {
        public: field("public key "),
        id: field("key id "),
        file,
    }
}

/// `connectors sign FILE --key KEY --out OUT`.
fn sign(dir: &Path, file: &Path, key: &Key, out: &Path) {
    HOST.ok(
        dir,
        &[
            "connectors",
            "sign",
            file.to_str().unwrap(),
            "--key",
            key.file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
}

fn listing(host: Host, data: &Path, plugins: &Path) -> Value {
    serde_json::from_str(
        &host
            .plugins(plugins)
            .ok(data, &["connectors", "list", "--json"]),
    )
    .unwrap()
}

/// (name, version, signed-by) of each loaded version.
fn loaded(list: &Value) -> Vec<(String, String, String)> {
    list["loaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_string(),
                l["version"].as_str().unwrap().to_string(),
                l["signed-by"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The reason a file (by its name) was refused.
fn refusal(list: &Value, file: &str) -> Option<String> {
    list["refused"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["source"].as_str().unwrap().ends_with(file))
        .map(|r| r["reason"].as_str().unwrap().to_string())
}

fn audit(data: &Path) -> Vec<Value> {
    serde_json::from_str(&HOST.ok(data, &["audit", "--json"])).unwrap()
}

fn has_entry(entries: &[Value], action: &str, subject: &str, detail: &str) -> bool {
    entries.iter().any(|e| {
        e["action"] == action
            && e["subject"].as_str().unwrap().contains(subject)
            && e["detail"].as_str().unwrap().contains(detail)
    })
}

/// Polls `GET /connectors` until `found` finds something in it; fails the test after a minute.
async fn connectors_until<T>(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    what: &str,
    found: impl Fn(&Value) -> Option<T>,
) -> T {
    let started = std::time::Instant::now();
    loop {
        let list: Value = client
            .get(format!("{base}/connectors"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(value) = found(&list) {
            return value;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} never happened: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn only_files_signed_by_a_key_trusted_for_their_name_load() {
    let v2 = fixture_variant(Variant::V2);
    let other = fixture_variant(Variant::Other);
    let dir = tempfile::tempdir().unwrap();
    let (data, plugins) = (dir.path().join("data"), dir.path().join("plugins"));
    std::fs::create_dir_all(&plugins).unwrap();
    let vendor = generate_key(dir.path(), "vendor");
    let stranger = generate_key(dir.path(), "stranger");
    sign(
        dir.path(),
        Path::new(V1),
        &vendor,
        &plugins.join("fixture.wasm"),
    );

    // Signed, but by a key nobody trusted: refused before any of its code runs, naming the key.
    let list = listing(SIGNED_ONLY, &data, &plugins);
    assert_eq!(
        loaded(&list),
        [(
            "connectwise".to_string(),
            loaded(&list)[0].1.clone(),
            "the host (bundled)".to_string()
        )]
    );
    let reason = refusal(&list, "fixture.wasm").expect("refused");
    assert!(
        reason.contains(&vendor.id) && reason.contains("not on the trust list"),
        "{reason}"
    );

    // Trusted for its name: it loads, and says who signed it.
    let added = HOST.ok(
        &data,
        &[
            "trust",
            "add",
            "vendor",
            &vendor.public,
            "--connectors",
            "fixture,fixture-*",
        ],
    );
    assert!(added.contains(&vendor.id), "{added}");
    let list = listing(SIGNED_ONLY, &data, &plugins);
    assert!(
        loaded(&list).contains(&(
            "fixture".into(),
            "0.1.0".into(),
            format!("vendor (key {})", vendor.id)
        )),
        "{list}"
    );
    let trusted: Value =
        serde_json::from_str(&HOST.ok(&data, &["trust", "list", "--json"])).unwrap();
    assert_eq!(trusted["keys"][0]["key-id"], vendor.id.as_str());
    assert_eq!(trusted["keys"][0]["connectors"], "fixture,fixture-*");

    // The same bytes with one byte changed: refused as tampered (the signature names the
    // trusted key, and does not match).
    let mut bytes = std::fs::read(plugins.join("fixture.wasm")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(plugins.join("tampered.wasm"), &bytes).unwrap();
    // Unsigned: refused by default.
    std::fs::copy(&other, plugins.join("other.wasm")).unwrap();
    // A newer fixture signed by a key trusted only for other names: refused for this name.
    HOST.ok(
        &data,
        &[
            "trust",
            "add",
            "stranger",
            &stranger.public,
            "--connectors",
            "other-*",
        ],
    );
    sign(dir.path(), &v2, &stranger, &plugins.join("fixture-2.wasm"));
    let list = listing(SIGNED_ONLY, &data, &plugins);
    let tampered = refusal(&list, "tampered.wasm").expect("tampered refused");
    assert!(tampered.contains("tampered"), "{tampered}");
    let unsigned = refusal(&list, "other.wasm").expect("unsigned refused");
    assert!(
        unsigned.contains("not signed") && unsigned.contains("--allow-unsigned"),
        "{unsigned}"
    );
    let impostor = refusal(&list, "fixture-2.wasm").expect("fixture 0.2.0 refused");
    assert!(
        impostor.contains("holds connector fixture")
            && impostor.contains("\"stranger\"")
            && impostor.contains("trusted only for other-*"),
        "{impostor}"
    );
    assert!(
        !loaded(&list)
            .iter()
            .any(|(name, version, _)| name == "fixture" && version == "0.2.0"),
        "{list}"
    );
    std::fs::remove_file(plugins.join("tampered.wasm")).unwrap();
    // Trusted for every name, the other key still cannot publish a connector the first one
    // publishes: the name stays with its publisher unless handed over by name.
    HOST.ok(&data, &["trust", "remove", "stranger"]);
    HOST.ok(&data, &["trust", "add", "stranger", &stranger.public]);
    let list = listing(SIGNED_ONLY, &data, &plugins);
    let taken = refusal(&list, "fixture-2.wasm").expect("fixture 0.2.0 refused");
    assert!(
        taken.contains("published by \"vendor\"") && taken.contains("--connectors fixture"),
        "{taken}"
    );
    HOST.ok(&data, &["trust", "remove", "stranger"]);

    // With the explicit flag the unsigned file loads, and is listed as unsigned.
    let allowed = listing(HOST, &data, &plugins);
    assert_eq!(allowed["allow-unsigned"], true);
    assert!(
        loaded(&allowed)
            .iter()
            .any(|(name, _, by)| name == "other-fixture"
                && by == "unsigned (allowed by --allow-unsigned)"),
        "{allowed}"
    );
    let text = HOST.plugins(&plugins).ok(&data, &["connectors", "list"]);
    assert!(text.contains("unsigned connectors are allowed"), "{text}");
    // … and still refuses the fixture signed by a key trusted for other names.
    assert!(refusal(&allowed, "fixture-2.wasm").is_some(), "{allowed}");
    std::fs::remove_file(plugins.join("other.wasm")).unwrap();

    // The vendor's own 0.2.0 loads; settings, a rollback and a restore are audited with who.
    sign(dir.path(), &v2, &vendor, &plugins.join("fixture-2.wasm"));
    let signed_only = SIGNED_ONLY.plugins(&plugins);
    signed_only.ok(
        &data,
        &["activate", "fixture", "--name", "fx", "--version", "=0.1.0"],
    );
    signed_only.ok(
        &data,
        &[
            "settings",
            "set",
            "fx",
            "base-url=http://127.0.0.1:9",
            "user=u",
            "api-key=sk-very-secret",
            "mode=version",
            "host.allow-private-network=on",
        ],
    );
    signed_only.ok(&data, &["connectors", "rollback", "fixture"]);
    signed_only.ok(&data, &["connectors", "restore", "fixture", "0.2.0"]);

    // Removing the key: what it signed is said, and refused from the next load on.
    let removed = HOST.ok(&data, &["trust", "remove", "vendor"]);
    assert!(
        removed.contains("fixture 0.1.0") && removed.contains("fixture 0.2.0"),
        "{removed}"
    );
    assert!(removed.contains("keep serving"), "{removed}");
    let list = listing(SIGNED_ONLY, &data, &plugins);
    assert!(
        !loaded(&list).iter().any(|(name, ..)| name == "fixture"),
        "{list}"
    );
    assert!(refusal(&list, "fixture.wasm").is_some());
    let missing = HOST.fails(&data, &["trust", "remove", "vendor"]);
    assert!(missing.contains("trust list"), "{missing}");
    let bad = HOST.fails(&data, &["trust", "add", "x", "ssh-ed25519 AAAA"]);
    assert!(bad.contains("PUBLIC-KEY"), "{bad}");
    let bad = HOST.fails(
        &data,
        &[
            "trust",
            "add",
            "x",
            &vendor.public,
            "--connectors",
            "Bad/name",
        ],
    );
    assert!(bad.contains("--connectors"), "{bad}");

    let entries = audit(&data);
    let user = format!(
        "cli:{}",
        std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into())
    );
    for (action, subject, detail) in [
        ("connector.refused", "fixture.wasm", "not on the trust list"),
        ("trust.added", "vendor", &vendor.id),
        (
            "connector.loaded",
            "fixture 0.1.0",
            &format!("vendor (key {})", vendor.id),
        ),
        ("connector.refused", "tampered.wasm", "tampered"),
        ("connector.refused", "other.wasm", "not signed"),
        (
            "connector.refused",
            "fixture-2.wasm",
            "trusted only for other-*",
        ),
        ("connector.loaded", "other-fixture", "unsigned"),
        ("connector.loaded", "fixture 0.2.0", "vendor"),
        ("settings.changed", "fx", "api-key"),
        ("connector.rolled-back", "fixture 0.2.0", "0.1.0"),
        ("connector.restored", "fixture 0.2.0", ""),
        ("trust.removed", "vendor", "fixture 0.1.0"),
    ] {
        assert!(
            has_entry(&entries, action, subject, detail),
            "no {action} of {subject} with {detail:?} in the audit log: {entries:#?}"
        );
    }
    for e in &entries {
        let actor = e["actor"].as_str().unwrap();
        let by_user = e["action"].as_str().unwrap().starts_with("trust.")
            || e["action"] == "settings.changed"
            || e["action"].as_str().unwrap().starts_with("connector.r")
                && e["action"] != "connector.refused";
        if by_user {
            assert_eq!(actor, user, "{e}");
        } else {
            assert_eq!(actor, "host", "{e}");
        }
    }
    assert!(
        !serde_json::to_string(&entries)
            .unwrap()
            .contains("sk-very-secret"),
        "a setting's value reached the audit log"
    );
    // Each command meets the same files again: a load or refusal is recorded once while the
    // trust list stays as it is.
    HOST.ok(
        &data,
        &[
            "trust",
            "add",
            "vendor",
            &vendor.public,
            "--connectors",
            "fixture",
        ],
    );
    listing(SIGNED_ONLY, &data, &plugins);
    let before = audit(&data).len();
    listing(SIGNED_ONLY, &data, &plugins);
    listing(SIGNED_ONLY, &data, &plugins);
    assert_eq!(audit(&data).len(), before, "{:#?}", audit(&data));
    let loads = audit(&data)
        .iter()
        .filter(|e| e["action"] == "connector.loaded" && e["subject"] == "fixture 0.1.0")
        .count();
    assert!(loads >= 2, "loaded again once trusted again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_key_stops_new_loads_while_serving_versions_keep_serving() {
    let v2 = fixture_variant(Variant::V2);
    let dir = tempfile::tempdir().unwrap();
    let (data, plugins) = (dir.path().join("data"), dir.path().join("plugins"));
    std::fs::create_dir_all(&plugins).unwrap();
    let vendor = generate_key(dir.path(), "vendor");
    sign(
        dir.path(),
        Path::new(V1),
        &vendor,
        &plugins.join("fixture.wasm"),
    );
    let host = SIGNED_ONLY.plugins(&plugins);
    host.ok(
        &data,
        &[
            "trust",
            "add",
            "vendor",
            &vendor.public,
            "--connectors",
            "fixture",
        ],
    );
    host.ok(&data, &["activate", "fixture", "--name", "fx"]);
    host.ok(
        &data,
        &[
            "settings",
            "set",
            "fx",
            "base-url=http://127.0.0.1:9",
            "user=u",
            "api-key=k",
            "mode=version",
            "host.allow-private-network=on",
        ],
    );

    let served = cw::serve(host.command(&data, &[]));
    let (token, base) = (served.token.clone(), served.base.clone());
    let client = cw::api_client();
    let check = || async {
        client
            .post(format!("{base}/instances/fx/check"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    assert_eq!(check().await["summary"], "version 0.1.0");

    let removed: Value = client
        .delete(format!("{base}/trust/vendor"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(removed["removed"]["key-id"], vendor.id.as_str());
    assert_eq!(removed["still-serving"][0]["version"], "0.1.0", "{removed}");
    assert!(removed["note"].as_str().unwrap().contains("rolled back"));

    // A new version signed by the removed key is refused by the running server…
    sign(dir.path(), &v2, &vendor, &plugins.join("fixture-2.wasm"));
    let reason = connectors_until(&client, &base, &token, "the dropped file refused", |list| {
        refusal(list, "fixture-2.wasm")
    })
    .await;
    assert!(reason.contains("not on the trust list"), "{reason}");
    // …while the version it loaded before keeps serving.
    assert_eq!(check().await["summary"], "version 0.1.0");

    // Trust changes and settings through the API are audited with the token's name.
    let added = client
        .post(format!("{base}/trust"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "name": "vendor", "public-key": vendor.public, "connectors": "fixture" }))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 200);
    let again = client
        .post(format!("{base}/trust"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "name": "vendor", "public-key": vendor.public }))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    // Trusted again: the running server tries the refused file again, unchanged, and loads it.
    let list = connectors_until(&client, &base, &token, "the file loaded", |list| {
        loaded(list)
            .iter()
            .any(|(name, version, _)| name == "fixture" && version == "0.2.0")
            .then(|| list.clone())
    })
    .await;
    assert!(refusal(&list, "fixture-2.wasm").is_none(), "{list}");
    let patched = client
        .patch(format!("{base}/instances/fx/settings"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "user": "someone" }))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let audit: Value = client
        .get(format!("{base}/audit"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = audit["entries"].as_array().unwrap();
    let by_token = |action: &str| {
        entries
            .iter()
            .any(|e| e["action"] == action && e["actor"] == "token:serve")
    };
    assert!(by_token("trust.removed"), "{audit}");
    assert!(by_token("trust.added"), "{audit}");
    assert!(by_token("settings.changed"), "{audit}");
    assert!(
        has_entry(
            entries,
            "connector.refused",
            "fixture-2.wasm",
            "not on the trust list"
        ),
        "{audit}"
    );
}
