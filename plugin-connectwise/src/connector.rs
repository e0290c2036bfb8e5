//! The connector's entry points, one per export, over any [`Host`]. Each call reads the settings,
//! then dispatches by entity; records of a batch succeed or fail one by one.

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::Value;

use crate::client::{Client, encode, quote};
use crate::exports::{Choice, PullPage, PushOptions, Pushed};
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
    cache: RefCell<HashMap<String, Option<Value>>>,
}

impl<'h> PushContext<'h> {
    pub fn new(host: &'h dyn Host, settings: Settings, dry_run: bool) -> Self {
        PushContext {
            client: Client::new(host, &settings),
            settings,
            dry_run,
            cache: RefCell::default(),
        }
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

/// Reads one page forward (records with id above the token) of records changed at or after `since`.
pub fn pull_page(
    client: &Client,
    path: &str,
    since: Option<&str>,
    page_token: Option<&str>,
) -> Result<(Vec<Value>, Option<String>), ConnectorError> {
    let mut query = format!("pageSize={}", crate::client::PAGE_SIZE);
    if let Some(since) = since {
        query.push_str(&format!(
            "&conditions={}",
            encode(&format!("lastUpdated>=[{since}]"))
        ));
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
    let items = match client.check(&response)? {
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

pub fn push(
    host: &dyn Host,
    entity: Entity,
    records: Vec<Record>,
    options: PushOptions,
) -> Result<Vec<Result<Pushed, ConnectorError>>, ConnectorError> {
    let settings = Settings::read(host)?;
    let context = PushContext::new(host, settings, options.dry_run);
    let push_one: fn(&PushContext, &Record) -> Result<Pushed, ConnectorError> = match entity {
        Entity::Account => accounts::push,
        Entity::Contact => contacts::push,
        Entity::Product => products::push,
        Entity::Invoice => invoices::push,
        Entity::Order => orders::push,
        Entity::Payment => payments::push,
        Entity::Subscription => subscriptions::push,
    };
    Ok(records
        .iter()
        .map(|record| {
            if record.entity != entity {
                return Err(ConnectorError::Internal(format!(
                    "a {:?} record was handed to a {entity:?} push",
                    record.entity
                )));
            }
            push_one(&context, record)
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
