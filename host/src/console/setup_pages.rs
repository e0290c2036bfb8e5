//! *Systems Setup* and the activation flow of the BSS documentation: the connectors with their
//! versions (contract, source, load time; rollback and restore) and the files that were refused;
//! *Activate* asks for a unique instance name (checked as it is typed, and again on the server),
//! then *Edit Integration* asks for the installation name and the remote's address, and *Save*
//! creates the instance.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::{
    Answer, Done, Fields, PageError, Shared, Signed, answer, instances, refused_if, see_other,
};
use crate::registry::Listed;
use crate::store::token_store::Role;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/setup", get(systems_setup))
        .route("/setup/check-name", get(check_name))
        .route(
            "/setup/{connector}/activate",
            get(activate_page).post(activate),
        )
        .route("/setup/{connector}/save", post(save))
        .route("/setup/{connector}/rollback", post(rollback))
        .route("/setup/{connector}/restore", post(restore))
}

/// One connector as Systems Setup lists it: its versions, newest first.
#[derive(Serialize)]
struct ConnectorGroup {
    name: String,
    description: String,
    documentation_url: Option<String>,
    /// The hosts the newest version declares it reaches (none: any).
    reach: Vec<String>,
    /// The version new instances get (the newest not rolled back).
    serving: Option<String>,
    versions: Vec<Listed>,
}

fn groups(listing: Vec<Listed>) -> Vec<ConnectorGroup> {
    let mut by_name: BTreeMap<String, Vec<Listed>> = BTreeMap::new();
    for listed in listing {
        by_name.entry(listed.name.clone()).or_default().push(listed);
    }
    by_name
        .into_iter()
        .map(|(name, mut versions)| {
            versions.sort_by(|a, b| {
                let parse = |v: &str| semver::Version::parse(v).ok();
                parse(&b.version).cmp(&parse(&a.version))
            });
            let newest = &versions[0].manifest;
            ConnectorGroup {
                description: newest.description.clone(),
                documentation_url: newest.documentation_url.clone(),
                reach: newest.reach.clone(),
                serving: versions
                    .iter()
                    .find(|v| !v.withdrawn)
                    .map(|v| v.version.clone()),
                name,
                versions,
            }
        })
        .collect()
}

async fn systems_setup(State(console): State<Shared>, signed: Signed, done: Done) -> Answer {
    let result = (|| {
        let registry = instances(&console).registry();
        let listing = registry.listing()?;
        Ok(console.page(
            "setup.html",
            Some(&signed),
            serde_json::json!({
                "title": "Systems Setup",
                "nav": "setup",
                "connectors": groups(listing),
                "refused": registry.refusals(),
                "allow_unsigned": registry.allows_unsigned(),
                "notice": done.0,
            }),
        ))
    })();
    answer(console, signed, result)
}

#[derive(Deserialize)]
struct NameQuery {
    #[serde(default)]
    name: String,
}

/// The inline check of a new instance's name (the form checks again when posted).
async fn check_name(
    State(console): State<Shared>,
    _signed: Signed,
    Query(query): Query<NameQuery>,
) -> Response {
    let answer = match instances(&console).check_new_name(query.name.trim()) {
        Ok(()) => serde_json::json!({ "ok": true, "message": "" }),
        Err(crate::instances::InstanceError::Invalid(problems)) => serde_json::json!({
            "ok": false,
            "message": problems.first().map(|p| p.1.clone()).unwrap_or_default(),
        }),
        Err(e) => serde_json::json!({ "ok": false, "message": e.to_string() }),
    };
    axum::Json(answer).into_response()
}

/// The connector's newest loaded version, or a 404 naming the connectors there are.
fn connector_listing(console: &Shared, connector: &str) -> Result<Vec<Listed>, PageError> {
    let listing: Vec<Listed> = instances(console)
        .registry()
        .listing()?
        .into_iter()
        .filter(|l| l.name == connector)
        .collect();
    if listing.is_empty() {
        return Err(PageError::not_found(format!(
            "there is no connector named {connector:?}; Systems Setup lists the connectors"
        )));
    }
    Ok(listing)
}

