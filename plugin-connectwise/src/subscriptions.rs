//! Subscriptions → additions on ConnectWise agreements.
//!
//! A customer has one agreement per billing cycle: its type comes from the Subscription Units
//! lookup (billing cycle → agreement type). A new addition goes onto the customer's agreement of
//! that type that is open for additions — status Active, not cancelled, no end date or one not yet
//! passed (today by ConnectWise's clock: the `Date` of its answers) — and, with none, onto a new
//! one (named after the cycle, with the company's default contact, as ConnectWise requires a
//! contact); an expired or cancelled agreement never receives one. The addition carries product,
//! quantity, prices, dates and the bill-customer option (the record's, else the Product Billable
//! Option setting), the custom fields Subscription Name and Subscription ID whose ids are
//! settings, and the record's `extra` entries as custom fields (see [`crate::custom`]). The remote
//! id is `{agreement id}/{addition id}`.
//!
//! Identity: the Subscription ID custom field carries the BSS id. A create whose outcome was
//! unknown looks through the customer's agreements for additions carrying it: one is adopted,
//! several fail `ambiguous:` (see [`crate::reconcile`]). Without that setting, additions of the
//! cycle's agreements alike in product, quantity, unit price and start date stand in for the key.

use serde_json::{Map, Value, json};

use crate::client::{ref_id, reference};
use crate::custom;
use crate::exports::{Change, Pushed};
use crate::fields::{body, created_id, date, decimal, optional_decimal, pushed, same, text};
use crate::manifest::{BILLABLE_OPTIONS, lookups};
use crate::push_context::{
    PushContext, Wanted, rejected, rename_fields, resolved_record, update_fields,
};
use crate::reconcile;
use crate::types::{ConnectorError, Entity, EntityData, Record, Subscription};

const AGREEMENTS: &str = "finance/agreements";

const FIELD_NAMES: &[(&str, &str)] = &[
    ("product", "product"),
    ("quantity", "quantity"),
    ("unitPrice", "unit-price"),
    ("unitCost", "unit-cost"),
    ("billCustomer", "bill-customer"),
    ("effectiveDate", "start-date"),
    ("cancelledDate", "cancelled-date"),
    ("invoiceDescription", "description"),
    ("customFields", "name"),
    ("type", "billing-cycle"),
    ("contact", "account (primary contact)"),
];

/// Whether an agreement may receive new additions on `today` (`YYYY-MM-DD`): its status is Active (or
/// unset, on sites too old to have one), it is not cancelled, and it has no end date or one not yet passed.
pub fn open_for_additions(agreement: &Value, today: &str) -> bool {
    let status = agreement.get("agreementStatus").and_then(Value::as_str);
    let cancelled = agreement.get("cancelledFlag").and_then(Value::as_bool) == Some(true)
        || agreement
            .get("dateCancelled")
            .and_then(Value::as_str)
            .is_some_and(|d| !d.is_empty());
    let no_end = agreement.get("noEndingDateFlag").and_then(Value::as_bool) == Some(true);
    let ended = agreement
        .get("endDate")
        .and_then(Value::as_str)
        .and_then(|d| d.get(..10))
        .is_some_and(|end| end < today);
    status.is_none_or(|s| s.eq_ignore_ascii_case("Active")) && !cancelled && (no_end || !ended)
}

/// The customer's agreement for this billing cycle that may receive additions (the oldest, when
/// several may), if any.
fn open_agreement(
    context: &PushContext,
    company: i64,
    agreement_type: i64,
) -> Result<Option<i64>, ConnectorError> {
    // Status, cancellation and end date are judged here, not in conditions: a record without a
    // field does not match a condition on it.
    let conditions = format!("company/id={company} and type/id={agreement_type}");
    let found = context.client.get_all(AGREEMENTS, Some(&conditions))?;
    let today = context.client.today();
    Ok(found
        .iter()
        .filter(|a| open_for_additions(a, &today))
        .find_map(|a| a.get("id").and_then(Value::as_i64)))
}

/// A new agreement of the cycle's type for the customer (named after the cycle, with the
/// company's default contact, as ConnectWise requires a contact).
fn new_agreement(
    context: &PushContext,
    company: i64,
    agreement_type: i64,
    cycle: &str,
) -> Result<i64, ConnectorError> {
    let company_record = context
        .client
        .get(&format!("company/companies/{company}"))?;
    let contact = match ref_id(&company_record, "defaultContact") {
        Some(contact) => contact,
        None => context
            .client
            .find("company/contacts", &format!("company/id={company}"))?
            .and_then(|c| c.get("id").and_then(Value::as_i64))
            .ok_or_else(|| {
                rejected(
                    "contact",
                    "ConnectWise agreements need a contact: give the account a contact first"
                        .into(),
                )
            })?,
    };
    let name = format!("{} subscriptions", cycle.trim());
    let body = json!({
        "name": name.chars().take(100).collect::<String>(),
        "type": { "id": agreement_type },
        "company": { "id": company },
        "contact": { "id": contact },
    });
    created_id(&context.client.post(AGREEMENTS, &body)?, "agreement")
}

