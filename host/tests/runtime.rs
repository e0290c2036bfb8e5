//! The runtime's own duties: the compile cache across restarts, refusing what is not a connector,
//! the per-call request budget, dry runs that cannot write, and a log that never shows a secret
//! and stops growing at its budget.

mod common;

use std::path::Path;

use bss_host::capabilities::options::InstanceOptions;
use bss_host::contract::bindings::connector::Change;
use bss_host::contract::bindings::types::{ConnectorError, Entity};
use bss_host::runtime::{LoadError, Runtime, RuntimeConfig};
use common::{
    Captured, FIXTURE_WASM, Reply, TestServer, account, context, fixture, private_ok, runtime,
};

const SECRET: &str = "Pr1vate-hunter2-KEY";

#[tokio::test]
async fn a_restart_loads_compiled_code_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..RuntimeConfig::default()
    };
    let first = Runtime::new(config.clone()).unwrap();
    let connector = first.load_file(Path::new(FIXTURE_WASM)).await.unwrap();
    assert_eq!(first.compile_count(), 1);
    let again = first.load_file(Path::new(FIXTURE_WASM)).await.unwrap();
    assert_eq!(first.compile_count(), 1, "the second load is a cache hit");
    assert_eq!(again.content_hash(), connector.content_hash());
    drop((first, connector, again));

    let restarted = Runtime::new(config.clone()).unwrap();
    let connector = restarted.load_file(Path::new(FIXTURE_WASM)).await.unwrap();
    assert_eq!(restarted.compile_count(), 0, "a restart compiles nothing");
    assert_eq!(connector.manifest().name, "fixture");
    let server = TestServer::start(|_| Reply::text(200, "pong")).await;
    let url = server.url();
    let ctx = context(&connector, &[("base-url", &url)], private_ok());
    assert!(
        connector
            .activate(&ctx)
            .await
            .unwrap()
            .unwrap()
            .starts_with("status 200")
    );

    // A damaged cache entry is discarded and the component compiled again. (Entries are mapped
    // while in use, so the host only ever replaces them by rename; damage them with nothing
    // loaded.)
    drop((restarted, connector));
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"not native code").unwrap();
    }
    let damaged = Runtime::new(config).unwrap();
    let connector = damaged.load_file(Path::new(FIXTURE_WASM)).await.unwrap();
    assert_eq!(damaged.compile_count(), 1);
    assert!(
        connector
            .activate(&ctx)
            .await
            .unwrap()
            .unwrap()
            .starts_with("status 200")
    );
}

#[tokio::test]
async fn what_is_not_a_component_is_refused_with_its_reason() {
    let runtime = runtime();
    let error = runtime
        .load(b"this is not wasm", "garbage.wasm")
        .await
        .err()
        .unwrap();
    assert!(matches!(error, LoadError::NotAComponent { .. }), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("garbage.wasm is not a valid WebAssembly component"),
        "{error}"
    );

    let core_module = b"\0asm\x01\0\0\0";
    let error = runtime.load(core_module, "core.wasm").await.err().unwrap();
    assert!(matches!(error, LoadError::NotAComponent { .. }), "{error}");

    let error = runtime
        .load_file(Path::new("/nonexistent/x.wasm"))
        .await
        .err()
        .unwrap();
    assert!(
        error
            .to_string()
            .starts_with("could not read /nonexistent/x.wasm"),
        "{error}"
    );

    // The runtime still loads and runs a good connector.
    let connector = fixture(&runtime).await;
    assert_eq!(connector.manifest().version, "0.1.0");
}

#[tokio::test]
async fn a_call_may_send_only_its_request_budget() {
    let runtime = runtime();
    let connector = fixture(&runtime).await;
    let server = TestServer::start(|_| Reply::text(200, "ok")).await;
    let url = server.url();
    let options = InstanceOptions {
        max_requests_per_call: 5,
        ..private_ok()
    };
    let target = format!("{url}/again");
    let ctx = context(
        &connector,
        &[
            ("base-url", &url),
            ("mode", "fetch-many"),
            ("param", &target),
        ],
        options,
    );
    let report = connector.activate(&ctx).await.unwrap().unwrap();
    assert_eq!(report, "5 requests, then request-limit: 5");
    assert_eq!(server.seen().len(), 5);
    // The budget is per call: the next call gets a fresh one.
    let report = connector.activate(&ctx).await.unwrap().unwrap();
    assert_eq!(report, "5 requests, then request-limit: 5");
    assert_eq!(server.seen().len(), 10);
}

