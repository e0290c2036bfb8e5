//! Invoice and order lines → ConnectWise product items (`procurement/products`) attached to the
//! invoice or sales order. Each item carries `bss:` and its BSS line id in `integrationXRef`, so an
//! update matches lines to items, patches what changed, adds new lines and removes dropped ones.
//! Only items marked as ours are touched: items without the mark (lines staff added in
//! ConnectWise, or another integration's) are someone else's, stay as they are and are counted in
//! the record's warnings. The document's own fields are updated three-way like any record (see
//! [`crate::fields::Merge`]); the lines marked as ours are the BSS's. A line id is unique within its
//! document, so two items carrying it on one document are a conflict the record fails on
//! (`ambiguous:` on the line's field), never a guess. A line's `extra` entries become the item's
//! custom fields (see [`crate::custom`]).
//!
//! [`push_document`] is the create-or-update flow both documents share, with the adoption of an
//! existing document its caller decides. A document ConnectWise shows as closed (its caller says
//! how to tell) is the accountant's: it is not patched, nor are its lines, and the record answers
//! `unsupported` with a message starting `skipped: closed in ConnectWise`, which the host reports
//! as skipped, not failed.

use serde_json::{Map, Value, json};

use crate::client::reference;
use crate::custom;
use crate::fields::{body, decimal, optional_decimal, patch, text};
use crate::push_context::{PushContext, resolved_record};
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

/// The product item a line should be: its fields (without its parent) and custom fields.
#[derive(Debug, Clone)]
pub struct Item {
    pub fields: Map<String, Value>,
    pub custom: Vec<(i64, Value)>,
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
        crate::push_context::rejected(
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
    // Without a cost or description of the line's own, ConnectWise's (from the catalog item) stay.
    let cost = optional_decimal(&field("unit-cost"), &line.unit_cost)?;
    if !cost.is_null() {
        item.insert("cost".into(), cost);
    }
    let description = text(&line.description);
    if !description.is_null() {
        item.insert("description".into(), description);
    }
    item.insert(
        "billableOption".into(),
        json!(context.settings.product_billable_option),
    );
    // Trimmed, as every comparison of it is: "A" and "A " are one line.
    item.insert(
        "integrationXRef".into(),
        json!(format!("{XREF_PREFIX}{}", line.line_id.trim())),
    );
    item.insert("company".into(), reference(company));
    Ok(item)
}

/// Every line's desired item (without its parent), checked before anything is written.
pub fn plan(
    context: &PushContext,
    record: &Record,
    lines: &[Line],
    company: i64,
) -> Result<Vec<Item>, ConnectorError> {
    let mut seen = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let id = line.line_id.trim();
        if id.is_empty() || seen.contains(&id) {
            return Err(crate::push_context::rejected(
                &format!("lines/{index}/line-id"),
                "each line needs its own line id (ids are compared without surrounding spaces)"
                    .into(),
            ));
        }
        seen.push(id);
    }
    let screen = match lines.iter().any(|l| !l.extra.is_empty()) {
        true => Some(custom::screen(context, PATH)?),
        false => None,
    };
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let custom = match &screen {
                Some(screen) => custom::resolve(screen, &line.extra, &format!("lines/{i}/"))?,
                None => Vec::new(),
            };
            Ok(Item {
                fields: desired(context, record, i, line, company)?,
                custom,
            })
        })
        .collect()
}

/// The item with its parent set.
fn attached(item: &Map<String, Value>, parent: Parent) -> Map<String, Value> {
    let (field, id) = parent.field();
    let mut item = item.clone();
    item.insert(field.into(), reference(id));
    item
}

/// The creation body of an item.
fn new_item(item: &Item, parent: Parent) -> Value {
    let mut new = body(&attached(&item.fields, parent));
    if let Some(custom) = custom::create_body(&item.custom) {
        new.insert("customFields".into(), custom);
    }
    Value::Object(new)
}

/// Creates the items of a new document.
pub fn create(context: &PushContext, items: &[Item], parent: Parent) -> Result<(), ConnectorError> {
    for item in items {
        context.client.post(PATH, &new_item(item, parent))?;
    }
    Ok(())
}

