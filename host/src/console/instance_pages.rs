//! *Enabled Connectors* and one instance's setup pages: the list with each instance's status and
//! *Disable*/*Enable*/*Delete* (confirmed by typing the name); *Settings* (one field per server
//! variable, secrets write-only, id-valued variables as dropdowns of the remote's choices, the
//! `host.` options under Advanced, the version pin; saving checks the connection and puts each
//! problem beside its field); *Synchronization Options* (entity × direction × operation, what the
//! connector cannot do shown disabled with the reason); *Synchronization Lookups* (per lookup,
//! BSS value → one of the remote's values).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Serialize;

use super::{
    Answer, Done, Fields, PageError, Shared, Signed, answer, instances, refused_if, see_other,
};
use crate::capabilities::options::OPTION_KEYS;
use crate::contract::manifest::{Direction, Entity, Manifest, Operations, VariableKind};
use crate::instances::{CheckOutcome, InstanceError};
use crate::store::StoredValue;
use crate::store::token_store::Role;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/instances", get(enabled_connectors))
        .route("/instances/{name}", get(instance_home))
        .route("/instances/{name}/enable", post(enable))
        .route("/instances/{name}/disable", post(disable))
        .route("/instances/{name}/delete", get(delete_page).post(delete))
        .route(
            "/instances/{name}/settings",
            get(settings_page).post(save_settings),
        )
        .route("/instances/{name}/pin", post(pin))
        .route(
            "/instances/{name}/sync-options",
            get(sync_options_page).post(save_sync_options),
        )
        .route("/instances/{name}/lookups", get(lookups_page))
        .route("/instances/{name}/lookups/{lookup}", post(save_lookup))
}

/// One row of Enabled Connectors.
#[derive(Serialize)]
struct InstanceLine {
    name: String,
    connector: String,
    version: String,
    installation: String,
    /// enabled, disabled, needs settings, check failed, or not loaded.
    status: String,
    detail: Option<String>,
    enabled: bool,
    last_run: Option<crate::store::RunRow>,
}

fn instance_lines(console: &Shared) -> Result<Vec<InstanceLine>, PageError> {
    let instances = instances(console);
    let mut lines = Vec::new();
    for row in instances.list()? {
        let last_run = instances.store().runs(&row.name)?.pop();
        let line = match instances.view(&row.name) {
            Ok(view) => {
                let (status, detail) = match (view.state, &view.last_check) {
                    ("enabled", Some(check)) if !check.ok => {
                        ("check failed".to_string(), Some(check.summary.clone()))
                    }
                    ("needs settings", _) => (
                        "needs settings".to_string(),
                        Some(format!("missing: {}", view.missing_settings.join(", "))),
                    ),
                    (state, _) => (state.to_string(), None),
                };
                InstanceLine {
                    version: view.version,
                    status,
                    detail,
                    name: row.name.clone(),
                    connector: row.connector.clone(),
                    installation: row.installation.clone(),
                    enabled: row.enabled,
                    last_run,
                }
            }
            Err(e) => InstanceLine {
                version: row.version_req.clone().unwrap_or_default(),
                status: "not loaded".into(),
                detail: Some(e.to_string()),
                name: row.name.clone(),
                connector: row.connector.clone(),
                installation: row.installation.clone(),
                enabled: row.enabled,
                last_run,
            },
        };
        lines.push(line);
    }
    Ok(lines)
}

fn list_page(
    console: &Shared,
    signed: &Signed,
    notice: Option<String>,
) -> Result<Response, PageError> {
    Ok(console.page(
        "instances.html",
        Some(signed),
        serde_json::json!({
            "title": "Enabled Connectors",
            "nav": "instances",
            "instances": instance_lines(console)?,
            "notice": notice,
        }),
    ))
}

async fn enabled_connectors(State(console): State<Shared>, signed: Signed, done: Done) -> Answer {
    let result = list_page(&console, &signed, done.0.map(str::to_string));
    answer(console, signed, result)
}

