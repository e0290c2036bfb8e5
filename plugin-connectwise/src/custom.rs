//! A record's `extra` entries ↔ ConnectWise custom fields (`customFields`).
//!
//! Mapping rule: an `extra` entry's `name` is either a ConnectWise custom field id (digits, e.g. `12`) or a
//! custom field's caption, matched without regard to case (`Region`). Its value is written in the field's type:
//! a number for Number, Currency and Percent, true/false for Checkbox (`true`/`false`, `yes`/`no`, `1`/`0`), a
//! date for Date (`YYYY-MM-DD`), text otherwise; an empty value clears the field.
//!
//! Which fields exist: every ConnectWise record lists in `customFields` all the custom fields of its screen (with
//! `id`, `caption`, `type`), so the definitions for a resource come from one of its records (`pageSize=1`),
//! remembered for the push call. Only when the resource has no record yet do they come from
//! `system/userDefinedFields`, which holds the fields of every screen: a caption found there on several screens
//! is refused as ambiguous (name the field by id instead), and ConnectWise itself refuses an id of another screen.
//!
//! An entry that cannot be mapped (no such id or caption, an ambiguous caption, a value the field's type cannot
//! take, an entity without custom fields) rejects the record with field `extra/<name>` before anything is
//! written. An update sends the whole `customFields` list: the values ConnectWise holds, with the BSS's entries
//! replacing theirs, so fields the BSS does not send stay as they are. Pull returns every field with a value as
//! an `extra` entry named by its caption.

use serde_json::{Value, json};

use crate::push_context::PushContext;
use crate::types::{ConnectorError, CustomField, FieldError};

/// One custom field of a screen.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    pub id: i64,
    pub caption: String,
    /// ConnectWise's field type: Text, Number, Checkbox, Date, …
    pub kind: String,
}

/// Where definitions came from: a record of the screen itself, or the table of every screen's fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Screen {
    Own(Vec<Definition>),
    Everywhere(Vec<Definition>),
}

impl Screen {
    fn definitions(&self) -> &[Definition] {
        match self {
            Screen::Own(d) | Screen::Everywhere(d) => d,
        }
    }
}

/// A custom field's definition as ConnectWise lists it; the type sits under `type_key` (`type`
/// on a record's `customFields`, `fieldTypeIdentifier` in `system/userDefinedFields`).
fn definition_from(field: &Value, type_key: &str) -> Option<Definition> {
    let text = |key: &str, default: &str| {
        field
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_string()
    };
    Some(Definition {
        id: field.get("id")?.as_i64()?,
        caption: text("caption", ""),
        kind: text(type_key, "Text"),
    })
}

/// The custom fields a record lists (its screen's).
pub fn definitions_of(record: &Value) -> Vec<Definition> {
    record
        .get("customFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| definition_from(f, "type"))
        .collect()
}

/// The custom fields of the screen of `path`'s records (a list path such as `company/companies`).
pub fn screen(context: &PushContext, path: &str) -> Result<Screen, ConnectorError> {
    let sample = context.get_cached(&format!("{path}?pageSize=1&fields=id,customFields"))?;
    if let Some(record) = sample.as_array().and_then(|records| records.first()) {
        return Ok(Screen::Own(definitions_of(record)));
    }
    everywhere(context)
}

/// The custom fields of every screen (`system/userDefinedFields`).
pub fn everywhere(context: &PushContext) -> Result<Screen, ConnectorError> {
    let all = context
        .table("system/userDefinedFields")?
        .iter()
        .filter_map(|udf| definition_from(udf, "fieldTypeIdentifier"))
        .collect();
    Ok(Screen::Everywhere(all))
}

/// The `(id, value)` pairs the record's `extra` entries stand for (`null` clears a field), or one rejection
/// naming every entry that cannot be mapped. `prefix` is where `extra` sits in the record (`""`, `lines/2/`).
/// No request is made when there are no entries.
pub fn wanted(
    context: &PushContext,
    path: &str,
    extra: &[CustomField],
    prefix: &str,
) -> Result<Vec<(i64, Value)>, ConnectorError> {
    if extra.is_empty() {
        return Ok(Vec::new());
    }
    resolve(&screen(context, path)?, extra, prefix)
}

/// [`wanted`] against known definitions.
pub fn resolve(
    screen: &Screen,
    extra: &[CustomField],
    prefix: &str,
) -> Result<Vec<(i64, Value)>, ConnectorError> {
    let mut pairs: Vec<(i64, Value)> = Vec::new();
    let mut problems = Vec::new();
    for entry in extra {
        let field = format!("{prefix}extra/{}", entry.name);
        match definition(screen, entry.name.trim())
            .and_then(|d| Ok((d.id, typed(d, &entry.value)?)))
        {
            Ok((id, value)) => match pairs.iter_mut().find(|(held, _)| *held == id) {
                Some(_) => problems.push(FieldError {
                    field,
                    message: format!("custom field {id} is named by another extra entry too"),
                }),
                None => pairs.push((id, value)),
            },
            Err(message) => problems.push(FieldError { field, message }),
        }
    }
    if problems.is_empty() {
        Ok(pairs)
    } else {
        Err(ConnectorError::Rejected(problems))
    }
}

fn definition<'s>(screen: &'s Screen, name: &str) -> Result<&'s Definition, String> {
    let definitions = screen.definitions();
    if name.trim().is_empty() {
        // A blank name would match every field without a caption.
        return Err(
            "an extra entry needs a name: a ConnectWise custom field id or caption".to_string(),
        );
    }
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        let id: i64 = name
            .parse()
            .map_err(|_| format!("{name} is not a custom field id"))?;
        return definitions.iter().find(|d| d.id == id).ok_or_else(|| match screen {
            Screen::Own(_) => format!(
                "ConnectWise has no custom field {id} on this screen; name a field by its id or caption (see Setup Tables > Custom Fields)"
            ),
            Screen::Everywhere(_) => format!("ConnectWise has no custom field {id}"),
        });
    }
    let found: Vec<&Definition> = definitions
        .iter()
        .filter(|d| d.caption.trim().eq_ignore_ascii_case(name))
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(format!(
            "ConnectWise has no custom field captioned {name:?} here; name a field by its id or caption"
        )),
        several => {
            let ids: Vec<String> = several.iter().map(|d| d.id.to_string()).collect();
            Err(format!(
                "several ConnectWise custom fields are captioned {name:?} (ids {}); name the field by its id",
                ids.join(", ")
            ))
        }
    }
}

