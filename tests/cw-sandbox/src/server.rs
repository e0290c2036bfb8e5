//! The HTTP side. Owns the accept loop (hyper HTTP/1.1 on a tokio listener), request handling in order — record the
//! request, apply injected faults (latency, 429, 5xx), check HTTP Basic credentials and the `clientId` header, route
//! the path, run the operation, then the post-processing faults (malformed body, stalled POST) — and the response
//! shapes: JSON with `application/json; charset=utf-8`, 201 with the created record, 204 on delete, `Link` on lists,
//! and `GET /login/companyinfo/{companyId}`, which needs no credentials and is never faulted. Likewise
//! `GET /callbacks/keys/{keyId}`, the signing keys of callback deliveries. Each stored write is handed to
//! [`callbacks::notify`] once it is stored.
//!
//! A missing or empty `clientId` header is refused with 401 `Unauthorized` and a message naming the header: the
//! real API's exact answer is undocumented, and a 401 is what a client must treat as "fix the configuration".

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::callbacks::{self, Action, CallbackState, Change};
use crate::clock::Clock;
use crate::conditions::{self, Expr};
use crate::error::ApiError;
use crate::faults::{Decision, FaultState};
use crate::paging;
use crate::resources::{self, Resource, Route, Target};
use crate::schema;
use crate::store::{self, Store};
use crate::write::{self, Stamp};
use crate::{SandboxConfig, SeenRequest};

/// Root of the REST API.
pub const API_ROOT: &str = "/v4_6_release/apis/3.0";
const JSON: &str = "application/json; charset=utf-8";

/// Everything the server and the test handle share.
pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub clock: Clock,
    pub config: SandboxConfig,
    pub addr: SocketAddr,
    /// The sandbox's runtime, where callback deliveries run (whoever made the change).
    pub runtime: tokio::runtime::Handle,
    /// Woken whenever a callback delivery finishes.
    pub delivered: tokio::sync::Notify,
}

pub(crate) struct State {
    pub store: Store,
    pub faults: FaultState,
    pub seen: RequestLog,
    pub api_requests: u64,
    pub callbacks: CallbackState,
}

/// How many requests [`Sandbox::requests`](crate::Sandbox::requests) keeps: enough for any test to inspect, yet
/// bounded for benchmarks that send tens of thousands (each entry holds its parsed body).
pub const KEPT_REQUESTS: usize = 10_000;

/// The latest [`KEPT_REQUESTS`] requests, oldest first. Each request gets a number when it arrives, so that its
/// status can be filled in once it is answered — if its entry is still there.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    entries: VecDeque<SeenRequest>,
    /// Number of the oldest entry kept (= how many were dropped or cleared before it).
    first: u64,
}

impl RequestLog {
    /// Records a request; returns its number.
    fn push(&mut self, seen: SeenRequest) -> u64 {
        if self.entries.len() == KEPT_REQUESTS {
            self.entries.pop_front();
            self.first += 1;
        }
        self.entries.push_back(seen);
        self.first + self.entries.len() as u64 - 1
    }

    fn get_mut(&mut self, number: u64) -> Option<&mut SeenRequest> {
        let index = usize::try_from(number.checked_sub(self.first)?).ok()?;
        self.entries.get_mut(index)
    }

    pub(crate) fn to_vec(&self) -> Vec<SeenRequest> {
        self.entries.iter().cloned().collect()
    }

