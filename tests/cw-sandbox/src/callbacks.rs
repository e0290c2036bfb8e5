//! Callbacks (ConnectWise webhooks). Owns what a registration of `system/callbacks` (stored and validated like any
//! other resource) makes happen: which record changes a callback's `type` and `level` cover, the message ConnectWise
//! POSTs for each (`MessageId`, `FromUrl`, `CompanyId`, `MemberId`, `Action`, `Type`, `ID`, `ProductInstanceId`,
//! `PartnerId`, `Entity`, `Metadata.key_url`, `CallbackObjectRecId`) signed in `x-content-signature`, its delivery
//! over HTTP/1.1 spawned on the sandbox's runtime once the change is stored (never holding up the request that made
//! it), the signing keys served at `GET /callbacks/keys/{keyId}`, delivery faults ([`CallbackFaults`]) and the log of
//! deliveries ([`Delivery`]) that tests read and wait on.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use ring::rand::SecureRandom as _;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::resources::{self, Resource};
use crate::server::{Shared, State};

/// Callback `type` → the resource whose records it covers. The connector registers exactly these strings; others
/// (`ticket`, …) are accepted but never fire.
pub const TYPES: &[(&str, &str)] = &[
    ("company", resources::COMPANIES),
    ("contact", resources::CONTACTS),
    ("agreement", resources::AGREEMENTS),
    ("invoice", resources::INVOICES),
    ("product", resources::CATALOG),
];

/// Accepted `level`s (case-insensitive). `owner` covers every record of the type, `recid` only record `objectId`;
/// the others are accepted but never fire (the sandbox has no boards, territories, …).
pub const LEVELS: &[&str] = &["owner", "recid", "company", "board", "status", "territory"];

/// Path (outside the API root, without credentials) where a delivery's `Metadata.key_url` points: `{base}{KEYS_PATH}{keyId}`.
pub const KEYS_PATH: &str = "/callbacks/keys/";

/// Header carrying a delivery's signature; see [`sign`].
pub const SIGNATURE_HEADER: &str = "x-content-signature";

/// How long one delivery attempt may take (connect, send, response head and body).
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many deliveries [`Sandbox::deliveries`](crate::Sandbox::deliveries) keeps (the latest ones).
pub const KEPT_DELIVERIES: usize = 10_000;

/// What happened to the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Added,
    Updated,
    Deleted,
}

impl Action {
    /// `added`, `updated` or `deleted`, as in a delivery's `Action`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Added => "added",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
        }
    }
}

/// What to break in deliveries. `CallbackFaults::default()` breaks nothing. Counters start when faults are set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallbackFaults {
    /// Deliver nothing (each message is still logged, as dropped).
    pub drop_all: bool,
    /// Drop every Nth message (counted from when faults were set; one message = one change for one callback).
    pub drop_every: Option<u32>,
    /// Send each message that is not dropped `1 + repeat` times, one after the other, with the same `MessageId`,
    /// body and signature.
    pub repeat: u32,
}

impl CallbackFaults {
    /// No faults.
    pub fn none() -> CallbackFaults {
        CallbackFaults::default()
    }

    pub fn with_drop_all(mut self) -> CallbackFaults {
        self.drop_all = true;
        self
    }

    pub fn with_drop_every(mut self, n: u32) -> CallbackFaults {
        self.drop_every = Some(n);
        self
    }

    pub fn with_repeat(mut self, repeat: u32) -> CallbackFaults {
        self.repeat = repeat;
        self
    }
}

/// One delivery attempt (or one dropped message), as the log shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The callback's `url`.
    pub url: String,
    pub message_id: String,
    /// `added`, `updated` or `deleted`.
    pub action: String,
    /// The callback's `type` (the delivery's `Type`).
    pub kind: String,
    /// The record id (the delivery's `ID`).
    pub id: i64,
    /// The callback's id (the delivery's `CallbackObjectRecId`).
    pub callback_id: i64,
    /// 0 for the first sending of a message, 1… for the repeats of [`CallbackFaults::repeat`].
    pub attempt: u32,
    /// Not sent at all (a [`CallbackFaults`] drop).
    pub dropped: bool,
    /// The receiver's answer; `None` while in flight, when dropped, or when the attempt failed.
    pub status: Option<u16>,
    /// Why the attempt failed (connection refused, timeout, an `https` URL, …).
    pub error: Option<String>,
}

