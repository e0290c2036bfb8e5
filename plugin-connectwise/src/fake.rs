//! A fake ConnectWise behind the [`Host`] trait, for the unit tests: records kept by collection
//! path (`company/companies`, `system/callbacks`, …) and id, served the way ConnectWise serves them
//! (404 with an error body for a missing record, pages with a `Link` next, one `field='value'`
//! condition compared without regard to case, 201 with the created record, 204 on delete, companies
//! soft-deleted by setting `deletedFlag`). It remembers every request and log line, and can answer
//! every request with one status instead.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::client::Client;
use crate::host::{Host, HttpError, Level, Method, Request, Response};
use crate::settings::Settings;

pub const API: &str = "https://cw.example.com/v4_6_release/apis/3.0";

#[derive(Default)]
pub struct FakeHost {
    /// Collection path → id → record.
    pub records: RefCell<BTreeMap<String, BTreeMap<i64, Value>>>,
    /// Every request: method, URL under [`API`] (decoded), JSON body.
    pub sent: RefCell<Vec<(Method, String, Option<Value>)>>,
    pub logs: RefCell<Vec<(Level, String)>>,
    /// When set, the status (with an error body) every request is answered with.
    pub fail: Cell<Option<u16>>,
    /// The largest page served (ConnectWise's 1000 when unset).
    pub page_size: Cell<Option<usize>>,
    next_id: Cell<i64>,
}

/// `%XX` decoding of a query value.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn answer(status: u16, headers: Vec<(String, String)>, body: Option<Value>) -> Response {
    Response {
        status,
        headers,
        body: body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default(),
    }
}

fn not_found(path: &str) -> Response {
    answer(
        404,
        vec![],
        Some(json!({ "code": "NotFound", "message": format!("{path} not found") })),
    )
}

impl FakeHost {
    pub fn new() -> FakeHost {
        FakeHost {
            next_id: Cell::new(1000),
            ..FakeHost::default()
        }
    }

    /// A client of this fake, as an entry point builds it from the settings.
    pub fn client(&self) -> Client<'_> {
        Client::new(
            self,
            &Settings::read(self).expect("the fake's settings are valid"),
        )
    }

    /// Stores a record under `collection` with the id it carries, adding `_info`.
    pub fn insert(&self, collection: &str, mut record: Value) -> i64 {
        let id = record["id"].as_i64().expect("records carry an id");
        record["_info"] = json!({ "lastUpdated": "2026-01-31T12:00:00Z" });
        self.records
            .borrow_mut()
            .entry(collection.to_string())
            .or_default()
            .insert(id, record);
        id
    }

    /// Stores a record under `collection` with the next free id.
    pub fn create(&self, collection: &str, mut record: Value) -> i64 {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        record["id"] = json!(id);
        self.insert(collection, record)
    }

    pub fn get(&self, collection: &str, id: i64) -> Option<Value> {
        self.records.borrow().get(collection)?.get(&id).cloned()
    }

    pub fn all(&self, collection: &str) -> Vec<Value> {
        self.records
            .borrow()
            .get(collection)
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The requests sent so far, as `METHOD path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.sent
            .borrow()
            .iter()
            .map(|(m, url, _)| format!("{} {url}", method_name(*m)))
            .collect()
    }

    /// The requests sent so far other than GETs.
    pub fn writes(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| !r.starts_with("GET "))
            .collect()
    }

    fn list(&self, collection: &str, query: &str) -> Response {
        let mut page = 1;
        let mut page_size = 25;
        let mut conditions = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "page" => page = value.parse().unwrap(),
                "pageSize" => page_size = value.parse().unwrap(),
                "conditions" => conditions = Some(decode(value)),
                _ => {}
            }
        }
        let page_size = page_size.min(self.page_size.get().unwrap_or(1000));
        let matching: Vec<Value> = self
            .all(collection)
            .into_iter()
            .filter(|r| match &conditions {
                None => true,
                Some(condition) => {
                    let (field, quoted) = condition
                        .split_once('=')
                        .expect("the fake knows field='value' conditions only");
                    let value = quoted
                        .strip_prefix('\'')
                        .and_then(|q| q.strip_suffix('\''))
                        .expect("a quoted string")
                        .replace("''", "'");
                    r.get(field)
                        .and_then(Value::as_str)
                        .is_some_and(|v| v.eq_ignore_ascii_case(&value))
                }
            })
            .collect();
        let start = (page - 1) * page_size;
        let items: Vec<Value> = matching
            .iter()
            .skip(start)
            .take(page_size)
            .cloned()
            .collect();
        let mut headers = vec![];
        if start + page_size < matching.len() {
            headers.push((
                "Link".to_string(),
                format!(
                    "<{API}/{collection}?page={}&pageSize={page_size}>; rel=\"next\"",
                    page + 1
                ),
            ));
        }
        answer(200, headers, Some(Value::Array(items)))
    }
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
    }
}

impl Host for FakeHost {
    fn send(&self, request: &Request) -> Result<Response, HttpError> {
        let body: Option<Value> = request
            .body
            .as_ref()
            .map(|b| serde_json::from_slice(b).unwrap());
        let target = request
            .url
            .strip_prefix(API)
            .and_then(|t| t.strip_prefix('/'))
            .unwrap_or_else(|| panic!("a request outside the API: {}", request.url))
            .to_string();
        self.sent
            .borrow_mut()
            .push((request.method, decode(&target), body.clone()));
        if let Some(status) = self.fail.get() {
            return Ok(answer(
                status,
                vec![],
                Some(json!({ "code": "Failed", "message": format!("failed with {status}") })),
            ));
        }
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let (collection, id) = match path.rsplit_once('/') {
            Some((collection, last)) if last.parse::<i64>().is_ok() => {
                (collection.to_string(), Some(last.parse::<i64>().unwrap()))
            }
            _ => (path.to_string(), None),
        };
        let response = match (request.method, id) {
            (Method::Get, None) => self.list(&collection, query),
            (Method::Get, Some(id)) => match self.get(&collection, id) {
                Some(record) => answer(200, vec![], Some(record)),
                None => not_found(path),
            },
            (Method::Post, None) => {
                let id = self.create(&collection, body.expect("a POST has a body"));
                answer(201, vec![], self.get(&collection, id))
            }
            (Method::Delete, Some(id)) => {
                let mut records = self.records.borrow_mut();
                let held = records.entry(collection.clone()).or_default();
                match held.get_mut(&id) {
                    None => not_found(path),
                    Some(company) if collection == "company/companies" => {
                        if company["deletedFlag"] == json!(true) {
                            not_found(path)
                        } else {
                            company["deletedFlag"] = json!(true);
                            answer(204, vec![], None)
                        }
                    }
                    Some(_) => {
                        held.remove(&id);
                        answer(204, vec![], None)
                    }
                }
            }
            (method, _) => panic!("the fake does not serve {method:?} {path}"),
        };
        Ok(response)
    }

    fn setting(&self, key: &str) -> Option<String> {
        match key {
            "url" => Some("https://cw.example.com".into()),
            "company-id" => Some("acme".into()),
            _ => None,
        }
    }

    fn lookup(&self, _key: &str, _bss_value: &str) -> Option<String> {
        None
    }

    fn reverse_lookup(&self, _key: &str, _remote_value: &str) -> Option<String> {
        None
    }

    fn lookup_remote_values(&self, _key: &str) -> Vec<String> {
        Vec::new()
    }

    fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push((level, message.to_string()));
    }
}
