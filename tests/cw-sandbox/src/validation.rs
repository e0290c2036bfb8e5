//! Validation of write bodies, as the real API does it. Owns turning a POST/PUT body (or a patched record) into the
//! record to store, or a 400 `InvalidObject` body listing every problem: fields the schema does not declare are
//! dropped and `null` means absent; wrong JSON types and bad enum values (`InvalidField`), unparseable dates
//! (`InvalidField`; good ones are normalised to `YYYY-MM-DDTHH:MM:SSZ`), over-long strings (`MaxLengthField`),
//! references to records that do not exist (`NotFound`, field `status/id`; a reference may also name its target by
//! `identifier` or `name`), missing required fields (`MissingRequiredField`), and the resource rules: a company needs
//! an address field, its `types` change only on POST, identifiers of companies and catalog items are unique, a
//! catalog item's subcategory belongs to its category, contact communication items need a type and a value, custom
//! fields must be defined for the screen, an order's `productIds` must exist, a callback's `url` is an absolute
//! http(s) URL, its `level` a known one and a `recid` callback names its record in `objectId`. Also owns the defaults
//! a create fills in (a callback's `memberId` is the API member, its `inactiveFlag` false).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::callbacks;
use crate::clock;
use crate::error::{ApiError, FieldError};
use crate::resources::{self, Resource};
use crate::schema::{self, FieldType};
use crate::seed;
use crate::store::{self, Store};

/// A validated body: the record to store plus the parts that live in other tables.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub record: Map<String, Value>,
    /// Company type ids to associate (creates only).
    pub types: Option<Vec<i64>>,
    /// Contact communication items to keep (replaces the contact's set), normalised.
    pub communications: Option<Vec<Value>>,
}

/// The record a body updates.
pub(crate) struct Existing {
    pub id: i64,
}

const ADDRESS_FIELDS: [&str; 6] = [
    "addressLine1",
    "addressLine2",
    "city",
    "state",
    "zip",
    "country",
];

