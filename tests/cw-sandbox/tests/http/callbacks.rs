//! Callbacks: registering them over the API, and the signed deliveries a loopback receiver gets when records change
//! through the API or the test handle, with drops, repeats, key rotation and failed deliveries.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cw_sandbox::callbacks::{self, SIGNATURE_HEADER};
use cw_sandbox::{CallbackFaults, Sandbox};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::client::{Client, q};
use crate::fixtures::{self, id_of, path_of, start};

const WAIT: Duration = Duration::from_secs(10);

/// One POST the receiver got.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a delivery body is JSON")
    }
}

/// A tiny HTTP/1.1 receiver on loopback: records each request and answers `status`.
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(status: u16) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sink = sink.clone();
                tokio::spawn(async move {
                    // Recorded before answering: once the sandbox has the answer, the test sees the request.
                    if let Some((r, mut stream)) = read_request(stream).await {
                        sink.lock().unwrap().push(r);
                        let answer = format!(
                            "HTTP/1.1 {status} Whatever\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                        );
                        let _ = stream.write_all(answer.as_bytes()).await;
                    }
                });
            }
        });
        Receiver { addr, got, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(mut stream: TcpStream) -> Option<(Received, TcpStream)> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = raw[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&buf[..n]);
    }
    let mut parts = request_line.split_whitespace();
    assert_eq!(parts.next(), Some("POST"), "{request_line}");
    let received = Received {
        path: parts.next()?.to_string(),
        headers,
        body,
    };
    Some((received, stream))
}

fn registration(url: &str, kind: &str, level: &str, object_id: i64) -> Value {
    json!({"url": url, "objectId": object_id, "type": kind, "level": level, "description": format!("bss {kind}")})
}

async fn register(c: &Client, url: &str, kind: &str, level: &str, object_id: i64) -> i64 {
    id_of(
        &c.post(
            "system/callbacks",
            &registration(url, kind, level, object_id),
        )
        .await
        .expect(201),
    )
}

/// The `signing_key` at a delivery's `key_url`, fetched without credentials.
async fn fetch_key(sb: &Sandbox, key_url: &str) -> String {
    assert!(
        key_url.starts_with(&format!("{}/callbacks/keys/", sb.base_url())),
        "{key_url}"
    );
    let anonymous = Client {
        authorization: None,
        client_id: None,
        ..Client::new(sb)
    };
    let r = anonymous.get(&path_of(key_url)).await.expect(200);
    r.json()["signing_key"].as_str().unwrap().to_string()
}

/// Each delivery's body, after checking its headers and signature.
async fn verified(sb: &Sandbox, got: &[Received]) -> Vec<Value> {
    let mut out = Vec::new();
    for r in got {
        assert_eq!(r.header("content-type"), Some("application/json"));
        let body = r.json();
        let key = fetch_key(sb, body["Metadata"]["key_url"].as_str().unwrap()).await;
        let signature = r.header(SIGNATURE_HEADER).expect("signed");
        assert!(callbacks::verify(&key, &r.body, signature), "{body}");
        assert_eq!(signature, callbacks::sign(&key, &r.body));
        out.push(body);
    }
    out
}

fn by_action<'a>(bodies: &'a [Value], action: &str) -> &'a Value {
    bodies
        .iter()
        .find(|b| b["Action"] == action)
        .unwrap_or_else(|| panic!("no '{action}' delivery in {bodies:?}"))
}

