//! Outbound HTTP for connectors: the only network access a guest has.
//!
//! One [`HttpClient`] per host, pooled, shared by every call. Each call gets an [`HttpCall`] that
//! applies its instance's policy before anything leaves the host:
//!
//! 1. the call's request budget (`host.max-requests-per-call`) and, on a dry run, GET/HEAD only;
//! 2. the URL's origin (scheme, host, port) must be one of the instance's allowed origins;
//! 3. the address: an IP literal is checked directly; a name is resolved by the client's resolver,
//!    which drops loopback, private, link-local and unspecified addresses (unless the instance has
//!    `host.allow-private-network`), so the check is on the address actually connected to and a
//!    name that later resolves elsewhere (DNS rebinding) gains nothing;
//! 4. headers: the guest cannot set `Authorization`, the credential headers, or hop-by-hop headers;
//!    the host adds the credentials only when the origin is the instance's remote host;
//! 5. redirects are followed only within the same origin (at most five); a redirect elsewhere is
//!    handed back to the guest as the 3xx it is, so credentials never travel to another host;
//! 6. a total timeout per request, and a response-size cap enforced while the body is read (a
//!    declared length over the cap is refused before reading);
//! 7. the instance's request budget (`host.requests-per-minute`, a token bucket shared by all its
//!    calls, and, once a [`SharedBudget`] is attached, by every process working on the same data
//!    folder): a request waits for its turn rather than failing;
//! 8. the response is scrubbed of the host's own credentials before the guest sees it: every
//!    value the host put into a request (the Basic pair and its base64, each credential header's
//!    value, each secret setting) is replaced with `[REDACTED]` in the response's header names,
//!    header values and (whole, already size-capped) body, by the rule in [`super::log`], so a
//!    remote that echoes its request hands the connector nothing it could not read already.
//!
//! A refused or failed request is logged by the host in the call's own log (its budget, its first
//! few requests only, URLs cut): see [`LogSink::request_line`].

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::redirect;
use url::{Host, Url};

use super::address::{AddressClass, classify};
use super::allowed_hosts::Origin;
use super::context::InstanceContext;
use super::log::{Labels, LogSink, Redactor};
use crate::contract::bindings::http::{HttpError, Method, Request, Response};

/// How long connecting to a remote may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Redirects followed within one origin.
const MAX_REDIRECTS: usize = 5;

/// Headers a guest may not set: credentials are the host's, framing is the client's.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "upgrade",
    // A compressed or partial answer could not be scrubbed of the host's credentials (the
    // guest would decompress or join what the host cannot read): the guest cannot ask for one.
    "accept-encoding",
    "range",
    "if-range",
];

/// A name that resolved only to addresses the instance may not reach.
#[derive(Debug, thiserror::Error)]
#[error("{name} resolves to {address}, a {class} address")]
struct RefusedAddress {
    name: String,
    address: IpAddr,
    class: AddressClass,
}