/// The mark of the items this connector writes: `integrationXRef` is `bss:` and the BSS line id,
/// so an item another integration marks with its own reference is never taken for ours.
pub const XREF_PREFIX: &str = "bss:";

/// What syncing a document's items did.
pub struct Synced {
    pub changed: bool,
    /// Items the BSS does not own (staff's, another integration's), left as they are.
    pub left_alone: usize,
}

/// Makes the parent's items match `items`. Only items marked as ours (see [`XREF_PREFIX`]; an
/// item holding the bare line id, as written before the mark, still matches its line) are updated
/// or removed; the others are counted and left alone. Two items carrying one line's id fail the
/// record rather than have one of them picked.
pub fn sync(
    context: &PushContext,
    items: &[Item],
    parent: Parent,
    what: &str,
) -> Result<Synced, ConnectorError> {
    let (parent_field, parent_id) = parent.field();
    let current = context
        .client
        .get_all(PATH, Some(&format!("{parent_field}/id={parent_id}")))?;
    let xref = |v: &Value| {
        v.get("integrationXRef")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
    };
    let id_of = |v: &Value| v.get("id").and_then(Value::as_i64).unwrap_or_default();
    // Every line's items are matched before the first write, so a line ConnectWise holds twice
    // fails the document with nothing changed.
    let mut matched = Vec::with_capacity(items.len());
    for (index, wanted) in items.iter().enumerate() {
        let key = xref(&Value::Object(wanted.fields.clone()));
        let legacy = key
            .as_deref()
            .and_then(|k| k.strip_prefix(XREF_PREFIX))
            .map(str::to_string);
        let held: Vec<&Value> = current
            .iter()
            .filter(|c| {
                let held = xref(c);
                held == key || (held.is_some() && held == legacy)
            })
            .collect();
        if held.len() > 1 {
            let ids: Vec<String> = held.iter().map(|c| id_of(c).to_string()).collect();
            return Err(crate::push_context::rejected(
                &format!("lines/{index}/line-id"),
                format!(
                    "ambiguous: ConnectWise holds {} product items for line {} of {what} {parent_id} (ids {}); delete the extra ones in ConnectWise",
                    ids.len(),
                    key.unwrap_or_default(),
                    ids.join(", ")
                ),
            ));
        }
        matched.push(held.first().copied());
    }
    let matched_ids: Vec<i64> = matched.iter().flatten().map(|c| id_of(c)).collect();
    let mut changed = false;
    for (wanted, held) in items.iter().zip(matched) {
        let item = &attached(&wanted.fields, parent);
        match held {
            Some(existing) => {
                let mut operations = patch(existing, item);
                if let Some(custom) = custom::merged(existing, &wanted.custom) {
                    operations
                        .push(json!({ "op": "replace", "path": "customFields", "value": custom }));
                }
                if !operations.is_empty() {
                    changed = true;
                    if !context.dry_run {
                        let id = id_of(existing);
                        context.client.patch(&format!("{PATH}/{id}"), &operations)?;
                    }
                }
            }
            None => {
                changed = true;
                if !context.dry_run {
                    context.client.post(PATH, &new_item(wanted, parent))?;
                }
            }
        }
    }
    let wanted: Vec<Option<String>> = items
        .iter()
        .map(|i| xref(&Value::Object(i.fields.clone())))
        .collect();
    let mut left_alone = 0;
    for existing in &current {
        let key = xref(existing);
        if matched_ids.contains(&id_of(existing)) || wanted.contains(&key) {
            continue;
        }
        if !key.as_deref().is_some_and(|k| k.starts_with(XREF_PREFIX)) {
            left_alone += 1;
            continue;
        }
        changed = true;
        if !context.dry_run {
            context
                .client
                .delete(&format!("{PATH}/{}", id_of(existing)))?;
        }
    }
    Ok(Synced {
        changed,
        left_alone,
    })
}