#[tokio::test]
async fn callbacks_are_registered_listed_counted_and_deleted() {
    let (sb, c) = start().await;
    sb.set_clock(1_767_225_600);
    let created = c
        .post(
            "system/callbacks",
            &registration("http://bss.example.com/cw/hook", "company", "owner", 1),
        )
        .await
        .expect(201)
        .json();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["url"], "http://bss.example.com/cw/hook");
    assert_eq!(created["type"], "company");
    assert_eq!(created["level"], "owner");
    assert_eq!(created["objectId"], 1);
    assert_eq!(created["description"], "bss company");
    assert_eq!(created["memberId"], 4, "the API member (SandboxAPI)");
    assert_eq!(created["inactiveFlag"], false);
    assert_eq!(created["_info"]["lastUpdated"], "2026-01-01T00:00:00Z");
    assert_eq!(created["_info"]["updatedBy"], "SandboxAPI");
    let other = register(
        &c,
        "https://elsewhere.example.net/x",
        "contact",
        "recid",
        501,
    )
    .await;

    assert_eq!(
        c.get(&format!("system/callbacks/{id}"))
            .await
            .expect(200)
            .json(),
        created
    );
    assert_eq!(
        sb.callbacks(),
        vec![
            created.clone(),
            sb.record("system/callbacks", other).unwrap()
        ]
    );
    let mine = c
        .get(&q(
            "system/callbacks",
            &[("conditions", r#"url contains "bss.example.com""#)],
        ))
        .await
        .expect(200)
        .json();
    assert_eq!(mine, json!([created]));
    let count = c.get("system/callbacks/count").await.expect(200).json();
    assert_eq!(count, json!({"count": 2}));

    // PATCH can deactivate; the registering member stays.
    let patched = c
        .patch(
            &format!("system/callbacks/{id}"),
            &json!([{"op": "replace", "path": "inactiveFlag", "value": true}]),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(patched["inactiveFlag"], true);
    assert_eq!(patched["memberId"], 4);

    c.delete(&format!("system/callbacks/{id}"))
        .await
        .expect(204);
    c.get(&format!("system/callbacks/{id}")).await.expect(404);
    assert_eq!(sb.callbacks().len(), 1);
}

#[tokio::test]
async fn bad_registrations_get_connectwise_errors() {
    let (sb, c) = start().await;
    let r = c
        .post("system/callbacks", &json!({"description": "nothing else"}))
        .await
        .expect(400)
        .json();
    assert_eq!(r["code"], "InvalidObject");
    assert_eq!(r["message"], "callbackEntry object is invalid");
    let mut fields: Vec<&str> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|e| assert_eq!(e["code"], "MissingRequiredField"))
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["level", "objectId", "type", "url"]);

    for (body, field) in [
        (registration("/relative/hook", "company", "owner", 1), "url"),
        (
            registration("ftp://host/hook", "company", "owner", 1),
            "url",
        ),
        (
            registration("http://host/hook", "company", "everything", 1),
            "level",
        ),
        (
            registration("http://host/hook", "company", "recid", 0),
            "objectId",
        ),
    ] {
        let r = c.post("system/callbacks", &body).await.expect(400).json();
        assert_eq!(r["errors"][0]["code"], "InvalidField", "{r}");
        assert_eq!(r["errors"][0]["field"], field, "{r}");
        assert_eq!(r["errors"][0]["resource"], "callbackEntry");
    }
    let long = json!({"url": "http://host/h", "objectId": 1, "type": "company", "level": "owner",
                      "description": "x".repeat(101)});
    let r = c.post("system/callbacks", &long).await.expect(400).json();
    assert_eq!(r["errors"][0]["code"], "MaxLengthField");
    assert!(sb.callbacks().is_empty());
    // Other levels and types are accepted (they never fire here).
    register(&c, "HTTPS://host/h", "ticket", "Board", 12).await;
}

