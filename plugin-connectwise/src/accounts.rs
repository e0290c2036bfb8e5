//! Accounts ↔ ConnectWise companies.
//!
//! Push: the BSS id is the company `identifier`, the account code its `accountNumber`; the Account
//! Type and Currency lookups give `types` and `currency`; the Import Account Id setting gives the
//! status of created companies; the billing address becomes the company's one address (country and
//! state names resolved to ConnectWise values); the parent account's remote id becomes
//! `parentCompany`, the primary contact's `defaultContact`; `extra` entries become custom fields (see
//! [`crate::custom`]). Nothing the BSS documentation does not map is written: who is billed
//! (`billToCompany`) stays what ConnectWise and its users make it. An update reads the
//! company and sends a JSON Patch of what differs; types change through type associations, since
//! ConnectWise accepts `types` only on create.
//!
//! Identity: a company is this record when its identifier is the BSS id and its account number
//! the account's code, the pair a create writes (companies have no free field for an
//! integration: a custom field would need defining per installation, and `integratorTags` name
//! tags defined under `system/integratorTags`). A create whose outcome was unknown looks for that pair first; a
//! create refused because the identifier is in use adopts the holder when it carries the code,
//! and otherwise fails `in use:` naming it (see [`crate::reconcile`]).
//!
//! Pull: companies changed since the cursor, forward-only paged, mapped back with reverse lookups;
//! an unmapped type or currency is a warning on the record, never a guess; custom fields with a value
//! come back in `extra`. Fetch (since 1.3): one company by id, mapped as pull maps it; a 404 or a
//! company ConnectWise holds as deleted (`deletedFlag`) is none.
//!
//! Remove (since 1.3): ConnectWise keeps deleted companies (`DELETE company/companies/{id}` sets
//! `deletedFlag`, `dateDeleted` and `deletedBy`), so a removal is `deactivated`. The company is read
//! first: one already held as deleted is `deactivated` again (removing twice answers the same), one
//! ConnectWise has not at all is `already-gone`, and a dry run stops there.

use serde_json::{Map, Value, json};

use crate::client::{Client, ref_id, reference};
use crate::custom;
use crate::exports::{Change, PullPage, Pushed, Removal};
use crate::fields::pushed;
use crate::fields::{body, created_id, identity, patch, text};
use crate::manifest::lookups;
use crate::paging::pull_page;
use crate::push_context::{PushContext, rejected, rename_fields, resolved};
use crate::reconcile;
use crate::types::{
    Account, Address, ConnectorError, Entity, EntityData, PulledRecord, Record, RemoteReference,
};

const PATH: &str = "company/companies";
const ACCOUNT_TYPE_LABEL: &str = "Account Type -> ConnectWise Type";
const CURRENCY_LABEL: &str = "Currency -> ConnectWise Currency";

/// ConnectWise field → BSS field, for naming rejected fields.
const FIELD_NAMES: &[(&str, &str)] = &[
    ("identifier", "bss-id"),
    ("name", "name"),
    ("accountNumber", "code"),
    ("addressLine1", "billing-address/line1"),
    ("addressLine2", "billing-address/line2"),
    ("city", "billing-address/city"),
    ("state", "billing-address/state"),
    ("zip", "billing-address/zip"),
    ("country", "billing-address/country"),
    ("phoneNumber", "phone"),
    ("faxNumber", "fax"),
    ("website", "website"),
    ("currency", "currency"),
    ("types", "account-type"),
    ("status", "status (import-account-id)"),
    ("parentCompany", "parent-account"),
    ("defaultContact", "primary-contact"),
];

/// What the BSS says the company should be.
struct Desired {
    fields: Map<String, Value>,
    type_id: Option<i64>,
    /// Custom fields from `extra`.
    custom: Vec<(i64, Value)>,
}

