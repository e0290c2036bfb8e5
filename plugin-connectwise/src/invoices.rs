//! Invoices → ConnectWise invoices, with their lines as product items on the invoice.
//!
//! The account's remote id is the invoice's `company`; the Invoice Type lookup gives `type` (an
//! enum; Standard on create when the invoice has none, left to ConnectWise on update), the Invoice
//! Stage lookup `status` (a billing status); terms are matched by name, currency through the
//! Currency lookup; `extra` entries become custom fields (see [`crate::custom`]). A new invoice
//! whose lines cannot all be written is deleted again, so a retry never leaves a duplicate behind.
//!
//! Closed invoices: an invoice whose billing status is closed (posted, paid, void: the reference's
//! `isClosed`, the status's `closedFlag`) is the accountant's. It is not patched, nor are its lines;
//! the record answers `skipped: closed in ConnectWise (status …)`.
//!
//! Identity: the invoice number is the BSS invoice's number, which no other BSS invoice has. An
//! invoice with that number and this record's company is this record; one of another company holds
//! the number without being it. A create whose outcome was unknown looks the number up first (one
//! of ours is adopted, several fail `ambiguous:`, another company's fails `in use:`); a create
//! ConnectWise refuses because the number is in use does the same (see [`crate::reconcile`]).

use serde_json::{Map, Value, json};

use crate::client::{quote, ref_id, reference};
use crate::custom;
use crate::exports::Pushed;
use crate::fields::{date, text};
use crate::lines::{self, Document, Parent};
use crate::manifest::{INVOICE_TYPE_VALUES, lookups};
use crate::push_context::{PushContext, Wanted, rejected, rename_fields, resolved_record};
use crate::reconcile;
use crate::types::{ConnectorError, Entity, EntityData, Invoice, Record};

const PATH: &str = "finance/invoices";

type Fields = Map<String, Value>;

const FIELD_NAMES: &[(&str, &str)] = &[
    ("invoiceNumber", "number"),
    ("type", "invoice-type"),
    ("status", "stage"),
    ("company", "account"),
    ("date", "date"),
    ("dueDate", "due-date"),
    ("billingTerms", "terms"),
    ("currency", "currency"),
];

/// The billing terms record named `name`, as a reference.
pub fn terms(context: &PushContext, name: &Option<String>) -> Result<Value, ConnectorError> {
    let Some(name) = text(name).as_str().map(str::to_string) else {
        return Ok(Value::Null);
    };
    let found = context.find_by("finance/billingTerms", "name", &name)?;
    let id = found
        .as_ref()
        .and_then(|t| t.get("id"))
        .and_then(Value::as_i64);
    id.map(reference).ok_or_else(|| {
        rejected(
            "terms",
            format!("ConnectWise has no billing terms named {name:?}"),
        )
    })
}

/// The currency reference through the Currency lookup.
pub fn currency(context: &PushContext, code: &Option<String>) -> Result<Value, ConnectorError> {
    match text(code).as_str() {
        Some(code) => Ok(reference(context.lookup_id(
            lookups::CURRENCY,
            "Currency -> ConnectWise Currency",
            "currency",
            code,
        )?)),
        None => Ok(Value::Null),
    }
}

/// The invoice's fields, and those written on create only (the type ConnectWise needs when the
/// BSS invoice has none: Standard, which an update leaves to ConnectWise).
fn desired(
    context: &PushContext,
    invoice: &Invoice,
    company: i64,
) -> Result<(Fields, Fields), ConnectorError> {
    let kind = match text(&invoice.invoice_type).as_str() {
        Some(kind) => Some({
            let mapped = context
                .host()
                .lookup(lookups::INVOICE_TYPE, kind)
                .ok_or_else(|| {
                    rejected(
                        "invoice-type",
                        format!(
                            "{kind:?} is not mapped in lookup Invoice Type -> ConnectWise Type"
                        ),
                    )
                })?;
            if !INVOICE_TYPE_VALUES.contains(&mapped.as_str()) {
                return Err(rejected(
                    "invoice-type",
                    format!("{mapped:?} is not a ConnectWise invoice type"),
                ));
            }
            mapped
        }),
        None => None,
    };
    let status = match text(&invoice.stage).as_str() {
        Some(stage) => reference(context.lookup_id(
            lookups::INVOICE_STAGE,
            "Invoice Stage -> ConnectWise Status",
            "stage",
            stage,
        )?),
        None => Value::Null,
    };
    let mut fields = Map::new();
    fields.insert("invoiceNumber".into(), json!(invoice.number.trim()));
    let mut on_create = Map::new();
    match kind {
        Some(kind) => {
            fields.insert("type".into(), json!(kind));
        }
        None => {
            on_create.insert("type".into(), json!("Standard"));
        }
    }
    fields.insert("status".into(), status);
    fields.insert("company".into(), reference(company));
    fields.insert("date".into(), date("date", &invoice.date)?);
    fields.insert("dueDate".into(), date("due-date", &invoice.due_date)?);
    fields.insert("billingTerms".into(), terms(context, &invoice.terms)?);
    fields.insert("currency".into(), currency(context, &invoice.currency)?);
    Ok((fields, on_create))
}

