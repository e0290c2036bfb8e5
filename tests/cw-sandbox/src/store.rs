//! The records and how reads present them. Owns the in-memory tables (one per resource, keyed by generic name,
//! records by id), id allocation, `_info` stamping, parent/child lookups for sub-resources, and rendering: a stored
//! record keeps references as bare `{"id": n}` and leaves out what lives elsewhere; a read shows what ConnectWise
//! shows — references filled with `name`/`identifier`/… of the record they point at plus an `_info` link, a
//! company's `types` from its type associations, a contact's `communicationItems` from its communications, an
//! order's `productIds` including the product items attached to it, an addition's `customFields` (every custom
//! field defined for additions, with the values set), and no `null` members (ConnectWise omits them).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use crate::resources::{self, Resource};
use crate::seed;

#[derive(Debug, Default)]
pub(crate) struct Table {
    pub records: BTreeMap<i64, Value>,
    pub next_id: i64,
}

#[derive(Debug)]
pub(crate) struct Store {
    tables: HashMap<&'static str, Table>,
}

impl Store {
    /// A store holding the seeded setup tables and empty entity tables.
    pub(crate) fn new() -> Store {
        let mut tables: HashMap<&'static str, Table> = resources::RESOURCES
            .iter()
            .map(|r| {
                (
                    r.name,
                    Table {
                        records: BTreeMap::new(),
                        next_id: r.first_id,
                    },
                )
            })
            .collect();
        for (name, records) in seed::tables() {
            let table = tables.get_mut(name).expect("seeded table is a resource");
            for mut rec in records {
                let id = rec["id"].as_i64().expect("seed record has an id");
                rec["_info"] = json!({
                    "lastUpdated": seed::SEED_TIME, "updatedBy": seed::SEED_USER,
                    "dateEntered": seed::SEED_TIME, "enteredBy": seed::SEED_USER,
                });
                table.records.insert(id, rec);
                table.next_id = table.next_id.max(id + 1);
            }
        }
        Store { tables }
    }

    pub(crate) fn table(&self, name: &str) -> &Table {
        self.tables
            .get(name)
            .unwrap_or_else(|| panic!("no table {name}"))
    }

    pub(crate) fn table_mut(&mut self, name: &str) -> &mut Table {
        self.tables
            .get_mut(name)
            .unwrap_or_else(|| panic!("no table {name}"))
    }

    pub(crate) fn get(&self, name: &str, id: i64) -> Option<&Value> {
        self.table(name).records.get(&id)
    }

    pub(crate) fn exists(&self, name: &str, id: i64) -> bool {
        self.get(name, id).is_some()
    }

    pub(crate) fn allocate_id(&mut self, name: &str) -> i64 {
        let table = self.table_mut(name);
        let id = table.next_id;
        table.next_id += 1;
        id
    }

    /// Stores a record under `id`, keeping the next id above it.
    pub(crate) fn put(&mut self, name: &str, id: i64, record: Value) {
        let table = self.table_mut(name);
        table.next_id = table.next_id.max(id + 1);
        table.records.insert(id, record);
    }

    pub(crate) fn remove(&mut self, name: &str, id: i64) -> Option<Value> {
        self.table_mut(name).records.remove(&id)
    }

    /// Ids of the records of sub-resource `res` whose parent is `parent_id`.
    pub(crate) fn child_ids(&self, res: &Resource, parent_id: i64) -> Vec<i64> {
        self.table(res.name)
            .records
            .iter()
            .filter(|(_, rec)| parent_of(res, rec) == Some(parent_id))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Finds a record of `target` by `identifier` or `name` (case-insensitive), for references given without id.
    pub(crate) fn find_by_key(&self, target: &str, key: &str, wanted: &str) -> Option<i64> {
        let res = resources::by_name(target)?;
        self.table(target).records.iter().find_map(|(id, rec)| {
            let value = ref_key_value(self, res, rec, key)?;
            value.as_str()?.eq_ignore_ascii_case(wanted).then_some(*id)
        })
    }

    /// The record as a GET shows it (see the module doc). `api_url` is the base of `_info` links.
    pub(crate) fn render(&self, res: &Resource, rec: &Value, api_url: &str) -> Value {
        let mut out = rec.clone();
        let id = rec["id"].as_i64().unwrap_or_default();
        match res.name {
            resources::COMPANIES => {
                let assoc = resources::by_name(resources::TYPE_ASSOCIATIONS).expect("resource");
                let types: Vec<Value> = self
                    .child_ids(assoc, id)
                    .into_iter()
                    .filter_map(|a| self.get(assoc.name, a))
                    .map(|a| json!({"id": a["type"]["id"]}))
                    .collect();
                out["types"] = Value::Array(types);
            }
            resources::CONTACTS => {
                let comms = resources::by_name(resources::COMMUNICATIONS).expect("resource");
                let items: Vec<Value> = self
                    .child_ids(comms, id)
                    .into_iter()
                    .filter_map(|c| self.get(comms.name, c))
                    .map(|c| {
                        let mut item = Map::new();
                        for key in [
                            "id",
                            "type",
                            "value",
                            "extension",
                            "defaultFlag",
                            "domain",
                            "communicationType",
                        ] {
                            if let Some(v) = c.get(key) {
                                item.insert(key.to_string(), v.clone());
                            }
                        }
                        Value::Object(item)
                    })
                    .collect();
                out["communicationItems"] = Value::Array(items);
            }
            resources::ORDERS => {
                let mut ids: Vec<i64> = rec["productIds"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_i64).collect())
                    .unwrap_or_default();
                for (pid, p) in &self.table(resources::PRODUCTS).records {
                    if p["salesOrder"]["id"].as_i64() == Some(id) {
                        ids.push(*pid);
                    }
                }
                ids.sort_unstable();
                ids.dedup();
                out["productIds"] = json!(ids);
            }
            resources::ADDITIONS => {
                out["customFields"] =
                    Value::Array(self.custom_fields(seed::ADDITION_POD_ID, &rec["customFields"]));
            }
            _ => {}
        }
        for rf in res.refs {
            let target = resources::by_name(rf.target).expect("reference target");
            let segments: Vec<&str> = rf.path.split('/').collect();
            visit_mut(&mut out, &segments, &mut |slot| {
                let Some(tid) = slot.get("id").and_then(Value::as_i64) else {
                    return;
                };
                let mut filled = Map::new();
                filled.insert("id".into(), json!(tid));
                if let Some(trec) = self.get(target.name, tid) {
                    for key in rf.keys {
                        if let Some(v) = ref_key_value(self, target, trec, key) {
                            filled.insert((*key).to_string(), v);
                        }
                    }
                    filled.insert(
                        "_info".into(),
                        json!({ target.href: format!("{api_url}/{}", concrete_path(target, trec, tid)) }),
                    );
                }
                *slot = Value::Object(filled);
            });
        }
        strip_nulls(&mut out);
        out
    }

