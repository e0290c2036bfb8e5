//! A small but real `bss:integration@1.4.0` connector in Rust: BSS accounts ↔ ConnectWise
//! companies, against ConnectWise Manage or the local sandbox (tests/cw-sandbox).
//!
//! Build: `./build.sh` (cargo, target wasm32-wasip2; see README.md). The connector's name is NAME
//! below. The bindings and the `export!` macro come from the SDK (`sdk/`, crate
//! `bss-connector-sdk`).
//!
//! What it does (ConnectWise's REST API under {url}/v4_6_release/apis/3.0):
//! - activate: reads the settings (every problem in one `invalid-settings`), checks the site and
//!   company id (GET /login/companyinfo/{company}), then the keys (one authenticated GET).
//! - lookup-choices "company-types": every company type, following the Link header's pages.
//! - push accounts: create (POST company/companies) or update (GET, then a JSON Patch of only what
//!   the BSS changed since its last push: three-way, conflicts per `options.conflicts`). The BSS id
//!   is the company `identifier` (unique in ConnectWise), the account code its `accountNumber`; a
//!   create retried after an unknown outcome (`maybe-created`) finds the company by that pair
//!   instead of duplicating it.
//! - pull accounts: forward-only pages of companies changed since the cursor.
//! - fetch: one company by id (none when ConnectWise has none, or holds it as deleted).
//! - subscribe, remove: `unsupported` (the host then relies on schedules).
//!
//! A panic traps the call (README.md, "Panics"): this code returns errors instead of unwrapping.

use bss_connector_sdk::http::Method;
use bss_connector_sdk::prelude::*;
use bss_connector_sdk::text::{encode, is_timestamp, query, query_param};

/// The one place the connector's name is written (`connectors new NAME` replaces it).
const NAME: &str = "template-connector";
const VERSION: &str = "0.1.0";

const API: &str = "v4_6_release/apis/3.0";
/// The ConnectWise API model version pinned in every request.
const ACCEPT: &str = "application/vnd.connectwise.com+json; version=2026.4";
const COMPANIES: &str = "company/companies";
const PAGE_SIZE: u32 = 1000;
const ACCOUNT_TYPE: &str = "account-type";
const MAX_PAGES: usize = 1000;

struct Connector;

bss_connector_sdk::export!(Connector);

fn variable(
    key: &str,
    label: &str,
    kind: VariableKind,
    purpose: &str,
    description: &str,
) -> ServerVariable {
    ServerVariable {
        key: key.into(),
        label: label.into(),
        purpose: purpose.into(),
        description: description.into(),
        kind,
        choices: vec![],
        required: true,
        default_value: None,
        choices_from: None,
        required_when: vec![],
    }
}

fn variables() -> Vec<ServerVariable> {
    vec![
        variable(
            "url",
            "ConnectWise URL",
            VariableKind::Url,
            "The ConnectWise site the connector talks to.",
            "The site of your ConnectWise Manage, e.g. api-na.myconnectwise.net (https is assumed).",
        ),
        variable(
            "company-id",
            "Company ID",
            VariableKind::Text,
            "Identifies your company to ConnectWise; part of the API user name.",
            "The company id you log in with, e.g. mycompany.",
        ),
        variable(
            "public-key",
            "Public key",
            VariableKind::Text,
            "The API member's public key; part of the API user name.",
            "From System > Members > API Members > API Keys.",
        ),
        variable(
            "private-key",
            "Private key",
            VariableKind::Secret,
            "The API member's private key: the API password.",
            "Shown once when the API key is created. Stored encrypted; never shown again.",
        ),
        variable(
            "client-id",
            "Client Id",
            VariableKind::Text,
            "Identifies this integration to ConnectWise (the clientId header on every call).",
            "A GUID from developer.connectwise.com.",
        ),
    ]
}

