//! The instance context: everything one instance grants its connector for one call, derived once
//! from the connector's manifest and the instance's settings, lookups and options.
//!
//! Settings are split here, and only here, into what the guest may read (non-secret values) and
//! what only the host uses (secrets, and the credential headers built from them). The allowed
//! outbound origins are the instance's `url` settings; credentials go only to the origin of the
//! manifest's remote-host variable.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use base64::Engine as _;
use reqwest::header::{HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use super::allowed_hosts::{AllowedHosts, Origin};
use super::log::Redactor;
use super::options::InstanceOptions;
use super::settings::{self, Typed};
use crate::contract::manifest::{AuthScheme, Manifest, template_keys};

/// One row of a lookup table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupEntry {
    pub bss_value: String,
    pub remote_value: String,
    pub pull_default: bool,
}

/// Headers the host adds to requests bound for one origin.
#[derive(Clone)]
pub struct Credentials {
    pub origin: Origin,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Credentials")
            .field("origin", &self.origin)
            .field("headers", &names)
            .finish()
    }
}

pub use super::settings::{SettingProblem, SettingsError};

/// What one instance grants its connector. Built by [`InstanceContext::new`]; immutable after.
#[derive(Clone)]
pub struct InstanceContext {
    instance: String,
    visible: BTreeMap<String, String>,
    redactor: Redactor,
    lookups: BTreeMap<String, Vec<LookupEntry>>,
    allowed: AllowedHosts,
    credentials: Option<Credentials>,
    options: InstanceOptions,
    /// A digest of everything the context was made from (see [`InstanceContext::fingerprint`]).
    fingerprint: [u8; 32],
}

impl fmt::Debug for InstanceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstanceContext")
            .field("instance", &self.instance)
            .field("visible", &self.visible)
            .field("redactor", &self.redactor)
            .field("allowed", &self.allowed)
            .field("credentials", &self.credentials)
            .field("options", &self.options)
            .finish()
    }
}

impl InstanceContext {
    /// Validates `values` against the manifest (unknown keys, kinds, required values) and derives
    /// the allowed hosts and credentials. `values` holds server variables only, secrets included.
    pub fn new(
        instance: &str,
        manifest: &Manifest,
        values: &BTreeMap<String, String>,
        lookups: BTreeMap<String, Vec<LookupEntry>>,
        options: InstanceOptions,
    ) -> Result<InstanceContext, SettingsError> {
        let parsed = settings::parse(manifest, values)?;
        let mut effective = BTreeMap::new();
        let mut visible = BTreeMap::new();
        let mut secrets = Vec::new();
        let mut secret_keys = BTreeSet::new();
        let mut origins = Vec::new();
        for (key, setting) in parsed {
            match setting.typed {
                Typed::Secret => {
                    secrets.push(setting.text.clone());
                    secret_keys.insert(key.clone());
                }
                Typed::Url(origin) => {
                    origins.push(origin);
                    visible.insert(key.clone(), setting.text.clone());
                }
                Typed::Text | Typed::Integer(_) | Typed::Choice => {
                    visible.insert(key.clone(), setting.text.clone());
                }
            }
            effective.insert(key, setting.text);
        }

        let mut sent = Vec::new();
        let credentials = render_credentials(manifest, &effective, &secret_keys, &mut sent)
            .map_err(|problem| SettingsError {
                problems: vec![problem],
            })?;
        // Every value the host puts into a request, by the redaction rule (capabilities::log):
        // those derived from a secret are secrets, the others are scrubbed as whole tokens.
        let mut tokens = Vec::new();
        for (value, secret) in sent {
            if secret {
                secrets.push(value);
            } else {
                tokens.push(value);
            }
        }
        let redactor = Redactor::new(secrets, tokens);
        let fingerprint = fingerprint_of(instance, values, &lookups, &options);

        Ok(InstanceContext {
            instance: instance.to_string(),
            visible,
            redactor,
            lookups,
            allowed: AllowedHosts::new(origins),
            credentials,
            options,
            fingerprint,
        })
    }

