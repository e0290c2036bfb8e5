//! What pushing one record needs, shared by every entity module: the call's [`PushContext`]
//! (client, settings, conflict policy, setup tables looked up once), the references the host
//! resolved, rejections named by field, and [`update_fields`], the one "read, merge three ways,
//! patch what changed" tail of an update.

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::Value;

use crate::client::{Client, quote};
use crate::exports::{ConflictPolicy, PushOptions, Pushed};
use crate::host::Host;
use crate::settings::Settings;
use crate::types::{ConnectorError, Entity, FieldError, MissingReference, Record};

/// What one push call shares across its records: the client, settings, and look-ups of setup
/// tables already made (countries, states, communication types).
pub struct PushContext<'h> {
    pub client: Client<'h>,
    pub settings: Settings,
    pub dry_run: bool,
    /// Who wins a field both sides changed since the last push.
    pub conflicts: ConflictPolicy,
    cache: RefCell<HashMap<String, Option<Value>>>,
}

impl<'h> PushContext<'h> {
    pub fn new(host: &'h dyn Host, settings: Settings, options: PushOptions) -> Self {
        PushContext {
            client: Client::new(host, &settings),
            settings,
            dry_run: options.dry_run,
            conflicts: options.conflicts,
            cache: RefCell::default(),
        }
    }

    /// A fresh three-way merge of `record` against its last push, under this call's policy.
    pub fn merge(&self, record: &Record, base: Option<&Record>) -> crate::fields::Merge {
        crate::fields::Merge::new(self.conflicts).comparing(record, base)
    }

    pub fn host(&self) -> &'h dyn Host {
        self.client.host()
    }

    /// The first record of `path` whose `field` equals `value`, remembered for the rest of the call.
    pub fn find_by(
        &self,
        path: &str,
        field: &str,
        value: &str,
    ) -> Result<Option<Value>, ConnectorError> {
        let key = format!("{path}|{field}|{value}");
        if let Some(found) = self.cache.borrow().get(&key) {
            return Ok(found.clone());
        }
        let found = self
            .client
            .find(path, &format!("{field}={}", quote(value)))?;
        self.cache.borrow_mut().insert(key, found.clone());
        Ok(found)
    }

    /// One record, remembered for the rest of the call.
    pub fn get_cached(&self, path: &str) -> Result<Value, ConnectorError> {
        if let Some(Some(found)) = self.cache.borrow().get(path) {
            return Ok(found.clone());
        }
        let found = self.client.get(path)?;
        self.cache
            .borrow_mut()
            .insert(path.to_string(), Some(found.clone()));
        Ok(found)
    }

    /// Every record of a setup table, remembered for the rest of the call.
    pub fn table(&self, path: &str) -> Result<Vec<Value>, ConnectorError> {
        let key = format!("{path}|*");
        if let Some(Some(Value::Array(items))) = self.cache.borrow().get(&key) {
            return Ok(items.clone());
        }
        let items = self.client.get_all(path, None)?;
        self.cache
            .borrow_mut()
            .insert(key, Some(Value::Array(items.clone())));
        Ok(items)
    }

    /// The remote id of a lookup's mapping for `bss_value`, or a rejection naming the field.
    pub fn lookup_id(
        &self,
        lookup: &str,
        label: &str,
        field: &str,
        bss_value: &str,
    ) -> Result<i64, ConnectorError> {
        let mapped = self.host().lookup(lookup, bss_value).ok_or_else(|| {
            rejected(field, format!("{bss_value:?} is not mapped in lookup {label}; map it in the instance's lookups"))
        })?;
        mapped.trim().parse::<i64>().map_err(|_| {
            rejected(
                field,
                format!(
                    "lookup {label} maps {bss_value:?} to {mapped:?}, which is not a ConnectWise id"
                ),
            )
        })
    }
}

/// What the BSS wants of a record that ConnectWise keeps as plain fields and custom fields.
pub struct Wanted {
    pub fields: serde_json::Map<String, Value>,
    pub custom: Vec<(i64, Value)>,
}

/// Patches the record at `path` (ConnectWise's `current` copy) with the fields the BSS changed
/// since `base` (its last push, mapped as now), under the call's conflict policy (see
/// [`crate::fields::Merge`]). For entities the connector does not pull, so nothing is stored for
/// echo detection.
pub fn update_fields(
    context: &PushContext,
    mut merge: crate::fields::Merge,
    (path, current): (&str, &Value),
    remote_id: &str,
    (wanted, base): (&Wanted, Option<&Wanted>),
    names: &[(&str, &str)],
) -> Result<Pushed, ConnectorError> {
    let owned = merge.owned(current, &wanted.fields, base.map(|b| &b.fields), names);
    let mut operations = crate::fields::patch(current, &owned);
    let custom = merge.owned_custom(current, &wanted.custom, base.map(|b| b.custom.as_slice()));
    if let Some(fields) = crate::custom::merged(current, &custom) {
        operations
            .push(serde_json::json!({ "op": "replace", "path": "customFields", "value": fields }));
    }
    let change = if operations.is_empty() {
        crate::exports::Change::Unchanged
    } else {
        crate::exports::Change::Updated
    };
    if !merge.held() && !operations.is_empty() && !context.dry_run {
        context.client.patch(path, &operations)?;
    }
    Ok(merge.answer(change, remote_id, None))
}

/// A one-field rejection.
pub fn rejected(field: &str, message: String) -> ConnectorError {
    ConnectorError::Rejected(vec![FieldError {
        field: field.to_string(),
        message,
    }])
}

/// The remote id the host resolved for a reference field, or an error naming the missing record.
/// `None` when the record references nothing there.
pub fn resolved(
    record: &Record,
    field: &str,
    entity: Entity,
    bss_id: Option<&String>,
) -> Result<Option<i64>, ConnectorError> {
    let Some(bss_id) = bss_id else {
        return Ok(None);
    };
    let reference = record
        .references
        .iter()
        .find(|r| r.field == field && r.bss_id == *bss_id);
    match reference.and_then(|r| r.remote_id.trim().parse::<i64>().ok()) {
        Some(id) => Ok(Some(id)),
        None => Err(ConnectorError::MissingReference(MissingReference {
            field: field.to_string(),
            entity,
            bss_id: bss_id.clone(),
        })),
    }
}

/// The remote id of the `entity` record `bss_id`, resolved by the host under any field name
/// (lines reference products as `lines/N/product`), or an error naming it as `field`.
pub fn resolved_record(
    record: &Record,
    field: &str,
    entity: Entity,
    bss_id: &str,
) -> Result<i64, ConnectorError> {
    record
        .references
        .iter()
        .filter(|r| r.entity == entity && r.bss_id == bss_id)
        .find_map(|r| r.remote_id.trim().parse::<i64>().ok())
        .ok_or_else(|| {
            ConnectorError::MissingReference(MissingReference {
                field: field.to_string(),
                entity,
                bss_id: bss_id.to_string(),
            })
        })
}

/// Renames the ConnectWise field paths of a rejection to the BSS fields they came from.
pub fn rename_fields(error: ConnectorError, names: &[(&str, &str)]) -> ConnectorError {
    match error {
        ConnectorError::Rejected(fields) => ConnectorError::Rejected(
            fields
                .into_iter()
                .map(|mut f| {
                    let remote = f.field.trim_end_matches("/id");
                    if let Some((_, bss)) =
                        names.iter().find(|(r, _)| *r == remote || *r == f.field)
                    {
                        f.field = bss.to_string();
                    }
                    f
                })
                .collect(),
        ),
        other => other,
    }
}