    /// Forgets every entry; requests still being answered stay forgotten.
    pub(crate) fn clear(&mut self) {
        self.first += self.entries.len() as u64;
        self.entries.clear();
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn api_url(&self) -> String {
        format!("http://{}{API_ROOT}", self.addr)
    }
}

/// Accepts connections until `shutdown` fires.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(shared.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

type Resp = Response<Full<Bytes>>;

fn respond(status: u16, body: Option<&Value>, extra: &[(header::HeaderName, String)]) -> Resp {
    let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let mut resp = Response::new(Full::new(bytes));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if body.is_some() {
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    }
    for (name, value) in extra {
        if let Ok(v) = HeaderValue::from_str(value) {
            resp.headers_mut().append(name.clone(), v);
        }
    }
    resp
}

fn error(e: &ApiError) -> Resp {
    respond(e.status, Some(&e.body()), &[])
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().map(String::from);
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let origin = format!(
        "http://{}",
        header_str(&parts.headers, "host").map_or_else(|| shared.addr.to_string(), String::from)
    );
    let is_api = path == API_ROOT || path.starts_with(&format!("{API_ROOT}/"));
    let seen = SeenRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        query: raw_query.clone(),
        client_id: header_str(&parts.headers, "clientid").map(String::from),
        authorization: parts.headers.contains_key(header::AUTHORIZATION),
        pagination_type: header_str(&parts.headers, "pagination-type").map(String::from),
        body: serde_json::from_slice(&body).ok(),
        status: None,
    };
    let (number, decision) = {
        let mut state = shared.lock();
        let number = state.seen.push(seen);
        let decision = if is_api {
            state.api_requests += 1;
            state.faults.decide(parts.method == Method::POST)
        } else {
            Decision::default()
        };
        (number, decision)
    };

    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    let resp = if let Some(company) = path.strip_prefix("/login/companyinfo/") {
        company_info(&shared, &parts.method, company, &origin)
    } else if let Some(key_id) = path.strip_prefix(callbacks::KEYS_PATH) {
        signing_key(&shared, &parts.method, key_id)
    } else if !is_api {
        error(&ApiError::not_found(format!("No resource matches {path}")))
    } else if let Some(secs) = decision.rate_limited {
        let body = json!({"code": "TooManyRequests", "message": "Request rate limit exceeded; retry after the Retry-After delay."});
        respond(429, Some(&body), &[(header::RETRY_AFTER, secs.to_string())])
    } else if let Some(status) = decision.server_error {
        let body = json!({"code": "ConnectWiseApi", "message": "An error occurred on the server (injected by cw-sandbox)."});
        respond(status, Some(&body), &[])
    } else {
        let result = authenticate(&shared.config, &parts.headers).and_then(|()| {
            let rel = path
                .strip_prefix(API_ROOT)
                .unwrap_or_default()
                .trim_start_matches('/');
            let query: Vec<(String, String)> = raw_query
                .as_deref()
                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default();
            let ctx = Ctx {
                shared: &shared,
                method: &parts.method,
                headers: &parts.headers,
                query: &query,
                body: &body,
                api_url: format!("{origin}{API_ROOT}"),
                list_url: format!("{origin}{path}"),
            };
            dispatch(&ctx, rel)
        });
        match result {
            Ok(r) => r,
            Err(e) => error(&e),
        }
    };
    let resp = if decision.malformed {
        malform(resp).await
    } else {
        resp
    };
    // The server's own clock, as every HTTP server says it (pinned with the sandbox's clock).
    let mut resp = resp;
    if let Ok(date) = HeaderValue::from_str(&crate::clock::http_date(shared.clock.now())) {
        resp.headers_mut().insert(header::DATE, date);
    }
    let status = resp.status().as_u16();
    tracing::info!(method = %parts.method, %path, status, "cw-sandbox request");
    if let Some(s) = shared.lock().seen.get_mut(number) {
        s.status = (!decision.stall).then_some(status);
    }
    if decision.stall {
        tracing::info!(%path, "cw-sandbox: holding this POST response (stall_post fault)");
        std::future::pending::<()>().await;
    }
    Ok(resp)
}

/// 200 with the first half of the real body: invalid JSON.
async fn malform(resp: Resp) -> Resp {
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let cut = if body.len() < 4 {
        Bytes::from_static(b"{\"id\":")
    } else {
        body.slice(..body.len() / 2)
    };
    let mut out = Response::new(Full::new(cut));
    out.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    out
}

fn company_info(shared: &Shared, method: &Method, company: &str, origin: &str) -> Resp {
    let company = company.trim_end_matches('/');
    if method != Method::GET {
        return respond(
            405,
            Some(&json!({"code": "MethodNotAllowed", "message": "Only GET is allowed"})),
            &[],
        );
    }
    if !company.eq_ignore_ascii_case(&shared.config.company_id) {
        return error(&ApiError::not_found(format!(
            "Company '{company}' was not found"
        )));
    }
    let body = json!({
        "CompanyName": shared.config.company_name,
        "Codebase": "v4_6_release/",
        "VersionCode": shared.config.version,
        "VersionNumber": format!("v4.6.{}", shared.config.version.trim_start_matches('v')),
        "CompanyID": shared.config.company_id,
        "IsCloud": false,
        "SiteUrl": origin.trim_start_matches("http://"),
        "AllowAccess": true,
    });
    respond(200, Some(&body), &[])
}

