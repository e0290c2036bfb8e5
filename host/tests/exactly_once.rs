//! Exactly once through the real `bss-host` binary, the real SQLite file and the ConnectWise
//! sandbox over loopback: several runs of one instance at once (two CLI pushes and an API push),
//! a killed run and its lease, a data folder that lost its database, exit codes, ids the remote
//! would confuse, and queued records that settle when what they wait for is pushed.

mod common;
mod cw;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::cli::{Host, blocking, id_map, text};
use common::records::{account, contact};
use cw::{Setup, add_instance};
use cw_sandbox::{Faults, Sandbox};
use serde_json::{Value, json};

/// Leases lapse after this long in these tests, so a killed run is seen as interrupted quickly.
const LEASE_TTL_MS: &str = "1500";
/// The binary, with leases that lapse after [`LEASE_TTL_MS`].
const HOST: Host = Host {
    env: &[("BSS_HOST_LEASE_TTL_MS", LEASE_TTL_MS)],
    ..common::cli::HOST
};
/// The sync options of instances here: accounts and contacts push.
const PUSH: &[&str] = &["account:push:create,update", "contact:push:create,update"];

fn command(data: &Path, args: &[&str]) -> Command {
    HOST.command(data, args)
}

fn run(data: &Path, args: &[&str]) -> Output {
    HOST.run(data, args)
}

fn ok(data: &Path, args: &[&str]) -> String {
    HOST.ok(data, args)
}

/// A data folder with instance `cw` against a fresh sandbox; accounts and contacts push.
async fn setup() -> Setup {
    cw::setup(HOST, PUSH).await
}

/// Every BSS id is mapped, to remote ids all different, and the remote holds exactly as many.
fn assert_mapped_once(s: &Setup, entity: &str, resource: &str, count: usize) {
    let map = id_map(&s.data, entity);
    assert_eq!(map.len(), count, "{entity}: every BSS id is in the id map");
    let mut remotes: Vec<String> = map
        .iter()
        .map(|(id, r, _)| r.clone().unwrap_or_else(|| panic!("{id} has no remote id")))
        .collect();
    remotes.sort();
    remotes.dedup();
    assert_eq!(
        remotes.len(),
        count,
        "{entity}: one remote record per BSS id"
    );
    assert_eq!(
        s.sandbox.records(resource).len(),
        count,
        "{entity}: exactly {count} in ConnectWise"
    );
}

