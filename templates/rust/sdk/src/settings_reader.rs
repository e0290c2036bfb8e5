//! The settings reader: the manifest's server variables, read and typed, every problem at once.

use std::collections::BTreeMap;

use crate::bss::integration::settings as host;
use crate::exports::bss::integration::connector::{ServerVariable, VariableKind};
use crate::{ConnectorError, Result, field_error};

/// The instance's settings as [`read_settings`] typed them. Secrets are never here (the host
/// keeps them and puts them into the manifest's auth headers).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    values: BTreeMap<String, String>,
}

impl Settings {
    /// A value: trimmed text; a `url` as `scheme://host[:port]`; an `integer` in plain digits; a
    /// `choice` one of its choices. `None` for an unset optional variable.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }
    /// A value the manifest declares required (so `read_settings` checked it is there).
    pub fn required(&self, key: &str) -> Result<&str> {
        self.get(key).ok_or_else(|| {
            ConnectorError::internal(format!(
                "setting {key:?} was read without being declared required"
            ))
        })
    }
    /// An `integer` variable's value.
    pub fn integer(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(|v| v.parse().ok())
    }
    /// Every value, by key.
    pub fn all(&self) -> &BTreeMap<String, String> {
        &self.values
    }
}

/// Reads the instance's settings as the manifest declares them (`manifest().server_variables`):
/// defaults applied, values checked by kind, secrets skipped. Every missing or malformed value is
/// collected into ONE `invalid-settings`, one entry per key.
pub fn read_settings(variables: &[ServerVariable]) -> Result<Settings> {
    let mut values = BTreeMap::new();
    let mut problems = Vec::new();
    for v in variables {
        if matches!(v.kind, VariableKind::Secret) {
            continue;
        }
        let raw = host::get(&v.key).unwrap_or_default();
        let mut value = raw.trim().to_string();
        if value.is_empty() {
            value = v.default_value.as_deref().unwrap_or("").trim().to_string();
        }
        if value.is_empty() {
            if v.required {
                let label = if v.label.is_empty() { &v.key } else { &v.label };
                problems.push(field_error(&v.key, format!("{label} is required")));
            }
            continue;
        }
        let checked = match v.kind {
            VariableKind::Url => site_of(&value),
            VariableKind::Integer => match value.parse::<i64>() {
                Ok(n) => Ok(n.to_string()),
                Err(_) => Err(format!("{value:?} is not a whole number")),
            },
            VariableKind::Choice => {
                if v.choices.iter().any(|c| c.value == value) {
                    Ok(value)
                } else {
                    let allowed: Vec<&str> = v.choices.iter().map(|c| c.value.as_str()).collect();
                    Err(format!("{value:?} is not one of {}", allowed.join(", ")))
                }
            }
            VariableKind::Text | VariableKind::Secret => Ok(value),
        };
        match checked {
            Ok(value) => {
                values.insert(v.key.clone(), value);
            }
            Err(message) => problems.push(field_error(&v.key, message)),
        }
    }
    if problems.is_empty() {
        Ok(Settings { values })
    } else {
        Err(ConnectorError::InvalidSettings(problems))
    }
}

/// `api-na.example.com` → `https://api-na.example.com`; `http://127.0.0.1:8080/x` →
/// `http://127.0.0.1:8080` (any path dropped). The error is a message for the admin.
pub fn site_of(value: &str) -> core::result::Result<String, String> {
    let url = value.trim();
    let (scheme, rest) = match url.find("://") {
        Some(at) => (url[..at].to_ascii_lowercase(), &url[at + 3..]),
        None => ("https".to_string(), url),
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "{url:?} must be an http or https address, e.g. api-na.myconnectwise.net"
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') || authority.contains(char::is_whitespace) {
        return Err(format!(
            "{url:?} is not a site address; give it as api-na.myconnectwise.net"
        ));
    }
    Ok(format!("{scheme}://{authority}"))
}
