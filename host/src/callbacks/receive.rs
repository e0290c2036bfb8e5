//! Receiving one callback delivery: check the hook's token, parse the payload, verify the
//! signature, store the event once, wake the worker.
//!
//! The signing key is fetched from the payload's `Metadata.key_url`, but only when that URL's
//! origin is the instance's own remote host (anyone can sign with a key they host themselves), and
//! through the host's outbound HTTP policy for the instance (its allowed origins, its address
//! rules, a response cap, GET only). Keys are cached per URL for an hour; a signature that fails
//! with a key older than a minute fetches the key once more, so a rotated key is picked up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Serialize;

use crate::capabilities::allowed_hosts::Origin;
use crate::capabilities::http::{HttpCall, HttpClient};
use crate::capabilities::log::Labels;
use crate::contract::bindings::http::{Method, Request};
use crate::contract::manifest::Entity;
use crate::instances::{InstanceError, Instances};
use crate::store::hook_store::{Action, HookRow};
use crate::sync::engine::remote_id_problem;

/// The largest delivery body taken.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// How long a fetched signing key is used.
const KEY_TTL: Duration = Duration::from_secs(3_600);
/// A key at least this old is fetched again when a signature fails with it.
const KEY_REFRESH_AFTER: Duration = Duration::from_secs(60);
/// Keys kept at most (a cache, not a store); the oldest goes first.
const MAX_KEYS: usize = 1_000;
/// At most one key fetch per instance this often.
const KEY_FETCH_EVERY: Duration = Duration::from_secs(2);

/// Why a delivery was not taken, with the status it is answered with.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// An unknown instance, a wrong token or an inactive hook: all look the same from outside.
    #[error("no such hook")]
    NotFound,
    #[error("the delivery is malformed: {0}")]
    Malformed(String),
    #[error("the body is {0} bytes; at most {MAX_BODY_BYTES} are taken")]
    TooLarge(usize),
    #[error("the delivery is not signed by the instance's remote: {0}")]
    BadSignature(String),
    #[error("{0}")]
    KeyRefused(String),
    #[error("the signing key could not be fetched: {0}")]
    KeyUnavailable(String),
    #[error(transparent)]
    Instance(#[from] InstanceError),
}

impl HookError {
    /// The HTTP status a delivery refused for this reason is answered with.
    pub fn status(&self) -> u16 {
        match self {
            HookError::NotFound => 404,
            HookError::Malformed(_) => 400,
            HookError::TooLarge(_) => 413,
            HookError::BadSignature(_) => 401,
            HookError::KeyRefused(_) => 403,
            HookError::KeyUnavailable(_) => 502,
            HookError::Instance(_) => 503,
        }
    }

    fn outcome(&self) -> &'static str {
        match self {
            HookError::NotFound => "not-found",
            HookError::Malformed(_) => "malformed",
            HookError::TooLarge(_) => "too-large",
            HookError::BadSignature(_) => "bad-signature",
            HookError::KeyRefused(_) => "key-refused",
            HookError::KeyUnavailable(_) => "key-unavailable",
            HookError::Instance(_) => "error",
        }
    }
}

/// A delivery taken.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Accepted {
    pub entity: Entity,
    pub remote_id: String,
    pub action: Action,
    /// The same event was received before; it is handled once.
    pub duplicate: bool,
}

/// The fields of a delivery the host uses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Delivery {
    message_id: String,
    action: Action,
    remote_type: String,
    remote_id: String,
    key_url: String,
}

/// A string, or a number written as one (ConnectWise sends ids as numbers).
fn text_field(value: &serde_json::Value, field: &str) -> Result<String, HookError> {
    let text = match value.get(field) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(_) => {
            return Err(HookError::Malformed(format!(
                "{field} is neither a string nor a number"
            )));
        }
        None => return Err(HookError::Malformed(format!("{field} is missing"))),
    };
    if text.trim().is_empty() || text.len() > 512 {
        return Err(HookError::Malformed(format!(
            "{field} is blank or longer than 512 bytes"
        )));
    }
    Ok(text)
}

