//! What ConnectWise users change is theirs, through the real `bss-host` binary, the bundled
//! ConnectWise component, the real SQLite file and the sandbox over loopback: an update writes only
//! what the BSS changed since its last push (kept in the id map), a field both sides changed
//! follows `host.conflicts` with the overwritten value in the report, and a pull after a push
//! returns changes made in ConnectWise but not the push's own echo, even where ConnectWise
//! normalised a value (a state name stored as its code). Settings that an enabled sync option needs
//! (the payment method ids once payments are pushed) are said by the check.

mod common;
mod cw;

use common::cli::{run, succeeds};
use cw::Setup;
use serde_json::{Value, json};

impl Setup {
    /// Pushes `records` as accounts and returns the run's JSON report.
    fn push(&self, records: &[Value]) -> Value {
        let path = self.file("accounts.ndjson", records);
        let out = succeeds(
            &self.data,
            &["push", "cw", "account", "--file", &path, "--json"],
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Pulls accounts: the records delivered, and what the command said.
    fn pull(&self, extra: &[&str]) -> (Vec<Value>, String) {
        let mut args = vec!["pull", "cw", "account"];
        args.extend(extra);
        let out = succeeds(&self.data, &args);
        let records = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (records, String::from_utf8_lossy(&out.stderr).to_string())
    }

    fn company(&self, remote_id: &str) -> Value {
        self.sandbox
            .record("company/companies", remote_id.parse().unwrap())
            .unwrap()
    }
}

async fn setup() -> Setup {
    cw::setup(
        common::cli::HOST,
        &["account:push:create,update", "account:pull:create,update"],
    )
    .await
}

fn acme(name: &str, phone: Option<&str>) -> Value {
    json!({
        "id": "A-1", "code": "C-1", "name": name, "account-type": "Customer", "currency": "USD",
        "phone": phone,
        "billing-address": { "line1": "1 Main Street", "city": "Austin", "state": "Texas", "country": "United States" }
    })
}

fn item<'r>(report: &'r Value, id: &str) -> &'r Value {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("no item {id} in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_writes_only_what_the_bss_changed_and_conflicts_follow_the_policy() {
    let s = setup().await;
    tokio::task::spawn_blocking(move || {
        let created = s.push(&[acme("Acme", Some("555-0100"))]);
        let remote = item(&created, "A-1")["remote-id"]
            .as_str()
            .unwrap()
            .to_string();
        let id: i64 = remote.parse().unwrap();

        // Staff fill the website and rename the company; the BSS renames it too and clears the
        // phone it had set.
        s.sandbox.patch(
            "company/companies",
            id,
            json!({"website": "acme.example", "name": "Acme (staff)"}),
        );
        let report = s.push(&[acme("Acme Ltd", None)]);
        assert_eq!(report["updated"], 1, "{report}");
        let message = item(&report, "A-1")["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{report}"));
        assert!(
            message.contains(r#"name "Acme (staff)" (last pushed "Acme")"#),
            "{message}"
        );
        let company = s.company(&remote);
        assert_eq!(company["name"], "Acme Ltd", "the BSS wins by default");
        assert_eq!(company["website"], "acme.example", "never set by the BSS");
        assert!(
            company
                .get("phoneNumber")
                .is_none_or(|p| p.is_null() || p == ""),
            "cleared by the BSS: {company}"
        );

        // Report: a record both sides changed is held, nothing written, the run is not failed.
        succeeds(&s.data, &["settings", "set", "cw", "host.conflicts=report"]);
        s.sandbox
            .patch("company/companies", id, json!({"name": "Acme (staff 2)"}));
        let report = s.push(&[acme("Acme Ltd 2", Some("555-0199"))]);
        assert_eq!(report["held"], 1, "{report}");
        let held = item(&report, "A-1");
        assert_eq!(held["outcome"], "held");
        let message = held["message"].as_str().unwrap();
        assert!(message.contains(r#""Acme (staff 2)""#), "{message}");
        let company = s.company(&remote);
        assert_eq!(company["name"], "Acme (staff 2)");
        assert!(
            company
                .get("phoneNumber")
                .is_none_or(|p| p.is_null() || p == ""),
            "nothing of a held record is written: {company}"
        );
        let runs: Value =
            serde_json::from_slice(&succeeds(&s.data, &["runs", "list", "cw", "--json"]).stdout)
                .unwrap();
        assert!(
            runs.as_array().unwrap().iter().any(|r| r["held"] == 1),
            "{runs}"
        );

        // Held until someone decides: the BSS adopts the staff's name and the rest goes through.
        let report = s.push(&[acme("Acme (staff 2)", Some("555-0199"))]);
        assert_eq!(report["updated"], 1, "{report}");
        assert_eq!(s.company(&remote)["phoneNumber"], "555-0199");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_after_a_push_returns_changes_but_no_echoes() {
    let s = setup().await;
    tokio::task::spawn_blocking(move || {
        // Texas is stored as TX and United States as a country id: the echo is still recognised.
        let mut records = vec![acme("Acme", None)];
        records.push(json!({
            "id": "A-2", "code": "C-2", "name": "Globex", "account-type": "Customer",
            "currency": "USD", "billing-address": { "state": "California", "country": "United States" }
        }));
        let report = s.push(&records);
        assert_eq!(report["created"], 2, "{report}");
        let (pulled, said) = s.pull(&[]);
        assert!(pulled.is_empty(), "only echoes: {pulled:?}");
        assert!(said.contains("2 echoes"), "{said}");

        // Asked for, the echoes come back, in ConnectWise's form.
        let (all, _) = s.pull(&["--since", "2000-01-01T00:00:00Z", "--include-echoes"]);
        assert_eq!(all.len(), 2, "{all:?}");
        let globex = all.iter().find(|r| r["id"] == "A-2").unwrap();
        assert_eq!(globex["billing-address"]["state"], "CA");

        // A change made in ConnectWise after the push is a change.
        let remote = s
            .sandbox
            .records("company/companies")
            .into_iter()
            .find(|c| c["identifier"] == "A-2")
            .unwrap();
        s.sandbox.advance_clock(60);
        s.sandbox.patch(
            "company/companies",
            remote["id"].as_i64().unwrap(),
            json!({"phoneNumber": "555-0142"}),
        );
        let (pulled, _) = s.pull(&[]);
        assert_eq!(pulled.len(), 1, "{pulled:?}");
        assert_eq!(pulled[0]["id"], "A-2");
        assert_eq!(pulled[0]["phone"], "555-0142");

        // Pushed again with the phone, the company comes back as an echo once more.
        let mut again = records[1].clone();
        again["phone"] = json!("555-0142");
        s.sandbox.advance_clock(60);
        s.push(&[again]);
        let (pulled, _) = s.pull(&[]);
        assert!(pulled.is_empty(), "{pulled:?}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_method_ids_are_required_once_payments_are_pushed() {
    let s = setup().await;
    tokio::task::spawn_blocking(move || {
        // Optional while payments are not pushed.
        succeeds(
            &s.data,
            &[
                "settings",
                "set",
                "cw",
                "credit-card-method-id=",
                "bank-deposit-method-id=",
            ],
        );
        succeeds(&s.data, &["check", "cw"]);
        succeeds(
            &s.data,
            &["sync-options", "set", "cw", "payment:push:create,update"],
        );
        let out = run(&s.data, &["check", "cw"]);
        assert!(!out.status.success());
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for key in ["credit-card-method-id", "bank-deposit-method-id"] {
            assert!(said.contains(key), "{said}");
        }
        assert!(said.contains("payment:push is enabled"), "{said}");
        // Set, the check runs again and passes.
        succeeds(
            &s.data,
            &[
                "settings",
                "set",
                "cw",
                "credit-card-method-id=3",
                "bank-deposit-method-id=5",
            ],
        );
        succeeds(&s.data, &["check", "cw"]);
    })
    .await
    .unwrap();
}