/// The value as the field's type takes it; `null` for an empty value (clears the field).
fn typed(definition: &Definition, value: &str) -> Result<Value, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(Value::Null);
    }
    let kind = definition.kind.as_str();
    match kind {
        "Number" | "Currency" | "Percent" => value
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(|n| json!(n))
            .ok_or_else(|| {
                format!(
                    "{value:?} is not a number, which {kind} field {} needs",
                    definition.id
                )
            }),
        "Checkbox" => match value.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(json!(true)),
            "false" | "no" | "0" => Ok(json!(false)),
            _ => Err(format!(
                "{value:?} is not true or false, which checkbox field {} needs",
                definition.id
            )),
        },
        "Date" => crate::fields::date("", &Some(value.to_string())).map_err(|_| {
            format!(
                "{value:?} is not a date (YYYY-MM-DD), which date field {} needs",
                definition.id
            )
        }),
        _ => Ok(json!(value)),
    }
}

/// The `customFields` body of a create: the fields with a value.
pub fn create_body(pairs: &[(i64, Value)]) -> Option<Value> {
    let fields: Vec<Value> = pairs
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(id, value)| json!({ "id": id, "value": value }))
        .collect();
    (!fields.is_empty()).then_some(Value::Array(fields))
}

/// The `customFields` list an update sends when `pairs` change anything: every value ConnectWise holds, with
/// `pairs` replacing theirs (`null` clears one). `None` when ConnectWise already holds them all.
pub fn merged(current: &Value, pairs: &[(i64, Value)]) -> Option<Value> {
    let held = held(current);
    let changed = pairs.iter().any(|(id, value)| {
        let now = held.iter().find(|(h, _)| h == id).map(|(_, v)| v);
        !crate::fields::same(now, value)
    });
    if !changed {
        return None;
    }
    let mut fields: Vec<(i64, Value)> = held
        .into_iter()
        .filter(|(id, _)| !pairs.iter().any(|(p, _)| p == id))
        .collect();
    fields.extend(pairs.iter().filter(|(_, v)| !v.is_null()).cloned());
    fields.sort_by_key(|(id, _)| *id);
    Some(Value::Array(
        fields
            .into_iter()
            .map(|(id, value)| json!({ "id": id, "value": value }))
            .collect(),
    ))
}

/// The custom fields of a record that hold a value, as `(id, value)`.
pub fn held(record: &Value) -> Vec<(i64, Value)> {
    record
        .get("customFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| {
            let value = f.get("value").filter(|v| !v.is_null())?;
            if value.as_str() == Some("") {
                return None;
            }
            Some((f.get("id")?.as_i64()?, value.clone()))
        })
        .collect()
}

