//! Invoice and order lines → ConnectWise product items (`procurement/products`) attached to the
//! invoice or sales order. Each item carries its BSS line id in `integrationXRef`, so an update
//! matches lines to items, patches what changed, adds new lines and removes dropped ones.
//! [`push_document`] is the create-or-update flow both documents share.

use serde_json::{Map, Value, json};

use crate::client::reference;
use crate::connector::{PushContext, resolved_record};
use crate::fields::{body, decimal, optional_decimal, patch, text};
use crate::types::{ConnectorError, Entity, Line, Record};

const PATH: &str = "procurement/products";

/// What the items hang on: `invoice` or `salesOrder`.
#[derive(Debug, Clone, Copy)]
pub enum Parent {
    Invoice(i64),
    SalesOrder(i64),
}

impl Parent {
    fn field(self) -> (&'static str, i64) {
        match self {
            Parent::Invoice(id) => ("invoice", id),
            Parent::SalesOrder(id) => ("salesOrder", id),
        }
    }
}

/// The product item a line should be.
fn desired(
    context: &PushContext,
    record: &Record,
    index: usize,
    line: &Line,
    company: i64,
) -> Result<Map<String, Value>, ConnectorError> {
    let field = |name: &str| format!("lines/{index}/{name}");
    let product = line.product.as_deref().ok_or_else(|| {
        crate::connector::rejected(
            &field("product"),
            "a line needs a product (its catalog item)".into(),
        )
    })?;
    let catalog_item = resolved_record(record, &field("product"), Entity::Product, product)?;
    let mut item = Map::new();
    item.insert("catalogItem".into(), reference(catalog_item));
    item.insert(
        "quantity".into(),
        decimal(&field("quantity"), &line.quantity)?,
    );
    item.insert(
        "price".into(),
        decimal(&field("unit-price"), &line.unit_price)?,
    );
    item.insert(
        "cost".into(),
        optional_decimal(&field("unit-cost"), &line.unit_cost)?,
    );
    item.insert("description".into(), text(&line.description));
    item.insert(
        "billableOption".into(),
        json!(context.settings.product_billable_option),
    );
    item.insert("integrationXRef".into(), json!(line.line_id));
    item.insert("company".into(), reference(company));
    Ok(item)
}

/// Every line's desired item (without its parent), checked before anything is written.
pub fn plan(
    context: &PushContext,
    record: &Record,
    lines: &[Line],
    company: i64,
) -> Result<Vec<Map<String, Value>>, ConnectorError> {
    let mut seen = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if line.line_id.trim().is_empty() || seen.contains(&line.line_id) {
            return Err(crate::connector::rejected(
                &format!("lines/{index}/line-id"),
                "each line needs its own line id".into(),
            ));
        }
        seen.push(line.line_id.clone());
    }
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| desired(context, record, i, line, company))
        .collect()
}

/// The item with its parent set.
fn attached(item: &Map<String, Value>, parent: Parent) -> Map<String, Value> {
    let (field, id) = parent.field();
    let mut item = item.clone();
    item.insert(field.into(), reference(id));
    item
}

/// Creates the items of a new document.
pub fn create(
    context: &PushContext,
    items: &[Map<String, Value>],
    parent: Parent,
) -> Result<(), ConnectorError> {
    for item in items {
        context
            .client
            .post(PATH, &Value::Object(body(&attached(item, parent))))?;
    }
    Ok(())
}

/// Makes the parent's items match `items`; whether anything changed.
pub fn sync(
    context: &PushContext,
    items: &[Map<String, Value>],
    parent: Parent,
) -> Result<bool, ConnectorError> {
    let (parent_field, parent_id) = parent.field();
    let current = context
        .client
        .get_all(PATH, Some(&format!("{parent_field}/id={parent_id}")))?;
    let xref = |v: &Value| {
        v.get("integrationXRef")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mut changed = false;
    for item in items {
        let item = &attached(item, parent);
        let key = xref(&Value::Object(item.clone()));
        match current.iter().find(|c| xref(c) == key) {
            Some(existing) => {
                let operations = patch(existing, item);
                if !operations.is_empty() {
                    changed = true;
                    if !context.dry_run {
                        let id = existing
                            .get("id")
                            .and_then(Value::as_i64)
                            .unwrap_or_default();
                        context.client.patch(&format!("{PATH}/{id}"), &operations)?;
                    }
                }
            }
            None => {
                changed = true;
                if !context.dry_run {
                    context.client.post(PATH, &Value::Object(body(item)))?;
                }
            }
        }
    }
    let wanted: Vec<Option<String>> = items
        .iter()
        .map(|i| xref(&Value::Object(i.clone())))
        .collect();
    for existing in &current {
        if wanted.contains(&xref(existing)) {
            continue;
        }
        changed = true;
        if !context.dry_run
            && let Some(id) = existing.get("id").and_then(Value::as_i64)
        {
            context.client.delete(&format!("{PATH}/{id}"))?;
        }
    }
    Ok(changed)
}

/// Creates or updates a document (an invoice or a sales order at `path`) and its line items. A new
/// document whose lines cannot all be written is deleted again, so a retry never leaves half of it
/// behind; an update patches what differs and reconciles the lines.
pub fn push_document(
    context: &PushContext,
    remote_id: Option<String>,
    path: &str,
    what: &str,
    fields: &Map<String, Value>,
    items: &[Map<String, Value>],
    parent: fn(i64) -> Parent,
) -> Result<crate::exports::Pushed, ConnectorError> {
    use crate::exports::{Change, Pushed};
    match remote_id {
        None => {
            if context.dry_run {
                return Ok(Pushed {
                    change: Change::Created,
                    remote_id: String::new(),
                });
            }
            let id = crate::fields::created_id(
                &context.client.post(path, &Value::Object(body(fields)))?,
                what,
            )?;
            if let Err(error) = create(context, items, parent(id)) {
                let _ = context.client.delete(&format!("{path}/{id}"));
                return Err(error);
            }
            Ok(Pushed {
                change: Change::Created,
                remote_id: id.to_string(),
            })
        }
        Some(remote_id) => {
            let id: i64 = remote_id.parse().map_err(|_| {
                ConnectorError::Internal(format!("remote id {remote_id:?} is not a {what} id"))
            })?;
            let document = format!("{path}/{id}");
            let operations = patch(&context.client.get(&document)?, fields);
            if !operations.is_empty() && !context.dry_run {
                context.client.patch(&document, &operations)?;
            }
            let lines_changed = sync(context, items, parent(id))?;
            let change = if operations.is_empty() && !lines_changed {
                Change::Unchanged
            } else {
                Change::Updated
            };
            Ok(Pushed {
                change,
                remote_id: id.to_string(),
            })
        }
    }
}
