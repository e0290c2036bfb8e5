//! Payments → ConnectWise invoice payments (`finance/invoices/{invoice}/payments`).
//!
//! Only payments made with the BSS payment methods configured as Credit card method id or Bank
//! deposit method id are sent, typed accordingly; any other method is reported as not
//! synchronised (`unsupported`, message starting `not synchronised:`, which the host reports as
//! skipped), naming the method. The remote id is `{invoice id}/{payment id}`. Invoice payments have
//! no custom fields: a payment with `extra` entries is rejected, naming them.
//!
//! Identity: an invoice payment has no field an integration can fill (no custom fields, no
//! reference), so a payment is this record when it is on the same invoice with the same type,
//! amount and date. A create whose outcome was unknown looks for such payments first: one is
//! adopted, several fail `ambiguous:` (see [`crate::reconcile`]). Two BSS payments alike in all
//! four are told apart only by the host's id map.

use serde_json::{Map, Value, json};

use crate::exports::{Change, Pushed};
use crate::fields::{body, created_id, date, decimal, pushed, same};
use crate::push_context::{PushContext, Wanted, rename_fields, resolved_record, update_fields};
use crate::reconcile;
use crate::types::{ConnectorError, Entity, EntityData, Payment, Record};

/// The ConnectWise payment type for each configured method.
pub const CREDIT_CARD_TYPE: &str = "CreditCard";
pub const BANK_DEPOSIT_TYPE: &str = "BankDeposit";

const FIELD_NAMES: &[(&str, &str)] = &[
    ("amount", "amount"),
    ("paymentDate", "payment-date"),
    ("type", "method"),
    ("invoice", "invoice"),
];

fn payment_type(context: &PushContext, payment: &Payment) -> Result<&'static str, ConnectorError> {
    let method = payment.method.trim();
    let settings = &context.settings;
    if settings.credit_card_method.as_deref() == Some(method) {
        Ok(CREDIT_CARD_TYPE)
    } else if settings.bank_deposit_method.as_deref() == Some(method) {
        Ok(BANK_DEPOSIT_TYPE)
    } else {
        Err(ConnectorError::Unsupported(format!(
            "not synchronised: payment method {method} is not configured (Credit card method id or Bank deposit method id)"
        )))
    }
}

fn desired(context: &PushContext, payment: &Payment) -> Result<Map<String, Value>, ConnectorError> {
    let mut fields = Map::new();
    fields.insert("type".into(), json!(payment_type(context, payment)?));
    fields.insert("amount".into(), decimal("amount", &payment.amount)?);
    fields.insert(
        "paymentDate".into(),
        date("payment-date", &Some(payment.payment_date.clone()))?,
    );
    Ok(fields)
}

pub fn push(
    context: &PushContext,
    record: &Record,
    base: Option<&Record>,
) -> Result<Pushed, ConnectorError> {
    let EntityData::Payment(payment) = &record.data else {
        return Err(ConnectorError::Internal(
            "a payment record without payment data".into(),
        ));
    };
    let result = (|| {
        let fields = desired(context, payment)?;
        crate::custom::unsupported(&payment.extra, "invoice payments")?;
        let found = reconcile::remote_id_of(record, || {
            let invoice = resolved_record(record, "invoice", Entity::Invoice, &payment.invoice)?;
            let payments = context
                .client
                .get_all(&format!("finance/invoices/{invoice}/payments"), None)?;
            let alike = payments
                .iter()
                .filter(|p| fields.iter().all(|(f, v)| same(p.get(f.as_str()), v)))
                .filter_map(|p| p.get("id").and_then(Value::as_i64))
                .map(|id| format!("{invoice}/{id}"))
                .collect();
            reconcile::at_most_one(record, "payments", alike)
        })?;
        match found {
            None => {
                let invoice =
                    resolved_record(record, "invoice", Entity::Invoice, &payment.invoice)?;
                if context.dry_run {
                    return Ok(pushed(Change::Created, ""));
                }
                let path = format!("finance/invoices/{invoice}/payments");
                let id = created_id(
                    &context.client.post(&path, &Value::Object(body(&fields)))?,
                    "payment",
                )?;
                Ok(pushed(Change::Created, format!("{invoice}/{id}")))
            }
            Some(remote_id) => {
                let (invoice, id) = remote_id.split_once('/').ok_or_else(|| {
                    ConnectorError::Internal(format!(
                        "remote id {remote_id:?} is not invoice/payment"
                    ))
                })?;
                let path = format!("finance/invoices/{invoice}/payments/{id}");
                let merge = context.merge(record, base);
                let base = base.and_then(|base| match &base.data {
                    EntityData::Payment(last) => desired(context, last).ok(),
                    _ => None,
                });
                let wanted = Wanted {
                    fields,
                    custom: Vec::new(),
                };
                let base = base.map(|fields| Wanted {
                    fields,
                    custom: Vec::new(),
                });
                let current = context.client.get(&path)?;
                update_fields(
                    context,
                    merge,
                    (&path, &current),
                    &remote_id,
                    (&wanted, base.as_ref()),
                    FIELD_NAMES,
                )
            }
        }
    })();
    result.map_err(|e| rename_fields(e, FIELD_NAMES))
}
