//! Bounds on what a connector hands back, driven through the real runtime with the fixture: a
//! million choices, too many or too big pulled records, a 20 MiB remote id, too many push
//! outcomes and a 64 MiB log line are each refused with a typed error naming the cap and its
//! option (and the next call works); within the caps, or with a cap raised, answers go through;
//! and a `manifest()` that never answers is refused at its own short deadline.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bss_host::capabilities::context::InstanceContext;
use bss_host::capabilities::options::InstanceOptions;
use bss_host::contract::bindings::types::{Entity, EntityData};
use bss_host::runtime::answer::{AnswerCap, Oversized};
use bss_host::runtime::{CallError, CallFailure, Connector, LoadError, MANIFEST_DEADLINE};
use common::fixture_variants::{Variant, fixture_variant};
use common::{Captured, account, context, fixture, runtime};

fn with_mode(connector: &Connector, mode: &str, param: &str) -> Arc<InstanceContext> {
    with_options(connector, mode, param, InstanceOptions::default())
}

fn with_options(
    connector: &Connector,
    mode: &str,
    param: &str,
    options: InstanceOptions,
) -> Arc<InstanceContext> {
    context(
        connector,
        &[
            ("base-url", "http://127.0.0.1:9"),
            ("mode", mode),
            ("param", param),
        ],
        options,
    )
}

/// The refusal in a failed call, after checking the error names connector and instance.
fn oversized(error: CallError) -> Oversized {
    assert_eq!(
        (error.connector.as_str(), error.instance.as_str()),
        ("fixture", "test-instance")
    );
    let text = error.to_string();
    match error.failure {
        CallFailure::AnswerTooLarge(refused) => {
            assert!(
                text.starts_with("connector fixture 0.1.0 (instance test-instance) handed back ")
                    && text.contains(refused.cap.option()),
                "{text}"
            );
            refused
        }
        other => panic!("expected a refused answer, got {other:?}"),
    }
}

/// A good call right after: the refusal left nothing behind.
async fn next_call_works(connector: &Connector) {
    let choices = connector
        .lookup_choices(&with_mode(connector, "good", ""), "genera")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(choices.len(), 2);
}

#[tokio::test]
async fn a_million_choices_are_refused_before_they_are_copied() {
    let runtime = runtime();
    let connector = fixture(&runtime).await;
    let ctx = with_mode(&connector, "million-choices", "");
    let started = Instant::now();
    let error = connector.lookup_choices(&ctx, "genera").await.unwrap_err();
    let refused = oversized(error.clone());
    assert_eq!(
        refused,
        Oversized {
            cap: AnswerCap::Items,
            at: String::new(),
            found: Some(1_000_000),
            limit: 10_000,
        }
    );
    assert!(
        error.to_string().contains(
            "handed back a list of 1000000 items at the answer, over the cap of 10000 (host.max-items-per-answer)"
        ),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    next_call_works(&connector).await;
}

#[tokio::test]
async fn pulled_pages_are_bounded_in_records_string_bytes_and_total_bytes() {
    let runtime = runtime();
    let connector = fixture(&runtime).await;
    let pull = |mode: &'static str, param: &'static str, options: InstanceOptions| {
        let connector = connector.clone();
        async move {
            let ctx = with_options(&connector, mode, param, options);
            connector.pull(&ctx, Entity::Account, None, None).await
        }
    };
    let defaults = InstanceOptions::default;

    // Within every cap: the page arrives whole.
    let page = pull("pull-records", "10:100", defaults())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.records.len(), 10);
    let EntityData::Account(first) = &page.records[0].data else {
        panic!("an account");
    };
    assert_eq!(first.name.len(), 100);

    // Too many records.
    let refused = oversized(
        pull("pull-records", "20000:0", defaults())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (refused.cap, refused.at.as_str(), refused.found),
        (AnswerCap::Items, "records", Some(20_000))
    );
    // Raising the option lets the same page through.
    let more = InstanceOptions {
        max_items_per_answer: 30_000,
        ..defaults()
    };
    let page = pull("pull-records", "20000:0", more)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.records.len(), 20_000);

    // One string over 64 KiB, with the path to it.
    let refused = oversized(
        pull("pull-records", "1:1048576", defaults())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        refused,
        Oversized {
            cap: AnswerCap::StringBytes,
            at: "records[0].data.account.name".to_string(),
            found: Some(1 << 20),
            limit: 64 << 10,
        }
    );

    // Every string small, but 1,000 names of 60 KiB make 60 MiB: over the 32 MiB answer cap.
    let refused = oversized(
        pull("pull-records", "1000:61440", defaults())
            .await
            .unwrap_err(),
    );
    assert_eq!(refused.cap, AnswerCap::AnswerBytes);
    assert_eq!(refused.limit, 32 << 20);
    assert!(refused.found.unwrap() > 32 << 20);
    assert!(refused.at.starts_with("records["), "{}", refused.at);

    // A 20 MiB remote id.
    let refused = oversized(pull("huge-remote-id", "", defaults()).await.unwrap_err());
    assert_eq!(
        (refused.cap, refused.at.as_str(), refused.found),
        (
            AnswerCap::StringBytes,
            "records[0].remote-id",
            Some(20 << 20)
        )
    );
    next_call_works(&connector).await;
}