async fn instance_home(UrlPath(name): UrlPath<String>) -> Response {
    see_other(&format!("/instances/{name}/settings"))
}

async fn enable(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(name): UrlPath<String>,
    axum::Form(fields): axum::Form<Vec<(String, String)>>,
) -> Answer {
    switch(console, signed, name, Fields(fields), true).await
}

async fn disable(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(name): UrlPath<String>,
    axum::Form(fields): axum::Form<Vec<(String, String)>>,
) -> Answer {
    switch(console, signed, name, Fields(fields), false).await
}

async fn switch(console: Shared, signed: Signed, name: String, fields: Fields, on: bool) -> Answer {
    let result = async {
        signed.allow(&fields, Role::Admin)?;
        let instances = instances(&console);
        let warning = if on {
            instances.enable(&name).await?
        } else {
            instances.disable(&name).await?
        };
        tracing::info!(instance = %name, enabled = on, by = %signed.token.name, "instance switched in the console");
        match warning {
            Some(warning) => list_page(&console, &signed, Some(warning)),
            None => Ok(see_other(if on {
                "/instances?done=enabled"
            } else {
                "/instances?done=disabled"
            })),
        }
    }
    .await;
    answer(console, signed, result)
}

fn delete_form(
    console: &Shared,
    signed: &Signed,
    name: &str,
    error: Option<&str>,
) -> Result<Response, PageError> {
    instances(console).get(name)?;
    Ok(console.page_with(
        refused_if(error.is_some()),
        "delete.html",
        Some(signed),
        serde_json::json!({ "title": format!("Delete {name}"), "nav": "instances", "name": name, "error": error }),
    ))
}

async fn delete_page(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(name): UrlPath<String>,
) -> Answer {
    let result = signed
        .require(Role::Admin)
        .and_then(|()| delete_form(&console, &signed, &name, None));
    answer(console, signed, result)
}

/// Deletes an instance once its name was typed: its settings, lookups and id map go with it.
async fn delete(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(name): UrlPath<String>,
    fields: Fields,
) -> Answer {
    let result = async {
        signed.allow(&fields, Role::Admin)?;
        if fields.text("confirm") != name {
            return delete_form(
                &console,
                &signed,
                &name,
                Some("type the instance's name exactly to confirm; nothing was deleted"),
            );
        }
        let warning = instances(&console).delete_unsubscribed(&name).await?;
        tracing::info!(instance = %name, by = %signed.token.name, "instance deleted in the console");
        match warning {
            Some(warning) => list_page(&console, &signed, Some(warning)),
            None => Ok(see_other("/instances?done=deleted")),
        }
    }
    .await;
    answer(console, signed, result)
}

/// One server variable or host option as the Settings form shows it.
#[derive(Serialize, Default)]
struct Field {
    key: String,
    label: String,
    purpose: String,
    description: String,
    /// text, secret, url, integer, choice, option
    kind: &'static str,
    required: bool,
    required_when: Vec<String>,
    default: Option<String>,
    /// The value in the form (never a secret's).
    value: String,
    /// A secret has a value stored.
    is_set: bool,
    /// Values to choose from, as (value, label); none shows a text box.
    choices: Option<Vec<(String, String)>>,
    choices_note: Option<String>,
    errors: Vec<String>,
}

fn kind_of(kind: VariableKind) -> &'static str {
    match kind {
        VariableKind::Text => "text",
        VariableKind::Secret => "secret",
        VariableKind::Url => "url",
        VariableKind::Integer => "integer",
        VariableKind::Choice => "choice",
    }
}

/// What the settings form shows; `submitted` keeps what was typed when a save was refused.
struct SettingsForm<'a> {
    problems: &'a [(String, String)],
    submitted: Option<&'a Fields>,
    check: Option<CheckOutcome>,
    notice: Option<String>,
}

