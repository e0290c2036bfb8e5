//! The records and how reads present them. Owns the in-memory tables (one per resource, keyed by generic name,
//! records by id), id allocation, `_info` stamping, parent/child lookups for sub-resources, and rendering: a stored
//! record keeps references as bare `{"id": n}` and leaves out what lives elsewhere; a read shows what ConnectWise
//! shows — references filled with `name`/`identifier`/… of the record they point at plus an `_info` link, a
//! company's `types` from its type associations, a contact's `communicationItems` from its communications, an
//! order's `productIds` including the product items attached to it, a record's `customFields` (every custom field
//! defined for its screen, with the values set), an addition's `agreementStatus` (its agreement's), and no `null` members (ConnectWise omits them).
//!
//! Each table keeps indexes so that no single request scans a whole table to find related records (tables reach
//! tens of thousands of records in benchmarks): records by parent (sub-resources) and by sales order (product
//! items), and records by the value of each unique field. [`Store::put`] and [`Store::remove`] keep them in step,
//! which is why records change only through those (or [`Store::get_mut`], for fields no index reads).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use serde_json::{Map, Value, json};

use crate::resources::{self, Resource};
use crate::seed;

#[derive(Debug)]
pub(crate) struct Table {
    pub records: BTreeMap<i64, Value>,
    pub next_id: i64,
    indexes: Indexes,
}

/// A field through which records point at one record elsewhere, as a plain id (`agreementId`) or a reference
/// (`{"id": n}`).
#[derive(Clone, Copy, Debug)]
struct Link {
    field: &'static str,
    is_ref: bool,
}

impl Link {
    fn target(self, rec: &Value) -> Option<i64> {
        if self.is_ref {
            rec[self.field]["id"].as_i64()
        } else {
            rec[self.field].as_i64()
        }
    }
}

/// Lookups that would otherwise scan a table. Each maps a key to the ids of the records having it.
#[derive(Debug)]
struct Indexes {
    /// Per link (see [`links_of`]): linked id → records.
    links: Vec<(Link, HashMap<i64, BTreeSet<i64>>)>,
    /// Per unique field: ASCII-lowercased value → records (the case-insensitivity of `eq_ignore_ascii_case`, which
    /// the uniqueness rule and reference lookups use). Several only when the test handle stored duplicates.
    unique: Vec<(&'static str, HashMap<String, BTreeSet<i64>>)>,
}

impl Indexes {
    fn new(res: &Resource) -> Indexes {
        Indexes {
            links: links_of(res)
                .into_iter()
                .map(|l| (l, HashMap::new()))
                .collect(),
            unique: res.unique.iter().map(|f| (*f, HashMap::new())).collect(),
        }
    }

    fn add(&mut self, id: i64, rec: &Value) {
        for (link, map) in &mut self.links {
            if let Some(target) = link.target(rec) {
                map.entry(target).or_default().insert(id);
            }
        }
        for (field, map) in &mut self.unique {
            if let Some(value) = rec[*field].as_str() {
                map.entry(value.to_ascii_lowercase())
                    .or_default()
                    .insert(id);
            }
        }
    }

    fn drop(&mut self, id: i64, rec: &Value) {
        for (link, map) in &mut self.links {
            if let Some(target) = link.target(rec) {
                forget(map, &target, id);
            }
        }
        for (field, map) in &mut self.unique {
            if let Some(value) = rec[*field].as_str() {
                forget(map, &value.to_ascii_lowercase(), id);
            }
        }
    }