/// Validates `body` for `res`. `parent_id` is the parent of a sub-resource record.
pub(crate) fn prepare(
    store: &Store,
    res: &'static Resource,
    body: Value,
    existing: Option<Existing>,
    parent_id: Option<i64>,
) -> Result<Prepared, ApiError> {
    let Value::Object(mut obj) = body else {
        return Err(ApiError::invalid_object(
            res.object,
            vec![FieldError::new(
                "InvalidObject",
                "The request body must be a JSON object",
                res.object,
                "",
            )],
        ));
    };
    let model = schema::model(res.schema);
    let mut errors = Vec::new();
    let err = |errors: &mut Vec<FieldError>, code: &str, field: &str, msg: String| {
        errors.push(FieldError::new(code, msg, res.object, field));
    };

    obj.remove("id");
    obj.remove("_info");
    obj.retain(|k, v| !v.is_null() && model.has(k));
    if let (Some(parent), Some(pid)) = (res.parent, parent_id) {
        let link = if parent.is_ref {
            json!({ "id": pid })
        } else {
            json!(pid)
        };
        obj.insert(parent.field.to_string(), link);
    }

    // JSON types, enums, dates, lengths.
    let fields: Vec<String> = obj.keys().cloned().collect();
    for field in fields {
        let ty = &model.fields[&field];
        let value = obj.get_mut(&field).expect("present");
        if let Err(msg) = check_type(ty, value) {
            let code = if msg.starts_with("The field") {
                "MaxLengthField"
            } else {
                "InvalidField"
            };
            err(&mut errors, code, &field, msg.replace("{field}", &field));
            if code == "InvalidField" {
                obj.remove(&field);
            }
        }
    }

    // References.
    let mut doc = Value::Object(obj);
    for rf in res.refs {
        let target = resources::by_name(rf.target).expect("reference target");
        let field = format!("{}/id", rf.path.replace("[]", ""));
        let segments: Vec<&str> = rf.path.split('/').collect();
        store::visit_mut(&mut doc, &segments, &mut |slot| {
            let Value::Object(reference) = slot else {
                if !slot.is_null() {
                    err(
                        &mut errors,
                        "InvalidField",
                        &field,
                        format!("{field} must be a reference like {{\"id\": 1}}"),
                    );
                    *slot = Value::Null;
                }
                return;
            };
            // Resolved references become `{"id": n}`; empty ones are absent; bad ones stay as sent (and fail).
            if let Some(id) = reference.get("id").filter(|v| !v.is_null()) {
                match id.as_i64() {
                    Some(id) if store.exists(target.name, id) => *slot = json!({ "id": id }),
                    Some(id) => err(
                        &mut errors,
                        "NotFound",
                        &field,
                        format!("{} {id} not found", label(target)),
                    ),
                    None => err(
                        &mut errors,
                        "InvalidField",
                        &field,
                        format!("{field} must be an integer"),
                    ),
                }
            } else if let Some((key, wanted)) = ["identifier", "name"]
                .into_iter()
                .find_map(|k| Some((k, reference.get(k)?.as_str()?.to_string())))
            {
                match store.find_by_key(target.name, key, &wanted) {
                    Some(id) => *slot = json!({ "id": id }),
                    None => {
                        let f = field.replace("/id", &format!("/{key}"));
                        err(
                            &mut errors,
                            "NotFound",
                            &f,
                            format!("{} '{wanted}' not found", label(target)),
                        );
                    }
                }
            } else {
                *slot = Value::Null;
            }
        });
    }
    store::strip_nulls(&mut doc);
    let Value::Object(mut obj) = doc else {
        unreachable!("still an object")
    };

    // Required fields.
    for field in model
        .required
        .iter()
        .map(String::as_str)
        .chain(res.extra_required.iter().copied())
    {
        let missing = match obj.get(field) {
            None => true,
            Some(Value::String(s)) => s.trim().is_empty(),
            Some(_) => false,
        };
        let already = errors
            .iter()
            .any(|e| e.field == field || e.field.starts_with(&format!("{field}/")));
        if missing && !already {
            err(
                &mut errors,
                "MissingRequiredField",
                field,
                format!("The {field} field is required."),
            );
        }
    }

    // Unique fields.
    for field in res.unique {
        if let Some(wanted) = obj.get(*field).and_then(Value::as_str) {
            let clash = store
                .holders(res.name, field, wanted)
                .find(|id| Some(*id) != existing.as_ref().map(|e| e.id));
            if let Some(id) = clash {
                err(
                    &mut errors,
                    "InvalidField",
                    field,
                    format!(
                        "The {field} '{wanted}' is already in use by {} {id}.",
                        label(res)
                    ),
                );
            }
        }
    }

    // Resource rules.
    let mut types = None;
    let mut communications = None;
    match res.name {
        resources::COMPANIES => {
            if !ADDRESS_FIELDS.iter().any(|f| obj.contains_key(*f)) {
                err(
                    &mut errors,
                    "MissingRequiredField",
                    "addressLine1",
                    "At least one address field is required -- addressLine1, addressLine2, city, state, zip and/or country."
                        .to_string(),
                );
            }
            let given: Option<Vec<i64>> = obj.remove("types").and_then(|t| {
                t.as_array()
                    .map(|a| a.iter().filter_map(|r| r["id"].as_i64()).collect())
            });
            match (&existing, given) {
                (None, given) => types = given,
                (Some(e), Some(given)) => {
                    let current: BTreeSet<i64> =
                        company_type_ids(store, e.id).into_iter().collect();
                    if given.into_iter().collect::<BTreeSet<_>>() != current {
                        err(
                            &mut errors,
                            "InvalidField",
                            "types",
                            format!(
                                "A company's types can only be set when it is created (POST). To change them use \
                                 company/companies/{}/typeAssociations.",
                                e.id
                            ),
                        );
                    }
                }
                (Some(_), None) => {}
            }
        }
        resources::CATALOG => {
            let sub_category = obj
                .get("subcategory")
                .and_then(|s| s["id"].as_i64())
                .and_then(|id| store.get(resources::SUBCATEGORIES, id))
                .and_then(|s| s["category"]["id"].as_i64());
            match (
                obj.get("category").and_then(|c| c["id"].as_i64()),
                sub_category,
            ) {
                (Some(cat), Some(sub_cat)) if cat != sub_cat => err(
                    &mut errors,
                    "InvalidField",
                    "subcategory/id",
                    format!(
                        "Subcategory {} does not belong to category {cat}",
                        ref_id(&obj, "subcategory").unwrap_or_default()
                    ),
                ),
                (None, Some(sub_cat)) => {
                    obj.insert("category".into(), json!({ "id": sub_cat }));
                }
                _ => {}
            }
        }
        resources::CONTACTS => {
            if let Some(items) = obj.remove("communicationItems") {
                let owned: BTreeSet<i64> = match &existing {
                    Some(e) => {
                        let comms =
                            resources::by_name(resources::COMMUNICATIONS).expect("resource");
                        store.child_ids(comms, e.id).into_iter().collect()
                    }
                    None => BTreeSet::new(),
                };
                let mut kept = Vec::new();
                for item in items.as_array().into_iter().flatten() {
                    let mut item = item.clone();
                    match item.get("id").and_then(Value::as_i64) {
                        Some(id) if !owned.contains(&id) && existing.is_some() => err(
                            &mut errors,
                            "NotFound",
                            "communicationItems/id",
                            format!("Communication item {id} does not belong to this contact"),
                        ),
                        Some(_) if existing.is_none() => {
                            if let Some(m) = item.as_object_mut() {
                                m.remove("id");
                            }
                        }
                        _ => {}
                    }
                    kept.push(normalise_communication(
                        &mut errors,
                        res.object,
                        "communicationItems/",
                        item,
                    ));
                }
                communications = Some(kept);
            }
        }
        resources::COMMUNICATIONS => {
            let item = Value::Object(std::mem::take(&mut obj));
            let Value::Object(normalised) =
                normalise_communication(&mut errors, res.object, "", item)
            else {
                unreachable!("object in, object out")
            };
            obj = normalised;
        }
        resources::TYPE_ASSOCIATIONS => {
            if let (Some(type_id), Some(company_id)) = (ref_id(&obj, "type"), parent_id) {
                let assoc = resources::by_name(resources::TYPE_ASSOCIATIONS).expect("resource");
                let duplicate = store.child_ids(assoc, company_id).into_iter().any(|a| {
                    Some(a) != existing.as_ref().map(|e| e.id)
                        && store
                            .get(assoc.name, a)
                            .and_then(|r| r["type"]["id"].as_i64())
                            == Some(type_id)
                });
                if duplicate {
                    err(
                        &mut errors,
                        "InvalidField",
                        "type/id",
                        format!("Company {company_id} already has company type {type_id}"),
                    );
                }
            }
        }
        resources::ORDERS => {
            for id in obj
                .get("productIds")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(id) = id.as_i64()
                    && !store.exists(resources::PRODUCTS, id)
                {
                    err(
                        &mut errors,
                        "NotFound",
                        "productIds",
                        format!("Product item {id} not found"),
                    );
                }
            }
        }
        resources::CALLBACKS => {
            let text = |f: &str| {
                obj.get(f)
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
            };
            if let Some(url) = text("url")
                && !callbacks::is_absolute_http_url(url)
            {
                err(
                    &mut errors,
                    "InvalidField",
                    "url",
                    format!("url must be an absolute http:// or https:// URL, not '{url}'"),
                );
            }
            if let Some(level) = text("level") {
                if !callbacks::LEVELS
                    .iter()
                    .any(|l| l.eq_ignore_ascii_case(level))
                {
                    err(
                        &mut errors,
                        "InvalidField",
                        "level",
                        format!(
                            "level must be one of {}, not '{level}'",
                            callbacks::LEVELS.join(", ")
                        ),
                    );
                } else if level.eq_ignore_ascii_case("recid")
                    && obj
                        .get("objectId")
                        .and_then(Value::as_i64)
                        .is_some_and(|id| id <= 0)
                {
                    err(
                        &mut errors,
                        "InvalidField",
                        "objectId",
                        "A recid callback needs the id of its record in objectId".into(),
                    );
                }
            }
        }
        _ => {}
    }
    if let Some(custom) = obj.remove("customFields") {
        let pod = seed::custom_field_pod(res.name);
        let mut kept = Vec::new();
        for cf in custom.as_array().into_iter().flatten() {
            let Some(id) = cf.get("id").and_then(Value::as_i64) else {
                err(
                    &mut errors,
                    "MissingRequiredField",
                    "customFields/id",
                    "The customFields/id field is required.".into(),
                );
                continue;
            };
            let definition = store
                .get(resources::USER_DEFINED_FIELDS, id)
                .filter(|udf| pod.is_some() && udf["podId"].as_i64() == pod);
            let Some(definition) = definition else {
                err(
                    &mut errors,
                    "NotFound",
                    "customFields/id",
                    format!("Custom field {id} is not defined for {}", res.object),
                );
                continue;
            };
            let value = cf.get("value").cloned().unwrap_or(Value::Null);
            if value.is_null() {
                continue;
            }
            let kind = definition["fieldTypeIdentifier"].as_str().unwrap_or("Text");
            match custom_value(kind, value) {
                Ok(value) => kept.push(json!({ "id": id, "value": value })),
                Err(message) => err(
                    &mut errors,
                    "InvalidField",
                    "customFields/value",
                    format!("Custom field {id} ({kind}): {message}"),
                ),
            }
        }
        if pod.is_some() {
            obj.insert("customFields".into(), Value::Array(kept));
        }
    }

    if errors.is_empty() {
        Ok(Prepared {
            record: obj,
            types,
            communications,
        })
    } else {
        Err(ApiError::invalid_object(res.object, errors))
    }
}

