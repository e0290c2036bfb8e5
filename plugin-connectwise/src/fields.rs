//! Conversions between canonical BSS values and ConnectWise JSON: text, decimals (strings in the
//! BSS, numbers in ConnectWise), dates, the comparison an update uses to decide what changed, and
//! [`Merge`], the three-way rule deciding which fields an update may write.

use serde_json::{Map, Value, json};

use crate::exports::{Change, ConflictPolicy, OverwrittenValue, Pushed};
use crate::push_context::rejected;
use crate::types::{ConnectorError, PulledRecord, Record};

/// A `pushed` answer that overwrote nothing and has no stored copy.
pub fn pushed(change: Change, remote_id: impl Into<String>) -> Pushed {
    Pushed {
        change,
        remote_id: remote_id.into(),
        overwritten: Vec::new(),
        stored: None,
        warnings: Vec::new(),
    }
}

/// A ConnectWise value as a report says it: text as is, a reference by its name (or id).
pub fn value_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("name")
            .or_else(|| o.get("identifier"))
            .or_else(|| o.get("id"))
            .map(value_text)
            .unwrap_or_else(|| value.to_string()),
        other => other.to_string(),
    }
}

/// The three-way rule of one record's update. ConnectWise is where staff work, so an update
/// writes only what the BSS changed since its last push (`base`, the last push mapped the same
/// way): a field whose BSS value is unchanged keeps whatever ConnectWise has; a field the BSS
/// cleared is removed only if the last push had set it. When ConnectWise also changed such a
/// field since the last push, the policy decides: `bss-wins` writes the BSS value and lists the
/// remote one in `overwritten`; `report` writes nothing of the record and answers `held`. With no
/// base (a record mapped before bases were kept, or linked by hand) what differs is written and
/// nothing is removed.
pub struct Merge {
    /// Said to the admin with the record's outcome.
    pub warnings: Vec<String>,
    hold_conflicts: bool,
    overwritten: Vec<OverwrittenValue>,
    conflicts: usize,
    /// The new and last-pushed records in canonical form: a field whose BSS value changed is the
    /// BSS's change even when both map alike now (a lookup or setting changed in between).
    canonical: Option<(Value, Value)>,
}

/// The fields of a record's data as JSON (`{"account": {...}}` unwrapped).
fn canonical_fields(record: &Record) -> Value {
    match serde_json::to_value(&record.data) {
        Ok(Value::Object(outer)) => outer.into_iter().next().map(|(_, v)| v).unwrap_or_default(),
        _ => Value::Null,
    }
}

/// The value at a canonical field path (`billing-address/city`), blank as null.
fn at_path<'v>(data: &'v Value, path: &str) -> Option<&'v Value> {
    let mut at = data;
    // Generated types serialise fields by their Rust names (`billing_address`).
    for part in path.split('/') {
        at = at.get(part.replace('-', "_").as_str())?;
    }
    (!(at.is_null() || at.as_str() == Some(""))).then_some(at)
}

impl Merge {
    pub fn new(policy: ConflictPolicy) -> Self {
        Merge {
            warnings: Vec::new(),
            hold_conflicts: policy == ConflictPolicy::Report,
            overwritten: Vec::new(),
            conflicts: 0,
            canonical: None,
        }
    }

    /// Also compares the BSS's canonical fields of `record` and its last push `base`.
    pub fn comparing(mut self, record: &Record, base: Option<&Record>) -> Self {
        self.canonical = base.map(|base| (canonical_fields(record), canonical_fields(base)));
        self
    }

    /// Whether the BSS's value of canonical field `path` differs from the last push's.
    fn bss_changed(&self, path: &str) -> bool {
        self.canonical
            .as_ref()
            .is_some_and(|(new, base)| at_path(new, path) != at_path(base, path))
    }

    /// Whether one field is written, noting what it overwrites. `current` is ConnectWise's value,
    /// `desired` the BSS's, `base` the last push's (outer `None`: no base known).
    fn decide(
        &mut self,
        field: &str,
        current: Option<&Value>,
        desired: &Value,
        base: Option<&Value>,
    ) -> bool {
        let bss_changed = self.bss_changed(field);
        self.decide_changed(field, current, desired, base, bss_changed)
    }

    fn decide_changed(
        &mut self,
        field: &str,
        current: Option<&Value>,
        desired: &Value,
        base: Option<&Value>,
        bss_changed: bool,
    ) -> bool {
        if same(current, desired) {
            return false;
        }
        let remote = current.unwrap_or(&Value::Null);
        let empty = |v: &Value| v.is_null() || v.as_str() == Some("");
        match base {
            None => {
                if desired.is_null() {
                    return false;
                }
                if !empty(remote) {
                    self.overwritten.push(OverwrittenValue {
                        field: field.to_string(),
                        remote_value: value_text(remote),
                        last_pushed: None,
                    });
                }
                true
            }
            Some(base) => {
                if same(Some(base), desired) && !bss_changed {
                    return false;
                }
                if !same(current, base) {
                    self.conflicts += 1;
                    self.overwritten.push(OverwrittenValue {
                        field: field.to_string(),
                        remote_value: value_text(remote),
                        last_pushed: (!empty(base)).then(|| value_text(base)),
                    });
                }
                true
            }
        }
    }

