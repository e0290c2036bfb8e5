//! The sandbox against a misbehaving connector: each misbehaviour is driven through the real
//! runtime with the real fixture component and real HTTP on loopback, asserts the exact outcome,
//! and is followed by a good call on the same runtime that must succeed.

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bss_host::capabilities::context::InstanceContext;
use bss_host::capabilities::options::InstanceOptions;
use bss_host::contract::bindings::types::ConnectorError;
use bss_host::runtime::{CallFailure, Connector};
use common::{Reply, TestServer, context, fixture, private_ok, runtime};

const SECRET: &str = "s3cr3t-Pr1vate-KEY";

fn ping_server_reply(seen: &common::Seen) -> Reply {
    match seen.path.as_str() {
        "/ping" => Reply::text(200, "pong"),
        "/moved" => Reply::redirect("/ping"),
        _ => Reply::text(404, "no"),
    }
}

/// The fixture in `mode` against `server`, with everything else a good instance has.
fn settings<'a>(server: &'a str, mode: &'a str, param: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("base-url", server),
        ("user", "alice"),
        ("api-key", SECRET),
        ("mode", mode),
        ("param", param),
    ]
}

/// A good call on the same connector succeeds, talking to a fresh server.
async fn good_call_succeeds(connector: &Connector) {
    let server = TestServer::start(ping_server_reply).await;
    let url = server.url();
    let ctx = context(connector, &settings(&url, "good", ""), private_ok());
    let summary = connector
        .activate(&ctx)
        .await
        .expect("the good call ran")
        .expect("the good call succeeded");
    assert!(summary.starts_with("status 200 body pong"), "{summary}");
}

async fn run(connector: &Connector, ctx: &Arc<InstanceContext>) -> Result<String, String> {
    match connector
        .activate(ctx)
        .await
        .expect("the call itself completes")
    {
        Ok(summary) => Ok(summary),
        Err(ConnectorError::Internal(message)) => Err(message),
        Err(other) => panic!("unexpected connector error {other:?}"),
    }
}

#[tokio::test]
async fn good_mode_uses_every_import_and_gets_injected_credentials() {
    let runtime = runtime();
    let connector = fixture(&runtime).await;
    let server = TestServer::start(ping_server_reply).await;
    let url = server.url();
    let ctx = context(&connector, &settings(&url, "good", ""), private_ok());

    let summary = connector.activate(&ctx).await.unwrap().unwrap();
    // settings: base-url, mode, user (the secret is not among them; an empty param is unset)
    assert_eq!(
        summary,
        "status 200 body pong settings 3 lookup malus reverse crab-apple table 3"
    );

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("alice:{SECRET}"))
    );
    assert_eq!(
        seen[0].header_values("authorization"),
        vec![expected],
        "the forged header was dropped"
    );
    assert_eq!(seen[0].header_values("x-api-key"), vec![SECRET.to_string()]);
    assert_eq!(
        seen[0].header_values("accept"),
        vec!["text/plain".to_string()]
    );
}

#[tokio::test]
async fn endless_loop_ends_at_the_deadline() {
    let runtime = runtime();
    let connector = fixture(&runtime).await;
    let options = InstanceOptions {
        call_deadline: Duration::from_millis(700),
        ..private_ok()
    };
    let ctx = context(
        &connector,
        &settings("http://127.0.0.1:9", "loop", ""),
        options,
    );
    let error = connector.activate(&ctx).await.unwrap_err();
    assert_eq!(
        error.failure,
        CallFailure::DeadlineExceeded(Duration::from_millis(700))
    );
    assert_eq!(
        (error.connector.as_str(), error.instance.as_str()),
        ("fixture", "test-instance")
    );
    assert!(
        error.to_string().starts_with(
            "connector fixture 0.1.0 (instance test-instance) exceeded its call deadline"
        ),
        "{error}"
    );
    good_call_succeeds(&connector).await;
}

#[tokio::test]
async fn call_blocked_on_a_silent_server_ends_at_the_deadline() {
    let runtime = runtime();
    let connector = fixture(&runtime).await;
    let silent = TestServer::start(|_| Reply::Silent).await;
    let url = silent.url();
    let options = InstanceOptions {
        call_deadline: Duration::from_millis(800),
        ..private_ok()
    };
    let target = format!("{url}/never");
    let ctx = context(&connector, &settings(&url, "fetch", &target), options);
    let error = connector.activate(&ctx).await.unwrap_err();
    assert_eq!(
        error.failure,
        CallFailure::DeadlineExceeded(Duration::from_millis(800))
    );
    assert_eq!(
        silent.accepted().await,
        1,
        "the request did reach the silent server"
    );
    good_call_succeeds(&connector).await;
}