async fn settings_view(
    console: &Shared,
    signed: &Signed,
    name: &str,
    form: SettingsForm<'_>,
) -> Result<Response, PageError> {
    let instances = instances(console);
    let instance = instances.get(name)?;
    let loaded = instances.connector_of(&instance)?;
    let manifest = loaded.connector.manifest();
    let stored = instances.store().settings(name)?;
    let problems_of = |key: &str| -> Vec<String> {
        form.problems
            .iter()
            .chain(form.check.iter().flat_map(|c| c.problems.iter()))
            .filter(|(k, _)| k == key)
            .map(|(_, m)| m.clone())
            .collect()
    };
    let plain = |key: &str| match stored.get(key) {
        Some(StoredValue::Plain(v)) => v.clone(),
        _ => String::new(),
    };
    let typed = |key: &str, otherwise: String| match form.submitted {
        Some(fields) => fields
            .get(&format!("set:{key}"))
            .map(str::to_string)
            .unwrap_or(otherwise),
        None => otherwise,
    };
    // Remote choices need a working instance; the first failure says why for all of them.
    let mut choices_blocked: Option<String> = None;
    let mut fields = Vec::new();
    for variable in &manifest.server_variables {
        let secret = variable.kind == VariableKind::Secret;
        let mut field = Field {
            key: variable.key.clone(),
            label: variable.label.clone(),
            purpose: variable.purpose.clone(),
            description: variable.description.clone(),
            kind: kind_of(variable.kind),
            required: variable.required,
            required_when: variable
                .required_when
                .iter()
                .map(|(e, d)| format!("{e} {d}"))
                .collect(),
            default: variable.default_value.clone(),
            value: if secret {
                String::new()
            } else {
                typed(&variable.key, plain(&variable.key))
            },
            is_set: stored.contains_key(&variable.key),
            errors: problems_of(&variable.key),
            ..Field::default()
        };
        if !variable.choices.is_empty() {
            field.choices = Some(
                variable
                    .choices
                    .iter()
                    .map(|c| (c.value.clone(), c.label.clone()))
                    .collect(),
            );
        } else if variable.choices_from.is_some() {
            match &choices_blocked {
                Some(reason) => field.choices_note = Some(reason.clone()),
                None => match instances.lookup_choices(name, &variable.key).await {
                    Ok(choices) => field.choices = Some(choices),
                    Err(e @ (InstanceError::NeedsSettings { .. } | InstanceError::Disabled(_))) => {
                        let reason = format!(
                            "the choices come from the remote once the instance can reach it ({e}); until then, type an id"
                        );
                        choices_blocked = Some(reason.clone());
                        field.choices_note = Some(reason);
                    }
                    Err(e) => {
                        let reason =
                            format!("the remote's choices could not be read ({e}); type an id");
                        choices_blocked = Some(reason.clone());
                        field.choices_note = Some(reason);
                    }
                },
            }
        }
        fields.push(field);
    }
    let options: Vec<Field> = OPTION_KEYS
        .iter()
        .map(|key| Field {
            key: key.to_string(),
            label: key.to_string(),
            kind: "option",
            value: typed(key, plain(key)),
            is_set: stored.contains_key(*key),
            errors: problems_of(key),
            ..Field::default()
        })
        .collect();
    let known: Vec<&str> = manifest
        .server_variables
        .iter()
        .map(|v| v.key.as_str())
        .chain(OPTION_KEYS.iter().copied())
        .collect();
    let other_problems: Vec<(String, String)> = form
        .problems
        .iter()
        .chain(form.check.iter().flat_map(|c| c.problems.iter()))
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .cloned()
        .collect();
    let versions: Vec<String> = instances
        .registry()
        .listing()?
        .into_iter()
        .filter(|l| l.name == instance.connector && !l.withdrawn)
        .map(|l| l.version)
        .collect();
    let pinned = instance
        .version_req
        .as_deref()
        .map(|r| r.trim_start_matches('=').to_string());
    let has_errors = !form.problems.is_empty();
    Ok(console.page_with(
        refused_if(has_errors),
        "settings.html",
        Some(signed),
        serde_json::json!({
            "title": format!("Settings · {name}"),
            "nav": "instances",
            "tab": "settings",
            "name": name,
            "instance": instance,
            "view": instances.view(name).ok(),
            "version": loaded.version.to_string(),
            "documentation_url": manifest.documentation_url.clone(),
            "fields": fields,
            "options": options,
            "other_problems": other_problems,
            "has_errors": has_errors,
            "check": form.check,
            "last_check": instances.store().last_check(name)?,
            "notice": form.notice,
            "versions": versions,
            "pinned": pinned,
        }),
    ))
}

