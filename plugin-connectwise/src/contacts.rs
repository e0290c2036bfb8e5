//! Contacts ↔ ConnectWise contacts.
//!
//! Push: names and title; the account's remote id becomes `company`; e-mail, phone, mobile and fax
//! become communication items of the types ConnectWise calls Email, Direct, Mobile and Fax
//! (looked up in `company/communicationTypes`). An update reads the contact, reuses the ids of
//! the items it already has, leaves items of other types alone, and patches only what differs.
//! `extra` entries become custom fields, and come back from pull (see [`crate::custom`]).
//!
//! Identity: contacts have no field an integration can fill per record without setup, so a contact
//! is this record when it has the same company, first and last name and e-mail address (no e-mail
//! when the record has none). A create whose outcome was unknown looks for such contacts first:
//! one is adopted, several fail `ambiguous:` (see [`crate::reconcile`]). Names alone would merge
//! two people of one name at one company.
//!
//! Pull: contacts changed since the cursor, forward-only paged; the company becomes the account
//! reference the host maps back to a BSS id. Fetch (since 1.3): one contact by id, mapped as pull
//! maps it; a 404 is none.
//!
//! Remove (since 1.3): `DELETE company/contacts/{id}` deletes the contact (`deleted`); a 404 is
//! `already-gone`. A dry run reads the contact instead to say which.

use serde_json::{Map, Value, json};

use crate::client::{Client, quote, ref_id, reference};
use crate::custom;
use crate::exports::{Change, PullPage, Pushed, Removal};
use crate::fields::{created_id, identity, patch, pushed, text};
use crate::paging::pull_page;
use crate::push_context::{PushContext, rejected, rename_fields, resolved};
use crate::reconcile;
use crate::types::{
    ConnectorError, Contact, Entity, EntityData, PulledRecord, Record, RemoteReference,
};

const PATH: &str = "company/contacts";
const TYPES_PATH: &str = "company/communicationTypes";

const FIELD_NAMES: &[(&str, &str)] = &[
    ("firstName", "first-name"),
    ("lastName", "last-name"),
    ("title", "title"),
    ("company", "account"),
    ("communicationItems", "email/phone/mobile/fax"),
];

