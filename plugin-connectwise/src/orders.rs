//! Orders → ConnectWise sales orders, with their lines as product items on the order.
//!
//! The account and contact come from resolved references; the Order Stage lookup gives `status`;
//! the Sales Representative setting gives `salesRep` (ConnectWise requires one); dates, PO number,
//! terms and currency as on invoices.

use serde_json::{Map, Value};

use crate::client::reference;
use crate::connector::{PushContext, rejected, rename_fields, resolved, resolved_record};
use crate::exports::Pushed;
use crate::fields::{date, text};
use crate::invoices::{currency, terms};
use crate::lines::{self, Parent};
use crate::manifest::{keys, lookups};
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

pub fn push(context: &PushContext, record: &Record) -> Result<Pushed, ConnectorError> {
    let EntityData::Order(order) = &record.data else {
        return Err(ConnectorError::Internal(
            "an order record without order data".into(),
        ));
    };
    let result = (|| {
        let company = resolved_record(record, "account", Entity::Account, &order.account)?;
        let fields = desired(context, record, order, company)?;
        let items = lines::plan(context, record, &order.lines, company)?;
        lines::push_document(
            context,
            record.remote_id.clone(),
            PATH,
            "sales order",
            &fields,
            &items,
            Parent::SalesOrder,
        )
    })();
    result.map_err(|e| rename_fields(e, FIELD_NAMES))
}