impl Delivery {
    /// Dropped, answered, or failed: nothing more will happen to it.
    pub fn finished(&self) -> bool {
        self.dropped || self.status.is_some() || self.error.is_some()
    }
}

/// A signing key: the `signing_key` that `GET {base}/callbacks/keys/{id}` answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKey {
    pub id: String,
    pub key: String,
}

/// `x-content-signature` of `body`: base64(HMAC-SHA256(key = SHA-256(signing_key), body)).
pub fn sign(signing_key: &str, body: &[u8]) -> String {
    let tag = ring::hmac::sign(&hmac_key(signing_key), body);
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// Whether `signature` is the [`sign`]ature of `body` under `signing_key` (compared in constant time).
pub fn verify(signing_key: &str, body: &[u8], signature: &str) -> bool {
    let Ok(tag) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    ring::hmac::verify(&hmac_key(signing_key), body, &tag).is_ok()
}

fn hmac_key(signing_key: &str) -> ring::hmac::Key {
    let digest = ring::digest::digest(&ring::digest::SHA256, signing_key.as_bytes());
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, digest.as_ref())
}

/// Whether `url` is an absolute `http://` or `https://` URL with a host (what a registration's `url` must be).
pub(crate) fn is_absolute_http_url(url: &str) -> bool {
    if url.chars().any(char::is_whitespace) {
        return false;
    }
    let Ok(uri) = url.parse::<Uri>() else {
        return false;
    };
    let scheme_ok = uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"));
    scheme_ok && uri.host().is_some_and(|h| !h.is_empty())
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source works");
    bytes
}