fn desired(
    context: &PushContext,
    record: &Record,
    account: &Account,
) -> Result<Desired, ConnectorError> {
    let mut fields = Map::new();
    fields.insert("identifier".into(), json!(record.bss_id));
    fields.insert("name".into(), json!(account.name));
    fields.insert("accountNumber".into(), text(&Some(account.code.clone())));
    let address = account.billing_address.clone().unwrap_or(Address {
        line1: None,
        line2: None,
        city: None,
        state: None,
        zip: None,
        country: None,
    });
    fields.insert("addressLine1".into(), text(&address.line1));
    fields.insert("addressLine2".into(), text(&address.line2));
    fields.insert("city".into(), text(&address.city));
    fields.insert("zip".into(), text(&address.zip));
    let state = match text(&address.state) {
        Value::String(name) => Value::String(resolve_state(context, &name)?),
        other => other,
    };
    fields.insert("state".into(), state);
    let country = match text(&address.country) {
        Value::String(name) => {
            let found = context.find_by("company/countries", "name", &name)?;
            let id = found
                .as_ref()
                .and_then(|c| c.get("id"))
                .and_then(Value::as_i64)
                .ok_or_else(|| {
                    rejected(
                        "billing-address/country",
                        format!("ConnectWise has no country named {name:?}"),
                    )
                })?;
            reference(id)
        }
        other => other,
    };
    fields.insert("country".into(), country);
    fields.insert("phoneNumber".into(), text(&account.phone));
    fields.insert("faxNumber".into(), text(&account.fax));
    fields.insert("website".into(), text(&account.website));
    let currency = match text(&account.currency) {
        Value::String(code) => {
            reference(context.lookup_id(lookups::CURRENCY, CURRENCY_LABEL, "currency", &code)?)
        }
        other => other,
    };
    fields.insert("currency".into(), currency);
    let parent = resolved(
        record,
        "parent-account",
        Entity::Account,
        account.parent_account.as_ref(),
    )?;
    fields.insert(
        "parentCompany".into(),
        parent.map(reference).unwrap_or(Value::Null),
    );
    // The primary contact often exists only after the account: it is sent once the host has
    // resolved it, and left alone until then.
    if let Ok(Some(contact)) = resolved(
        record,
        "primary-contact",
        Entity::Contact,
        account.primary_contact.as_ref(),
    ) {
        fields.insert("defaultContact".into(), reference(contact));
    }
    let type_id = match account
        .account_type
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        Some(kind) => Some(context.lookup_id(
            lookups::ACCOUNT_TYPE,
            ACCOUNT_TYPE_LABEL,
            "account-type",
            kind,
        )?),
        None => None,
    };
    let custom = custom::wanted(context, PATH, &account.extra, "")?;
    Ok(Desired {
        fields,
        type_id,
        custom,
    })
}

/// A state's ConnectWise identifier from its name (or identifier); unknown names pass unchanged.
fn resolve_state(context: &PushContext, name: &str) -> Result<String, ConnectorError> {
    for field in ["name", "identifier"] {
        if let Some(state) = context.find_by("company/states", field, name)?
            && let Some(identifier) = state.get("identifier").and_then(Value::as_str)
        {
            return Ok(identifier.to_string());
        }
    }
    Ok(name.to_string())
}

/// What the last push asked of the company, mapped as now; none when it no longer maps (a lookup
/// since removed), which only makes the update more careful.
fn base_of(context: &PushContext, base: Option<&Record>) -> Option<Desired> {
    let base = base?;
    let EntityData::Account(account) = &base.data else {
        return None;
    };
    desired(context, base, account).ok()
}

pub fn push(
    context: &PushContext,
    record: &Record,
    base: Option<&Record>,
) -> Result<Pushed, ConnectorError> {
    let EntityData::Account(account) = &record.data else {
        return Err(ConnectorError::Internal(
            "an account record without account data".into(),
        ));
    };
    let result = desired(context, record, account).and_then(|desired| {
        let found = reconcile::remote_id_of(record, || {
            let ours: Vec<String> = holders(context, record)?
                .iter()
                .filter(|c| carries_key(c, account))
                .filter_map(|c| c.get("id").and_then(Value::as_i64))
                .map(|id| id.to_string())
                .collect();
            reconcile::at_most_one(record, "companies", ours)
        })?;
        match found {
            None => create(context, record, account, &desired),
            Some(id) => update(
                context,
                company_id(&id)?,
                (&desired, base_of(context, base).as_ref()),
                context.merge(record, base),
            ),
        }
    });
    result.map_err(|e| rename_fields(e, FIELD_NAMES))
}

fn company_id(id: &str) -> Result<i64, ConnectorError> {
    id.parse()
        .map_err(|_| ConnectorError::Internal(format!("remote id {id:?} is not a company id")))
}

/// The companies whose identifier is this record's BSS id (ConnectWise keeps identifiers unique,
/// so at most one, but a search is a list).
fn holders(context: &PushContext, record: &Record) -> Result<Vec<Value>, ConnectorError> {
    context.client.get_all(
        PATH,
        Some(&format!(
            "identifier={}",
            crate::client::quote(&record.bss_id)
        )),
    )
}