/// The settings and an HTTP client for this call.
fn connect() -> Result<(Settings, Http)> {
    let settings = read_settings(&variables())?;
    let http =
        Http::new(format!("{}/{API}", settings.required("url")?)).with_header("accept", ACCEPT);
    Ok((settings, http))
}

impl Guest for Connector {
    fn manifest() -> ConnectorManifest {
        ConnectorManifest {
            name: NAME.into(),
            version: VERSION.into(),
            description: "ConnectWise Manage companies <-> BSS accounts (a template connector written in Rust).".into(),
            server_variables: variables(),
            sync_options: vec![
                SyncOption {
                    entity: Entity::Account,
                    direction: Direction::Push,
                    operations: Operations::CREATE | Operations::UPDATE,
                },
                SyncOption {
                    entity: Entity::Account,
                    direction: Direction::Pull,
                    operations: Operations::CREATE | Operations::UPDATE,
                },
            ],
            lookups: vec![Lookup {
                key: ACCOUNT_TYPE.into(),
                label: "Account Type -> ConnectWise Type".into(),
                entity: Entity::Account,
                directions: vec![Direction::Push, Direction::Pull],
                bss_field: "account-type".into(),
                remote_field: "types".into(),
                choices_from: "company-types".into(),
            }],
            auth: Auth {
                // Templates the host fills in: the connector never sees the private key.
                scheme: AuthScheme::Basic(("{company-id}+{public-key}".into(), "{private-key}".into())),
                headers: vec![HeaderTemplate { name: "clientId".into(), value: "{client-id}".into() }],
            },
            remote_host_variable: "url".into(),
            documentation_url: None,
            // Every host this connector will ever call: the host refuses a `url` setting elsewhere.
            // 127.0.0.1 is the local sandbox (`bss-host dev`, the tests); drop it for production.
            // Leave the list empty only for a remote installed at the customer's own address.
            reach: vec!["*.myconnectwise.net".into(), "*.connectwisedev.com".into(), "127.0.0.1".into()],
        }
    }

    fn activate() -> Result<String> {
        let (settings, http) = connect()?;
        let url = settings.required("url")?;
        let company = settings.required("company-id")?;
        let info = match http
            .request(
                Method::Get,
                &format!("{url}/login/companyinfo/{}", encode(company)),
            )
            .send()
        {
            Ok(info) => info,
            Err(ConnectorError::Transient(m)) => {
                return Err(ConnectorError::invalid_setting(
                    "url",
                    format!("cannot reach ConnectWise at {url}: {m}"),
                ));
            }
            Err(e) => return Err(e),
        };
        if info.status == 404 {
            return Err(ConnectorError::invalid_setting(
                "company-id",
                format!("ConnectWise at {url} knows no company {company:?}; check the company id"),
            ));
        }
        let about = http.check(&info)?;
        if let Err(e) = http.get(&format!("{COMPANIES}/statuses?pageSize=1")) {
            return Err(match e {
                ConnectorError::Unauthorized(m) => {
                    let field = if m.to_ascii_lowercase().contains("clientid") {
                        "client-id"
                    } else {
                        "private-key"
                    };
                    ConnectorError::invalid_setting(
                        field,
                        format!("ConnectWise refused these keys for company {company:?}: {m}"),
                    )
                }
                other => other,
            });
        }
        let name = about
            .get("CompanyName")
            .and_then(Value::as_str)
            .unwrap_or(company);
        Ok(format!("Connected to ConnectWise {name} at {url}"))
    }

    fn lookup_choices(key: String) -> Result<Vec<Choice>> {
        if key != "company-types" {
            return Err(ConnectorError::unsupported(format!(
                "{NAME} has no choices named {key:?}"
            )));
        }
        let (_, http) = connect()?;
        let path = format!(
            "{COMPANIES}/types?{}",
            query([("pageSize", Some("100")), ("orderBy", Some("id asc"))])
        );
        let types = http.get_all(&path, MAX_PAGES)?;
        Ok(types
            .iter()
            .filter(|t| {
                !t.get("inactiveFlag")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            })
            .filter_map(|t| {
                let id = value_text(t.get("id")?);
                let label = t.get("name").map(value_text).unwrap_or_else(|| id.clone());
                Some(Choice { value: id, label })
            })
            .collect())
    }

