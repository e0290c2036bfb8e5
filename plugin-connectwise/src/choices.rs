//! The values an admin picks from: each `lookup-choices` key is a ConnectWise setup table (every
//! page of it), except invoice types, which are an enum of the API. Inactive values
//! (`inactiveFlag`, or `disabled` where a table says it that way) are left out, so nothing can be
//! mapped to one; custom fields are labelled with the screen they belong to.

use serde_json::Value;

use crate::client::Client;
use crate::exports::Choice;
use crate::manifest::{INVOICE_TYPE_VALUES, tables};
use crate::types::ConnectorError;

/// The setup table behind a `lookup-choices` key, and what it holds (for messages).
pub fn table_path(key: &str) -> Option<(&'static str, &'static str)> {
    Some(match key {
        tables::COMPANY_STATUSES => ("company/companies/statuses", "company status"),
        tables::COMPANY_TYPES => ("company/companies/types", "company type"),
        tables::CURRENCIES => ("finance/currencies", "currency"),
        tables::PRODUCT_CATEGORIES => ("procurement/categories", "product category"),
        tables::PRODUCT_SUBCATEGORIES => ("procurement/subcategories/", "product subcategory"),
        tables::PRODUCT_TYPES => ("procurement/types", "product type"),
        tables::UNITS_OF_MEASURE => ("procurement/unitOfMeasures", "unit of measure"),
        tables::BILLING_STATUSES => ("finance/billingStatuses", "billing status"),
        tables::ORDER_STATUSES => ("sales/orders/statuses", "order status"),
        tables::MEMBERS => ("system/members", "member"),
        tables::AGREEMENT_TYPES => ("finance/agreements/types", "agreement type"),
        tables::ADDITION_CUSTOM_FIELDS => ("system/userDefinedFields", "custom field"),
        _ => return None,
    })
}

/// A record's label: its name, or what the table uses instead.
pub fn label(record: &Value) -> String {
    let text = |field: &str| {
        record
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    if let (Some(first), Some(last)) = (text("firstName"), text("lastName")) {
        return format!("{first} {last}");
    }
    if let (Some(code), Some(name)) = (text("currencyIdentifier"), text("name")) {
        return format!("{code} ({name})");
    }
    text("name")
        .or_else(|| text("description"))
        .or_else(|| text("caption"))
        .or_else(|| text("identifier"))
        .unwrap_or_else(|| record.get("id").map(Value::to_string).unwrap_or_default())
}

pub fn lookup_choices(client: &Client, key: &str) -> Result<Vec<Choice>, ConnectorError> {
    if key == tables::INVOICE_TYPES {
        return Ok(INVOICE_TYPE_VALUES
            .iter()
            .map(|v| Choice {
                value: v.to_string(),
                label: v.to_string(),
            })
            .collect());
    }
    let Some((path, _)) = table_path(key) else {
        return Err(ConnectorError::Unsupported(format!(
            "the ConnectWise connector has no choices named {key:?}"
        )));
    };
    let records = client.get_all(path, None)?;
    Ok(records
        .iter()
        .filter(|r| !inactive(r))
        .filter_map(|r| {
            let mut label = label(r);
            if let Some(screen) = r
                .get("screenId")
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
            {
                label = format!("{label} ({screen})");
            }
            Some(Choice {
                value: r.get("id")?.as_i64()?.to_string(),
                label,
            })
        })
        .collect())
}

/// Whether a setup-table record is switched off in ConnectWise.
pub fn inactive(record: &Value) -> bool {
    ["inactiveFlag", "disabled"]
        .iter()
        .any(|flag| record.get(*flag).and_then(Value::as_bool) == Some(true))
}