/// Two CLI pushes and an API push (to `served`) of the same file at the same moment.
async fn three_pushes_at_once(s: &Setup, served: &cw::Served, entity: &str, path: &str) {
    let body = std::fs::read_to_string(path).unwrap();
    let client = cw::api_client();
    let url = format!("{}/instances/cw/push/{entity}", served.base);
    let (data, p) = (s.data.clone(), path.to_string());
    let first = command(&data, &["push", "cw", entity, "--file", &p, "--json"])
        .spawn()
        .unwrap();
    let second = command(&data, &["push", "cw", entity, "--file", &p, "--json"])
        .spawn()
        .unwrap();
    // The API refuses with 409 while a CLI run holds the lease, so it tries until it gets a turn.
    let mut answered = None;
    for _ in 0..600 {
        let response = client
            .post(&url)
            .bearer_auth(&served.token)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_ne!(
            status, 503,
            "the store never fails under contention: {text}"
        );
        if status == 409 {
            assert!(text.contains("is busy"), "{text}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        answered = Some((status, text));
        break;
    }
    let (status, text) = answered.expect("the API push got its turn");
    assert_eq!(status, 200, "{text}");
    for child in [first, second] {
        let out = blocking(move || child.wait_with_output().unwrap()).await;
        let all = text_of(&out);
        assert!(!all.contains("database is locked"), "{all}");
        assert!(out.status.success(), "a CLI push failed:\n{all}");
    }
}

fn text_of(out: &Output) -> String {
    text(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_runs_at_once_create_each_account_and_contact_once() {
    for trial in 0..10 {
        let s = setup().await;
        let accounts = s.file(
            "accounts.ndjson",
            &(1..=1000).map(account).collect::<Vec<_>>(),
        );
        let served = cw::serve(command(&s.data, &[]));
        three_pushes_at_once(&s, &served, "account", &accounts).await;
        assert_mapped_once(&s, "account", "company/companies", 1000);

        let contacts = s.file(
            "contacts.ndjson",
            &(1..=500)
                .map(|i| contact(i, Some(&format!("A{:04}", i % 1000 + 1))))
                .collect::<Vec<_>>(),
        );
        three_pushes_at_once(&s, &served, "contact", &contacts).await;
        assert_mapped_once(&s, "contact", "company/contacts", 500);
        eprintln!("trial {trial}: exactly once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_waits_or_is_refused_and_a_killed_run_is_interrupted() {
    let s = setup().await;
    let accounts = s.file(
        "accounts.ndjson",
        &(1..=50).map(account).collect::<Vec<_>>(),
    );
    // The 10th create's answer never comes: the run hangs there holding its lease.
    s.sandbox.set_faults(Faults::default().with_stall_post(10));
    let child = command(&s.data, &["push", "cw", "account", "--file", &accounts])
        .spawn()
        .unwrap();
    let mut child = cw::Reaper(child);
    let mut waited = Duration::ZERO;
    while s.sandbox.records("company/companies").len() < 10 {
        assert!(
            waited < Duration::from_secs(60),
            "the push never reached POST #10"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    let (data, path) = (s.data.clone(), accounts.clone());
    let refused = blocking(move || {
        run(
            &data,
            &["push", "cw", "account", "--file", &path, "--no-wait"],
        )
    })
    .await;
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let said = text(&refused);
    assert!(
        said.contains("is busy") && said.contains("push of account by bss-host (pid"),
        "{said}"
    );

    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();
    s.sandbox.set_faults(Faults::default());
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let data = s.data.clone();
    let runs = blocking(move || ok(&data, &["runs", "list", "cw", "--json"])).await;
    let runs: Value = serde_json::from_str(&runs).unwrap();
    let killed = runs
        .as_array()
        .unwrap()
        .iter()
        .rfind(|r| r["kind"] == "push")
        .unwrap();
    assert_eq!(killed["status"], "interrupted", "{killed}");

    let (data, path) = (s.data.clone(), accounts.clone());
    let next =
        blocking(move || ok(&data, &["push", "cw", "account", "--file", &path, "--json"])).await;
    let next: Value = serde_json::from_str(&next).unwrap();
    assert_eq!(next["failed"], 0, "{next}");
    // The killed run's creates were marked pending before they were sent: found, not repeated.
    assert!(next["reconciled"].as_u64().unwrap() >= 10, "{next}");
    assert_mapped_once(&s, "account", "company/companies", 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_say_what_happened() {
    let s = setup().await;
    let good = s.file("good.ndjson", &[account(1), account(2)]);
    let mixed = s.file(
        "mixed.ndjson",
        &[
            account(3),
            json!({ "id": "BAD", "code": "B", "nmae": "typo" }),
        ],
    );
    let data = s.data.clone();
    blocking(move || {
        let all_good = run(&data, &["push", "cw", "account", "--file", &good]);
        assert_eq!(all_good.status.code(), Some(0), "{}", text(&all_good));
        let some_failed = run(&data, &["push", "cw", "account", "--file", &mixed]);
        assert_eq!(some_failed.status.code(), Some(2), "{}", text(&some_failed));
        assert!(
            text(&some_failed).contains("BAD invalid"),
            "{}",
            text(&some_failed)
        );
        let unknown = run(&data, &["push", "nope", "account", "--file", &good]);
        assert_eq!(unknown.status.code(), Some(1), "{}", text(&unknown));
        // A check that fails: the values stay saved, and the command says so.
        let bad_check = run(&data, &["settings", "set", "cw", "company-id=nobody"]);
        assert_ne!(bad_check.status.code(), Some(0), "{}", text(&bad_check));
        assert!(
            text(&bad_check).contains("are saved, but the check"),
            "{}",
            text(&bad_check)
        );
        let help = run(&data, &["--help"]);
        assert!(text(&help).contains("Exit codes: 0"), "{}", text(&help));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_or_emptied_database_is_refused_not_recreated() {
    let s = setup().await;
    let good = s.file("good.ndjson", &[account(1)]);
    let data = s.data.clone();
    blocking(move || {
        ok(&data, &["push", "cw", "account", "--file", &good]);
        for damage in ["delete", "truncate"] {
            let db = data.join("bss.db");
            let saved = data.with_extension(format!("saved-{damage}"));
            std::fs::create_dir_all(&saved).unwrap();
            for name in ["bss.db", "bss.db-wal", "bss.db-shm"] {
                if data.join(name).exists() {
                    std::fs::rename(data.join(name), saved.join(name)).unwrap();
                }
            }
            if damage == "truncate" {
                std::fs::write(&db, b"").unwrap();
            }
            let refused = run(&data, &["push", "cw", "account", "--file", &good]);
            assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
            let said = text(&refused);
            assert!(
                said.contains("was used before") && said.contains("--new-database"),
                "{said}"
            );
            let length = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
            assert_eq!(length, 0, "nothing was created in place of the database");
            std::fs::remove_file(&db).ok();
            for name in ["bss.db", "bss.db-wal", "bss.db-shm"] {
                if saved.join(name).exists() {
                    std::fs::rename(saved.join(name), data.join(name)).unwrap();
                }
            }
        }
        // Restored, it works; a fresh start is explicit.
        ok(&data, &["instances", "show", "cw"]);
        let refused = run(&data, &["--new-database", "instances", "list"]);
        assert_eq!(
            refused.status.code(),
            Some(1),
            "an existing database is never replaced"
        );
    })
    .await;
    assert_eq!(s.sandbox.records("company/companies").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_the_remote_would_confuse_are_refused_before_sending() {
    let s = setup().await;
    let first = s.file("first.ndjson", &[json!({ "id": "case-x", "code": "CX", "name": "X", "billing-address": { "city": "Austin" }, "account-type": "Customer", "currency": "USD" })]);
    let mut upper = account(7);
    upper["id"] = json!("CASE-X");
    let mut same_file = account(8);
    same_file["id"] = json!("dup-y");
    let mut same_file_upper = account(9);
    same_file_upper["id"] = json!("DUP-Y");
    let mut nul = account(10);
    nul["id"] = json!("bad\u{0}id");
    let mut long = account(11);
    long["id"] = json!("L".repeat(201));
    let second = s.file(
        "second.ndjson",
        &[upper, same_file, same_file_upper, nul, long],
    );
    let data = s.data.clone();
    let report = blocking(move || {
        ok(&data, &["push", "cw", "account", "--file", &first]);
        let out = run(
            &data,
            &["push", "cw", "account", "--file", &second, "--json"],
        );
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    })
    .await;
    let outcome = |id: &str| {
        report["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .unwrap_or_else(|| panic!("{id} in {report}"))
            .clone()
    };
    assert_eq!(outcome("CASE-X")["outcome"], "invalid");
    assert!(
        outcome("CASE-X")["message"]
            .as_str()
            .unwrap()
            .contains("differs only in case")
    );
    assert_eq!(outcome("dup-y")["outcome"], "created");
    assert_eq!(outcome("DUP-Y")["outcome"], "invalid");
    assert_eq!(outcome("bad\u{0}id")["outcome"], "invalid");
    assert!(
        outcome(&"L".repeat(201))["message"]
            .as_str()
            .unwrap()
            .contains("at most 200 bytes")
    );
    assert_eq!(s.sandbox.records("company/companies").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_queued_for_a_missing_account_are_sent_by_the_push_that_creates_it() {
    let s = setup().await;
    let contacts = s.file(
        "contacts.ndjson",
        &[contact(1, Some("A0001")), contact(2, Some("A0001"))],
    );
    let accounts = s.file("accounts.ndjson", &[account(1)]);
    let data = s.data.clone();
    let pushed = blocking(move || {
        let queued = run(
            &data,
            &["push", "cw", "contact", "--file", &contacts, "--json"],
        );
        assert_eq!(
            queued.status.code(),
            Some(2),
            "queued records are not a success"
        );
        let queued: Value = serde_json::from_slice(&queued.stdout).unwrap();
        assert_eq!(queued["queued"], 2, "{queued}");
        ok(
            &data,
            &["push", "cw", "account", "--file", &accounts, "--json"],
        )
    })
    .await;
    let pushed: Value = serde_json::from_str(&pushed).unwrap();
    assert_eq!(pushed["created"], 1, "{pushed}");
    let settled = &pushed["settled"][0];
    assert_eq!(settled[0], "contact", "{pushed}");
    assert_eq!(settled[1]["created"], 2, "{pushed}");
    assert_mapped_once(&s, "contact", "company/contacts", 2);
    let data = s.data.clone();
    let queue = blocking(move || ok(&data, &["runs", "queue", "cw", "--json"])).await;
    assert_eq!(serde_json::from_str::<Value>(&queue).unwrap(), json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_company_made_by_hand_is_refused_then_linked_then_updated() {
    let s = setup().await;
    // Someone made company "A0001" in ConnectWise by hand (here: another instance, with
    // another account number, so it does not carry this record's key).
    let settings = cw::cli_settings(&s.sandbox);
    let mut by_hand = account(1);
    by_hand["code"] = json!("HAND");
    by_hand["name"] = json!("Made by hand");
    let hand_file = s.file("hand.ndjson", &[by_hand]);
    let ours = s.file("ours.ndjson", &[account(1)]);
    let data = s.data.clone();
    let (refused, linked, updated, queue) = blocking(move || {
        add_instance(HOST, &data, "hand", &settings, PUSH);
        ok(&data, &["push", "hand", "account", "--file", &hand_file]);
        let refused = run(&data, &["push", "cw", "account", "--file", &ours, "--json"]);
        assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
        let refused: Value = serde_json::from_slice(&refused.stdout).unwrap();
        let remote = refused["items"][0]["message"]
            .as_str()
            .unwrap()
            .split("company ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_string();
        let wrong = run(&data, &["link", "cw", "account", "A0001", "999999"]);
        assert_eq!(
            wrong.status.code(),
            Some(1),
            "a remote record that does not exist is not linked"
        );
        let linked = ok(&data, &["link", "cw", "account", "A0001", &remote]);
        let queue = ok(&data, &["runs", "queue", "cw", "--json"]);
        let updated = ok(&data, &["push", "cw", "account", "--file", &ours, "--json"]);
        (refused, linked, updated, queue)
    })
    .await;
    assert_eq!(refused["items"][0]["outcome"], "in-use", "{refused}");
    assert!(linked.contains("is linked to remote"), "{linked}");
    assert!(queue.contains("linked by hand"), "{queue}");
    let updated: Value = serde_json::from_str(&updated).unwrap();
    assert_eq!(updated["updated"], 1, "{updated}");
    let companies = s.sandbox.records("company/companies");
    assert_eq!(companies.len(), 1, "no second company");
    assert_eq!(
        companies[0]["name"], "Account 1",
        "the BSS record's data now"
    );
}

/// Waits until `resource` holds `count` records in the sandbox.
async fn wait_for(sandbox: &Sandbox, resource: &str, count: usize) {
    let mut waited = Duration::ZERO;
    while sandbox.records(resource).len() < count {
        assert!(
            waited < Duration::from_secs(60),
            "{resource} never reached {count} records"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
        waited += Duration::from_millis(25);
    }
}

/// Pushes `path` and kills the process (SIGKILL) once the sandbox holds `count` records of
/// `resource` and the answer to the create that made the last one is held back.
async fn push_killed_after(s: &Setup, entity: &str, path: &str, resource: &str, count: usize) {
    let child = command(&s.data, &["push", "cw", entity, "--file", path])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = cw::Reaper(child);
    wait_for(&s.sandbox, resource, count).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    child.0.kill().unwrap();
    child.0.wait().unwrap();
}

/// Every entity's samples, in dependency order, with the POST (counted from the entity's push)
/// whose answer is lost, and the sandbox resource its record lands in.
const EVERY_ENTITY: &[(&str, &str, u64, &str)] = &[
    (
        "account",
        r#"{"id": "ACME", "code": "1001", "name": "Acme", "account-type": "Customer", "currency": "USD", "billing-address": {"line1": "1 Main St", "city": "Austin"}}"#,
        1,
        "company/companies",
    ),
    (
        "contact",
        r#"{"id": "K-1", "account": "ACME", "first-name": "Alice", "last-name": "Smith", "email": "alice@acme.example"}"#,
        1,
        "company/contacts",
    ),
    (
        "product",
        r#"{"id": "P-1", "code": "SKU-1", "name": "Router", "product-type": "Hardware", "price": "349.00", "cost": "210.00"}"#,
        1,
        "procurement/catalog",
    ),
    (
        "invoice",
        r#"{"id": "INV-1", "number": "INV-1", "account": "ACME", "stage": "Draft", "date": "2026-11-01", "currency": "USD", "lines": [{"line-id": "1", "product": "P-1", "quantity": "2", "unit-price": "349.00"}]}"#,
        1,
        "finance/invoices",
    ),
    (
        "order",
        r#"{"id": "SO-1", "number": "SO-1", "account": "ACME", "contact": "K-1", "stage": "Open", "order-date": "2026-11-03", "currency": "USD", "lines": [{"line-id": "1", "product": "P-1", "quantity": "5", "unit-price": "330.00"}]}"#,
        1,
        "sales/orders",
    ),
    (
        "payment",
        r#"{"id": "PAY-1", "invoice": "INV-1", "account": "ACME", "amount": "500.00", "payment-date": "2026-11-10", "method": "cc"}"#,
        1,
        "finance/invoices/payments",
    ),
    (
        "subscription",
        r#"{"id": "SUB-1", "account": "ACME", "product": "P-1", "name": "Backup", "billing-cycle": "Monthly", "quantity": "25", "unit-price": "4.50", "start-date": "2026-11-01"}"#,
        // The first POST makes the customer's agreement; the second is the addition.
        2,
        "finance/agreements/additions",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entity_whose_create_answer_is_lost_is_reconciled_not_repeated() {
    let s = setup().await;
    let data = s.data.clone();
    blocking(move || {
        for (lookup, rows) in [
            ("invoice-stage", "Draft=1"),
            ("product-type", "Hardware=1"),
            ("order-stage", "Open=1"),
            ("subscription-units", "Monthly=1"),
        ] {
            ok(&data, &["lookups", "set", "cw", lookup, rows]);
        }
        let options: Vec<String> = EVERY_ENTITY
            .iter()
            .map(|(entity, ..)| format!("{entity}:push:create,update"))
            .collect();
        let mut args = vec!["sync-options", "set", "cw"];
        args.extend(options.iter().map(String::as_str));
        ok(&data, &args);
    })
    .await;
    for (entity, record, lost_post, resource) in EVERY_ENTITY {
        let path = s.file(
            &format!("{entity}.ndjson"),
            &[serde_json::from_str(record).unwrap()],
        );
        s.sandbox
            .set_faults(Faults::default().with_stall_post(*lost_post));
        push_killed_after(&s, entity, &path, resource, 1).await;
        s.sandbox.set_faults(Faults::default());
        let (data, p, e) = (s.data.clone(), path.clone(), entity.to_string());
        let again = blocking(move || ok(&data, &["push", "cw", &e, "--file", &p, "--json"])).await;
        let again: Value = serde_json::from_str(&again).unwrap();
        assert_eq!(
            again["items"][0]["outcome"], "reconciled",
            "{entity}: the lost create is found, not repeated: {again}"
        );
        assert_eq!(
            s.sandbox.records(resource).len(),
            1,
            "{entity}: exactly one in ConnectWise"
        );
        assert_mapped_once(&s, entity, resource, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_without_an_account_survive_five_kills_exactly_once() {
    let s = setup().await;
    let contacts = s.file(
        "contacts.ndjson",
        &(1..=1000).map(|i| contact(i, None)).collect::<Vec<_>>(),
    );
    // Kill points spread over the run, the same every time the test runs.
    for (kill, at) in [40usize, 180, 390, 560, 830].into_iter().enumerate() {
        push_killed_after(&s, "contact", &contacts, "company/contacts", at).await;
        eprintln!(
            "kill {kill}: {} contacts in ConnectWise",
            s.sandbox.records("company/contacts").len()
        );
    }
    let (data, path) = (s.data.clone(), contacts.clone());
    let last =
        blocking(move || ok(&data, &["push", "cw", "contact", "--file", &path, "--json"])).await;
    let last: Value = serde_json::from_str(&last).unwrap();
    assert_eq!(last["failed"], 0, "{}", last["failed"]);
    assert_mapped_once(&s, "contact", "company/contacts", 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_contacts_of_one_name_stay_two_when_the_second_answer_is_lost() {
    let s = setup().await;
    let accounts = s.file("accounts.ndjson", &[account(1)]);
    let first = s.file(
        "first.ndjson",
        &[json!({ "id": "K-A", "account": "A0001", "first-name": "Sam", "last-name": "Lee", "email": "sam.work@example.com" })],
    );
    let second = s.file(
        "second.ndjson",
        &[json!({ "id": "K-B", "account": "A0001", "first-name": "Sam", "last-name": "Lee", "email": "sam.home@example.com" })],
    );
    let data = s.data.clone();
    let (a, f) = (accounts.clone(), first.clone());
    blocking(move || {
        ok(&data, &["push", "cw", "account", "--file", &a]);
        ok(&data, &["push", "cw", "contact", "--file", &f]);
    })
    .await;
    s.sandbox.set_faults(Faults::default().with_stall_post(1));
    push_killed_after(&s, "contact", &second, "company/contacts", 2).await;
    s.sandbox.set_faults(Faults::default());
    let (data, p) = (s.data.clone(), second.clone());
    let again =
        blocking(move || ok(&data, &["push", "cw", "contact", "--file", &p, "--json"])).await;
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["items"][0]["outcome"], "reconciled", "{again}");
    assert_mapped_once(&s, "contact", "company/contacts", 2);
    let contacts = s.sandbox.records("company/contacts");
    let mut emails: Vec<String> = contacts
        .iter()
        .flat_map(|c| {
            c["communicationItems"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|i| i["value"].as_str().map(str::to_string))
        .filter(|v| v.contains('@'))
        .collect();
    emails.sort();
    assert_eq!(
        emails,
        ["sam.home@example.com", "sam.work@example.com"],
        "each keeps its own e-mail: {contacts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_whose_root_is_missing_waits_and_settles_instead_of_failing_as_a_cycle() {
    let s = setup().await;
    // C's parent P is in the same file; P's parent G is not pushed yet.
    let mut parent = account(2);
    parent["parent-account"] = json!("A0001");
    let mut child = account(3);
    child["parent-account"] = json!("A0002");
    let chain = s.file("chain.ndjson", &[parent, child]);
    let root = s.file("root.ndjson", &[account(1)]);
    let data = s.data.clone();
    let (queued, settled) = blocking(move || {
        let queued = run(
            &data,
            &["push", "cw", "account", "--file", &chain, "--json"],
        );
        assert_eq!(queued.status.code(), Some(2), "{}", text(&queued));
        let queued: Value = serde_json::from_slice(&queued.stdout).unwrap();
        let settled = ok(&data, &["push", "cw", "account", "--file", &root, "--json"]);
        (queued, serde_json::from_str::<Value>(&settled).unwrap())
    })
    .await;
    assert_eq!(
        queued["queued"], 2,
        "both wait, none fails as a cycle: {queued}"
    );
    assert_eq!(queued["failed"], 0, "{queued}");
    let sent: u64 = settled["settled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run[1]["created"].as_u64().unwrap())
        .sum();
    assert_eq!(sent, 2, "the root's push sends P, then C: {settled}");
    assert_mapped_once(&s, "account", "company/companies", 3);
}
