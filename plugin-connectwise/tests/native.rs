//! The connector's core built natively, driven through a scripted host: what it sends, and how it
//! stops sending once ConnectWise says 429 (retrying is the host's job, not the connector's).

use std::cell::RefCell;
use std::collections::BTreeMap;

use plugin_connectwise::connector;
use plugin_connectwise::exports::{Change, ConflictPolicy, PushItem, PushOptions};
use plugin_connectwise::host::{Host, HttpError, Level, Method, Request, Response};
use plugin_connectwise::types::{Account, Address, ConnectorError, Entity, EntityData, Record};
use serde_json::{Value, json};

/// A scripted answer: status, headers, JSON body.
type Answer = (u16, Vec<(String, String)>, Value);

/// Answers requests from a script and remembers them.
struct ScriptedHost {
    settings: BTreeMap<&'static str, &'static str>,
    sent: RefCell<Vec<(Method, String, Option<Value>)>>,
    answer: fn(&Method, &str) -> Answer,
}

impl Host for ScriptedHost {
    fn send(&self, request: &Request) -> Result<Response, HttpError> {
        let body = request
            .body
            .as_ref()
            .map(|b| serde_json::from_slice(b).unwrap());
        self.sent
            .borrow_mut()
            .push((request.method, request.url.clone(), body));
        let (status, headers, body) = (self.answer)(&request.method, &request.url);
        Ok(Response {
            status,
            headers,
            body: serde_json::to_vec(&body).unwrap(),
        })
    }
    fn setting(&self, key: &str) -> Option<String> {
        self.settings.get(key).map(|v| v.to_string())
    }
    fn lookup(&self, key: &str, bss_value: &str) -> Option<String> {
        match (key, bss_value) {
            ("account-type", "Customer") => Some("1".into()),
            ("currency", "USD") => Some("1".into()),
            _ => None,
        }
    }
    fn reverse_lookup(&self, _key: &str, _remote_value: &str) -> Option<String> {
        None
    }
    fn lookup_remote_values(&self, _key: &str) -> Vec<String> {
        vec!["1".into()]
    }
    fn log(&self, _level: Level, _message: &str) {}
}

fn host(answer: fn(&Method, &str) -> Answer) -> ScriptedHost {
    let settings = BTreeMap::from([
        ("url", "https://cw.example.com"),
        ("company-id", "acme"),
        ("import-account-id", "4"),
    ]);
    ScriptedHost {
        settings,
        sent: RefCell::default(),
        answer,
    }
}

/// A record to push with no last push known.
fn item(record: Record) -> PushItem {
    PushItem {
        record,
        last_pushed: None,
    }
}

fn options(dry_run: bool) -> PushOptions {
    PushOptions {
        dry_run,
        conflicts: ConflictPolicy::BssWins,
    }
}

fn account(id: &str) -> Record {
    Record {
        entity: Entity::Account,
        bss_id: id.into(),
        remote_id: None,
        maybe_created: false,
        data: EntityData::Account(Account {
            code: format!("C-{id}"),
            name: format!("Name {id}"),
            account_type: Some("Customer".into()),
            status: None,
            currency: Some("USD".into()),
            billing_address: Some(Address {
                line1: Some("1 Main St".into()),
                line2: None,
                city: None,
                state: Some("California".into()),
                zip: None,
                country: Some("United States".into()),
            }),
            phone: None,
            fax: None,
            website: None,
            parent_account: None,
            primary_contact: None,
            extra: vec![],
        }),
        references: vec![],
    }
}

fn setup_tables(method: &Method, url: &str) -> Option<Answer> {
    if *method != Method::Get {
        return None;
    }
    if url.contains("company/countries") {
        return Some((200, vec![], json!([{ "id": 1, "name": "United States" }])));
    }
    if url.contains("company/states") {
        return Some((
            200,
            vec![],
            json!([{ "id": 1, "identifier": "CA", "name": "California" }]),
        ));
    }
    None
}

