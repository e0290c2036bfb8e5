//! Requests over `bss:integration/http`, with the contract's errors and paging.
//!
//! The host sends only to the instance's `url` host, adds the credentials the manifest declares,
//! caps time, size and the number of requests per call. This helper never sleeps or retries:
//! that is the host's job (it waits out `rate-limited` and retries `transient`).

use core::cell::RefCell;

use serde_json::Value;

use crate::bss::integration::http as host;
pub use crate::bss::integration::http::{HttpError, Method};
use crate::{ConnectorError, Result, field_error};

/// A response, whatever its status.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The body parsed as JSON (an empty body is `null`); a body that is not JSON is `transient`.
    pub fn json(&self) -> Result<Value> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            ConnectorError::transient(format!(
                "the remote answered {} with a body that is not valid JSON ({e})",
                self.status
            ))
        })
    }
    /// The URL the `Link` header gives for `rel` (`"next"`, `"last"`, …).
    pub fn link(&self, rel: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("link"))
            .flat_map(|(_, v)| v.split(','))
            .find_map(|part| {
                let mut pieces = part.split(';');
                let target = pieces.next()?.trim();
                let matches = pieces.any(|p| {
                    let p = p.trim();
                    p == format!("rel=\"{rel}\"") || p == format!("rel={rel}")
                });
                matches.then(|| {
                    target
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_string()
                })
            })
    }
}

/// The error body of a ConnectWise-style answer, `{code, message, errors: [{code, message,
/// resource, field}]}`: its message, code and one `field-error` per entry of `errors`.
pub struct ErrorBody {
    pub message: String,
    pub code: Option<String>,
    pub fields: Vec<crate::types::FieldError>,
}

