//! The real `bss-host` binary on a PostgreSQL store (`--database` through `BSS_HOST_DATABASE`),
//! each test on a scratch database of its own on the server `BSS_TEST_DATABASE_URL` names: a push
//! killed mid-create resumes without a duplicate; two processes pushing one file at once create
//! each record once; `migrate-store` carries a SQLite store over (sealed secrets, id map, runs)
//! so the next push changes nothing, and refuses a database that is not empty.

mod common;
mod cw;

use std::time::Duration;

use bss_host::store::postgres::scratch::ScratchDb;
use common::cli::{HOST, Host, blocking};
use common::records::account;
use cw_sandbox::{Faults, Sandbox};
use serde_json::Value;

/// [`HOST`] with its store on `scratch` (kept for the whole test run, so `'static`).
fn on(scratch: &ScratchDb) -> Host<'static> {
    let env: &'static [(&'static str, &'static str)] = Box::leak(Box::new([(
        "BSS_HOST_DATABASE",
        &*Box::leak(scratch.url.clone().into_boxed_str()),
    )]));
    Host { env, ..HOST }
}

/// `push cw account --file FILE --json` through `host`, off the async workers: its report.
async fn push(host: Host<'static>, data: &std::path::Path, file: &str) -> Value {
    let (data, file) = (data.to_path_buf(), file.to_string());
    blocking(move || report(&host.ok(&data, &["push", "cw", "account", "--file", &file, "--json"])))
        .await
}

fn report(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not a JSON report ({e}): {stdout}"))
}

fn companies(sandbox: &Sandbox) -> usize {
    let mut ids: Vec<String> = sandbox
        .records("company/companies")
        .iter()
        .map(|c| c["identifier"].as_str().unwrap().to_string())
        .collect();
    let all = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), all, "a company was created twice");
    all
}

