//! The runtime's own duties: the compile cache across restarts, refusing what is not a connector,
//! the per-call request budget, dry runs that cannot write, a log that never shows a secret and
//! stops growing at its budget, and instances kept between calls only for their own settings.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bss_host::capabilities::context::InstanceContext;
use bss_host::capabilities::options::InstanceOptions;
use bss_host::contract::bindings::connector::{Change, Pushed};
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
    let fresh = InstanceOptions {
        keep_instance: false,
        ..private_ok()
    };
    let ctx = context(
        &connector,
        &[("base-url", "https://example.com"), ("mode", "scribble")],
        fresh,
    );
    for _ in 0..20 {
        assert_eq!(
            connector.activate(&ctx).await.unwrap().unwrap(),
            "calls 1 stale 0"
        );
    }
    assert_eq!(runtime.kept_instances(), 0);

    // Kept instances (the default) take turns with fresh ones in the same slots: an instance
    // of other settings never sees what a kept one left.
    let kept = |param: &str| {
        context(
            &connector,
            &[
                ("base-url", "https://example.com"),
                ("mode", "scribble"),
                ("param", param),
            ],
            private_ok(),
        )
    };
    for round in 1..=5 {
        for param in ["a", "b", "c"] {
            let said = connector.activate(&kept(param)).await.unwrap().unwrap();
            let expected = format!("calls {round} stale ");
            assert!(said.starts_with(&expected), "{param}: {said}");
            if round == 1 {
                assert_eq!(said, "calls 1 stale 0", "{param}");
            }
        }
        let said = connector.activate(&ctx).await.unwrap().unwrap();
        assert_eq!(said, "calls 1 stale 0", "fresh after round {round}");
    }
    assert_eq!(runtime.kept_instances(), 3);
}

/// A call may run in the instance a call before it left (`host.keep-instance`, on by default),
/// but only one of the same connector version under exactly the same settings, secrets, lookups
/// and options, and never one whose call ended badly.
#[tokio::test]
async fn a_kept_instance_serves_only_its_own_version_and_settings() {
    let runtime = runtime();
    let connector = fixture(&runtime).await;
    let settings = [("base-url", "https://example.com"), ("mode", "scribble")];
    let calls = |said: String| said.split(' ').nth(1).unwrap().parse::<u32>().unwrap();
    let activate = |connector: &bss_host::runtime::Connector, ctx| {
        let connector = connector.clone();
        async move { calls(connector.activate(&ctx).await.unwrap().unwrap()) }
    };

    let ctx = context(&connector, &settings, private_ok());
    assert_eq!(activate(&connector, ctx.clone()).await, 1);
    assert_eq!(activate(&connector, ctx.clone()).await, 2);
    // The same settings read again (another context, one fingerprint): the same instance.
    let again = context(&connector, &settings, private_ok());
    assert_eq!(activate(&connector, again).await, 3);
    assert_eq!(runtime.kept_instances(), 1);

    // Anything changed gives a fresh instance: a setting, a secret, a lookup, an option.
    let other_setting = context(
        &connector,
        &[("base-url", "https://example.com/v2"), ("mode", "scribble")],
        private_ok(),
    );
    assert_eq!(activate(&connector, other_setting).await, 1);
    let other_secret = context(
        &connector,
        &[
            ("base-url", "https://example.com"),
            ("mode", "scribble"),
            ("api-key", "rotated"),
        ],
        private_ok(),
    );
    assert_eq!(activate(&connector, other_secret).await, 1);
    let mut sealed = (*context(&connector, &settings, private_ok())).clone();
    sealed.seal(&[("legacy".to_string(), "sealed-value".to_string())]);
    assert_eq!(activate(&connector, Arc::new(sealed)).await, 1);
    let values: BTreeMap<String, String> = settings
        .iter()
        .chain(&[("user", "alice"), ("api-key", "default-api-key")])
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let no_lookups = InstanceContext::new(
        "test-instance",
        connector.manifest(),
        &values,
        BTreeMap::new(),
        private_ok(),
    )
    .unwrap();
    assert_eq!(activate(&connector, Arc::new(no_lookups)).await, 1);
    let other_options = context(
        &connector,
        &settings,
        InstanceOptions {
            memory_limit: 96 << 20,
            ..private_ok()
        },
    );
    assert_eq!(activate(&connector, other_options).await, 1);
    // Another load of the same file is another version: it shares nothing.
    let reloaded = fixture(&runtime).await;
    let ctx_reloaded = context(&reloaded, &settings, private_ok());
    assert_eq!(activate(&reloaded, ctx_reloaded).await, 1);
    assert_eq!(runtime.kept_instances(), 7);
    drop(reloaded);
    assert_eq!(
        runtime.kept_instances(),
        6,
        "a dropped version's instances go with it"
    );

    // A call that traps, runs out of time or is refused memory leaves no instance behind.
    let short = InstanceOptions {
        call_deadline: std::time::Duration::from_millis(300),
        memory_limit: 16 << 20,
        ..private_ok()
    };
    let ctx = context(&connector, &settings, short);
    for bad in ["trap", "loop", "alloc"] {
        assert_eq!(activate(&connector, ctx.clone()).await, 1, "before {bad}");
        assert_eq!(activate(&connector, ctx.clone()).await, 2, "before {bad}");
        let failure = connector.lookup_choices(&ctx, bad).await.unwrap_err();
        eprintln!("{bad}: {failure}");
        assert_eq!(
            activate(&connector, ctx.clone()).await,
            1,
            "a fresh instance after {bad}"
        );
        // Start the next round from nothing kept under these settings.
        connector.lookup_choices(&ctx, "trap").await.unwrap_err();
    }

    // An answer the connector gives normally, an error included, keeps the instance.
    assert_eq!(activate(&connector, ctx.clone()).await, 1);
    let unsupported = connector.lookup_choices(&ctx, "no-such-key").await.unwrap();
    assert!(unsupported.is_err());
    assert_eq!(activate(&connector, ctx.clone()).await, 2);

    // Calls at once each get an instance of their own.
    let slow = context(
        &connector,
        &[
            ("base-url", "https://example.com"),
            ("mode", "slow-version"),
            ("param", "300"),
        ],
        private_ok(),
    );
    let before = runtime.kept_instances();
    let first = tokio::spawn({
        let (connector, slow) = (connector.clone(), slow.clone());
        async move { connector.activate(&slow).await }
    });
    let second = tokio::spawn({
        let (connector, slow) = (connector.clone(), slow.clone());
        async move { connector.activate(&slow).await }
    });
    first.await.unwrap().unwrap().unwrap();
    second.await.unwrap().unwrap().unwrap();
    assert_eq!(runtime.kept_instances(), before + 2);

    // An instance that grew by more than a quarter of its memory limit is not kept: the next
    // call must have nearly the room a fresh instance has. (Each scribble call allocates 3 MiB:
    // under 11 MiB the instance holds less than half the limit but grew by more than a quarter.)
    for (limit_mib, kept) in [(11u64, false), (16, true)] {
        let ctx = context(
            &connector,
            &settings,
            InstanceOptions {
                memory_limit: limit_mib << 20,
                ..private_ok()
            },
        );
        assert_eq!(activate(&connector, ctx.clone()).await, 1);
        let second = activate(&connector, ctx).await;
        assert_eq!(second, if kept { 2 } else { 1 }, "limit {limit_mib} MiB");
    }

    // Operators see which calls ran warm.
    let metrics = bss_host::metrics::render();
    for how in ["kept", "fresh"] {
        assert!(
            metrics.lines().any(
                |line| line.starts_with("bss_connector_call_instances_total{")
                    && line.contains("connector=\"fixture\"")
                    && line.contains(&format!("how=\"{how}\""))
            ),
            "no {how} line in:\n{metrics}"
        );
    }

    // `host.keep-instance=false` keeps none.
    let fresh = context(
        &connector,
        &settings,
        InstanceOptions {
            keep_instance: false,
            ..private_ok()
        },
    );
    for _ in 0..3 {
        assert_eq!(activate(&connector, fresh.clone()).await, 1);
    }
}

