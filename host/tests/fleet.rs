//! A fleet of `serve` workers on one PostgreSQL store (a scratch database per test): pushes
//! submitted through the API as jobs are claimed by whichever worker is free, a worker killed
//! with SIGKILL mid-job has its job taken over, every record reaches the sandbox exactly once,
//! and no two workers ever run one instance and entity at once.

mod common;
mod cw;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bss_host::store::postgres::scratch::ScratchDb;
use common::cli::{HOST, Host, blocking};
use common::records::account;
use cw_sandbox::Faults;
use serde_json::{Value, json};

const OPTIONS: &[&str] = &["account:push:create,update"];

/// [`HOST`] on `scratch`, with short job and run leases so a dead worker's job is taken over in
/// seconds (kept for the test run, so `'static`).
fn fleet_host(scratch: &ScratchDb) -> Host<'static> {
    let url: &'static str = Box::leak(scratch.url.clone().into_boxed_str());
    let env: &'static [(&'static str, &'static str)] = Box::leak(Box::new([
        ("BSS_HOST_DATABASE", url),
        ("BSS_HOST_JOB_LEASE_SECS", "3"),
        ("BSS_HOST_LEASE_TTL_MS", "3000"),
    ]));
    Host {
        env,
        log: "info,cw_sandbox=warn",
        ..HOST
    }
}

