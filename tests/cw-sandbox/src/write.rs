//! Changing records. Owns the create / replace / patch / delete flows behind POST, PUT, PATCH and DELETE
//! (validate, fill defaults, store, stamp `_info`), the direct edits the test handle makes (`insert`, `patch`: no
//! validation, attributed to a ConnectWise user rather than the API member), and keeping the tables that back other
//! records' fields in step: a company's type associations, a contact's communication items (one default per
//! Email/Phone/Fax group), cascading deletes of sub-resource records, and bumping the parent's `lastUpdated` when
//! one of those sub-resource records changes.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::clock;
use crate::error::ApiError;
use crate::patch;
use crate::resources::{self, RESOURCES, Resource};
use crate::store::{self, Store};
use crate::validation::{self, Existing};

/// Who and when, for `_info`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stamp<'a> {
    pub now: i64,
    pub user: &'a str,
}

/// POST: validates and stores a new record; returns its id.
pub(crate) fn create(
    store: &mut Store,
    res: &'static Resource,
    parent_id: Option<i64>,
    body: Value,
    stamp: Stamp<'_>,
) -> Result<i64, ApiError> {
    let mut prepared = validation::prepare(store, res, body, None, parent_id)?;
    let id = store.allocate_id(res.name);
    validation::apply_create_defaults(store, res, &mut prepared, id, stamp.now, stamp.user);
    commit(store, res, id, prepared.record, None, stamp);
    if let Some(types) = prepared.types {
        set_company_types(store, id, &types, stamp);
    }
    if let Some(items) = prepared.communications {
        set_communications(store, id, items, stamp);
    }
    if res.name == resources::COMMUNICATIONS {
        settle_communication_default(store, id);
    }
    Ok(id)
}

/// PUT (and the second half of PATCH): validates `body` as the whole new record.
pub(crate) fn replace(
    store: &mut Store,
    res: &'static Resource,
    parent_id: Option<i64>,
    id: i64,
    body: Value,
    stamp: Stamp<'_>,
) -> Result<(), ApiError> {
    let old = store
        .get(res.name, id)
        .cloned()
        .ok_or_else(|| not_found(res, id))?;
    let mut prepared = validation::prepare(store, res, body, Some(Existing { id }), parent_id)?;
    // Fields the server owns survive a PUT that leaves them out.
    for keep in ["invoiceNumber"] {
        if let (false, Some(v)) = (prepared.record.contains_key(keep), old.get(keep)) {
            prepared.record.insert(keep.into(), v.clone());
        }
    }
    if res.name == resources::CALLBACKS {
        // A callback keeps the member who registered it; a PUT without `inactiveFlag` leaves it active.
        prepared.record.remove("memberId");
        if let Some(member) = old.get("memberId") {
            prepared.record.insert("memberId".into(), member.clone());
        }
        prepared
            .record
            .entry("inactiveFlag")
            .or_insert(json!(false));
    }
    commit(store, res, id, prepared.record, Some(&old), stamp);
    if let Some(items) = prepared.communications {
        set_communications(store, id, items, stamp);
    }
    if res.name == resources::COMMUNICATIONS {
        settle_communication_default(store, id);
    }
    Ok(())
}

/// PATCH: applies the operations to the record as a GET shows it, then replaces.
pub(crate) fn patch(
    store: &mut Store,
    res: &'static Resource,
    parent_id: Option<i64>,
    id: i64,
    ops: &Value,
    api_url: &str,
    stamp: Stamp<'_>,
) -> Result<(), ApiError> {
    let old = store.get(res.name, id).ok_or_else(|| not_found(res, id))?;
    let mut doc = store.render(res, old, api_url);
    patch::apply(&mut doc, ops)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON patch: {e}")))?;
    replace(store, res, parent_id, id, doc, stamp)
}

