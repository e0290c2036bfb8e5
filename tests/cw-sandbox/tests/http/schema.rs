//! Schema conformance: every resource the sandbox serves, read back over HTTP, checked against the reference
//! documents in `reference/` with a small validator of the JSON Schema subset they use (`$ref`, `type`,
//! `properties`, `additionalProperties`, `items`, `enum`, `nullable`, formats `date-time`, `uuid`, `int32`).
//! Resources the 2026.4 OpenAPI document lacks are checked against models-2025.1.json, or, for the few neither
//! describes, against `sandbox-extra-schemas.json`. Every field the reference README lists for an entity must be
//! present on the record created with it.

use std::collections::HashMap;

use cw_sandbox::resources::RESOURCES;
use serde_json::{Value, json};

use crate::client::q;
use crate::fixtures::{self, company_body, start};

/// Resources without a GET path in the OpenAPI document → schema key in the registry.
const FALLBACK: &[(&str, &str)] = &[
    ("finance/currencies", "models:FinanceCurrency"),
    ("procurement/categories", "models:Category"),
    ("procurement/subcategories", "models:SubCategory"),
    ("procurement/types", "models:ProductType"),
    ("procurement/unitOfMeasures", "models:UnitOfMeasure"),
    ("finance/billingTerms", "models:BillingTerm"),
    ("sales/orders/statuses", "models:OrderStatus"),
    ("finance/invoices/payments", "models:InvoicePayment"),
    ("company/countries", "extra:Country"),
    ("company/states", "extra:State"),
    ("company/communicationTypes", "extra:CommunicationType"),
    (
        "company/companies/typeAssociations",
        "extra:CompanyTypeAssociation",
    ),
    (
        "company/contacts/communications",
        "extra:ContactCommunication",
    ),
    ("system/userDefinedFields", "extra:UserDefinedField"),
    ("system/callbacks", "extra:CallbackEntry"),
];

/// The README's entity table: fields that must be present on the record the test creates.
const KEY_FIELDS: &[(&str, &[&str])] = &[
    (
        "company/companies",
        &[
            "identifier",
            "name",
            "status",
            "types",
            "addressLine1",
            "addressLine2",
            "city",
            "state",
            "zip",
            "country",
            "phoneNumber",
            "faxNumber",
            "website",
            "defaultContact",
            "parentCompany",
            "billToCompany",
            "currency",
            "accountNumber",
        ],
    ),
    (
        "company/contacts",
        &[
            "firstName",
            "lastName",
            "company",
            "title",
            "communicationItems",
        ],
    ),
    (
        "procurement/catalog",
        &[
            "identifier",
            "description",
            "customerDescription",
            "subcategory",
            "type",
            "category",
            "unitOfMeasure",
            "price",
            "cost",
            "taxableFlag",
        ],
    ),
    (
        "finance/invoices",
        &[
            "type",
            "company",
            "status",
            "billingTerms",
            "applyToType",
            "applyToId",
            "date",
            "dueDate",
            "currency",
        ],
    ),
    (
        "procurement/products",
        &[
            "catalogItem",
            "quantity",
            "price",
            "cost",
            "description",
            "billableOption",
            "invoice",
            "company",
        ],
    ),
    (
        "sales/orders",
        &[
            "company",
            "status",
            "salesRep",
            "contact",
            "orderDate",
            "dueDate",
            "poNumber",
            "billingTerms",
            "currency",
            "productIds",
        ],
    ),
    (
        "finance/invoices/payments",
        &["type", "amount", "paymentDate"],
    ),
    (
        "finance/agreements/additions",
        &[
            "product",
            "billCustomer",
            "quantity",
            "unitPrice",
            "unitCost",
            "effectiveDate",
            "cancelledDate",
            "invoiceDescription",
            "customFields",
        ],
    ),
    (
        "finance/agreements",
        &["name", "type", "company", "contact"],
    ),
];

