//! The connector's entry points, one per export, over any [`Host`]. Each call reads the settings,
//! then dispatches by entity; records of a batch succeed or fail one by one.

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::Value;

use crate::client::{Client, encode, quote};
use crate::exports::{Choice, ConflictPolicy, PullPage, PushItem, PushOptions, Pushed};
use crate::host::Host;
use crate::settings::Settings;
use crate::types::{ConnectorError, Entity, FieldError, MissingReference, Record};
use crate::{
    accounts, activate as activation, choices, contacts, invoices, orders, payments, products,
    subscriptions,
};

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

/// Whether `text` is an RFC 3339 timestamp: `YYYY-MM-DDTHH:MM:SS`, optional fraction, then `Z` or
/// an offset `±HH:MM`.
pub fn is_timestamp(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    if b.len() < 20
        || !(digits(0..4) && digits(5..7) && digits(8..10) && digits(11..13))
        || !(digits(14..16) && digits(17..19))
        || (b[4], b[7], b[13], b[16]) != (b'-', b'-', b':', b':')
        || !matches!(b[10], b'T' | b't')
    {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// Reads one page forward (records with id above the token) of records changed at or after `since`.
/// The only condition sent is `lastUpdated>=[since]`, built from the cursor the host hands over and
/// nothing else (a pulled record's own stamp goes back to the host untouched, however it is
/// written); a cursor that is not an RFC 3339 timestamp is refused before anything is sent, and
/// conditions ConnectWise refuses come back as a rejection of field `conditions` naming them.
pub fn pull_page(
    client: &Client,
    path: &str,
    since: Option<&str>,
    page_token: Option<&str>,
) -> Result<(Vec<Value>, Option<String>), ConnectorError> {
    let mut query = format!("pageSize={}", crate::client::PAGE_SIZE);
    let mut conditions = None;
    if let Some(since) = since {
        if !is_timestamp(since) {
            return Err(ConnectorError::Internal(format!(
                "the pull cursor {since:?} is not an RFC 3339 timestamp; no conditions were sent to ConnectWise"
            )));
        }
        let text = format!("lastUpdated>=[{since}]");
        query.push_str(&format!("&conditions={}", encode(&text)));
        conditions = Some(text);
    }
    if let Some(token) = page_token {
        let id: i64 = token.parse().map_err(|_| {
            ConnectorError::Internal(format!(
                "page token {token:?} is not one this connector gave"
            ))
        })?;
        query.push_str(&format!("&pageId={id}"));
    }
    let url = format!("{}/{path}?{query}", client.api());
    let response = client.send_raw(
        crate::host::Method::Get,
        url,
        None,
        &[("pagination-type", "forward-only")],
    )?;
    let answer = match (client.check(&response), &conditions) {
        (Err(ConnectorError::Rejected(problems)), Some(conditions)) => {
            let said: Vec<String> = problems
                .iter()
                .map(|p| {
                    if p.field.is_empty() {
                        p.message.clone()
                    } else {
                        format!("{}: {}", p.field, p.message)
                    }
                })
                .collect();
            return Err(rejected(
                "conditions",
                format!(
                    "ConnectWise refused the conditions {conditions:?} of a {path} pull: {}",
                    said.join("; ")
                ),
            ));
        }
        (answer, _) => answer?,
    };
    let items = match answer {
        Value::Array(items) => items,
        other => {
            return Err(ConnectorError::Internal(format!(
                "ConnectWise answered {path} with {}",
                other
            )));
        }
    };
    let next = if items.len() < crate::client::PAGE_SIZE
        && crate::client::link_target(&response, "next").is_none()
    {
        None
    } else {
        items
            .last()
            .and_then(|r| r.get("id"))
            .and_then(Value::as_i64)
            .map(|id| id.to_string())
    };
    Ok((items, next))
}

pub fn activate(host: &dyn Host) -> Result<String, ConnectorError> {
    activation::activate(host)
}

pub fn lookup_choices(host: &dyn Host, key: &str) -> Result<Vec<Choice>, ConnectorError> {
    let settings = Settings::read(host)?;
    choices::lookup_choices(&Client::new(host, &settings), key)
}

/// One entity's push of one record, given what was last pushed for it (as a record).
type PushOne = fn(&PushContext, &Record, Option<&Record>) -> Result<Pushed, ConnectorError>;

pub fn push(
    host: &dyn Host,
    entity: Entity,
    items: Vec<PushItem>,
    options: PushOptions,
) -> Result<Vec<Result<Pushed, ConnectorError>>, ConnectorError> {
    let settings = Settings::read(host)?;
    let context = PushContext::new(host, settings, options);
    let push_one: PushOne = match entity {
        Entity::Account => accounts::push,
        Entity::Contact => contacts::push,
        Entity::Product => products::push,
        Entity::Invoice => invoices::push,
        Entity::Order => orders::push,
        Entity::Payment => payments::push,
        Entity::Subscription => subscriptions::push,
    };
    Ok(items
        .into_iter()
        .map(|item| {
            let record = item.record;
            if record.entity != entity {
                return Err(ConnectorError::Internal(format!(
                    "a {:?} record was handed to a {entity:?} push",
                    record.entity
                )));
            }
            let base = item.last_pushed.map(|last| Record {
                entity: record.entity,
                bss_id: record.bss_id.clone(),
                remote_id: record.remote_id.clone(),
                maybe_created: false,
                data: last.data,
                references: last.references,
            });
            push_one(&context, &record, base.as_ref())
        })
        .collect())
}

pub fn pull(
    host: &dyn Host,
    entity: Entity,
    since: Option<&str>,
    page_token: Option<&str>,
) -> Result<PullPage, ConnectorError> {
    let settings = Settings::read(host)?;
    let client = Client::new(host, &settings);
    match entity {
        Entity::Account => accounts::pull(&client, since, page_token),
        Entity::Contact => contacts::pull(&client, since, page_token),
        other => Err(ConnectorError::Unsupported(format!(
            "pulling {other:?} records is not supported"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::is_timestamp;

    #[test]
    fn cursors_must_be_timestamps() {
        for good in [
            "2026-01-31T12:00:00Z",
            "2026-01-31T12:00:00.123Z",
            "2026-01-31T12:00:00+01:00",
        ] {
            assert!(is_timestamp(good), "{good}");
        }
        for bad in [
            "2015-12-24T22: 08: 22Z",
            "2026-01-31",
            "2026-01-31T12:00:00",
            "2026-01-31T12:00:00Z] or id>[0",
            "2026-01-31 12:00:00Z",
            "",
        ] {
            assert!(!is_timestamp(bad), "{bad}");
        }
    }
}
