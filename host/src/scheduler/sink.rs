//! The BSS webhook sink: `serve` posts an instance's change feed to a URL the operator set, in
//! batches, signed, with retries and backoff. A batch the sink answers with 2xx is delivered and
//! acknowledged in one store transaction; anything else is tried again later with the same
//! entries (the delivery id in `x-bss-delivery` stays the same, so the BSS can drop a batch it
//! already has when an answer was lost).
//!
//! The signature is `x-bss-signature: sha256=<hex HMAC-SHA256(secret, body)>` over the exact
//! body bytes; the secret is sealed in the store like a secret setting.

use std::time::Duration;

use serde::Serialize;

use crate::instances::{InstanceError, Instances};
use crate::store::StoreError;
use crate::store::schedule_store::FeedSinkRow;
use crate::sync::history::{self, FeedLine};

/// Entries per delivery.
pub const BATCH: usize = 100;
/// A sink must answer within this.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between tries.
pub const MAX_BACKOFF_SECS: i64 = 3_600;

/// What `feed sinks` shows (never the secret).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SinkView {
    pub instance: String,
    pub url: String,
    pub delivered: i64,
    pub attempts: i64,
    pub next_try: Option<String>,
    pub last_error: Option<String>,
}

/// Sets (or replaces) the instance's sink. The URL must be http or https.
pub fn set(
    instances: &Instances,
    name: &str,
    url: &str,
    secret: &str,
) -> Result<(), InstanceError> {
    let invalid = |message: String| InstanceError::Invalid(vec![("sink".into(), message)]);
    let parsed = url::Url::parse(url).map_err(|e| {
        invalid(format!(
            "{url:?} is not a URL ({e}); give https://bss.example.com/hooks/feed"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || !parsed.has_host() {
        return Err(invalid(format!(
            "{url:?} must be an http or https URL with a host"
        )));
    }
    if secret.len() < 16 {
        return Err(invalid(
            "the secret must be at least 16 characters (it signs every delivery)".into(),
        ));
    }
    let sealed = instances
        .secrets()
        .seal(&format!("{name}/feed-sink"), secret);
    instances
        .store()
        .set_feed_sink(name, parsed.as_str(), &sealed)?;
    Ok(())
}

pub fn remove(instances: &Instances, name: &str) -> Result<(), InstanceError> {
    if instances.store().remove_feed_sink(name)? {
        Ok(())
    } else {
        Err(InstanceError::NotFound(format!(
            "{name} has no feed sink; `bss-host feed sinks` lists them"
        )))
    }
}

pub fn list(instances: &Instances) -> Result<Vec<SinkView>, InstanceError> {
    Ok(instances
        .store()
        .feed_sinks()?
        .into_iter()
        .map(|s| SinkView {
            instance: s.instance,
            url: s.url,
            delivered: s.delivered,
            attempts: s.attempts,
            next_try: (s.next_try > 0).then(|| crate::time::rfc3339(s.next_try)),
            last_error: s.last_error,
        })
        .collect())
}

/// The client sinks are posted with: no proxy, no redirects, a short timeout.
pub fn client() -> anyhow::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .no_proxy()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("bss-host/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

#[derive(Serialize)]
struct Delivery<'a> {
    instance: &'a str,
    entries: &'a [FeedLine],
}

/// The signature header's value for a body.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    format!(
        "sha256={}",
        hex::encode(ring::hmac::sign(&key, body).as_ref())
    )
}

/// Posts one batch to every sink that is due and has entries after what it was delivered;
/// returns how many entries were delivered. Each sink is claimed for its delivery (`owner`, one
/// per process), so another `serve` on the same store does not post the same batch meanwhile,
/// and its state is read as of the claim.
pub async fn deliver_due(
    instances: &Instances,
    client: &reqwest::Client,
    owner: &str,
) -> Result<usize, StoreError> {
    let now = crate::time::now_unix();
    let mut delivered = 0;
    let store = instances.store();
    for listed in store.feed_sinks()? {
        if listed.next_try > now {
            continue;
        }
        // Held past the request's timeout, so a claim lapses only when its process died.
        let until = now + 3 * TIMEOUT.as_secs() as i64;
        let Some(sink) = store.claim_sink(&listed.instance, owner, now, until)? else {
            continue;
        };
        let result = if sink.next_try > now {
            Ok(0)
        } else {
            deliver(instances, client, &sink, now).await
        };
        store.release_sink(&sink.instance, owner)?;
        delivered += result?;
    }
    Ok(delivered)
}

async fn deliver(
    instances: &Instances,
    client: &reqwest::Client,
    sink: &FeedSinkRow,
    now: i64,
) -> Result<usize, StoreError> {
    let store = instances.store();
    let name = &sink.instance;
    let lines = match history::feed(instances, name, Some(sink.delivered), BATCH) {
        Ok((lines, _)) => lines,
        Err(InstanceError::Store(e)) => return Err(e),
        Err(other) => return Err(StoreError::Database(other.to_string())),
    };
    let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
        return Ok(0);
    };
    let (first, last) = (first.seq, last.seq);
    let secret = match instances
        .secrets()
        .open(&format!("{name}/feed-sink"), &sink.sealed_secret)
    {
        Ok(secret) => secret,
        Err(error) => {
            let reason =
                format!("the sink's secret cannot be opened ({error}); set the sink again");
            store.sink_failed(name, &reason, now + MAX_BACKOFF_SECS)?;
            return Ok(0);
        }
    };
    let body = serde_json::to_vec(&Delivery {
        instance: name,
        entries: &lines,
    })
    .map_err(|e| StoreError::Database(e.to_string()))?;
    let answer = client
        .post(&sink.url)
        .header("content-type", "application/json")
        .header("x-bss-signature", signature(&secret, &body))
        .header("x-bss-delivery", format!("{name}:{first}-{last}"))
        .body(body)
        .send()
        .await;
    let failure = match answer {
        Ok(response) if response.status().is_success() => None,
        Ok(response) => Some(format!("the sink answered {}", response.status())),
        Err(error) => Some(format!("the sink could not be reached: {error}")),
    };
    match failure {
        None => {
            store.sink_delivered(name, last)?;
            Ok(lines.len())
        }
        Some(reason) => {
            let backoff = 5_i64
                .saturating_mul(1 << sink.attempts.clamp(0, 20))
                .min(MAX_BACKOFF_SECS);
            store.sink_failed(name, &reason, now + backoff)?;
            tracing::warn!(
                instance = name,
                "feed delivery failed: {reason}; next try in {backoff}s"
            );
            Ok(0)
        }
    }
}
