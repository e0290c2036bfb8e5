//! The unattended host through the real `bss-host` binary, the bundled ConnectWise component, the
//! real SQLite file and the sandbox over loopback: a schedule that waits while its instance's
//! settings are incomplete and pulls into the change feed once they are; missed slots run once;
//! the feed holds each version of a record once however often it is pulled, and is read and
//! acknowledged through the command and the API while `serve` runs the schedules by itself; the
//! health report counts the backlog, runs say what started them, and `/metrics` parses as
//! Prometheus text whose counters move with the runs.

mod common;
mod cw;

use std::time::{Duration, Instant};

use common::cli::{Host, blocking, fails, ok, run};
use common::records::account;
use cw::Setup;
use serde_json::{Value, json};

const OPTIONS: &[&str] = &["account:push:create,update", "account:pull:create,update"];

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn feed(data: &std::path::Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["feed", "show", "cw"];
    args.extend(extra);
    ok(data, &args).lines().map(json_of).collect()
}

/// Pushes accounts 1..=count, then edits the first `edited` of them in ConnectWise a minute later
/// (on the sandbox's clock), so a pull finds exactly those as changes.
async fn pushed_then_edited(s: &Setup, count: usize, edited: usize) {
    s.sandbox.set_clock(1_790_000_000);
    let path = s.file(
        "accounts.ndjson",
        &(1..=count).map(account).collect::<Vec<_>>(),
    );
    let data = s.data.clone();
    blocking(move || ok(&data, &["push", "cw", "account", "--file", &path])).await;
    s.sandbox.advance_clock(60);
    edit(s, edited);
}

