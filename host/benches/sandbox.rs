//! What the sandbox costs, against the connector's core compiled natively, in one run. Prints a
//! table; run with `cargo bench -p bss-host --bench sandbox` (release build). A first cut of
//! issue 8: per-call figures, one-record pushes, and sync throughput through the same engine.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bss_host::capabilities::context::{InstanceContext, LookupEntry};
use bss_host::capabilities::options::InstanceOptions;
use bss_host::runtime::manifest::{Direction, Entity, Operations};
use bss_host::runtime::{Connector, Runtime, RuntimeConfig};
use bss_host::store::sqlite::SqliteStore;
use bss_host::store::{InstanceRow, Store};
use bss_host::sync::connector::SyncConnector;
use bss_host::sync::native::NativeConnectWise;
use bss_host::sync::records::parse_file;
use bss_host::sync::{Engine, Pacing};
use cw_sandbox::{Sandbox, SandboxConfig};

const FIXTURE: &str = env!("BSS_FIXTURE_WASM");
const CONNECTWISE: &str = env!("BSS_CONNECTWISE_WASM");

fn row(what: &str, value: String) {
    println!("| {what:<58} | {value:>22} |");
}

fn per_call(total: Duration, calls: u32) -> String {
    format!("{:.2} µs", total.as_secs_f64() * 1e6 / f64::from(calls))
}