#[tokio::test]
async fn push_outcomes_are_bounded_in_number_and_remote_id_bytes() {
    let runtime = runtime();
    let connector = fixture(&runtime).await;
    let records = [account("a-1")];
    let push = |mode: &'static str| {
        let connector = connector.clone();
        let records = records.clone();
        async move {
            let ctx = with_mode(&connector, mode, "");
            connector
                .push(
                    &ctx,
                    Entity::Account,
                    &common::items(&records),
                    common::options(false),
                )
                .await
        }
    };
    let refused = oversized(push("huge-remote-id").await.unwrap_err());
    assert_eq!(
        (refused.cap, refused.at.as_str(), refused.found),
        (AnswerCap::StringBytes, "[0].remote-id", Some(20 << 20))
    );
    let refused = oversized(push("many-outcomes").await.unwrap_err());
    assert_eq!(
        (refused.cap, refused.at.as_str(), refused.found),
        (AnswerCap::Items, "", Some(20_000))
    );
    let outcomes = push("good").await.unwrap().unwrap();
    assert_eq!(outcomes.len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_64_mib_log_line_is_refused_and_a_long_one_is_cut_without_being_copied() {
    let (captured, _guard) = Captured::start(tracing::Level::INFO);

    let runtime = runtime();
    let connector = fixture(&runtime).await;
    // 64 MiB is more than one import call may hand the host (host.max-answer-bytes, 32 MiB).
    let error = connector
        .activate(&with_mode(&connector, "huge-log-line", ""))
        .await
        .unwrap_err();
    let refused = oversized(error);
    assert_eq!(
        refused,
        Oversized {
            cap: AnswerCap::AnswerBytes,
            at: "the arguments of one import call".to_string(),
            found: None,
            limit: 32 << 20,
        }
    );

    // 1 MiB is within that: only the first 64 KiB (host.max-string-bytes) are copied, and the
    // log keeps its own 8 KiB of a line.
    let said = connector
        .activate(&with_mode(&connector, "huge-log-line", "1048576"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(said, "logged 1048576 bytes");
    let text = captured.text();
    assert!(text.contains("zzzz [cut]"), "the line is cut");
    assert!(
        text.len() < 64 << 10,
        "the log grew to {} bytes",
        text.len()
    );
    next_call_works(&connector).await;
}

#[tokio::test]
async fn a_manifest_that_never_answers_is_refused_at_its_own_deadline() {
    let runtime = runtime();
    let path = &fixture_variant(Variant::ManifestLoop);
    // Compile (and cache) first, so the second load times only the manifest call.
    let _ = runtime.load_file(path).await;
    let started = Instant::now();
    let error = match runtime.load_file(path).await {
        Err(error) => error,
        Ok(_) => panic!("a manifest() that loops was accepted"),
    };
    let took = started.elapsed();
    let LoadError::ManifestCall { source, .. } = &error else {
        panic!("expected the manifest call to fail, got {error}");
    };
    assert_eq!(
        source.failure,
        CallFailure::ManifestDeadline(MANIFEST_DEADLINE)
    );
    assert!(
        error
            .to_string()
            .contains("did not answer manifest() within 5s"),
        "{error}"
    );
    assert!(
        took >= MANIFEST_DEADLINE && took < MANIFEST_DEADLINE + Duration::from_secs(5),
        "took {took:?}"
    );
}