/// The status of an invoice ConnectWise shows as closed: its billing status says so (`isClosed` on
/// the reference, else the billing status's `closedFlag`), or, without a status, someone closed it
/// (`closedBy`).
pub fn closed(context: &PushContext, invoice: &Value) -> Result<Option<String>, ConnectorError> {
    let status = invoice.get("status").filter(|s| s.is_object());
    let is_closed = match status {
        Some(status) => match status.get("isClosed").and_then(Value::as_bool) {
            Some(flag) => flag,
            None => match status.get("id").and_then(Value::as_i64) {
                Some(id) => context
                    .get_cached(&format!("finance/billingStatuses/{id}"))?
                    .get("closedFlag")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                None => false,
            },
        },
        None => invoice
            .get("closedBy")
            .and_then(Value::as_str)
            .is_some_and(|by| !by.trim().is_empty()),
    };
    Ok(is_closed.then(|| lines::status_label(invoice)))
}

/// The invoices numbered `number`, split into those of `company` (this record's, as far as
/// ConnectWise can tell) and the others.
fn numbered(
    context: &PushContext,
    number: &str,
    company: i64,
) -> Result<(Vec<String>, Vec<String>), ConnectorError> {
    let found = context
        .client
        .get_all(PATH, Some(&format!("invoiceNumber={}", quote(number))))?;
    let mut ours = Vec::new();
    let mut others = Vec::new();
    for invoice in &found {
        let Some(id) = invoice.get("id").and_then(Value::as_i64) else {
            continue;
        };
        if ref_id(invoice, "company") == Some(company) {
            ours.push(id.to_string());
        } else {
            others.push(id.to_string());
        }
    }
    Ok((ours, others))
}

/// This record's invoice among those numbered like it: one of its company is it, several are
/// ambiguous, one of another company holds the number (`in use:`).
fn this_invoice(
    context: &PushContext,
    record: &Record,
    number: &str,
    company: i64,
) -> Result<Option<String>, ConnectorError> {
    let (ours, others) = numbered(context, number, company)?;
    if ours.is_empty()
        && let Some(other) = others.first()
    {
        return Err(reconcile::in_use(
            record,
            "invoice",
            other,
            &format!("invoice number {number} for another company"),
        ));
    }
    reconcile::at_most_one(record, "invoices", ours)
}

/// The last push's header, mapped as now; none when it no longer maps.
fn base_of(context: &PushContext, base: Option<&Record>) -> Option<Wanted> {
    let base = base?;
    let EntityData::Invoice(invoice) = &base.data else {
        return None;
    };
    let company = resolved_record(base, "account", Entity::Account, &invoice.account).ok()?;
    Some(Wanted {
        fields: desired(context, invoice, company).ok()?.0,
        custom: custom::wanted(context, PATH, &invoice.extra, "").ok()?,
    })
}

pub fn push(
    context: &PushContext,
    record: &Record,
    base: Option<&Record>,
) -> Result<Pushed, ConnectorError> {
    let EntityData::Invoice(invoice) = &record.data else {
        return Err(ConnectorError::Internal(
            "an invoice record without invoice data".into(),
        ));
    };
    let result = (|| {
        let company = resolved_record(record, "account", Entity::Account, &invoice.account)?;
        let (fields, on_create) = desired(context, invoice, company)?;
        let document = Document {
            path: PATH,
            what: "invoice",
            fields,
            on_create,
            custom: custom::wanted(context, PATH, &invoice.extra, "")?,
            items: lines::plan(context, record, &invoice.lines, company)?,
            parent: Parent::Invoice,
            closed,
            names: FIELD_NAMES,
        };
        let number = invoice.number.trim();
        let found =
            reconcile::remote_id_of(record, || this_invoice(context, record, number, company))?;
        let base_record = base;
        let base = found.as_ref().and_then(|_| base_of(context, base));
        let merge = context.merge(record, base_record);
        lines::push_document(
            context,
            &document,
            (base.as_ref(), merge),
            found,
            |refusal| {
                if !reconcile::refused_as_in_use(&refusal, "invoiceNumber") {
                    return Err(refusal);
                }
                match this_invoice(context, record, number, company)? {
                    Some(id) => id.parse().map_err(|_| refusal),
                    None => Err(refusal),
                }
            },
        )
    })();
    result.map_err(|e| rename_fields(e, FIELD_NAMES))
}