    /// Records whose `field` link points at `target`.
    fn linked(&self, field: &str, target: i64) -> Option<&BTreeSet<i64>> {
        let (_, map) = self.links.iter().find(|(l, _)| l.field == field)?;
        map.get(&target)
    }
}

/// Removes `id` from the set under `key`, and the set once empty (deleted parents must not leave keys behind).
fn forget<K: std::hash::Hash + Eq>(map: &mut HashMap<K, BTreeSet<i64>>, key: &K, id: i64) {
    if let Some(ids) = map.get_mut(key) {
        ids.remove(&id);
        if ids.is_empty() {
            map.remove(key);
        }
    }
}

/// The links indexed for `res`'s records: its parent field (for [`Store::child_ids`]), and a product item's
/// `salesOrder` (an order's `productIds` shows the product items attached to it).
fn links_of(res: &Resource) -> Vec<Link> {
    let mut links: Vec<Link> = res
        .parent
        .map(|p| Link {
            field: p.field,
            is_ref: p.is_ref,
        })
        .into_iter()
        .collect();
    if res.name == resources::PRODUCTS {
        links.push(SALES_ORDER_LINK);
    }
    links
}

const SALES_ORDER_LINK: Link = Link {
    field: "salesOrder",
    is_ref: true,
};

#[derive(Debug)]
pub(crate) struct Store {
    tables: HashMap<&'static str, Table>,
}

impl Store {
    /// A store holding the seeded setup tables and empty entity tables.
    pub(crate) fn new() -> Store {
        let tables: HashMap<&'static str, Table> = resources::RESOURCES
            .iter()
            .map(|r| {
                (
                    r.name,
                    Table {
                        records: BTreeMap::new(),
                        next_id: r.first_id,
                        indexes: Indexes::new(r),
                    },
                )
            })
            .collect();
        let mut store = Store { tables };
        for (name, records) in seed::tables() {
            for mut rec in records {
                let id = rec["id"].as_i64().expect("seed record has an id");
                rec["_info"] = json!({
                    "lastUpdated": seed::SEED_TIME, "updatedBy": seed::SEED_USER,
                    "dateEntered": seed::SEED_TIME, "enteredBy": seed::SEED_USER,
                });
                store.put(name, id, rec);
            }
        }
        store
    }

    pub(crate) fn table(&self, name: &str) -> &Table {
        self.tables
            .get(name)
            .unwrap_or_else(|| panic!("no table {name}"))
    }

    fn table_mut(&mut self, name: &str) -> &mut Table {
        self.tables
            .get_mut(name)
            .unwrap_or_else(|| panic!("no table {name}"))
    }

    pub(crate) fn get(&self, name: &str, id: i64) -> Option<&Value> {
        self.table(name).records.get(&id)
    }

    /// A record to edit in place. Only for fields no index reads (not a parent field, `salesOrder` or a unique
    /// field): changing those goes through [`Store::put`].
    pub(crate) fn get_mut(&mut self, name: &str, id: i64) -> Option<&mut Value> {
        self.table_mut(name).records.get_mut(&id)
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

    /// Stores a record under `id`, keeping the next id above it and the indexes in step (a replaced record's
    /// entries go, so a record that moves to another parent leaves the old one).
    pub(crate) fn put(&mut self, name: &str, id: i64, record: Value) {
        let table = self.table_mut(name);
        table.next_id = table.next_id.max(id + 1);
        if let Some(old) = table.records.remove(&id) {
            table.indexes.drop(id, &old);
        }
        table.indexes.add(id, &record);
        table.records.insert(id, record);
    }

    pub(crate) fn remove(&mut self, name: &str, id: i64) -> Option<Value> {
        let table = self.table_mut(name);
        let old = table.records.remove(&id)?;
        table.indexes.drop(id, &old);
        Some(old)
    }

    /// Ids of the records of sub-resource `res` whose parent is `parent_id`, in id order.
    pub(crate) fn child_ids(&self, res: &Resource, parent_id: i64) -> Vec<i64> {
        let Some(parent) = res.parent else {
            return Vec::new();
        };
        self.table(res.name)
            .indexes
            .linked(parent.field, parent_id)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The records a list of `res` covers — all of them, or one parent's for a sub-resource (`parent_id`) — from
    /// id `after` on, in id order.
    pub(crate) fn scope(
        &self,
        res: &Resource,
        parent_id: Option<i64>,
        after: Bound<i64>,
    ) -> Box<dyn Iterator<Item = (i64, &Value)> + '_> {
        let table = self.table(res.name);
        let range = (after, Bound::Unbounded);
        match (res.parent, parent_id) {
            (_, None) => Box::new(table.records.range(range).map(|(id, rec)| (*id, rec))),
            (Some(parent), Some(pid)) => Box::new(
                table
                    .indexes
                    .linked(parent.field, pid)
                    .into_iter()
                    .flat_map(move |ids| ids.range(range))
                    .filter_map(|id| Some((*id, table.records.get(id)?))),
            ),
            (None, Some(_)) => Box::new(std::iter::empty()),
        }
    }

    /// Ids of the records of `name` whose unique field `field` is `wanted`, ignoring ASCII case, in id order.
    pub(crate) fn holders<'a>(
        &'a self,
        name: &str,
        field: &str,
        wanted: &str,
    ) -> impl Iterator<Item = i64> + use<'a> {
        let (_, map) = self
            .table(name)
            .indexes
            .unique
            .iter()
            .find(|(f, _)| *f == field)
            .unwrap_or_else(|| panic!("{name}/{field} is not a unique field"));
        map.get(&wanted.to_ascii_lowercase())
            .into_iter()
            .flatten()
            .copied()
    }