/// A custom field's value in the type of its field: numbers for Number, Currency and Percent (numeric text is
/// accepted), true/false for Checkbox, a date-time for Date, text otherwise.
fn custom_value(kind: &str, value: Value) -> Result<Value, String> {
    match kind {
        "Number" | "Currency" | "Percent" => match &value {
            Value::Number(_) => Ok(value),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(|n| json!(n))
                .ok_or_else(|| format!("'{s}' is not a number")),
            other => Err(format!("{other} is not a number")),
        },
        "Checkbox" => match &value {
            Value::Bool(_) => Ok(value),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(json!(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(json!(false)),
            other => Err(format!("{other} is not true or false")),
        },
        "Date" => {
            let text = value.as_str().unwrap_or_default();
            clock::parse_utc(text)
                .map(|t| json!(clock::format_utc(t)))
                .ok_or_else(|| format!("{value} is not a date like 2026-01-31T00:00:00Z"))
        }
        _ => match value {
            Value::String(_) => Ok(value),
            Value::Number(n) => Ok(json!(n.to_string())),
            Value::Bool(b) => Ok(json!(b.to_string())),
            other => Err(format!("{other} is not text")),
        },
    }
}

/// Checks one value against its declared type, normalising dates. `Err` = message (`{field}` placeholder).
fn check_type(ty: &FieldType, value: &mut Value) -> Result<(), String> {
    match ty {
        FieldType::String {
            date_time,
            enum_values,
            max_len,
        } => {
            let Some(s) = value.as_str() else {
                return Err("{field} must be a string".into());
            };
            if *date_time {
                let t = clock::parse_utc(s).ok_or_else(|| {
                    format!("{{field}} must be a date-time like 2026-01-31T00:00:00Z, not '{s}'")
                })?;
                *value = json!(clock::format_utc(t));
                return Ok(());
            }
            if let Some(allowed) = enum_values
                && !allowed.iter().any(|a| a == s)
            {
                return Err(format!(
                    "{{field}} must be one of {}, not '{s}'",
                    allowed.join(", ")
                ));
            }
            if let Some(max) = max_len
                && s.chars().count() > *max
            {
                return Err(format!(
                    "The field {{field}} must be a string with a maximum length of {max}."
                ));
            }
            Ok(())
        }
        FieldType::Integer if value.is_i64() || value.is_u64() => Ok(()),
        FieldType::Integer => Err("{field} must be an integer".into()),
        FieldType::Number if value.is_number() => Ok(()),
        FieldType::Number => Err("{field} must be a number".into()),
        FieldType::Boolean if value.is_boolean() => Ok(()),
        FieldType::Boolean => Err("{field} must be true or false".into()),
        FieldType::Object if value.is_object() => Ok(()),
        FieldType::Object => Err("{field} must be an object".into()),
        FieldType::Array(inner) => {
            let items = value.as_array_mut().ok_or("{field} must be an array")?;
            for item in items {
                match **inner {
                    FieldType::Integer | FieldType::Number | FieldType::Boolean => {
                        check_type(inner, item)?
                    }
                    FieldType::String { .. } => check_type(inner, item)?,
                    FieldType::Object if !item.is_object() => {
                        return Err("{field} must be an array of objects".into());
                    }
                    _ => {}
                }
            }
            Ok(())
        }
        FieldType::Any => Ok(()),
    }
}

/// A communication item with a checked type and value, `communicationType` derived from its type.
fn normalise_communication(
    errors: &mut Vec<FieldError>,
    object: &str,
    prefix: &str,
    item: Value,
) -> Value {
    let mut out = Map::new();
    let Value::Object(item) = item else {
        errors.push(FieldError::new(
            "InvalidField",
            "communication items must be objects",
            object,
            prefix.trim_end_matches('/'),
        ));
        return Value::Object(out);
    };
    for key in [
        "id",
        "contactId",
        "type",
        "value",
        "extension",
        "defaultFlag",
        "domain",
    ] {
        if let Some(v) = item.get(key).filter(|v| !v.is_null()) {
            out.insert(key.to_string(), v.clone());
        }
    }
    if !out.contains_key("type") {
        errors.push(FieldError::new(
            "MissingRequiredField",
            format!("The {prefix}type field is required."),
            object,
            &format!("{prefix}type"),
        ));
    }
    match out
        .get("value")
        .map(|v| v.as_str().map(|s| s.chars().count()))
    {
        None | Some(Some(0)) => errors.push(FieldError::new(
            "MissingRequiredField",
            format!("The {prefix}value field is required."),
            object,
            &format!("{prefix}value"),
        )),
        Some(None) => errors.push(FieldError::new(
            "InvalidField",
            format!("{prefix}value must be a string"),
            object,
            &format!("{prefix}value"),
        )),
        Some(Some(n)) if n > 250 => errors.push(FieldError::new(
            "MaxLengthField",
            format!("The field {prefix}value must be a string with a maximum length of 250."),
            object,
            &format!("{prefix}value"),
        )),
        _ => {}
    }
    if out
        .get("extension")
        .and_then(Value::as_str)
        .is_some_and(|e| e.chars().count() > 15)
    {
        errors.push(FieldError::new(
            "MaxLengthField",
            format!("The field {prefix}extension must be a string with a maximum length of 15."),
            object,
            &format!("{prefix}extension"),
        ));
    }
    Value::Object(out)
}

/// The id of reference `field` of a record under construction.
fn ref_id(map: &Map<String, Value>, field: &str) -> Option<i64> {
    map.get(field)?.get("id")?.as_i64()
}

/// Type ids currently associated with a company, in association order.
pub(crate) fn company_type_ids(store: &Store, company_id: i64) -> Vec<i64> {
    let assoc = resources::by_name(resources::TYPE_ASSOCIATIONS).expect("resource");
    store
        .child_ids(assoc, company_id)
        .into_iter()
        .filter_map(|a| store.get(assoc.name, a)?["type"]["id"].as_i64())
        .collect()
}

/// "Company", "CatalogItem", … for messages.
pub(crate) fn label(res: &Resource) -> String {
    let mut chars = res.object.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The id of the record of a setup table flagged `defaultFlag`.
fn default_id(store: &Store, table: &str) -> Option<i64> {
    store
        .table(table)
        .records
        .iter()
        .find(|(_, r)| r["defaultFlag"] == json!(true))
        .map(|(id, _)| *id)
}

/// Fills what ConnectWise fills on create. `id` is the new record's id, `now` Unix seconds.
pub(crate) fn apply_create_defaults(
    store: &Store,
    res: &Resource,
    p: &mut Prepared,
    id: i64,
    now: i64,
    user: &str,
) {
    let rec = &mut p.record;
    let today = clock::format_utc(clock::start_of_day(now));
    let default_ref = |rec: &mut Map<String, Value>, field: &str, table: &str| {
        if !rec.contains_key(field)
            && let Some(d) = default_id(store, table)
        {
            rec.insert(field.into(), json!({ "id": d }));
        }
    };
    match res.name {
        resources::COMPANIES => {
            default_ref(rec, "status", "company/companies/statuses");
            if p.types.as_ref().is_none_or(Vec::is_empty) {
                p.types = default_id(store, resources::COMPANY_TYPES).map(|t| vec![t]);
            }
        }
        resources::CATALOG => {
            rec.entry("productClass").or_insert(json!("NonInventory"));
            rec.entry("inactiveFlag").or_insert(json!(false));
        }
        resources::INVOICES => {
            default_ref(rec, "status", "finance/billingStatuses");
            rec.entry("invoiceNumber").or_insert(json!(id.to_string()));
            rec.entry("applyToType").or_insert(json!("All"));
            rec.entry("date").or_insert(json!(today));
            if !rec.contains_key("billingTerms") {
                let from_company = ref_id(rec, "company")
                    .and_then(|c| store.get(resources::COMPANIES, c))
                    .and_then(|c| c["billingTerms"]["id"].as_i64());
                if let Some(t) =
                    from_company.or_else(|| default_id(store, resources::BILLING_TERMS))
                {
                    rec.insert("billingTerms".into(), json!({ "id": t }));
                }
            }
            if !rec.contains_key("dueDate") {
                let days = ref_id(rec, "billingTerms")
                    .and_then(|t| store.get(resources::BILLING_TERMS, t))
                    .and_then(|t| t["dueDays"].as_i64())
                    .unwrap_or(0);
                if let Some(date) = rec
                    .get("date")
                    .and_then(Value::as_str)
                    .and_then(clock::parse_utc)
                {
                    rec.insert(
                        "dueDate".into(),
                        json!(clock::format_utc(date + days * 86_400)),
                    );
                }
            }
        }
        resources::ORDERS => {
            rec.entry("orderDate").or_insert(json!(today));
        }
        resources::AGREEMENTS => {
            rec.entry("agreementStatus").or_insert(json!("Active"));
            rec.entry("cancelledFlag").or_insert(json!(false));
        }
        resources::PRODUCTS => {
            let catalog = ref_id(rec, "catalogItem").and_then(|c| store.get(resources::CATALOG, c));
            if let Some(item) = catalog {
                for (from, to) in [
                    ("description", "description"),
                    ("customerDescription", "customerDescription"),
                    ("price", "price"),
                    ("cost", "cost"),
                ] {
                    if !rec.contains_key(to)
                        && let Some(v) = item.get(from).filter(|v| !v.is_null())
                    {
                        rec.insert(to.into(), v.clone());
                    }
                }
            }
            rec.entry("quantity").or_insert(json!(1.0));
        }
        resources::PAYMENTS => {
            rec.entry("appliedBy").or_insert(json!(user));
        }
        resources::CALLBACKS => {
            // The member owning the API keys registers it, whatever the body says.
            rec.remove("memberId");
            if let Some(member) = store.find_by_key("system/members", "identifier", user) {
                rec.insert("memberId".into(), json!(member));
            }
            rec.entry("inactiveFlag").or_insert(json!(false));
            rec.entry("isSoapCallbackFlag").or_insert(json!(false));
            rec.entry("isSelfSuppressedFlag").or_insert(json!(false));
        }
        _ => {}
    }
}