async fn settings_page(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(name): UrlPath<String>,
    done: Done,
) -> Answer {
    let result = settings_view(
        &console,
        &signed,
        &name,
        SettingsForm {
            problems: &[],
            submitted: None,
            check: None,
            notice: done.0.map(str::to_string),
        },
    )
    .await;
    answer(console, signed, result)
}

/// The changes a posted settings form makes (fields `set:KEY`, boxes `clear:KEY`): only what
/// differs from what is stored; a secret left empty keeps its value, its *clear* box removes it.
fn settings_changes(
    manifest: &Manifest,
    stored: &BTreeMap<String, StoredValue>,
    fields: &Fields,
) -> Vec<(String, String)> {
    let plain = |key: &str| match stored.get(key) {
        Some(StoredValue::Plain(v)) => v.clone(),
        _ => String::new(),
    };
    let value = |key: &str| fields.text(&format!("set:{key}"));
    let given = |key: &str| fields.has(&format!("set:{key}"));
    let mut changes = Vec::new();
    for variable in &manifest.server_variables {
        let key = &variable.key;
        if variable.kind == VariableKind::Secret {
            if fields.has(&format!("clear:{key}")) {
                if stored.contains_key(key) {
                    changes.push((key.clone(), String::new()));
                }
            } else if !value(key).is_empty() {
                changes.push((key.clone(), value(key)));
            }
        } else if given(key) && value(key) != plain(key) {
            changes.push((key.clone(), value(key)));
        }
    }
    for key in OPTION_KEYS {
        if given(key) && value(key) != plain(key) {
            changes.push((key.to_string(), value(key)));
        }
    }
    changes
}

/// Saves the settings; when they are complete the connector checks them against the remote,
/// and its problems are shown beside their fields.
async fn save_settings(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(name): UrlPath<String>,
    fields: Fields,
) -> Answer {
    let result = async {
        signed.allow(&fields, Role::Admin)?;
        let instances = instances(&console);
        let instance = instances.get(&name)?;
        let loaded = instances.connector_of(&instance)?;
        let stored = instances.store().settings(&name)?;
        let changes = settings_changes(loaded.connector.manifest(), &stored, &fields);
        let complete = match instances.set_settings(
            &name,
            &changes,
            &crate::store::trust_store::console_actor(&signed.token.name),
        ) {
            Ok(complete) => complete,
            Err(InstanceError::Invalid(problems)) => {
                return settings_view(
                    &console,
                    &signed,
                    &name,
                    SettingsForm {
                        problems: &problems,
                        submitted: Some(&fields),
                        check: None,
                        notice: None,
                    },
                )
                .await;
            }
            Err(e) => return Err(e.into()),
        };
        let changed: Vec<&str> = changes.iter().map(|(k, _)| k.as_str()).collect();
        tracing::info!(instance = %name, keys = ?changed, by = %signed.token.name, "settings saved in the console");
        let (check, notice) = if complete && instance.enabled {
            let outcome = instances.check(&name).await?;
            let notice = outcome
                .ok
                .then(|| format!("Saved. The connection check passed: {}", outcome.summary));
            (Some(outcome), notice)
        } else if complete {
            (None, Some("Saved. The instance is disabled, so the connection was not checked.".into()))
        } else {
            (None, Some("Saved. Some required settings are still missing.".into()))
        };
        settings_view(
            &console,
            &signed,
            &name,
            SettingsForm {
                problems: &[],
                submitted: None,
                check,
                notice,
            },
        )
        .await
    }
    .await;
    answer(console, signed, result)
}