/// `GET /callbacks/keys/{keyId}`: `{"signing_key": "..."}` for a key the sandbox made (rotated ones included).
fn signing_key(shared: &Shared, method: &Method, key_id: &str) -> Resp {
    if method != Method::GET {
        return respond(
            405,
            Some(&json!({"code": "MethodNotAllowed", "message": "Only GET is allowed"})),
            &[(header::ALLOW, "GET".to_string())],
        );
    }
    let key_id = key_id.trim_end_matches('/');
    match shared.lock().callbacks.key(key_id) {
        Some(key) => respond(200, Some(&json!({ "signing_key": key.key })), &[]),
        None => error(&ApiError::not_found(format!(
            "Signing key '{key_id}' was not found"
        ))),
    }
}

/// HTTP Basic `{companyId}+{publicKey}:{privateKey}`, then a non-empty `clientId` header.
fn authenticate(config: &SandboxConfig, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(auth) = header_str(headers, "authorization") else {
        return Err(ApiError::unauthorized(
            "Authorization is required: HTTP Basic with user {companyId}+{publicKey} and password {privateKey}",
        ));
    };
    let decoded = auth
        .strip_prefix("Basic ")
        .or_else(|| auth.strip_prefix("basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok());
    let good = decoded.is_some_and(|d| {
        let expected_user = format!("{}+{}", config.company_id, config.public_key);
        match d.split_once(':') {
            Some((user, pass)) => {
                user.eq_ignore_ascii_case(&expected_user) && pass == config.private_key
            }
            None => false,
        }
    });
    if !good {
        return Err(ApiError::unauthorized(
            "Incorrect company, public key or private key",
        ));
    }
    match header_str(headers, "clientid").map(str::trim) {
        Some(id) if !id.is_empty() => Ok(()),
        _ => Err(ApiError::unauthorized(
            "A clientId header is required on every API request (https://developer.connectwise.com/ClientID)",
        )),
    }
}

struct Ctx<'a> {
    shared: &'a Arc<Shared>,
    method: &'a Method,
    headers: &'a HeaderMap,
    query: &'a [(String, String)],
    body: &'a Bytes,
    api_url: String,
    list_url: String,
}

fn dispatch(ctx: &Ctx<'_>, rel: &str) -> Result<Resp, ApiError> {
    if rel.trim_matches('/').eq_ignore_ascii_case("system/info") {
        return system_info(ctx);
    }
    let route = resources::route(rel)
        .ok_or_else(|| ApiError::not_found(format!("No resource matches /{rel}")))?;
    let res = route.resource;
    let method = ctx.method.clone();
    let allowed = match (route.target, res.writable) {
        (Target::List, true) => "GET, POST",
        (Target::Item(_), true) => "GET, PUT, PATCH, DELETE",
        _ => "GET",
    };
    let not_allowed = || {
        Ok(respond(
            405,
            Some(
                &json!({"code": "MethodNotAllowed", "message": format!("{method} is not allowed on /{rel}")}),
            ),
            &[(header::ALLOW, allowed.to_string())],
        ))
    };
    let mut state = ctx.shared.lock();
    let stamp_user = ctx.shared.config.api_member.clone();
    let now = ctx.shared.clock.now();
    let stamp = Stamp {
        now,
        user: &stamp_user,
    };
    check_parent(&state.store, &route)?;
    let store = &mut state.store;
    // The stored change, for callbacks.
    let mut change = None;
    let mut changed = |id: i64, action: Action| {
        change = Some(Change {
            res,
            id,
            action,
            parent: route.parent_id,
            user: &stamp_user,
        });
    };
    let result = match (method.clone(), route.target) {
        (Method::GET, Target::List) => list(ctx, store, &route),
        (Method::GET, Target::Count) => {
            let model = schema::model(res.schema);
            let cond = paging::parse_conditions(ctx.query, model)?;
            let select = Selection::new(store, res, &ctx.api_url, cond.as_ref(), &[]);
            let n = store
                .scope(res, route.parent_id, Bound::Unbounded)
                .filter(|(id, rec)| select.check(*id, rec).is_some())
                .count();
            Ok(respond(200, Some(&json!({ "count": n })), &[]))
        }
        (Method::GET, Target::Item(id)) => {
            let rec = item(store, &route, id)?;
            let rendered = store.render(res, &rec, &ctx.api_url);
            let shown = match paging::fields_param(ctx.query) {
                Some(f) => paging::project(&rendered, &f),
                None => rendered,
            };
            Ok(respond(200, Some(&shown), &[]))
        }
        (Method::POST, Target::List) if res.writable => {
            let body = json_body(ctx, res)?;
            let id = write::create(store, res, route.parent_id, body, stamp)?;
            changed(id, Action::Added);
            let rec = store.get(res.name, id).cloned().unwrap_or_default();
            Ok(respond(
                201,
                Some(&store.render(res, &rec, &ctx.api_url)),
                &[],
            ))
        }
        (Method::PUT, Target::Item(id)) if res.writable => {
            item(store, &route, id)?;
            let body = json_body(ctx, res)?;
            write::replace(store, res, route.parent_id, id, body, stamp)?;
            changed(id, Action::Updated);
            let rec = store.get(res.name, id).cloned().unwrap_or_default();
            Ok(respond(
                200,
                Some(&store.render(res, &rec, &ctx.api_url)),
                &[],
            ))
        }
        (Method::PATCH, Target::Item(id)) if res.writable => {
            item(store, &route, id)?;
            let ops = json_body(ctx, res)?;
            write::patch(store, res, route.parent_id, id, &ops, &ctx.api_url, stamp)?;
            changed(id, Action::Updated);
            let rec = store.get(res.name, id).cloned().unwrap_or_default();
            Ok(respond(
                200,
                Some(&store.render(res, &rec, &ctx.api_url)),
                &[],
            ))
        }
        (Method::DELETE, Target::Item(id)) if res.writable => {
            item(store, &route, id)?;
            write::delete(store, res, id, stamp)?;
            changed(id, Action::Deleted);
            Ok(respond(204, None, &[]))
        }
        _ => not_allowed(),
    };
    if let Some(change) = change {
        callbacks::notify(ctx.shared, &mut state, change);
    }
    result
}

/// `GET system/info`: the server's version (`v2026.4.` + a build number), whether it is cloud-hosted, its time zone.
fn system_info(ctx: &Ctx<'_>) -> Result<Resp, ApiError> {
    if ctx.method != Method::GET {
        return Ok(respond(
            405,
            Some(
                &json!({"code": "MethodNotAllowed", "message": format!("{} is not allowed on /system/info", ctx.method)}),
            ),
            &[(header::ALLOW, "GET".to_string())],
        ));
    }
    let body = json!({
        "version": format!("{}.100001", ctx.shared.config.version),
        "isCloud": false,
        "serverTimeZone": "Eastern Standard Time",
        "cloudRegion": "NA",
    });
    Ok(respond(200, Some(&body), &[]))
}

/// A sub-resource's parent must exist.
fn check_parent(store: &Store, route: &Route) -> Result<(), ApiError> {
    if let (Some(parent), Some(pid)) = (route.resource.parent, route.parent_id)
        && !store.exists(parent.resource, pid)
    {
        let parent_res = resources::by_name(parent.resource).expect("parent resource");
        return Err(write::not_found(parent_res, pid));
    }
    Ok(())
}

/// The stored record `id` of the route (under its parent, for sub-resources).
fn item(store: &Store, route: &Route, id: i64) -> Result<Value, ApiError> {
    let res = route.resource;
    store
        .get(res.name, id)
        .filter(|rec| route.parent_id.is_none() || store::parent_of(res, rec) == route.parent_id)
        .cloned()
        .ok_or_else(|| write::not_found(res, id))
}

/// A record on its way into a list answer: its id, the stored record, and its rendering once made.
struct Candidate<'a> {
    id: i64,
    stored: &'a Value,
    rendered: Option<Value>,
}