    /// Finds a record of `target` by `identifier` or `name` (case-insensitive), for references given without id.
    /// The first match in id order wins.
    pub(crate) fn find_by_key(&self, target: &str, key: &str, wanted: &str) -> Option<i64> {
        let res = resources::by_name(target)?;
        if res.unique.contains(&key) {
            // A reference reads a unique field as stored (`ref_key_value`'s default), so the index answers.
            return self.holders(target, key, wanted).next();
        }
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
                if let Some(attached) = self
                    .table(resources::PRODUCTS)
                    .indexes
                    .linked(SALES_ORDER_LINK.field, id)
                {
                    ids.extend(attached);
                }
                ids.sort_unstable();
                ids.dedup();
                out["productIds"] = json!(ids);
            }
            resources::ADDITIONS => {
                // An addition shows its agreement's status (read-only).
                let status = rec["agreementId"]
                    .as_i64()
                    .and_then(|a| self.get(resources::AGREEMENTS, a))
                    .map(|a| a["agreementStatus"].clone())
                    .unwrap_or(Value::Null);
                out["agreementStatus"] = status;
            }
            _ => {}
        }
        if let Some(pod) = seed::custom_field_pod(res.name) {
            out["customFields"] = Value::Array(self.custom_fields(pod, &rec["customFields"]));
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

/// The top-level fields of `res`'s records that [`Store::render`] fills in or replaces: the resource's own extras
/// (a company's `types`, …) and its references. Keep in step with `render`.
pub(crate) fn rendered_fields(res: &Resource) -> impl Iterator<Item = &'static str> + use<> {
    let extras: &[&'static str] = match res.name {
        resources::COMPANIES => &["types"],
        resources::CONTACTS => &["communicationItems"],
        resources::ORDERS => &["productIds"],
        resources::ADDITIONS => &["agreementStatus"],
        _ => &[],
    };
    let custom: &[&'static str] = if seed::custom_field_pod(res.name).is_some() {
        &["customFields"]
    } else {
        &[]
    };
    let refs = res.refs.iter().map(|rf| {
        let first = rf.path.split('/').next().unwrap_or_default();
        first.strip_suffix("[]").unwrap_or(first)
    });
    extras.iter().chain(custom).copied().chain(refs)
}

/// Whether field paths (of conditions or `orderBy`) read from a stored record of `res` find what they would find in
/// its rendering, so that lists need not render a record to test or order it. They do when none starts at a field
/// `render` fills in: the rest of a rendering is the stored record with its `null` members stripped, and paths
/// treat a `null` member as absent — except that a top-level `lastUpdated: null` blocks the `lastUpdated` →
/// `_info/lastUpdated` alias, so a stored record with a top-level `null` still needs rendering ([`has_top_null`]).
pub(crate) fn paths_read_stored<'p>(
    res: &Resource,
    mut paths: impl Iterator<Item = &'p [String]>,
) -> bool {
    paths.all(|path| {
        let first = path.first().map(String::as_str).unwrap_or_default();
        !rendered_fields(res).any(|f| f == first)
    })
}