/// A random (version 4) UUID, as ConnectWise spells message ids.
fn uuid() -> String {
    let mut b: [u8; 16] = random_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn new_key() -> SigningKey {
    let key: [u8; 32] = random_bytes();
    SigningKey {
        id: uuid(),
        key: base64::engine::general_purpose::STANDARD.encode(key),
    }
}

/// The latest [`KEPT_DELIVERIES`] deliveries, oldest first, numbered as they are logged so that an attempt's outcome
/// can be filled in later (if its entry is still there).
#[derive(Debug, Default)]
struct DeliveryLog {
    entries: VecDeque<Delivery>,
    /// Number of the oldest entry kept.
    first: u64,
    /// Number of the first entry logged since the last clear: only those count as finished.
    epoch: u64,
    /// Entries logged since the last clear that are finished (kept or not).
    finished: u64,
}

impl DeliveryLog {
    fn next_number(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    fn push(&mut self, d: Delivery) -> u64 {
        if d.finished() {
            self.finished += 1;
        }
        if self.entries.len() == KEPT_DELIVERIES {
            self.entries.pop_front();
            self.first += 1;
        }
        self.entries.push_back(d);
        self.next_number() - 1
    }

    fn finish(&mut self, number: u64, outcome: Result<u16, String>) {
        if number >= self.epoch {
            self.finished += 1;
        }
        let entry = number
            .checked_sub(self.first)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.entries.get_mut(i));
        if let Some(d) = entry {
            match outcome {
                Ok(status) => d.status = Some(status),
                Err(e) => d.error = Some(e),
            }
        }
    }

    fn clear(&mut self) {
        self.first = self.next_number();
        self.epoch = self.first;
        self.entries.clear();
        self.finished = 0;
    }
}

/// Signing keys, delivery faults and the delivery log.
#[derive(Debug)]
pub(crate) struct CallbackState {
    /// Every key made; the last one signs. Older ones stay valid so that deliveries in flight still verify.
    keys: Vec<SigningKey>,
    faults: CallbackFaults,
    /// Messages since faults were set (for `drop_every`).
    messages: u64,
    log: DeliveryLog,
}

impl CallbackState {
    pub(crate) fn new() -> CallbackState {
        CallbackState {
            keys: vec![new_key()],
            faults: CallbackFaults::default(),
            messages: 0,
            log: DeliveryLog::default(),
        }
    }

    pub(crate) fn current_key(&self) -> &SigningKey {
        self.keys.last().expect("there is always a key")
    }

    pub(crate) fn rotate_key(&mut self) -> SigningKey {
        self.keys.push(new_key());
        self.current_key().clone()
    }

    pub(crate) fn key(&self, id: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    pub(crate) fn set_faults(&mut self, faults: CallbackFaults) {
        self.faults = faults;
        self.messages = 0;
    }

    pub(crate) fn faults(&self) -> CallbackFaults {
        self.faults.clone()
    }

    pub(crate) fn deliveries(&self) -> Vec<Delivery> {
        self.log.entries.iter().cloned().collect()
    }

    /// Deliveries logged since the start (or the last clear) that are finished.
    pub(crate) fn finished(&self) -> u64 {
        self.log.finished
    }

    pub(crate) fn clear_deliveries(&mut self) {
        self.log.clear();
    }

    /// Whether the next message is dropped.
    fn drop_next(&mut self) -> bool {
        self.messages += 1;
        let n = self.messages;
        self.faults.drop_all
            || self
                .faults
                .drop_every
                .is_some_and(|p| p > 0 && n.is_multiple_of(u64::from(p)))
    }
}

/// A stored change to one record, as a write reports it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Change<'a> {
    pub res: &'static Resource,
    pub id: i64,
    pub action: Action,
    /// Parent of a sub-resource record.
    pub parent: Option<i64>,
    /// Member identifier that made the change (`_info/updatedBy`), for `isSelfSuppressedFlag`.
    pub user: &'a str,
}

/// The records of callback types that a change concerns: the record itself, or, for a company's type association
/// or a contact's communication item, its company or contact (updated, as its `lastUpdated` says).
fn subjects(state: &State, change: &Change<'_>) -> Vec<(&'static Resource, i64, Action)> {
    if TYPES.iter().any(|(_, r)| *r == change.res.name) {
        return vec![(change.res, change.id, change.action)];
    }
    let side_table = [resources::TYPE_ASSOCIATIONS, resources::COMMUNICATIONS];
    match (change.res.parent, change.parent) {
        (Some(p), Some(pid)) if side_table.contains(&change.res.name) => {
            let parent = resources::by_name(p.resource).expect("parent resource");
            if state.store.exists(parent.name, pid) {
                vec![(parent, pid, Action::Updated)]
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    }
}

/// Whether the registration `cb` covers record `id` of `res`.
fn covers(cb: &Value, res: &Resource, id: i64) -> bool {
    let active = cb["inactiveFlag"] != json!(true);
    let kind = cb["type"].as_str().unwrap_or_default().trim();
    let typed = TYPES
        .iter()
        .any(|(t, r)| *r == res.name && t.eq_ignore_ascii_case(kind));
    let level = cb["level"].as_str().unwrap_or_default().trim();
    let leveled = if level.eq_ignore_ascii_case("owner") {
        true
    } else if level.eq_ignore_ascii_case("recid") {
        cb["objectId"].as_i64() == Some(id)
    } else {
        false
    };
    active && typed && leveled
}

/// Id of the member whose identifier is `user`.
fn member_id(state: &State, user: &str) -> Option<i64> {
    state
        .store
        .find_by_key("system/members", "identifier", user)
}

/// Delivers a stored change to every active callback covering it: builds and logs the messages under the caller's
/// lock, and spawns their sending on the sandbox's runtime.
pub(crate) fn notify(shared: &Arc<Shared>, state: &mut State, change: Change<'_>) {
    let callbacks = resources::by_name(resources::CALLBACKS).expect("resource");
    if state.store.table(callbacks.name).records.is_empty() {
        return;
    }
    let actor = member_id(state, change.user);
    let base = format!("http://{}", shared.addr);
    let mut dropped_any = false;
    for (res, id, action) in subjects(state, &change) {
        let matching: Vec<Value> = state
            .store
            .scope(callbacks, None, Bound::Unbounded)
            .map(|(_, cb)| cb)
            .filter(|cb| covers(cb, res, id))
            .filter(|cb| {
                let suppressed = cb["isSelfSuppressedFlag"] == json!(true);
                !(suppressed && actor.is_some() && cb["memberId"].as_i64() == actor)
            })
            .cloned()
            .collect();
        if matching.is_empty() {
            continue;
        }
        let entity = match (action, state.store.get(res.name, id)) {
            (Action::Deleted, _) | (_, None) => String::new(),
            (_, Some(rec)) => state.store.render(res, rec, &shared.api_url()).to_string(),
        };
        for cb in matching {
            let key = state.callbacks.current_key().clone();
            let message_id = uuid();
            let url = cb["url"].as_str().unwrap_or_default().to_string();
            let kind = cb["type"].as_str().unwrap_or_default().to_string();
            let callback_id = cb["id"].as_i64().unwrap_or_default();
            let body = json!({
                "MessageId": message_id,
                "FromUrl": base,
                "CompanyId": shared.config.company_id,
                "MemberId": cb["memberId"].as_i64().unwrap_or_default(),
                "Action": action.as_str(),
                "Type": kind,
                "ID": id,
                "ProductInstanceId": "",
                "PartnerId": shared.config.company_id,
                "Entity": entity,
                "Metadata": { "key_url": format!("{base}{KEYS_PATH}{}", key.id) },
                "CallbackObjectRecId": callback_id,
            });
            let delivery = |attempt: u32, dropped: bool| Delivery {
                url: url.clone(),
                message_id: message_id.clone(),
                action: action.as_str().to_string(),
                kind: kind.clone(),
                id,
                callback_id,
                attempt,
                dropped,
                status: None,
                error: None,
            };
            if state.callbacks.drop_next() {
                state.callbacks.log.push(delivery(0, true));
                dropped_any = true;
                tracing::info!(%url, %message_id, "cw-sandbox: callback dropped (callback fault)");
                continue;
            }
            let attempts: Vec<u64> = (0..=state.callbacks.faults.repeat)
                .map(|attempt| state.callbacks.log.push(delivery(attempt, false)))
                .collect();
            let body = Bytes::from(body.to_string());
            let signature = sign(&key.key, &body);
            let sending = shared.clone();
            shared.runtime.spawn(async move {
                for number in attempts {
                    let outcome = tokio::time::timeout(
                        DELIVERY_TIMEOUT,
                        post(&url, body.clone(), &signature),
                    )
                    .await
                    .unwrap_or_else(|_| {
                        Err(format!("no answer within {} s", DELIVERY_TIMEOUT.as_secs()))
                    });
                    tracing::info!(%url, outcome = ?outcome, "cw-sandbox callback delivery");
                    sending.lock().callbacks.log.finish(number, outcome);
                    sending.delivered.notify_waiters();
                }
            });
        }
    }
    if dropped_any {
        shared.delivered.notify_waiters();
    }
}

/// One signed JSON POST over HTTP/1.1; the receiver's status, once its whole answer is read.
async fn post(url: &str, body: Bytes, signature: &str) -> Result<u16, String> {
    let uri: Uri = url.parse().map_err(|e| format!("bad URL {url}: {e}"))?;
    match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") => {}
        Some(s) if s.eq_ignore_ascii_case("https") => {
            return Err(format!(
                "cw-sandbox delivers callbacks over plain HTTP only; cannot POST to {url}"
            ));
        }
        _ => return Err(format!("not an http URL: {url}")),
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("no host in {url}"))?
        .clone();
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {authority}: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = Request::post(path)
        .body(Full::new(body))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let headers = req.headers_mut();
    let host_value =
        HeaderValue::from_str(authority.as_str()).map_err(|e| format!("bad host: {e}"))?;
    headers.insert(header::HOST, host_value);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        SIGNATURE_HEADER,
        HeaderValue::from_str(signature).map_err(|e| format!("bad signature: {e}"))?,
    );
    headers.insert(
        header::USER_AGENT,
        HeaderValue::from_static("cw-sandbox-callbacks"),
    );
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = resp.status().as_u16();
    resp.into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the answer of {url}: {e}"))?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_value() {
        // base64(HMAC-SHA256(key = SHA-256("sandbox-signing-key"), body)), computed independently.
        let body = br#"{"MessageId":"m-1","Action":"added","ID":250}"#;
        assert_eq!(
            sign("sandbox-signing-key", body),
            "INS+vikGoUzdqoqZowXc5umkSGlFAkJI7mbyRtK3KQI="
        );
        assert!(verify(
            "sandbox-signing-key",
            body,
            "INS+vikGoUzdqoqZowXc5umkSGlFAkJI7mbyRtK3KQI="
        ));
        assert!(!verify(
            "another-key",
            body,
            &sign("sandbox-signing-key", body)
        ));
        assert!(!verify(
            "sandbox-signing-key",
            b"{}",
            &sign("sandbox-signing-key", body)
        ));
        assert!(!verify("sandbox-signing-key", body, "not base64!"));
    }

    #[test]
    fn the_hmac_key_is_the_sha256_of_the_signing_key() {
        // RFC 4231 test case 2 (key "Jefe"): HMAC-SHA256 keyed with "Jefe" itself gives W9zB…OEM=; the signature
        // keys it with SHA-256("Jefe") instead (both values computed independently, with Python's hmac/hashlib).
        let body = b"what do ya want for nothing?";
        let plain = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"Jefe"),
            body,
        );
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(plain.as_ref()),
            "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
        );
        assert_eq!(
            sign("Jefe", body),
            "FCx/7edYeTepSnORVrboF23D/21dxYtDtXAKYF+sjfM="
        );
    }

    #[test]
    fn message_ids_are_v4_uuids() {
        let a = uuid();
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
        assert_eq!(&a[14..15], "4");
        assert!("89ab".contains(&a[19..20]));
        assert_ne!(a, uuid());
    }

    #[test]
    fn urls_must_be_absolute_http() {
        for good in [
            "http://127.0.0.1:8080/cw/callback",
            "https://bss.example.com/hook?x=1",
            "HTTP://host",
        ] {
            assert!(is_absolute_http_url(good), "{good}");
        }
        for bad in [
            "/relative/path",
            "ftp://host/x",
            "host:8080/x",
            "http://",
            "http://exa mple.com/",
            "",
        ] {
            assert!(!is_absolute_http_url(bad), "{bad}");
        }
    }

    #[test]
    fn drop_every_counts_from_setting() {
        let mut s = CallbackState::new();
        s.set_faults(CallbackFaults::none().with_drop_every(2));
        let drops: Vec<bool> = (0..4).map(|_| s.drop_next()).collect();
        assert_eq!(drops, [false, true, false, true]);
        s.set_faults(CallbackFaults::none().with_drop_all());
        assert!(s.drop_next());
        s.set_faults(CallbackFaults::none());
        assert!(!s.drop_next());
    }

    #[test]
    fn keys_rotate_and_old_ones_stay() {
        let mut s = CallbackState::new();
        let first = s.current_key().clone();
        let second = s.rotate_key();
        assert_ne!(first, second);
        assert_eq!(s.current_key(), &second);
        assert_eq!(s.key(&first.id), Some(&first));
        assert!(s.key("nope").is_none());
    }

    #[test]
    fn the_log_counts_finished_deliveries_since_a_clear() {
        let mut log = DeliveryLog::default();
        let d = |dropped| Delivery {
            url: "http://h/".into(),
            message_id: "m".into(),
            action: "added".into(),
            kind: "company".into(),
            id: 250,
            callback_id: 100,
            attempt: 0,
            dropped,
            status: None,
            error: None,
        };
        let a = log.push(d(false));
        log.push(d(true));
        assert_eq!(log.finished, 1);
        log.finish(a, Ok(200));
        assert_eq!(log.finished, 2);
        assert_eq!(log.entries[0].status, Some(200));
        let b = log.push(d(false));
        log.clear();
        // An attempt logged before the clear and finishing after it counts for nothing.
        log.finish(b, Err("refused".into()));
        assert_eq!(log.finished, 0);
        assert!(log.entries.is_empty());
        let c = log.push(d(false));
        log.finish(c, Ok(204));
        assert_eq!((log.finished, log.entries[0].status), (1, Some(204)));
    }
}
