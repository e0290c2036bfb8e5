//! Products → ConnectWise catalog items.
//!
//! The product code is the item's `identifier`, its name the `description`; the Product Type
//! lookup gives `type`; the Unit Type lookup gives `subcategory` (and with it the subcategory's
//! category). When no Unit Type mapping applies, the Product Category, Product SubCategory and
//! Product Unit of measure settings supply the defaults; the Product Unit of measure setting is the unit of every
//! item (the Unit Type lookup gives a subcategory, not a unit). `extra` entries become custom fields (see
//! [`crate::custom`]).
//!
//! Identity: the item's `integrationXRef` (free for the integrating system, at most 50
//! characters) carries the BSS id. A create whose outcome was unknown looks for items carrying it
//! first; a create refused because the code (identifier) is in use adopts the holder when it
//! carries the BSS id, and otherwise fails `in use:` naming it (see [`crate::reconcile`]). A BSS id
//! longer than 50 characters cannot be written, so such a product is found by nothing.

use serde_json::{Map, Value, json};

use crate::client::{quote, reference};
use crate::custom;
use crate::exports::{Change, Pushed};
use crate::fields::{body, created_id, optional_decimal, pushed, text};
use crate::manifest::{keys, lookups};
use crate::push_context::{PushContext, Wanted, rejected, rename_fields, update_fields};
use crate::reconcile;
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
    // Without a category or unit from the settings, ConnectWise's own stay.
    if let Some(category) = category {
        fields.insert("category".into(), reference(category));
    }
    if let Some(unit) = settings.product_unit_of_measure {
        fields.insert("unitOfMeasure".into(), reference(unit));
    }
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

/// The longest `integrationXRef` a catalog item takes.
const XREF_MAX: usize = 50;

/// The key a create writes on the catalog item: the BSS id in `integrationXRef`, when it fits.
fn key_of(record: &Record) -> Option<&str> {
    let id = record.bss_id.trim();
    (!id.is_empty() && id.chars().count() <= XREF_MAX).then_some(id)
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| i.get("id").and_then(Value::as_i64))
        .map(|id| id.to_string())
        .collect()
}

/// The last push, mapped as now; none when it no longer maps.
fn base_of(context: &PushContext, base: Option<&Record>) -> Option<Wanted> {
    let EntityData::Product(product) = &base?.data else {
        return None;
    };
    let mut fields = desired(context, product).ok()?;
    if let Some(key) = key_of(base?) {
        fields.insert("integrationXRef".into(), json!(key));
    }
    let custom = custom::wanted(context, PATH, &product.extra, "").ok()?;
    Some(Wanted { fields, custom })
}

pub fn push(
    context: &PushContext,
    record: &Record,
    base: Option<&Record>,
) -> Result<Pushed, ConnectorError> {
    let EntityData::Product(product) = &record.data else {
        return Err(ConnectorError::Internal(
            "a product record without product data".into(),
        ));
    };
    let result = desired(context, product).and_then(|mut fields| {
        let custom = custom::wanted(context, PATH, &product.extra, "")?;
        if let Some(key) = key_of(record) {
            fields.insert("integrationXRef".into(), json!(key));
        }
        let found = reconcile::remote_id_of(record, || match key_of(record) {
            Some(key) => {
                let items = context
                    .client
                    .get_all(PATH, Some(&format!("integrationXRef={}", quote(key))))?;
                reconcile::at_most_one(record, "catalog items", ids(&items))
            }
            None => Ok(None),
        })?;
        match found {
            None => create(context, record, product, &fields, &custom),
            Some(remote_id) => update(
                context,
                &remote_id,
                (&Wanted { fields, custom }, base_of(context, base).as_ref()),
                context.merge(record, base),
            ),
        }
    });
    result.map_err(|e| rename_fields(e, FIELD_NAMES))
}

fn create(
    context: &PushContext,
    record: &Record,
    product: &Product,
    fields: &Map<String, Value>,
    custom: &[(i64, Value)],
) -> Result<Pushed, ConnectorError> {
    if context.dry_run {
        return Ok(pushed(Change::Created, ""));
    }
    let mut new = body(fields);
    if let Some(fields) = custom::create_body(custom) {
        new.insert("customFields".into(), fields);
    }
    match context.client.post(PATH, &Value::Object(new)) {
        Ok(created) => Ok(pushed(
            Change::Created,
            created_id(&created, "catalog item")?.to_string(),
        )),
        Err(error) if reconcile::refused_as_in_use(&error, "identifier") => {
            // The code is taken: the holder is this record only if it carries the record's key.
            let code = product.code.trim();
            let holders = context
                .client
                .get_all(PATH, Some(&format!("identifier={}", quote(code))))?;
            let Some(holder) = ids(&holders).into_iter().next() else {
                return Err(error);
            };
            let carries_key = holders.len() == 1
                && key_of(record).is_some()
                && holders[0].get("integrationXRef").and_then(Value::as_str) == key_of(record);
            if carries_key {
                let wanted = Wanted {
                    fields: fields.clone(),
                    custom: custom.to_vec(),
                };
                return update(
                    context,
                    &holder,
                    (&wanted, None),
                    context.merge(record, None),
                );
            }
            Err(reconcile::in_use(
                record,
                "catalog item",
                &holder,
                &format!("identifier {code}"),
            ))
        }
        Err(error) => Err(error),
    }
}

fn update(
    context: &PushContext,
    remote_id: &str,
    wanted: (&Wanted, Option<&Wanted>),
    merge: crate::fields::Merge,
) -> Result<Pushed, ConnectorError> {
    let path = format!("{PATH}/{remote_id}");
    let current = context.client.get(&path)?;
    update_fields(
        context,
        merge,
        (&path, &current),
        remote_id,
        wanted,
        FIELD_NAMES,
    )
}
