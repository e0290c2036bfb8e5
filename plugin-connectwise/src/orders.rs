//! Orders → ConnectWise sales orders, with their lines as product items on the order.
//!
//! The account and contact come from resolved references; the Order Stage lookup gives `status`;
//! the Sales Representative setting gives `salesRep` (ConnectWise requires one); dates, PO number,
//! terms and currency as on invoices.
//!
//! The BSS order number: a sales order has no number field of its own (its `id` is ConnectWise's), so
//! a create writes `BSS order {number} (BSS id {bss id})` in the order's `description`, where staff
//! see and search it (e.g. `description contains 'SO-1001'`); when the number is the BSS id, plain
//! `BSS order {bss id}`. Of the documented Order fields, `poNumber` already carries the BSS PO
//! number and `notes` is the order's free text; a custom field would need defining per
//! installation (the record's `extra` reaches custom fields, see [`crate::custom`]). `description`
//! is unbounded text the BSS order has no counterpart for, written on create only (an update leaves
//! what users made of it).
//!
//! Identity: the description is also the key the order is found by again. A create whose outcome
//! was unknown looks for orders whose description carries this record's BSS id (in either form,
//! whatever number it shows) first: one is adopted, several fail `ambiguous:` (see
//! [`crate::reconcile`]).
//!
//! Closed orders: an order whose status is closed (`closedFlag` of its order status: invoiced,
//! cancelled, closed) is not patched, nor are its lines; the record answers `skipped: closed in
//! ConnectWise (status …)`.

use serde_json::{Map, Value, json};

use crate::client::{quote, reference};
use crate::custom;
use crate::exports::Pushed;
use crate::fields::{date, text};
use crate::invoices::{currency, terms};
use crate::lines::{self, Document, Parent};
use crate::manifest::{keys, lookups};
use crate::push_context::{
    PushContext, Wanted, rejected, rename_fields, resolved, resolved_record,
};
use crate::reconcile;
use crate::types::{ConnectorError, Entity, EntityData, Order, Record};

const PATH: &str = "sales/orders";

const FIELD_NAMES: &[(&str, &str)] = &[
    ("company", "account"),
    ("contact", "contact"),
    ("status", "stage"),
    ("salesRep", "sales-representative"),
    ("orderDate", "order-date"),
    ("dueDate", "due-date"),
    ("poNumber", "po-number"),
    ("billingTerms", "terms"),
    ("currency", "currency"),
];

fn desired(
    context: &PushContext,
    record: &Record,
    order: &Order,
    company: i64,
) -> Result<Map<String, Value>, ConnectorError> {
    let stage = text(&order.stage);
    let stage = stage.as_str().ok_or_else(|| {
        rejected(
            "stage",
            "a sales order needs a stage mapped in Order Stage -> ConnectWise Status".into(),
        )
    })?;
    let status = context.lookup_id(
        lookups::ORDER_STAGE,
        "Order Stage -> ConnectWise Status",
        "stage",
        stage,
    )?;
    let sales_rep = context.settings.sales_representative.ok_or_else(|| {
        rejected(
            "sales-representative",
            format!(
                "ConnectWise needs a sales representative on orders; set {}",
                keys::SALES_REPRESENTATIVE
            ),
        )
    })?;
    let contact = resolved(record, "contact", Entity::Contact, order.contact.as_ref())?;
    let mut fields = Map::new();
    fields.insert("company".into(), reference(company));
    fields.insert(
        "contact".into(),
        contact.map(reference).unwrap_or(Value::Null),
    );
    fields.insert("status".into(), reference(status));
    fields.insert("salesRep".into(), reference(sales_rep));
    fields.insert("orderDate".into(), date("order-date", &order.order_date)?);
    fields.insert("dueDate".into(), date("due-date", &order.due_date)?);
    fields.insert("poNumber".into(), text(&order.po_number));
    fields.insert("billingTerms".into(), terms(context, &order.terms)?);
    fields.insert("currency".into(), currency(context, &order.currency)?);
    Ok(fields)
}

/// The sales order `description` a create writes: the BSS order number and the key the order is
/// found by again.
pub fn key_of(record: &Record, order: &Order) -> String {
    let id = record.bss_id.trim();
    let number = order.number.trim();
    if number.is_empty() || number == id {
        legacy_key(record)
    } else {
        format!("BSS order {number} (BSS id {id})")
    }
}

/// The description of orders created before the number was shown, or whose number is the BSS id.
fn legacy_key(record: &Record) -> String {
    format!("BSS order {}", record.bss_id.trim())
}

/// Whether an order's description is one a create of this record writes (with any number).
fn carries_key(description: &str, record: &Record) -> bool {
    let id = record.bss_id.trim();
    description == legacy_key(record)
        || (description.starts_with("BSS order ")
            && description.ends_with(&format!(" (BSS id {id})")))
}

/// The status of an order ConnectWise shows as closed (its order status's `closedFlag`).
pub fn closed(context: &PushContext, order: &Value) -> Result<Option<String>, ConnectorError> {
    let Some(status) = crate::client::ref_id(order, "status") else {
        return Ok(None);
    };
    let closed = context
        .get_cached(&format!("sales/orders/statuses/{status}"))?
        .get("closedFlag")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(closed.then(|| lines::status_label(order)))
}

/// The last push's header, mapped as now; none when it no longer maps.
fn base_of(context: &PushContext, base: Option<&Record>) -> Option<Wanted> {
    let base = base?;
    let EntityData::Order(order) = &base.data else {
        return None;
    };
    let company = resolved_record(base, "account", Entity::Account, &order.account).ok()?;
    Some(Wanted {
        fields: desired(context, base, order, company).ok()?,
        custom: custom::wanted(context, PATH, &order.extra, "").ok()?,
    })
}

pub fn push(
    context: &PushContext,
    record: &Record,
    base: Option<&Record>,
) -> Result<Pushed, ConnectorError> {
    let EntityData::Order(order) = &record.data else {
        return Err(ConnectorError::Internal(
            "an order record without order data".into(),
        ));
    };
    let result = (|| {
        let company = resolved_record(record, "account", Entity::Account, &order.account)?;
        let mut on_create = Map::new();
        on_create.insert("description".into(), json!(key_of(record, order)));
        let document = Document {
            path: PATH,
            what: "sales order",
            fields: desired(context, record, order, company)?,
            on_create,
            custom: custom::wanted(context, PATH, &order.extra, "")?,
            items: lines::plan(context, record, &order.lines, company)?,
            parent: Parent::SalesOrder,
            closed,
            names: FIELD_NAMES,
        };
        let found = reconcile::remote_id_of(record, || {
            let id = record.bss_id.trim();
            let conditions = format!(
                "description={} or description like {}",
                quote(&legacy_key(record)),
                quote(&format!("BSS order % (BSS id {id})"))
            );
            let orders = context.client.get_all(PATH, Some(&conditions))?;
            // Conditions compare text without case, and `like` reads `%` and `_` in an id as
            // wildcards; the key is exact.
            let ours = orders
                .iter()
                .filter(|o| {
                    o.get("description")
                        .and_then(Value::as_str)
                        .is_some_and(|d| carries_key(d, record))
                })
                .filter_map(|o| o.get("id").and_then(Value::as_i64))
                .map(|id| id.to_string())
                .collect();
            reconcile::at_most_one(record, "sales orders", ours)
        })?;
        let merge = context.merge(record, base);
        let base = found.as_ref().and_then(|_| base_of(context, base));
        lines::push_document(context, &document, (base.as_ref(), merge), found, Err)
    })();
    result.map_err(|e| rename_fields(e, FIELD_NAMES))
}