    fn push(
        entity: Entity,
        records: Vec<PushItem>,
        options: PushOptions,
    ) -> Result<Vec<Result<Pushed>>> {
        if entity != Entity::Account {
            return Err(ConnectorError::unsupported(format!(
                "{NAME} does not push {} records",
                entity.as_str()
            )));
        }
        let (_, http) = connect()?;
        Ok(each_item(records, |item| {
            push_account(&http, item, &options).map_err(renamed)
        }))
    }

    fn pull(
        entity: Entity,
        since: Option<Timestamp>,
        page_token: Option<String>,
    ) -> Result<PullPage> {
        if entity != Entity::Account {
            return Err(ConnectorError::unsupported(format!(
                "{NAME} does not pull {} records",
                entity.as_str()
            )));
        }
        let (_, http) = connect()?;
        let page_size = PAGE_SIZE.to_string();
        let conditions = match &since {
            Some(since) if !is_timestamp(since) => {
                return Err(ConnectorError::internal(format!(
                    "the pull cursor {since:?} is not an RFC 3339 timestamp"
                )));
            }
            Some(since) => Some(format!("lastUpdated>=[{since}]")),
            None => None,
        };
        if let Some(token) = &page_token
            && (token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(ConnectorError::internal(format!(
                "page token {token:?} is not one this connector gave"
            )));
        }
        let params = [
            ("pageSize", Some(page_size)),
            ("conditions", conditions),
            ("pageId", page_token),
        ];
        // Forward-only paging: ordered by id, and the Link header's next page names the last id seen.
        let (response, data) = http
            .request(Method::Get, &format!("{COMPANIES}?{}", query(params)))
            .header("pagination-type", "forward-only")
            .call()?;
        let Value::Array(companies) = data else {
            return Err(ConnectorError::internal(
                "ConnectWise answered the company list with something that is not a list",
            ));
        };
        let next_page_token = response.link("next").and_then(|next| {
            query_param(&next, "pageId")
                .or_else(|| companies.last().and_then(|c| c.get("id")).map(value_text))
                .filter(|t| !t.is_empty())
        });
        log::debug(format_args!(
            "pulled {} companies{}",
            companies.len(),
            next_page_token
                .as_deref()
                .map(|t| format!(", next page after id {t}"))
                .unwrap_or_default()
        ));
        let records = companies
            .iter()
            .map(to_account)
            .collect::<Result<Vec<_>>>()?;
        Ok(PullPage {
            records,
            next_page_token,
        })
    }

    fn fetch(entity: Entity, remote_id: String) -> Result<Option<PulledRecord>> {
        if entity != Entity::Account {
            return Err(ConnectorError::unsupported(format!(
                "{NAME} does not fetch {} records",
                entity.as_str()
            )));
        }
        let (_, http) = connect()?;
        let response = http
            .request(
                Method::Get,
                &format!("{COMPANIES}/{}", company_id(&remote_id)?),
            )
            .send()?;
        if response.status == 404 {
            // Only ConnectWise's own "no such record" is a deletion; a wrong path is an error.
            let code = bss_connector_sdk::http::error_body(&response)
                .code
                .unwrap_or_default();
            if code.eq_ignore_ascii_case("notfound") {
                return Ok(None);
            }
        }
        let company = http.check(&response)?;
        if company
            .get("deletedFlag")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            return Ok(None);
        }
        to_account(&company).map(Some)
    }

    fn subscribe(_url: String, _entities: Vec<Entity>) -> Result<Vec<Subscription>> {
        Err(ConnectorError::unsupported(format!(
            "{NAME} does not register callbacks; schedule pulls instead"
        )))
    }

    fn remove(
        _entity: Entity,
        _remote_ids: Vec<String>,
        _options: PushOptions,
    ) -> Result<Vec<Result<Removal>>> {
        Err(ConnectorError::unsupported(format!(
            "{NAME} does not remove records"
        )))
    }
}

