//! Orders → ConnectWise sales orders, with their lines as product items on the order.
//!
//! The account and contact come from resolved references; the Order Stage lookup gives `status`;
//! the Sales Representative setting gives `salesRep` (ConnectWise requires one); dates, PO number,
//! terms and currency as on invoices.
//!
//! Identity: a create writes `BSS order {bss id}` in the order's `description`. Of the documented
//! Order fields, `poNumber` already carries the BSS PO number, `notes` is the order's free text,
//! and custom fields would need one defined per installation; `description` is unbounded text the
//! BSS order has no counterpart for. It is written on create only (an update leaves what users
//! made of it). A create whose outcome was unknown looks for orders with that description first:
//! one is adopted, several fail `ambiguous:` (see [`crate::reconcile`]).

use serde_json::{Map, Value, json};

use crate::client::{quote, reference};
use crate::connector::{PushContext, rejected, rename_fields, resolved, resolved_record};
use crate::exports::Pushed;
use crate::fields::{date, text};
use crate::invoices::{currency, terms};
use crate::lines::{self, Document, Parent};
use crate::manifest::{keys, lookups};
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

/// The sales order `description` a create writes: the key the order is found by again.
pub fn key_of(record: &Record) -> String {
    format!("BSS order {}", record.bss_id.trim())
}

pub fn push(context: &PushContext, record: &Record) -> Result<Pushed, ConnectorError> {
    let EntityData::Order(order) = &record.data else {
        return Err(ConnectorError::Internal(
            "an order record without order data".into(),
        ));
    };
    let result = (|| {
        let company = resolved_record(record, "account", Entity::Account, &order.account)?;
        let key = key_of(record);
        let mut on_create = Map::new();
        on_create.insert("description".into(), json!(key));
        let document = Document {
            path: PATH,
            what: "sales order",
            fields: desired(context, record, order, company)?,
            on_create,
            items: lines::plan(context, record, &order.lines, company)?,
            parent: Parent::SalesOrder,
        };
        let found = reconcile::remote_id_of(record, || {
            let orders = context
                .client
                .get_all(PATH, Some(&format!("description={}", quote(&key))))?;
            // Conditions compare text without case; the key is exact.
            let ours = orders
                .iter()
                .filter(|o| o.get("description").and_then(Value::as_str) == Some(key.as_str()))
                .filter_map(|o| o.get("id").and_then(Value::as_i64))
                .map(|id| id.to_string())
                .collect();
            reconcile::at_most_one(record, "sales orders", ours)
        })?;
        lines::push_document(context, &document, found, Err)
    })();
    result.map_err(|e| rename_fields(e, FIELD_NAMES))
}
