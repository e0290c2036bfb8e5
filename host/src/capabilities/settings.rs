//! The one settings parser. A server variable's value is checked and typed by its kind here and
//! nowhere else: a whole number, one of the declared choices, a URL as the origin requests may go
//! to. [`parse`] reads an instance's whole set of values (unknown keys, defaults, required
//! variables) into typed settings or every problem at once; [`parse_for`] checks one value as an
//! admin sets it (its kind, and a URL's host against the connector's declared reach);
//! [`default_problems`] checks the defaults a manifest declares when it loads.

use std::collections::BTreeMap;
use std::fmt;

use super::allowed_hosts::Origin;
use crate::contract::manifest::{Manifest, ServerVariable, VariableKind};

/// A setting's value by the kind of its variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typed {
    Text,
    /// Only the host reads it; the guest never does.
    Secret,
    Integer(i64),
    Choice,
    /// The origin the value names, which requests of the instance may go to.
    Url(Origin),
}

/// One setting as an instance's calls use it: the text (the declared default when none is set)
/// and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub text: String,
    pub typed: Typed,
}

/// A problem with one setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingProblem {
    pub key: String,
    pub message: String,
}

/// Every problem with an instance's settings, each against its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SettingsError {
    pub problems: Vec<SettingProblem>,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.key, p.message))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

/// Checks one non-empty value against its variable's kind; the error says what is wrong with it.
pub fn parse_value(variable: &ServerVariable, text: &str) -> Result<Typed, String> {
    match variable.kind {
        VariableKind::Text => Ok(Typed::Text),
        VariableKind::Secret => Ok(Typed::Secret),
        VariableKind::Integer => text
            .trim()
            .parse::<i64>()
            .map(Typed::Integer)
            .map_err(|_| format!("{text:?} is not a whole number")),
        VariableKind::Choice => {
            if variable.choices.iter().any(|c| c.value == text) {
                Ok(Typed::Choice)
            } else {
                let allowed: Vec<&str> =
                    variable.choices.iter().map(|c| c.value.as_str()).collect();
                Err(format!("{text:?} is not one of {}", allowed.join(", ")))
            }
        }
        VariableKind::Url => Origin::parse_setting(text)
            .map(Typed::Url)
            .map_err(|e| e.reason),
    }
}

/// Checks one non-empty value of one of `manifest`'s variables: its kind, and for a URL, that its
/// host is within the connector's declared reach (contract 1.4).
pub fn parse_for(
    manifest: &Manifest,
    variable: &ServerVariable,
    text: &str,
) -> Result<Typed, String> {
    let typed = parse_value(variable, text)?;
    if let Typed::Url(origin) = &typed {
        let reach = manifest.reach().map_err(|problems| problems.join("; "))?;
        if !reach.allows(&origin.host, origin.port) {
            return Err(format!(
                "{origin} is outside the hosts {} {} declares it will ever call ({reach}); give a URL on one of them (a connector cannot be pointed anywhere else)",
                manifest.name, manifest.version
            ));
        }
    }
    Ok(typed)
}

/// The problem with a key the manifest does not declare, naming the keys it does.
pub fn unknown_key(manifest: &Manifest, also: &str) -> String {
    let known: Vec<&str> = manifest
        .server_variables
        .iter()
        .map(|v| v.key.as_str())
        .collect();
    format!(
        "not a setting of {}; its settings are {}{also}",
        manifest.name,
        known.join(", ")
    )
}