// ---------------------------------------------------------------------------------------------
// push

/// ConnectWise field -> BSS field, for naming rejected and overwritten fields.
fn bss_field(field: &str) -> &str {
    match field {
        "identifier" => "bss-id",
        "name" => "name",
        "accountNumber" => "code",
        "addressLine1" => "billing-address/line1",
        "addressLine2" => "billing-address/line2",
        "city" => "billing-address/city",
        "state" => "billing-address/state",
        "zip" => "billing-address/zip",
        "phoneNumber" => "phone",
        "faxNumber" => "fax",
        "website" => "website",
        "parentCompany" => "parent-account",
        "types" => "account-type",
        other => other,
    }
}

/// Renames ConnectWise fields in a rejection to the BSS's names.
fn renamed(e: ConnectorError) -> ConnectorError {
    match e {
        ConnectorError::Rejected(fields) => ConnectorError::rejected(fields.into_iter().map(|f| {
            let remote = f.field.strip_suffix("/id").unwrap_or(&f.field);
            field_error(bss_field(remote), f.message)
        })),
        other => other,
    }
}

/// A BSS text value as ConnectWise gets it: blank is absent (null).
fn text(v: Option<&str>) -> Value {
    match v {
        Some(s) if !s.trim().is_empty() => Value::String(s.to_string()),
        _ => Value::Null,
    }
}

/// What the BSS says the company should be, in ConnectWise terms (null: absent).
struct Desired {
    fields: Vec<(&'static str, Value)>,
    type_id: Option<u64>,
}

fn desired(record: &Record, references: &[Reference], account: &Account) -> Result<Desired> {
    let address = account.billing_address.clone().unwrap_or(Address {
        line1: None,
        line2: None,
        city: None,
        state: None,
        zip: None,
        country: None,
    });
    let mut parent = Value::Null;
    if let Some(parent_account) = &account.parent_account {
        let reference = references
            .iter()
            .find(|r| r.field == "parent-account")
            .ok_or_else(|| {
                ConnectorError::missing_reference(
                    "parent-account",
                    Entity::Account,
                    parent_account.clone(),
                )
            })?;
        parent = json!({ "id": company_id(&reference.remote_id)? });
    }
    let fields = vec![
        ("identifier", Value::String(record.bss_id.clone())),
        ("name", Value::String(account.name.clone())),
        ("accountNumber", text(Some(&account.code))),
        ("addressLine1", text(address.line1.as_deref())),
        ("addressLine2", text(address.line2.as_deref())),
        ("city", text(address.city.as_deref())),
        ("state", text(address.state.as_deref())),
        ("zip", text(address.zip.as_deref())),
        ("phoneNumber", text(account.phone.as_deref())),
        ("faxNumber", text(account.fax.as_deref())),
        ("website", text(account.website.as_deref())),
        ("parentCompany", parent),
    ];
    let mut type_id = None;
    if let Some(kind) = account
        .account_type
        .as_deref()
        .filter(|k| !k.trim().is_empty())
    {
        let mapped = lookups::lookup(ACCOUNT_TYPE, kind);
        match mapped
            .as_deref()
            .map(str::trim)
            .and_then(|m| m.parse::<u64>().ok())
        {
            Some(id) => type_id = Some(id),
            None => {
                return Err(ConnectorError::rejected_field(
                    "account-type",
                    format!(
                        "account type {kind:?} is not mapped in lookup Account Type -> ConnectWise Type"
                    ),
                ));
            }
        }
    }
    Ok(Desired { fields, type_id })
}

/// A ConnectWise record id: a positive whole number.
fn company_id(id: &str) -> Result<u64> {
    let valid = !id.is_empty()
        && id.len() <= 18
        && !id.starts_with('0')
        && id.bytes().all(|b| b.is_ascii_digit());
    match id.parse::<u64>() {
        Ok(n) if valid => Ok(n),
        _ => Err(ConnectorError::rejected_field(
            "remote-id",
            format!("{id:?} is not a ConnectWise record id (a positive whole number)"),
        )),
    }
}

/// A value compared for an update: blanks alike, references by id.
fn norm(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Object(o) if o.contains_key("id") => Some(format!("#{}", o["id"])),
        other => Some(other.to_string()),
    }
}

fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    norm(a) == norm(b)
}

/// A ConnectWise value as a report says it.
fn value_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Object(o) => ["name", "identifier", "id"]
            .iter()
            .find_map(|k| o.get(*k).filter(|x| !x.is_null()).map(value_text))
            .unwrap_or_else(|| v.to_string()),
        other => other.to_string(),
    }
}

fn push_account(http: &Http, item: PushItem, options: &PushOptions) -> Result<Pushed> {
    let record = item.record;
    let EntityData::Account(account) = &record.data else {
        return Err(ConnectorError::internal(
            "an account record without account data",
        ));
    };
    let want = desired(&record, &record.references, account)?;
    let mut id = record.remote_id.clone();
    if id.is_none() && record.maybe_created {
        // An earlier create's outcome is unknown: it may be there already.
        let ours: Vec<Value> = holders(http, &record.bss_id)?
            .into_iter()
            .filter(|c| carries_key(c, account))
            .collect();
        if ours.len() > 1 {
            let ids: Vec<String> = ours
                .iter()
                .filter_map(|c| c.get("id"))
                .map(value_text)
                .collect();
            return Err(ConnectorError::rejected_field(
                "bss-id",
                format!(
                    "ambiguous: ConnectWise holds {} companies that may be this one (ids {}); link the right one with bss-host link INSTANCE account {} <id>",
                    ours.len(),
                    ids.join(", "),
                    record.bss_id
                ),
            ));
        }
        id = ours.first().and_then(|c| c.get("id")).map(value_text);
    }
    let Some(id) = id else {
        return create(http, &record, account, &want, options);
    };
    // The base of the three-way update; a last push that no longer maps only makes it more careful.
    let base = match &item.last_pushed {
        Some(LastPushed {
            data: EntityData::Account(before),
            references,
        }) => desired(&record, references, before).ok(),
        _ => None,
    };
    update(http, company_id(&id)?, &want, base.as_ref(), options)
}

/// The companies whose identifier is this BSS id.
fn holders(http: &Http, bss_id: &str) -> Result<Vec<Value>> {
    let conditions = format!("identifier='{}'", bss_id.replace('\'', "''"));
    let page_size = PAGE_SIZE.to_string();
    http.get_all(
        &format!(
            "{COMPANIES}?{}",
            query([
                ("conditions", Some(conditions)),
                ("pageSize", Some(page_size))
            ])
        ),
        MAX_PAGES,
    )
}

/// A company holding this identifier is this record when its account number is the code too.
fn carries_key(company: &Value, account: &Account) -> bool {
    let number = company
        .get("accountNumber")
        .map(value_text)
        .unwrap_or_default();
    number.trim() == account.code.trim()
}

fn pushed(change: Change, remote_id: impl Into<String>) -> Pushed {
    Pushed {
        change,
        remote_id: remote_id.into(),
        overwritten: vec![],
        stored: None,
        warnings: vec![],
    }
}

