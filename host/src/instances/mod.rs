//! Connector instances: activation under a unique name, enable/disable/delete, settings (the
//! connector's server variables and the host's `host.` options), sync options and lookups, each
//! validated against the connector's manifest before one transaction stores it; and the check
//! that runs the connector's `activate` against the remote. Secret values are sealed before they
//! reach the store and are never shown back. [`Instances::context`] assembles what a call of the
//! instance is granted. Its callback hook and the remote's registrations for it are in `hooks`.

mod hooks;

pub use hooks::{HookView, hook_path};

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::capabilities::context::{InstanceContext, LookupEntry};
use crate::capabilities::options::{InstanceOptions, OPTION_KEYS};
use crate::capabilities::settings;
use crate::contract::bindings::types::ConnectorError;
use crate::contract::manifest::{
    Direction, Entity, Manifest, Operations, UnknownDirection, UnknownEntity, VariableKind,
};
use crate::registry::{Loaded, Registry, RegistryError, parse_requirement};
use crate::runtime::CallError;
use crate::store::secrets::{SecretBox, SecretError};
use crate::store::{CheckRow, InstanceRow, LookupRow, Store, StoreError, StoredValue};

/// What a masked secret looks like when settings are shown.
pub const MASK: &str = "********";

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Registry(Box<RegistryError>),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Call(Box<CallError>),
    #[error("{}", .0.iter().map(|(k, m)| format!("{k}: {m}")).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<(String, String)>),
    #[error("instance {0:?} is disabled; `bss-host instances enable {0}` turns it on again")]
    Disabled(String),
    #[error("instance {instance:?} needs settings: {connector} {version} requires {}; set them with `bss-host settings set {instance} KEY=VALUE`", .missing.join(", "))]
    NeedsSettings {
        instance: String,
        connector: String,
        version: String,
        missing: Vec<String>,
    },
    #[error("the connector could not list choices for {key}: {reason}")]
    Choices { key: String, reason: String },
    /// The connector or the remote failed a callbacks change (not the input's fault).
    #[error("the remote's callbacks could not be changed: {0}")]
    Callbacks(String),
    /// Something of an instance that is not there (a schedule, a feed sink); says how to list
    /// what is.
    #[error("{0}")]
    NotFound(String),
}

impl From<RegistryError> for InstanceError {
    fn from(error: RegistryError) -> Self {
        InstanceError::Registry(Box::new(error))
    }
}

impl From<CallError> for InstanceError {
    fn from(error: CallError) -> Self {
        InstanceError::Call(Box::new(error))
    }
}

fn invalid(key: &str, message: impl Into<String>) -> InstanceError {
    InstanceError::Invalid(vec![(key.to_string(), message.into())])
}

/// A setting as shown to an admin.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SettingView {
    pub key: String,
    pub label: String,
    /// The value; secrets masked; none when unset.
    pub value: Option<String>,
    /// `set`, `default` or `unset`.
    pub origin: &'static str,
    pub kind: String,
    pub required: bool,
}

/// The result of running the connector's check.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CheckOutcome {
    pub ok: bool,
    pub summary: String,
    pub problems: Vec<(String, String)>,
}

pub struct Instances {
    store: Arc<dyn Store>,
    secrets: Arc<SecretBox>,
    registry: Arc<Registry>,
}

fn is_instance_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Parses `KEY=VALUE`.
pub fn parse_pair(text: &str) -> Result<(String, String), InstanceError> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(invalid(text, "expected KEY=VALUE")),
    }
}