/// Renames the first `count` companies in ConnectWise, as a ConnectWise user would.
fn edit(s: &Setup, count: usize) {
    for company in s.sandbox.records("company/companies").iter().take(count) {
        s.sandbox.patch(
            "company/companies",
            company["id"].as_i64().unwrap(),
            json!({ "name": format!("{} (edited)", company["name"].as_str().unwrap()) }),
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_waits_for_its_settings_runs_once_per_slot_and_feeds_each_version_once() {
    let s = cw::setup(common::cli::HOST, OPTIONS).await;
    let data = s.data.clone();
    // A second instance whose settings are incomplete: its schedule is held back and says why.
    blocking({
        let data = data.clone();
        move || {
            ok(&data, &["activate", "connectwise", "--name", "bare"]);
            ok(
                &data,
                &["sync-options", "set", "bare", "account:pull:create,update"],
            );
            ok(
                &data,
                &["schedules", "set", "bare", "account:pull", "every", "2s"],
            );
            ok(
                &data,
                &["schedules", "set", "cw", "account:pull", "every 8s"],
            );
        }
    })
    .await;
    let refused = fails(
        &data,
        &["schedules", "set", "cw", "account:push", "every 2s"],
    );
    assert!(refused.contains("pull, retry or reconcile"), "{refused}");
    let refused = fails(
        &data,
        &["schedules", "set", "cw", "account:pull", "every 5"],
    );
    assert!(refused.contains("needs a unit"), "{refused}");

    pushed_then_edited(&s, 3, 2).await;
    let ran = json_of(&ok(&data, &["schedules", "run-due", "--json"]));
    let ran = ran.as_array().unwrap();
    assert_eq!(ran.len(), 1, "only cw's schedule starts: {ran:?}");
    assert_eq!(ran[0]["instance"], "cw");
    assert_eq!(ran[0]["ok"], true, "{ran:?}");
    let listed = json_of(&ok(&data, &["schedules", "list", "--json"]));
    let bare = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["instance"] == "bare")
        .unwrap();
    assert_eq!(bare["state"], "blocked", "{bare}");
    assert!(
        bare["blocked"].as_str().unwrap().contains("needs settings"),
        "{bare}"
    );
    assert!(bare["last-started"].is_null(), "{bare}");

    // The two edited companies are in the feed, in order; the push's own echo is not.
    let entries = feed(&data, &[]);
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries[0]["seq"].as_i64() < entries[1]["seq"].as_i64());
    assert_eq!(entries[0]["change"], "changed");
    assert!(
        entries[0]["record"]["name"]
            .as_str()
            .unwrap()
            .ends_with("(edited)"),
        "{entries:?}"
    );
    assert_eq!(
        entries[0]["record"]["id"], "A0001",
        "BSS ids are mapped back"
    );

    // Not due again yet; after a downtime of several slots, it runs once.
    let ran = json_of(&ok(&data, &["schedules", "run-due", "--json"]));
    assert_eq!(ran.as_array().unwrap().len(), 0, "{ran}");
    tokio::time::sleep(Duration::from_secs(17)).await;
    let ran = json_of(&ok(&data, &["schedules", "run-due", "--json"]));
    assert_eq!(
        ran.as_array().unwrap().len(),
        1,
        "missed slots run once: {ran}"
    );
    let ran = json_of(&ok(&data, &["schedules", "run-due", "--json"]));
    assert_eq!(ran.as_array().unwrap().len(), 0, "{ran}");

    // Pulling the same versions again (from the start, by hand) adds nothing to the feed.
    let out = ok(
        &data,
        &[
            "pull",
            "cw",
            "account",
            "--since",
            "2020-01-01T00:00:00Z",
            "--feed",
        ],
    );
    assert_eq!(out.lines().count(), 2, "{out}");
    assert_eq!(feed(&data, &[]).len(), 2);

    // Acknowledged entries are not shown again; an acknowledgement past the newest is refused.
    let first = entries[0]["seq"].as_i64().unwrap().to_string();
    let said = ok(&data, &["feed", "ack", "cw", &first]);
    assert!(said.contains("1 entry after it"), "{said}");
    assert_eq!(feed(&data, &[]).len(), 1);
    assert_eq!(feed(&data, &["--after", "0"]).len(), 2);
    let refused = fails(&data, &["feed", "ack", "cw", "999999"]);
    assert!(refused.contains("newest entry"), "{refused}");

    // Once the settings are complete, the held schedule starts.
    let settings = cw::cli_settings(&s.sandbox);
    let mut args = vec!["settings", "set", "bare"];
    args.extend(settings.iter().map(String::as_str));
    ok(&data, &args);
    ok(
        &data,
        &["lookups", "set", "bare", "account-type", "Customer=1"],
    );
    ok(&data, &["lookups", "set", "bare", "currency", "USD=1"]);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let out = run(&data, &["schedules", "run-due", "--json"]);
    let ran = json_of(&String::from_utf8_lossy(&out.stdout));
    assert!(
        ran.as_array()
            .unwrap()
            .iter()
            .any(|r| r["instance"] == "bare" && r["ok"] == true),
        "{ran}"
    );
    let runs = json_of(&ok(&data, &["runs", "list", "cw", "--json"]));
    let pulls = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "pull")
        .count();
    assert_eq!(
        pulls, 4,
        "two scheduled, one by hand, one more after the wait: {runs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_runs_the_schedules_and_the_api_reads_and_acknowledges_the_feed() {
    let s = cw::setup(common::cli::HOST, OPTIONS).await;
    pushed_then_edited(&s, 2, 1).await;
    let served = cw::serve(common::cli::command(&s.data, &[]));
    let (token, base) = (served.token.clone(), served.base.clone());
    let client = cw::api_client();
    let set: Value = client
        .put(format!("{base}/instances/cw/schedules/account:pull"))
        .bearer_auth(&token)
        .json(&json!({ "cadence": "every 1s" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(set["cadence"], "every 1s", "{set}");
    let bad = client
        .put(format!("{base}/instances/cw/schedules/account:pull"))
        .bearer_auth(&token)
        .json(&json!({ "cadence": "weekly" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let read = |after: Option<i64>| {
        let client = client.clone();
        let (base, token) = (base.clone(), token.clone());
        async move {
            let query = after.map(|a| format!("?after={a}")).unwrap_or_default();
            client
                .get(format!("{base}/instances/cw/feed{query}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let until = |wanted: usize| {
        let read = &read;
        async move {
            let started = Instant::now();
            loop {
                let page = read(Some(0)).await;
                if page["entries"].as_array().unwrap().len() >= wanted {
                    return page;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "the feed did not reach {wanted} entries: {page}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let page = until(1).await;
    assert_eq!(page["entries"][0]["change"], "changed", "{page}");
    // Later changes in ConnectWise (a minute on, on its clock) reach the feed through the
    // schedule alone: the first company again, and the second.
    s.sandbox.advance_clock(60);
    edit(&s, 2);
    let page = until(3).await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{page}");
    let newest = entries[2]["seq"].as_i64().unwrap();
    assert_eq!(page["next-after"], newest);

    let malformed = client
        .get(format!("{base}/instances/cw/feed?after=yesterday"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let said: Value = malformed.json().await.unwrap();
    assert!(
        said["error"].as_str().unwrap().contains("after"),
        "the JSON error names the parameter: {said}"
    );

    let ndjson = client
        .get(format!("{base}/instances/cw/feed?after=0"))
        .bearer_auth(&token)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(ndjson.lines().count(), 3, "{ndjson}");

    let get = |path: &str| {
        let request = client.get(format!("{base}{path}")).bearer_auth(&token);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let health = get("/health").await;
    assert_eq!(health["feed-backlog"]["cw"], 3, "{health}");
    // Each due slot was queued by the leading worker as a job and run by a worker (here the same
    // process), with the schedule's run as the job's.
    let jobs = get("/jobs?instance=cw").await;
    let pulls: Vec<&Value> = jobs
        .as_array()
        .unwrap()
        .iter()
        .filter(|job| job["kind"] == "pull")
        .collect();
    assert!(pulls.len() >= 2, "{jobs}");
    let done = pulls
        .iter()
        .find(|job| job["state"] == "done")
        .expect("a done pull job");
    assert_eq!(
        (&done["trigger"], &done["entity"]),
        (&json!("schedule"), &json!("account")),
        "{done}"
    );
    assert!(
        done["run"].as_i64().is_some(),
        "the job names its run: {done}"
    );
    let scrape = || {
        let request = client
            .get(format!("{}/metrics", base.trim_end_matches("/api/v1")))
            .bearer_auth(&token);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let first = parse_metrics(&scrape().await);
    assert_eq!(
        first[r#"bss_feed_backlog{instance="cw"}"#], 3.0,
        "{first:?}"
    );
    let pulls = |m: &std::collections::BTreeMap<String, f64>| -> f64 {
        m.iter()
            .filter(|(k, _)| {
                k.starts_with("bss_connector_calls_total{")
                    && k.contains(r#"export="pull""#)
                    && k.contains(r#"outcome="ok""#)
            })
            .map(|(_, v)| v)
            .sum()
    };
    assert!(pulls(&first) >= 2.0, "{first:?}");
    assert!(
        first
            .keys()
            .any(|k| k.starts_with("bss_remote_responses_total{") && k.contains(r#"status="200""#)),
        "{first:?}"
    );
    // The schedule keeps pulling: the counters move.
    let started = Instant::now();
    while pulls(&parse_metrics(&scrape().await)) <= pulls(&first) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the pull counter did not move"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let unauthenticated = client
        .get(format!("{}/metrics", base.trim_end_matches("/api/v1")))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let runs = get("/instances/cw/runs").await;
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .any(|r| r["trigger"] == "schedule" && r["kind"] == "pull"),
        "{runs}"
    );

    let acked: Value = client
        .post(format!("{base}/instances/cw/feed/ack"))
        .bearer_auth(&token)
        .json(&json!({ "upto": newest }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(acked["acknowledged"], newest, "{acked}");
    assert_eq!(acked["backlog"], 0, "{acked}");
    assert_eq!(read(None).await["entries"].as_array().unwrap().len(), 0);
    let health = get("/health").await;
    assert!(health["feed-backlog"].get("cw").is_none(), "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    let past = client
        .post(format!("{base}/instances/cw/feed/ack"))
        .bearer_auth(&token)
        .json(&json!({ "upto": newest + 100 }))
        .send()
        .await
        .unwrap();
    assert_eq!(past.status(), 409);

    let schedules: Value = client
        .get(format!("{base}/instances/cw/schedules"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let outcome = schedules[0]["last-outcome"].as_str().unwrap_or_default();
    assert!(
        outcome.starts_with("done") || outcome == "running",
        "{schedules}"
    );
    let removed = client
        .delete(format!("{base}/instances/cw/schedules/account:pull"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 200);
    let again = client
        .delete(format!("{base}/instances/cw/schedules/account:pull"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
}

/// Parses the Prometheus text format strictly enough to fail on anything malformed: every line is
/// a `# HELP`/`# TYPE`/`# EOF` comment or `name{labels} value` with a number; returns the samples.
fn parse_metrics(text: &str) -> std::collections::BTreeMap<String, f64> {
    let mut samples = std::collections::BTreeMap::new();
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line == "# EOF" {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line:?}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "unclosed labels in {line:?}");
        }
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            other => other
                .parse()
                .unwrap_or_else(|_| panic!("not a number in {line:?}")),
        };
        samples.insert(series.to_string(), value);
    }
    samples
}

/// What the fake BSS webhook received: (headers, body) per delivery.
type Deliveries = std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

/// A BSS webhook on loopback that fails its first delivery with a 500 and accepts the rest.
async fn webhook() -> (String, Deliveries) {
    let seen: Deliveries = Default::default();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let seen = seen.clone();
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let seen = seen.clone();
                async move {
                    let mut seen = seen.lock().unwrap();
                    seen.push((headers, body.to_vec()));
                    if seen.len() == 1 {
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

const SECRET: &str = "a-webhook-secret-of-the-bss";

#[tokio::test(flavor = "multi_thread")]
async fn the_feed_is_posted_signed_to_the_bss_and_a_failed_delivery_is_retried_the_same() {
    let s = cw::setup(common::cli::HOST, OPTIONS).await;
    pushed_then_edited(&s, 2, 2).await;
    let data = s.data.clone();
    ok(&data, &["pull", "cw", "account", "--feed"]);
    assert_eq!(feed(&data, &[]).len(), 2);
    let (url, seen) = webhook().await;
    let with_secret = Host {
        env: &[("BSS_FEED_SINK_SECRET", SECRET)],
        ..common::cli::HOST
    };
    let refused = fails(&data, &["feed", "sink-set", "cw", &url]);
    assert!(refused.contains("BSS_FEED_SINK_SECRET"), "{refused}");
    with_secret.ok(&data, &["feed", "sink-set", "cw", &url]);

    let _served = cw::serve(common::cli::command(&data, &[]));
    let started = Instant::now();
    while seen.lock().unwrap().len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the sink was not tried twice"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deliveries = seen.lock().unwrap().clone();
    let (failed, accepted) = (&deliveries[0], &deliveries[1]);
    assert_eq!(
        failed.0["x-bss-delivery"], accepted.0["x-bss-delivery"],
        "a retry sends the same batch"
    );
    assert_eq!(failed.1, accepted.1);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let signed = accepted.0["x-bss-signature"].to_str().unwrap();
    let expected = hex::encode(ring::hmac::sign(&key, &accepted.1).as_ref());
    assert_eq!(signed, format!("sha256={expected}"));
    let body: Value = serde_json::from_slice(&accepted.1).unwrap();
    assert_eq!(body["instance"], "cw");
    assert_eq!(body["entries"].as_array().unwrap().len(), 2, "{body}");

    // Accepted means acknowledged: the feed has nothing left to read, the sink says how far.
    let started = Instant::now();
    loop {
        let sinks = json_of(&ok(&data, &["feed", "sinks", "--json"]));
        if sinks[0]["attempts"] == 0 && sinks[0]["delivered"].as_i64() > Some(0) {
            assert!(sinks[0].get("secret").is_none(), "{sinks}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{sinks}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(feed(&data, &[]).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_down_for_three_intervals_checks_again_and_runs_each_schedule_once_on_restart() {
    let s = cw::setup(common::cli::HOST, OPTIONS).await;
    let data = s.data.clone();
    blocking({
        let data = data.clone();
        move || {
            ok(
                &data,
                &["schedules", "set", "cw", "account:pull", "every", "20s"],
            );
            ok(
                &data,
                &["schedules", "set", "cw", "account:retry", "every", "20s"],
            );
        }
    })
    .await;
    // As if no serve had run for three intervals and more: both were due a minute ago.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let connection = rusqlite::Connection::open(data.join("bss.db")).unwrap();
    connection
        .execute("UPDATE schedules SET next_due = ?1", [now - 65])
        .unwrap();
    // And its last check failed ten minutes ago (ConnectWise was down then): serve checks it
    // again by itself, and the schedules start once it passes.
    connection
        .execute(
            "INSERT OR REPLACE INTO instance_checks (instance, checked_at, ok, summary, problems)
             VALUES ('cw', ?1, 0, 'ConnectWise did not answer', '[]')",
            [bss_host::time::rfc3339(now - 600)],
        )
        .unwrap();
    drop(connection);
    let shown = ok(&data, &["instances", "show", "cw"]);
    assert!(shown.contains("FAILED"), "{shown}");

    let _served = cw::serve(common::cli::command(&data, &[]));
    let started = Instant::now();
    let listed = loop {
        let listed = json_of(&ok(&data, &["schedules", "list", "--json"]));
        let all_ran = listed
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["last-started"].is_string() && v["state"] == "waiting");
        if all_ran {
            break listed;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "serve did not run the missed schedules: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // They could start only because the check passed again (a failed check holds them back).
    let shown = ok(&data, &["instances", "show", "cw"]);
    assert!(shown.contains("last check    ok"), "{shown}");
    // Each ran once, and is next due one interval after that run, not at a missed slot.
    for view in listed.as_array().unwrap() {
        let next = view["next-run"].as_str().unwrap();
        assert!(next > view["last-started"].as_str().unwrap(), "{view}");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let runs = json_of(&ok(&data, &["runs", "list", "cw", "--json"]));
    let scheduled_pulls = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["trigger"] == "schedule" && r["kind"] == "pull")
        .count();
    assert_eq!(scheduled_pulls, 1, "one run for the missed slots: {runs}");
    let again = json_of(&ok(&data, &["schedules", "list", "--json"]));
    for (before, after) in listed
        .as_array()
        .unwrap()
        .iter()
        .zip(again.as_array().unwrap())
    {
        assert_eq!(before["last-started"], after["last-started"], "{again}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_minute_retry_is_one_queued_job_per_entity_run_by_a_worker() {
    use bss_host::app::{App, OpenOptions};
    let s = cw::setup(common::cli::HOST, OPTIONS).await;
    // Every request fails: the pushed accounts wait in the retry queue.
    s.sandbox
        .set_faults(cw_sandbox::Faults::default().with_server_error_rate(1.0, 3));
    let path = s.file("accounts.ndjson", &(1..=4).map(account).collect::<Vec<_>>());
    let data = s.data.clone();
    blocking(move || run(&data, &["push", "cw", "account", "--file", &path])).await;
    let app = App::open_with(&s.data, OpenOptions::default())
        .await
        .unwrap();
    let store = app.instances.store();
    assert_eq!(store.queue("cw").unwrap().len(), 4);

    assert_eq!(
        bss_host::scheduler::queue_retries(&app.instances).unwrap(),
        1,
        "one job for the one entity with queued records"
    );
    assert_eq!(
        bss_host::scheduler::queue_retries(&app.instances).unwrap(),
        0,
        "a retry already waiting is not queued twice"
    );
    s.sandbox.set_faults(cw_sandbox::Faults::default());
    let worker = bss_host::fleet::start(app.instances.clone(), "w1".into()).unwrap();
    let started = Instant::now();
    let job = loop {
        let jobs = store.jobs(Some("cw"), 10).unwrap();
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        if jobs[0].state != bss_host::store::job_store::JobState::Queued
            && jobs[0].state != bss_host::store::job_store::JobState::Running
        {
            break jobs[0].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the retry job did not end: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    worker.stop();
    assert_eq!(
        (job.kind.as_str(), job.entity.as_str(), job.trigger.as_str()),
        ("retry", "account", "serve"),
        "{job:?}"
    );
    assert_eq!(job.state.as_str(), "done", "{job:?}");
    assert!(job.run.is_some(), "{job:?}");
    assert!(store.queue("cw").unwrap().is_empty());
    assert_eq!(s.sandbox.records("company/companies").len(), 4);
    assert_eq!(
        bss_host::scheduler::queue_retries(&app.instances).unwrap(),
        0,
        "nothing left to retry"
    );
}
