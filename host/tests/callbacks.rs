//! ConnectWise callbacks and deletions through the real `bss-host` binary, the bundled
//! ConnectWise component (contract 1.3), the real SQLite file and the sandbox over loopback: an
//! instance subscribed with `callbacks subscribe` gets the sandbox's signed deliveries at `serve`'s
//! hook; a contact changed in ConnectWise reaches the change feed through the callback alone; a
//! repeated delivery is handled once; a deleted company is reported as deleted once the remote
//! confirms it; forged deliveries are refused; disabling unsubscribes and enabling subscribes
//! again. With deliveries dropped, a schedule alone delivers the change, a reconciling pass finds
//! the deletion, and `remove` deletes or deactivates what the BSS deleted.

mod common;
mod cw;

use std::time::{Duration, Instant};

use common::cli::{blocking, fails, ok};
use common::records::{account, contact};
use cw::Setup;
use cw_sandbox::CallbackFaults;
use serde_json::{Value, json};

const OPTIONS: &[&str] = &[
    "account:push:create,update,delete",
    "account:pull:create,update,delete",
    "contact:push:create,update,delete",
    "contact:pull:create,update,delete",
];

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn feed(data: &std::path::Path) -> Vec<Value> {
    ok(data, &["feed", "show", "cw", "--after", "0"])
        .lines()
        .map(json_of)
        .collect()
}