#[test]
fn a_created_company_carries_the_mapped_fields() {
    let host = host(|method, url| {
        setup_tables(method, url)
            .unwrap_or_else(|| (201, vec![], json!({ "id": 250, "identifier": "A1" })))
    });
    let outcomes = connector::push(
        &host,
        Entity::Account,
        vec![item(account("A1"))],
        options(false),
    )
    .unwrap();
    let pushed = outcomes[0].as_ref().unwrap();
    assert_eq!(
        (pushed.change, pushed.remote_id.as_str()),
        (Change::Created, "250")
    );
    let sent = host.sent.borrow();
    let (method, url, body) = sent.last().unwrap();
    assert_eq!(
        (*method, url.as_str()),
        (
            Method::Post,
            "https://cw.example.com/v4_6_release/apis/3.0/company/companies"
        )
    );
    let body = body.as_ref().unwrap();
    assert_eq!(body["identifier"], "A1");
    assert_eq!(body["accountNumber"], "C-A1");
    assert_eq!(body["status"], json!({ "id": 4 }));
    assert_eq!(body["types"], json!([{ "id": 1 }]));
    assert_eq!(body["currency"], json!({ "id": 1 }));
    assert_eq!(body["state"], "CA");
    assert_eq!(body["country"], json!({ "id": 1 }));
    assert!(
        body.get("phoneNumber").is_none(),
        "absent values are not sent"
    );
}

#[test]
fn after_a_429_the_rest_of_the_batch_is_not_sent() {
    let host = host(|method, url| {
        setup_tables(method, url).unwrap_or_else(|| {
            (
                429,
                vec![("Retry-After".into(), "3".into())],
                json!({ "code": "TooManyRequests" }),
            )
        })
    });
    let batch = vec![
        item(account("A1")),
        item(account("A2")),
        item(account("A3")),
    ];
    let outcomes = connector::push(&host, Entity::Account, batch, options(false)).unwrap();
    assert_eq!(outcomes.len(), 3);
    for outcome in &outcomes {
        assert!(
            matches!(outcome, Err(ConnectorError::RateLimited(Some(3000)))),
            "{outcome:?}"
        );
    }
    let posts = host
        .sent
        .borrow()
        .iter()
        .filter(|(m, _, _)| *m == Method::Post)
        .count();
    assert_eq!(
        posts, 1,
        "one POST met the 429; the others waited for the host"
    );
}

#[test]
fn a_dry_run_reads_but_never_writes() {
    let host = host(|method, url| setup_tables(method, url).unwrap_or((500, vec![], json!({}))));
    let outcomes = connector::push(
        &host,
        Entity::Account,
        vec![item(account("A1"))],
        options(true),
    )
    .unwrap();
    assert_eq!(outcomes[0].as_ref().unwrap().change, Change::Created);
    assert!(host.sent.borrow().iter().all(|(m, _, _)| *m == Method::Get));
}

#[test]
fn a_pulled_stamp_passes_through_and_only_the_hosts_cursor_builds_conditions() {
    let host = host(|_, url| {
        if url.contains("company/companies") {
            // Seen in real data: a stamp with spaces in it.
            let company = json!({"id": 250, "identifier": "A1", "name": "Acme",
                                 "_info": {"lastUpdated": "2015-12-24T22: 08: 22Z"}});
            (200, vec![], json!([company]))
        } else {
            (404, vec![], json!({}))
        }
    });
    let page = connector::pull(&host, Entity::Account, Some("2026-01-31T12:00:00Z"), None).unwrap();
    assert_eq!(
        page.records[0].last_updated, "2015-12-24T22: 08: 22Z",
        "the stamp goes to the host as ConnectWise wrote it"
    );
    let sent = host.sent.borrow().len();
    let url = host.sent.borrow()[0].1.clone();
    assert!(
        url.contains(&format!(
            "conditions={}",
            plugin_connectwise::client::encode("lastUpdated>=[2026-01-31T12:00:00Z]")
        )),
        "{url}"
    );

    // Handed that stamp as a cursor, the connector sends nothing.
    match connector::pull(&host, Entity::Account, Some("2015-12-24T22: 08: 22Z"), None) {
        Err(ConnectorError::Internal(message)) => {
            assert!(message.contains("2015-12-24T22: 08: 22Z"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(host.sent.borrow().len(), sent);
}

#[test]
fn conditions_connectwise_refuses_are_named() {
    let host = host(|_, _| {
        (
            400,
            vec![],
            json!({"code": "InvalidObject", "message": "The conditions are invalid",
                   "errors": [{"code": "InvalidField", "message": "Unexpected token at 17", "field": "conditions"}]}),
        )
    });
    match connector::pull(&host, Entity::Contact, Some("2026-01-31T12:00:00Z"), None) {
        Err(ConnectorError::Rejected(fields)) => {
            assert_eq!(fields.len(), 1);
            assert_eq!(fields[0].field, "conditions");
            assert!(
                fields[0]
                    .message
                    .contains("\"lastUpdated>=[2026-01-31T12:00:00Z]\" of a company/contacts pull"),
                "{fields:?}"
            );
            assert!(
                fields[0].message.contains("Unexpected token at 17"),
                "{fields:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}