/// Kept instances hold pooled slots between calls, in a share of the pool of their own: with
/// every one of them kept, as many calls as the runtime allows still run at once.
#[tokio::test]
async fn kept_instances_never_take_a_live_calls_slot() {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(common::shared_cache_dir()),
        max_concurrent_calls: 2,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let connector = fixture(&runtime).await;
    let settings = |mode: &str, param: String| {
        context(
            &connector,
            &[
                ("base-url", "https://example.com"),
                ("mode", mode),
                ("param", &param),
            ],
            private_ok(),
        )
    };
    let most = bss_host::runtime::MAX_KEPT as usize;
    for n in 0..most + 3 {
        let said = connector
            .activate(&settings("scribble", n.to_string()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(said, "calls 1 stale 0", "settings {n}");
    }
    assert_eq!(runtime.kept_instances(), most, "the oldest made room");
    let (slow_a, slow_b) = (
        settings("slow-version", "200".into()),
        settings("slow-version", "201".into()),
    );
    let (first, second) = tokio::join!(connector.activate(&slow_a), connector.activate(&slow_b));
    first.unwrap().unwrap();
    second.unwrap().unwrap();
    assert_eq!(runtime.kept_instances(), most);
    // The oldest kept settings were dropped for the newer; the newest are still served warm.
    let newest = connector
        .activate(&settings("scribble", (most + 2).to_string()))
        .await
        .unwrap()
        .unwrap();
    assert!(newest.starts_with("calls 2 "), "{newest}");
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
    let items = common::items(&[account("A1"), account("A2")]);
    let push = |dry_run: bool| {
        let (connector, ctx, items) = (connector.clone(), ctx.clone(), items.clone());
        async move {
            connector
                .push(&ctx, Entity::Account, &items, common::options(dry_run))
                .await
                .unwrap()
                .unwrap()
        }
    };
    let refused_every_write = |outcomes: &[Result<Pushed, ConnectorError>]| {
        assert_eq!(outcomes.len(), 2);
        for outcome in outcomes {
            assert!(
                matches!(outcome, Err(ConnectorError::Internal(m)) if m == "write-in-dry-run"),
                "{outcome:?}"
            );
        }
    };
    let posts = || server.seen().iter().filter(|s| s.method == "POST").count();

    refused_every_write(&push(true).await);
    assert_eq!(server.accepted().await, 0, "nothing was sent");

    let outcomes = push(false).await;
    let pushed = outcomes[0].as_ref().unwrap();
    assert_eq!(
        (pushed.change, pushed.remote_id.as_str()),
        (Change::Created, "remote-8")
    );
    assert_eq!(posts(), 2);

    // The instance that wrote is kept for the next call; a dry run in it still cannot write...
    assert_eq!(runtime.kept_instances(), 1);
    refused_every_write(&push(true).await);
    assert_eq!(posts(), 2, "the dry run in a kept instance sent nothing");
    // ... and does not put the instance back: what a dry run was handed never reaches a call
    // that may write.
    assert_eq!(runtime.kept_instances(), 0);
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