/// Whether a company holding this record's identifier is this record: its account number is the
/// account's code too (what a create by this connector writes).
fn carries_key(company: &Value, account: &Account) -> bool {
    let held = company
        .get("accountNumber")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("");
    held == account.code.trim()
}

fn create(
    context: &PushContext,
    record: &Record,
    account: &Account,
    desired: &Desired,
) -> Result<Pushed, ConnectorError> {
    let mut body = body(&desired.fields);
    if let Some(status) = context.settings.import_account_status {
        body.insert("status".into(), reference(status));
    }
    if let Some(type_id) = desired.type_id {
        body.insert("types".into(), json!([{ "id": type_id }]));
    }
    if let Some(fields) = custom::create_body(&desired.custom) {
        body.insert("customFields".into(), fields);
    }
    if context.dry_run {
        return Ok(pushed(Change::Created, ""));
    }
    match context.client.post(PATH, &Value::Object(body)) {
        Ok(created) => {
            let id = created_id(&created, "company")?;
            let stored = to_account(&context.client, &created).ok();
            Ok(Pushed {
                stored,
                ..pushed(Change::Created, id.to_string())
            })
        }
        Err(error) if reconcile::refused_as_in_use(&error, "identifier") => {
            adopt(context, record, account, desired, error)
        }
        Err(error) => Err(error),
    }
}

/// ConnectWise already has a company with this identifier: it becomes this record's when it
/// carries the record's key, and is otherwise reported, never taken over.
fn adopt(
    context: &PushContext,
    record: &Record,
    account: &Account,
    desired: &Desired,
    refusal: ConnectorError,
) -> Result<Pushed, ConnectorError> {
    let holders = holders(context, record)?;
    let Some(holder) = holders.first() else {
        return Err(refusal);
    };
    let id = holder.get("id").and_then(Value::as_i64).unwrap_or_default();
    if holders.len() == 1 && carries_key(holder, account) {
        return update(context, id, (desired, None), context.merge(record, None));
    }
    Err(reconcile::in_use(
        record,
        "company",
        &id.to_string(),
        &format!("identifier {}", record.bss_id),
    ))
}

fn update(
    context: &PushContext,
    id: i64,
    (desired, base): (&Desired, Option<&Desired>),
    mut merge: crate::fields::Merge,
) -> Result<Pushed, ConnectorError> {
    let path = format!("{PATH}/{id}");
    let current = context.client.get(&path)?;
    let owned = merge.owned(
        &current,
        &desired.fields,
        base.map(|b| &b.fields),
        FIELD_NAMES,
    );
    let mut operations = patch(&current, &owned);
    let custom = merge.owned_custom(&current, &desired.custom, base.map(|b| b.custom.as_slice()));
    if let Some(fields) = custom::merged(&current, &custom) {
        operations.push(json!({ "op": "replace", "path": "customFields", "value": fields }));
    }
    let current_types: Vec<i64> = current
        .get("types")
        .and_then(Value::as_array)
        .map(|types| {
            types
                .iter()
                .filter_map(|t| t.get("id").and_then(Value::as_i64))
                .collect()
        })
        .unwrap_or_default();
    // A type the BSS did not change since its last push stays as staff set it.
    let type_change = desired
        .type_id
        .filter(|t| !current_types.contains(t))
        .filter(|t| base.is_none_or(|b| b.type_id != Some(*t)));
    if merge.held() {
        return Ok(merge.answer(Change::Updated, id, None));
    }
    if operations.is_empty() && type_change.is_none() {
        let stored = to_account(&context.client, &current).ok();
        return Ok(merge.answer(Change::Unchanged, id, stored));
    }
    if context.dry_run {
        return Ok(merge.answer(Change::Updated, id, None));
    }
    let mut after = current;
    if !operations.is_empty() {
        after = context.client.patch(&path, &operations)?;
    }
    if let Some(type_id) = type_change {
        set_type(context, id, type_id)?;
        after = context.client.get(&path)?;
    }
    let stored = to_account(&context.client, &after).ok();
    Ok(merge.answer(Change::Updated, id, stored))
}

