//! Products → ConnectWise catalog items.
//!
//! The product code is the item's `identifier`, its name the `description`; the Product Type
//! lookup gives `type`; the Unit Type lookup gives `subcategory` (and with it the subcategory's
//! category). When no Unit Type mapping applies, the Product Category, Product SubCategory and
//! Product Unit of measure settings supply the defaults.

use serde_json::{Map, Value, json};

use crate::client::reference;
use crate::connector::{PushContext, rejected, remote_id_of, rename_fields};
use crate::exports::{Change, Pushed};
use crate::fields::{body, created_id, optional_decimal, patch, text};
use crate::manifest::{keys, lookups};
use crate::types::{ConnectorError, EntityData, Product, Record};

const PATH: &str = "procurement/catalog";

const FIELD_NAMES: &[(&str, &str)] = &[
    ("identifier", "code"),
    ("description", "name"),
    ("customerDescription", "customer-description"),
    ("type", "product-type"),
    ("subcategory", "unit-type"),
    ("category", "unit-type"),
    ("unitOfMeasure", "unit-type"),
    ("price", "price"),
    ("cost", "cost"),
    ("taxableFlag", "taxable"),
];

fn desired(context: &PushContext, product: &Product) -> Result<Map<String, Value>, ConnectorError> {
    let settings = &context.settings;
    let mut fields = Map::new();
    fields.insert("identifier".into(), json!(product.code.trim()));
    fields.insert("description".into(), json!(product.name.trim()));
    let customer_description = [&product.customer_description, &product.description]
        .into_iter()
        .map(text)
        .find(|v| !v.is_null())
        .unwrap_or_else(|| json!(product.name.trim()));
    fields.insert("customerDescription".into(), customer_description);
    fields.insert("price".into(), optional_decimal("price", &product.price)?);
    fields.insert("cost".into(), optional_decimal("cost", &product.cost)?);
    fields.insert(
        "taxableFlag".into(),
        product.taxable.map(Value::Bool).unwrap_or(Value::Null),
    );

    let kind = product.product_type.as_deref().map(str::trim).filter(|t| !t.is_empty()).ok_or_else(|| {
        rejected("product-type", "a catalog item needs a type; give the product a type mapped in Product Type -> ConnectWise Type".into())
    })?;
    let type_id = context.lookup_id(
        lookups::PRODUCT_TYPE,
        "Product Type -> ConnectWise Type",
        "product-type",
        kind,
    )?;
    fields.insert("type".into(), reference(type_id));

    let unit_mapping = product
        .unit_type
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .and_then(|unit| {
            context
                .host()
                .lookup(lookups::UNIT_TYPE, unit)
                .map(|remote| (unit.to_string(), remote))
        });
    let (subcategory, category) = match unit_mapping {
        Some((unit, remote)) => {
            let id: i64 = remote.trim().parse().map_err(|_| {
                rejected("unit-type", format!("lookup Unit Type -> ConnectWise SubCategory maps {unit:?} to {remote:?}, which is not an id"))
            })?;
            let category = subcategory_category(context, id)?.or(settings.product_category);
            (id, category)
        }
        None => {
            let id = settings.product_subcategory.ok_or_else(|| {
                rejected(
                    "unit-type",
                    format!(
                        "no Unit Type mapping applies and the {} setting has no default",
                        keys::PRODUCT_SUBCATEGORY
                    ),
                )
            })?;
            (id, settings.product_category)
        }
    };
    fields.insert("subcategory".into(), reference(subcategory));
    fields.insert(
        "category".into(),
        category.map(reference).unwrap_or(Value::Null),
    );
    fields.insert(
        "unitOfMeasure".into(),
        settings
            .product_unit_of_measure
            .map(reference)
            .unwrap_or(Value::Null),
    );
    Ok(fields)
}

/// The category a subcategory belongs to.
fn subcategory_category(
    context: &PushContext,
    subcategory: i64,
) -> Result<Option<i64>, ConnectorError> {
    let found = context.get_cached(&format!("procurement/subcategories/{subcategory}"))?;
    Ok(crate::client::ref_id(&found, "category"))
}

pub fn push(context: &PushContext, record: &Record) -> Result<Pushed, ConnectorError> {
    let EntityData::Product(product) = &record.data else {
        return Err(ConnectorError::Internal(
            "a product record without product data".into(),
        ));
    };
    let natural_key = Some(format!(
        "identifier={}",
        crate::client::quote(product.code.trim())
    ));
    let result = desired(context, product).and_then(|fields| {
        match remote_id_of(context, record, PATH, natural_key)? {
            None => {
                if context.dry_run {
                    return Ok(Pushed {
                        change: Change::Created,
                        remote_id: String::new(),
                    });
                }
                let created = context.client.post(PATH, &Value::Object(body(&fields)))?;
                Ok(Pushed {
                    change: Change::Created,
                    remote_id: created_id(&created, "catalog item")?.to_string(),
                })
            }
            Some(remote_id) => {
                let path = format!("{PATH}/{remote_id}");
                let current = context.client.get(&path)?;
                let operations = patch(&current, &fields);
                if operations.is_empty() {
                    return Ok(Pushed {
                        change: Change::Unchanged,
                        remote_id: remote_id.clone(),
                    });
                }
                if !context.dry_run {
                    context.client.patch(&path, &operations)?;
                }
                Ok(Pushed {
                    change: Change::Updated,
                    remote_id: remote_id.clone(),
                })
            }
        }
    });
    result.map_err(|e| rename_fields(e, FIELD_NAMES))
}
