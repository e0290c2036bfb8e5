//! What a lying connector can make a sync run do, through the real binary: a pull whose pages
//! never end stops at the instance's page cap with the cursor kept; a day-long `Retry-After`
//! does not hold a push; a record stamped in the year 9999, or of another entity than asked, is
//! refused and never moves the cursor, and a malformed stamp is delivered but never becomes the
//! cursor; records not synchronised by configuration are skipped, not failed.

mod common;

use std::path::Path;
use std::process::Output;

use common::cli::{Folder, text};
use serde_json::Value;

const FIXTURE: &str = env!("BSS_FIXTURE_WASM");

/// A fixture instance `fx` in `mode`, pushing and pulling accounts.
fn instance(mode: &str, extra: &[&str]) -> Folder {
    let folder = Folder::new();
    folder.plugin(FIXTURE, "fixture.wasm");
    folder.ok(&["activate", "fixture", "--name", "fx"]);
    let mode = format!("mode={mode}");
    let mut args = vec![
        "settings",
        "set",
        "fx",
        "base-url=http://127.0.0.1:9",
        "user=fixture-user",
        "api-key=fixture-key-123",
        &mode,
        "host.allow-private-network=on",
    ];
    args.extend(extra);
    // The fixture's check answers per mode; only the settings matter here.
    let _ = folder.run(&args);
    folder.ok(&[
        "sync-options",
        "set",
        "fx",
        "account:push:create,update",
        "account:pull:create,update",
    ]);
    folder
}

/// Pushes accounts A1 and A2 from a file, as `--json`.
fn push_two_accounts(folder: &Folder) -> Output {
    let file = folder.data.parent().unwrap().join("accounts.ndjson");
    std::fs::write(
        &file,
        "{\"id\":\"A1\",\"code\":\"C1\",\"name\":\"One\"}\n{\"id\":\"A2\",\"code\":\"C2\",\"name\":\"Two\"}\n",
    )
    .unwrap();
    folder.run(&[
        "push",
        "fx",
        "account",
        "--file",
        &file.display().to_string(),
        "--json",
    ])
}

fn last_run(folder: &Folder) -> Value {
    let runs: Value = serde_json::from_str(&folder.ok(&["runs", "list", "fx", "--json"])).unwrap();
    runs.as_array().unwrap().last().unwrap().clone()
}

fn cursor(data: &Path) -> Option<String> {
    let connection = rusqlite::Connection::open(data.join("bss.db")).unwrap();
    connection
        .query_row("SELECT stamp FROM cursors WHERE instance = 'fx'", [], |r| {
            r.get(0)
        })
        .unwrap_or(None)
}

#[test]
fn a_pull_without_end_stops_at_its_page_cap_and_keeps_the_cursor() {
    let folder = instance("endless-pull", &["host.max-pull-pages=40"]);
    let out = folder.run(&["pull", "fx", "account"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("stopped after 40 pages (host.max-pull-pages)"),
        "{said}"
    );
    let delivered = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(delivered, 40, "what was read is delivered");
    assert_eq!(cursor(&folder.data), None, "the cursor did not move");
    assert_eq!(last_run(&folder)["status"], "stopped");
}

#[test]
fn a_day_long_retry_after_does_not_hold_a_push() {
    let folder = instance("rate-limit-day", &[]);
    let out = push_two_accounts(&folder);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["queued"], 2, "{report}");
    assert!(
        report["items"][0]["message"]
            .as_str()
            .unwrap()
            .contains("longer than host.max-retry-after (300 s)"),
        "{report}"
    );
}

#[test]
fn a_stamp_in_the_year_9999_is_refused_and_never_moves_the_cursor() {
    let folder = instance("future-stamp", &[]);
    for round in 0..2 {
        let out = folder.run(&["pull", "fx", "account"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let said = text(&out);
        assert!(
            said.contains("refused 2: last-updated 9999-12-31T23:59:59Z is in the future"),
            "{said}"
        );
        let delivered: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // The first pull delivers record 1; the next one folds it (same stamp, delivered).
        assert_eq!(delivered.len(), 1 - round, "{delivered:?}");
        assert_eq!(
            cursor(&folder.data).as_deref(),
            Some("2026-01-01T00:00:00Z")
        );
    }
}

#[test]
fn a_record_of_another_entity_is_refused() {
    let folder = instance("wrong-entity", &[]);
    let out = folder.run(&["pull", "fx", "account"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("the connector returned a contact to a pull of account"),
        "{said}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

#[test]
fn a_malformed_stamp_is_delivered_with_a_warning_and_never_becomes_the_cursor() {
    let folder = instance("malformed-stamp", &[]);
    let first = folder.ok(&["pull", "fx", "account"]);
    let records: Vec<Value> = first
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{first}");
    assert_eq!(records[0]["warnings"][0], "asked since the start");
    assert!(
        records[1]["warnings"][1]
            .as_str()
            .unwrap()
            .contains("does not move the cursor"),
        "{first}"
    );
    assert_eq!(
        cursor(&folder.data).as_deref(),
        Some("2026-01-01T00:00:00Z")
    );
    let second = folder.ok(&["pull", "fx", "account"]);
    // Record 1 is folded (delivered before at the cursor's stamp); record 2 comes again.
    assert_eq!(second.lines().count(), 1, "{second}");
    assert!(
        second.contains("asked since 2026-01-01T00:00:00Z"),
        "the next pull asks from a well-formed cursor: {second}"
    );
    assert_eq!(
        cursor(&folder.data).as_deref(),
        Some("2026-01-01T00:00:00Z")
    );
}

#[test]
fn records_not_synchronised_by_configuration_are_skipped_not_failed() {
    let folder = instance("skip-all", &[]);
    let file = folder.data.parent().unwrap().join("accounts.ndjson");
    std::fs::write(&file, "{\"id\":\"A1\",\"code\":\"C1\",\"name\":\"One\"}\n").unwrap();
    let path = file.display().to_string();
    let report: Value =
        serde_json::from_str(&folder.ok(&["push", "fx", "account", "--file", &path, "--json"]))
            .unwrap();
    assert_eq!(report["skipped"], 1, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(report["items"][0]["outcome"], "skipped");
    assert_eq!(
        report["items"][0]["message"],
        "skipped: A1 is closed in the fixture"
    );
    // Creating is switched off: the record is skipped, saying so, and the run still succeeds.
    folder.ok(&["sync-options", "set", "fx", "account:push:update"]);
    let report: Value =
        serde_json::from_str(&folder.ok(&["push", "fx", "account", "--file", &path, "--json"]))
            .unwrap();
    assert_eq!(report["skipped"], 1, "{report}");
    assert!(
        report["items"][0]["message"]
            .as_str()
            .unwrap()
            .contains("create of account by push is not enabled"),
        "{report}"
    );
    let runs: Value = serde_json::from_str(&folder.ok(&["runs", "list", "fx", "--json"])).unwrap();
    assert_eq!(runs[0]["skipped"], 1, "{runs}");
}

#[test]
fn two_records_answered_with_one_remote_id_are_not_both_linked() {
    let folder = instance("same-remote-id", &[]);
    let out = push_two_accounts(&folder);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["items"][0]["outcome"], "created", "{report}");
    assert_eq!(report["items"][1]["outcome"], "ambiguous", "{report}");
    let connection = rusqlite::Connection::open(folder.data.join("bss.db")).unwrap();
    let linked: i64 = connection
        .query_row(
            "SELECT COUNT(*) FROM id_map WHERE remote_id = '77'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(linked, 1, "one remote record, one BSS record");
}