/// A document (an invoice or a sales order) as the BSS says it should be.
pub struct Document {
    /// Where documents of its kind live (`finance/invoices`).
    pub path: &'static str,
    /// What people call it ("invoice").
    pub what: &'static str,
    /// The fields the connector owns.
    pub fields: Map<String, Value>,
    /// Fields written only on create (a key the document is found by later, a default).
    pub on_create: Map<String, Value>,
    /// Custom fields from the record's `extra`.
    pub custom: Vec<(i64, Value)>,
    /// The line items, without their parent.
    pub items: Vec<Item>,
    pub parent: fn(i64) -> Parent,
    /// The status label of a document ConnectWise shows as closed (as a GET reads it), else `None`.
    pub closed: fn(&PushContext, &Value) -> Result<Option<String>, ConnectorError>,
    /// ConnectWise field → BSS field, for what the report names and for telling BSS changes.
    pub names: &'static [(&'static str, &'static str)],
}

/// The answer for a document that is closed in ConnectWise: skipped, not failed.
pub fn skipped_closed(status: &str) -> ConnectorError {
    ConnectorError::Unsupported(format!("skipped: closed in ConnectWise (status {status})"))
}

/// A status reference's label: its name, else its id.
pub fn status_label(document: &Value) -> String {
    let status = document.get("status");
    status
        .and_then(|s| s.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            status
                .and_then(|s| s.get("id"))
                .and_then(Value::as_i64)
                .map(|id| format!("id {id}"))
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// Creates or updates a document and its line items. A new document whose lines cannot all be
/// written is deleted again, so a retry never leaves half of it behind; an update patches what
/// differs and reconciles the lines. A create ConnectWise refuses goes to `refused`, which names
/// the existing document to update instead (adopting it) or returns the error to report.
pub fn push_document(
    context: &PushContext,
    document: &Document,
    (base, mut merge): (Option<&crate::push_context::Wanted>, crate::fields::Merge),
    remote_id: Option<String>,
    refused: impl FnOnce(ConnectorError) -> Result<i64, ConnectorError>,
) -> Result<crate::exports::Pushed, ConnectorError> {
    use crate::exports::Change;
    let Document {
        path, what, fields, ..
    } = document;
    let id = match remote_id {
        Some(remote_id) => remote_id.parse().map_err(|_| {
            ConnectorError::Internal(format!("remote id {remote_id:?} is not a {what} id"))
        })?,
        None => {
            if context.dry_run {
                return Ok(crate::fields::pushed(Change::Created, ""));
            }
            let mut new = body(fields);
            new.extend(body(&document.on_create));
            if let Some(custom) = custom::create_body(&document.custom) {
                new.insert("customFields".into(), custom);
            }
            match context.client.post(path, &Value::Object(new)) {
                Ok(created) => {
                    let id = crate::fields::created_id(&created, what)?;
                    if let Err(error) = create(context, &document.items, (document.parent)(id)) {
                        let _ = context.client.delete(&format!("{path}/{id}"));
                        return Err(error);
                    }
                    return Ok(crate::fields::pushed(Change::Created, id.to_string()));
                }
                Err(error) => refused(error)?,
            }
        }
    };
    let current = format!("{path}/{id}");
    let held = context.client.get(&current)?;
    if let Some(status) = (document.closed)(context, &held)? {
        return Err(skipped_closed(&status));
    }
    // The header is three-way like any record; the lines carrying our reference are the BSS's.
    let owned = merge.owned(&held, fields, base.map(|b| &b.fields), document.names);
    let mut operations = patch(&held, &owned);
    let custom = merge.owned_custom(&held, &document.custom, base.map(|b| b.custom.as_slice()));
    if let Some(custom) = custom::merged(&held, &custom) {
        operations.push(json!({ "op": "replace", "path": "customFields", "value": custom }));
    }
    if merge.held() {
        return Ok(merge.answer(Change::Updated, id, None));
    }
    if !operations.is_empty() && !context.dry_run {
        context.client.patch(&current, &operations)?;
    }
    let synced = sync(context, &document.items, (document.parent)(id), what)?;
    if synced.left_alone > 0 {
        merge.warnings.push(format!(
            "{} item(s) of {what} {id} not written by the BSS (added in ConnectWise) were left as they are",
            synced.left_alone
        ));
    }
    let change = if operations.is_empty() && !synced.changed {
        Change::Unchanged
    } else {
        Change::Updated
    };
    Ok(merge.answer(change, id, None))
}