/// Adds the type association, then removes the associations of other types the BSS maps (types
/// only ConnectWise uses are left alone).
fn set_type(context: &PushContext, company: i64, type_id: i64) -> Result<(), ConnectorError> {
    let associations_path = format!("{PATH}/{company}/typeAssociations");
    context.client.post(
        &associations_path,
        &json!({ "type": { "id": type_id }, "company": { "id": company } }),
    )?;
    let managed: Vec<i64> = context
        .host()
        .lookup_remote_values(lookups::ACCOUNT_TYPE)
        .iter()
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    for association in context.client.get_all(&associations_path, None)? {
        let Some(other) = ref_id(&association, "type") else {
            continue;
        };
        if other != type_id
            && managed.contains(&other)
            && let Some(association_id) = association.get("id").and_then(Value::as_i64)
        {
            context
                .client
                .delete(&format!("{associations_path}/{association_id}"))?;
        }
    }
    Ok(())
}

fn string(company: &Value, field: &str) -> Option<String> {
    company
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

/// A company as a BSS account.
pub fn to_account(client: &Client, company: &Value) -> Result<PulledRecord, ConnectorError> {
    let host = client.host();
    let (remote_id, last_updated) = identity(company, "company")?;
    let mut warnings = Vec::new();
    let first_type = company
        .get("types")
        .and_then(Value::as_array)
        .and_then(|t| t.first())
        .cloned();
    let account_type = first_type.and_then(|t| {
        let id = t.get("id").and_then(Value::as_i64)?.to_string();
        let mapped = host.reverse_lookup(lookups::ACCOUNT_TYPE, &id);
        if mapped.is_none() {
            let name = t.get("name").and_then(Value::as_str).unwrap_or("?");
            warnings.push(format!(
                "company type {name} (id {id}) is not mapped in lookup {ACCOUNT_TYPE_LABEL}"
            ));
        }
        mapped
    });
    let currency = ref_id(company, "currency").and_then(|id| {
        let mapped = host.reverse_lookup(lookups::CURRENCY, &id.to_string());
        if mapped.is_none() {
            warnings.push(format!(
                "currency id {id} is not mapped in lookup {CURRENCY_LABEL}"
            ));
        }
        mapped
    });
    let address = Address {
        line1: string(company, "addressLine1"),
        line2: string(company, "addressLine2"),
        city: string(company, "city"),
        state: string(company, "state"),
        zip: string(company, "zip"),
        country: company
            .get("country")
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string),
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
    .any(|f| f.is_some());
    let mut references = Vec::new();
    if let Some(parent) = ref_id(company, "parentCompany") {
        references.push(RemoteReference {
            field: "parent-account".into(),
            entity: Entity::Account,
            remote_id: parent.to_string(),
        });
    }
    if let Some(contact) = ref_id(company, "defaultContact") {
        references.push(RemoteReference {
            field: "primary-contact".into(),
            entity: Entity::Contact,
            remote_id: contact.to_string(),
        });
    }
    let account = Account {
        code: string(company, "accountNumber")
            .or_else(|| string(company, "identifier"))
            .unwrap_or_default(),
        name: string(company, "name").unwrap_or_default(),
        account_type,
        status: company
            .get("status")
            .and_then(|s| s.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string),
        currency,
        billing_address: has_address.then_some(address),
        phone: string(company, "phoneNumber"),
        fax: string(company, "faxNumber"),
        website: string(company, "website"),
        parent_account: None,
        primary_contact: None,
        extra: custom::to_extra(company),
    };
    Ok(PulledRecord {
        remote_id: remote_id.to_string(),
        last_updated,
        data: EntityData::Account(account),
        references,
        warnings,
    })
}

pub fn pull(
    client: &Client,
    since: Option<&str>,
    page_token: Option<&str>,
) -> Result<PullPage, ConnectorError> {
    let (companies, next_page_token) = pull_page(client, PATH, since, page_token)?;
    let records = companies
        .iter()
        .map(|c| to_account(client, c))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PullPage {
        records,
        next_page_token,
    })
}