pub fn error_body(response: &Response) -> ErrorBody {
    let fallback = || format!("HTTP {}", response.status);
    let Ok(body) = serde_json::from_slice::<Value>(&response.body) else {
        let text: String = response.text().trim().chars().take(200).collect();
        return ErrorBody {
            message: if text.is_empty() { fallback() } else { text },
            code: None,
            fields: vec![],
        };
    };
    let text_of = |v: Option<&Value>| -> Option<String> {
        match v? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    };
    let fields = body
        .get("errors")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|e| {
                    field_error(
                        text_of(e.get("field")).unwrap_or_default(),
                        text_of(e.get("message"))
                            .or_else(|| text_of(e.get("code")))
                            .unwrap_or_else(|| "invalid".into()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    ErrorBody {
        message: text_of(body.get("message")).unwrap_or_else(fallback),
        code: text_of(body.get("code")),
        fields,
    }
}

/// The contract's error for a response that is not 2xx.
pub fn status_error(response: &Response) -> ConnectorError {
    let status = response.status;
    if status == 429 {
        // Retry-After in seconds; an HTTP date or junk leaves the wait to the host.
        let ms = response
            .header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| s.saturating_mul(1000));
        return ConnectorError::RateLimited(ms);
    }
    let ErrorBody {
        message, fields, ..
    } = error_body(response);
    match status {
        500.. => ConnectorError::transient(format!("the remote failed with {status}: {message}")),
        401 => {
            ConnectorError::unauthorized(format!("the remote refused the credentials ({message})"))
        }
        403 => ConnectorError::forbidden(format!("the remote refused access ({message})")),
        404 => ConnectorError::not_found(message),
        400..=499 if fields.is_empty() => ConnectorError::rejected_field("", message),
        400..=499 => ConnectorError::Rejected(fields),
        _ => ConnectorError::internal(format!("the remote answered {status}: {message}")),
    }
}

/// `bss:integration/http`'s `http-error` as the contract's connector error.
pub fn transport_error(e: HttpError) -> ConnectorError {
    match e {
        HttpError::HostNotAllowed(m) | HttpError::PrivateAddress(m) => {
            ConnectorError::invalid_setting("url", format!("the host refused to connect: {m}"))
        }
        HttpError::Timeout(m) => {
            ConnectorError::transient(format!("the remote did not answer in time: {m}"))
        }
        HttpError::Transport(m) => {
            ConnectorError::transient(format!("could not reach the remote: {m}"))
        }
        HttpError::RequestLimit(n) => ConnectorError::transient(format!(
            "this call used its budget of {n} requests; the rest wait for the next call"
        )),
        HttpError::ResponseTooLarge(n) => {
            ConnectorError::internal(format!("a response exceeded {n} bytes"))
        }
        HttpError::InvalidRequest(m) => {
            ConnectorError::internal(format!("the connector built a bad request: {m}"))
        }
        HttpError::WriteInDryRun => {
            ConnectorError::internal("the connector tried to write during a dry run")
        }
    }
}

/// An HTTP client for one call: `base` is prefixed to relative paths, `headers` go on every
/// request (never credentials: the host adds those). After a 429, every later request of the
/// call fails `rate-limited` without being sent.
#[derive(Debug, Default)]
pub struct Http {
    base: String,
    headers: Vec<(String, String)>,
    rate_limited: RefCell<Option<ConnectorError>>,
    requests: core::cell::Cell<u32>,
}

impl Http {
    pub fn new(base: impl Into<String>) -> Self {
        let base: String = base.into();
        Self {
            base: base.trim_end_matches('/').to_string(),
            ..Self::default()
        }
    }
    /// A header for every request.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    /// How many requests this client has sent.
    pub fn requests(&self) -> u32 {
        self.requests.get()
    }
    /// An absolute URL for `path` (kept as it is when it is absolute already).
    pub fn url(&self, path: &str) -> String {
        let lower = path.get(..8).unwrap_or(path).to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}/{}", self.base, path.trim_start_matches('/'))
        }
    }
    /// A request to build: `http.request(Method::Get, "x").header("a", "b").send()`.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder<'_> {
        RequestBuilder {
            http: self,
            method,
            url: self.url(path),
            headers: Vec::new(),
            body: None,
        }
    }
    /// The parsed JSON of a 2xx, else the mapped error.
    pub fn check(&self, response: &Response) -> Result<Value> {
        if response.is_success() {
            return response.json();
        }
        let error = status_error(response);
        if matches!(error, ConnectorError::RateLimited(_)) {
            *self.rate_limited.borrow_mut() = Some(error.clone());
        }
        Err(error)
    }
    /// GET `path`: the JSON of a 2xx, else the error.
    pub fn get(&self, path: &str) -> Result<Value> {
        self.request(Method::Get, path).call().map(|(_, v)| v)
    }
    /// POST `json` to `path`.
    pub fn post(&self, path: &str, json: &Value) -> Result<Value> {
        self.request(Method::Post, path)
            .json(json)
            .call()
            .map(|(_, v)| v)
    }
    /// PUT `json` to `path`.
    pub fn put(&self, path: &str, json: &Value) -> Result<Value> {
        self.request(Method::Put, path)
            .json(json)
            .call()
            .map(|(_, v)| v)
    }
    /// PATCH `path` with `json` (ConnectWise: a JSON Patch, `[{op, path, value}]`).
    pub fn patch(&self, path: &str, json: &Value) -> Result<Value> {
        self.request(Method::Patch, path)
            .json(json)
            .call()
            .map(|(_, v)| v)
    }
    /// DELETE `path`.
    pub fn delete(&self, path: &str) -> Result<Value> {
        self.request(Method::Delete, path).call().map(|(_, v)| v)
    }

    /// Every item of a list paged by the `Link` header (`<…>; rel="next"`, absolute or
    /// relative), up to `max_pages` pages. Each page's JSON must be an array.
    pub fn get_all(&self, path: &str, max_pages: usize) -> Result<Vec<Value>> {
        let mut all = Vec::new();
        let mut next = Some(path.to_string());
        let mut pages = 0;
        while let Some(path) = next.take() {
            if pages == max_pages {
                break;
            }
            pages += 1;
            let (response, data) = self.request(Method::Get, &path).call()?;
            match data {
                Value::Array(items) => all.extend(items),
                _ => {
                    return Err(ConnectorError::internal(format!(
                        "{path} answered something that is not a list"
                    )));
                }
            }
            next = response.link("next");
        }
        Ok(all)
    }

    /// Every item of a list paged by a token in the JSON body: `items(page)` picks a page's
    /// items, `token_of(page)` the next token (none on the last page), `path_of(token)` the path
    /// of the page it names.
    pub fn get_all_by_token(
        &self,
        first_path: &str,
        max_pages: usize,
        items: impl Fn(&Value) -> Option<&Vec<Value>>,
        token_of: impl Fn(&Value) -> Option<String>,
        path_of: impl Fn(&str) -> String,
    ) -> Result<Vec<Value>> {
        let mut all = Vec::new();
        let mut path = first_path.to_string();
        for _ in 0..max_pages {
            let page = self.get(&path)?;
            let list = items(&page).ok_or_else(|| {
                ConnectorError::internal(format!(
                    "{path} answered a page without its list of items"
                ))
            })?;
            all.extend(list.iter().cloned());
            match token_of(&page).filter(|t| !t.is_empty()) {
                Some(token) => path = path_of(&token),
                None => break,
            }
        }
        Ok(all)
    }
}

