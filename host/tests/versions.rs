//! Connector versions side by side, rollback, refusal of broken files, the "needs settings" state,
//! and the plugins folder watched by `serve` — through the real binary, with two builds of the
//! fixture connector (0.1.0, and 0.2.0 which needs one more setting).

mod common;
mod cw;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::cli::{BIN, HOST};
use common::fixture_variants::{Variant, fixture_variant};
use serde_json::{Value, json};

const V1: &str = env!("BSS_FIXTURE_WASM");
/// `settings set fx ...` for a fixture instance that answers with its version.
const FX_SETTINGS: [&str; 8] = [
    "settings",
    "set",
    "fx",
    "base-url=http://127.0.0.1:9",
    "user=u",
    "api-key=k",
    "mode=version",
    "host.allow-private-network=on",
];
fn run(data: &Path, plugins: &Path, args: &[&str]) -> Output {
    HOST.plugins(plugins).run(data, args)
}

fn ok(data: &Path, plugins: &Path, args: &[&str]) -> String {
    HOST.plugins(plugins).ok(data, args)
}

fn fails(data: &Path, plugins: &Path, args: &[&str]) -> String {
    HOST.plugins(plugins).fails(data, args)
}

/// The data folder opened in this process as these tests install connectors: unsigned.
async fn open_unsigned_allowed(data: &Path, plugins: &Path) -> bss_host::app::App {
    bss_host::app::App::open_with(
        data,
        bss_host::app::OpenOptions {
            plugins: Some(plugins),
            allow_unsigned: true,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// A temporary folder with a plugins folder holding the fixture 0.1.0, and the data folder beside
/// it opened with those plugins loaded.
async fn plugins_with_v1() -> (tempfile::TempDir, std::path::PathBuf, bss_host::app::App) {
    let dir = tempfile::tempdir().unwrap();
    let (data, plugins) = (dir.path().join("data"), dir.path().join("plugins"));
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(V1, plugins.join("fixture-1.wasm")).unwrap();
    let app = open_unsigned_allowed(&data, &plugins).await;
    (dir, plugins, app)
}

/// Whether the registry has the fixture's `version` loaded.
fn serves_fixture(registry: &bss_host::registry::Registry, version: &str) -> bool {
    registry
        .loaded()
        .iter()
        .any(|l| l.connector.manifest().name == "fixture" && l.version.to_string() == version)
}

/// Polls `probe` every 100 ms until it gives a value; fails the test after `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(started.elapsed() < limit, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn versions(list: &Value) -> Vec<(String, bool)> {
    list["loaded"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "fixture")
        .map(|c| {
            (
                c["version"].as_str().unwrap().to_string(),
                c["withdrawn"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn versions_side_by_side_rollback_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let (data, plugins) = (dir.path().join("data"), dir.path().join("plugins"));
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(V1, plugins.join("fixture-0.1.0.wasm")).unwrap();
    std::fs::copy(
        fixture_variant(Variant::V2),
        plugins.join("fixture-0.2.0.wasm"),
    )
    .unwrap();
    std::fs::copy(
        fixture_variant(Variant::Legacy),
        plugins.join("legacy.wasm"),
    )
    .unwrap();
    let (d, p) = (data.as_path(), plugins.as_path());

    let list: Value = serde_json::from_str(&ok(d, p, &["connectors", "list", "--json"])).unwrap();
    assert_eq!(
        versions(&list),
        vec![("0.1.0".to_string(), false), ("0.2.0".to_string(), false)]
    );
    // Each connector is listed with the contract minor it was built against and when it loaded.
    let wit_of = |name: &str| {
        let row = list["loaded"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap();
        assert!(row["loaded-at"].as_str().unwrap().ends_with('Z'), "{row}");
        row["wit"].as_str().unwrap().to_string()
    };
    assert_eq!(wit_of("fixture"), "bss:integration@1.1.0");
    assert_eq!(wit_of("legacy-fixture"), "bss:integration@1.0.0");
    // A 1.1 manifest's documentation link is shown; a 1.0 connector has none to show.
    let inspected = ok(d, p, &["connectors", "inspect", "fixture"]);
    assert!(
        inspected.contains("documentation https://docs.example.com/fixture"),
        "{inspected}"
    );
    let inspected = ok(d, p, &["connectors", "inspect", "legacy-fixture"]);
    assert!(!inspected.contains("documentation"), "{inspected}");

    ok(d, p, &["activate", "fixture", "--name", "fx"]);
    ok(d, p, &FX_SETTINGS);
    // 0.2.0 serves, and it needs a setting the instance does not have: the instance says so.
    let show = ok(d, p, &["instances", "show", "fx"]);
    assert!(
        show.contains("fixture 0.2.0") && show.contains("needs settings: tenant"),
        "{show}"
    );
    let err = fails(d, p, &["lookups", "choices", "fx", "fruit"]);
    assert!(
        err.contains("instance \"fx\" needs settings: fixture 0.2.0 requires tenant"),
        "{err}"
    );

    // Roll back: instances that follow the newest go back to 0.1.0.
    let out = ok(d, p, &["connectors", "rollback", "fixture"]);
    assert!(
        out.contains("fixture 0.2.0 is withdrawn") && out.contains("now use 0.1.0"),
        "{out}"
    );
    assert!(ok(d, p, &["check", "fx"]).contains("check ok: version 0.1.0"));
    let list: Value = serde_json::from_str(&ok(d, p, &["connectors", "list", "--json"])).unwrap();
    assert_eq!(
        versions(&list),
        vec![("0.1.0".to_string(), false), ("0.2.0".to_string(), true)]
    );

    // A broken file is refused with its reason; what serves keeps serving.
    std::fs::write(plugins.join("broken.wasm"), b"\0asm garbage").unwrap();
    let out = run(d, p, &["connectors", "list", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.wasm was not loaded")
            && stderr.contains("not a valid WebAssembly component"),
        "{stderr}"
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        list["refused"][0]["source"]
            .as_str()
            .unwrap()
            .ends_with("broken.wasm")
    );
    assert!(ok(d, p, &["check", "fx"]).contains("check ok: version 0.1.0"));

    // Newer versions whose manifest() traps, or whose manifest is invalid, are refused with their
    // reasons; the version in service keeps serving.
    std::fs::copy(fixture_variant(Variant::Traps), plugins.join("traps.wasm")).unwrap();
    std::fs::copy(
        fixture_variant(Variant::Invalid),
        plugins.join("invalid.wasm"),
    )
    .unwrap();
    let list: Value = serde_json::from_str(&ok(d, p, &["connectors", "list", "--json"])).unwrap();
    let reason_of = |file: &str| {
        list["refused"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["source"].as_str().unwrap().ends_with(file))
            .unwrap_or_else(|| panic!("{file} is not refused: {list}"))["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let trapped = reason_of("traps.wasm");
    assert!(
        trapped.contains("calling manifest() failed")
            && trapped.contains("fixture manifest traps on purpose"),
        "{trapped}"
    );
    let invalid = reason_of("invalid.wasm");
    assert!(
        invalid.contains("remote-host-variable \"nowhere\" must name the url server variable"),
        "{invalid}"
    );
    assert_eq!(
        versions(&list),
        vec![("0.1.0".to_string(), false), ("0.2.0".to_string(), true)]
    );
    assert!(ok(d, p, &["check", "fx"]).contains("check ok: version 0.1.0"));

    // Restore 0.2.0 and give it what it needs.
    ok(d, p, &["connectors", "restore", "fixture", "0.2.0"]);
    ok(d, p, &["settings", "set", "fx", "tenant=acme"]);
    assert!(ok(d, p, &["check", "fx"]).contains("check ok: version 0.2.0"));
    // An instance pinned to 0.1.0 stays there.
    ok(
        d,
        p,
        &[
            "activate",
            "fixture",
            "--name",
            "pinned",
            "--version",
            "=0.1.0",
        ],
    );
    ok(
        d,
        p,
        &[
            "settings",
            "set",
            "pinned",
            "base-url=http://127.0.0.1:9",
            "user=u",
            "api-key=k",
            "mode=version",
            "host.allow-private-network=on",
        ],
    );
    assert!(ok(d, p, &["check", "pinned"]).contains("check ok: version 0.1.0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_watches_the_plugins_folder() {
    // Built (if need be) before anything here is timed.
    let (v2, other) = (
        fixture_variant(Variant::V2),
        fixture_variant(Variant::Other),
    );
    let dir = tempfile::tempdir().unwrap();
    let (data, plugins) = (dir.path().join("data"), dir.path().join("plugins"));
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(V1, plugins.join("fixture.wasm")).unwrap();
    ok(&data, &plugins, &["activate", "fixture", "--name", "fx"]);
    ok(&data, &plugins, &FX_SETTINGS);

    let mut server = std::process::Command::new(BIN);
    server
        .arg("--data")
        .arg(&data)
        .arg("--plugins")
        .arg(&plugins)
        .env("BSS_HOST_LOG", "warn")
        .env("BSS_HOST_ALLOW_UNSIGNED", "1");
    let served = cw::serve(server);
    let (token, base) = (served.token.clone(), served.base.clone());
    let client = cw::api_client();
    let check = || async {
        let response = client
            .post(format!("{base}/instances/fx/check"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<Value>().await.unwrap(),
        )
    };
    let connectors = || async {
        client
            .get(format!("{base}/connectors"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };

    assert_eq!(check().await.1["summary"], "version 0.1.0");

    // Drop 0.2.0 next to it: it is loaded without a restart and the instance follows it — into
    // the "needs settings" state, since 0.2.0 requires `tenant`.
    std::fs::copy(&v2, plugins.join("fixture-2.wasm")).unwrap();
    let connectors = &connectors;
    let minute = Duration::from_secs(60);
    eventually("loading 0.2.0", minute, move || async move {
        let listed = versions(&connectors().await);
        listed.iter().any(|(v, _)| v == "0.2.0").then_some(())
    })
    .await;
    let (status, body) = check().await;
    assert_eq!(status, 200);
    assert_eq!(body["ok"], false, "{body}");
    let choices = client
        .get(format!("{base}/instances/fx/lookups/fruit/choices"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(choices.status(), 409);
    let message = choices.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("needs settings: fixture 0.2.0 requires tenant"),
        "{message}"
    );
    let set = client
        .patch(format!("{base}/instances/fx/settings"))
        .bearer_auth(&token)
        .json(&json!({ "tenant": "acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    assert_eq!(check().await.1["summary"], "version 0.2.0");

    // A broken drop is refused with its reason; 0.2.0 keeps serving.
    std::fs::write(plugins.join("broken.wasm"), b"not a component").unwrap();
    let refusal = eventually("refusing broken.wasm", minute, move || async move {
        connectors().await["refused"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["source"].as_str().unwrap().ends_with("broken.wasm"))
            .cloned()
    })
    .await;
    assert!(
        refusal["reason"]
            .as_str()
            .unwrap()
            .contains("not a valid WebAssembly component"),
        "{refusal}"
    );
    assert_eq!(check().await.1["summary"], "version 0.2.0");

    // Fixed in place (another connector written over the broken file): loaded, no longer refused.
    std::fs::copy(&other, plugins.join("broken.wasm")).unwrap();
    let list = eventually("loading the fixed file", minute, move || async move {
        let list = connectors().await;
        let loaded = list["loaded"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "other-fixture");
        loaded.then_some(list)
    })
    .await;
    assert_eq!(list["refused"], json!([]), "{list}");

    // Roll back through the API.
    let rolled: Value = client
        .post(format!("{base}/connectors/fixture/rollback"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (rolled["withdrawn"].as_str(), rolled["serving"].as_str()),
        (Some("0.2.0"), Some("0.1.0"))
    );
    assert_eq!(check().await.1["summary"], "version 0.1.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_every_connector_installed_compiles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (data, plugins) = (dir.path().join("data"), dir.path().join("plugins"));
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(V1, plugins.join("fixture-1.wasm")).unwrap();
    std::fs::copy(fixture_variant(Variant::V2), plugins.join("fixture-2.wasm")).unwrap();
    std::fs::copy(
        fixture_variant(Variant::Legacy),
        plugins.join("legacy.wasm"),
    )
    .unwrap();
    std::fs::copy(fixture_variant(Variant::Other), plugins.join("other.wasm")).unwrap();
    let first = open_unsigned_allowed(&data, &plugins).await;
    assert!(first.load_problems.is_empty());
    let installed = first.registry.loaded().len();
    assert_eq!(
        installed, 5,
        "the bundled ConnectWise, two fixture versions, a 1.0-contract fixture and one more"
    );
    assert_eq!(first.registry.runtime().compile_count(), 5);
    drop(first);

    let restarted = open_unsigned_allowed(&data, &plugins).await;
    let mut contracts: Vec<(String, &str)> = restarted
        .registry
        .loaded()
        .iter()
        .map(|l| {
            (
                format!("{} {}", l.connector.manifest().name, l.version),
                l.connector.contract().version(),
            )
        })
        .collect();
    contracts.sort();
    assert_eq!(
        contracts,
        [
            ("connectwise 0.2.0".to_string(), "1.4.0"),
            ("fixture 0.1.0".to_string(), "1.1.0"),
            ("fixture 0.2.0".to_string(), "1.1.0"),
            ("legacy-fixture 0.1.0".to_string(), "1.0.0"),
            ("other-fixture 0.1.0".to_string(), "1.1.0"),
        ]
    );
    assert_eq!(
        restarted.registry.runtime().compile_count(),
        0,
        "a restart loads compiled code from the cache"
    );
}

/// A file dropped after the registry's first load but before the watcher's first look is still
/// loaded; one already loaded and unchanged is not loaded again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_dropped_before_the_watcher_starts_is_not_missed() {
    let v2 = fixture_variant(Variant::V2);
    let (_dir, plugins, app) = plugins_with_v1().await;
    let first_load = |app: &bss_host::app::App| {
        app.registry
            .loaded()
            .into_iter()
            .find(|l| l.version.to_string() == "0.1.0")
            .unwrap()
            .loaded_at
    };
    let v1_loaded_at = first_load(&app);
    std::fs::copy(&v2, plugins.join("fixture-2.wasm")).unwrap();
    let _watcher = bss_host::registry::watch(
        app.registry.clone(),
        plugins.clone(),
        bss_host::registry::WATCH_EVERY,
    );
    let registry = &app.registry;
    eventually(
        "loading 0.2.0",
        Duration::from_secs(30),
        move || async move { serves_fixture(registry, "0.2.0").then_some(()) },
    )
    .await;
    assert_eq!(first_load(&app), v1_loaded_at, "0.1.0 was not loaded again");
}

/// A file still being written, which every rescan finds changed, does not hold up a build that is
/// renamed in meanwhile: the rename is served when it is told, not after a rescan's wait (with a
/// 10 s rescan interval, a wait there would show).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_being_written_does_not_hold_up_a_notified_one() {
    let v2 = fixture_variant(Variant::V2);
    let (dir, plugins, app) = plugins_with_v1().await;
    // The compiled code of 0.2.0 in the cache, so what is timed is the watcher, not a compile.
    app.registry.runtime().load_file(&v2).await.unwrap();
    let every = Duration::from_secs(10);
    let _watcher = bss_host::registry::watch(app.registry.clone(), plugins.clone(), every);

    // A slow writer: a line every 100 ms into a file that stays open.
    let slow = plugins.join("slow.wasm");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (slow, stop) = (slow.clone(), stop.clone());
        std::thread::spawn(move || {
            use std::io::Write as _;
            let mut file = std::fs::File::create(&slow).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                file.write_all(b"still writing\n").unwrap();
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    // Past the first rescan (immediate) and into the next, each finding the slow file changed.
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    let elsewhere = dir.path().join("built.wasm");
    std::fs::copy(&v2, &elsewhere).unwrap();
    let renamed = std::time::Instant::now();
    std::fs::rename(&elsewhere, plugins.join("fixture-2.wasm")).unwrap();
    let registry = &app.registry;
    eventually(
        "loading 0.2.0",
        Duration::from_secs(30),
        move || async move { serves_fixture(registry, "0.2.0").then_some(()) },
    )
    .await;
    let took = renamed.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert!(
        took < Duration::from_secs(3),
        "0.2.0 was served {took:?} after its rename"
    );
}