fn activate_form(
    console: &Shared,
    signed: &Signed,
    connector: &str,
    name: &str,
    error: Option<String>,
) -> Response {
    console.page_with(
        refused_if(error.is_some()),
        "activate.html",
        Some(signed),
        serde_json::json!({
            "title": format!("Activate {connector}"),
            "nav": "setup",
            "connector": connector,
            "name": name,
            "name_error": error,
        }),
    )
}

async fn activate_page(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(connector): UrlPath<String>,
) -> Answer {
    let result = signed
        .require(Role::Admin)
        .and_then(|()| connector_listing(&console, &connector))
        .map(|_| activate_form(&console, &signed, &connector, "", None));
    answer(console, signed, result)
}

struct Integration<'a> {
    connector: &'a str,
    name: &'a str,
    installation: &'a str,
    address: &'a str,
    version: &'a str,
}

fn edit_integration(
    console: &Shared,
    signed: &Signed,
    form: Integration<'_>,
    problems: &[(String, String)],
) -> Result<Response, PageError> {
    let listing = connector_listing(console, form.connector)?;
    let serving = groups(listing.clone())
        .pop()
        .and_then(|g| g.serving)
        .unwrap_or_default();
    let manifest = &listing
        .iter()
        .find(|l| l.version == serving)
        .unwrap_or(&listing[0])
        .manifest;
    let address = (!manifest.remote_host_variable.is_empty())
        .then(|| manifest.variable(&manifest.remote_host_variable))
        .flatten();
    let problem = |key: &str| {
        problems
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, m)| m.clone())
            .collect::<Vec<_>>()
            .join("; ")
    };
    Ok(console.page_with(
        refused_if(!problems.is_empty()),
        "edit_integration.html",
        Some(signed),
        serde_json::json!({
            "title": "Edit Integration",
            "nav": "setup",
            "connector": form.connector,
            "name": form.name,
            "installation": form.installation,
            "address_key": address.map(|v| v.key.clone()),
            "address_label": address.map(|v| v.label.clone()),
            "address_help": address.map(|v| v.description.clone()),
            "address_value": form.address,
            "versions": listing.iter().filter(|l| !l.withdrawn).map(|l| l.version.clone()).collect::<Vec<_>>(),
            "version": form.version,
            "serving": serving,
            "installation_error": problem("installation"),
            "address_error": problem("address"),
            "version_error": problem("version"),
            "form_error": problem("name"),
        }),
    ))
}

/// The name step: a good name opens Edit Integration; a taken or malformed one is refused
/// beside its field.
async fn activate(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(connector): UrlPath<String>,
    fields: Fields,
) -> Answer {
    let result = (|| {
        signed.allow(&fields, Role::Admin)?;
        connector_listing(&console, &connector)?;
        let name = fields.text("name");
        if let Err(e) = instances(&console).check_new_name(&name) {
            let message = match e {
                crate::instances::InstanceError::Invalid(problems) => problems
                    .into_iter()
                    .map(|p| p.1)
                    .collect::<Vec<_>>()
                    .join("; "),
                other => other.to_string(),
            };
            return Ok(activate_form(
                &console,
                &signed,
                &connector,
                &name,
                Some(message),
            ));
        }
        edit_integration(
            &console,
            &signed,
            Integration {
                connector: &connector,
                name: &name,
                installation: &name,
                address: "",
                version: "",
            },
            &[],
        )
    })();
    answer(console, signed, result)
}