/// One request being built (see [`Http::request`]).
pub struct RequestBuilder<'a> {
    http: &'a Http,
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl RequestBuilder<'_> {
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    /// A JSON body (and `content-type: application/json` unless a content type is set).
    pub fn json(mut self, value: &Value) -> Self {
        self.body = Some(value.to_string().into_bytes());
        if !self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        {
            self.headers
                .push(("content-type".into(), "application/json".into()));
        }
        self
    }
    /// A raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }
    /// Sends and answers the response whatever its status; only a failure to exchange (or an
    /// earlier 429 in this call) is an error.
    pub fn send(self) -> Result<Response> {
        if let Some(e) = self.http.rate_limited.borrow().clone() {
            return Err(e);
        }
        let mut headers = self.http.headers.clone();
        headers.extend(self.headers);
        self.http.requests.set(self.http.requests.get() + 1);
        let raw = host::send(&host::Request {
            method: self.method,
            url: self.url,
            headers,
            body: self.body,
        })
        .map_err(transport_error)?;
        Ok(Response {
            status: raw.status,
            headers: raw.headers,
            body: raw.body,
        })
    }
    /// Sends; a 2xx answers the response and its JSON, anything else the mapped error.
    pub fn call(self) -> Result<(Response, Value)> {
        let http = self.http;
        let response = self.send()?;
        let value = http.check(&response)?;
        Ok((response, value))
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
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn statuses_map_to_the_contracts_errors() {
        assert_eq!(
            status_error(&response(429, &[("Retry-After", "2")], "")),
            ConnectorError::RateLimited(Some(2000))
        );
        assert_eq!(
            status_error(&response(429, &[], "")),
            ConnectorError::RateLimited(None)
        );
        assert!(
            matches!(status_error(&response(503, &[], "down")), ConnectorError::Transient(m) if m.contains("503"))
        );
        assert!(matches!(
            status_error(&response(401, &[], "")),
            ConnectorError::Unauthorized(_)
        ));
        let body = r#"{"code":"InvalidObject","message":"company object is invalid","errors":[{"code":"Required","message":"name is required","resource":"company","field":"name"}]}"#;
        assert_eq!(
            status_error(&response(400, &[], body)),
            ConnectorError::Rejected(vec![field_error("name", "name is required")])
        );
        assert_eq!(
            status_error(&response(400, &[], "nope")),
            ConnectorError::Rejected(vec![field_error("", "nope")])
        );
    }

    #[test]
    fn link_header() {
        let r = response(
            200,
            &[(
                "Link",
                r#"<https://x/a?page=1>; rel="first", <https://x/a?page=2>; rel="next""#,
            )],
            "[]",
        );
        assert_eq!(r.link("next").as_deref(), Some("https://x/a?page=2"));
        assert_eq!(r.link("last"), None);
    }
}