fn load(name: &str) -> Value {
    let path = format!("{}/reference/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
        .unwrap()
}

struct Registry {
    openapi: Value,
    schemas: HashMap<String, Value>,
}

impl Registry {
    fn new() -> Registry {
        let openapi = load("openapi-2026.4-get-subset.json");
        let models = load("models-2025.1.json");
        let extra = load("sandbox-extra-schemas.json");
        let mut schemas = HashMap::new();
        for (name, s) in openapi["components"]["schemas"].as_object().unwrap() {
            schemas.insert(format!("#/components/schemas/{name}"), s.clone());
        }
        for (name, s) in extra["components"]["schemas"].as_object().unwrap() {
            schemas.insert(format!("extra:{name}"), s.clone());
        }
        let model_names: Vec<String> = models.as_object().unwrap().keys().cloned().collect();
        for (name, fields) in models.as_object().unwrap() {
            let mut props = serde_json::Map::new();
            for f in fields.as_array().unwrap() {
                let ty = go_schema(f["type"].as_str().unwrap(), &model_names, &openapi);
                props.insert(f["json"].as_str().unwrap().to_string(), ty);
            }
            schemas.insert(
                format!("models:{name}"),
                json!({"type": "object", "properties": props}),
            );
        }
        Registry { openapi, schemas }
    }

    /// (list schema, item schema) of a served resource.
    fn for_resource(&self, name: &str, path: &str) -> (Value, Value) {
        let list = &self.openapi["paths"][format!("/{path}")]["get"]["responses"]["200"]["content"];
        let item =
            &self.openapi["paths"][format!("/{path}/{{id}}")]["get"]["responses"]["200"]["content"];
        let schema_of = |content: &Value| {
            content
                .as_object()
                .and_then(|c| c.values().next())
                .map(|c| c["schema"].clone())
        };
        match (schema_of(list), schema_of(item)) {
            (Some(l), Some(i)) => (l, i),
            _ => {
                let key = FALLBACK
                    .iter()
                    .find(|(r, _)| *r == name)
                    .unwrap_or_else(|| {
                        panic!("{name} is served but has no schema in the reference documents")
                    })
                    .1;
                assert!(self.schemas.contains_key(key), "{key}");
                (
                    json!({"type": "array", "items": {"$ref": key}}),
                    json!({"$ref": key}),
                )
            }
        }
    }

    fn validate(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let target = self
                .schemas
                .get(r)
                .unwrap_or_else(|| panic!("unresolved $ref {r}"));
            return self.validate(target, value, at, errors);
        }
        if value.is_null() {
            if schema.get("nullable") != Some(&json!(true)) && schema.get("type").is_some() {
                errors.push(format!("{at}: null where the schema does not allow it"));
            }
            return;
        }
        match schema.get("type").and_then(Value::as_str) {
            Some("object") => {
                let Some(obj) = value.as_object() else {
                    if schema.get("properties").is_some()
                        || schema.get("additionalProperties").is_some()
                    {
                        errors.push(format!("{at}: expected an object, got {value}"));
                    }
                    // A bare `{"type": "object"}` is Swashbuckle's spelling of CLR `object`: any value.
                    return;
                };
                if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                    for (k, v) in obj {
                        match props.get(k) {
                            Some(p) => self.validate(p, v, &format!("{at}/{k}"), errors),
                            None => errors
                                .push(format!("{at}: field '{k}' is not declared by the schema")),
                        }
                    }
                } else if let Some(additional) = schema.get("additionalProperties") {
                    for (k, v) in obj {
                        self.validate(additional, v, &format!("{at}/{k}"), errors);
                    }
                }
            }
            Some("array") => match value.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.validate(&schema["items"], item, &format!("{at}[{i}]"), errors);
                    }
                }
                None => errors.push(format!("{at}: expected an array, got {value}")),
            },
            Some("string") => match value.as_str() {
                Some(s) => {
                    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
                        && !allowed.iter().any(|a| a == value)
                    {
                        errors.push(format!("{at}: '{s}' is not one of {allowed:?}"));
                    }
                    match schema.get("format").and_then(Value::as_str) {
                        Some("date-time") if !is_cw_date_time(s) => {
                            errors.push(format!("{at}: '{s}' is not YYYY-MM-DDTHH:MM:SSZ"));
                        }
                        Some("uuid") if s.len() != 36 || s.matches('-').count() != 4 => {
                            errors.push(format!("{at}: '{s}' is not a uuid"));
                        }
                        _ => {}
                    }
                }
                None => errors.push(format!("{at}: expected a string, got {value}")),
            },
            Some("integer") => {
                let ok = value.as_i64().is_some_and(|n| {
                    schema.get("format").and_then(Value::as_str) != Some("int32")
                        || i32::try_from(n).is_ok()
                });
                if !ok {
                    errors.push(format!("{at}: expected an integer, got {value}"));
                }
            }
            Some("number") if !value.is_number() => {
                errors.push(format!("{at}: expected a number, got {value}"))
            }
            Some("boolean") if !value.is_boolean() => {
                errors.push(format!("{at}: expected a boolean, got {value}"))
            }
            _ => {}
        }
    }
}