    /// Treats these (key, value) settings as secrets whatever the manifest declares: values that
    /// were sealed when stored are never readable through `settings`, and are redacted like any
    /// other secret.
    pub fn seal(&mut self, sealed: &[(String, String)]) {
        for (key, _) in sealed {
            self.visible.remove(key);
        }
        self.redactor = self
            .redactor
            .with_secrets(sealed.iter().map(|(_, value)| value.clone()));
        let mut digest = Sha256::new();
        digest.update(self.fingerprint);
        for (key, value) in sealed {
            hash_field(&mut digest, key);
            hash_field(&mut digest, value);
        }
        self.fingerprint = digest.finalize().into();
    }

    /// A context that grants nothing: for calls such as `manifest` made before any instance exists.
    pub fn empty(instance: &str) -> InstanceContext {
        Self::empty_with(instance, InstanceOptions::default())
    }

    /// As [`InstanceContext::empty`], under these options (benchmarks: `keep_instance` off).
    pub fn empty_with(instance: &str, options: InstanceOptions) -> InstanceContext {
        InstanceContext {
            instance: instance.to_string(),
            visible: BTreeMap::new(),
            redactor: Redactor::default(),
            lookups: BTreeMap::new(),
            allowed: AllowedHosts::default(),
            credentials: None,
            fingerprint: fingerprint_of(instance, &BTreeMap::new(), &BTreeMap::new(), &options),
            options,
        }
    }

    /// SHA-256 over everything this context was made from: the instance name, every server
    /// variable (secrets and sealed values included), the lookup tables and the options. Two
    /// contexts with one fingerprint grant a connector version exactly the same things (what a
    /// context grants is derived from these and the version's manifest), so an instance kept from
    /// a call under one may serve a call under the other; any change of settings, lookups or
    /// options gives another fingerprint, and so a fresh instance.
    pub fn fingerprint(&self) -> &[u8; 32] {
        &self.fingerprint
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn options(&self) -> &InstanceOptions {
        &self.options
    }

    pub fn allowed_hosts(&self) -> &AllowedHosts {
        &self.allowed
    }

    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// Secret values (longest first) that must never appear in logs.
    pub fn secrets(&self) -> &[String] {
        self.redactor.secrets()
    }

    /// The instance's secrets and the other values the host puts into requests, with the rule
    /// that scrubs them from what the connector sees and from what the host prints, stores or logs.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// A non-secret setting's effective value.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.visible.get(key).map(String::as_str)
    }

    /// Every non-secret setting with a value.
    pub fn visible_settings(&self) -> &BTreeMap<String, String> {
        &self.visible
    }

