//! Contract minors served side by side: a connector built against the frozen
//! `bss:integration@1.0.0` (the fixture built from `wit/1.0.0`) loads and runs next to one built
//! against a later contract, every import and export working through the converted bindings; a
//! released 1.3 connector (`tests/fixtures/released/`) runs next to the 1.4 bundled one.

mod common;

use std::path::Path;

use bss_host::contract::Contract;
use bss_host::contract::bindings::connector::Change;
use bss_host::contract::bindings::types::{ConnectorError, Entity};
use common::fixture_variants::{Variant, fixture_variant};
use common::{FIXTURE_WASM, Reply, TestServer, account, context, private_ok, runtime};

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[test]
fn the_legacy_fixture_really_is_built_against_1_0() {
    let legacy = std::fs::read(fixture_variant(Variant::Legacy)).unwrap();
    assert!(contains(&legacy, "bss:integration/connector@1.0.0"));
    assert!(!contains(&legacy, "bss:integration/connector@1.1.0"));
    let newest = std::fs::read(FIXTURE_WASM).unwrap();
    assert!(contains(&newest, "bss:integration/connector@1.1.0"));
}

#[tokio::test]
async fn a_1_0_connector_runs_beside_a_1_1_connector() {
    let runtime = runtime();
    let legacy = runtime
        .load_file(&fixture_variant(Variant::Legacy))
        .await
        .unwrap();
    let newest = runtime.load_file(Path::new(FIXTURE_WASM)).await.unwrap();
    assert_eq!(
        (legacy.contract(), newest.contract()),
        (Contract::V1_0, Contract::V1_1)
    );
    assert_eq!(legacy.manifest().name, "legacy-fixture");
    assert_eq!(
        legacy.manifest().documentation_url,
        None,
        "1.0 has no such field"
    );
    assert_eq!(
        newest.manifest().documentation_url.as_deref(),
        Some("https://docs.example.com/fixture")
    );
    assert_eq!(
        legacy.manifest().server_variables,
        newest.manifest().server_variables,
        "the converted manifest keeps every field 1.0 has"
    );
    assert_eq!(legacy.manifest().lookups, newest.manifest().lookups);
    assert_eq!(legacy.manifest().auth, newest.manifest().auth);

    // Every 1.0 import (http with credentials, settings, lookups, log, stdout/stderr) is served by
    // the 1.1 definitions: both builds report the same.
    let server = TestServer::start(|_| Reply::text(200, "pong")).await;
    let url = server.url();
    let mut answers = Vec::new();
    for connector in [&legacy, &newest] {
        let ctx = context(connector, &[("base-url", &url)], private_ok());
        answers.push(connector.activate(&ctx).await.unwrap().unwrap());
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(
        answers[0],
        "status 200 body pong settings 3 lookup malus reverse crab-apple table 3"
    );
    let credentials = server.seen()[0].header_values("x-api-key");
    assert_eq!(credentials, vec!["default-api-key".to_string()]);

    // Exports with 1.0 types come back as the newest types.
    let ctx = context(&legacy, &[("base-url", &url)], private_ok());
    let choices = legacy
        .lookup_choices(&ctx, "genera")
        .await
        .unwrap()
        .unwrap();
    let values: Vec<&str> = choices.iter().map(|c| c.value.as_str()).collect();
    assert_eq!(values, ["malus", "pyrus"]);
    let mut records = vec![account("A1"), account("A2")];
    records[1].remote_id = Some("fx-A2".into());
    let pushed = legacy
        .push(
            &ctx,
            Entity::Account,
            &common::items(&records),
            common::options(false),
        )
        .await
        .unwrap()
        .unwrap();
    let outcomes: Vec<(Change, String)> = pushed
        .into_iter()
        .map(|p| {
            let p = p.unwrap();
            (p.change, p.remote_id)
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (Change::Created, "fx-A1".to_string()),
            (Change::Updated, "fx-A2".to_string())
        ]
    );
    let page = legacy
        .pull(&ctx, Entity::Account, None, None)
        .await
        .unwrap()
        .unwrap();
    assert!(page.records.is_empty() && page.next_page_token.is_none());
}

#[tokio::test]
async fn log_enabled_is_a_1_1_import_that_follows_the_host_log_level() {
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::sink)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = runtime();
    let newest = runtime.load_file(Path::new(FIXTURE_WASM)).await.unwrap();
    let legacy = runtime
        .load_file(&fixture_variant(Variant::Legacy))
        .await
        .unwrap();
    let settings = [("base-url", "https://example.com"), ("mode", "log-levels")];

    let ctx = context(&newest, &settings, private_ok());
    assert_eq!(
        newest.activate(&ctx).await.unwrap().unwrap(),
        "enabled info warn error"
    );
    // The 1.0 build has no such mode: it cannot import what 1.0 does not have.
    let ctx = context(&legacy, &settings, private_ok());
    let refused = legacy.activate(&ctx).await.unwrap().unwrap_err();
    assert!(
        matches!(&refused, ConnectorError::InvalidSettings(errors) if errors[0].message.contains("unknown mode")),
        "{refused:?}"
    );
}

const RELEASED_1_3: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/released/template-connector-1.3.0.wasm"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_1_3_connector_runs_beside_a_1_4_connector() {
    use bss_host::capabilities::context::InstanceContext;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    let bytes = std::fs::read(RELEASED_1_3).unwrap();
    assert!(contains(&bytes, "bss:integration/connector@1.3.0"));
    assert_eq!(
        bss_host::runtime::cache::content_hash(&bytes),
        "5016ae4e3a166d5135088ccc0758d89abc787663886149df04ea2f07bc067bff",
        "a released connector is kept byte for byte"
    );
    let runtime = runtime();
    let released = runtime.load_file(Path::new(RELEASED_1_3)).await.unwrap();
    let bundled = runtime
        .load_file(Path::new(env!("BSS_CONNECTWISE_WASM")))
        .await
        .unwrap();
    assert_eq!(
        (released.contract(), bundled.contract()),
        (Contract::V1_3, Contract::V1_4)
    );
    assert_eq!(released.manifest().name, "template-connector");
    assert!(
        released.manifest().reach.is_empty(),
        "1.3 declares no reach: any host, as it was"
    );

    // Its exports run through 1.4's types: activate and the lookup choices, against the sandbox.
    let sandbox = cw_sandbox::Sandbox::start(cw_sandbox::SandboxConfig::default())
        .await
        .unwrap();
    let values: BTreeMap<String, String> = [
        ("url", sandbox.base_url()),
        ("company-id", sandbox.company_id().to_string()),
        ("public-key", sandbox.public_key().to_string()),
        ("private-key", sandbox.private_key().to_string()),
        ("client-id", "0c8f3c52-5b7e-4c1a".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let ctx = Arc::new(
        InstanceContext::new(
            "released",
            released.manifest(),
            &values,
            BTreeMap::new(),
            private_ok(),
        )
        .unwrap(),
    );
    let summary = released.activate(&ctx).await.unwrap().unwrap();
    assert!(!summary.is_empty());
    let choices = released
        .lookup_choices(&ctx, "company-types")
        .await
        .unwrap()
        .unwrap();
    assert!(
        !choices.is_empty(),
        "the company types come from the sandbox"
    );
}
