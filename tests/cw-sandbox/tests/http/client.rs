//! A minimal HTTP/1.1 client over a tokio TcpStream (one request per connection), enough to talk to the sandbox
//! exactly as a connector would, including requests a full client would refuse to send.

use std::net::SocketAddr;
use std::time::Duration;

use cw_sandbox::{API_ROOT, Sandbox};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Panics unless the status is `want`, showing the body.
    #[track_caller]
    pub fn expect(self, want: u16) -> Resp {
        assert_eq!(
            self.status,
            want,
            "unexpected status; body: {}",
            self.text()
        );
        self
    }
}

#[derive(Clone, Debug)]
pub struct Client {
    pub addr: SocketAddr,
    pub authorization: Option<String>,
    pub client_id: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl Client {
    /// A client with the sandbox's credentials and a clientId.
    pub fn new(sb: &Sandbox) -> Client {
        Client {
            addr: sb.addr(),
            authorization: Some(sb.authorization_header()),
            client_id: Some("3f1c9a52-0000-4000-8000-00000000c0de".into()),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Client {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.send("POST", path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.send("PUT", path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Resp {
        self.send("PATCH", path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, None).await
    }

    pub async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        self.raw(method, path, body, Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("{method} {path}: no response within 20 s"))
    }

    /// Sends a request; `None` when no complete response arrives within `timeout`. A `path` not starting with
    /// `/` is relative to the API root.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        timeout: Duration,
    ) -> Option<Resp> {
        let full = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("{API_ROOT}/{path}")
        };
        let mut req = format!(
            "{method} {full} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if let Some(a) = &self.authorization {
            req.push_str(&format!("Authorization: {a}\r\n"));
        }
        if let Some(c) = &self.client_id {
            req.push_str(&format!("clientId: {c}\r\n"));
        }
        req.push_str("Accept: application/vnd.connectwise.com+json; version=2026.4\r\n");
        for (k, v) in &self.headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        let mut bytes = Vec::new();
        match &body {
            Some((content_type, data)) => {
                req.push_str(&format!(
                    "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                    data.len()
                ));
                bytes.extend_from_slice(req.as_bytes());
                bytes.extend_from_slice(data);
            }
            None => {
                req.push_str("Content-Length: 0\r\n\r\n");
                bytes.extend_from_slice(req.as_bytes());
            }
        }
        let exchange = async {
            let mut stream = TcpStream::connect(self.addr).await.ok()?;
            stream.write_all(&bytes).await.ok()?;
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).await.ok()?;
            parse(&raw)
        };
        tokio::time::timeout(timeout, exchange).await.ok().flatten()
    }
}

fn parse(raw: &[u8]) -> Option<Resp> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body)?;
    }
    Some(Resp {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).ok()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// `path?k=v&…` with the values URL-encoded.
pub fn q(path: &str, params: &[(&str, &str)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    format!("{path}?{}", ser.finish())
}