/// DELETE, with the record's sub-resource records.
pub(crate) fn delete(
    store: &mut Store,
    res: &Resource,
    id: i64,
    stamp: Stamp<'_>,
) -> Result<(), ApiError> {
    let old = store
        .remove(res.name, id)
        .ok_or_else(|| not_found(res, id))?;
    for child in RESOURCES
        .iter()
        .filter(|r| r.parent.is_some_and(|p| p.resource == res.name))
    {
        for cid in store.child_ids(child, id) {
            store.remove(child.name, cid);
        }
    }
    touch_parent(store, res, &old, stamp);
    Ok(())
}

pub(crate) fn not_found(res: &Resource, id: i64) -> ApiError {
    ApiError::not_found(format!(
        "{} with id {id} was not found.",
        validation::label(res)
    ))
}

/// Stores `record` under `id` with a fresh `_info` and marks the parent of a backing sub-resource record changed.
fn commit(
    store: &mut Store,
    res: &Resource,
    id: i64,
    mut record: Map<String, Value>,
    old: Option<&Value>,
    stamp: Stamp<'_>,
) {
    settle_status(store, res, &mut record, stamp);
    commit_with(store, res, id, record, old, stamp);
    if let Some(stored) = store.get(res.name, id).cloned() {
        touch_parent(store, res, &stored, stamp);
    }
}

/// What ConnectWise derives from a document's status: an agreement with `cancelledFlag` is `Cancelled` (dated the day
/// it was cancelled); an invoice whose billing status is closed records who closed it (`closedBy`), and one reopened
/// loses it.
fn settle_status(store: &Store, res: &Resource, rec: &mut Map<String, Value>, stamp: Stamp<'_>) {
    match res.name {
        resources::AGREEMENTS if rec.get("cancelledFlag") == Some(&json!(true)) => {
            rec.insert("agreementStatus".into(), json!("Cancelled"));
            rec.entry("dateCancelled")
                .or_insert_with(|| json!(clock::format_utc(clock::start_of_day(stamp.now))));
        }
        resources::INVOICES => {
            let closed = rec
                .get("status")
                .and_then(|s| s["id"].as_i64())
                .and_then(|s| store.get("finance/billingStatuses", s))
                .is_some_and(|s| s["closedFlag"] == json!(true));
            if closed {
                rec.entry("closedBy").or_insert_with(|| json!(stamp.user));
            } else {
                rec.remove("closedBy");
            }
        }
        _ => {}
    }
}

/// A change to a type association or communication item is a change to its company or contact.
fn touch_parent(store: &mut Store, res: &Resource, record: &Value, stamp: Stamp<'_>) {
    if res.name != resources::TYPE_ASSOCIATIONS && res.name != resources::COMMUNICATIONS {
        return;
    }
    let (Some(parent), Some(pid)) = (res.parent, store::parent_of(res, record)) else {
        return;
    };
    if let Some(Value::Object(info)) = store.get_mut(parent.resource, pid).map(|p| &mut p["_info"])
    {
        info.insert("lastUpdated".into(), json!(clock::format_utc(stamp.now)));
        info.insert("updatedBy".into(), json!(stamp.user));
    }
}

/// Makes the company's types exactly `type_ids`, keeping the associations that stay.
pub(crate) fn set_company_types(
    store: &mut Store,
    company_id: i64,
    type_ids: &[i64],
    stamp: Stamp<'_>,
) {
    let assoc = resources::by_name(resources::TYPE_ASSOCIATIONS).expect("resource");
    let mut existing: BTreeMap<i64, i64> = BTreeMap::new();
    for a in store.child_ids(assoc, company_id) {
        let type_id = store
            .get(assoc.name, a)
            .and_then(|r| r["type"]["id"].as_i64());
        match type_id {
            Some(t) if type_ids.contains(&t) && !existing.contains_key(&t) => {
                existing.insert(t, a);
            }
            _ => {
                store.remove(assoc.name, a);
            }
        }
    }
    for t in type_ids {
        if existing.contains_key(t) {
            continue;
        }
        let id = store.allocate_id(assoc.name);
        let mut rec = Map::new();
        rec.insert("type".into(), json!({ "id": t }));
        rec.insert("company".into(), json!({ "id": company_id }));
        existing.insert(*t, id);
        commit_with(store, assoc, id, rec, None, stamp);
    }
}