/// The four kinds of communication item the BSS keeps, with the ConnectWise type names that
/// stand for them (first is preferred) and the item's `communicationType`.
const KINDS: &[(Kind, &[&str], &str)] = &[
    (Kind::Email, &["Email", "E-mail"], "Email"),
    (Kind::Phone, &["Direct", "Phone", "Work"], "Phone"),
    (Kind::Mobile, &["Mobile", "Cell"], "Phone"),
    (Kind::Fax, &["Fax"], "Fax"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Email,
    Phone,
    Mobile,
    Fax,
}

/// The communication type id ConnectWise uses for each kind.
fn type_ids(context: &PushContext) -> Result<Vec<(Kind, i64, &'static str)>, ConnectorError> {
    let table = context.table(TYPES_PATH)?;
    let mut found = Vec::new();
    for (kind, names, communication_type) in KINDS {
        let id = names.iter().find_map(|name| {
            table.iter().find_map(|t| {
                let label = t
                    .get("description")
                    .or_else(|| t.get("name"))
                    .and_then(Value::as_str)?;
                (label.eq_ignore_ascii_case(name))
                    .then(|| t.get("id").and_then(Value::as_i64))
                    .flatten()
            })
        });
        match id {
            Some(id) => found.push((*kind, id, *communication_type)),
            None => {
                return Err(ConnectorError::Internal(format!(
                    "ConnectWise has no communication type named {}; add one in setup tables",
                    names[0]
                )));
            }
        }
    }
    Ok(found)
}

fn value_of(contact: &Contact, kind: Kind) -> Option<String> {
    let value = match kind {
        Kind::Email => &contact.email,
        Kind::Phone => &contact.phone,
        Kind::Mobile => &contact.mobile,
        Kind::Fax => &contact.fax,
    };
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// The communication items the contact should have: existing items of other types kept, items of
/// the BSS's kinds replaced by the BSS's values, reusing the existing ids.
fn items(contact: &Contact, current: &[Value], types: &[(Kind, i64, &str)]) -> Vec<Value> {
    let managed: Vec<i64> = types.iter().map(|(_, id, _)| *id).collect();
    let mut result: Vec<Value> = current
        .iter()
        .filter(|item| ref_id(item, "type").is_none_or(|t| !managed.contains(&t)))
        .cloned()
        .collect();
    for (kind, type_id, communication_type) in types {
        let Some(value) = value_of(contact, *kind) else {
            continue;
        };
        let existing = current
            .iter()
            .find(|item| ref_id(item, "type") == Some(*type_id));
        let default = !result.iter().any(|i| {
            i.get("communicationType").and_then(Value::as_str) == Some(communication_type)
        });
        let mut item = json!({
            "type": { "id": type_id },
            "value": value,
            "defaultFlag": existing.and_then(|e| e.get("defaultFlag")).and_then(Value::as_bool).unwrap_or(default),
            "communicationType": communication_type,
        });
        if let Some(id) = existing.and_then(|e| e.get("id")).and_then(Value::as_i64) {
            item["id"] = json!(id);
        }
        result.push(item);
    }
    result
}

/// Items compared by what matters: type and value.
fn item_keys(items: &[Value]) -> Vec<(Option<i64>, String)> {
    let mut keys: Vec<(Option<i64>, String)> = items
        .iter()
        .map(|i| {
            (
                ref_id(i, "type"),
                i.get("value")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    keys.sort();
    keys
}

pub fn push(
    context: &PushContext,
    record: &Record,
    base: Option<&Record>,
) -> Result<Pushed, ConnectorError> {
    let EntityData::Contact(contact) = &record.data else {
        return Err(ConnectorError::Internal(
            "a contact record without contact data".into(),
        ));
    };
    push_contact(context, record, contact, base).map_err(|e| rename_fields(e, FIELD_NAMES))
}

/// The contact fields the BSS owns, as ConnectWise names them.
fn owned_fields(record: &Record, contact: &Contact) -> Result<Map<String, Value>, ConnectorError> {
    let company = resolved(record, "account", Entity::Account, contact.account.as_ref())?;
    Ok([
        ("firstName", json!(contact.first_name.trim())),
        ("lastName", text(&contact.last_name)),
        ("title", text(&contact.title)),
        ("company", company.map(reference).unwrap_or(Value::Null)),
    ]
    .into_iter()
    .map(|(f, v)| (f.to_string(), v))
    .collect())
}

/// The BSS's communication values (e-mail, phone, mobile, fax), to tell whether they changed.
fn communication(contact: &Contact) -> [Option<String>; 4] {
    [
        &contact.email,
        &contact.phone,
        &contact.mobile,
        &contact.fax,
    ]
    .map(|v| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    })
}

fn push_contact(
    context: &PushContext,
    record: &Record,
    contact: &Contact,
    base: Option<&Record>,
) -> Result<Pushed, ConnectorError> {
    if contact.first_name.trim().is_empty() {
        return Err(rejected(
            "first-name",
            "a contact needs a first name".into(),
        ));
    }
    let company = resolved(record, "account", Entity::Account, contact.account.as_ref())?;
    let types = type_ids(context)?;
    let custom = custom::wanted(context, PATH, &contact.extra, "")?;
    let fields = owned_fields(record, contact)?;
    let found = reconcile::remote_id_of(record, || {
        let ours = same_person(context, contact, company, &types)?;
        reconcile::at_most_one(record, "contacts", ours)
    })?;
    match found {
        None => {
            let mut body = serde_json::Map::new();
            for (field, value) in fields.iter().filter(|(_, v)| !v.is_null()) {
                body.insert(field.clone(), value.clone());
            }
            body.insert(
                "communicationItems".into(),
                Value::Array(items(contact, &[], &types)),
            );
            if let Some(fields) = custom::create_body(&custom) {
                body.insert("customFields".into(), fields);
            }
            if context.dry_run {
                return Ok(pushed(Change::Created, ""));
            }
            let created = context.client.post(PATH, &Value::Object(body))?;
            let id = created_id(&created, "contact")?;
            Ok(Pushed {
                stored: to_contact(&created).ok(),
                ..pushed(Change::Created, id.to_string())
            })
        }
        Some(remote_id) => {
            let id: i64 = remote_id.parse().map_err(|_| {
                ConnectorError::Internal(format!("remote id {remote_id:?} is not a contact id"))
            })?;
            let path = format!("{PATH}/{id}");
            let current = context.client.get(&path)?;
            let mut merge = context.merge(record, base);
            // The last push, mapped as now; none when it no longer maps.
            let base = base.and_then(|base| {
                let EntityData::Contact(last) = &base.data else {
                    return None;
                };
                let fields = owned_fields(base, last).ok()?;
                let custom = custom::wanted(context, PATH, &last.extra, "").ok()?;
                Some((fields, custom, communication(last)))
            });
            let owned = merge.owned(
                &current,
                &fields,
                base.as_ref().map(|(f, _, _)| f),
                FIELD_NAMES,
            );
            let mut operations = patch(&current, &owned);
            let current_items: Vec<Value> = current
                .get("communicationItems")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let wanted = items(contact, &current_items, &types);
            // Communication values the BSS did not change since its last push stay as staff
            // keep them.
            let bss_changed_items = base
                .as_ref()
                .is_none_or(|(_, _, last)| *last != communication(contact));
            if bss_changed_items && item_keys(&wanted) != item_keys(&current_items) {
                operations.push(
                    json!({ "op": "replace", "path": "communicationItems", "value": wanted }),
                );
            }
            let custom = merge.owned_custom(
                &current,
                &custom,
                base.as_ref().map(|(_, c, _)| c.as_slice()),
            );
            if let Some(fields) = custom::merged(&current, &custom) {
                operations
                    .push(json!({ "op": "replace", "path": "customFields", "value": fields }));
            }
            if merge.held() {
                return Ok(merge.answer(Change::Updated, id, None));
            }
            if operations.is_empty() {
                let stored = to_contact(&current).ok();
                return Ok(merge.answer(Change::Unchanged, id, stored));
            }
            if context.dry_run {
                return Ok(merge.answer(Change::Updated, id, None));
            }
            let after = context.client.patch(&path, &operations)?;
            Ok(merge.answer(Change::Updated, id, to_contact(&after).ok()))
        }
    }
}

/// The contacts of the company with this contact's names and e-mail address (or, when it has
/// none, without one): what a create of this contact would have made. Names alone are not enough:
/// two people of one name at one company are two contacts.
fn same_person(
    context: &PushContext,
    contact: &Contact,
    company: Option<i64>,
    types: &[(Kind, i64, &str)],
) -> Result<Vec<String>, ConnectorError> {
    let first = contact.first_name.trim();
    let last = contact.last_name.as_deref().map(str::trim).unwrap_or("");
    let mut conditions = format!("firstName={}", quote(first));
    if !last.is_empty() {
        conditions.push_str(&format!(" and lastName={}", quote(last)));
    }
    match company {
        Some(company) => conditions.push_str(&format!(" and company/id={company}")),
        None => conditions.push_str(" and company/id=null"),
    }
    let email_type = types
        .iter()
        .find(|(kind, _, _)| *kind == Kind::Email)
        .map(|(_, id, _)| *id);
    let email = value_of(contact, Kind::Email).map(|e| e.to_lowercase());
    let candidates = context.client.get_all(PATH, Some(&conditions))?;
    Ok(candidates
        .iter()
        .filter(|c| {
            string(c, "lastName")
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case(last)
        })
        .filter(|c| {
            let emails: Vec<String> = c
                .get("communicationItems")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|i| {
                    ref_id(i, "type") == email_type
                        || i.get("communicationType").and_then(Value::as_str) == Some("Email")
                })
                .filter_map(|i| string(i, "value"))
                .map(|v| v.trim().to_lowercase())
                .collect();
            match &email {
                Some(email) => emails.contains(email),
                None => emails.is_empty(),
            }
        })
        .filter_map(|c| c.get("id").and_then(Value::as_i64))
        .map(|id| id.to_string())
        .collect())
}

fn string(value: &Value, field: &str) -> Option<String> {
    value
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

/// A ConnectWise contact as a BSS contact. Items are told apart by their type's name.
pub fn to_contact(contact: &Value) -> Result<PulledRecord, ConnectorError> {
    let (remote_id, last_updated) = identity(contact, "contact")?;
    let mut found = Contact {
        account: None,
        first_name: string(contact, "firstName").unwrap_or_default(),
        last_name: string(contact, "lastName"),
        title: string(contact, "title"),
        email: None,
        phone: None,
        mobile: None,
        fax: None,
        extra: custom::to_extra(contact),
    };
    for item in contact
        .get("communicationItems")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let type_name = item
            .get("type")
            .and_then(|t| t.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some(value) = string(item, "value") else {
            continue;
        };
        let kind = KINDS
            .iter()
            .find(|(_, names, _)| names.iter().any(|n| n.eq_ignore_ascii_case(type_name)))
            .map(|(k, _, _)| *k);
        let slot = match kind {
            Some(Kind::Email) => &mut found.email,
            Some(Kind::Phone) => &mut found.phone,
            Some(Kind::Mobile) => &mut found.mobile,
            Some(Kind::Fax) => &mut found.fax,
            None => continue,
        };
        let is_default = item
            .get("defaultFlag")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if slot.is_none() || is_default {
            *slot = Some(value);
        }
    }
    let references = ref_id(contact, "company")
        .map(|company| RemoteReference {
            field: "account".into(),
            entity: Entity::Account,
            remote_id: company.to_string(),
        })
        .into_iter()
        .collect();
    Ok(PulledRecord {
        remote_id: remote_id.to_string(),
        last_updated,
        data: EntityData::Contact(found),
        references,
        warnings: Vec::new(),
    })
}

pub fn pull(
    client: &Client,
    since: Option<&str>,
    page_token: Option<&str>,
) -> Result<PullPage, ConnectorError> {
    let (contacts, next_page_token) = pull_page(client, PATH, since, page_token)?;
    let records = contacts
        .iter()
        .map(to_contact)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PullPage {
        records,
        next_page_token,
    })
}

/// One contact, mapped as [`pull`] maps it; none when ConnectWise has no such contact.
pub fn fetch(client: &Client, id: i64) -> Result<Option<PulledRecord>, ConnectorError> {
    client
        .get_found(&format!("{PATH}/{id}"))?
        .map(|contact| to_contact(&contact))
        .transpose()
}

/// Deletes a contact: `deleted`, or `already-gone` when ConnectWise has no such contact. A dry
/// run reads it instead.
pub fn remove(client: &Client, id: i64, dry_run: bool) -> Result<Removal, ConnectorError> {
    let path = format!("{PATH}/{id}");
    let found = if dry_run {
        client.get_found(&path)?.is_some()
    } else {
        client.delete_found(&path)?
    };
    Ok(if found {
        Removal::Deleted
    } else {
        Removal::AlreadyGone
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeHost;

    fn contact(id: i64) -> Value {
        json!({ "id": id, "firstName": "Ada", "lastName": "Lovelace", "company": { "id": 250 },
                "communicationItems": [
                    { "type": { "id": 1, "name": "Email" }, "value": "ada@example.com", "defaultFlag": true }
                ] })
    }

    #[test]
    fn fetch_maps_a_contact_as_pull_does() {
        let host = FakeHost::new();
        host.insert(PATH, contact(31));
        let fetched = fetch(&host.client(), 31).unwrap();
        assert_eq!(
            fetched,
            Some(to_contact(&host.get(PATH, 31).unwrap()).unwrap())
        );
        let EntityData::Contact(found) = fetched.unwrap().data else {
            panic!("not a contact");
        };
        assert_eq!(found.email.as_deref(), Some("ada@example.com"));
        assert_eq!(host.requests(), ["GET company/contacts/31"]);
    }

    #[test]
    fn fetch_of_a_contact_connectwise_does_not_have_is_none() {
        let host = FakeHost::new();
        assert_eq!(fetch(&host.client(), 31).unwrap(), None);
    }

    #[test]
    fn remove_deletes_contacts_and_finds_missing_ones_gone() {
        let host = FakeHost::new();
        host.insert(PATH, contact(31));
        let client = host.client();
        assert_eq!(remove(&client, 31, false), Ok(Removal::Deleted));
        assert_eq!(remove(&client, 32, false), Ok(Removal::AlreadyGone));
        assert_eq!(
            host.requests(),
            ["DELETE company/contacts/31", "DELETE company/contacts/32"]
        );
        assert!(host.get(PATH, 31).is_none());
    }

    #[test]
    fn a_dry_run_remove_of_contacts_only_reads() {
        let host = FakeHost::new();
        host.insert(PATH, contact(31));
        let client = host.client();
        assert_eq!(remove(&client, 31, true), Ok(Removal::Deleted));
        assert_eq!(remove(&client, 32, true), Ok(Removal::AlreadyGone));
        assert_eq!(
            host.requests(),
            ["GET company/contacts/31", "GET company/contacts/32"]
        );
        assert!(host.get(PATH, 31).is_some());
    }
}