#[tokio::test]
async fn company_changes_through_the_api_are_delivered_signed() {
    let (sb, c) = start().await;
    let rx = Receiver::start(200).await;
    let cb = register(&c, &rx.url("/cw/hook?tenant=7"), "company", "owner", 1).await;
    // Creating the callback itself, or a contact, delivers nothing to a company callback.
    let id = fixtures::company(&c, "ACME").await;
    c.post(
        "company/contacts",
        &json!({"firstName": "Ada", "company": {"id": id}}),
    )
    .await
    .expect(201);
    c.patch(
        &format!("company/companies/{id}"),
        &json!([{"op": "replace", "path": "name", "value": "Acme Corporation"}]),
    )
    .await
    .expect(200);
    c.delete(&format!("company/companies/{id}"))
        .await
        .expect(204);
    assert!(sb.wait_deliveries(3, WAIT).await, "{:?}", sb.deliveries());

    let got = rx.received();
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.iter().all(|r| r.path == "/cw/hook?tenant=7"));
    let bodies = verified(&sb, &got).await;
    for b in &bodies {
        assert_eq!(b["Type"], "company");
        assert_eq!(b["ID"], id);
        assert_eq!(b["CallbackObjectRecId"], cb);
        assert_eq!(b["FromUrl"], sb.base_url());
        assert_eq!(b["CompanyId"], "sandbox");
        assert_eq!(b["MemberId"], 4);
        assert_eq!(b["ProductInstanceId"], "");
        assert!(b["PartnerId"].is_string());
        assert!(b["Entity"].is_string());
    }
    let ids: std::collections::BTreeSet<&str> = bodies
        .iter()
        .map(|b| b["MessageId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "a fresh MessageId per event");

    let added = by_action(&bodies, "added");
    let entity: Value = serde_json::from_str(added["Entity"].as_str().unwrap()).unwrap();
    assert_eq!(entity["id"], id);
    assert_eq!(entity["identifier"], "ACME");
    assert_eq!(entity["name"], "ACME Ltd");
    assert_eq!(
        entity["status"]["name"], "Active",
        "the record as a GET shows it"
    );
    let updated = by_action(&bodies, "updated");
    let entity: Value = serde_json::from_str(updated["Entity"].as_str().unwrap()).unwrap();
    assert_eq!(entity["name"], "Acme Corporation");
    assert_eq!(by_action(&bodies, "deleted")["Entity"], "");

    let log = sb.deliveries();
    assert_eq!(log.len(), 3);
    assert_eq!(
        log.iter().map(|d| d.action.as_str()).collect::<Vec<_>>(),
        ["added", "updated", "deleted"],
        "logged in the order of the changes"
    );
    for d in &log {
        assert_eq!((d.status, &d.error, d.dropped), (Some(200), &None, false));
        assert_eq!(
            (d.kind.as_str(), d.id, d.callback_id, d.attempt),
            ("company", id, cb, 0)
        );
        assert_eq!(d.url, rx.url("/cw/hook?tenant=7"));
    }
    let mut message_ids: Vec<&str> = log.iter().map(|d| d.message_id.as_str()).collect();
    message_ids.sort_unstable();
    let mut sent: Vec<&str> = ids.into_iter().collect();
    sent.sort_unstable();
    assert_eq!(message_ids, sent);
}

#[tokio::test]
async fn direct_edits_levels_and_inactive_callbacks() {
    let (sb, c) = start().await;
    let rx = Receiver::start(204).await;
    let owner = register(&c, &rx.url("/company"), "company", "owner", 1).await;
    let a = sb.insert(
        "company/companies",
        json!({"identifier": "A", "name": "A", "city": "Tampa"}),
    );
    let b = sb.insert(
        "company/companies",
        json!({"identifier": "B", "name": "B", "city": "Tampa"}),
    );
    let only_b = register(&c, &rx.url("/b"), "company", "recid", b).await;
    let inactive = c
        .post(
            "system/callbacks",
            &json!({"url": rx.url("/never"), "objectId": 1, "type": "company", "level": "owner",
                    "inactiveFlag": true}),
        )
        .await
        .expect(201)
        .json();
    assert_eq!(inactive["inactiveFlag"], true);
    register(&c, &rx.url("/product"), "product", "owner", 1).await;
    assert!(sb.wait_deliveries(2, WAIT).await);
    sb.clear_deliveries();

    sb.patch("company/companies", a, json!({"name": "A2"}));
    sb.patch("company/companies", b, json!({"name": "B2"}));
    // A type association is part of its company: adding one updates the company.
    c.post(
        &format!("company/companies/{b}/typeAssociations"),
        &json!({"type": {"id": 3}}),
    )
    .await
    .expect(201);
    assert!(sb.delete("company/companies", a));
    assert!(!sb.delete("company/companies", a), "already gone");
    let item = fixtures::catalog_item(&c, "WIDGET").await;
    // owner: A updated, B updated, B updated (association), A deleted; recid B: two; product: one.
    assert!(sb.wait_deliveries(7, WAIT).await, "{:?}", sb.deliveries());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = sb.deliveries();
    assert_eq!(log.len(), 7, "{log:?}");
    assert!(log.iter().all(|d| d.status == Some(204)));
    let seen = |cb: i64| -> Vec<(String, i64)> {
        log.iter()
            .filter(|d| d.callback_id == cb)
            .map(|d| (d.action.clone(), d.id))
            .collect()
    };
    let s = |a: &str, id: i64| (a.to_string(), id);
    assert_eq!(
        seen(owner),
        [
            s("updated", a),
            s("updated", b),
            s("updated", b),
            s("deleted", a)
        ]
    );
    assert_eq!(seen(only_b), [s("updated", b), s("updated", b)]);
    assert!(rx.received().iter().all(|r| r.path != "/never"));
    let product: Vec<_> = log.iter().filter(|d| d.kind == "product").collect();
    assert_eq!(product.len(), 1);
    assert_eq!((product[0].action.as_str(), product[0].id), ("added", item));

    // Deliveries carry the record as it was stored: B renamed by the remote user, then its types changed by the API
    // member (the two may arrive in either order).
    let got = rx.received();
    let bodies = verified(&sb, &got).await;
    let mut editors: Vec<String> = bodies
        .iter()
        .filter(|x| x["CallbackObjectRecId"] == only_b)
        .map(|x| {
            let entity: Value = serde_json::from_str(x["Entity"].as_str().unwrap()).unwrap();
            assert_eq!(entity["name"], "B2");
            entity["_info"]["updatedBy"].as_str().unwrap().to_string()
        })
        .collect();
    editors.sort_unstable();
    assert_eq!(editors, ["SandboxAPI", "jsmith"]);
}

#[tokio::test]
async fn dropped_and_repeated_deliveries() {
    let (sb, c) = start().await;
    let rx = Receiver::start(200).await;
    register(&c, &rx.url("/hook"), "company", "owner", 1).await;

    sb.set_callback_faults(CallbackFaults::none().with_drop_all());
    assert_eq!(sb.callback_faults(), CallbackFaults::none().with_drop_all());
    let id = fixtures::company(&c, "DROPPED").await;
    assert!(sb.wait_deliveries(1, WAIT).await);
    let log = sb.deliveries();
    assert_eq!(log.len(), 1);
    assert!(log[0].dropped && log[0].status.is_none() && log[0].error.is_none());
    assert_eq!((log[0].action.as_str(), log[0].id), ("added", id));

    sb.clear_deliveries();
    sb.set_callback_faults(CallbackFaults::none().with_drop_every(2));
    for name in ["One", "Two", "Three"] {
        sb.patch("company/companies", id, json!({ "name": name }));
    }
    assert!(sb.wait_deliveries(3, WAIT).await);
    let dropped: Vec<bool> = sb.deliveries().iter().map(|d| d.dropped).collect();
    assert_eq!(dropped, [false, true, false]);

    sb.clear_deliveries();
    sb.set_callback_faults(CallbackFaults::none().with_repeat(2));
    c.delete(&format!("company/companies/{id}"))
        .await
        .expect(204);
    assert!(sb.wait_deliveries(3, WAIT).await);
    let log = sb.deliveries();
    assert_eq!(log.iter().map(|d| d.attempt).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(
        log.iter()
            .all(|d| d.message_id == log[0].message_id && d.status == Some(200))
    );

    let got = rx.received();
    assert_eq!(
        got.len(),
        5,
        "two patches delivered, then the delete three times"
    );
    let names: Vec<String> = got[..2]
        .iter()
        .map(|r| {
            let e: Value = serde_json::from_str(r.json()["Entity"].as_str().unwrap()).unwrap();
            e["name"].as_str().unwrap().to_string()
        })
        .collect();
    let mut names = names;
    names.sort_unstable();
    assert_eq!(names, ["One", "Three"]);
    let repeats = &got[2..];
    assert!(repeats.iter().all(|r| r.body == repeats[0].body
        && r.header(SIGNATURE_HEADER) == repeats[0].header(SIGNATURE_HEADER)));
    let body = repeats[0].json();
    assert_eq!(
        (body["Action"].as_str(), &body["MessageId"]),
        (Some("deleted"), &json!(log[0].message_id))
    );
    verified(&sb, repeats).await;
}

#[tokio::test]
async fn signing_keys_rotate_and_old_ones_stay_served() {
    let (sb, c) = start().await;
    let rx = Receiver::start(200).await;
    register(&c, &rx.url("/hook"), "invoice", "owner", 1).await;
    let first = sb.signing_key();
    let company = fixtures::company(&c, "ACME").await;
    fixtures::invoice(&c, company).await;
    let second = sb.rotate_signing_key();
    assert_ne!(first.id, second.id);
    assert_eq!(sb.signing_key(), second);
    fixtures::invoice(&c, company).await;
    assert!(sb.wait_deliveries(2, WAIT).await);
    let got = rx.received();
    assert_eq!(got.len(), 2);
    let key_ids: Vec<String> = got
        .iter()
        .map(|r| {
            let url = r.json()["Metadata"]["key_url"]
                .as_str()
                .unwrap()
                .to_string();
            url.rsplit('/').next().unwrap().to_string()
        })
        .collect();
    let mut key_ids = key_ids;
    key_ids.sort_unstable();
    let mut want = vec![first.id.clone(), second.id.clone()];
    want.sort_unstable();
    assert_eq!(key_ids, want);
    // Both verify, each with its own key.
    verified(&sb, &got).await;
    assert_eq!(
        fetch_key(
            &sb,
            &format!("{}/callbacks/keys/{}", sb.base_url(), first.id)
        )
        .await,
        first.key
    );

    let anonymous = Client {
        authorization: None,
        client_id: None,
        ..Client::new(&sb)
    };
    let r = anonymous
        .get("/callbacks/keys/unknown-key")
        .await
        .expect(404);
    assert_eq!(r.json()["code"], "NotFound");
    anonymous
        .post(&format!("/callbacks/keys/{}", first.id), &json!({}))
        .await
        .expect(405);
}

#[tokio::test]
async fn failed_deliveries_are_logged_not_retried() {
    let (sb, c) = start().await;
    let failing = Receiver::start(500).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    register(&c, &failing.url("/500"), "contact", "owner", 1).await;
    register(
        &c,
        &format!("http://{closed}/refused"),
        "contact",
        "owner",
        1,
    )
    .await;
    register(&c, "https://127.0.0.1:9/tls", "contact", "owner", 1).await;
    let company = fixtures::company(&c, "ACME").await;
    let contact = fixtures::contact(&c, company).await;
    assert!(sb.wait_deliveries(3, WAIT).await, "{:?}", sb.deliveries());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = sb.deliveries();
    assert_eq!(log.len(), 3, "{log:?}");
    let of = |suffix: &str| log.iter().find(|d| d.url.ends_with(suffix)).unwrap();
    assert_eq!((of("/500").status, &of("/500").error), (Some(500), &None));
    assert!(of("/refused").status.is_none() && of("/refused").error.is_some());
    let tls = of("/tls");
    assert!(tls.status.is_none());
    assert!(tls.error.as_deref().unwrap().contains("HTTP"), "{tls:?}");
    assert!(log.iter().all(|d| d.id == contact && d.kind == "contact"));
    assert_eq!(failing.received().len(), 1, "no retries");
}

#[tokio::test]
async fn self_suppressed_callbacks_skip_the_api_members_own_changes() {
    let (sb, c) = start().await;
    let rx = Receiver::start(200).await;
    let body = json!({"url": rx.url("/quiet"), "objectId": 1, "type": "company", "level": "owner",
                      "isSelfSuppressedFlag": true});
    let cb = c.post("system/callbacks", &body).await.expect(201).json();
    assert_eq!(cb["isSelfSuppressedFlag"], true);
    let id = fixtures::company(&c, "ACME").await;
    sb.patch(
        "company/companies",
        id,
        json!({"name": "Changed in ConnectWise"}),
    );
    assert!(sb.wait_deliveries(1, WAIT).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = sb.deliveries();
    assert_eq!(log.len(), 1, "only the remote user's change: {log:?}");
    assert_eq!((log[0].action.as_str(), log[0].id), ("updated", id));
}