fn create(
    http: &Http,
    record: &Record,
    account: &Account,
    want: &Desired,
    options: &PushOptions,
) -> Result<Pushed> {
    let mut body = bss_connector_sdk::serde_json::Map::new();
    for (field, value) in &want.fields {
        if !value.is_null() {
            body.insert((*field).to_string(), value.clone());
        }
    }
    if let Some(type_id) = want.type_id {
        body.insert("types".into(), json!([{ "id": type_id }]));
    }
    if options.dry_run {
        return Ok(pushed(Change::Created, ""));
    }
    let created = match http.post(COMPANIES, &Value::Object(body)) {
        Ok(created) => created,
        Err(ConnectorError::Rejected(fields))
            if fields.iter().any(|f| {
                let m = f.message.to_ascii_lowercase();
                f.field == "identifier"
                    && (m.contains("already in use") || m.contains("already exists"))
            }) =>
        {
            // ConnectWise has a company with this identifier: adopt it only if it carries our key.
            let found = holders(http, &record.bss_id)?;
            if let [only] = found.as_slice()
                && carries_key(only, account)
            {
                let id = only.get("id").and_then(Value::as_u64).ok_or_else(|| {
                    ConnectorError::internal("ConnectWise listed a company without a numeric id")
                })?;
                return update(http, id, want, None, options);
            }
            let holder = found
                .first()
                .and_then(|c| c.get("id"))
                .map(value_text)
                .unwrap_or_else(|| "?".into());
            return Err(ConnectorError::rejected_field(
                "bss-id",
                format!(
                    "in use: ConnectWise company {holder} already has identifier {bss} and does not carry this record's key; if it is the same record, link it: bss-host link INSTANCE account {bss} {holder}",
                    bss = record.bss_id
                ),
            ));
        }
        Err(e) => return Err(e),
    };
    let Some(id) = created.get("id").and_then(Value::as_u64) else {
        let shown: String = created.to_string().chars().take(200).collect();
        return Err(ConnectorError::internal(format!(
            "ConnectWise created a company but answered no id: {shown}"
        )));
    };
    Ok(Pushed {
        stored: to_account(&created).ok(),
        ..pushed(Change::Created, id.to_string())
    })
}

/// A three-way update: a field is written only when the BSS changed it since its last push
/// (`base`; with no base, when it differs and the BSS has a value); a field ConnectWise changed
/// too is a conflict, written and reported (`bss-wins`) or holding the record (`report`).
fn update(
    http: &Http,
    id: u64,
    want: &Desired,
    base: Option<&Desired>,
    options: &PushOptions,
) -> Result<Pushed> {
    let path = format!("{COMPANIES}/{id}");
    let current = http.get(&path)?;
    let mut overwritten = Vec::new();
    let mut operations = Vec::new();
    let mut conflicts = 0;
    for (i, (field, value)) in want.fields.iter().enumerate() {
        let remote = current.get(*field);
        if same(remote, Some(value)) {
            continue;
        }
        let remote_empty = norm(remote).is_none();
        match base {
            None => {
                if value.is_null() {
                    continue; // nothing is removed without a base
                }
                if !remote_empty {
                    overwritten.push(OverwrittenValue {
                        field: bss_field(field).into(),
                        remote_value: remote.map(value_text).unwrap_or_default(),
                        last_pushed: None,
                    });
                }
            }
            Some(base) => {
                let before = base.fields.get(i).map(|(_, v)| v);
                if same(before, Some(value)) {
                    continue; // the BSS did not change it: ConnectWise's value stays
                }
                if !same(remote, before) && !remote_empty {
                    conflicts += 1;
                    overwritten.push(OverwrittenValue {
                        field: bss_field(field).into(),
                        remote_value: remote.map(value_text).unwrap_or_default(),
                        last_pushed: before.filter(|b| !b.is_null()).map(value_text),
                    });
                }
            }
        }
        operations.push(if value.is_null() {
            json!({ "op": "remove", "path": field })
        } else {
            json!({ "op": "replace", "path": field, "value": value })
        });
    }
    let mut warnings = Vec::new();
    if let Some(type_id) = want.type_id {
        let has = current
            .get("types")
            .and_then(Value::as_array)
            .is_some_and(|types| {
                types
                    .iter()
                    .any(|t| t.get("id").and_then(Value::as_u64) == Some(type_id))
            });
        if !has && base.is_none_or(|b| b.type_id != Some(type_id)) {
            warnings.push(
                "the account type changed; this template sets types only when it creates a company"
                    .into(),
            );
        }
    }
    let remote_id = id.to_string();
    if conflicts > 0 && options.conflicts == ConflictPolicy::Report {
        return Ok(Pushed {
            overwritten,
            warnings,
            ..pushed(Change::Held, remote_id)
        });
    }
    if operations.is_empty() {
        return Ok(Pushed {
            stored: to_account(&current).ok(),
            warnings,
            ..pushed(Change::Unchanged, remote_id)
        });
    }
    if options.dry_run {
        return Ok(Pushed {
            overwritten,
            warnings,
            ..pushed(Change::Updated, remote_id)
        });
    }
    let after = http.patch(&path, &Value::Array(operations))?;
    Ok(Pushed {
        overwritten,
        warnings,
        stored: to_account(&after).ok(),
        ..pushed(Change::Updated, remote_id)
    })
}