/// Whether a stored record has a top-level `null` member (see [`paths_read_stored`]).
pub(crate) fn has_top_null(rec: &Value) -> bool {
    rec.as_object()
        .is_some_and(|m| m.values().any(Value::is_null))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{
        ADDITIONS, AGREEMENTS, CATALOG, COMMUNICATIONS, COMPANIES, CONTACTS, INVOICES, ORDERS,
        PAYMENTS, PRODUCTS, RESOURCES, TYPE_ASSOCIATIONS,
    };
    use crate::write::{self, Stamp};

    const STAMP: Stamp<'static> = Stamp {
        now: 1_767_225_600,
        user: "tester",
    };

    fn res(name: &str) -> &'static Resource {
        resources::by_name(name).expect("resource")
    }

    fn insert(store: &mut Store, name: &str, record: Value) -> i64 {
        write::direct_insert(store, res(name), record, STAMP)
    }

    /// One record of every entity, pointing at each other; a communication item keeps a `null` member.
    fn populated() -> Store {
        let mut s = Store::new();
        let acme = insert(
            &mut s,
            COMPANIES,
            json!({"identifier": "ACME", "name": "Acme", "status": {"id": 1}, "types": [{"id": 1}, {"id": 3}],
                   "country": {"id": 1}, "currency": {"id": 1}, "city": "Tampa"}),
        );
        insert(
            &mut s,
            COMPANIES,
            json!({"identifier": "SUB", "name": "Sub", "parentCompany": {"id": acme}, "billToCompany": {"id": acme}}),
        );
        let contact = insert(
            &mut s,
            CONTACTS,
            json!({"firstName": "Ada", "company": {"id": acme}, "communicationItems": [
                {"type": {"id": 1}, "value": "ada@example.com", "extension": null},
                {"type": {"id": 2}, "value": "555-0100", "defaultFlag": true},
            ]}),
        );
        s.get_mut(COMPANIES, acme).unwrap()["defaultContact"] = json!({ "id": contact });
        let item = insert(
            &mut s,
            CATALOG,
            json!({"identifier": "WIDGET", "description": "Widget", "subcategory": {"id": 1}, "vendor": {"id": acme}}),
        );
        let order = insert(
            &mut s,
            ORDERS,
            json!({"company": {"id": acme}, "contact": {"id": contact}, "status": {"id": 1}}),
        );
        let invoice = insert(
            &mut s,
            INVOICES,
            json!({"company": {"id": acme}, "invoiceNumber": "INV-1", "type": "Standard", "salesOrder": {"id": order}}),
        );
        insert(
            &mut s,
            PAYMENTS,
            json!({"invoice": {"id": invoice}, "amount": 10.0}),
        );
        let agreement = insert(
            &mut s,
            AGREEMENTS,
            json!({"name": "Support", "type": {"id": 1}, "company": {"id": acme}}),
        );
        insert(
            &mut s,
            ADDITIONS,
            json!({"agreementId": agreement, "product": {"id": item}, "customFields": [{"id": 1, "value": "x"}]}),
        );
        insert(
            &mut s,
            PRODUCTS,
            json!({"catalogItem": {"id": item}, "company": {"id": acme}, "salesOrder": {"id": order},
                   "invoice": {"id": invoice}, "agreement": {"id": agreement}}),
        );
        s
    }

    /// The scan the child index replaces.
    fn scanned_children(s: &Store, res: &Resource, parent_id: i64) -> Vec<i64> {
        s.table(res.name)
            .records
            .iter()
            .filter(|(_, rec)| parent_of(res, rec) == Some(parent_id))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Every index agrees with a scan of its table.
    fn assert_indexes_match(s: &Store) {
        for res in RESOURCES {
            let table = s.table(res.name);
            for (link, map) in &table.indexes.links {
                let mut scanned: HashMap<i64, BTreeSet<i64>> = HashMap::new();
                for (id, rec) in &table.records {
                    if let Some(t) = link.target(rec) {
                        scanned.entry(t).or_default().insert(*id);
                    }
                }
                assert_eq!(map, &scanned, "{} by {}", res.name, link.field);
            }
            for (field, map) in &table.indexes.unique {
                let mut scanned: HashMap<String, BTreeSet<i64>> = HashMap::new();
                for (id, rec) in &table.records {
                    if let Some(v) = rec[*field].as_str() {
                        scanned
                            .entry(v.to_ascii_lowercase())
                            .or_default()
                            .insert(*id);
                    }
                }
                assert_eq!(map, &scanned, "{} by {field}", res.name);
            }
        }
    }

    #[test]
    fn rendering_changes_only_the_rendered_fields() {
        let s = populated();
        for res in RESOURCES {
            for rec in s.table(res.name).records.values() {
                let mut shown = s.render(res, rec, "http://h/api");
                let mut stored = rec.clone();
                strip_nulls(&mut stored);
                for field in rendered_fields(res) {
                    for v in [&mut shown, &mut stored] {
                        v.as_object_mut().unwrap().remove(field);
                    }
                }
                assert_eq!(shown, stored, "{}", res.name);
            }
        }
    }

    #[test]
    fn stored_reads_stay_out_of_rendered_fields() {
        let path = |p: &str| p.split('/').map(String::from).collect::<Vec<_>>();
        let companies = res(COMPANIES);
        for ok in [
            "id",
            "identifier",
            "lastUpdated",
            "_info/lastUpdated",
            "city",
        ] {
            assert!(
                paths_read_stored(companies, [path(ok).as_slice()].into_iter()),
                "{ok}"
            );
        }
        for rendered in ["types/id", "status/name", "parentCompany/identifier"] {
            assert!(
                !paths_read_stored(companies, [path(rendered).as_slice()].into_iter()),
                "{rendered}"
            );
        }
        assert!(!paths_read_stored(
            res(CONTACTS),
            [path("communicationItems/value").as_slice()].into_iter()
        ));
        assert!(has_top_null(&json!({"id": 1, "lastUpdated": null})));
        assert!(!has_top_null(&json!({"id": 1, "x": {"y": null}})));
    }

    #[test]
    fn indexes_follow_writes() {
        let mut s = populated();
        assert_indexes_match(&s);
        let comms = res(COMMUNICATIONS);
        let contact = *s.table(CONTACTS).records.keys().next().unwrap();
        let other = insert(&mut s, CONTACTS, json!({"firstName": "Bob"}));
        let moved = s.child_ids(comms, contact)[0];
        // A record whose parent changes leaves the old parent's children.
        let mut rec = s.get(COMMUNICATIONS, moved).unwrap().clone();
        rec["contactId"] = json!(other);
        s.put(COMMUNICATIONS, moved, rec);
        assert_eq!(s.child_ids(comms, other), [moved]);
        assert_eq!(
            s.child_ids(comms, contact),
            scanned_children(&s, comms, contact)
        );
        assert!(!s.child_ids(comms, contact).contains(&moved));
        assert_indexes_match(&s);
        // An identifier that changes is found under the new value only.
        let acme = s.holders(COMPANIES, "identifier", "acme").next().unwrap();
        let mut rec = s.get(COMPANIES, acme).unwrap().clone();
        rec["identifier"] = json!("Acme2");
        s.put(COMPANIES, acme, rec);
        assert_eq!(s.holders(COMPANIES, "identifier", "ACME").count(), 0);
        assert_eq!(
            s.holders(COMPANIES, "identifier", "aCmE2")
                .collect::<Vec<_>>(),
            [acme]
        );
        // Deletes cascade through the index and leave nothing behind.
        let assoc = res(TYPE_ASSOCIATIONS);
        assert_eq!(s.child_ids(assoc, acme).len(), 2);
        write::delete(&mut s, res(COMPANIES), acme, STAMP).unwrap();
        assert!(s.child_ids(assoc, acme).is_empty());
        assert_indexes_match(&s);
        assert!(
            !s.table(TYPE_ASSOCIATIONS).indexes.links[0]
                .1
                .contains_key(&acme),
            "no empty entry left for the deleted company"
        );
        for order in s.table(ORDERS).records.keys() {
            assert_eq!(
                s.table(PRODUCTS)
                    .indexes
                    .linked("salesOrder", *order)
                    .map(|ids| ids.len()),
                Some(1)
            );
        }
    }

    #[test]
    fn keys_find_the_first_record_in_id_order() {
        let mut s = Store::new();
        let first = insert(
            &mut s,
            COMPANIES,
            json!({"identifier": "dup", "name": "One"}),
        );
        let second = insert(
            &mut s,
            COMPANIES,
            json!({"identifier": "DUP", "name": "Two"}),
        );
        insert(
            &mut s,
            COMPANIES,
            json!({"identifier": "ÄRGER", "name": "Three"}),
        );
        assert_eq!(s.find_by_key(COMPANIES, "identifier", "Dup"), Some(first));
        assert_eq!(
            s.holders(COMPANIES, "identifier", "dUp")
                .collect::<Vec<_>>(),
            [first, second]
        );
        // Only ASCII letters fold, as with `eq_ignore_ascii_case`.
        assert_eq!(s.find_by_key(COMPANIES, "identifier", "ärger"), None);
        assert!(s.find_by_key(COMPANIES, "identifier", "Ärger").is_some());
        assert_eq!(s.find_by_key(COMPANIES, "name", "two"), Some(second));
        // The index answers what `ref_key_value` would: a unique field is read as stored.
        for res in RESOURCES {
            for field in res.unique {
                let rec = json!({"id": 1, *field: "X"});
                assert_eq!(
                    ref_key_value(&s, res, &rec, field),
                    Some(json!("X")),
                    "{}",
                    res.name
                );
            }
        }
    }
}
