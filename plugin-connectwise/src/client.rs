//! ConnectWise REST calls over the host's HTTP: URLs under `{site}/{codebase}/apis/3.0/`, the
//! model-version `Accept` header, paging, condition strings, and the translation of every answer
//! that is not a success into a `connector-error` the host can act on (429 → rate-limited with
//! `Retry-After`, 5xx → transient, 401 → unauthorized, 400 → per-field rejections). It never
//! sleeps or retries: that is the host's job.

use std::cell::Cell;

use serde_json::Value;

use crate::host::{Host, HttpError, Method, Request, Response};
use crate::settings::Settings;
use crate::types::{ConnectorError, FieldError};

/// The API (model) version the connector is written against and pins in every request.
pub const API_VERSION: &str = "2026.4";
/// The `Accept` header that pins [`API_VERSION`].
pub const ACCEPT: &str = "application/vnd.connectwise.com+json; version=2026.4";
/// The largest page ConnectWise serves.
pub const PAGE_SIZE: usize = 1000;

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A string literal in a condition: `'O''Brien'`.
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The ConnectWise id a remote id handed over by the host names (the decimal id this connector
/// gave), or a rejection of field `remote-id` before anything is sent.
pub fn record_id(remote_id: &str) -> Result<i64, ConnectorError> {
    match remote_id.parse::<i64>() {
        Ok(id) if id > 0 && remote_id.bytes().all(|b| b.is_ascii_digit()) => Ok(id),
        _ => Err(ConnectorError::Rejected(vec![FieldError {
            field: "remote-id".to_string(),
            message: format!(
                "{remote_id:?} is not a ConnectWise record id (a positive whole number)"
            ),
        }])),
    }
}

/// An `{"id": n}` reference.
pub fn reference(id: i64) -> Value {
    serde_json::json!({ "id": id })
}

/// The id of a reference field (`{"id": n, ...}`), if set.
pub fn ref_id(value: &Value, field: &str) -> Option<i64> {
    value
        .get(field)
        .and_then(|r| r.get("id"))
        .and_then(Value::as_i64)
}

pub struct Client<'h> {
    host: &'h dyn Host,
    api: String,
    /// Set once ConnectWise has said 429: later requests in this call are not sent.
    rate_limited: Cell<Option<Option<u64>>>,
    /// The day (`YYYY-MM-DD`) of the latest `Date` header ConnectWise sent: the remote's clock.
    server_day: std::cell::RefCell<Option<String>>,
}

impl<'h> Client<'h> {
    pub fn new(host: &'h dyn Host, settings: &Settings) -> Self {
        Client {
            host,
            api: settings.api_base(),
            rate_limited: Cell::new(None),
            server_day: std::cell::RefCell::default(),
        }
    }