fn is_cw_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// A models-2025.1 type spelling as a JSON schema.
fn go_schema(t: &str, models: &[String], openapi: &Value) -> Value {
    let t = t.trim_start_matches('*');
    if let Some(inner) = t.strip_prefix("[]") {
        return json!({"type": "array", "items": go_schema(inner, models, openapi)});
    }
    let (nullable, t) = match t.strip_prefix("Nullable") {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let mut s = match t {
        "int32" | "Int32" | "int64" | "Int64" => json!({"type": "integer"}),
        "float64" | "Float64" => json!({"type": "number"}),
        "string" | "String" => json!({"type": "string"}),
        "bool" | "Bool" => json!({"type": "boolean"}),
        "time.Time" => json!({"type": "string", "format": "date-time"}),
        "map[string]string" => {
            json!({"type": "object", "additionalProperties": {"type": "string"}})
        }
        "map[string]interface{}" => json!({}),
        other if models.iter().any(|m| m == other) => {
            return json!({"$ref": format!("models:{other}")});
        }
        other if openapi["components"]["schemas"].get(other).is_some() => {
            return json!({"$ref": format!("#/components/schemas/{other}")});
        }
        // A reference model neither document spells out: an object of unknown shape.
        _ => json!({"type": "object"}),
    };
    if nullable {
        s["nullable"] = json!(true);
    }
    s
}

#[tokio::test]
async fn every_served_resource_matches_its_reference_schema() {
    let (sb, c) = start().await;
    let w = fixtures::world(&c).await;
    // A company carrying every README field, including the references the first one could not have.
    let mut full = company_body("FULL");
    full["defaultContact"] = json!({"id": w.contact});
    full["parentCompany"] = json!({"id": w.company});
    full["billToCompany"] = json!({"id": w.company});
    full["types"] = json!([{"id": 1}, {"id": 4}]);
    let full = fixtures::id_of(&c.post("company/companies", &full).await.expect(201));
    // An order with a product item on it, so that its productIds are not empty.
    let line = json!({"catalogItem": {"id": w.catalog}, "billableOption": "Billable", "salesOrder": {"id": w.order}});
    c.post("procurement/products", &line).await.expect(201);
    // A callback registration; it points nowhere, and nothing changes after it.
    let callback = fixtures::id_of(
        &c.post(
            "system/callbacks",
            &json!({"url": "http://127.0.0.1:9/cw/hook", "objectId": 1, "type": "company", "level": "owner",
                    "description": "schema check"}),
        )
        .await
        .expect(201),
    );
    let created: HashMap<&str, i64> = HashMap::from([
        ("system/callbacks", callback),
        ("company/companies", full),
        ("company/contacts", w.contact),
        ("procurement/catalog", w.catalog),
        ("finance/invoices", w.invoice),
        ("procurement/products", w.product),
        ("sales/orders", w.order),
        ("finance/invoices/payments", w.payment),
        ("finance/agreements", w.agreement),
        ("finance/agreements/additions", w.addition),
    ]);
    let parents: HashMap<&str, i64> = HashMap::from([
        ("company/companies", w.company),
        ("company/contacts", w.contact),
        ("finance/invoices", w.invoice),
        ("finance/agreements", w.agreement),
    ]);
    let registry = Registry::new();
    let mut errors = Vec::new();
    let mut checked = 0;
    for res in RESOURCES {
        let url_path = match res.parent {
            Some(p) => res
                .path
                .replace("{parentId}", &parents[p.resource].to_string()),
            None => res.path.to_string(),
        };
        let list_path = if res.list_needs_trailing_slash {
            format!("{url_path}/")
        } else {
            url_path.clone()
        };
        let (list_schema, item_schema) = registry.for_resource(res.name, res.path);
        let list = c
            .get(&q(&list_path, &[("pageSize", "1000")]))
            .await
            .expect(200)
            .json();
        let records = list.as_array().unwrap();
        assert!(!records.is_empty(), "{}: nothing to check", res.name);
        registry.validate(
            &list_schema,
            &list,
            &format!("GET {list_path}"),
            &mut errors,
        );
        let id = created
            .get(res.name)
            .copied()
            .unwrap_or_else(|| records[0]["id"].as_i64().unwrap());
        let item = c.get(&format!("{url_path}/{id}")).await.expect(200).json();
        registry.validate(
            &item_schema,
            &item,
            &format!("GET {url_path}/{id}"),
            &mut errors,
        );
        assert_eq!(item["id"], id);
        assert!(
            item["_info"]["lastUpdated"].is_string() && item["_info"]["updatedBy"].is_string(),
            "{}",
            res.name
        );
        if let Some((_, fields)) = KEY_FIELDS.iter().find(|(r, _)| *r == res.name) {
            for f in *fields {
                let v = item.get(*f);
                let present = v.is_some_and(|v| !v.is_null() && v != &json!([]));
                if !present {
                    errors.push(format!(
                        "{}: README field '{f}' missing from {item}",
                        res.name
                    ));
                }
                if v.is_some_and(|v| v.is_object() && v.get("id").is_none()) {
                    errors.push(format!("{}: reference '{f}' has no id", res.name));
                }
            }
        }
        checked += 1;
    }
    assert!(
        errors.is_empty(),
        "{} schema problems:\n{}",
        errors.len(),
        errors.join("\n")
    );
    assert_eq!(checked, RESOURCES.len());
    assert_eq!(sb.records("company/companies").len(), 2);
}

#[test]
fn the_validator_catches_what_it_should() {
    let registry = Registry::new();
    let mut errors = Vec::new();
    let company = json!({"$ref": "#/components/schemas/Company"});
    registry.validate(
        &company,
        &json!({"id": "7", "identifier": 5, "invented": true, "status": {"id": 1, "colour": "red"},
                "dateAcquired": "2026-01-01", "types": {"id": 1}, "annualRevenue": null, "leadFlag": "yes"}),
        "c",
        &mut errors,
    );
    let joined = errors.join("\n");
    for needle in [
        "c/id: expected an integer",
        "c/identifier: expected a string",
        "field 'invented' is not declared",
        "c/status: field 'colour'",
        "c/dateAcquired: '2026-01-01' is not YYYY-MM-DDTHH:MM:SSZ",
        "c/types: expected an array",
        "c/leadFlag: expected a boolean",
    ] {
        assert!(joined.contains(needle), "missing '{needle}' in:\n{joined}");
    }
    assert!(!joined.contains("annualRevenue"), "nullable null is fine");
    let mut errors = Vec::new();
    registry.validate(
        &json!({"$ref": "models:BillingTerm"}),
        &json!({"id": 1, "name": "Net 30", "dueDays": 1.5, "extra": 1}),
        "t",
        &mut errors,
    );
    assert_eq!(errors.len(), 2, "{errors:?}");
    let mut errors = Vec::new();
    registry.validate(
        &json!({"$ref": "#/components/schemas/Invoice"}),
        &json!({"type": "Bogus", "company": {"id": 1, "name": "x", "_info": {"company_href": 5}}}),
        "i",
        &mut errors,
    );
    assert_eq!(errors.len(), 2, "{errors:?}");
}