/// Pins the instance to one version, or lets it follow the newest.
async fn pin(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(name): UrlPath<String>,
    fields: Fields,
) -> Answer {
    let result = (|| {
        signed.allow(&fields, Role::Admin)?;
        let version = fields.text("version");
        instances(&console).pin(&name, (!version.is_empty()).then_some(version.as_str()))?;
        tracing::info!(instance = %name, %version, by = %signed.token.name, "version pin changed in the console");
        Ok(see_other(&format!(
            "/instances/{name}/settings?done=pinned"
        )))
    })();
    answer(console, signed, result)
}

/// One cell of the sync options table.
#[derive(Serialize)]
struct OptionCell {
    field: String,
    label: String,
    supported: bool,
    on: bool,
    reason: Option<String>,
}

#[derive(Serialize)]
struct OptionRow {
    entity: Entity,
    cells: Vec<OptionCell>,
}

fn option_rows(
    manifest: &Manifest,
    version: &str,
    current: &[(Entity, Direction, Operations)],
) -> Vec<OptionRow> {
    let mut entities: Vec<Entity> = manifest.sync_options.iter().map(|o| o.entity).collect();
    entities.sort();
    entities.dedup();
    entities
        .into_iter()
        .map(|entity| {
            let mut cells = Vec::new();
            for direction in [Direction::Push, Direction::Pull] {
                let supported = manifest
                    .sync_options
                    .iter()
                    .find(|o| o.entity == entity && o.direction == direction)
                    .map(|o| o.operations)
                    .unwrap_or_default();
                let on = current
                    .iter()
                    .find(|(e, d, _)| *e == entity && *d == direction)
                    .map(|(_, _, ops)| *ops)
                    .unwrap_or_default();
                for (op, can, is_on) in [
                    ("create", supported.create, on.create),
                    ("update", supported.update, on.update),
                    ("delete", supported.delete, on.delete),
                ] {
                    cells.push(OptionCell {
                        field: format!("{entity}:{direction}:{op}"),
                        label: format!("{direction} {op} of {entity}"),
                        supported: can,
                        on: is_on && can,
                        reason: (!can).then(|| {
                            format!(
                                "{} {version} does not {direction} {op}s of {entity}",
                                manifest.name
                            )
                        }),
                    });
                }
            }
            OptionRow { entity, cells }
        })
        .collect()
}

async fn sync_options_view(
    console: &Shared,
    signed: &Signed,
    name: &str,
    problems: &[(String, String)],
    notice: Option<String>,
) -> Result<Response, PageError> {
    let instances = instances(console);
    let instance = instances.get(name)?;
    let loaded = instances.connector_of(&instance)?;
    let manifest = loaded.connector.manifest();
    let current = instances.sync_options(name)?;
    let needed = crate::instances::required_for_sync_options(
        manifest,
        &instances.store().settings(name)?,
        &current,
    );
    Ok(console.page_with(
        refused_if(!problems.is_empty()),
        "sync_options.html",
        Some(signed),
        serde_json::json!({
            "title": format!("Synchronization Options · {name}"),
            "nav": "instances",
            "tab": "sync-options",
            "name": name,
            "view": instances.view(name).ok(),
            "rows": option_rows(manifest, &loaded.version.to_string(), &current),
            "problems": problems,
            "needed": needed,
            "notice": notice,
        }),
    ))
}

