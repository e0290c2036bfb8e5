//! One engine, two connectors: the ConnectWise component in the sandbox and its core compiled
//! natively, driven by the same sync engine with the same HTTP client, against the sandbox, on a
//! real SQLite file — and they leave the remote in the same state.

mod common;
mod cw;

use std::sync::Arc;

use bss_host::contract::manifest::{Direction, Entity, Operations};
use bss_host::store::sqlite::SqliteStore;
use bss_host::store::{InstanceRow, InstanceStore};
use bss_host::sync::connector::SyncConnector;
use bss_host::sync::native::NativeConnectWise;
use bss_host::sync::records::parse_file;
use bss_host::sync::{Engine, Pacing, PullFrom, PushReport};
use serde_json::Value;

fn accounts() -> String {
    (1..=20)
        .map(|i| {
            serde_json::json!({
                "id": format!("N{i:03}"), "code": format!("C{i}"), "name": format!("Native {i}"),
                "account-type": "Customer", "currency": "USD",
                "billing-address": { "line1": format!("{i} Elm St"), "state": "Texas", "country": "United States" }
            })
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Removes `_info` (stamps and links that name the sandbox's port) at every depth.
fn strip_info(value: &mut Value) {
    match value {
        Value::Object(object) => {
            object.remove("_info");
            object.values_mut().for_each(strip_info);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_info),
        _ => {}
    }
}

/// Pushes the accounts twice and pulls them with `connector`; returns the reports and the
/// sandbox's companies without their ids and stamps.
async fn run_with<C: SyncConnector>(
    cw: &cw::Cw,
    connector: &C,
) -> (PushReport, PushReport, (usize, usize), Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("bss.db")).unwrap();
    store
        .create_instance(&InstanceRow {
            name: "acme-cw".into(),
            connector: "connectwise".into(),
            version_req: None,
            installation: "Acme".into(),
            enabled: true,
            created_at: "2026-01-01T00:00:00Z".into(),
        })
        .unwrap();
    let both = Operations {
        create: true,
        update: true,
        delete: false,
    };
    store
        .set_sync_options(
            "acme-cw",
            &[
                (Entity::Account, Direction::Push, both),
                (Entity::Account, Direction::Pull, both),
            ],
        )
        .unwrap();
    let context = cw::context(cw);
    let engine = Engine {
        store: &store,
        connector,
        pacing: Pacing::for_context(&context),
        context: Arc::clone(&context),
        progress: None,
        lease: None,
        trigger: bss_host::store::RunTrigger::Command,
    };
    let (records, invalid) = parse_file(Entity::Account, &accounts());
    assert!(invalid.is_empty());
    let first = engine
        .push(
            Entity::Account,
            records.clone(),
            vec![],
            false,
            bss_host::store::RunKind::Push,
        )
        .await
        .unwrap();
    let second = engine
        .push(
            Entity::Account,
            records,
            vec![],
            false,
            bss_host::store::RunKind::Push,
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    let pulled = engine
        .pull(Entity::Account, PullFrom::default(), &mut out)
        .await
        .unwrap();
    let companies = cw
        .sandbox
        .records("company/companies")
        .into_iter()
        .map(|mut c| {
            c.as_object_mut().unwrap().remove("id");
            strip_info(&mut c);
            c
        })
        .collect();
    (first, second, (pulled.delivered, pulled.echoes), companies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_drives_the_component_and_the_native_core_alike() {
    let component_side = cw::start().await;
    let (c_first, c_second, c_pulled, c_companies) =
        run_with(&component_side, &component_side.connector).await;

    let native_side = cw::start().await;
    let native = NativeConnectWise::new(native_side.runtime.http_client());
    let (n_first, n_second, n_pulled, n_companies) = run_with(&native_side, &native).await;

    assert_eq!((c_first.created, n_first.created), (20, 20));
    assert_eq!((c_second.unchanged, n_second.unchanged), (20, 20));
    // Pulled right after the push, every company is the push's own echo.
    assert_eq!((c_pulled, n_pulled), ((0, 20), (0, 20)));
    assert_eq!(
        c_companies, n_companies,
        "both leave ConnectWise in the same state"
    );
    assert_eq!(c_companies[0]["state"], "TX");
}
