//! A new connector version dropped in while calls run: no call fails, calls already running finish
//! on the version they started with, and every call that starts after the swap completed is
//! answered by the new version. Through the registry and instances of a real data folder.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bss_host::app::{App, OpenOptions};
use bss_host::store::StoredValue;
use common::fixture_variants::{Variant, fixture_variant};

const V1: &str = env!("BSS_FIXTURE_WASM");

struct Answer {
    started: Instant,
    finished: Instant,
    version: Result<String, String>,
}

/// Polls `done` until it holds (or fails the test after two minutes).
async fn wait_until(done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "timed out waiting for calls to be answered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_under_load_drops_no_call() {
    // Built (if need be) before anything here is timed.
    let v2 = fixture_variant(Variant::V2);
    let dir = tempfile::tempdir().unwrap();
    let (data, plugins) = (dir.path().join("data"), dir.path().join("plugins"));
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(V1, plugins.join("fixture-1.wasm")).unwrap();
    let app = App::open_with(
        &data,
        OpenOptions {
            plugins: Some(&plugins),
            allow_unsigned: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let instances = app.instances.clone();
    instances.activate("fixture", "fx", None, None).unwrap();
    let settings: Vec<(String, String)> = [
        ("base-url", "http://127.0.0.1:9"),
        ("user", "u"),
        ("api-key", "k"),
        ("mode", "slow-version"),
        ("param", "40"),
        ("host.allow-private-network", "on"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    instances.set_settings("fx", &settings, "test").unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(Mutex::new(Vec::<Answer>::new()));
    let count = |version: &str| {
        answered
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.version.as_deref() == Ok(version))
            .count()
    };
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (instances, stop, answers) = (instances.clone(), stop.clone(), answered.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let version = match instances.context("fx") {
                    Ok((loaded, context)) => match loaded.connector.activate(&context).await {
                        Ok(Ok(summary)) => Ok(summary),
                        Ok(Err(e)) => Err(format!("{e:?}")),
                        Err(e) => Err(e.to_string()),
                    },
                    Err(e) => Err(e.to_string()),
                };
                answers.lock().unwrap().push(Answer {
                    started,
                    finished: Instant::now(),
                    version,
                });
            }
        }));
    }
    // Let v1 answer a while, then drop v2 in. v2 needs `tenant`, which v1 does not know: the
    // value is put in place beforehand (straight into the store, as v1 would refuse the key), so
    // the instance is complete for v2 the moment it serves.
    wait_until(|| count("version 0.1.0") >= 120).await;
    app.store
        .change_settings(
            "fx",
            &[(
                "tenant".to_string(),
                Some(StoredValue::Plain("acme".to_string())),
            )],
        )
        .unwrap();
    // Dropped into the folder `serve`'s watcher looks at; the swap is done when the registry lists
    // 0.2.0 (polled every millisecond, so `swap_done` is at most that late).
    let _watcher = bss_host::registry::watch(
        app.registry.clone(),
        plugins.clone(),
        bss_host::registry::WATCH_EVERY,
    );
    let swap_started = Instant::now();
    std::fs::copy(&v2, plugins.join("fixture-2.wasm")).unwrap();
    while !app
        .registry
        .loaded()
        .iter()
        .any(|l| l.connector.manifest().name == "fixture" && l.version.to_string() == "0.2.0")
    {
        assert!(
            swap_started.elapsed() < Duration::from_secs(60),
            "the watcher never loaded 0.2.0"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let swap_done = Instant::now();
    wait_until(|| count("version 0.2.0") >= 120).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let answers = std::mem::take(&mut *answered.lock().unwrap());
    let failed: Vec<&String> = answers
        .iter()
        .filter_map(|a| a.version.as_ref().err())
        .collect();
    assert!(
        failed.is_empty(),
        "{} calls failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    let v1: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.version.as_deref() == Ok("version 0.1.0"))
        .collect();
    let v2: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.version.as_deref() == Ok("version 0.2.0"))
        .collect();
    assert_eq!(v1.len() + v2.len(), answers.len());
    assert!(
        v1.len() >= 100 && v2.len() >= 100,
        "v1 answered {}, v2 answered {}",
        v1.len(),
        v2.len()
    );
    // Calls in flight at the swap finish on v1 while v2 already answers new ones. (Measured
    // against the first v2 call, not `swap_done`: on a loaded machine the polling loop may
    // notice the swap only after every call in flight at it has ended.)
    let first_v2 = v2.iter().map(|a| a.started).min().unwrap();
    assert!(
        v1.iter().any(|a| a.finished > first_v2),
        "a call in flight at the swap finished on v1"
    );
    assert!(
        v2.iter().all(|a| a.finished > swap_started),
        "v2 answered nothing before it was dropped in"
    );
    assert!(
        v1.iter().all(|a| a.started < swap_done),
        "no call started after the swap was answered by v1"
    );
}