async fn sync_options_page(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(name): UrlPath<String>,
    done: Done,
) -> Answer {
    let result = sync_options_view(&console, &signed, &name, &[], done.0.map(str::to_string)).await;
    answer(console, signed, result)
}

async fn save_sync_options(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(name): UrlPath<String>,
    fields: Fields,
) -> Answer {
    let result = async {
        signed.allow(&fields, Role::Admin)?;
        let instances = instances(&console);
        let instance = instances.get(&name)?;
        let loaded = instances.connector_of(&instance)?;
        let manifest = loaded.connector.manifest();
        // Every pair the connector offers is written, so an unticked box turns its operation off.
        let specs: Vec<(Entity, Direction, Operations)> = manifest
            .sync_options
            .iter()
            .map(|o| {
                let on = |op: &str| fields.has(&format!("{}:{}:{op}", o.entity, o.direction));
                (
                    o.entity,
                    o.direction,
                    Operations {
                        create: on("create"),
                        update: on("update"),
                        delete: on("delete"),
                    },
                )
            })
            .collect();
        match instances.set_sync_options(&name, &specs) {
            Ok(()) => {
                tracing::info!(instance = %name, by = %signed.token.name, "sync options saved in the console");
                Ok(see_other(&format!("/instances/{name}/sync-options?done=saved")))
            }
            Err(InstanceError::Invalid(problems)) => {
                sync_options_view(&console, &signed, &name, &problems, None).await
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    answer(console, signed, result)
}

/// One lookup's table on the lookups page.
#[derive(Serialize)]
struct LookupTable {
    key: String,
    label: String,
    entity: Entity,
    pulls: bool,
    bss_field: String,
    remote_field: String,
    rows: Vec<crate::store::LookupRow>,
    choices: Vec<(String, String)>,
    choices_error: Option<String>,
    errors: Vec<(String, String)>,
    /// Rows for new mappings.
    blanks: Vec<usize>,
}

/// How many empty rows a lookup's form offers for new mappings.
const NEW_ROWS: usize = 3;

async fn lookups_view(
    console: &Shared,
    signed: &Signed,
    name: &str,
    errors: Option<(&str, Vec<(String, String)>)>,
    notice: Option<String>,
) -> Result<Response, PageError> {
    let instances = instances(console);
    let instance = instances.get(name)?;
    let loaded = instances.connector_of(&instance)?;
    let mut stored = instances.lookups(name)?;
    let mut tables = Vec::new();
    let mut blocked: Option<String> = None;
    for lookup in &loaded.connector.manifest().lookups {
        let (choices, choices_error) = match &blocked {
            Some(reason) => (Vec::new(), Some(reason.clone())),
            None => match instances.lookup_choices(name, &lookup.key).await {
                Ok(choices) => (choices, None),
                Err(e) => {
                    let reason = match e {
                        InstanceError::NeedsSettings { .. } | InstanceError::Disabled(_) => {
                            let reason = format!(
                                "the remote's values are listed once the instance can reach it: {e}"
                            );
                            blocked = Some(reason.clone());
                            reason
                        }
                        other => format!("the remote's values could not be read: {other}"),
                    };
                    (Vec::new(), Some(reason))
                }
            },
        };
        let errors = match &errors {
            Some((key, problems)) if *key == lookup.key => problems.clone(),
            _ => Vec::new(),
        };
        tables.push(LookupTable {
            key: lookup.key.clone(),
            label: lookup.label.clone(),
            entity: lookup.entity,
            pulls: lookup.directions.contains(&Direction::Pull),
            bss_field: lookup.bss_field.clone(),
            remote_field: lookup.remote_field.clone(),
            rows: stored.remove(&lookup.key).unwrap_or_default(),
            choices,
            choices_error,
            errors,
            blanks: (0..NEW_ROWS).collect(),
        });
    }
    Ok(console.page_with(
        refused_if(errors.is_some()),
        "lookups.html",
        Some(signed),
        serde_json::json!({
            "title": format!("Synchronization Lookups · {name}"),
            "nav": "instances",
            "tab": "lookups",
            "name": name,
            "view": instances.view(name).ok(),
            "lookups": tables,
            "notice": notice,
        }),
    ))
}

async fn lookups_page(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(name): UrlPath<String>,
    done: Done,
) -> Answer {
    let result = lookups_view(&console, &signed, &name, None, done.0.map(str::to_string)).await;
    answer(console, signed, result)
}

/// A lookup form's rows: the mappings to keep, the BSS values to remove, and problems.
struct LookupEdit {
    rows: Vec<crate::store::LookupRow>,
    removed: Vec<String>,
    problems: Vec<(String, String)>,
}

/// The mappings a posted lookup form asks for: existing rows (`bss.N`, `remote.N`, `remove.N`,
/// `default.N`) and new ones (`bss.newN`, `remote.newN`, `default.newN`).
fn lookup_edit(fields: &Fields) -> LookupEdit {
    let mut edit = LookupEdit {
        rows: Vec::new(),
        removed: Vec::new(),
        problems: Vec::new(),
    };
    for (key, bss) in fields.0.iter().filter(|(k, _)| k.starts_with("bss.")) {
        let row = &key["bss.".len()..];
        let bss = bss.trim();
        let remote = fields.text(&format!("remote.{row}"));
        if bss.is_empty() {
            if !remote.is_empty() {
                edit.problems.push((
                    format!("row {row}"),
                    "a remote value was chosen without a BSS value; type the BSS value".into(),
                ));
            }
            continue;
        }
        if fields.has(&format!("remove.{row}")) {
            edit.removed.push(bss.to_string());
        } else if remote.is_empty() {
            edit.problems.push((
                bss.to_string(),
                "choose the remote value it maps to (or tick Remove)".into(),
            ));
        } else {
            edit.rows.push(crate::store::LookupRow {
                bss_value: bss.to_string(),
                remote_value: remote,
                pull_default: fields.has(&format!("default.{row}")),
            });
        }
    }
    edit
}

async fn save_lookup(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath((name, lookup)): UrlPath<(String, String)>,
    fields: Fields,
) -> Answer {
    let result = async {
        signed.allow(&fields, Role::Admin)?;
        let LookupEdit {
            rows,
            removed,
            mut problems,
        } = lookup_edit(&fields);
        if problems.is_empty() {
            match instances(&console)
                .set_lookup_table(&name, &lookup, &rows, &removed)
                .await
            {
                Ok(()) => {
                    tracing::info!(instance = %name, %lookup, by = %signed.token.name, "lookup saved in the console");
                    return Ok(see_other(&format!(
                        "/instances/{name}/lookups?done=saved#lookup-{lookup}"
                    )));
                }
                Err(InstanceError::Invalid(found)) => problems = found,
                Err(e) => return Err(e.into()),
            }
        }
        lookups_view(&console, &signed, &name, Some((&lookup, problems)), None).await
    }
    .await;
    answer(console, signed, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn lookup_rows_map_remove_and_refuse_half_filled_ones() {
        let edit = lookup_edit(&fields(&[
            ("bss.0", "Customer"),
            ("remote.0", "1"),
            ("default.0", "on"),
            ("bss.1", "Reseller"),
            ("remote.1", "4"),
            ("remove.1", "on"),
            ("bss.new0", "Partner"),
            ("remote.new0", ""),
            ("bss.new1", ""),
            ("remote.new1", ""),
        ]));
        assert_eq!(
            edit.rows,
            vec![crate::store::LookupRow {
                bss_value: "Customer".into(),
                remote_value: "1".into(),
                pull_default: true,
            }]
        );
        assert_eq!(edit.removed, vec!["Reseller".to_string()]);
        assert_eq!(edit.problems.len(), 1);
        assert_eq!(edit.problems[0].0, "Partner");
    }
}
