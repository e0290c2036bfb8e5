//! Each injected fault.

use std::time::{Duration, Instant};

use cw_sandbox::{Faults, Sandbox, SandboxConfig};

use crate::client::Client;
use crate::fixtures::{company_body, start};

async fn statuses(c: &Client, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(c.get("company/companies/types").await.status);
    }
    out
}

#[tokio::test]
async fn rate_limit_every_nth_request() {
    let (sb, c) = start().await;
    sb.set_faults(Faults::none().with_rate_limit_every(3, 7));
    c.get("company/companies").await.expect(200);
    c.get("company/companies").await.expect(200);
    let limited = c.get("company/companies").await.expect(429);
    assert_eq!(limited.header("retry-after"), Some("7"));
    assert_eq!(limited.json()["code"], "TooManyRequests");
    assert_eq!(statuses(&c, 3).await, [200, 200, 429]);
    // Counting restarts when faults are set again, and a 429'd POST stores nothing.
    sb.set_faults(Faults::none().with_rate_limit_every(1, 2));
    c.post("company/companies", &company_body("ACME"))
        .await
        .expect(429);
    assert!(sb.records("company/companies").is_empty());
    sb.set_faults(Faults::none());
    assert_eq!(statuses(&c, 3).await, [200, 200, 200]);
}

#[tokio::test]
async fn server_errors_every_nth_request() {
    let (sb, c) = start().await;
    sb.set_faults(
        Faults::none()
            .with_server_error_every(2)
            .with_server_error_status(503),
    );
    c.post("company/companies", &company_body("ONE"))
        .await
        .expect(201);
    let r = c
        .post("company/companies", &company_body("TWO"))
        .await
        .expect(503);
    assert_eq!(r.json()["code"], "ConnectWiseApi");
    assert!(r.json()["message"].is_string());
    assert_eq!(
        sb.records("company/companies").len(),
        1,
        "an injected error happens before processing"
    );
    sb.set_faults(Faults::none().with_server_error_every(1));
    c.get("company/companies").await.expect(500);
}

#[tokio::test]
async fn server_error_rate_is_seeded() {
    let run = || async {
        let sb = Sandbox::start(SandboxConfig {
            faults: Faults::none().with_server_error_rate(0.3, 99),
            ..SandboxConfig::default()
        })
        .await
        .unwrap();
        let c = Client::new(&sb);
        statuses(&c, 60).await
    };
    let a = run().await;
    let b = run().await;
    assert_eq!(a, b, "same seed, same failures");
    let failures = a.iter().filter(|s| **s == 500).count();
    assert!((8..=30).contains(&failures), "{failures} of 60 failed");
    assert!(a.iter().all(|s| *s == 200 || *s == 500));
}

#[tokio::test]
async fn latency_is_added() {
    let (sb, c) = start().await;
    sb.set_faults(Faults::none().with_latency(Duration::from_millis(300)));
    let t = Instant::now();
    c.get("company/companies").await.expect(200);
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    sb.set_faults(Faults::none());
    let t = Instant::now();
    c.get("company/companies").await.expect(200);
    assert!(t.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn malformed_bodies() {
    let (sb, c) = start().await;
    sb.set_faults(Faults::none().with_malformed_every(2));
    c.get("company/companies/statuses").await.expect(200).json();
    let bad = c.get("company/companies/statuses").await.expect(200);
    assert!(
        serde_json::from_slice::<serde_json::Value>(&bad.body).is_err(),
        "{}",
        bad.text()
    );
    assert!(bad.header("content-type").unwrap().contains("json"));
    c.get("company/companies/statuses").await.expect(200).json();
    // A malformed answer to a POST still stored the record.
    sb.set_faults(Faults::none().with_malformed_every(1));
    let r = c
        .post("company/companies", &company_body("ACME"))
        .await
        .expect(200);
    assert!(serde_json::from_slice::<serde_json::Value>(&r.body).is_err());
    assert_eq!(sb.records("company/companies").len(), 1);
}

#[tokio::test]
async fn stalled_post_is_stored_but_never_answered() {
    let (sb, c) = start().await;
    sb.set_faults(Faults::none().with_stall_post(2));
    c.post("company/companies", &company_body("FIRST"))
        .await
        .expect(201);
    let held = c
        .raw(
            "POST",
            "company/companies",
            Some((
                "application/json",
                company_body("SECOND").to_string().into_bytes(),
            )),
            Duration::from_millis(800),
        )
        .await;
    assert!(held.is_none(), "the second POST must not be answered");
    let stored: Vec<String> = sb
        .records("company/companies")
        .iter()
        .map(|r| r["identifier"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stored, ["FIRST", "SECOND"], "but it was stored");
    // Other requests, including later POSTs, go on.
    c.post("company/companies", &company_body("THIRD"))
        .await
        .expect(201);
    c.get("company/companies").await.expect(200);
    let seen = sb.requests();
    assert_eq!(seen[1].method, "POST");
    assert_eq!(seen[1].status, None);
    assert_eq!(seen[1].body.as_ref().unwrap()["identifier"], "SECOND");
    let t = Instant::now();
    drop(sb);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "dropping the sandbox does not wait for the held response"
    );
}

#[tokio::test]
async fn faults_spare_company_info_and_can_change_through_a_handle() {
    let (sb, c) = start().await;
    let handle = sb.fault_handle();
    handle.set(Faults::none().with_rate_limit_every(1, 1));
    c.get("company/companies").await.expect(429);
    c.get("/login/companyinfo/sandbox").await.expect(200);
    handle.update(|f| f.rate_limit_every = None);
    c.get("company/companies").await.expect(200);
    assert_eq!(sb.faults(), Faults::none());
    let configured = Sandbox::start(SandboxConfig {
        faults: Faults::none().with_server_error_every(1),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    Client::new(&configured)
        .get("company/companies")
        .await
        .expect(500);
}

#[tokio::test]
async fn a_dropped_sandbox_frees_its_port() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let addr = sb.addr();
    let c = Client::new(&sb);
    c.get("company/companies").await.expect(200);
    drop(sb);
    assert!(
        c.raw("GET", "company/companies", None, Duration::from_secs(2))
            .await
            .is_none()
    );
    let again = Sandbox::start_on(addr, SandboxConfig::default())
        .await
        .expect("port is free again");
    Client::new(&again)
        .get("company/companies")
        .await
        .expect(200);
}