/// Resolves names and keeps only publicly routable addresses.
struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let name = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let (public, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = found
                .into_iter()
                .partition(|a| classify(a.ip()).is_public());
            if let (true, Some(first)) = (public.is_empty(), refused.first()) {
                let refusal = RefusedAddress {
                    name,
                    address: first.ip(),
                    class: classify(first.ip()),
                };
                return Err(Box::new(refusal) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// A request budget kept where every process of one data folder sees it, so `serve` and a CLI push
/// of the same instance share one budget (the remote's rate limit is per API key, not per process).
pub trait SharedBudget: Send + Sync {
    /// Refills `instance`'s bucket (capacity and refill: `per_minute`) for the time passed, then
    /// takes up to `want` tokens from it. Returns how many it took; 0 when none is left.
    fn take_tokens(&self, instance: &str, per_minute: u32, want: u32) -> anyhow::Result<u32>;
}

/// Each instance's request budget (`host.requests-per-minute`): a token bucket that holds up to a
/// minute's worth of requests and refills continuously; a request waits for a token. In memory
/// until a [`SharedBudget`] is attached; then this process takes tokens from the shared bucket a
/// second's worth at a time (one store transaction per chunk, not per request) and spends them
/// locally. Tokens taken and not spent are lost when the process ends: the shared budget errs on
/// the side of sending less.
#[derive(Default)]
struct RequestBudget {
    buckets: std::sync::Mutex<std::collections::HashMap<String, (f64, std::time::Instant)>>,
    shared: std::sync::OnceLock<Arc<dyn SharedBudget>>,
    /// Tokens taken from the shared bucket and not yet spent, per instance.
    reserve: std::sync::Mutex<std::collections::HashMap<String, u32>>,
}

impl RequestBudget {
    async fn acquire(&self, instance: &str, per_minute: u32) {
        let per_minute = per_minute.max(1);
        if let Some(shared) = self.shared.get() {
            match self
                .acquire_shared(shared.clone(), instance, per_minute)
                .await
            {
                Ok(()) => return,
                Err(error) => tracing::warn!(
                    instance,
                    "the shared request budget could not be read ({error:#}); this process counts on its own"
                ),
            }
        }
        self.acquire_local(instance, per_minute).await
    }

    async fn acquire_shared(
        &self,
        shared: Arc<dyn SharedBudget>,
        instance: &str,
        per_minute: u32,
    ) -> anyhow::Result<()> {
        let chunk = (per_minute / 60).clamp(1, 100);
        loop {
            {
                let mut reserve = self.reserve.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(left) = reserve.get_mut(instance).filter(|left| **left > 0) {
                    *left -= 1;
                    return Ok(());
                }
            }
            let (shared, name) = (shared.clone(), instance.to_string());
            let took =
                tokio::task::spawn_blocking(move || shared.take_tokens(&name, per_minute, chunk))
                    .await??;
            if took > 0 {
                let mut reserve = self.reserve.lock().unwrap_or_else(|p| p.into_inner());
                *reserve.entry(instance.to_string()).or_default() += took - 1;
                return Ok(());
            }
            // Empty: one token comes back every 60/per_minute seconds.
            tokio::time::sleep(Duration::from_secs_f64(60.0 / f64::from(per_minute))).await;
        }
    }

    async fn acquire_local(&self, instance: &str, per_minute: u32) {
        let rate = f64::from(per_minute) / 60.0;
        loop {
            let wait = {
                let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
                let now = std::time::Instant::now();
                let capacity = f64::from(per_minute);
                let (tokens, last) = buckets
                    .entry(instance.to_string())
                    .or_insert((capacity, now));
                *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(capacity);
                *last = now;
                if *tokens >= 1.0 {
                    *tokens -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - *tokens) / rate)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// The host's pooled HTTP clients: one that reaches only public addresses, one for instances that
/// allow private networks.
#[derive(Clone)]
pub struct HttpClient {
    public_only: reqwest::Client,
    any_address: reqwest::Client,
    budget: Arc<RequestBudget>,
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

impl HttpClient {
    pub fn new() -> anyhow::Result<Self> {
        static PROVIDER: Once = Once::new();
        PROVIDER.call_once(|| {
            // reqwest is built without a default crypto provider (to avoid a second TLS stack).
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let builder = || {
            reqwest::Client::builder()
                .no_proxy()
                .connect_timeout(CONNECT_TIMEOUT)
                .pool_idle_timeout(Duration::from_secs(60))
                .user_agent(concat!("bss-host/", env!("CARGO_PKG_VERSION")))
                .retry(reqwest::retry::never())
                .referer(false)
                .redirect(redirect::Policy::custom(|attempt| {
                    let previous = attempt.previous().last().cloned();
                    match previous {
                        Some(prev)
                            if attempt.previous().len() <= MAX_REDIRECTS
                                && same_origin(&prev, attempt.url()) =>
                        {
                            attempt.follow()
                        }
                        _ => attempt.stop(),
                    }
                }))
        };
        Ok(HttpClient {
            public_only: builder()
                .dns_resolver(Arc::new(PublicOnlyResolver))
                .build()?,
            any_address: builder().build()?,
            budget: Arc::default(),
        })
    }

    /// Makes every instance's request budget shared with the other processes that attach the
    /// same `shared` (the store of one data folder). Once per client; later calls are ignored.
    pub fn share_budget(&self, shared: Arc<dyn SharedBudget>) {
        let _ = self.budget.shared.set(shared);
    }
}

/// One call's view of outbound HTTP: the instance's policy and the call's request count.
pub struct HttpCall {
    client: HttpClient,
    context: Arc<InstanceContext>,
    /// The call's log, where the host's lines about its requests go.
    log: Arc<Mutex<LogSink>>,
    /// Whether this call made its log (and ends it when dropped).
    owns_log: bool,
    /// The redactor for response header names, which arrive lower-cased.
    header_names: Redactor,
    dry_run: bool,
    sent: u32,
}

impl HttpCall {
    /// A call with a log of its own (budget `host.log-bytes-per-call`), ended when it is dropped.
    pub fn new(
        client: HttpClient,
        context: Arc<InstanceContext>,
        labels: Arc<Labels>,
        dry_run: bool,
    ) -> Self {
        let log = LogSink::of_call(labels, &context);
        let mut call = Self::with_log(client, context, Arc::new(Mutex::new(log)), dry_run);
        call.owns_log = true;
        call
    }

    /// A call whose host lines go to `log`, the log of the component call it belongs to.
    pub fn with_log(
        client: HttpClient,
        context: Arc<InstanceContext>,
        log: Arc<Mutex<LogSink>>,
        dry_run: bool,
    ) -> Self {
        HttpCall {
            header_names: context.redactor().lowercase(),
            client,
            context,
            log,
            owns_log: false,
            dry_run,
            sent: 0,
        }
    }

    /// Starts another call of a kept instance: its context (the same grants, see
    /// `InstanceContext::fingerprint`), its own dry-run flag and a fresh request budget.
    pub fn begin_call(&mut self, context: Arc<InstanceContext>, dry_run: bool) {
        self.header_names = context.redactor().lowercase();
        self.context = context;
        self.dry_run = dry_run;
        self.sent = 0;
    }

    /// Requests the guest has sent (or tried to send) in this call.
    pub fn sent(&self) -> u32 {
        self.sent
    }

    pub async fn send(&mut self, request: Request) -> Result<Response, HttpError> {
        let url = request.url.clone();
        let result = self.checked_send(request).await;
        if let Ok(response) = &result {
            crate::metrics::remote_response(self.context.instance(), response.status);
        }
        match result {
            Ok(response) => match unscrubbable(&response, self.context.redactor()) {
                Some(reason) => Err(HttpError::Transport(reason)),
                None => Ok(scrub(response, self.context.redactor(), &self.header_names)),
            },
            Err(error) => {
                let refused = matches!(
                    error,
                    HttpError::HostNotAllowed(_)
                        | HttpError::PrivateAddress(_)
                        | HttpError::RequestLimit(_)
                        | HttpError::WriteInDryRun
                );
                self.log
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .request_line(refused, &url, &format!("{error:?}"));
                Err(error)
            }
        }
    }

    async fn checked_send(&mut self, request: Request) -> Result<Response, HttpError> {
        let options = self.context.options().clone();
        self.sent += 1;
        if self.sent > options.max_requests_per_call {
            return Err(HttpError::RequestLimit(options.max_requests_per_call));
        }
        if self.dry_run && !matches!(request.method, Method::Get | Method::Head) {
            return Err(HttpError::WriteInDryRun);
        }
        let url = Url::parse(&request.url)
            .map_err(|e| HttpError::InvalidRequest(format!("url {:?}: {e}", request.url)))?;
        let origin = Origin::of_url(&url)
            .map_err(|e| HttpError::InvalidRequest(format!("url {:?}: {e}", request.url)))?;
        let allowed = self.context.allowed_hosts();
        if !allowed.allows(&origin) {
            return Err(HttpError::HostNotAllowed(format!(
                "{origin} is not among this instance's allowed hosts ({allowed})"
            )));
        }
        let literal = match &origin.host {
            Host::Ipv4(ip) => Some(IpAddr::V4(*ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(*ip)),
            Host::Domain(_) => None,
        };
        if let Some(ip) = literal {
            let class = classify(ip);
            if !class.is_public() && !options.allow_private_network {
                return Err(private_refusal(&format!("{ip} is a {class} address")));
            }
        }

        let headers = self.headers(&request.headers, &origin)?;
        self.client
            .budget
            .acquire(self.context.instance(), options.requests_per_minute)
            .await;
        let client = if options.allow_private_network {
            &self.client.any_address
        } else {
            &self.client.public_only
        };
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Head => reqwest::Method::HEAD,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut builder = client.request(method, url).headers(headers);
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let exchange = async {
            let response = builder.send().await.map_err(translate)?;
            read_response(response, options.max_response_bytes).await
        };
        match tokio::time::timeout(options.request_timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::Timeout(format!(
                "no complete response within {:?}",
                options.request_timeout
            ))),
        }
    }

    fn headers(&self, given: &[(String, String)], origin: &Origin) -> Result<HeaderMap, HttpError> {
        let credentials = self.context.credentials();
        let mut headers = HeaderMap::new();
        for (name, value) in given {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                HttpError::InvalidRequest(format!("{name:?} is not a valid header name"))
            })?;
            let reserved = RESERVED_HEADERS.contains(&name.as_str())
                || credentials.is_some_and(|c| c.headers.iter().any(|(n, _)| *n == name));
            if reserved {
                continue;
            }
            let value = HeaderValue::from_str(value).map_err(|_| {
                HttpError::InvalidRequest(format!(
                    "the value of header {name} has characters a header may not hold"
                ))
            })?;
            headers.append(name, value);
        }
        if let Some(credentials) = credentials.filter(|c| c.origin == *origin) {
            for (name, value) in &credentials.headers {
                headers.insert(name.clone(), value.clone());
            }
        }
        Ok(headers)
    }
}

impl Drop for HttpCall {
    fn drop(&mut self) {
        if self.owns_log {
            self.log.lock().unwrap_or_else(|p| p.into_inner()).finish();
        }
    }
}

/// Why a response cannot be scrubbed, when the host has values to scrub: a body the remote
/// compressed or sent in part anyway (the host reads bytes, not what they decode to).
fn unscrubbable(response: &Response, redactor: &Redactor) -> Option<String> {
    if redactor.is_empty() {
        return None;
    }
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_ascii_lowercase())
    };
    if let Some(encoding) = header("content-encoding").filter(|e| e != "identity") {
        return Some(format!(
            "the response is encoded ({encoding}), so the host cannot scrub its credentials from it; refused"
        ));
    }
    if response.status == 206 || header("content-range").is_some() {
        return Some(
            "the response is partial (206), so the host cannot scrub its credentials from it; refused"
                .to_string(),
        );
    }
    None
}

/// The response with every value the host put into requests replaced (see the module doc).
fn scrub(response: Response, redactor: &Redactor, header_names: &Redactor) -> Response {
    if redactor.is_empty() {
        return response;
    }
    Response {
        status: response.status,
        headers: response
            .headers
            .into_iter()
            .map(|(name, value)| {
                (
                    header_names.redact(&name).into_owned(),
                    redactor.redact(&value).into_owned(),
                )
            })
            .collect(),
        body: redactor.redact_bytes(response.body),
    }
}

fn private_refusal(detail: &str) -> HttpError {
    HttpError::PrivateAddress(format!(
        "{detail}; this instance may reach only public addresses unless host.allow-private-network is on"
    ))
}

/// Reads the body chunk by chunk, dropping the connection as soon as it passes `cap` bytes.
async fn read_response(mut response: reqwest::Response, cap: u64) -> Result<Response, HttpError> {
    if response.content_length().is_some_and(|len| len > cap) {
        return Err(HttpError::ResponseTooLarge(cap));
    }
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).to_string(),
            )
        })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(translate)? {
        if body.len() as u64 + chunk.len() as u64 > cap {
            return Err(HttpError::ResponseTooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Turns a client error into the guest's error, finding a refused address in its causes.
fn translate(error: reqwest::Error) -> HttpError {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(&error);
    let mut chain = Vec::new();
    while let Some(e) = cause {
        if let Some(refused) = e.downcast_ref::<RefusedAddress>() {
            return private_refusal(&refused.to_string());
        }
        let text = e.to_string();
        if chain.last() != Some(&text) {
            chain.push(text);
        }
        cause = e.source();
    }
    let detail = chain.join(": ");
    if error.is_timeout() {
        HttpError::Timeout(detail)
    } else {
        HttpError::Transport(detail)
    }
}