async fn jobs(client: &reqwest::Client, served: &cw::Served) -> Vec<Value> {
    client
        .get(format!("{}/jobs?limit=1000", served.base))
        .bearer_auth(&served.token)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The workers' warnings and the last lines of each log (w0.log, w1.log, w2.log in `dir`).
fn worker_logs(dir: &std::path::Path) -> String {
    let mut out = String::new();
    for i in 0..3 {
        let text = std::fs::read_to_string(dir.join(format!("w{i}.log"))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        out.push_str(&format!(
            "--- w{i}: warnings and the last 15 of {} lines\n",
            lines.len()
        ));
        for line in lines
            .iter()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .take(30)
        {
            out.push_str(&format!("{line}\n"));
        }
        out.push_str("...\n");
        for line in &lines[lines.len().saturating_sub(15)..] {
            out.push_str(&format!("{line}\n"));
        }
    }
    out
}

/// One line per job (its outcome's report left out): what a failure message needs.
fn job_summary(listed: &[Value]) -> String {
    listed
        .iter()
        .map(|j| {
            format!(
                "job {} {} {}: {} by {} attempt {} run {} submitted {} started {} finished {} error {}\n",
                j["id"],
                j["instance"],
                j["entity"],
                j["state"],
                j["worker"],
                j["attempts"],
                j["run"],
                j["submitted-at"],
                j["started-at"],
                j["finished-at"],
                j["error"]
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_run_thirty_jobs_exactly_once_and_take_over_a_killed_workers_job() {
    let scratch = ScratchDb::create();
    let host = fleet_host(&scratch);
    let s = cw::setup(host, OPTIONS).await;
    // A second instance on the same remote: two entities' worth of jobs can run side by side.
    let data = s.data.clone();
    let settings = cw::cli_settings(&s.sandbox);
    blocking(move || {
        cw::add_instance(host, &data, "cw2", &settings, OPTIONS);
        let token = host.ok(&data, &["tokens", "create", "fleet", "--role", "operator"]);
        std::fs::write(data.join("fleet-token"), token.trim()).unwrap();
    })
    .await;
    let token = std::fs::read_to_string(s.data.join("fleet-token")).unwrap();
    // Each worker on a data folder of its own (its compile cache), with the fleet's key.
    let workers: Vec<cw::Served> = (0..3)
        .map(|i| {
            let folder = s.dir.path().join(format!("worker-{i}"));
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::copy(s.data.join("key"), folder.join("key")).unwrap();
            let mut command = host.command(&folder, &[]);
            command.env("BSS_HOST_WORKER_ID", format!("w{i}"));
            cw::serve_logged(command, &token, &s.dir.path().join(format!("w{i}.log")))
        })
        .collect();
    let logs = s.dir.path().to_path_buf();
    // About a second per job: long enough to kill a worker in the middle of one.
    s.sandbox
        .set_faults(Faults::default().with_latency(Duration::from_millis(4)));
    let client = cw::api_client();
    for job in 0..30 {
        let instance = if job % 2 == 0 { "cw" } else { "cw2" };
        let body: String = (job * 100 + 1..=job * 100 + 100)
            .map(|i| format!("{}\n", account(i)))
            .collect();
        let answer = client
            .post(format!(
                "{}/instances/{instance}/jobs/push/account",
                workers[job % 3].base
            ))
            .bearer_auth(&token)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202, "{}", answer.text().await.unwrap());
    }

    // Kill w1 with SIGKILL as soon as it runs a job.
    let started = Instant::now();
    let killed_job = loop {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "w1 never ran a job"
        );
        let running = jobs(&client, &workers[0])
            .await
            .into_iter()
            .find(|j| j["state"] == "running" && j["worker"] == "w1");
        if let Some(job) = running {
            break job["id"].as_i64().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut workers = workers;
    drop(workers.remove(1)); // SIGKILL, no chance to clean up

    let all_done = loop {
        let listed = jobs(&client, &workers[0]).await;
        if listed.len() == 30
            && listed
                .iter()
                .all(|j| j["state"] == "done" || j["state"] == "failed")
        {
            break listed;
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "not every job ended (w1 was killed running job {killed_job}):\n{}\n{}",
            job_summary(&listed),
            worker_logs(&logs)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for job in &all_done {
        assert_eq!(job["state"], "done", "{job:#}");
    }
    // Every account exactly once in the remote.
    let mut identifiers: Vec<String> = s
        .sandbox
        .records("company/companies")
        .iter()
        .map(|c| c["identifier"].as_str().unwrap().to_string())
        .collect();
    let total = identifiers.len();
    identifiers.sort();
    identifiers.dedup();
    assert_eq!(identifiers.len(), total, "a company was created twice");
    assert_eq!(total, 3000);
    // The killed worker's job was taken over by a live one and counted twice.
    let taken_over = all_done
        .iter()
        .find(|j| j["id"].as_i64() == Some(killed_job))
        .unwrap();
    assert_ne!(taken_over["worker"], "w1", "{taken_over:#}");
    assert!(
        taken_over["attempts"].as_i64().unwrap() >= 2,
        "{taken_over:#}"
    );
    // The work was shared, and one instance's jobs never overlapped in time.
    let by_worker = all_done.iter().fold(BTreeMap::new(), |mut m, j| {
        *m.entry(j["worker"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
        m
    });
    assert!(by_worker.len() >= 2, "{by_worker:?}");
    for instance in ["cw", "cw2"] {
        let mut spans: Vec<(String, String)> = all_done
            .iter()
            .filter(|j| j["instance"] == instance)
            .map(|j| {
                (
                    j["started-at"].as_str().unwrap().to_string(),
                    j["finished-at"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        spans.sort();
        for pair in spans.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "two jobs of {instance} ran at once: {pair:?}"
            );
        }
    }
    // `workers list`: the killed one is silent, the others alive.
    let data = s.data.clone();
    let listed = blocking(move || host.ok(&data, &["workers", "list", "--json"])).await;
    let listed: Vec<Value> = serde_json::from_str(&listed).unwrap();
    let state: BTreeMap<&str, bool> = listed
        .iter()
        .map(|w| (w["id"].as_str().unwrap(), w["alive"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        state,
        [("w0", true), ("w1", false), ("w2", true)].into(),
        "{listed:#?}"
    );
}

/// Three workers (each with its own data and plugins folders, one store): a version installed on
/// one is stored with its bytes and loaded by the other two at once; calls through every worker
/// keep being answered throughout, by the old version and then the new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_dropped_on_one_worker_serves_on_all_three_without_a_failed_call() {
    use bss_host::app::{App, OpenOptions};
    use bss_host::store::StoredValue;
    use common::fixture_variants::{Variant, fixture_variant};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let v2 = fixture_variant(Variant::V2);
    let scratch = ScratchDb::create();
    let dir = tempfile::tempdir().unwrap();
    let mut apps = Vec::new();
    for i in 0..3 {
        let (data, plugins) = (
            dir.path().join(format!("data-{i}")),
            dir.path().join(format!("plugins-{i}")),
        );
        std::fs::create_dir_all(&plugins).unwrap();
        std::fs::create_dir_all(&data).unwrap();
        if i == 0 {
            // Only worker 0 has the fixture in its folder; the others get it from the store.
            std::fs::copy(common::FIXTURE_WASM, plugins.join("fixture-1.wasm")).unwrap();
        } else {
            std::fs::copy(dir.path().join("data-0/key"), data.join("key")).unwrap();
        }
        let app = App::open_with(
            &data,
            OpenOptions {
                plugins: Some(&plugins),
                database: Some(&scratch.url),
                allow_unsigned: true,
                ..OpenOptions::default()
            },
        )
        .await
        .unwrap();
        if i == 0 {
            app.instances.activate("fixture", "fx", None, None).unwrap();
            let settings: Vec<(String, String)> = [
                ("base-url", "http://127.0.0.1:9"),
                ("user", "u"),
                ("api-key", "k"),
                ("mode", "slow-version"),
                ("param", "20"),
                ("host.allow-private-network", "on"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            app.instances.set_settings("fx", &settings, "test").unwrap();
        }
        apps.push((app, plugins));
    }
    let _watcher = bss_host::registry::watch(
        apps[0].0.registry.clone(),
        apps[0].1.clone(),
        bss_host::registry::WATCH_EVERY,
    );
    let _followers: Vec<_> = apps
        .iter()
        .map(|(app, _)| bss_host::registry::follow_store(app.registry.clone()).unwrap())
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    /// (worker, what the call answered: `version …`, or why it failed)
    type Answers = Arc<Mutex<Vec<(usize, Result<String, String>)>>>;
    let answers: Answers = Arc::default();
    let mut callers = Vec::new();
    for (worker, (app, _)) in apps.iter().enumerate() {
        let (instances, stop, answers) = (app.instances.clone(), stop.clone(), answers.clone());
        callers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let answer = match instances.context("fx") {
                    Ok((loaded, context)) => match loaded.connector.activate(&context).await {
                        Ok(Ok(summary)) => Ok(summary),
                        Ok(Err(e)) => Err(format!("{e:?}")),
                        Err(e) => Err(e.to_string()),
                    },
                    Err(e) => Err(e.to_string()),
                };
                answers.lock().unwrap().push((worker, answer));
            }
        }));
    }
    let answered = |version: &str| -> Vec<usize> {
        let answers = answers.lock().unwrap();
        (0..3)
            .map(|w| {
                answers
                    .iter()
                    .filter(|(worker, a)| *worker == w && a.as_deref() == Ok(version))
                    .count()
            })
            .collect()
    };
    let wait_for = |version: &'static str, calls: usize| {
        let answered = &answered;
        async move {
            let started = Instant::now();
            while answered(version).iter().any(|n| *n < calls) {
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "not every worker answered {calls} calls with {version}: {:?}",
                    answered(version)
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    wait_for("version 0.1.0", 20).await;
    // v2 needs `tenant`, which v1 does not know: put in place beforehand, straight into the store.
    apps[0]
        .0
        .store
        .change_settings(
            "fx",
            &[("tenant".into(), Some(StoredValue::Plain("acme".into())))],
        )
        .unwrap();
    let dropped = Instant::now();
    std::fs::copy(&v2, apps[0].1.join("fixture-2.wasm")).unwrap();
    let serves_v2 = |app: &App| {
        app.registry
            .loaded()
            .iter()
            .any(|l| l.connector.manifest().name == "fixture" && l.version.to_string() == "0.2.0")
    };
    let mut reached = Vec::new();
    for (worker, (app, _)) in apps.iter().enumerate() {
        while !serves_v2(app) {
            assert!(
                dropped.elapsed() < Duration::from_secs(60),
                "worker {worker} never loaded 0.2.0"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        reached.push(dropped.elapsed());
    }
    eprintln!("0.2.0 served after {reached:?} (worker 0 reads its folder; 1 and 2 are told)");
    wait_for("version 0.2.0", 20).await;
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await.unwrap();
    }
    let answers = answers.lock().unwrap();
    let failed: Vec<_> = answers.iter().filter(|(_, a)| a.is_err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} calls failed, e.g. {:?}",
        failed.len(),
        answers.len(),
        failed.first()
    );
}

/// Waits until `worker` runs a job; its id.
async fn running_on(client: &reqwest::Client, served: &cw::Served, worker: &str) -> i64 {
    let started = Instant::now();
    loop {
        let running = jobs(client, served)
            .await
            .into_iter()
            .find(|j| j["state"] == "running" && j["worker"] == worker);
        if let Some(job) = running {
            return job["id"].as_i64().unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{worker} never ran a job"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SIGTERM stops a worker cleanly: the job it runs ends within the grace period and no new one is
/// claimed; with no grace left the job is handed back at once (not after its 30 s lease) and the
/// next worker finishes it, every account once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_running_job_end_or_hands_it_back_at_once() {
    let scratch = ScratchDb::create();
    let url: &'static str = Box::leak(scratch.url.clone().into_boxed_str());
    let env: &'static [(&'static str, &'static str)] =
        Box::leak(Box::new([("BSS_HOST_DATABASE", url)]));
    let host = Host { env, ..HOST };
    let s = cw::setup(host, OPTIONS).await;
    let data = s.data.clone();
    let token = blocking(move || {
        host.ok(&data, &["tokens", "create", "ops", "--role", "operator"])
            .trim()
            .to_string()
    })
    .await;
    let worker = |id: &str, grace: &str| {
        let mut command = host.command(&s.data, &[]);
        command
            .env("BSS_HOST_WORKER_ID", id)
            .env("BSS_HOST_SHUTDOWN_GRACE_SECS", grace);
        cw::serve_with_known_token(command, &token)
    };
    s.sandbox
        .set_faults(Faults::default().with_latency(Duration::from_millis(4)));
    let client = cw::api_client();

    let w0 = worker("w0", "60");
    let mut submitted = Vec::new();
    for job in 0..3 {
        let body: String = (job * 100 + 1..=job * 100 + 100)
            .map(|i| format!("{}\n", account(i)))
            .collect();
        let answer = client
            .post(format!("{}/instances/cw/jobs/push/account", w0.base))
            .bearer_auth(&token)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202);
        let answer: Value = answer.json().await.unwrap();
        submitted.push(answer["job"].as_i64().unwrap());
    }
    let first = running_on(&client, &w0, "w0").await;
    assert_eq!(first, submitted[0], "jobs of one entity start in order");
    let status = blocking(move || w0.terminate(Duration::from_secs(60)))
        .await
        .expect("w0 exits within its grace period");
    assert!(status.success(), "a clean stop exits 0: {status}");

    let w1 = worker("w1", "0");
    let listed = jobs(&client, &w1).await;
    let state = |listed: &[Value], id: i64| {
        let job = listed.iter().find(|j| j["id"] == id).unwrap().clone();
        (
            job["state"].as_str().unwrap().to_string(),
            job["worker"].as_str().map(str::to_string),
        )
    };
    assert_eq!(
        state(&listed, first),
        ("done".to_string(), Some("w0".to_string())),
        "the running job ended on w0: {listed:#?}"
    );
    let second = running_on(&client, &w1, "w1").await;
    assert_eq!(second, submitted[1], "w0 claimed nothing after SIGTERM");
    let stopped_at = Instant::now();
    let status = blocking(move || w1.terminate(Duration::from_secs(20)))
        .await
        .expect("w1 exits at once");
    assert!(status.success(), "{status}");

    let data = s.data.clone();
    let listed = blocking(move || host.ok(&data, &["workers", "list", "--json"])).await;
    let listed: Vec<Value> = serde_json::from_str(&listed).unwrap();
    assert!(
        listed
            .iter()
            .all(|w| w["stopped"] == true && w["alive"] == false && w["jobs-held"] == 0),
        "both stopped cleanly, holding nothing: {listed:#?}"
    );
    let w2 = worker("w2", "60");
    // The third job waits behind the handed-back one (same entity): an operator cancels it.
    let cancel = |id: i64| {
        client
            .delete(format!("{}/jobs/{id}", w2.base))
            .bearer_auth(&token)
            .send()
    };
    let cancelled = cancel(submitted[2]).await.unwrap();
    let cancelled_status = cancelled.status();
    let said: Value = cancelled.json().await.unwrap();
    // (Only if the handed-back job ended first is it too late: then it ran, and says so.)
    let third_ran = cancelled_status == 409;
    eprintln!(
        "the third job was {}",
        if third_ran {
            "already running"
        } else {
            "cancelled"
        }
    );
    if third_ran {
        assert!(
            said["error"].as_str().unwrap().contains("not queued"),
            "{said}"
        );
    } else {
        assert_eq!(cancelled_status, 200, "{said}");
        assert_eq!(
            (&said["state"], &said["error"]),
            (&json!("failed"), &json!("cancelled before it started")),
            "{said}"
        );
    }
    assert_eq!(cancel(999_999).await.unwrap().status(), 404);
    let all_done = loop {
        let listed = jobs(&client, &w2).await;
        if listed
            .iter()
            .all(|j| j["state"] == "done" || (j["id"] == submitted[2] && !third_ran))
        {
            break listed;
        }
        assert!(
            stopped_at.elapsed() < Duration::from_secs(25),
            "the handed-back job waited for its lease: {listed:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let done_again = cancel(second).await.unwrap();
    assert_eq!(done_again.status(), 409, "an ended job is not cancelled");
    let handed_back = all_done.iter().find(|j| j["id"] == second).unwrap();
    assert_eq!(handed_back["worker"], "w2", "{handed_back:#}");
    assert_eq!(handed_back["attempts"], 2, "{handed_back:#}");
    let mut identifiers: Vec<String> = s
        .sandbox
        .records("company/companies")
        .iter()
        .map(|c| c["identifier"].as_str().unwrap().to_string())
        .collect();
    let total = identifiers.len();
    identifiers.sort();
    identifiers.dedup();
    let expected = if third_ran { 300 } else { 200 };
    assert_eq!(
        (identifiers.len(), total),
        (expected, expected),
        "every account of the jobs that ran, once"
    );
}