/// *Save* in Edit Integration: creates the instance with its installation name, version choice
/// and the remote's address; nothing is created when any of them is refused.
async fn save(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(connector): UrlPath<String>,
    fields: Fields,
) -> Answer {
    let result = (|| {
        signed.allow(&fields, Role::Admin)?;
        let listing = connector_listing(&console, &connector)?;
        let (name, installation, version) = (
            fields.text("name"),
            fields.text("installation"),
            fields.text("version"),
        );
        // The address is the remote-host variable of the version the instance will use.
        let chosen = listing
            .iter()
            .filter(|l| !l.withdrawn && (version.is_empty() || l.version == version))
            .max_by_key(|l| semver::Version::parse(&l.version).ok())
            .map(|l| &l.manifest);
        let address_key = chosen
            .map(|m| m.remote_host_variable.clone())
            .filter(|k| chosen.is_some_and(|m| m.variable(k).is_some()));
        let address = fields.text("address");
        let form = Integration {
            connector: &connector,
            name: &name,
            installation: &installation,
            address: &address,
            version: &version,
        };
        let mut problems = Vec::new();
        if let Err(crate::instances::InstanceError::Invalid(p)) =
            instances(&console).check_new_name(&name)
        {
            problems.extend(p);
        }
        if installation.is_empty() || installation.len() > 200 {
            problems.push((
                "installation".into(),
                "give the installation a name of 1 to 200 characters".into(),
            ));
        }
        if address_key.is_some() && address.is_empty() {
            problems.push((
                "address".into(),
                "required: the address of the remote this instance talks to".into(),
            ));
        }
        if !version.is_empty() && !listing.iter().any(|l| l.version == version && !l.withdrawn) {
            problems.push((
                "version".into(),
                format!("{version} is not a loaded version of {connector}"),
            ));
        }
        if !problems.is_empty() {
            return edit_integration(&console, &signed, form, &problems);
        }
        let requirement = (!version.is_empty()).then(|| format!("={version}"));
        let instances = instances(&console);
        instances.activate(
            &connector,
            &name,
            requirement.as_deref(),
            Some(&installation),
        )?;
        let settings: Vec<(String, String)> = address_key
            .iter()
            .map(|key| (key.clone(), address.clone()))
            .collect();
        if let Err(e) = instances.set_settings(
            &name,
            &settings,
            &crate::store::trust_store::console_actor(&signed.token.name),
        ) {
            // Nothing half made: the instance goes again, and the form says why.
            instances.delete(&name)?;
            return match e {
                crate::instances::InstanceError::Invalid(problems) => {
                    let problems: Vec<(String, String)> = problems
                        .into_iter()
                        .map(|(key, message)| {
                            if Some(&key) == address_key.as_ref() {
                                ("address".to_string(), message)
                            } else {
                                (key, message)
                            }
                        })
                        .collect();
                    edit_integration(&console, &signed, form, &problems)
                }
                other => Err(other.into()),
            };
        }
        tracing::info!(instance = %name, %connector, by = %signed.token.name, "instance activated in the console");
        Ok(see_other(&format!(
            "/instances/{name}/settings?done=created"
        )))
    })();
    answer(console, signed, result)
}

async fn rollback(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(connector): UrlPath<String>,
    fields: Fields,
) -> Answer {
    let result = (|| {
        signed.allow(&fields, Role::Admin)?;
        let (withdrawn, serving) = instances(&console).registry().rollback(
            &connector,
            &crate::store::trust_store::console_actor(&signed.token.name),
        )?;
        tracing::info!(%connector, %withdrawn, %serving, by = %signed.token.name, "rolled back in the console");
        Ok(see_other("/setup?done=rolled-back"))
    })();
    answer(console, signed, result)
}

async fn restore(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(connector): UrlPath<String>,
    fields: Fields,
) -> Answer {
    let result = (|| {
        signed.allow(&fields, Role::Admin)?;
        let version = fields.text("version");
        instances(&console).registry().restore(
            &connector,
            &version,
            &crate::store::trust_store::console_actor(&signed.token.name),
        )?;
        tracing::info!(%connector, %version, by = %signed.token.name, "restored in the console");
        Ok(see_other("/setup?done=restored"))
    })();
    answer(console, signed, result)
}
