//! Push and pull through the real `bss-host` binary, the real ConnectWise component and a real
//! SQLite file, against the sandbox: no duplicates on re-runs or after a crash mid-create, retries
//! under faults with nothing lost, per-record failures and the retry queue, pull cursors, dry runs,
//! and the demo.

mod common;
mod cw;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::cli::{BIN, blocking, command, fails, id_map, ok, run};
use common::records::{account, write_ndjson};
use cw::Setup;
use cw_sandbox::{Faults, Sandbox};
use serde_json::{Value, json};

/// A run that happened with some records failed: exit code 2, the report on stdout.
fn partly(data: &Path, args: &[&str]) -> String {
    let out = run(data, args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(2),
        "bss-host {args:?} should exit 2:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A data folder with instance `cw` set up against a fresh sandbox, every sync option on.
async fn setup() -> Setup {
    cw::setup(
        common::cli::HOST,
        &[
            "account:push:create,update",
            "account:pull:create,update",
            "contact:push:create,update",
        ],
    )
    .await
}

fn report(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not a JSON report ({e}): {stdout}"))
}

fn identifiers(sandbox: &Sandbox) -> Vec<String> {
    let mut ids: Vec<String> = sandbox
        .records("company/companies")
        .iter()
        .map(|c| c["identifier"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_thousand_accounts_twice_create_a_thousand_companies() {
    let s = setup().await;
    let file = s.data.parent().unwrap().join("accounts.ndjson");
    write_ndjson(&file, &(1..=1000).map(account).collect::<Vec<_>>());
    let (data, path) = (s.data.clone(), file.display().to_string());
    let (first, second) = blocking(move || {
        let first = report(&ok(
            &data,
            &["push", "cw", "account", "--file", &path, "--json"],
        ));
        let second = report(&ok(
            &data,
            &["push", "cw", "account", "--file", &path, "--json"],
        ));
        (first, second)
    })
    .await;
    assert_eq!(first["created"], 1000, "{}", first["items"][0]);
    assert_eq!(
        (second["created"].as_u64(), second["unchanged"].as_u64()),
        (Some(0), Some(1000))
    );
    let ids = identifiers(&s.sandbox);
    assert_eq!(ids.len(), 1000);
    ids.windows(2).for_each(|w| assert_ne!(w[0], w[1]));
    // Each BSS id has its remote id (the IntegrationId) in the report.
    let items = first["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .all(|i| i["remote-id"].as_str().is_some_and(|r| !r.is_empty()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_killed_mid_create_resumes_without_duplicates() {
    let s = setup().await;
    let file = s.data.parent().unwrap().join("accounts.ndjson");
    write_ndjson(&file, &(1..=1000).map(account).collect::<Vec<_>>());
    s.sandbox.set_faults(Faults::default().with_stall_post(500));
    let child = command(
        &s.data,
        &[
            "push",
            "cw",
            "account",
            "--file",
            &file.display().to_string(),
            "--json",
        ],
    )
    .spawn()
    .unwrap();
    let mut child = cw::Reaper(child);
    // Wait until the 500th company is stored and its response held.
    let mut waited = Duration::ZERO;
    while s.sandbox.records("company/companies").len() < 500 {
        assert!(
            waited < Duration::from_secs(120),
            "the push never reached POST #500"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.0.kill().unwrap(); // SIGKILL: no chance to clean up
    child.0.wait().unwrap();
    assert_eq!(s.sandbox.records("company/companies").len(), 500);
    s.sandbox.set_faults(Faults::default());

    let (data, path) = (s.data.clone(), file.display().to_string());
    let second = blocking(move || {
        report(&ok(
            &data,
            &["push", "cw", "account", "--file", &path, "--json"],
        ))
    })
    .await;
    let ids = identifiers(&s.sandbox);
    assert_eq!(ids.len(), 1000, "exactly 1,000 companies");
    ids.windows(2)
        .for_each(|w| assert_ne!(w[0], w[1], "no duplicate identifiers"));
    let item = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "A0500")
        .unwrap()
        .clone();
    assert_eq!(item["outcome"], "reconciled", "{item}");
    assert!(second["reconciled"].as_u64().unwrap() >= 1);
    let map = id_map(&s.data, "account");
    assert_eq!(map.len(), 1000);
    assert!(
        map.iter()
            .all(|(_, remote, pending)| remote.is_some() && !pending)
    );
    let mut remotes: Vec<&String> = map.iter().map(|(_, r, _)| r.as_ref().unwrap()).collect();
    remotes.sort();
    remotes.dedup();
    assert_eq!(
        remotes.len(),
        1000,
        "each BSS id maps to exactly one company"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_server_errors_lose_nothing() {
    let s = setup().await;
    let file = s.data.parent().unwrap().join("accounts.ndjson");
    write_ndjson(&file, &(1..=200).map(account).collect::<Vec<_>>());
    s.sandbox.set_faults(
        Faults::default()
            .with_rate_limit_every(10, 1)
            .with_server_error_rate(0.05, 7),
    );
    let (data, path) = (s.data.clone(), file.display().to_string());
    let pushed = blocking(move || {
        report(&ok(
            &data,
            &["push", "cw", "account", "--file", &path, "--json"],
        ))
    })
    .await;
    let done = pushed["created"].as_u64().unwrap() + pushed["reconciled"].as_u64().unwrap();
    let queued = pushed["queued"].as_u64().unwrap();
    assert_eq!(pushed["failed"], 0, "{pushed}");
    assert_eq!(done + queued, 200, "every record is accounted for");
    let data = s.data.clone();
    let queue = blocking(move || report(&ok(&data, &["runs", "queue", "cw", "--json"]))).await;
    assert_eq!(
        queue.as_array().unwrap().len() as u64,
        queued,
        "the report and the retry queue agree"
    );

    // Whatever was queued goes through on retry once the remote calms down.
    s.sandbox.set_faults(Faults::default());
    let data = s.data.clone();
    blocking(move || ok(&data, &["retry", "cw"])).await;
    assert_eq!(identifiers(&s.sandbox).len(), 200);
    assert!(
        id_map(&s.data, "account")
            .iter()
            .all(|(_, remote, _)| remote.is_some())
    );
    let data = s.data.clone();
    let queue = blocking(move || report(&ok(&data, &["runs", "queue", "cw", "--json"]))).await;
    assert!(queue.as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_fail_alone_and_only_retryable_ones_are_queued() {
    let s = setup().await;
    let dir = s.data.parent().unwrap().to_path_buf();
    let accounts = dir.join("accounts.ndjson");
    let mut records = vec![account(1), account(2)];
    records.push(json!({ "id": "X".repeat(31), "code": "LONG", "name": "Identifier too long", "billing-address": { "city": "Austin" } }));
    records.push(json!({ "id": "NOADDR", "code": "NA", "name": "No address" }));
    std::fs::write(
        &accounts,
        format!(
            "{}\n{{\"id\": \"TYPO\", \"code\": \"T\", \"nmae\": \"x\"}}\n",
            records
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    )
    .unwrap();
    let contacts = dir.join("contacts.ndjson");
    write_ndjson(
        &contacts,
        &[
            json!({ "id": "K1", "account": "A0003", "first-name": "Orphan" }),
            json!({ "id": "K2", "account": "A0001", "first-name": "Kid" }),
        ],
    );

    let data = s.data.clone();
    let (pushed, contact_report) = blocking(move || {
        let pushed = report(&partly(
            &data,
            &[
                "push",
                "cw",
                "account",
                "--file",
                &accounts.display().to_string(),
                "--json",
            ],
        ));
        let contact_report = report(&partly(
            &data,
            &[
                "push",
                "cw",
                "contact",
                "--file",
                &contacts.display().to_string(),
                "--json",
            ],
        ));
        (pushed, contact_report)
    })
    .await;
    assert_eq!(pushed["created"], 2);
    let outcome = |report: &Value, id: &str| {
        report["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .cloned()
            .unwrap()
    };
    let long = outcome(&pushed, &"X".repeat(31));
    assert_eq!(long["outcome"], "failed");
    assert!(
        long["message"].as_str().unwrap().contains("bss-id"),
        "{long}"
    );
    let no_address = outcome(&pushed, "NOADDR");
    assert_eq!(no_address["outcome"], "failed");
    assert!(
        no_address["message"]
            .as_str()
            .unwrap()
            .contains("billing-address/line1"),
        "{no_address}"
    );
    let typo = outcome(&pushed, "TYPO");
    assert_eq!(typo["outcome"], "invalid");
    assert!(
        typo["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `nmae`"),
        "{typo}"
    );

    let orphan = outcome(&contact_report, "K1");
    assert_eq!(orphan["outcome"], "queued");
    assert!(
        orphan["message"]
            .as_str()
            .unwrap()
            .contains("account \"A0003\", which has not been pushed yet"),
        "{orphan}"
    );
    assert_eq!(outcome(&contact_report, "K2")["outcome"], "created");

    let data = s.data.clone();
    let queue = blocking(move || report(&ok(&data, &["runs", "queue", "cw", "--json"]))).await;
    let queued: Vec<&str> = queue
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["bss_id"].as_str().unwrap())
        .collect();
    assert_eq!(queued, ["K1"], "only the retryable failure is queued");

    // Push the account it needs: the queued contact goes through with it, nothing is left.
    let more = dir.join("more.ndjson");
    write_ndjson(&more, &[account(3)]);
    let data = s.data.clone();
    let (pushed, retried) = blocking(move || {
        let pushed = report(&ok(
            &data,
            &[
                "push",
                "cw",
                "account",
                "--file",
                &more.display().to_string(),
                "--json",
            ],
        ));
        (pushed, report(&ok(&data, &["retry", "cw", "--json"])))
    })
    .await;
    assert_eq!(pushed["settled"][0][0], "contact", "{pushed}");
    assert_eq!(pushed["settled"][0][1]["created"], 1, "{pushed}");
    assert_eq!(retried["claimed"], 0, "{retried}");
    assert!(
        s.sandbox
            .records("company/contacts")
            .iter()
            .any(|c| c["firstName"] == "Orphan")
    );

    // A sync option that is off, and a disabled instance, are refused with a reason.
    let data = s.data.clone();
    blocking(move || {
        let err = fails(&data, &["push", "cw", "product", "--file", "/dev/null"]);
        assert!(
            err.contains("push of product is not enabled for instance cw"),
            "{err}"
        );
        ok(&data, &["instances", "disable", "cw"]);
        let err = fails(&data, &["push", "cw", "account", "--file", "/dev/null"]);
        assert!(err.contains("instance \"cw\" is disabled"), "{err}");
        ok(&data, &["instances", "enable", "cw"]);
    })
    .await;
}

fn pulled(out: &str) -> Vec<Value> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_returns_exactly_the_changes_and_a_crash_never_skips() {
    let s = setup().await;
    s.sandbox.set_clock(1_790_000_000);
    let file = s.data.parent().unwrap().join("accounts.ndjson");
    write_ndjson(&file, &(1..=5).map(account).collect::<Vec<_>>());
    let (data, path) = (s.data.clone(), file.display().to_string());
    let (echoes, first) = blocking(move || {
        ok(&data, &["push", "cw", "account", "--file", &path]);
        // What was just pushed comes back as the instance's own echo, not as changes.
        let echoes = pulled(&ok(
            &data,
            &["pull", "cw", "account", "--since", "2020-01-01T00:00:00Z"],
        ));
        let all = pulled(&ok(
            &data,
            &[
                "pull",
                "cw",
                "account",
                "--since",
                "2020-01-01T00:00:00Z",
                "--include-echoes",
            ],
        ));
        (echoes, all)
    })
    .await;
    assert!(echoes.is_empty(), "{echoes:?}");
    assert_eq!(first.len(), 5);
    assert_eq!(first[0]["id"], "A0001", "remote ids map back to BSS ids");
    assert_eq!(first[0]["account-type"], "Customer", "reverse lookup");

    // Nothing changed: nothing comes back, although the next pull asks >= the cursor.
    let data = s.data.clone();
    assert!(
        blocking(move || pulled(&ok(&data, &["pull", "cw", "account"])))
            .await
            .is_empty()
    );

    // Two remote edits in the same second as each other.
    s.sandbox.advance_clock(60);
    let companies = s.sandbox.records("company/companies");
    for company in companies.iter().take(2) {
        s.sandbox.patch(
            "company/companies",
            company["id"].as_i64().unwrap(),
            json!({ "name": format!("{} (edited)", company["name"].as_str().unwrap()) }),
        );
    }

    // A pull killed while it fetches commits no cursor: the next pull delivers the edits again.
    s.sandbox
        .set_faults(Faults::default().with_latency(Duration::from_secs(5)));
    let out = s.data.parent().unwrap().join("killed.ndjson");
    let child = command(
        &s.data,
        &["pull", "cw", "account", "--out", &out.display().to_string()],
    )
    .spawn()
    .unwrap();
    let mut child = cw::Reaper(child);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    s.sandbox.set_faults(Faults::default());

    let data = s.data.clone();
    let changed = blocking(move || pulled(&ok(&data, &["pull", "cw", "account"]))).await;
    let names: Vec<&str> = changed
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Account 1 (edited)", "Account 2 (edited)"]);
    let data = s.data.clone();
    assert!(
        blocking(move || pulled(&ok(&data, &["pull", "cw", "account"])))
            .await
            .is_empty(),
        "delivered once the cursor moved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_changes_nothing_and_says_what_it_would_do() {
    let s = setup().await;
    let file = s.data.parent().unwrap().join("accounts.ndjson");
    write_ndjson(&file, &(1..=3).map(account).collect::<Vec<_>>());
    s.sandbox.clear_requests();
    let (data, path) = (s.data.clone(), file.display().to_string());
    let dry = blocking(move || {
        report(&ok(
            &data,
            &[
                "push",
                "cw",
                "account",
                "--file",
                &path,
                "--dry-run",
                "--json",
            ],
        ))
    })
    .await;
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["created"], 3);
    assert!(
        dry["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["outcome"] == "would-create")
    );
    assert!(s.sandbox.records("company/companies").is_empty());
    assert!(
        s.sandbox.requests().iter().all(|r| r.method == "GET"),
        "only reads were sent"
    );
    assert!(
        id_map(&s.data, "account").is_empty(),
        "the id map is untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_completes_and_matches_the_sandbox() {
    let out = blocking(|| {
        Command::new(BIN)
            .arg("demo")
            .env("BSS_HOST_LOG", "warn")
            .output()
            .unwrap()
    })
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("summary matches the sandbox's contents"),
        "{stdout}"
    );
    assert!(!stdout.contains("MISMATCH"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_pushes_pulls_and_shows_runs() {
    let s = setup().await;
    let served = cw::serve(command(&s.data, &[]));
    let (token, base) = (served.token.clone(), served.base.clone());
    let client = cw::api_client();
    let body = json!([account(1), account(2)]).to_string();
    let pushed: Value = client
        .post(format!("{base}/instances/cw/push/account"))
        .bearer_auth(&token)
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pushed["created"], 2, "{pushed}");
    // Right after the push, both companies are the push's echoes: counted, returned on request.
    let pulled: Value = client
        .post(format!("{base}/instances/cw/pull/account"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pulled["records"].as_array().unwrap().len(), 0, "{pulled}");
    assert_eq!(pulled["report"]["echoes"], 2, "{pulled}");
    let pulled: Value = client
        .post(format!(
            "{base}/instances/cw/pull/account?since=2000-01-01T00:00:00Z&include_echoes=true"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pulled["records"].as_array().unwrap().len(), 2, "{pulled}");
    let runs: Value = client
        .get(format!("{base}/instances/cw/runs"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 3, "a push and two pulls");
    let run_id = runs[0]["id"].as_i64().unwrap();
    let run: Value = client
        .get(format!("{base}/runs/{run_id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(run["items"].as_array().unwrap().len(), 2);
    let bad = client
        .post(format!("{base}/instances/cw/push/planet"))
        .bearer_auth(&token)
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    // The run happens, but a record is invalid: 422, with the report saying which.
    let partly = client
        .post(format!("{base}/instances/cw/push/account"))
        .bearer_auth(&token)
        .body(json!([account(3), { "id": "TYPO", "code": "T", "nmae": "x" }]).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(partly.status(), 422);
    let partly: Value = partly.json().await.unwrap();
    assert_eq!(partly["created"], 1, "{partly}");
    assert_eq!(partly["items"][0]["outcome"], "invalid", "{partly}");
    let queue: Value = client
        .get(format!("{base}/instances/cw/retry-queue"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(queue.as_array().unwrap().is_empty());
}

/// The remote limits the API key, not the process: two processes pushing for one instance share
/// its request budget (`host.requests-per-minute`), kept in the data folder's store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_pushing_for_one_instance_share_its_request_budget() {
    let setup = setup().await;
    let data = setup.data.clone();
    blocking(move || {
        ok(
            &data,
            &["settings", "set", "cw", "host.requests-per-minute=60"],
        )
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("a.ndjson"), dir.path().join("b.ndjson"));
    write_ndjson(&first, &(1..=60).map(account).collect::<Vec<_>>());
    write_ndjson(&second, &(101..=160).map(account).collect::<Vec<_>>());
    let before = setup.sandbox.request_count();
    let started = std::time::Instant::now();
    let mut pushes: Vec<cw::Reaper> = [&first, &second]
        .iter()
        .map(|file| {
            let file = file.to_str().unwrap();
            cw::Reaper(
                command(&setup.data, &["push", "cw", "account", "--file", file])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let sent = setup.sandbox.request_count() - before;
    let seconds = started.elapsed().as_secs();
    pushes.clear();
    // Each push needs 60+ requests; on their own budgets both would have sent 120+ by now. Shared:
    // the full bucket (60), one a second since, and at most one token each process took and did
    // not spend. (At least 20: the pushes did run.)
    let bound = 60 + seconds + 2;
    assert!(
        (20..=bound).contains(&sent),
        "{sent} requests in {seconds} s (bound {bound})"
    );
}