const OPTIONS: &[&str] = &["account:push:create,update"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_killed_mid_create_resumes_without_duplicates() {
    let scratch = ScratchDb::create();
    let host = on(&scratch);
    let s = cw::setup(host, OPTIONS).await;
    assert!(
        !s.data.join("bss.db").exists(),
        "the store is in PostgreSQL, not in the data folder"
    );
    let path = s.file(
        "accounts.ndjson",
        &(1..=600).map(account).collect::<Vec<_>>(),
    );
    s.sandbox.set_faults(Faults::default().with_stall_post(300));
    let args = ["push", "cw", "account", "--file", &path, "--json"];
    let mut child = cw::Reaper(host.command(&s.data, &args).spawn().unwrap());
    let mut waited = Duration::ZERO;
    while s.sandbox.records("company/companies").len() < 300 {
        assert!(
            waited < Duration::from_secs(120),
            "the push never reached POST #300"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.0.kill().unwrap(); // SIGKILL: no chance to clean up
    child.0.wait().unwrap();
    s.sandbox.set_faults(Faults::default());

    let second = push(host, &s.data, &path).await;
    assert_eq!(companies(&s.sandbox), 600);
    let created = second["created"].as_u64().unwrap();
    let reconciled = second["reconciled"].as_u64().unwrap();
    let unchanged = second["unchanged"].as_u64().unwrap();
    assert_eq!(created + reconciled + unchanged, 600, "{second}");
    assert!(
        reconciled >= 1,
        "the create whose answer was lost is found, not made again: {second}"
    );
    let data = s.data.clone();
    let runs = blocking(move || host.ok(&data, &["runs", "list", "cw", "--json"])).await;
    let runs: Vec<Value> = serde_json::from_str(&runs).unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0]["status"], "interrupted", "{runs:?}");
    assert_eq!(runs[1]["status"], "done", "{runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_pushing_one_file_at_once_create_each_record_once() {
    let scratch = ScratchDb::create();
    let host = on(&scratch);
    let s = cw::setup(host, OPTIONS).await;
    let path = s.file(
        "accounts.ndjson",
        &(1..=300).map(account).collect::<Vec<_>>(),
    );
    let args = ["push", "cw", "account", "--file", &path, "--json"];
    let (a, b) = (
        host.command(&s.data, &args).output(),
        host.command(&s.data, &args).output(),
    );
    let (a, b) = (
        blocking(move || a.unwrap()).await,
        blocking(move || b.unwrap()).await,
    );
    for out in [&a, &b] {
        assert!(out.status.success(), "{}", common::cli::text(out));
    }
    let (a, b) = (
        report(&String::from_utf8_lossy(&a.stdout)),
        report(&String::from_utf8_lossy(&b.stdout)),
    );
    assert_eq!(companies(&s.sandbox), 300);
    let made = |r: &Value| r["created"].as_u64().unwrap() + r["reconciled"].as_u64().unwrap();
    assert_eq!(made(&a) + made(&b), 300, "{a}\n{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_store_carries_a_sqlite_store_over_and_refuses_a_full_database() {
    // Pushed on SQLite first: 200 accounts linked, one run, sealed secrets, a token.
    let s = cw::setup(HOST, OPTIONS).await;
    let path = s.file(
        "accounts.ndjson",
        &(1..=200).map(account).collect::<Vec<_>>(),
    );
    let data = s.data.clone();
    blocking(move || HOST.ok(&data, &["tokens", "create", "ops", "--role", "operator"])).await;
    let first = push(HOST, &s.data, &path).await;
    assert_eq!(first["created"], 200);

    let scratch = ScratchDb::create();
    // Pointed at the empty database before the copy: refused, so nothing is created twice.
    let (host, data) = (on(&scratch), s.data.clone());
    let refused = blocking(move || host.fails(&data, &["instances", "list"])).await;
    assert!(refused.contains("holds no instances"), "{refused}");
    assert!(refused.contains("migrate-store"), "{refused}");
    let (data, url) = (s.data.clone(), scratch.url.clone());
    let copied = blocking(move || {
        HOST.ok(
            &data,
            &[
                "migrate-store",
                "--from",
                &data.display().to_string(),
                "--to",
                &url,
            ],
        )
    })
    .await;
    assert!(
        copied.contains("read back and compared: identical"),
        "{copied}"
    );
    let rows = |table: &str| -> u64 {
        copied
            .lines()
            .find_map(|l| {
                let mut words = l.split_whitespace();
                (words.next() == Some(table)).then(|| words.next().unwrap().parse().unwrap())
            })
            .unwrap_or_else(|| panic!("{table} not in:\n{copied}"))
    };
    assert_eq!(rows("id_map"), 200);
    assert_eq!(rows("instances"), 1);
    assert_eq!(rows("run_items"), 200);
    assert_eq!(rows("api_tokens"), 1);

    // On PostgreSQL now: the same push changes nothing (it signs in with the sealed private key,
    // so the secrets open with the folder's key), and the run history and the token came along.
    let host = on(&scratch);
    let second = push(host, &s.data, &path).await;
    let data = s.data.clone();
    let (runs, tokens) = blocking(move || {
        (
            host.ok(&data, &["runs", "list", "cw", "--json"]),
            host.ok(&data, &["tokens", "list"]),
        )
    })
    .await;
    assert_eq!(
        (second["created"].as_u64(), second["unchanged"].as_u64()),
        (Some(0), Some(200)),
        "{second}"
    );
    assert_eq!(companies(&s.sandbox), 200);
    let runs: Vec<Value> = serde_json::from_str(&runs).unwrap();
    assert_eq!(runs.len(), 2);
    assert!(tokens.contains("ops"), "{tokens}");

    // A second copy into the same database is refused, and changes nothing.
    let (data, url) = (s.data.clone(), scratch.url.clone());
    let refused = blocking(move || {
        HOST.fails(
            &data,
            &[
                "migrate-store",
                "--from",
                &data.display().to_string(),
                "--to",
                &url,
            ],
        )
    })
    .await;
    assert!(refused.contains("is not empty"), "{refused}");
    assert!(refused.contains("nothing was copied"), "{refused}");
}