fn cw_context(connector: &Connector, sandbox: &Sandbox) -> Arc<InstanceContext> {
    let settings: BTreeMap<String, String> = [
        ("url", sandbox.base_url()),
        ("company-id", "sandbox".into()),
        ("public-key", "sandbox-public".into()),
        ("private-key", "sandbox-private".into()),
        ("client-id", "0c8f3c52-5b7e-4c1a-9d8e-1f2a3b4c5d6e".into()),
        ("import-account-id", "4".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut lookups = BTreeMap::new();
    let entry = |bss: &str, remote: &str| LookupEntry {
        bss_value: bss.into(),
        remote_value: remote.into(),
        pull_default: false,
    };
    lookups.insert("account-type".to_string(), vec![entry("Customer", "1")]);
    lookups.insert("currency".to_string(), vec![entry("USD", "1")]);
    let options = InstanceOptions {
        allow_private_network: true,
        requests_per_minute: 10_000_000,
        max_requests_per_call: 2_000,
        ..InstanceOptions::default()
    };
    Arc::new(
        InstanceContext::new("bench", connector.manifest(), &settings, lookups, options)
            .expect("bench settings"),
    )
}

fn accounts(n: usize, prefix: &str) -> String {
    (1..=n)
        .map(|i| {
            format!(
                r#"{{"id":"{prefix}{i:05}","code":"C{i}","name":"Bench {i}","account-type":"Customer","currency":"USD","billing-address":{{"line1":"{i} Main St","city":"Austin"}}}}"#
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Pushes then pulls `n` accounts through the engine with `connector`; returns the push and pull
/// times and how many records the pull delivered (everything in the sandbox).
async fn throughput<C: SyncConnector>(
    connector: &C,
    context: &Arc<InstanceContext>,
    n: usize,
    prefix: &str,
) -> (Duration, Duration, usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("bss.db")).expect("store");
    store
        .create_instance(&InstanceRow {
            name: "bench".into(),
            connector: "connectwise".into(),
            version_req: None,
            installation: "bench".into(),
            enabled: true,
            created_at: "2026-01-01T00:00:00Z".into(),
        })
        .expect("instance");
    let ops = Operations {
        create: true,
        update: true,
        delete: false,
    };
    store
        .set_sync_options(
            "bench",
            &[
                (Entity::Account, Direction::Push, ops),
                (Entity::Account, Direction::Pull, ops),
            ],
        )
        .expect("options");
    let engine = Engine {
        store: &store,
        connector,
        pacing: Pacing::for_context(context),
        context: context.clone(),
        progress: None,
    };
    let (records, _) = parse_file(Entity::Account, &accounts(n, prefix));
    let started = Instant::now();
    let report = engine
        .push(Entity::Account, records, vec![], false, "push")
        .await
        .expect("push");
    let push = started.elapsed();
    assert_eq!(report.created, n, "every account created");
    let started = Instant::now();
    let mut out = Vec::new();
    let pulled = engine
        .pull(Entity::Account, None, &mut out)
        .await
        .expect("pull");
    assert!(pulled.delivered >= n);
    (push, started.elapsed(), pulled.delivered)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cache = tempfile::tempdir().expect("temp dir");
    println!("| {:<58} | {:>22} |\n|---|---|", "what", "figure");

    for (name, file) in [("fixture", FIXTURE), ("connectwise", CONNECTWISE)] {
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(cache.path().to_path_buf()),
            ..RuntimeConfig::default()
        })
        .expect("runtime");
        let started = Instant::now();
        runtime.load_file(Path::new(file)).await.expect("compile");
        let compile = started.elapsed();
        let restarted = Runtime::new(RuntimeConfig {
            cache_dir: Some(cache.path().to_path_buf()),
            ..RuntimeConfig::default()
        })
        .expect("runtime");
        let started = Instant::now();
        restarted
            .load_file(Path::new(file))
            .await
            .expect("cached load");
        let cached = started.elapsed();
        assert_eq!(restarted.compile_count(), 0);
        row(
            &format!("load {name}: compile / from disk cache (incl. manifest call)"),
            format!(
                "{:.1} ms / {:.2} ms",
                compile.as_secs_f64() * 1e3,
                cached.as_secs_f64() * 1e3
            ),
        );
    }

    for pooling in [true, false] {
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(cache.path().to_path_buf()),
            pooling,
            ..RuntimeConfig::default()
        })
        .expect("runtime");
        let fixture = runtime
            .load_file(Path::new(FIXTURE))
            .await
            .expect("fixture");
        let context = Arc::new(InstanceContext::empty("bench"));
        let calls = 5_000;
        for _ in 0..200 {
            let _ = fixture.lookup_choices(&context, "none").await;
        }
        let started = Instant::now();
        for _ in 0..calls {
            let _ = fixture
                .lookup_choices(&context, "none")
                .await
                .expect("call");
        }
        row(
            &format!(
                "fresh instance + trivial export call, pooling {}",
                if pooling { "on" } else { "off" }
            ),
            per_call(started.elapsed(), calls),
        );
    }

    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let component = runtime
        .load_file(Path::new(CONNECTWISE))
        .await
        .expect("connectwise");
    let native = NativeConnectWise::new(runtime.http_client());
    let n = 2_000;
    // Each side gets a fresh sandbox, so neither pays for the other's records.
    let sandbox = Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let (wasm_push, wasm_pull, wasm_pulled) =
        throughput(&component, &cw_context(&component, &sandbox), n, "W").await;
    drop(sandbox);
    let sandbox = Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let (native_push, native_pull, native_pulled) =
        throughput(&native, &cw_context(&component, &sandbox), n, "N").await;
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    row(
        &format!("push {n} accounts: component / native (records/s)"),
        format!("{:.0} / {:.0}", rate(wasm_push), rate(native_push)),
    );
    row(
        "push: component time ÷ native time",
        format!("{:.3}", wasm_push.as_secs_f64() / native_push.as_secs_f64()),
    );
    let per_record = |d: Duration, records: usize| d.as_secs_f64() / records as f64;
    row(
        &format!("pull ({wasm_pulled} / {native_pulled} accounts): component / native (records/s)"),
        format!(
            "{:.0} / {:.0}",
            1.0 / per_record(wasm_pull, wasm_pulled),
            1.0 / per_record(native_pull, native_pulled)
        ),
    );
    row(
        "pull: component ÷ native time per record",
        format!(
            "{:.3}",
            per_record(wasm_pull, wasm_pulled) / per_record(native_pull, native_pulled)
        ),
    );
}