    /// The `customFields` array of a record on screen `pod_id`: every defined field, with the stored values.
    fn custom_fields(&self, pod_id: i64, stored: &Value) -> Vec<Value> {
        let values: HashMap<i64, Value> = stored
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|cf| Some((cf["id"].as_i64()?, cf.get("value")?.clone())))
                    .collect()
            })
            .unwrap_or_default();
        self.table(resources::USER_DEFINED_FIELDS)
            .records
            .values()
            .filter(|udf| udf["podId"].as_i64() == Some(pod_id))
            .map(|udf| {
                let id = udf["id"].as_i64().unwrap_or_default();
                let mut cf = json!({
                    "id": id,
                    "caption": udf["caption"],
                    "type": udf["fieldTypeIdentifier"],
                    "entryMethod": udf["entryTypeIdentifier"],
                    "numberOfDecimals": udf.get("numberDecimals").cloned().unwrap_or(json!(0)),
                });
                if let Some(v) = values.get(&id)
                    && !v.is_null()
                {
                    cf["value"] = v.clone();
                }
                cf
            })
            .collect()
    }
}

/// The URL path (under the API root) of record `id` of `res`.
pub(crate) fn concrete_path(res: &Resource, rec: &Value, id: i64) -> String {
    let base = match parent_of(res, rec) {
        Some(pid) => res.path.replace("{parentId}", &pid.to_string()),
        None => res.path.to_string(),
    };
    format!("{base}/{id}")
}

/// Parent id of a sub-resource record.
pub(crate) fn parent_of(res: &Resource, rec: &Value) -> Option<i64> {
    let p = res.parent?;
    if p.is_ref {
        rec[p.field]["id"].as_i64()
    } else {
        rec[p.field].as_i64()
    }
}

/// The value of reference key `key` for a reference to `rec` (a record of `target`).
pub(crate) fn ref_key_value(
    store: &Store,
    target: &Resource,
    rec: &Value,
    key: &str,
) -> Option<Value> {
    let non_null = |v: &Value| (!v.is_null()).then(|| v.clone());
    match (target.name, key) {
        (_, "name") => {
            if let Some(name) = rec.get("name").and_then(Value::as_str) {
                return Some(json!(name));
            }
            let first = rec.get("firstName").and_then(Value::as_str);
            let last = rec.get("lastName").and_then(Value::as_str);
            if first.is_some() || last.is_some() {
                let full = [first, last]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                return Some(json!(full));
            }
            rec.get("description").and_then(non_null)
        }
        (resources::INVOICES, "identifier") => rec.get("invoiceNumber").and_then(non_null),
        (resources::ORDERS, "identifier") => Some(json!(rec["id"].as_i64()?.to_string())),
        ("company/countries", "identifier") => rec.get("countryCode").and_then(non_null),
        (_, "isClosed") => rec.get("closedFlag").and_then(non_null),
        (resources::INVOICES, "billingType") => rec.get("type").and_then(non_null),
        (resources::INVOICES, "invoiceDate") => rec.get("date").and_then(non_null),
        (resources::AGREEMENTS, "type") => {
            let type_id = rec["type"]["id"].as_i64()?;
            let agreement_type = store.get(resources::AGREEMENT_TYPES, type_id)?;
            agreement_type.get("name").and_then(non_null)
        }
        (resources::AGREEMENTS, "chargeFirmFlag") => rec.get("chargeToFirm").and_then(non_null),
        ("finance/currencies", "currencyCode") => {
            rec["currencyCode"].get("name").and_then(non_null)
        }
        _ => rec.get(key).and_then(non_null),
    }
}

/// Calls `f` on every value at `path` (`x[]` steps into each element of array `x`).
pub(crate) fn visit_mut(value: &mut Value, path: &[&str], f: &mut dyn FnMut(&mut Value)) {
    match path.split_first() {
        None => f(value),
        Some((segment, rest)) => {
            if let Some(name) = segment.strip_suffix("[]") {
                if let Some(Value::Array(items)) = value.get_mut(name) {
                    for item in items {
                        visit_mut(item, rest, f);
                    }
                }
            } else if let Some(inner) = value.get_mut(*segment) {
                visit_mut(inner, rest, f);
            }
        }
    }
}

/// Removes `null` members from objects, recursively.
pub(crate) fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}