fn parse_delivery(body: &[u8]) -> Result<Delivery, HookError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| HookError::Malformed(format!("the body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(HookError::Malformed("the body is not a JSON object".into()));
    }
    let remote_id = text_field(&value, "ID")?;
    if let Some(problem) = remote_id_problem(&remote_id) {
        return Err(HookError::Malformed(format!("ID: {problem}")));
    }
    let key_url = value
        .get("Metadata")
        .and_then(|m| m.get("key_url"))
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| HookError::Malformed("Metadata.key_url is missing".into()))?
        .to_string();
    Ok(Delivery {
        message_id: text_field(&value, "MessageId")?,
        action: text_field(&value, "Action")?
            .parse()
            .map_err(|e: String| HookError::Malformed(format!("Action: {e}")))?,
        remote_type: text_field(&value, "Type")?,
        remote_id,
        key_url,
    })
}

/// Whether `signature` (base64) is the HMAC-SHA256 of `body` keyed with SHA-256(`signing_key`).
pub fn signature_matches(signing_key: &str, body: &[u8], signature: &str) -> bool {
    use sha2::Digest;
    let Ok(tag) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    let key_hash = sha2::Sha256::digest(signing_key.as_bytes());
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key_hash);
    ring::hmac::verify(&key, body, &tag).is_ok()
}

/// Receives the deliveries of every instance's hook.
pub struct Receiver {
    instances: Arc<Instances>,
    http: HttpClient,
    keys: Mutex<HashMap<String, (String, Instant)>>,
    /// When each instance's hook last fetched a key.
    fetches: Mutex<HashMap<String, Instant>>,
    fetching: tokio::sync::Mutex<()>,
}

impl Receiver {
    pub fn new(instances: Arc<Instances>) -> Self {
        let http = instances.registry().runtime().http_client();
        Receiver {
            instances,
            http,
            keys: Mutex::default(),
            fetches: Mutex::default(),
            fetching: tokio::sync::Mutex::const_new(()),
        }
    }