/// Parses `ENTITY:DIRECTION:OPS` (OPS: `create,update`, `create+update`, `all` or `none`).
pub fn parse_sync_option(text: &str) -> Result<(Entity, Direction, Operations), InstanceError> {
    let parts: Vec<&str> = text.split(':').collect();
    let [entity, direction, ops] = parts.as_slice() else {
        return Err(invalid(
            text,
            "expected ENTITY:DIRECTION:OPERATIONS, e.g. account:push:create,update",
        ));
    };
    let entity: Entity = entity
        .parse()
        .map_err(|e: UnknownEntity| invalid(text, e.to_string()))?;
    let direction: Direction = direction
        .parse()
        .map_err(|e: UnknownDirection| invalid(text, e.to_string()))?;
    let mut operations = Operations::default();
    for op in ops
        .split([',', '+'])
        .map(str::trim)
        .filter(|o| !o.is_empty())
    {
        match op.to_ascii_lowercase().as_str() {
            "create" => operations.create = true,
            "update" => operations.update = true,
            "delete" => operations.delete = true,
            "all" => {
                operations = Operations {
                    create: true,
                    update: true,
                    delete: true,
                }
            }
            "none" => {}
            other => {
                return Err(invalid(
                    text,
                    format!("{other:?} is not an operation (create, update, delete, all, none)"),
                ));
            }
        }
    }
    Ok((entity, direction, operations))
}

fn kind_name(kind: VariableKind) -> &'static str {
    match kind {
        VariableKind::Text => "text",
        VariableKind::Secret => "secret",
        VariableKind::Url => "url",
        VariableKind::Integer => "integer",
        VariableKind::Choice => "choice",
    }
}