    pub fn lookup_table(&self, key: &str) -> &[LookupEntry] {
        self.lookups.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn lookup(&self, key: &str, bss_value: &str) -> Option<&str> {
        self.lookup_table(key)
            .iter()
            .find(|e| e.bss_value == bss_value)
            .map(|e| e.remote_value.as_str())
    }

    /// The pull default among the BSS values mapped to `remote_value`, else the first mapped.
    pub fn reverse_lookup(&self, key: &str, remote_value: &str) -> Option<&str> {
        let mut mapped = self
            .lookup_table(key)
            .iter()
            .filter(|e| e.remote_value == remote_value);
        let first = mapped.next()?;
        let chosen = std::iter::once(first)
            .chain(mapped)
            .find(|e| e.pull_default)
            .unwrap_or(first);
        Some(chosen.bss_value.as_str())
    }
}

/// See [`InstanceContext::fingerprint`]. Every field is length-prefixed, so no two different
/// inputs hash the same bytes.
fn fingerprint_of(
    instance: &str,
    values: &BTreeMap<String, String>,
    lookups: &BTreeMap<String, Vec<LookupEntry>>,
    options: &InstanceOptions,
) -> [u8; 32] {
    let mut digest = Sha256::new();
    hash_field(&mut digest, instance);
    digest.update((values.len() as u64).to_le_bytes());
    for (key, value) in values {
        hash_field(&mut digest, key);
        hash_field(&mut digest, value);
    }
    digest.update((lookups.len() as u64).to_le_bytes());
    for (key, entries) in lookups {
        hash_field(&mut digest, key);
        digest.update((entries.len() as u64).to_le_bytes());
        for entry in entries {
            hash_field(&mut digest, &entry.bss_value);
            hash_field(&mut digest, &entry.remote_value);
            digest.update([u8::from(entry.pull_default)]);
        }
    }
    // Every option is a plain value, so its derived `Debug` text names each field and its value.
    hash_field(&mut digest, &format!("{options:?}"));
    digest.finalize().into()
}

fn hash_field(digest: &mut Sha256, text: &str) {
    digest.update((text.len() as u64).to_le_bytes());
    digest.update(text.as_bytes());
}

fn render(template: &str, values: &BTreeMap<String, String>) -> Result<String, SettingProblem> {
    let mut out = template.to_string();
    let keys = template_keys(template).map_err(|message| SettingProblem {
        key: String::new(),
        message,
    })?;
    for key in keys {
        let value = values.get(key).ok_or_else(|| SettingProblem {
            key: key.to_string(),
            message: "the connector's credentials need this setting; give it a value".to_string(),
        })?;
        out = out.replace(&format!("{{{key}}}"), value);
    }
    Ok(out)
}

/// Whether `template` names one of `secret_keys`.
fn names_secret(template: &str, secret_keys: &BTreeSet<String>) -> bool {
    template_keys(template).is_ok_and(|keys| keys.iter().any(|k| secret_keys.contains(*k)))
}

/// The credential headers for the remote host. Pushes onto `sent` every value they carry, each
/// with whether it is secret: the `Authorization` value and the Basic pair always are; a user name
/// or header value is when its template names a secret setting.
fn render_credentials(
    manifest: &Manifest,
    values: &BTreeMap<String, String>,
    secret_keys: &BTreeSet<String>,
    sent: &mut Vec<(String, bool)>,
) -> Result<Option<Credentials>, SettingProblem> {
    let host_key = manifest.remote_host_variable.as_str();
    let problem = |message: String| SettingProblem {
        key: host_key.to_string(),
        message,
    };
    let Some(host) = values.get(host_key) else {
        return Ok(None);
    };
    let origin = Origin::parse_setting(host).map_err(|e| problem(e.reason))?;
    let mut headers = Vec::new();
    let authorization = match &manifest.auth.scheme {
        AuthScheme::None => None,
        AuthScheme::Basic { username, password } => {
            let (user, pass) = (render(username, values)?, render(password, values)?);
            let pair = format!("{user}:{pass}");
            let encoded = base64::engine::general_purpose::STANDARD.encode(&pair);
            sent.push((user, names_secret(username, secret_keys)));
            sent.push((pass, names_secret(password, secret_keys)));
            sent.push((pair, true));
            sent.push((encoded.clone(), true));
            Some(format!("Basic {encoded}"))
        }
        AuthScheme::Bearer { token } => {
            let token = render(token, values)?;
            sent.push((token.clone(), true));
            Some(format!("Bearer {token}"))
        }
    };
    if let Some(value) = authorization {
        let value = HeaderValue::from_str(&value).map_err(|_| {
            problem("the credentials have characters a header may not hold".to_string())
        })?;
        headers.push((reqwest::header::AUTHORIZATION, sensitive(value)));
    }
    for (name, template) in &manifest.auth.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| problem(format!("{name:?} is not a header name")))?;
        let rendered = render(template, values)?;
        sent.push((rendered.clone(), names_secret(template, secret_keys)));
        let value = HeaderValue::from_str(&rendered).map_err(|_| {
            problem(format!(
                "the value for header {name} has characters a header may not hold"
            ))
        })?;
        headers.push((name, sensitive(value)));
    }
    Ok(Some(Credentials { origin, headers }))
}

fn sensitive(mut value: HeaderValue) -> HeaderValue {
    value.set_sensitive(true);
    value
}