/// Pooled instance slots are reused, and the host keeps their memory mapped between calls (only
/// dirtied pages are reset): nothing one call leaves behind may reach the next.
#[tokio::test]
async fn nothing_a_call_leaves_in_memory_reaches_the_next_call() {
    let runtime = runtime();
    eprintln!(
        "pooled memory reset: {}",
        if runtime.resets_dirty_pages_only() {
            "dirty pages copied back, kept resident"
        } else {
            "madvise"
        }
    );
    let connector = fixture(&runtime).await;
    let ctx = context(
        &connector,
        &[("base-url", "https://example.com"), ("mode", "scribble")],
        private_ok(),
    );
    for _ in 0..20 {
        assert_eq!(
            connector.activate(&ctx).await.unwrap().unwrap(),
            "calls 1 stale 0"
        );
    }
}

#[tokio::test]
async fn a_dry_run_cannot_write() {
    let runtime = runtime();
    let connector = fixture(&runtime).await;
    let server =
        TestServer::start(|seen| Reply::text(201, &format!("remote-{}", seen.path.len()))).await;
    let url = server.url();
    let ctx = context(
        &connector,
        &[("base-url", &url), ("mode", "push-post")],
        private_ok(),
    );
    let records = [account("A1"), account("A2")];

    let outcomes = connector
        .push(
            &ctx,
            Entity::Account,
            &common::items(&records),
            common::options(true),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcomes.len(), 2);
    for outcome in &outcomes {
        assert!(
            matches!(outcome, Err(ConnectorError::Internal(m)) if m == "write-in-dry-run"),
            "{outcome:?}"
        );
    }
    assert_eq!(server.accepted().await, 0, "nothing was sent");

    let outcomes = connector
        .push(
            &ctx,
            Entity::Account,
            &common::items(&records),
            common::options(false),
        )
        .await
        .unwrap()
        .unwrap();
    let pushed = outcomes[0].as_ref().unwrap();
    assert_eq!(
        (pushed.change, pushed.remote_id.as_str()),
        (Change::Created, "remote-8")
    );
    assert_eq!(
        server.seen().iter().filter(|s| s.method == "POST").count(),
        2
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_log_never_shows_a_secret_and_stops_at_its_budget() {
    let (captured, _guard) = Captured::start(tracing::Level::TRACE);

    let runtime = runtime();
    let connector = fixture(&runtime).await;
    let server = TestServer::start(|_| Reply::text(200, "pong")).await;
    let url = server.url();
    let settings = [
        ("base-url", url.as_str()),
        ("user", "alice"),
        ("api-key", SECRET),
        ("mode", "flood-log"),
        ("param", SECRET),
    ];
    let ctx = context(&connector, &settings, private_ok());
    assert_eq!(connector.activate(&ctx).await.unwrap().unwrap(), "flooded");

    let text = captured.text();
    assert!(!text.contains(SECRET), "the secret reached the log");
    assert!(
        text.contains("I guessed the key: [REDACTED]!"),
        "the guest's line is there, redacted"
    );
    assert!(
        text.contains("stdout also knows [REDACTED]"),
        "stdout is logged, redacted"
    );
    assert!(
        text.contains("https://evil.example/steal?k=[REDACTED]"),
        "the refused request is logged, redacted"
    );
    assert!(text.contains("connector=\"fixture\"") && text.contains("instance=\"test-instance\""));
    assert!(
        text.contains("log lines (")
            && text.contains("over this call's log budget were not written")
    );
    // 100 MB were logged; the budget is 1 MiB of messages, plus each line's labels.
    assert!(text.len() < 2 << 20, "the log grew to {} bytes", text.len());

    // The secret never reached the guest either: it cannot read it back.
    let ctx = context(
        &connector,
        &[
            ("base-url", &url),
            ("api-key", SECRET),
            ("mode", "probe"),
            ("param", "api-key"),
        ],
        private_ok(),
    );
    let report = connector.activate(&ctx).await.unwrap().unwrap();
    assert!(
        report.contains("secret none") && !report.contains(SECRET),
        "{report}"
    );
}

/// Each call leaves one debug line for operators: which export, how long, how much guest memory,
/// how many requests, and whether it succeeded.
#[tokio::test]
async fn every_call_is_summed_up_in_one_debug_line() {
    let (captured, _guard) = Captured::start(tracing::Level::DEBUG);
    let runtime = runtime();
    let connector = fixture(&runtime).await;
    let server = TestServer::start(|_| Reply::text(200, "pong")).await;
    let url = server.url();
    let ctx = context(&connector, &[("base-url", &url)], private_ok());
    // Other tests' subscribers come and go meanwhile (they run side by side): the call sites'
    // interest is computed again with this test's subscriber in it, just before the call.
    tracing::callsite::rebuild_interest_cache();
    connector.activate(&ctx).await.unwrap().unwrap();
    let text = captured.text();
    let line = text
        .lines()
        .find(|l| l.contains("connector call") && l.contains("export=\"activate\""))
        .unwrap_or_else(|| panic!("no call line in:\n{text}"));
    for field in [
        "connector=fixture",
        "version=0.1.0",
        "instance=test-instance",
        "requests=1",
        "ok=true",
        "guest_memory=",
        "micros=",
    ] {
        assert!(line.contains(field), "{field} missing from {line}");
    }
}