    /// Takes one delivery to `/hooks/{name}/{token}`.
    pub async fn receive(
        &self,
        name: &str,
        token: &str,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<Accepted, HookError> {
        let mut matched = false;
        let result = self.take(name, token, signature, body, &mut matched).await;
        // A caller that does not know the token must not grow the label set.
        let label = if matched { name } else { "" };
        match &result {
            Ok(accepted) => crate::metrics::callback(
                label,
                if accepted.duplicate {
                    "duplicate"
                } else {
                    "accepted"
                },
            ),
            Err(error) => crate::metrics::callback(label, error.outcome()),
        }
        if let Err(error) = &result
            && !matches!(error, HookError::NotFound)
        {
            tracing::warn!(instance = name, "a callback delivery was refused: {error}");
        }
        result
    }

    async fn take(
        &self,
        name: &str,
        token: &str,
        signature: Option<&str>,
        body: &[u8],
        matched: &mut bool,
    ) -> Result<Accepted, HookError> {
        let hook = match self.instances.hook_for_token(name, token) {
            Ok(Some(hook)) => hook,
            Ok(None) | Err(InstanceError::Store(crate::store::StoreError::NoInstance(_))) => {
                return Err(HookError::NotFound);
            }
            Err(other) => return Err(other.into()),
        };
        *matched = true;
        if body.len() > MAX_BODY_BYTES {
            return Err(HookError::TooLarge(body.len()));
        }
        let signature = signature
            .ok_or_else(|| HookError::BadSignature("x-content-signature is missing".into()))?;
        let delivery = parse_delivery(body)?;
        self.verify(name, &delivery.key_url, body, signature)
            .await?;
        let entity = entity_of(&hook, &delivery.remote_type)?;
        let new = self
            .instances
            .store()
            .record_event(
                name,
                &delivery.message_id,
                entity,
                &delivery.remote_id,
                delivery.action,
            )
            .map_err(InstanceError::from)?;
        if new && let Err(error) = super::worker::queue_events(&self.instances, name, entity) {
            // Kept all the same: the leading worker queues it within a tick.
            tracing::warn!(
                instance = name,
                "the callback event's job could not be queued now: {error}"
            );
        }
        Ok(Accepted {
            entity,
            remote_id: delivery.remote_id,
            action: delivery.action,
            duplicate: !new,
        })
    }

    async fn verify(
        &self,
        name: &str,
        key_url: &str,
        body: &[u8],
        signature: &str,
    ) -> Result<(), HookError> {
        // Checked on every delivery, before the cache: a key cached for one instance's host is
        // no key for an instance on another.
        let (loaded, context) = self.instances.context(name)?;
        let url = own_key_url(name, key_url, &context)?;
        let cached = self
            .keys
            .lock()
            .expect("the key cache lock is not poisoned")
            .get(url.as_str())
            .filter(|(_, at)| at.elapsed() < KEY_TTL)
            .cloned();
        if let Some((key, at)) = &cached {
            if signature_matches(key, body, signature) {
                return Ok(());
            }
            if at.elapsed() < KEY_REFRESH_AFTER {
                return Err(HookError::BadSignature(
                    "x-content-signature does not match the body".into(),
                ));
            }
        }
        // One fetch at a time: deliveries arriving together after a miss share the first's key.
        let _turn = self.fetching.lock().await;
        let fresh = self
            .keys
            .lock()
            .expect("the key cache lock is not poisoned")
            .get(url.as_str())
            .filter(|(_, at)| at.elapsed() < KEY_REFRESH_AFTER)
            .cloned();
        if let Some((key, _)) = fresh {
            return if signature_matches(&key, body, signature) {
                Ok(())
            } else {
                Err(HookError::BadSignature(
                    "x-content-signature does not match the body".into(),
                ))
            };
        }
        self.may_fetch(name)?;
        let key = self.fetch_key(&loaded, context, &url).await?;
        let matches = signature_matches(&key, body, signature);
        {
            let mut keys = self
                .keys
                .lock()
                .expect("the key cache lock is not poisoned");
            if keys.len() >= MAX_KEYS
                && let Some(oldest) = keys
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(url, _)| url.clone())
            {
                keys.remove(&oldest);
            }
            keys.insert(url.to_string(), (key, Instant::now()));
        }
        if matches {
            Ok(())
        } else {
            Err(HookError::BadSignature(
                "x-content-signature does not match the body".into(),
            ))
        }
    }

    /// One key fetch per instance per [`KEY_FETCH_EVERY`]: a caller holding the token cannot
    /// make the host hammer the remote (or spend the instance's request budget) with key URLs
    /// that miss the cache.
    fn may_fetch(&self, name: &str) -> Result<(), HookError> {
        let mut last = self
            .fetches
            .lock()
            .expect("the fetch times lock is not poisoned");
        if last.len() >= MAX_KEYS {
            last.retain(|_, at| at.elapsed() < KEY_FETCH_EVERY);
        }
        if let Some(at) = last.get(name)
            && at.elapsed() < KEY_FETCH_EVERY
        {
            return Err(HookError::KeyUnavailable(
                "a signing key was fetched for this hook moments ago; try again shortly".into(),
            ));
        }
        last.insert(name.to_string(), Instant::now());
        Ok(())
    }

    async fn fetch_key(
        &self,
        loaded: &crate::registry::Loaded,
        context: Arc<crate::capabilities::context::InstanceContext>,
        url: &url::Url,
    ) -> Result<String, HookError> {
        let name = context.instance().to_string();
        let labels = Arc::new(Labels {
            connector: loaded.connector.manifest().name.clone(),
            version: loaded.version.to_string(),
            instance: name.clone(),
        });
        // A dry-run call: GET only, under the instance's policy (its origins, address rules,
        // response cap, request budget).
        let mut call = HttpCall::new(self.http.clone(), context, labels, true);
        let unavailable = |detail: String| {
            tracing::warn!(
                instance = name,
                "the signing key could not be fetched: {detail}"
            );
            HookError::KeyUnavailable(
                "the signing key could not be fetched (the host's log says why)".into(),
            )
        };
        let response = call
            .send(Request {
                method: Method::Get,
                url: url.to_string(),
                headers: vec![("accept".into(), "application/json".into())],
                body: None,
            })
            .await
            .map_err(|e| unavailable(format!("{e:?}")))?;
        if response.status != 200 {
            return Err(unavailable(format!(
                "{} answered {}",
                crate::safe_text::printable(url.as_str()),
                response.status
            )));
        }
        let value: serde_json::Value = serde_json::from_slice(&response.body)
            .map_err(|e| unavailable(format!("the answer is not JSON: {e}")))?;
        match value.get("signing_key").and_then(serde_json::Value::as_str) {
            Some(key) if !key.is_empty() => Ok(key.to_string()),
            _ => Err(unavailable("the answer has no signing_key".into())),
        }
    }
}