/// The addition's custom fields: Subscription Name and Subscription ID (ids from the settings), then
/// the record's `extra` entries resolved against `screen`. An entry naming one of the two is refused:
/// those carry the subscription's own name and id.
fn custom_fields(
    context: &PushContext,
    record: &Record,
    subscription: &Subscription,
    screen: &custom::Screen,
) -> Result<Vec<(i64, Value)>, ConnectorError> {
    let settings = &context.settings;
    let mut fields = Vec::new();
    if let Some(id) = settings.subscription_name_field {
        fields.push((id, json!(subscription.name)));
    }
    if let Some(id) = settings.subscription_id_field {
        fields.push((id, json!(record.bss_id)));
    }
    custom::resolve(screen, &subscription.extra, "")?;
    for entry in &subscription.extra {
        let (id, value) = custom::resolve(screen, std::slice::from_ref(entry), "")?.remove(0);
        if fields.iter().any(|(held, _)| *held == id) {
            return Err(rejected(
                &format!("extra/{}", entry.name),
                format!(
                    "custom field {id} carries the subscription's name or id (a server variable); it cannot be set from extra"
                ),
            ));
        }
        fields.push((id, value));
    }
    Ok(fields)
}

/// The custom fields of additions on `agreement` (of every screen when there is none yet), read only
/// when the record has `extra` entries.
fn addition_screen(
    context: &PushContext,
    subscription: &Subscription,
    agreement: Option<i64>,
) -> Result<custom::Screen, ConnectorError> {
    if subscription.extra.is_empty() {
        return Ok(custom::Screen::Own(Vec::new()));
    }
    match agreement {
        Some(agreement) => custom::screen(context, &format!("{AGREEMENTS}/{agreement}/additions")),
        None => custom::everywhere(context),
    }
}

/// Custom fields as (id, value) pairs, for comparing what ConnectWise holds with what is wanted.
fn custom_pairs(fields: Option<&Value>) -> Vec<(i64, String)> {
    let mut pairs: Vec<(i64, String)> = fields
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| {
            let id = f.get("id").and_then(Value::as_i64)?;
            let value = match f.get("value") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            Some((id, value))
        })
        .collect();
    pairs.sort();
    pairs
}

/// The agreement type the Subscription Units lookup gives the record's billing cycle.
fn agreement_type(
    context: &PushContext,
    subscription: &Subscription,
) -> Result<i64, ConnectorError> {
    context.lookup_id(
        lookups::SUBSCRIPTION_UNITS,
        "Subscription Units -> ConnectWise Agreement Type",
        "billing-cycle",
        subscription.billing_cycle.trim(),
    )
}

/// The text of custom field `id` of a record.
fn custom_value(record: &Value, id: i64) -> Option<String> {
    custom_pairs(record.get("customFields"))
        .into_iter()
        .find(|(field, _)| *field == id)
        .map(|(_, value)| value)
}

/// The additions on the customer's agreements that a create of this record would have made, as
/// `{agreement}/{addition}`: those whose Subscription ID custom field is the BSS id or, when no
/// such field is set up, those of the cycle's agreements alike in product, quantity, unit price and
/// start date.
fn this_addition(
    context: &PushContext,
    record: &Record,
    subscription: &Subscription,
    fields: &Map<String, Value>,
) -> Result<Option<String>, ConnectorError> {
    let company = resolved_record(record, "account", Entity::Account, &subscription.account)?;
    let id_field = context.settings.subscription_id_field;
    let cycle_type = match id_field {
        Some(_) => None,
        None => Some(agreement_type(context, subscription)?),
    };
    let mut alike = Vec::new();
    for agreement in context
        .client
        .get_all(AGREEMENTS, Some(&format!("company/id={company}")))?
    {
        let Some(agreement_id) = agreement.get("id").and_then(Value::as_i64) else {
            continue;
        };
        if cycle_type.is_some_and(|t| ref_id(&agreement, "type") != Some(t)) {
            continue;
        }
        let additions = context
            .client
            .get_all(&format!("{AGREEMENTS}/{agreement_id}/additions"), None)?;
        for addition in &additions {
            let matches = match id_field {
                Some(field) => {
                    custom_value(addition, field).as_deref() == Some(record.bss_id.as_str())
                }
                None => ["product", "quantity", "unitPrice", "effectiveDate"]
                    .iter()
                    .all(|f| same(addition.get(*f), &fields[*f])),
            };
            if matches && let Some(id) = addition.get("id").and_then(Value::as_i64) {
                alike.push(format!("{agreement_id}/{id}"));
            }
        }
    }
    reconcile::at_most_one(record, "agreement additions", alike)
}