impl Instances {
    pub fn new(store: Arc<dyn Store>, secrets: Arc<SecretBox>, registry: Arc<Registry>) -> Self {
        Instances {
            store,
            secrets,
            registry,
        }
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The key that seals secret values (settings, feed sink secrets).
    pub fn secrets(&self) -> &SecretBox {
        &self.secrets
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Whether `name` can name a new instance: well formed and not taken.
    pub fn check_new_name(&self, name: &str) -> Result<(), InstanceError> {
        if !is_instance_name(name) {
            return Err(invalid(
                "name",
                format!("{name:?} must be 1-64 letters, digits, '-', '_' or '.'"),
            ));
        }
        if self.store.instance(name)?.is_some() {
            return Err(invalid(
                "name",
                format!("an instance named {name:?} exists already; choose another name"),
            ));
        }
        Ok(())
    }

    /// Pins instance `name` to `version` of its connector (`None`: follow the newest version
    /// it accepts); the version must be loaded.
    pub fn pin(&self, name: &str, version: Option<&str>) -> Result<(), InstanceError> {
        let instance = self.get(name)?;
        let requirement = version.map(|v| format!("={}", v.trim().trim_start_matches('=')));
        if let Some(requirement) = &requirement {
            parse_requirement(requirement)?;
            self.registry
                .resolve(&instance.connector, Some(requirement))?;
        }
        Ok(self.store.set_version_req(name, requirement.as_deref())?)
    }

    /// Creates an instance of `connector`.
    pub fn activate(
        &self,
        connector: &str,
        name: &str,
        version: Option<&str>,
        installation: Option<&str>,
    ) -> Result<InstanceRow, InstanceError> {
        if !is_instance_name(name) {
            return Err(invalid(
                "name",
                format!("{name:?} must be 1-64 letters, digits, '-', '_' or '.'"),
            ));
        }
        if let Some(requirement) = version {
            parse_requirement(requirement)?;
        }
        self.registry.resolve(connector, version)?;
        let row = InstanceRow {
            name: name.to_string(),
            connector: connector.to_string(),
            version_req: version.map(str::to_string),
            installation: installation.unwrap_or(name).to_string(),
            enabled: true,
            created_at: crate::time::now_rfc3339(),
        };
        self.store.create_instance(&row)?;
        Ok(row)
    }

    pub fn get(&self, name: &str) -> Result<InstanceRow, InstanceError> {
        Ok(self
            .store
            .instance(name)?
            .ok_or_else(|| StoreError::NoInstance(name.to_string()))?)
    }

    pub fn list(&self) -> Result<Vec<InstanceRow>, InstanceError> {
        Ok(self.store.instances()?)
    }

    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), InstanceError> {
        Ok(self.store.set_enabled(name, enabled)?)
    }

    pub fn delete(&self, name: &str) -> Result<(), InstanceError> {
        Ok(self.store.delete_instance(name)?)
    }

    /// The connector version serving the instance.
    pub fn connector_of(&self, instance: &InstanceRow) -> Result<Loaded, InstanceError> {
        Ok(self
            .registry
            .resolve(&instance.connector, instance.version_req.as_deref())?)
    }

    /// Validates and stores settings in one transaction; an empty value clears a setting.
    /// Returns whether the settings are complete (every required variable has a value).
    /// `actor` is who asked, for the audit log, which records the keys changed (never a value).
    pub fn set_settings(
        &self,
        name: &str,
        pairs: &[(String, String)],
        actor: &str,
    ) -> Result<bool, InstanceError> {
        let instance = self.get(name)?;
        let loaded = self.connector_of(&instance)?;
        let manifest = loaded.connector.manifest();
        let mut problems = Vec::new();
        let mut changes = Vec::new();
        let mut scratch = InstanceOptions::default();
        for (key, value) in pairs {
            let value = value.trim();
            if key.starts_with("host.") {
                if value.is_empty() {
                    if OPTION_KEYS.contains(&key.as_str()) {
                        changes.push((key.clone(), None));
                    } else {
                        problems.push((
                            key.clone(),
                            format!(
                                "unknown host option; the options are {}",
                                OPTION_KEYS.join(", ")
                            ),
                        ));
                    }
                    continue;
                }
                match scratch.set(key, value) {
                    Ok(()) => {
                        changes.push((key.clone(), Some(StoredValue::Plain(value.to_string()))))
                    }
                    Err(e) => problems.push((key.clone(), e.message)),
                }
                continue;
            }
            let Some(variable) = manifest.variable(key) else {
                problems.push((
                    key.clone(),
                    settings::unknown_key(manifest, " and the host.* options"),
                ));
                continue;
            };
            if value.is_empty() {
                changes.push((key.clone(), None));
                continue;
            }
            if let Err(message) = settings::parse_for(manifest, variable, value) {
                problems.push((key.clone(), message));
                continue;
            }
            let stored = if variable.kind == VariableKind::Secret {
                StoredValue::Sealed(self.secrets.seal(&format!("{name}/{key}"), value))
            } else {
                StoredValue::Plain(value.to_string())
            };
            changes.push((key.clone(), Some(stored)));
        }
        if !problems.is_empty() {
            return Err(InstanceError::Invalid(problems));
        }
        self.store.change_settings(name, &changes)?;
        let set: Vec<&str> = changes
            .iter()
            .filter(|(_, value)| value.is_some())
            .map(|(key, _)| key.as_str())
            .collect();
        let cleared: Vec<&str> = changes
            .iter()
            .filter(|(_, value)| value.is_none())
            .map(|(key, _)| key.as_str())
            .collect();
        let detail = [("set", &set), ("cleared", &cleared)]
            .iter()
            .filter(|(_, keys)| !keys.is_empty())
            .map(|(what, keys)| format!("{what}: {}", keys.join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        self.registry
            .audit(actor, "settings.changed", name, &detail, None);
        let stored = self.store.settings(name)?;
        Ok(missing_required(manifest, &stored).is_empty())
    }

    /// The settings as an admin sees them: every server variable (secrets masked) and the host
    /// options that are set.
    pub fn show_settings(&self, name: &str) -> Result<Vec<SettingView>, InstanceError> {
        let instance = self.get(name)?;
        let loaded = self.connector_of(&instance)?;
        let stored = self.store.settings(name)?;
        let mut views = Vec::new();
        for variable in &loaded.connector.manifest().server_variables {
            let (value, origin) = match (stored.get(&variable.key), &variable.default_value) {
                (Some(StoredValue::Sealed(_)), _) => (Some(MASK.to_string()), "set"),
                (Some(StoredValue::Plain(v)), _) => (Some(v.clone()), "set"),
                (None, Some(default)) => (Some(default.clone()), "default"),
                (None, None) => (None, "unset"),
            };
            views.push(SettingView {
                key: variable.key.clone(),
                label: variable.label.clone(),
                value,
                origin,
                kind: kind_name(variable.kind).to_string(),
                required: variable.required,
            });
        }
        for (key, value) in stored.iter().filter(|(k, _)| k.starts_with("host.")) {
            let StoredValue::Plain(value) = value else {
                continue;
            };
            views.push(SettingView {
                key: key.clone(),
                label: "host option".into(),
                value: Some(value.clone()),
                origin: "set",
                kind: "option".into(),
                required: false,
            });
        }
        Ok(views)
    }

    /// What one call of the instance is granted. Refuses a disabled instance.
    pub fn context(&self, name: &str) -> Result<(Loaded, Arc<InstanceContext>), InstanceError> {
        let instance = self.get(name)?;
        if !instance.enabled {
            return Err(InstanceError::Disabled(name.to_string()));
        }
        let loaded = self.connector_of(&instance)?;
        let stored = self.store.settings(name)?;
        let missing = missing_required(loaded.connector.manifest(), &stored);
        if !missing.is_empty() {
            return Err(InstanceError::NeedsSettings {
                instance: name.to_string(),
                connector: instance.connector.clone(),
                version: loaded.version.to_string(),
                missing,
            });
        }
        let context = self.build_context(&instance, loaded.connector.manifest(), stored)?;
        Ok((loaded, Arc::new(context)))
    }

    fn build_context(
        &self,
        instance: &InstanceRow,
        manifest: &Manifest,
        stored: BTreeMap<String, StoredValue>,
    ) -> Result<InstanceContext, InstanceError> {
        let mut values = BTreeMap::new();
        let mut options = InstanceOptions::default();
        let mut sealed_values = Vec::new();
        for (key, value) in stored {
            let text = match value {
                StoredValue::Plain(v) => v,
                StoredValue::Sealed(sealed) => {
                    let text = self
                        .secrets
                        .open(&format!("{}/{key}", instance.name), &sealed)?;
                    sealed_values.push((key.clone(), text.clone()));
                    text
                }
            };
            if key.starts_with("host.") {
                options
                    .set(&key, &text)
                    .map_err(|e| invalid(&key, e.message))?;
            } else if manifest.variable(&key).is_some() {
                values.insert(key, text);
            }
        }
        let lookups = self
            .store
            .lookups(&instance.name)?
            .into_iter()
            .map(|(key, rows)| {
                let entries = rows
                    .into_iter()
                    .map(|r| LookupEntry {
                        bss_value: r.bss_value,
                        remote_value: r.remote_value,
                        pull_default: r.pull_default,
                    })
                    .collect();
                (key, entries)
            })
            .collect();
        let mut context = InstanceContext::new(&instance.name, manifest, &values, lookups, options)
            .map_err(|e| {
                InstanceError::Invalid(e.problems.into_iter().map(|p| (p.key, p.message)).collect())
            })?;
        // Stored sealed stays sealed, whatever the manifest of the version serving now says.
        context.seal(&sealed_values);
        Ok(context)
    }

    /// Runs the connector's `activate` against the remote and records the outcome.
    pub async fn check(&self, name: &str) -> Result<CheckOutcome, InstanceError> {
        let instance = self.get(name)?;
        let loaded = self.connector_of(&instance)?;
        let stored = self.store.settings(name)?;
        let needed = required_for_sync_options(
            loaded.connector.manifest(),
            &stored,
            &self.store.sync_options(name)?,
        );
        let outcome = match self.build_context(&instance, loaded.connector.manifest(), stored) {
            Ok(_) if !needed.is_empty() => CheckOutcome {
                ok: false,
                summary: "settings the enabled sync options need are not set".into(),
                problems: needed,
            },
            Err(InstanceError::Invalid(problems)) => CheckOutcome {
                ok: false,
                summary: "the settings are incomplete or invalid".into(),
                problems,
            },
            Err(other) => return Err(other),
            Ok(context) => {
                // What the connector says is redacted and capped before it is shown or stored.
                let redactor = context.redactor().clone();
                match loaded.connector.activate(&Arc::new(context)).await {
                    Ok(Ok(summary)) => CheckOutcome {
                        ok: true,
                        summary: redactor.bounded(&summary),
                        problems: vec![],
                    },
                    Ok(Err(ConnectorError::InvalidSettings(fields))) => CheckOutcome {
                        ok: false,
                        summary: "the connector found problems in the settings".into(),
                        problems: bounded_problems(&fields, &redactor),
                    },
                    Ok(Err(other)) => CheckOutcome {
                        ok: false,
                        summary: redactor
                            .bounded(&crate::contract::describe_connector_error(&other)),
                        problems: vec![],
                    },
                    Err(call) => CheckOutcome {
                        ok: false,
                        summary: redactor.bounded(&call.to_string()),
                        problems: vec![],
                    },
                }
            }
        };
        self.store.record_check(
            name,
            &CheckRow {
                checked_at: crate::time::now_rfc3339(),
                ok: outcome.ok,
                summary: outcome.summary.clone(),
                problems: outcome.problems.clone(),
            },
        )?;
        Ok(outcome)
    }

    /// Sets sync options; only what the connector supports can be enabled.
    pub fn set_sync_options(
        &self,
        name: &str,
        specs: &[(Entity, Direction, Operations)],
    ) -> Result<(), InstanceError> {
        let instance = self.get(name)?;
        let loaded = self.connector_of(&instance)?;
        let manifest = loaded.connector.manifest();
        let mut problems = Vec::new();
        for (entity, direction, ops) in specs {
            let supported = manifest
                .sync_options
                .iter()
                .find(|o| o.entity == *entity && o.direction == *direction)
                .map(|o| o.operations)
                .unwrap_or_default();
            let label = format!("{entity}:{direction}");
            for (wanted, can, op) in [
                (ops.create, supported.create, "create"),
                (ops.update, supported.update, "update"),
                (ops.delete, supported.delete, "delete"),
            ] {
                if wanted && !can {
                    problems.push((
                        label.clone(),
                        format!(
                            "connector {} does not support {op} for {label}",
                            manifest.name
                        ),
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(InstanceError::Invalid(problems));
        }
        Ok(self.store.set_sync_options(name, specs)?)
    }

    pub fn sync_options(
        &self,
        name: &str,
    ) -> Result<Vec<(Entity, Direction, Operations)>, InstanceError> {
        Ok(self.store.sync_options(name)?)
    }

    /// The remote values an admin may map `lookup` (a lookup key, or a server variable with
    /// choices) to, from the connector.
    pub async fn lookup_choices(
        &self,
        name: &str,
        lookup: &str,
    ) -> Result<Vec<(String, String)>, InstanceError> {
        let (loaded, context) = self.context(name)?;
        let manifest = loaded.connector.manifest();
        let source = manifest
            .lookups
            .iter()
            .find(|l| l.key == lookup)
            .map(|l| l.choices_from.clone())
            .or_else(|| {
                manifest
                    .variable(lookup)
                    .and_then(|v| v.choices_from.clone())
            })
            .ok_or_else(|| {
                let known: Vec<&str> = manifest.lookups.iter().map(|l| l.key.as_str()).collect();
                invalid(
                    lookup,
                    format!(
                        "not a lookup of {}; its lookups are {}",
                        manifest.name,
                        known.join(", ")
                    ),
                )
            })?;
        let redactor = context.redactor();
        match loaded.connector.lookup_choices(&context, &source).await? {
            // A value is kept as given (it is what a lookup stores); a label is only shown.
            Ok(choices) => Ok(choices
                .into_iter()
                .map(|c| (c.value, redactor.bounded(&c.label)))
                .collect()),
            Err(error) => Err(InstanceError::Choices {
                key: lookup.to_string(),
                reason: redactor.bounded(&crate::contract::describe_connector_error(&error)),
            }),
        }
    }

    /// Maps BSS values to remote values in one lookup; each remote value must be among the
    /// connector's choices. An empty remote value removes the mapping.
    pub async fn set_lookups(
        &self,
        name: &str,
        lookup: &str,
        pairs: &[(String, String)],
        pull_default: Option<&str>,
    ) -> Result<(), InstanceError> {
        let choices = self.lookup_choices(name, lookup).await?;
        let mut rows = Vec::new();
        let mut removed = Vec::new();
        let mut problems = Vec::new();
        for (bss, remote) in pairs {
            let remote = remote.trim();
            if remote.is_empty() {
                removed.push(bss.clone());
                continue;
            }
            if !choices.iter().any(|(value, _)| value == remote) {
                let offered: Vec<String> = choices
                    .iter()
                    .take(20)
                    .map(|(v, l)| format!("{v} ({l})"))
                    .collect();
                problems.push((
                    format!("{lookup}/{bss}"),
                    format!(
                        "{remote:?} is not offered by the connector; choose one of {}",
                        offered.join(", ")
                    ),
                ));
                continue;
            }
            rows.push(LookupRow {
                bss_value: bss.clone(),
                remote_value: remote.to_string(),
                pull_default: pull_default == Some(bss.as_str()),
            });
        }
        if !problems.is_empty() {
            return Err(InstanceError::Invalid(problems));
        }
        if let Some(default) = pull_default {
            // Only one BSS value per remote value is the pull default: clear the flag on the others.
            let existing = self.store.lookups(name)?.remove(lookup).unwrap_or_default();
            let remote = rows
                .iter()
                .find(|r| r.bss_value == default)
                .map(|r| r.remote_value.clone());
            for row in existing {
                if Some(&row.remote_value) == remote.as_ref()
                    && row.bss_value != default
                    && !rows.iter().any(|r| r.bss_value == row.bss_value)
                {
                    rows.push(LookupRow {
                        pull_default: false,
                        ..row
                    });
                }
            }
        }
        self.store.set_lookup_rows(name, lookup, &rows)?;
        if !removed.is_empty() {
            self.store.remove_lookup_rows(name, lookup, &removed)?;
        }
        Ok(())
    }

    /// Writes one lookup's table as an admin edited it: `rows` are kept (each remote value
    /// offered by the connector, except a row that keeps the value it has, which the remote may
    /// have stopped offering; at most one pull default per remote value), `removed` BSS values
    /// go. Nothing is written when anything is refused.
    pub async fn set_lookup_table(
        &self,
        name: &str,
        lookup: &str,
        rows: &[LookupRow],
        removed: &[String],
    ) -> Result<(), InstanceError> {
        let choices = self.lookup_choices(name, lookup).await?;
        let stored = self.store.lookups(name)?.remove(lookup).unwrap_or_default();
        let mut problems = Vec::new();
        for row in rows {
            let offered = choices.iter().any(|(value, _)| *value == row.remote_value);
            let kept = stored
                .iter()
                .any(|s| s.bss_value == row.bss_value && s.remote_value == row.remote_value);
            if !offered && !kept {
                problems.push((
                    format!("{lookup}/{}", row.bss_value),
                    format!(
                        "{:?} is not offered by the connector; choose one of its values",
                        row.remote_value
                    ),
                ));
            }
        }
        let mut defaults: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for row in rows.iter().filter(|r| r.pull_default) {
            defaults
                .entry(row.remote_value.as_str())
                .or_default()
                .push(row.bss_value.as_str());
        }
        for (remote, bss) in defaults.iter().filter(|(_, bss)| bss.len() > 1) {
            problems.push((
                format!("{lookup}/{}", bss.join(", ")),
                format!(
                    "only one BSS value can be the pull default for remote value {remote:?}; pulled records get that one"
                ),
            ));
        }
        if !problems.is_empty() {
            return Err(InstanceError::Invalid(problems));
        }
        self.store.set_lookup_rows(name, lookup, rows)?;
        if !removed.is_empty() {
            self.store.remove_lookup_rows(name, lookup, removed)?;
        }
        Ok(())
    }

    pub fn lookups(&self, name: &str) -> Result<BTreeMap<String, Vec<LookupRow>>, InstanceError> {
        Ok(self.store.lookups(name)?)
    }
}

/// An instance as the command line and the API show it (one builder for both).
#[derive(Debug, Clone, Serialize)]
pub struct InstanceView {
    pub instance: InstanceRow,
    /// The connector version serving it.
    pub version: String,
    /// `enabled`, `disabled`, or `needs settings` (see `missing_settings`).
    pub state: &'static str,
    pub missing_settings: Vec<String>,
    pub last_check: Option<CheckRow>,
}

impl Instances {
    /// How instance `name` stands: its row, the version serving it, what it lacks, its last check.
    pub fn view(&self, name: &str) -> Result<InstanceView, InstanceError> {
        let instance = self.get(name)?;
        let loaded = self.connector_of(&instance)?;
        let missing_settings =
            missing_required(loaded.connector.manifest(), &self.store.settings(name)?);
        let state = match (instance.enabled, missing_settings.is_empty()) {
            (false, _) => "disabled",
            (true, true) => "enabled",
            (true, false) => "needs settings",
        };
        Ok(InstanceView {
            version: loaded.version.to_string(),
            last_check: self.store.last_check(name)?,
            instance,
            state,
            missing_settings,
        })
    }
}

/// Required variables with neither a stored value nor a default.
pub fn missing_required(
    manifest: &Manifest,
    stored: &BTreeMap<String, StoredValue>,
) -> Vec<String> {
    manifest
        .server_variables
        .iter()
        .filter(|v| v.required && v.default_value.is_none() && !stored.contains_key(&v.key))
        .map(|v| v.key.clone())
        .collect()
}

/// Variables required by an enabled sync option (`required-when`) that have no value, as
/// (key, problem) pairs naming the option.
pub fn required_for_sync_options(
    manifest: &Manifest,
    stored: &BTreeMap<String, StoredValue>,
    options: &[(Entity, Direction, Operations)],
) -> Vec<(String, String)> {
    let enabled = |entity: Entity, direction: Direction| {
        options.iter().any(|(e, d, ops)| {
            *e == entity && *d == direction && (ops.create || ops.update || ops.delete)
        })
    };
    manifest
        .server_variables
        .iter()
        .filter(|v| v.default_value.is_none() && !stored.contains_key(&v.key))
        .filter_map(|v| {
            let (entity, direction) = v
                .required_when
                .iter()
                .find(|(entity, direction)| enabled(*entity, *direction))?;
            Some((
                v.key.clone(),
                format!(
                    "{} is required while {}:{} is enabled ({}); set it, or turn that sync option off",
                    v.label,
                    entity,
                    direction,
                    v.purpose
                ),
            ))
        })
        .collect()
}

/// At most this many problems of one check are kept.
const MAX_PROBLEMS: usize = 100;

/// A connector's per-field problems as the host shows and stores them: redacted, each capped,
/// at most [`MAX_PROBLEMS`] (then one line saying how many more).
fn bounded_problems(
    fields: &[crate::contract::bindings::types::FieldError],
    redactor: &crate::capabilities::log::Redactor,
) -> Vec<(String, String)> {
    let mut problems: Vec<(String, String)> = fields
        .iter()
        .take(MAX_PROBLEMS)
        .map(|f| (redactor.bounded(&f.field), redactor.bounded(&f.message)))
        .collect();
    if fields.len() > MAX_PROBLEMS {
        problems.push((
            "…".to_string(),
            format!("{} more problems", fields.len() - MAX_PROBLEMS),
        ));
    }
    problems
}

/// A connector error in words, capped at [`crate::capabilities::log::MAX_TEXT_BYTES`] (not
/// redacted: callers that show or store it redact it with the instance's values).
pub fn describe_connector_error(error: &ConnectorError) -> String {
    crate::capabilities::log::cap(
        &crate::contract::describe_connector_error(error),
        crate::capabilities::log::MAX_TEXT_BYTES,
    )
    .into_owned()
}