/// `key_url` parsed, when it is a plain URL on the instance's own remote host (no user, query or
/// fragment); refused otherwise.
fn own_key_url(
    name: &str,
    key_url: &str,
    context: &crate::capabilities::context::InstanceContext,
) -> Result<url::Url, HookError> {
    let shown =
        || crate::safe_text::printable(&crate::capabilities::log::cap(key_url, 200)).into_owned();
    let url = url::Url::parse(key_url)
        .map_err(|e| HookError::Malformed(format!("Metadata.key_url {}: {e}", shown())))?;
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(HookError::KeyRefused(format!(
            "Metadata.key_url {} has a user, query or fragment; a signing key URL is a plain path",
            shown()
        )));
    }
    let origin = Origin::of_url(&url)
        .map_err(|e| HookError::KeyRefused(format!("Metadata.key_url: {e}")))?;
    if context.credentials().map(|c| &c.origin) != Some(&origin) {
        return Err(HookError::KeyRefused(format!(
            "Metadata.key_url {} is not on {name}'s own remote host; a signing key is taken only from there",
            shown()
        )));
    }
    Ok(url)
}

/// The entity a delivery's remote type stands for, by the hook's registrations.
fn entity_of(hook: &HookRow, remote_type: &str) -> Result<Entity, HookError> {
    hook.registrations
        .iter()
        .find(|r| r.remote_type.eq_ignore_ascii_case(remote_type))
        .map(|r| r.entity)
        .ok_or_else(|| {
            HookError::Malformed(format!(
                "Type {:?} is not one this hook is registered for ({})",
                crate::capabilities::log::cap(remote_type, 60),
                hook.registrations
                    .iter()
                    .map(|r| r.remote_type.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_the_hmac_of_the_body_keyed_with_the_keys_digest() {
        use sha2::Digest;
        let body = br#"{"MessageId":"m1","Action":"updated","Type":"contact","ID":5}"#;
        let key_hash = sha2::Sha256::digest(b"s3cret");
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key_hash);
        let tag = ring::hmac::sign(&key, body);
        let signature = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
        assert!(signature_matches("s3cret", body, &signature));
        assert!(!signature_matches("other", body, &signature));
        assert!(!signature_matches("s3cret", b"{}", &signature));
        assert!(!signature_matches("s3cret", body, "not base64!"));
    }

    #[test]
    fn deliveries_are_parsed_and_bad_ones_named() {
        let body = br#"{"MessageId":"m1","Action":"Updated","Type":"contact","ID":5,"Entity":"","Metadata":{"key_url":"https://cw.example/key"}}"#;
        let d = parse_delivery(body).unwrap();
        assert_eq!(d.action, Action::Updated);
        assert_eq!(d.remote_id, "5");
        assert_eq!(d.remote_type, "contact");
        assert_eq!(d.key_url, "https://cw.example/key");
        let err = parse_delivery(br#"{"MessageId":"m1","Action":"moved","Type":"contact","ID":5,"Metadata":{"key_url":"x"}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("Action"), "{err}");
        let err = parse_delivery(
            br#"{"MessageId":"m1","Action":"added","Type":"contact","Metadata":{"key_url":"x"}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("ID is missing"), "{err}");
        let err = parse_delivery(br#"{"MessageId":"m1","Action":"added","Type":"contact","ID":1}"#)
            .unwrap_err();
        assert!(err.to_string().contains("key_url"), "{err}");
        assert!(matches!(
            parse_delivery(b"[1]"),
            Err(HookError::Malformed(_))
        ));
    }
}