fn desired(
    context: &PushContext,
    record: &Record,
    subscription: &Subscription,
) -> Result<Map<String, Value>, ConnectorError> {
    let product = resolved_record(record, "product", Entity::Product, &subscription.product)?;
    // The record's option, else the Product Billable Option setting.
    let bill = text(&subscription.bill_customer)
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| context.settings.product_billable_option.clone());
    if !BILLABLE_OPTIONS.contains(&bill.as_str()) {
        return Err(rejected(
            "bill-customer",
            format!("{bill:?} is not one of {}", BILLABLE_OPTIONS.join(", ")),
        ));
    }
    let mut fields = Map::new();
    fields.insert("product".into(), reference(product));
    fields.insert(
        "quantity".into(),
        decimal("quantity", &subscription.quantity)?,
    );
    fields.insert(
        "unitPrice".into(),
        decimal("unit-price", &subscription.unit_price)?,
    );
    fields.insert(
        "unitCost".into(),
        optional_decimal("unit-cost", &subscription.unit_cost)?,
    );
    fields.insert("billCustomer".into(), json!(bill));
    fields.insert(
        "effectiveDate".into(),
        date("start-date", &subscription.start_date)?,
    );
    fields.insert(
        "cancelledDate".into(),
        date("cancelled-date", &subscription.cancelled_date)?,
    );
    fields.insert(
        "invoiceDescription".into(),
        text(&subscription.description)
            .as_str()
            .map(|d| json!(d))
            .unwrap_or_else(|| json!(subscription.name)),
    );
    Ok(fields)
}

pub fn push(
    context: &PushContext,
    record: &Record,
    base: Option<&Record>,
) -> Result<Pushed, ConnectorError> {
    let EntityData::Subscription(subscription) = &record.data else {
        return Err(ConnectorError::Internal(
            "a subscription record without subscription data".into(),
        ));
    };
    let result = (|| {
        let fields = desired(context, record, subscription)?;
        let found = reconcile::remote_id_of(record, || {
            this_addition(context, record, subscription, &fields)
        })?;
        match &found {
            None => {
                let company =
                    resolved_record(record, "account", Entity::Account, &subscription.account)?;
                let cycle = subscription.billing_cycle.trim();
                let agreement_type = agreement_type(context, subscription)?;
                // Everything is checked before the first write (a new agreement).
                let open = open_agreement(context, company, agreement_type)?;
                let screen = addition_screen(context, subscription, open)?;
                let custom = custom_fields(context, record, subscription, &screen)?;
                if context.dry_run {
                    return Ok(pushed(Change::Created, ""));
                }
                let agreement = match open {
                    Some(agreement) => agreement,
                    None => new_agreement(context, company, agreement_type, cycle)?,
                };
                let mut addition = body(&fields);
                if let Some(custom) = custom::create_body(&custom) {
                    addition.insert("customFields".into(), custom);
                }
                let path = format!("{AGREEMENTS}/{agreement}/additions");
                let id = created_id(
                    &context.client.post(&path, &Value::Object(addition))?,
                    "agreement addition",
                )?;
                Ok(pushed(Change::Created, format!("{agreement}/{id}")))
            }
            Some(remote_id) => {
                let (agreement, id) = remote_id.split_once('/').ok_or_else(|| {
                    ConnectorError::Internal(format!(
                        "remote id {remote_id:?} is not agreement/addition"
                    ))
                })?;
                let path = format!("{AGREEMENTS}/{agreement}/additions/{id}");
                let current = context.client.get(&path)?;
                let screen = custom::Screen::Own(custom::definitions_of(&current));
                let custom = custom_fields(context, record, subscription, &screen)?;
                let merge = context.merge(record, base);
                let base = base.and_then(|base| {
                    let EntityData::Subscription(last) = &base.data else {
                        return None;
                    };
                    Some(Wanted {
                        fields: desired(context, base, last).ok()?,
                        custom: custom_fields(context, base, last, &screen).ok()?,
                    })
                });
                update_fields(
                    context,
                    merge,
                    (&path, &current),
                    remote_id,
                    (&Wanted { fields, custom }, base.as_ref()),
                    FIELD_NAMES,
                )
            }
        }
    })();
    result.map_err(|e| rename_fields(e, FIELD_NAMES))
}
