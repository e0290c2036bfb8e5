//! The connector's entry points, one per export, over any [`Host`]. Each call reads the settings,
//! then dispatches by entity; records of a batch succeed or fail one by one. The entity modules
//! never import this one: what they share is in [`crate::push_context`] and [`crate::paging`].

use crate::client::Client;
use crate::exports::{Choice, PullPage, PushItem, PushOptions, Pushed};
use crate::host::Host;
use crate::push_context::PushContext;
use crate::settings::Settings;
use crate::types::{ConnectorError, Entity, Record};
use crate::{
    accounts, activate as activation, choices, contacts, invoices, orders, payments, products,
    subscriptions,
};

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