    /// The fields of `desired` this update writes (null: remove), given ConnectWise's `current`
    /// record and the last push's fields; `names` turns ConnectWise field names into the BSS's for
    /// the report.
    pub fn owned(
        &mut self,
        current: &Value,
        desired: &Map<String, Value>,
        base: Option<&Map<String, Value>>,
        names: &[(&str, &str)],
    ) -> Map<String, Value> {
        desired
            .iter()
            .filter(|(field, value)| {
                let name = names
                    .iter()
                    .find(|(remote, _)| remote == field)
                    .map_or(field.as_str(), |(_, bss)| bss);
                let base_value = base.map(|b| b.get(field.as_str()).unwrap_or(&Value::Null));
                self.decide(name, current.get(field.as_str()), value, base_value)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The custom fields this update writes, as `(id, value)` (null: clear), from the BSS's
    /// `desired` ones, the last push's and ConnectWise's current ones.
    pub fn owned_custom(
        &mut self,
        current: &Value,
        desired: &[(i64, Value)],
        base: Option<&[(i64, Value)]>,
    ) -> Vec<(i64, Value)> {
        let held = crate::custom::held(current);
        let mut ids: Vec<i64> = desired.iter().map(|(id, _)| *id).collect();
        if let Some(base) = base {
            ids.extend(base.iter().map(|(id, _)| *id));
        }
        ids.sort_unstable();
        ids.dedup();
        let find = |pairs: &[(i64, Value)], id: i64| {
            pairs
                .iter()
                .find(|(p, _)| *p == id)
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Null)
        };
        ids.into_iter()
            .filter_map(|id| {
                let wanted = find(desired, id);
                let now = held.iter().find(|(h, _)| *h == id).map(|(_, v)| v);
                let base_value = base.map(|b| find(b, id));
                self.decide_changed(
                    &format!("extra (custom field {id})"),
                    now,
                    &wanted,
                    base_value.as_ref(),
                    false,
                )
                .then_some((id, wanted))
            })
            .collect()
    }

    /// Whether the record must not be written: it has conflicts and the policy is `report`.
    pub fn held(&self) -> bool {
        self.hold_conflicts && self.conflicts > 0
    }

    /// The answer for a record this merge decided: `held` (with the conflicting values) when
    /// [`Merge::held`], else `change` with what was overwritten.
    pub fn answer(
        self,
        change: Change,
        remote_id: impl ToString,
        stored: Option<PulledRecord>,
    ) -> Pushed {
        let change = if self.held() { Change::Held } else { change };
        Pushed {
            change,
            remote_id: remote_id.to_string(),
            overwritten: self.overwritten,
            stored,
            warnings: self.warnings,
        }
    }
}

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

    fn map(pairs: &[(&str, Value)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn an_update_writes_only_what_the_bss_changed() {
        let current =
            json!({"name": "Acme", "city": "Typed by staff", "phoneNumber": "555", "zip": "1"});
        let desired = map(&[
            ("name", json!("Acme Ltd")),
            ("city", Value::Null),
            ("phoneNumber", Value::Null),
            ("zip", json!("1")),
        ]);
        let base = map(&[
            ("name", json!("Acme")),
            ("city", Value::Null),
            ("phoneNumber", json!("555")),
            ("zip", json!("1")),
        ]);
        let mut merge = Merge::new(ConflictPolicy::BssWins);
        let owned = merge.owned(
            &current,
            &desired,
            Some(&base),
            &[("city", "billing-address/city")],
        );
        // name changed in the BSS; the phone the BSS had set was cleared; the city the BSS never
        // set stays as staff typed it.
        assert_eq!(
            owned,
            map(&[("name", json!("Acme Ltd")), ("phoneNumber", Value::Null)])
        );
        assert!(!merge.held());
        let answer = merge.answer(Change::Updated, 7, None);
        assert!(answer.overwritten.is_empty());

        // Without a base nothing is removed.
        let mut merge = Merge::new(ConflictPolicy::BssWins);
        let owned = merge.owned(&current, &desired, None, &[]);
        assert_eq!(owned, map(&[("name", json!("Acme Ltd"))]));
    }

    #[test]
    fn a_field_both_sides_changed_follows_the_policy() {
        let current = json!({"name": "Renamed by staff"});
        let desired = map(&[("name", json!("Renamed by BSS"))]);
        let base = map(&[("name", json!("Original"))]);
        let mut merge = Merge::new(ConflictPolicy::BssWins);
        assert_eq!(merge.owned(&current, &desired, Some(&base), &[]), desired);
        let answer = merge.answer(Change::Updated, 1, None);
        assert_eq!(answer.change, Change::Updated);
        assert_eq!(answer.overwritten[0].remote_value, "Renamed by staff");
        assert_eq!(
            answer.overwritten[0].last_pushed.as_deref(),
            Some("Original")
        );

        let mut merge = Merge::new(ConflictPolicy::Report);
        merge.owned(&current, &desired, Some(&base), &[]);
        assert!(merge.held());
        assert_eq!(merge.answer(Change::Updated, 1, None).change, Change::Held);
    }

    #[test]
    fn custom_fields_merge_three_ways() {
        let current =
            json!({"customFields": [{"id": 1, "value": "staff"}, {"id": 2, "value": "ours"}]});
        let mut merge = Merge::new(ConflictPolicy::BssWins);
        // Field 2 was ours and is gone from the BSS record: cleared. Field 1 the BSS never set.
        let owned = merge.owned_custom(&current, &[], Some(&[(2, json!("ours"))]));
        assert_eq!(owned, vec![(2, Value::Null)]);
        let owned = merge.owned_custom(&current, &[], None);
        assert!(owned.is_empty());
    }

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