// ---------------------------------------------------------------------------------------------
// pull, fetch

/// A company as the BSS's account.
fn to_account(company: &Value) -> Result<PulledRecord> {
    let Some(id) = company.get("id").and_then(Value::as_u64) else {
        return Err(ConnectorError::internal(
            "ConnectWise sent a company without id",
        ));
    };
    let Some(stamp) = company
        .pointer("/_info/lastUpdated")
        .and_then(Value::as_str)
    else {
        return Err(ConnectorError::internal(format!(
            "company {id} has no _info.lastUpdated"
        )));
    };
    let str_at = |pointer: &str| {
        company
            .pointer(pointer)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    let mut warnings = Vec::new();
    let mut account_type = None;
    if let Some(first) = company.pointer("/types/0/id") {
        let remote = value_text(first);
        account_type = lookups::reverse_lookup(ACCOUNT_TYPE, &remote);
        if account_type.is_none() {
            let name = str_at("/types/0/name").unwrap_or_else(|| "?".into());
            warnings.push(format!(
                "company type {name} (id {remote}) is not mapped in lookup Account Type -> ConnectWise Type"
            ));
        }
    }
    let address = Address {
        line1: str_at("/addressLine1"),
        line2: str_at("/addressLine2"),
        city: str_at("/city"),
        state: str_at("/state"),
        zip: str_at("/zip"),
        country: str_at("/country/name"),
    };
    let has_address = [
        &address.line1,
        &address.line2,
        &address.city,
        &address.state,
        &address.zip,
        &address.country,
    ]
    .iter()
    .any(|v| v.is_some());
    let mut references = Vec::new();
    if let Some(parent) = company.pointer("/parentCompany/id") {
        references.push(RemoteReference {
            field: "parent-account".into(),
            entity: Entity::Account,
            remote_id: value_text(parent),
        });
    }
    if let Some(contact) = company.pointer("/defaultContact/id") {
        references.push(RemoteReference {
            field: "primary-contact".into(),
            entity: Entity::Contact,
            remote_id: value_text(contact),
        });
    }
    Ok(PulledRecord {
        remote_id: id.to_string(),
        last_updated: stamp.to_string(),
        data: EntityData::Account(Account {
            code: str_at("/accountNumber")
                .or_else(|| str_at("/identifier"))
                .unwrap_or_default(),
            name: str_at("/name").unwrap_or_default(),
            account_type,
            status: str_at("/status/name"),
            currency: None,
            billing_address: has_address.then_some(address),
            phone: str_at("/phoneNumber"),
            fax: str_at("/faxNumber"),
            website: str_at("/website"),
            parent_account: None,
            primary_contact: None,
            extra: vec![],
        }),
        references,
        warnings,
    })
}