    pub fn host(&self) -> &'h dyn Host {
        self.host
    }

    /// `{site}/{codebase}/apis/3.0`
    pub fn api(&self) -> &str {
        &self.api
    }

    /// Sends to an absolute URL and returns the raw response (any status).
    pub fn send_raw(
        &self,
        method: Method,
        url: String,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Response, ConnectorError> {
        if let Some(after) = self.rate_limited.get() {
            return Err(ConnectorError::RateLimited(after));
        }
        let mut all = vec![("accept".to_string(), ACCEPT.to_string())];
        if body.is_some() {
            all.push(("content-type".to_string(), "application/json".to_string()));
        }
        all.extend(headers.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        let request = Request {
            method,
            url,
            headers: all,
            body: body.map(|b| serde_json::to_vec(b).expect("JSON values serialise")),
        };
        let response = self.host.send(&request).map_err(transport_error)?;
        if let Some(day) = response
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("date"))
            .and_then(|(_, v)| http_day(v))
        {
            *self.server_day.borrow_mut() = Some(day);
        }
        Ok(response)
    }

    /// Today (`YYYY-MM-DD`, UTC) as ConnectWise's clock has it (the `Date` of its latest answer),
    /// or as this machine's has it when ConnectWise has not said yet.
    pub fn today(&self) -> String {
        if let Some(day) = self.server_day.borrow().clone() {
            return day;
        }
        let seconds = self.host.unix_seconds();
        let (y, m, d) = civil_from_days(seconds.div_euclid(86_400));
        format!("{y:04}-{m:02}-{d:02}")
    }

    /// Sends `method path` under the API base and returns the parsed JSON body of a success.
    pub fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(Response, Value), ConnectorError> {
        let response = self.send_raw(
            method,
            format!("{}/{}", self.api, path.trim_start_matches('/')),
            body,
            &[],
        )?;
        let value = self.check(&response)?;
        Ok((response, value))
    }

    /// Turns a non-success into an error; parses a success's body (empty → null).
    pub fn check(&self, response: &Response) -> Result<Value, ConnectorError> {
        if (200..300).contains(&response.status) {
            if response.body.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&response.body).map_err(|e| {
                ConnectorError::Transient(format!(
                    "ConnectWise answered {} with a body that is not valid JSON ({e})",
                    response.status
                ))
            });
        }
        let error = status_error(response);
        if let ConnectorError::RateLimited(after) = &error {
            self.rate_limited.set(Some(*after));
        }
        Err(error)
    }

    pub fn get(&self, path: &str) -> Result<Value, ConnectorError> {
        self.call(Method::Get, path, None).map(|(_, v)| v)
    }

    /// One record, or none when ConnectWise says it has no such record (see [`record_gone`]).
    pub fn get_found(&self, path: &str) -> Result<Option<Value>, ConnectorError> {
        self.found(Method::Get, path)
            .map(|found| found.map(|(_, value)| value))
    }

    /// Deletes one record: `false` when ConnectWise says it has no such record.
    pub fn delete_found(&self, path: &str) -> Result<bool, ConnectorError> {
        self.found(Method::Delete, path)
            .map(|found| found.is_some())
    }

    fn found(
        &self,
        method: Method,
        path: &str,
    ) -> Result<Option<(Response, Value)>, ConnectorError> {
        let response = self.send_raw(
            method,
            format!("{}/{}", self.api, path.trim_start_matches('/')),
            None,
            &[],
        )?;
        if record_gone(&response) {
            return Ok(None);
        }
        let value = self.check(&response)?;
        Ok(Some((response, value)))
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value, ConnectorError> {
        self.call(Method::Post, path, Some(body)).map(|(_, v)| v)
    }

    pub fn patch(&self, path: &str, operations: &[Value]) -> Result<Value, ConnectorError> {
        self.call(
            Method::Patch,
            path,
            Some(&Value::Array(operations.to_vec())),
        )
        .map(|(_, v)| v)
    }

    pub fn delete(&self, path: &str) -> Result<(), ConnectorError> {
        self.call(Method::Delete, path, None).map(|_| ())
    }

    /// Every record of a list, following pages of [`PAGE_SIZE`].
    pub fn get_all(
        &self,
        path: &str,
        conditions: Option<&str>,
    ) -> Result<Vec<Value>, ConnectorError> {
        let mut all = Vec::new();
        for page in 1.. {
            let mut query = format!(
                "page={page}&pageSize={PAGE_SIZE}&orderBy={}",
                encode("id asc")
            );
            if let Some(conditions) = conditions {
                query.push_str(&format!("&conditions={}", encode(conditions)));
            }
            let separator = if path.contains('?') { '&' } else { '?' };
            let (response, value) =
                self.call(Method::Get, &format!("{path}{separator}{query}"), None)?;
            let items = match value {
                Value::Array(items) => items,
                other => return Err(unexpected(path, &other)),
            };
            let full = items.len() >= PAGE_SIZE;
            all.extend(items);
            if !full || !has_next(&response) {
                break;
            }
        }
        Ok(all)
    }

    /// The first record matching `conditions`, if any.
    pub fn find(&self, path: &str, conditions: &str) -> Result<Option<Value>, ConnectorError> {
        let value = self.get(&format!(
            "{path}?pageSize=1&conditions={}",
            encode(conditions)
        ))?;
        match value {
            Value::Array(mut items) => Ok(if items.is_empty() {
                None
            } else {
                Some(items.swap_remove(0))
            }),
            other => Err(unexpected(path, &other)),
        }
    }
}