/// A pulled record's custom fields with a value, as `extra` entries named by caption (by id when it has none).
pub fn to_extra(record: &Value) -> Vec<CustomField> {
    record
        .get("customFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| {
            let value = match f.get("value")? {
                Value::Null => return None,
                Value::String(s) if s.is_empty() => return None,
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => match n.as_f64() {
                    Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
                    _ => n.to_string(),
                },
                other => other.to_string(),
            };
            let caption = f
                .get("caption")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim();
            let name = if caption.is_empty() {
                f.get("id")?.as_i64()?.to_string()
            } else {
                caption.to_string()
            };
            Some(CustomField { name, value })
        })
        .collect()
}

/// A rejection for an entity ConnectWise keeps no custom fields on, naming every entry.
pub fn unsupported(extra: &[CustomField], what: &str) -> Result<(), ConnectorError> {
    if extra.is_empty() {
        return Ok(());
    }
    Err(ConnectorError::Rejected(
        extra
            .iter()
            .map(|e| FieldError {
                field: format!("extra/{}", e.name),
                message: format!(
                    "ConnectWise {what} have no custom fields, so this entry cannot be sent"
                ),
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs() -> Screen {
        Screen::Own(vec![
            Definition {
                id: 3,
                caption: "Region".into(),
                kind: "Text".into(),
            },
            Definition {
                id: 4,
                caption: "Seats".into(),
                kind: "Number".into(),
            },
            Definition {
                id: 5,
                caption: "Managed".into(),
                kind: "Checkbox".into(),
            },
            Definition {
                id: 6,
                caption: "Renewal Date".into(),
                kind: "Date".into(),
            },
        ])
    }

    fn extra(name: &str, value: &str) -> CustomField {
        CustomField {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn names_are_ids_or_captions_and_values_take_the_fields_type() {
        let pairs = resolve(
            &defs(),
            &[
                extra("region", "West"),
                extra("4", "12"),
                extra("Managed", "yes"),
                extra("Renewal Date", "2026-09-01"),
                extra("3 ", ""),
            ],
            "",
        );
        // Region twice (by caption and by id): refused.
        let ConnectorError::Rejected(problems) = pairs.unwrap_err() else {
            panic!()
        };
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "extra/3 ");
        let pairs = resolve(
            &defs(),
            &[
                extra("region", "West"),
                extra("4", "12"),
                extra("Managed", "yes"),
                extra("Renewal Date", "2026-09-01"),
            ],
            "",
        )
        .unwrap();
        assert_eq!(
            pairs,
            vec![
                (3, json!("West")),
                (4, json!(12.0)),
                (5, json!(true)),
                (6, json!("2026-09-01T00:00:00Z"))
            ]
        );
    }

    #[test]
    fn unmappable_entries_are_named() {
        let everywhere = Screen::Everywhere(vec![
            Definition {
                id: 3,
                caption: "Region".into(),
                kind: "Text".into(),
            },
            Definition {
                id: 8,
                caption: "Region".into(),
                kind: "Text".into(),
            },
        ]);
        let ConnectorError::Rejected(problems) = resolve(
            &everywhere,
            &[
                extra("Region", "x"),
                extra("Colour", "red"),
                extra("99", "1"),
            ],
            "lines/0/",
        )
        .unwrap_err() else {
            panic!()
        };
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "lines/0/extra/Region",
                "lines/0/extra/Colour",
                "lines/0/extra/99"
            ]
        );
        assert!(
            problems[0].message.contains("ids 3, 8"),
            "{}",
            problems[0].message
        );
        let ConnectorError::Rejected(problems) =
            resolve(&defs(), &[extra("Seats", "many")], "").unwrap_err()
        else {
            panic!()
        };
        assert!(problems[0].message.contains("not a number"));
    }

    #[test]
    fn an_update_keeps_what_the_bss_does_not_send() {
        let current = json!({"customFields": [
            {"id": 3, "caption": "Region", "value": "East"},
            {"id": 4, "caption": "Seats", "value": 10},
            {"id": 5, "caption": "Managed"},
        ]});
        assert_eq!(merged(&current, &[(4, json!(10.0))]), None);
        assert_eq!(
            merged(&current, &[(4, json!(12.0)), (5, json!(true))]),
            Some(
                json!([{"id": 3, "value": "East"}, {"id": 4, "value": 12.0}, {"id": 5, "value": true}])
            )
        );
        assert_eq!(
            merged(&current, &[(3, Value::Null)]),
            Some(json!([{"id": 4, "value": 10}]))
        );
        assert_eq!(
            to_extra(&current),
            vec![extra("Region", "East"), extra("Seats", "10")]
        );
    }
}