impl Candidate<'_> {
    /// What conditions and ordering read: the rendering, or the stored record when that reads the same.
    fn doc(&self) -> &Value {
        self.rendered.as_ref().unwrap_or(self.stored)
    }
}

/// Picks a list's records by its conditions. A record is rendered before the test only when the conditions or the
/// ordering read a field rendering fills in (see [`store::paths_read_stored`]); otherwise only the records returned
/// are rendered, so a list or count costs a walk over the stored records rather than a rendering of each.
struct Selection<'a> {
    store: &'a Store,
    res: &'static Resource,
    api_url: &'a str,
    conditions: Option<&'a Expr>,
    /// Whether anything reads the records before they are returned.
    reads: bool,
    render_first: bool,
}

impl<'a> Selection<'a> {
    fn new(
        store: &'a Store,
        res: &'static Resource,
        api_url: &'a str,
        cond: Option<&'a Expr>,
        order: &[&[String]],
    ) -> Selection<'a> {
        let paths = || {
            cond.map(conditions::paths)
                .unwrap_or_default()
                .into_iter()
                .chain(order.iter().copied())
        };
        Selection {
            store,
            res,
            api_url,
            conditions: cond,
            reads: paths().next().is_some(),
            render_first: !store::paths_read_stored(res, paths()),
        }
    }

    /// The record as a candidate if it satisfies the conditions.
    fn check(&self, id: i64, stored: &'a Value) -> Option<Candidate<'a>> {
        let render = self.render_first || (self.reads && store::has_top_null(stored));
        let candidate = Candidate {
            id,
            stored,
            rendered: render.then(|| self.store.render(self.res, stored, self.api_url)),
        };
        self.conditions
            .is_none_or(|c| conditions::eval(c, candidate.doc()))
            .then_some(candidate)
    }

    /// The record as the answer shows it.
    fn finish(&self, candidate: Candidate<'_>) -> Value {
        candidate
            .rendered
            .unwrap_or_else(|| self.store.render(self.res, candidate.stored, self.api_url))
    }
}