/// The day of an HTTP `Date` header (`Sun, 06 Nov 1994 08:49:37 GMT` → `1994-11-06`).
pub fn http_day(header: &str) -> Option<String> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let parts: Vec<&str> = header.split_whitespace().collect();
    let [_, day, month, year, ..] = parts.as_slice() else {
        return None;
    };
    let day: u32 = day.parse().ok()?;
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))? + 1;
    let year: u32 = year.parse().ok()?;
    ((1..=31).contains(&day) && year >= 1970).then(|| format!("{year:04}-{month:02}-{day:02}"))
}

/// The date (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Whether a list response's `Link` header names a next page.
pub fn has_next(response: &Response) -> bool {
    link_target(response, "next").is_some()
}

/// The URL a `Link` header gives for `rel`.
pub fn link_target(response: &Response, rel: &str) -> Option<String> {
    let header = response
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("link"))?;
    header.1.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let wanted = format!("rel=\"{rel}\"");
        params
            .split(';')
            .any(|p| p.trim() == wanted)
            .then(|| target.trim().trim_matches(['<', '>']).to_string())
    })
}

fn unexpected(path: &str, value: &Value) -> ConnectorError {
    let text = value.to_string();
    let shown: String = text.chars().take(120).collect();
    ConnectorError::Internal(format!(
        "ConnectWise answered {path} with an unexpected shape: {shown}"
    ))
}

fn transport_error(error: HttpError) -> ConnectorError {
    match error {
        HttpError::HostNotAllowed(m) | HttpError::PrivateAddress(m) => {
            ConnectorError::InvalidSettings(vec![FieldError {
                field: crate::manifest::keys::URL.to_string(),
                message: format!("the host refused to connect: {m}"),
            }])
        }
        HttpError::Timeout(m) => {
            ConnectorError::Transient(format!("ConnectWise did not answer in time: {m}"))
        }
        HttpError::Transport(m) => {
            ConnectorError::Transient(format!("could not reach ConnectWise: {m}"))
        }
        HttpError::RequestLimit(n) => ConnectorError::Transient(format!(
            "this call used its budget of {n} requests; the rest wait for the next call"
        )),
        HttpError::ResponseTooLarge(n) => {
            ConnectorError::Internal(format!("a ConnectWise response exceeded {n} bytes"))
        }
        HttpError::InvalidRequest(m) => {
            ConnectorError::Internal(format!("the connector built a bad request: {m}"))
        }
        HttpError::WriteInDryRun => {
            ConnectorError::Internal("the connector tried to write during a dry run".to_string())
        }
    }
}

/// ConnectWise's error body: `{"code", "message", "errors": [{"code", "message", "field", ...}]}`.
fn error_body(response: &Response) -> (String, Vec<FieldError>) {
    let Ok(body) = serde_json::from_slice::<Value>(&response.body) else {
        let text = String::from_utf8_lossy(&response.body);
        let shown: String = text.chars().take(200).collect();
        return (
            if shown.trim().is_empty() {
                format!("HTTP {}", response.status)
            } else {
                shown
            },
            Vec::new(),
        );
    };
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let fields = body
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .map(|e| FieldError {
                    field: e
                        .get("field")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    message: e
                        .get("message")
                        .and_then(Value::as_str)
                        .or_else(|| e.get("code").and_then(Value::as_str))
                        .unwrap_or("invalid")
                        .to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    (message, fields)
}

/// Whether a response says the record does not exist: a 404 with ConnectWise's own error body
/// (`code` `NotFound`). A 404 without it (a wrong API path, a proxy's page) is an error, never
/// taken for a deletion.
pub fn record_gone(response: &Response) -> bool {
    response.status == 404
        && serde_json::from_slice::<Value>(&response.body)
            .ok()
            .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_string))
            .is_some_and(|code| code.eq_ignore_ascii_case("NotFound"))
}