/// Makes the contact's communication items exactly `items` (those with an `id` update that item).
pub(crate) fn set_communications(
    store: &mut Store,
    contact_id: i64,
    items: Vec<Value>,
    stamp: Stamp<'_>,
) {
    let comms = resources::by_name(resources::COMMUNICATIONS).expect("resource");
    let owned = store.child_ids(comms, contact_id);
    let keep: Vec<i64> = items
        .iter()
        .filter_map(|i| i["id"].as_i64())
        .filter(|i| owned.contains(i))
        .collect();
    for id in owned.iter().filter(|id| !keep.contains(id)) {
        store.remove(comms.name, *id);
    }
    let mut seen_default: BTreeMap<String, bool> = BTreeMap::new();
    let mut written = Vec::new();
    for item in items {
        let Value::Object(mut rec) = item else {
            continue;
        };
        let id = match rec.get("id").and_then(Value::as_i64) {
            Some(id) if owned.contains(&id) => id,
            _ => store.allocate_id(comms.name),
        };
        rec.insert("contactId".into(), json!(contact_id));
        let kind = communication_kind(store, rec.get("type").and_then(|t| t["id"].as_i64()));
        if let Some(kind) = &kind {
            rec.insert("communicationType".into(), json!(kind));
            let flagged = rec.get("defaultFlag") == Some(&json!(true));
            let taken = seen_default.entry(kind.clone()).or_insert(false);
            rec.insert("defaultFlag".into(), json!(flagged && !*taken));
            *taken |= flagged;
        }
        let old = store.get(comms.name, id).cloned();
        rec.remove("id");
        commit_with(store, comms, id, rec, old.as_ref(), stamp);
        written.push((id, kind));
    }
    // A group without a flagged item gets its first item as default.
    for (kind, has_default) in seen_default {
        if !has_default
            && let Some((first, _)) = written
                .iter()
                .find(|(_, k)| k.as_deref() == Some(kind.as_str()))
            && let Some(rec) = store.get_mut(comms.name, *first)
        {
            rec["defaultFlag"] = json!(true);
        }
    }
}

/// A single communication item written through its own endpoint: one default per group.
pub(crate) fn settle_communication_default(store: &mut Store, id: i64) {
    let comms = resources::by_name(resources::COMMUNICATIONS).expect("resource");
    let Some(rec) = store.get(comms.name, id).cloned() else {
        return;
    };
    let kind = communication_kind(store, rec["type"]["id"].as_i64());
    let Some(contact) = rec["contactId"].as_i64() else {
        return;
    };
    if let Some(kind) = &kind
        && let Some(r) = store.get_mut(comms.name, id)
    {
        r["communicationType"] = json!(kind);
    }
    let siblings: Vec<i64> = store
        .child_ids(comms, contact)
        .into_iter()
        .filter(|s| {
            *s != id
                && communication_kind(
                    store,
                    store
                        .get(comms.name, *s)
                        .and_then(|r| r["type"]["id"].as_i64()),
                ) == kind
        })
        .collect();
    let this_default = rec["defaultFlag"] == json!(true);
    let any_other_default = siblings.iter().any(|s| {
        store
            .get(comms.name, *s)
            .is_some_and(|r| r["defaultFlag"] == json!(true))
    });
    if this_default {
        for s in siblings {
            if let Some(r) = store.get_mut(comms.name, s) {
                r["defaultFlag"] = json!(false);
            }
        }
    } else if !any_other_default && let Some(r) = store.get_mut(comms.name, id) {
        r["defaultFlag"] = json!(true);
    }
}

/// "Email", "Fax" or "Phone" from a communication type's flags.
fn communication_kind(store: &Store, type_id: Option<i64>) -> Option<String> {
    let t = store.get(resources::COMMUNICATION_TYPES, type_id?)?;
    let kind = if t["emailFlag"] == json!(true) {
        "Email"
    } else if t["faxFlag"] == json!(true) {
        "Fax"
    } else {
        "Phone"
    };
    Some(kind.to_string())
}