fn list(ctx: &Ctx<'_>, store: &Store, route: &Route) -> Result<Resp, ApiError> {
    let res = route.resource;
    let forward_only = header_str(ctx.headers, "pagination-type")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("forward-only"));
    let params = paging::parse(ctx.query, forward_only, schema::model(res.schema))?;
    let order: Vec<&[String]> = params.order_paths().collect();
    let select = Selection::new(store, res, &ctx.api_url, params.conditions.as_ref(), &order);
    let page = if params.forward_only() {
        // Records come in id order, so the walk stops one past the page instead of testing every record.
        let mut matches = Vec::new();
        let after = Bound::Excluded(params.page_id());
        for (id, stored) in store.scope(res, route.parent_id, after) {
            if let Some(candidate) = select.check(id, stored) {
                matches.push(candidate);
                if matches.len() > params.page_size() {
                    break;
                }
            }
        }
        paging::forward_page(matches, |c| c.id, &params, &ctx.list_url, ctx.query)
    } else {
        // Numbered pages need every match: the `last` link counts them.
        let matches: Vec<Candidate<'_>> = store
            .scope(res, route.parent_id, Bound::Unbounded)
            .filter_map(|(id, stored)| select.check(id, stored))
            .collect();
        paging::numbered_page(matches, Candidate::doc, &params, &ctx.list_url, ctx.query)
    };
    let items: Vec<Value> = page
        .items
        .into_iter()
        .map(|c| params.shape(select.finish(c)))
        .collect();
    let extra: Vec<(header::HeaderName, String)> =
        page.link.into_iter().map(|l| (header::LINK, l)).collect();
    Ok(respond(200, Some(&Value::Array(items)), &extra))
}

/// The request body as JSON: 415 unless it is declared JSON, 400 unless it parses.
fn json_body(ctx: &Ctx<'_>, res: &Resource) -> Result<Value, ApiError> {
    let content_type = header_str(ctx.headers, "content-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    if !(mime == "application/json"
        || (mime.starts_with("application/") && mime.ends_with("+json")))
    {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("Content-Type must be application/json, not '{content_type}'"),
        ));
    }
    serde_json::from_slice(ctx.body).map_err(|e| {
        ApiError::new(
            400,
            "InvalidObject",
            format!(
                "{} object is invalid: the request body is not valid JSON ({e})",
                res.object
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(path: &str) -> SeenRequest {
        SeenRequest {
            method: "GET".into(),
            path: path.into(),
            query: None,
            client_id: None,
            authorization: false,
            pagination_type: None,
            body: None,
            status: None,
        }
    }

    #[test]
    fn the_request_log_keeps_the_latest() {
        let mut log = RequestLog::default();
        let first = log.push(seen("/0"));
        for i in 1..=KEPT_REQUESTS {
            log.push(seen(&format!("/{i}")));
        }
        let kept = log.to_vec();
        assert_eq!(kept.len(), KEPT_REQUESTS);
        assert_eq!(kept[0].path, "/1");
        assert_eq!(kept[KEPT_REQUESTS - 1].path, format!("/{KEPT_REQUESTS}"));
        // A request answered after its entry was dropped changes nothing.
        assert!(log.get_mut(first).is_none());
        let last = log.push(seen("/last"));
        log.get_mut(last).unwrap().status = Some(200);
        assert_eq!(log.to_vec().last().unwrap().status, Some(200));
        // Nor does one answered after a clear, even once new requests fill the log again.
        log.clear();
        let after = log.push(seen("/after"));
        assert!(log.get_mut(last).is_none());
        assert_eq!(log.get_mut(after).unwrap().path, "/after");
    }
}