/// Whether ConnectWise holds a company as deleted (its soft delete).
fn is_deleted(company: &Value) -> bool {
    company
        .get("deletedFlag")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// One company, mapped as [`pull`] maps it; none when ConnectWise has no such company or holds it
/// as deleted.
pub fn fetch(client: &Client, id: i64) -> Result<Option<PulledRecord>, ConnectorError> {
    match client.get_found(&format!("{PATH}/{id}"))? {
        Some(company) if !is_deleted(&company) => to_account(client, &company).map(Some),
        _ => Ok(None),
    }
}

/// Deletes a company, which ConnectWise keeps as deleted: `deactivated` (also when it was
/// already), or `already-gone` when there is no company at all. A dry run writes nothing.
pub fn remove(client: &Client, id: i64, dry_run: bool) -> Result<Removal, ConnectorError> {
    let path = format!("{PATH}/{id}");
    match client.get_found(&path)? {
        Some(company) if !is_deleted(&company) => {}
        Some(_) => return Ok(Removal::Deactivated),
        None => return Ok(Removal::AlreadyGone),
    }
    if dry_run || client.delete_found(&path)? {
        Ok(Removal::Deactivated)
    } else {
        Ok(Removal::AlreadyGone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeHost;

    fn company(id: i64, deleted: bool) -> Value {
        json!({ "id": id, "identifier": "A1", "name": "Acme", "accountNumber": "C-A1",
                "city": "Springfield", "parentCompany": { "id": 9 }, "deletedFlag": deleted })
    }

    #[test]
    fn fetch_maps_a_company_as_pull_does() {
        let host = FakeHost::new();
        host.insert(PATH, company(250, false));
        let client = host.client();
        let fetched = fetch(&client, 250).unwrap().unwrap();
        assert_eq!(
            fetched,
            to_account(&client, &host.get(PATH, 250).unwrap()).unwrap()
        );
        assert_eq!(fetched.remote_id, "250");
        assert_eq!(fetched.references[0].remote_id, "9");
        assert_eq!(host.requests(), ["GET company/companies/250"]);
    }

    #[test]
    fn fetch_of_a_deleted_company_is_none() {
        let host = FakeHost::new();
        host.insert(PATH, company(250, true));
        assert_eq!(fetch(&host.client(), 250).unwrap(), None);
    }

    #[test]
    fn fetch_of_a_company_connectwise_does_not_have_is_none() {
        let host = FakeHost::new();
        assert_eq!(fetch(&host.client(), 404).unwrap(), None);
        assert_eq!(host.requests(), ["GET company/companies/404"]);
    }

    #[test]
    fn remove_deactivates_a_company_and_removing_again_answers_the_same() {
        let host = FakeHost::new();
        host.insert(PATH, company(250, false));
        assert_eq!(remove(&host.client(), 250, false), Ok(Removal::Deactivated));
        assert_eq!(
            host.requests(),
            ["GET company/companies/250", "DELETE company/companies/250"]
        );
        assert_eq!(host.get(PATH, 250).unwrap()["deletedFlag"], json!(true));

        assert_eq!(
            remove(&host.client(), 250, false),
            Ok(Removal::Deactivated),
            "removing again answers the same"
        );
        assert_eq!(host.writes().len(), 1, "{:?}", host.requests());
    }

    #[test]
    fn remove_of_a_company_connectwise_does_not_have_is_already_gone() {
        let host = FakeHost::new();
        assert_eq!(remove(&host.client(), 404, false), Ok(Removal::AlreadyGone));
        assert!(host.writes().is_empty());
    }

    #[test]
    fn a_dry_run_remove_of_companies_only_reads() {
        let host = FakeHost::new();
        host.insert(PATH, company(250, false));
        host.insert(PATH, company(251, true));
        let client = host.client();
        assert_eq!(remove(&client, 250, true), Ok(Removal::Deactivated));
        assert_eq!(remove(&client, 251, true), Ok(Removal::Deactivated));
        assert_eq!(remove(&client, 404, true), Ok(Removal::AlreadyGone));
        assert!(host.writes().is_empty(), "{:?}", host.requests());
        assert_eq!(host.get(PATH, 250).unwrap()["deletedFlag"], json!(false));
    }

    #[test]
    fn patch_covers_only_what_differs() {
        let current = json!({
            "id": 7, "identifier": "A1", "name": "Old", "city": "", "phoneNumber": "555",
            "currency": {"id": 1, "name": "USD"}, "parentCompany": {"id": 9}
        });
        let mut desired = Map::new();
        desired.insert("identifier".into(), json!("A1"));
        desired.insert("name".into(), json!("New"));
        desired.insert("city".into(), Value::Null);
        desired.insert("phoneNumber".into(), Value::Null);
        desired.insert("currency".into(), json!({"id": 1}));
        desired.insert("parentCompany".into(), json!({"id": 10}));
        assert_eq!(
            patch(&current, &desired),
            vec![
                json!({"op": "replace", "path": "name", "value": "New"}),
                json!({"op": "replace", "path": "parentCompany", "value": {"id": 10}}),
                json!({"op": "remove", "path": "phoneNumber"}),
            ]
        );
    }
}