/// Stores `rec` under `id` with a fresh `_info` (keeping the original entry date).
fn commit_with(
    store: &mut Store,
    res: &Resource,
    id: i64,
    mut rec: Map<String, Value>,
    old: Option<&Value>,
    stamp: Stamp<'_>,
) {
    let now = clock::format_utc(stamp.now);
    let entered = old
        .and_then(|o| o.get("_info"))
        .cloned()
        .unwrap_or_default();
    rec.insert("id".into(), json!(id));
    rec.insert(
        "_info".into(),
        json!({
            "lastUpdated": now,
            "updatedBy": stamp.user,
            "dateEntered": entered.get("dateEntered").cloned().unwrap_or(json!(now)),
            "enteredBy": entered.get("enteredBy").cloned().unwrap_or(json!(stamp.user)),
        }),
    );
    store.put(res.name, id, Value::Object(rec));
}

/// The test handle's direct insert: no validation; `id` taken from the record or allocated; an existing record
/// with that id is replaced. `types` of a company and `communicationItems` of a contact go to their tables.
pub(crate) fn direct_insert(
    store: &mut Store,
    res: &'static Resource,
    record: Value,
    stamp: Stamp<'_>,
) -> i64 {
    let Value::Object(mut rec) = record else {
        panic!("Sandbox::insert({}) needs a JSON object", res.name)
    };
    rec.remove("_info");
    let id = match rec.remove("id").and_then(|v| v.as_i64()) {
        Some(id) => id,
        None => store.allocate_id(res.name),
    };
    let (types, comms) = split_side_tables(res, &mut rec);
    let old = store.get(res.name, id).cloned();
    let mut value = Value::Object(rec);
    store::strip_nulls(&mut value);
    let Value::Object(rec) = value else {
        unreachable!()
    };
    commit(store, res, id, rec, old.as_ref(), stamp);
    if let Some(types) = types {
        set_company_types(store, id, &types, stamp);
    }
    if let Some(items) = comms {
        set_communications(store, id, items, stamp);
    }
    if res.name == resources::COMMUNICATIONS {
        settle_communication_default(store, id);
    }
    id
}

/// The test handle's remote edit: merges top-level `fields` (`null` removes a field).
pub(crate) fn direct_patch(
    store: &mut Store,
    res: &'static Resource,
    id: i64,
    fields: Value,
    stamp: Stamp<'_>,
) {
    let Some(old) = store.get(res.name, id).cloned() else {
        panic!("Sandbox::patch: {} has no record {id}", res.name)
    };
    let Value::Object(mut changes) = fields else {
        panic!("Sandbox::patch({}) needs a JSON object", res.name)
    };
    changes.remove("id");
    changes.remove("_info");
    let (types, comms) = split_side_tables(res, &mut changes);
    let Value::Object(mut rec) = old.clone() else {
        unreachable!("records are objects")
    };
    for (k, v) in changes {
        if v.is_null() {
            rec.remove(&k);
        } else {
            rec.insert(k, v);
        }
    }
    commit(store, res, id, rec, Some(&old), stamp);
    if let Some(types) = types {
        set_company_types(store, id, &types, stamp);
    }
    if let Some(items) = comms {
        set_communications(store, id, items, stamp);
    }
}

fn split_side_tables(
    res: &Resource,
    rec: &mut Map<String, Value>,
) -> (Option<Vec<i64>>, Option<Vec<Value>>) {
    let types = (res.name == resources::COMPANIES)
        .then(|| rec.remove("types"))
        .flatten()
        .and_then(|t| {
            t.as_array()
                .map(|a| a.iter().filter_map(|r| r["id"].as_i64()).collect())
        });
    let comms = (res.name == resources::CONTACTS)
        .then(|| rec.remove("communicationItems"))
        .flatten()
        .and_then(|c| c.as_array().cloned());
    (types, comms)
}