/// Waits until `wanted` says yes of the feed, at most `limit`; the feed and how long it took.
async fn feed_until(
    data: &std::path::Path,
    limit: Duration,
    wanted: impl Fn(&[Value]) -> bool,
) -> (Vec<Value>, Duration) {
    let started = Instant::now();
    loop {
        let data = data.to_path_buf();
        let entries = blocking(move || feed(&data)).await;
        if wanted(&entries) {
            return (entries, started.elapsed());
        }
        assert!(
            started.elapsed() < limit,
            "the feed did not get there within {limit:?}: {entries:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two accounts and a contact of each, pushed; the sandbox's clock pinned, then a minute on.
async fn pushed(s: &Setup) {
    s.sandbox.set_clock(1_790_000_000);
    let accounts = s.file("accounts.ndjson", &[account(1), account(2)]);
    let contacts = s.file(
        "contacts.ndjson",
        &[contact(1, Some("A0001")), contact(2, Some("A0002"))],
    );
    let data = s.data.clone();
    blocking(move || {
        ok(&data, &["push", "cw", "account", "--file", &accounts]);
        ok(&data, &["push", "cw", "contact", "--file", &contacts]);
    })
    .await;
    s.sandbox.advance_clock(60);
}

fn remote_id(s: &Setup, resource: &str, field: &str, value: &str) -> i64 {
    s.sandbox
        .records(resource)
        .iter()
        .find(|r| r[field] == value)
        .unwrap_or_else(|| panic!("no {resource} with {field} {value}"))["id"]
        .as_i64()
        .unwrap()
}

/// A remote id as the feed and the events give it (a string), as ConnectWise's number.
fn rid(value: &Value) -> Option<i64> {
    value.as_str()?.parse().ok()
}

fn has(entries: &[Value], change: &str, remote_id: i64, check: impl Fn(&Value) -> bool) -> bool {
    entries.iter().any(|e| {
        e["change"] == change && rid(&e["remote-id"]) == Some(remote_id) && check(&e["record"])
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn callbacks_reach_the_feed_once_deletions_are_confirmed_and_forgeries_refused() {
    let s = cw::setup(common::cli::HOST, OPTIONS).await;
    pushed(&s).await;
    let data = s.data.clone();
    let served = cw::serve(common::cli::command(&data, &[]));
    let public = served.base.trim_end_matches("/api/v1").to_string();

    // Subscribing registers one callback per pulled entity in ConnectWise, at the hook's URL.
    let said = ok(
        &data,
        &["callbacks", "subscribe", "cw", "--public-url", &public],
    );
    assert!(
        said.contains("/hooks/cw/****"),
        "the token is never shown: {said}"
    );
    let registered = s.sandbox.callbacks();
    let mut types: Vec<&str> = registered
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(types, ["company", "contact"], "{registered:#?}");
    let hook_url = registered[0]["url"].as_str().unwrap().to_string();
    assert!(
        hook_url.starts_with(&format!("{public}/hooks/cw/")),
        "{hook_url}"
    );
    // Subscribing again changes nothing in ConnectWise (and keeps the token).
    ok(
        &data,
        &["callbacks", "subscribe", "cw", "--public-url", &public],
    );
    assert_eq!(s.sandbox.callbacks(), registered);

    // A contact changed by a ConnectWise user reaches the feed through the callback.
    let k1 = remote_id(&s, "company/contacts", "firstName", "First1");
    s.sandbox
        .patch("company/contacts", k1, json!({ "lastName": "Called-Back" }));
    let (entries, took) = feed_until(&data, Duration::from_secs(10), |e| {
        has(e, "changed", k1, |r| r["last-name"] == "Called-Back")
    })
    .await;
    eprintln!("a callback reached the feed in {took:?}");
    let entry = entries
        .iter()
        .find(|e| rid(&e["remote-id"]) == Some(k1))
        .unwrap();
    assert_eq!(entry["record"]["id"], "K0001", "BSS ids are mapped back");
    assert_eq!(entry["record"]["account"], "A0001", "references too");

    // A delivery repeated twice more is handled once.
    s.sandbox
        .set_callback_faults(CallbackFaults::none().with_repeat(2));
    let k2 = remote_id(&s, "company/contacts", "firstName", "First2");
    s.sandbox
        .patch("company/contacts", k2, json!({ "lastName": "Repeated" }));
    let (entries, _) = feed_until(&data, Duration::from_secs(10), |e| {
        has(e, "changed", k2, |r| r["last-name"] == "Repeated")
    })
    .await;
    assert!(
        s.sandbox
            .wait_deliveries(s.sandbox.deliveries().len().max(4), Duration::from_secs(10))
            .await
    );
    let repeated: Vec<_> = s
        .sandbox
        .deliveries()
        .into_iter()
        .filter(|d| d.id == k2)
        .collect();
    assert_eq!(repeated.len(), 3, "{repeated:#?}");
    assert!(
        repeated
            .iter()
            .all(|d| d.message_id == repeated[0].message_id)
    );
    assert!(
        repeated.iter().all(|d| d.status == Some(200)),
        "{repeated:#?}"
    );
    let shown = json_of(&ok(&data, &["callbacks", "show", "cw", "--json"]));
    let events: Vec<&Value> = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| rid(&e["remote-id"]) == Some(k2))
        .collect();
    assert_eq!(events.len(), 1, "one event for three deliveries: {shown:#}");
    let k2_entries = entries
        .iter()
        .filter(|e| rid(&e["remote-id"]) == Some(k2))
        .count();
    assert_eq!(k2_entries, 1, "{entries:#?}");
    s.sandbox.set_callback_faults(CallbackFaults::none());

    // A company deleted in ConnectWise is reported as deleted, with its BSS id.
    let a2 = remote_id(&s, "company/companies", "identifier", "A0002");
    assert!(s.sandbox.delete("company/companies", a2));
    let (entries, _) = feed_until(&data, Duration::from_secs(10), |e| {
        has(e, "deleted", a2, |r| {
            r["bss-id"] == "A0002" && r["deleted"] == true
        })
    })
    .await;
    assert_eq!(
        entries.iter().filter(|e| e["change"] == "deleted").count(),
        1,
        "{entries:#?}"
    );

    // Forged deliveries: a wrong token, a wrong signature, a key from another host.
    let client = cw::api_client();
    let body = json!({
        "MessageId": "forged-1", "Action": "updated", "Type": "contact", "ID": k1,
        "Entity": "", "Metadata": { "key_url": format!("{}/callbacks/keys/{}", s.sandbox.base_url(), s.sandbox.signing_key().id) },
    })
    .to_string();
    let post = |url: String, signature: String, body: String| {
        let client = client.clone();
        async move {
            client
                .post(url)
                .header("content-type", "application/json")
                .header("x-content-signature", signature)
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let wrong_token = format!("{public}/hooks/cw/not-the-token");
    let signed = cw_sandbox::callbacks::sign(&s.sandbox.signing_key().key, body.as_bytes());
    assert_eq!(
        post(wrong_token, signed.clone(), body.clone())
            .await
            .status(),
        404
    );
    let forged = cw_sandbox::callbacks::sign("someone else's key", body.as_bytes());
    let refused = post(hook_url.clone(), forged, body.clone()).await;
    assert_eq!(refused.status(), 401, "{}", refused.text().await.unwrap());
    let elsewhere = json!({
        "MessageId": "forged-2", "Action": "deleted", "Type": "contact", "ID": k1,
        "Metadata": { "key_url": "http://127.0.0.2:9/key" },
    })
    .to_string();
    let own_key = cw_sandbox::callbacks::sign("attacker", elsewhere.as_bytes());
    let refused = post(hook_url.clone(), own_key, elsewhere).await;
    assert_eq!(refused.status(), 403, "{}", refused.text().await.unwrap());
    let unsigned = post(hook_url.clone(), String::new(), body.clone()).await;
    assert_eq!(unsigned.status(), 401);
    // A genuine delivery assembled by hand is taken (and is a duplicate the second time).
    let first = post(hook_url.clone(), signed.clone(), body.clone()).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.json::<Value>().await.unwrap()["duplicate"], false);
    let again = post(hook_url.clone(), signed, body).await;
    assert_eq!(again.json::<Value>().await.unwrap()["duplicate"], true);

    // Health says nothing is wrong; the callbacks are counted.
    let health: Value = client
        .get(format!("{}/health", served.base))
        .bearer_auth(&served.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["callback-errors"], json!({}), "{health}");
    // Each stored event was applied by an `events` job of its instance and entity, which any
    // worker of a fleet could have run.
    let jobs: Value = client
        .get(format!("{}/jobs?instance=cw", served.base))
        .bearer_auth(&served.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events: Vec<&Value> = jobs
        .as_array()
        .unwrap()
        .iter()
        .filter(|job| job["kind"] == "events")
        .collect();
    assert!(!events.is_empty(), "{jobs}");
    // (The last event's job may still be running.)
    assert!(
        events
            .iter()
            .all(|job| job["state"] != "failed" && job["trigger"] == "callback"),
        "{jobs}"
    );
    let handled: i64 = events
        .iter()
        .filter(|job| job["state"] == "done")
        .map(|job| {
            serde_json::from_str::<Value>(job["outcome"].as_str().unwrap()).unwrap()["handled"]
                .as_i64()
                .unwrap()
        })
        .sum();
    assert!(handled >= 1, "{jobs}");
    let metrics = client
        .get(format!("{public}/metrics"))
        .bearer_auth(&served.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"bss_callbacks_total{instance="cw",outcome="accepted"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"bss_callbacks_total{instance="cw",outcome="bad-signature"}"#),
        "{metrics}"
    );

    // The runs say a callback started them.
    let runs = json_of(&ok(&data, &["runs", "list", "cw", "--json"]));
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .any(|r| r["trigger"] == "callback"),
        "{runs}"
    );

    // A new public URL: the registrations move to it, none is left at the old one.
    let moved = public.replace("127.0.0.1", "localhost");
    let said = ok(
        &data,
        &[
            "callbacks",
            "subscribe",
            "cw",
            "--public-url",
            &moved,
            "--entities",
            "contact",
        ],
    );
    assert!(said.contains("contact"), "{said}");
    let now_registered = s.sandbox.callbacks();
    assert_eq!(now_registered.len(), 1, "{now_registered:#?}");
    assert_eq!(now_registered[0]["type"], "contact");
    assert!(
        now_registered[0]["url"]
            .as_str()
            .unwrap()
            .starts_with(&moved),
        "{now_registered:#?}"
    );
    ok(
        &data,
        &["callbacks", "subscribe", "cw", "--public-url", &public],
    );
    assert_eq!(s.sandbox.callbacks().len(), 2);
    let refused = fails(
        &data,
        &[
            "callbacks",
            "subscribe",
            "cw",
            "--public-url",
            "ftp://bss.example",
        ],
    );
    assert!(refused.contains("public-url"), "{refused}");

    // Disabling unsubscribes in ConnectWise; enabling subscribes again; deleting removes them.
    ok(&data, &["instances", "disable", "cw"]);
    assert_eq!(s.sandbox.callbacks(), Vec::<Value>::new());
    ok(&data, &["instances", "enable", "cw"]);
    assert_eq!(s.sandbox.callbacks().len(), 2);
    ok(&data, &["instances", "delete", "cw", "--yes"]);
    assert_eq!(s.sandbox.callbacks(), Vec::<Value>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn without_callbacks_a_schedule_reconciling_and_remove_keep_both_sides_true() {
    let s = cw::setup(common::cli::HOST, OPTIONS).await;
    pushed(&s).await;
    let data = s.data.clone();
    s.sandbox
        .set_callback_faults(CallbackFaults::none().with_drop_all());
    let served = cw::serve(common::cli::command(&data, &[]));
    let public = served.base.trim_end_matches("/api/v1").to_string();
    ok(
        &data,
        &["callbacks", "subscribe", "cw", "--public-url", &public],
    );
    ok(
        &data,
        &["schedules", "set", "cw", "contact:pull", "every", "2s"],
    );

    // Deliveries dropped: the schedule alone brings the change, within a few intervals.
    let k1 = remote_id(&s, "company/contacts", "firstName", "First1");
    s.sandbox
        .patch("company/contacts", k1, json!({ "lastName": "Scheduled" }));
    feed_until(&data, Duration::from_secs(20), |e| {
        has(e, "changed", k1, |r| r["last-name"] == "Scheduled")
    })
    .await;
    assert!(s.sandbox.deliveries().iter().all(|d| d.dropped));

    // A company deleted while deliveries are dropped is found by a reconciling pass.
    let a2 = remote_id(&s, "company/companies", "identifier", "A0002");
    assert!(s.sandbox.delete("company/companies", a2));
    let report = json_of(&ok(&data, &["reconcile", "cw", "account", "--json"]));
    assert_eq!(report["deleted"], 1, "{report}");
    assert_eq!(report["linked"], 2, "{report}");
    let entries = feed(&data);
    assert!(
        has(&entries, "deleted", a2, |r| r["bss-id"] == "A0002"),
        "{entries:#?}"
    );
    // Again: nothing new in the feed.
    let report = json_of(&ok(&data, &["reconcile", "cw", "account", "--json"]));
    assert_eq!(report["fed"], 0, "{report}");
    // Reconciling needs the delete option.
    ok(
        &data,
        &["sync-options", "set", "cw", "account:pull:create,update"],
    );
    let refused = fails(&data, &["reconcile", "cw", "account"]);
    assert!(refused.contains("not enabled"), "{refused}");

    // The BSS deleted a contact and an account: a dry run says what would happen, then the
    // contact is deleted in ConnectWise and the company deactivated.
    let said = ok(
        &data,
        &["remove", "cw", "contact", "K0001", "--dry-run", "--json"],
    );
    assert_eq!(json_of(&said)["items"][0]["outcome"], "deleted", "{said}");
    assert!(
        s.sandbox
            .records("company/contacts")
            .iter()
            .any(|c| c["id"] == k1)
    );
    let said = json_of(&ok(&data, &["remove", "cw", "contact", "K0001", "--json"]));
    assert_eq!(said["items"][0]["outcome"], "deleted", "{said}");
    assert!(
        !s.sandbox
            .records("company/contacts")
            .iter()
            .any(|c| c["id"] == k1)
    );
    // Unlinked: removing again touches nothing.
    let said = json_of(&ok(&data, &["remove", "cw", "contact", "K0001", "--json"]));
    assert_eq!(said["items"][0]["outcome"], "skipped", "{said}");
    let a1 = remote_id(&s, "company/companies", "identifier", "A0001");
    let said = json_of(&ok(&data, &["remove", "cw", "account", "A0001", "--json"]));
    assert_eq!(said["items"][0]["outcome"], "deactivated", "{said}");
    assert_eq!(said["items"][0]["remote-id"], a1.to_string(), "{said}");
    // The BSS's own removals are not reported back as deletions.
    let report = json_of(&ok(&data, &["reconcile", "cw", "contact", "--json"]));
    assert_eq!(report["deleted"], 0, "{report}");
    ok(
        &data,
        &[
            "sync-options",
            "set",
            "cw",
            "account:pull:create,update,delete",
        ],
    );
    let report = json_of(&ok(&data, &["reconcile", "cw", "account", "--json"]));
    assert_eq!(
        report["fed"], 0,
        "the deactivated company is this instance's doing: {report}"
    );
    let entries = feed(&data);
    assert!(
        !has(&entries, "deleted", k1, |_| true) && !has(&entries, "deleted", a1, |_| true),
        "{entries:#?}"
    );
    // Money records are never removed; without the push delete option nothing is.
    let refused = fails(&data, &["remove", "cw", "invoice", "I0001"]);
    assert!(refused.contains("not enabled"), "{refused}");
    ok(
        &data,
        &["sync-options", "set", "cw", "contact:push:create,update"],
    );
    let refused = fails(&data, &["remove", "cw", "contact", "K0002"]);
    assert!(refused.contains("not enabled"), "{refused}");
    drop(served);
}