/// The error for a response that is not a success.
pub fn status_error(response: &Response) -> ConnectorError {
    let (message, fields) = error_body(response);
    let status = response.status;
    match status {
        400 | 409 | 422 => {
            if fields.is_empty() {
                ConnectorError::Rejected(vec![FieldError {
                    field: String::new(),
                    message,
                }])
            } else {
                ConnectorError::Rejected(fields)
            }
        }
        401 => ConnectorError::Unauthorized(format!(
            "ConnectWise refused the credentials ({message}); check the company id, public key, private key and client id"
        )),
        403 => ConnectorError::Forbidden(format!(
            "ConnectWise refused access ({message}); the API member lacks a permission"
        )),
        404 => ConnectorError::NotFound(message),
        429 => {
            let after = response
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("retry-after"))
                .and_then(|(_, v)| v.trim().parse::<u64>().ok())
                .map(|seconds| seconds * 1000);
            ConnectorError::RateLimited(after)
        }
        500..=599 => {
            ConnectorError::Transient(format!("ConnectWise failed with {status}: {message}"))
        }
        _ => ConnectorError::Internal(format!("ConnectWise answered {status}: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn errors_map_to_what_the_host_can_act_on() {
        let body = r#"{"code":"InvalidObject","message":"company object is invalid","errors":[{"code":"MaxLengthField","message":"identifier is too long","resource":"company","field":"identifier"}]}"#;
        match status_error(&response(400, &[], body)) {
            ConnectorError::Rejected(fields) => {
                assert_eq!(
                    fields,
                    vec![FieldError {
                        field: "identifier".into(),
                        message: "identifier is too long".into()
                    }]
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            status_error(&response(429, &[("Retry-After", "7")], "")),
            ConnectorError::RateLimited(Some(7000))
        ));
        assert!(
            matches!(status_error(&response(503, &[], "oops")), ConnectorError::Transient(m) if m.contains("503"))
        );
        assert!(matches!(
            status_error(&response(401, &[], "{}")),
            ConnectorError::Unauthorized(_)
        ));
    }

    #[test]
    fn http_dates_give_their_day() {
        assert_eq!(
            http_day("Sun, 06 Nov 1994 08:49:37 GMT").as_deref(),
            Some("1994-11-06")
        );
        assert_eq!(http_day("garbage"), None);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }

    #[test]
    fn the_accept_header_pins_the_api_version() {
        assert!(ACCEPT.ends_with(&format!("version={API_VERSION}")));
    }

    #[test]
    fn link_headers_are_read() {
        let r = response(
            200,
            &[(
                "Link",
                "<https://x/a?page=2>; rel=\"next\", <https://x/a?page=9>; rel=\"last\"",
            )],
            "[]",
        );
        assert_eq!(link_target(&r, "next").unwrap(), "https://x/a?page=2");
        assert_eq!(link_target(&r, "last").unwrap(), "https://x/a?page=9");
        assert!(link_target(&r, "prev").is_none());
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            encode("name='O''Brien' and id>[2026-01-01T00:00:00Z]"),
            "name%3D%27O%27%27Brien%27%20and%20id%3E%5B2026-01-01T00%3A00%3A00Z%5D"
        );
        assert_eq!(quote("O'Brien"), "'O''Brien'");
    }

    #[test]
    fn only_connectwise_saying_not_found_is_a_record_gone() {
        let response = |status: u16, body: &str| Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        };
        assert!(record_gone(&response(
            404,
            r#"{"code":"NotFound","message":"company/companies/7 not found"}"#
        )));
        assert!(!record_gone(&response(404, "<html>Not Found</html>")));
        assert!(!record_gone(&response(404, "")));
        assert!(!record_gone(&response(
            404,
            r#"{"code":"InvalidObject","message":"x"}"#
        )));
        assert!(!record_gone(&response(410, r#"{"code":"NotFound"}"#)));
    }

    #[test]
    fn remote_ids_must_be_connectwise_ids() {
        assert_eq!(record_id("250").unwrap(), 250);
        for bad in [
            "",
            "0",
            "-3",
            "+3",
            " 3",
            "3 ",
            "3/../4",
            "abc",
            "99999999999999999999",
        ] {
            match record_id(bad) {
                Err(ConnectorError::Rejected(fields)) => {
                    assert_eq!(fields[0].field, "remote-id", "{bad:?}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
