//! Conversions between canonical BSS values and ConnectWise JSON: text, decimals (strings in the
//! BSS, numbers in ConnectWise), dates, and the comparison an update uses to decide what changed.

use serde_json::{Map, Value, json};

use crate::connector::rejected;
use crate::types::ConnectorError;

/// Trimmed text, or null when absent or blank.
pub fn text(value: &Option<String>) -> Value {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Value::String(v.to_string()),
        _ => Value::Null,
    }
}

/// A BSS decimal as a JSON number; `field` names it in the rejection.
pub fn decimal(field: &str, value: &str) -> Result<Value, ConnectorError> {
    let parsed: f64 = value
        .trim()
        .parse()
        .map_err(|_| rejected(field, format!("{value:?} is not a decimal number")))?;
    if !parsed.is_finite() {
        return Err(rejected(field, format!("{value:?} is not a finite number")));
    }
    Ok(json!(parsed))
}

/// An optional BSS decimal.
pub fn optional_decimal(field: &str, value: &Option<String>) -> Result<Value, ConnectorError> {
    match value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => decimal(field, v),
        None => Ok(Value::Null),
    }
}

/// A BSS date (`YYYY-MM-DD`) as ConnectWise writes dates (`YYYY-MM-DDT00:00:00Z`).
pub fn date(field: &str, value: &Option<String>) -> Result<Value, ConnectorError> {
    let Some(value) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(Value::Null);
    };
    let day = value.get(..10).unwrap_or(value);
    let bytes = day.as_bytes();
    let shaped = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shaped {
        return Err(rejected(
            field,
            format!("{value:?} is not a date (YYYY-MM-DD)"),
        ));
    }
    Ok(Value::String(format!("{day}T00:00:00Z")))
}

/// Whether ConnectWise's current value already is the desired one. References compare by id,
/// numbers numerically, dates by day; absent, null and "" are equal.
pub fn same(current: Option<&Value>, desired: &Value) -> bool {
    let current = current.unwrap_or(&Value::Null);
    let empty = |v: &Value| v.is_null() || v.as_str() == Some("");
    if empty(current) && empty(desired) {
        return true;
    }
    if let Some(id) = desired.get("id").and_then(Value::as_i64) {
        return current.get("id").and_then(Value::as_i64) == Some(id);
    }
    if let (Some(a), Some(b)) = (current.as_f64(), desired.as_f64()) {
        return (a - b).abs() < 1e-9;
    }
    if let (Some(a), Some(b)) = (current.as_str(), desired.as_str()) {
        if a.len() >= 10 && b.len() >= 10 && b.ends_with("T00:00:00Z") {
            return a[..10] == b[..10];
        }
        return a == b;
    }
    current == desired
}

/// JSON Patch operations turning `current` into what `desired` owns (null removes).
pub fn patch(current: &Value, desired: &Map<String, Value>) -> Vec<Value> {
    desired
        .iter()
        .filter(|(field, value)| !same(current.get(field.as_str()), value))
        .map(|(field, value)| {
            if value.is_null() {
                json!({ "op": "remove", "path": field })
            } else {
                json!({ "op": "replace", "path": field, "value": value })
            }
        })
        .collect()
}

/// The non-null fields, as a creation body.
pub fn body(desired: &Map<String, Value>) -> Map<String, Value> {
    desired
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The id in a created record, or an error saying what ConnectWise failed to return.
pub fn created_id(created: &Value, what: &str) -> Result<i64, ConnectorError> {
    created.get("id").and_then(Value::as_i64).ok_or_else(|| {
        ConnectorError::Internal(format!("ConnectWise created a {what} but sent no id"))
    })
}

/// A pulled record's id and `_info.lastUpdated`, or an error naming what is missing.
pub fn identity(record: &Value, what: &str) -> Result<(i64, String), ConnectorError> {
    let id = record
        .get("id")
        .and_then(Value::as_i64)
        .ok_or_else(|| ConnectorError::Internal(format!("ConnectWise sent a {what} without id")))?;
    let stamp = record
        .get("_info")
        .and_then(|i| i.get("lastUpdated"))
        .and_then(Value::as_str)
        .ok_or_else(|| ConnectorError::Internal(format!("{what} {id} has no _info.lastUpdated")))?;
    Ok((id, stamp.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_convert_and_compare() {
        assert_eq!(decimal("price", "12.50").unwrap(), json!(12.5));
        assert!(decimal("price", "12,50").is_err());
        assert_eq!(
            date("date", &Some("2026-03-01".into())).unwrap(),
            json!("2026-03-01T00:00:00Z")
        );
        assert!(date("date", &Some("01/03/2026".into())).is_err());
        assert!(same(
            Some(&json!("2026-03-01T00:00:00Z")),
            &json!("2026-03-01T00:00:00Z")
        ));
        assert!(same(Some(&json!(12.5)), &json!(12.50)));
        assert!(same(
            Some(&json!({"id": 3, "name": "x"})),
            &json!({"id": 3})
        ));
        assert!(same(None, &Value::Null));
        assert!(!same(Some(&json!("a")), &Value::Null));
    }
}