/// Parses an instance's server variable values (secrets included, host options not): every key
/// must be declared, every required variable must have a value or a default, every value must
/// suit its kind. Blank values count as unset. The result holds a setting for every variable
/// that has a value, defaults filled in.
pub fn parse(
    manifest: &Manifest,
    values: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Setting>, SettingsError> {
    let mut problems = Vec::new();
    for key in values.keys() {
        if manifest.variable(key).is_none() {
            problems.push(SettingProblem {
                key: key.clone(),
                message: unknown_key(manifest, ""),
            });
        }
    }
    let mut settings = BTreeMap::new();
    for variable in &manifest.server_variables {
        let key = &variable.key;
        let blank = |v: &&String| !v.trim().is_empty();
        let text = values
            .get(key)
            .filter(blank)
            .or(variable.default_value.as_ref().filter(blank));
        let Some(text) = text else {
            if variable.required {
                problems.push(SettingProblem {
                    key: key.clone(),
                    message: format!("{} is required ({})", variable.label, variable.purpose),
                });
            }
            continue;
        };
        match parse_for(manifest, variable, text) {
            Ok(typed) => {
                settings.insert(
                    key.clone(),
                    Setting {
                        text: text.clone(),
                        typed,
                    },
                );
            }
            Err(message) => problems.push(SettingProblem {
                key: key.clone(),
                message,
            }),
        }
    }
    if problems.is_empty() {
        Ok(settings)
    } else {
        Err(SettingsError { problems })
    }
}

/// Defaults a manifest declares that its own variables' kinds refuse, as manifest problems.
pub fn default_problems(manifest: &Manifest) -> Vec<String> {
    manifest
        .server_variables
        .iter()
        .filter(|v| v.kind != VariableKind::Secret)
        .filter_map(|v| {
            let default = v.default_value.as_ref()?;
            let reason = parse_for(manifest, v, default).err()?;
            Some(format!(
                "server variable {:?} has default {default:?}, which its kind refuses: {reason}",
                v.key
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::manifest::{Auth, AuthScheme, Choice};

    fn variable(key: &str, kind: VariableKind, default: Option<&str>) -> ServerVariable {
        ServerVariable {
            key: key.into(),
            label: key.into(),
            purpose: "a test".into(),
            description: String::new(),
            kind,
            choices: vec![Choice {
                value: "a".into(),
                label: "A".into(),
            }],
            required: true,
            required_when: Vec::new(),
            default_value: default.map(str::to_string),
            choices_from: None,
        }
    }

    fn manifest(variables: Vec<ServerVariable>) -> Manifest {
        Manifest {
            name: "test".into(),
            version: "1.0.0".into(),
            description: String::new(),
            server_variables: variables,
            sync_options: Vec::new(),
            lookups: Vec::new(),
            auth: Auth {
                scheme: AuthScheme::None,
                headers: Vec::new(),
            },
            remote_host_variable: String::new(),
            documentation_url: None,
            reach: Vec::new(),
        }
    }

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn values_are_typed_by_kind_with_defaults_filled_in() {
        let m = manifest(vec![
            variable("count", VariableKind::Integer, Some("7")),
            variable("site", VariableKind::Url, None),
            variable("pick", VariableKind::Choice, None),
            variable("key", VariableKind::Secret, None),
        ]);
        let parsed = parse(
            &m,
            &values(&[("site", "api.example.com"), ("pick", "a"), ("key", "k")]),
        )
        .unwrap();
        assert_eq!(parsed["count"].typed, Typed::Integer(7));
        assert_eq!(parsed["count"].text, "7");
        assert!(
            matches!(&parsed["site"].typed, Typed::Url(o) if o.to_string() == "https://api.example.com:443")
        );
        assert_eq!(parsed["pick"].typed, Typed::Choice);
        assert_eq!(parsed["key"].typed, Typed::Secret);
    }

    #[test]
    fn every_problem_is_named_against_its_key() {
        let m = manifest(vec![
            variable("count", VariableKind::Integer, None),
            variable("pick", VariableKind::Choice, None),
            variable("needed", VariableKind::Text, None),
        ]);
        let problems = parse(
            &m,
            &values(&[
                ("count", "seven"),
                ("pick", "b"),
                ("stray", "x"),
                ("needed", " "),
            ]),
        )
        .unwrap_err()
        .problems;
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["stray", "count", "pick", "needed"], "{problems:?}");
        assert!(
            problems[0]
                .message
                .contains("its settings are count, pick, needed")
        );
        assert!(problems[1].message.contains("not a whole number"));
        assert!(problems[2].message.contains("is not one of a"));
        assert!(problems[3].message.contains("is required"));
    }

    #[test]
    fn defaults_the_kind_refuses_are_manifest_problems() {
        let m = manifest(vec![
            variable("count", VariableKind::Integer, Some("many")),
            variable("pick", VariableKind::Choice, Some("z")),
            variable("site", VariableKind::Url, Some("ftp://files.example.com")),
            variable("fine", VariableKind::Integer, Some("3")),
        ]);
        let problems = default_problems(&m);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[2].contains("use http or https"), "{problems:?}");
    }
}