#[tokio::test]
async fn endless_allocation_hits_the_memory_cap() {
    let runtime = runtime();
    let connector = fixture(&runtime).await;
    let options = InstanceOptions {
        memory_limit: 32 << 20,
        ..private_ok()
    };
    let ctx = context(
        &connector,
        &settings("http://127.0.0.1:9", "alloc", ""),
        options,
    );
    let error = connector.activate(&ctx).await.unwrap_err();
    match error.failure {
        CallFailure::MemoryCap { limit, requested } => {
            assert_eq!(limit, 32 << 20);
            assert!(requested > limit, "refused a grow to {requested}");
        }
        other => panic!("expected the memory cap, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .contains("hit its memory cap of 33554432 bytes"),
        "{error}"
    );
    good_call_succeeds(&connector).await;
}

#[tokio::test]
async fn panic_is_a_trap_with_the_panic_message() {
    let runtime = runtime();
    let connector = fixture(&runtime).await;
    let ctx = context(
        &connector,
        &settings("http://127.0.0.1:9", "panic", ""),
        private_ok(),
    );
    let error = connector.activate(&ctx).await.unwrap_err();
    match &error.failure {
        CallFailure::Trap { trap, guest_said } => {
            assert!(trap.contains("unreachable"), "{trap}");
            assert!(
                guest_said.contains("fixture panicked on purpose"),
                "{guest_said}"
            );
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    good_call_succeeds(&connector).await;
}

#[tokio::test]
async fn hosts_outside_the_allow_list_are_refused_before_connecting() {
    let runtime = runtime();
    let connector = fixture(&runtime).await;
    let own = TestServer::start(ping_server_reply).await;
    let other = TestServer::start(ping_server_reply).await;
    let own_url = own.url();
    let port = other.port();
    let targets = [
        format!("http://127.0.0.1:{port}/ping"),
        format!("http://localhost:{port}/ping"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://2130706433/".to_string(),
        "http://[::1]/".to_string(),
        "https://example.com/".to_string(),
        format!("https://127.0.0.1:{}/ping", own.port()),
    ];
    for target in &targets {
        let ctx = context(
            &connector,
            &settings(&own_url, "fetch", target),
            private_ok(),
        );
        let message = run(&connector, &ctx).await.unwrap_err();
        assert!(
            message.starts_with("host-not-allowed: "),
            "{target}: {message}"
        );
        assert!(
            message.contains(&format!("allowed hosts (http://127.0.0.1:{})", own.port())),
            "{message}"
        );
    }
    assert_eq!(
        other.accepted().await,
        0,
        "the second listener saw no connection"
    );
    assert_eq!(
        own.accepted().await,
        0,
        "the https attempt on the own port never connected"
    );
    good_call_succeeds(&connector).await;
}

#[tokio::test]
async fn private_addresses_are_refused_in_every_spelling_unless_allowed() {
    let runtime = runtime();
    let connector = fixture(&runtime).await;
    let server = TestServer::start(ping_server_reply).await;
    let port = server.port();
    let spellings = [
        format!("http://localhost:{port}"),
        format!("http://127.0.0.1:{port}"),
        format!("http://2130706433:{port}"),
        format!("http://0x7f000001:{port}"),
        format!("http://0177.0.0.1:{port}"),
        format!("http://127.1:{port}"),
        format!("http://[::ffff:127.0.0.1]:{port}"),
    ];
    for base in &spellings {
        let target = format!("{base}/ping");
        let ctx = context(
            &connector,
            &settings(base, "fetch", &target),
            InstanceOptions::default(),
        );
        let message = run(&connector, &ctx).await.unwrap_err();
        assert!(
            message.starts_with("private-address: "),
            "{base}: {message}"
        );
        assert!(message.contains("host.allow-private-network"), "{message}");
    }
    for base in [
        "http://169.254.169.254",
        "http://[::1]:9",
        "http://0.0.0.0:9",
        "http://10.0.0.1:9",
    ] {
        let target = format!("{base}/x");
        let ctx = context(
            &connector,
            &settings(base, "fetch", &target),
            InstanceOptions::default(),
        );
        let message = run(&connector, &ctx).await.unwrap_err();
        assert!(
            message.starts_with("private-address: "),
            "{base}: {message}"
        );
    }
    assert_eq!(
        server.accepted().await,
        0,
        "no spelling reached the listener"
    );

    // With the option on, the allowed host itself is reachable, in any of its spellings.
    let base = format!("http://2130706433:{port}");
    let ctx = context(
        &connector,
        &settings(&base, "fetch", &format!("http://127.0.0.1:{port}/ping")),
        private_ok(),
    );
    assert_eq!(
        run(&connector, &ctx).await.unwrap(),
        "status 200 body-bytes 4"
    );
    good_call_succeeds(&connector).await;
}

#[tokio::test]
async fn ipv6_loopback_listener_is_refused_too() {
    let runtime = runtime();
    let connector = fixture(&runtime).await;
    let Ok(server) = TestServer::start_on("[::1]:0".parse().unwrap(), ping_server_reply).await
    else {
        eprintln!("IPv6 loopback is not available here; skipping");
        return;
    };
    let base = format!("http://[::1]:{}", server.port());
    let ctx = context(
        &connector,
        &settings(&base, "fetch", &format!("{base}/ping")),
        InstanceOptions::default(),
    );
    let message = run(&connector, &ctx).await.unwrap_err();
    assert!(
        message.starts_with("private-address: ::1 is a loopback address"),
        "{message}"
    );
    assert_eq!(server.accepted().await, 0);
    let ctx = context(
        &connector,
        &settings(&base, "fetch", &format!("{base}/ping")),
        private_ok(),
    );
    assert_eq!(
        run(&connector, &ctx).await.unwrap(),
        "status 200 body-bytes 4"
    );
}

#[tokio::test]
async fn redirects_to_another_host_are_not_followed_and_carry_no_credentials() {
    let runtime = runtime();
    let connector = fixture(&runtime).await;
    let elsewhere = TestServer::start(ping_server_reply).await;
    let target = format!("http://localhost:{}/ping", elsewhere.port());
    let redirecting = TestServer::start(move |seen| match seen.path.as_str() {
        "/away" => Reply::redirect(&target),
        other => ping_server_reply(&common::Seen {
            path: other.to_string(),
            ..seen.clone()
        }),
    })
    .await;
    let url = redirecting.url();

    let ctx = context(
        &connector,
        &settings(&url, "fetch", &format!("{url}/away")),
        private_ok(),
    );
    assert_eq!(
        run(&connector, &ctx).await.unwrap(),
        "status 302 body-bytes 0"
    );
    assert_eq!(
        elsewhere.accepted().await,
        0,
        "the redirect target was never contacted"
    );
    assert!(
        elsewhere
            .seen()
            .iter()
            .all(|s| s.header_values("authorization").is_empty())
    );

    // Within the same origin, redirects are followed, credentials included.
    let ctx = context(
        &connector,
        &settings(&url, "fetch", &format!("{url}/moved")),
        private_ok(),
    );
    assert_eq!(
        run(&connector, &ctx).await.unwrap(),
        "status 200 body-bytes 4"
    );
    let seen = redirecting.seen();
    assert_eq!(seen.last().unwrap().path, "/ping");
    assert_eq!(
        seen.last().unwrap().header_values("x-api-key"),
        vec![SECRET.to_string()]
    );
    good_call_succeeds(&connector).await;
}

#[tokio::test]
async fn endless_body_is_cut_at_the_response_cap() {
    let runtime = runtime();
    let connector = fixture(&runtime).await;
    let server = TestServer::start(|_| Reply::Stream { total: 1 << 30 }).await;
    let url = server.url();
    let cap: u64 = 4 << 20;
    let options = InstanceOptions {
        max_response_bytes: cap,
        ..private_ok()
    };
    let ctx = context(
        &connector,
        &settings(&url, "fetch", &format!("{url}/huge")),
        options,
    );
    let message = run(&connector, &ctx).await.unwrap_err();
    assert_eq!(message, format!("response-too-large: {cap}"));
    // Let the server notice the closed connection.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let written = server.written();
    assert!(
        written < cap + (1 << 20),
        "the server wrote {written} bytes for a cap of {cap}"
    );
    good_call_succeeds(&connector).await;
}

#[tokio::test]
async fn files_environment_arguments_sockets_and_secrets_are_withheld() {
    let runtime = runtime();
    let connector = fixture(&runtime).await;
    let ctx = context(
        &connector,
        &settings("http://127.0.0.1:9", "probe", "api-key"),
        private_ok(),
    );
    let report = run(&connector, &ctx).await.unwrap();
    assert_eq!(
        report,
        "file denied; dir denied; stdin 0 bytes; env 0; args 0; socket denied; secret none; \
         list base-url=http://127.0.0.1:9,mode=probe,param=api-key,user=alice"
    );
    assert!(!report.contains(SECRET));
    good_call_succeeds(&connector).await;
}
