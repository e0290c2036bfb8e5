//! The connector's entry points, one per export, over any [`Host`]. Each call reads the settings,
//! then dispatches by entity; records of a batch (`push`, `remove`) succeed or fail one by one. The entity modules
//! never import this one: what they share is in [`crate::push_context`] and [`crate::paging`].

use crate::client::{Client, record_id};
use crate::exports::{Choice, PullPage, PushItem, PushOptions, Pushed, Removal, Subscription};
use crate::host::Host;
use crate::push_context::PushContext;
use crate::settings::Settings;
use crate::types::{ConnectorError, Entity, PulledRecord, Record};
use crate::{
    accounts, activate as activation, callbacks, choices, contacts, invoices, orders, payments,
    products, subscriptions,
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

/// One entity's fetch of one record by ConnectWise id.
type FetchOne = fn(&Client, i64) -> Result<Option<PulledRecord>, ConnectorError>;

/// One record, mapped as `pull` maps it, for the entities `pull` reads.
pub fn fetch(
    host: &dyn Host,
    entity: Entity,
    remote_id: &str,
) -> Result<Option<PulledRecord>, ConnectorError> {
    let fetch_one: FetchOne = match entity {
        Entity::Account => accounts::fetch,
        Entity::Contact => contacts::fetch,
        other => {
            return Err(ConnectorError::Unsupported(format!(
                "fetching {other:?} records is not supported: the connector pulls only accounts and contacts"
            )));
        }
    };
    let id = record_id(remote_id)?;
    let settings = Settings::read(host)?;
    fetch_one(&Client::new(host, &settings), id)
}

/// ConnectWise's callbacks to `url`, made one per entity (see [`callbacks`]).
pub fn subscribe(
    host: &dyn Host,
    url: &str,
    entities: &[Entity],
) -> Result<Vec<Subscription>, ConnectorError> {
    let url = callbacks::checked_url(url)?;
    let settings = Settings::read(host)?;
    callbacks::subscribe(&Client::new(host, &settings), url, entities)
}

/// One entity's removal of one record by ConnectWise id, dry run or not.
type RemoveOne = fn(&Client, i64, bool) -> Result<Removal, ConnectorError>;

/// Deletes contacts and deactivates (soft-deletes) companies, one result per remote id. Nothing
/// else is removed: invoices and payments are money records, and the other entities are only ever
/// created and updated by the connector.
pub fn remove(
    host: &dyn Host,
    entity: Entity,
    remote_ids: &[String],
    options: PushOptions,
) -> Result<Vec<Result<Removal, ConnectorError>>, ConnectorError> {
    let remove_one: RemoveOne = match entity {
        Entity::Account => accounts::remove,
        Entity::Contact => contacts::remove,
        Entity::Invoice | Entity::Payment => {
            return Err(ConnectorError::Unsupported(format!(
                "removing {entity:?} records is not supported: invoices and payments are money records, which the connector never deletes"
            )));
        }
        other => {
            return Err(ConnectorError::Unsupported(format!(
                "removing {other:?} records is not supported: the connector removes only accounts and contacts"
            )));
        }
    };
    let settings = Settings::read(host)?;
    let client = Client::new(host, &settings);
    Ok(remote_ids
        .iter()
        .map(|remote_id| {
            record_id(remote_id).and_then(|id| remove_one(&client, id, options.dry_run))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exports::ConflictPolicy;
    use crate::fake::FakeHost;

    fn options(dry_run: bool) -> PushOptions {
        PushOptions {
            dry_run,
            conflicts: ConflictPolicy::BssWins,
        }
    }

    #[test]
    fn a_malformed_remote_id_is_refused_before_anything_is_sent() {
        let host = FakeHost::new();
        for bad in ["", "abc", "12/../13", "-1", " 12"] {
            match fetch(&host, Entity::Account, bad) {
                Err(ConnectorError::Rejected(fields)) => {
                    assert_eq!(fields[0].field, "remote-id", "{bad:?}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert!(host.sent.borrow().is_empty());

        // In a removal, only that record fails: the others are still removed, in order.
        host.insert(
            "company/contacts",
            serde_json::json!({ "id": 31, "firstName": "Ada" }),
        );
        let ids = ["x1".to_string(), "31".to_string()];
        let outcomes = remove(&host, Entity::Contact, &ids, options(false)).unwrap();
        assert!(
            matches!(&outcomes[0], Err(ConnectorError::Rejected(f)) if f[0].field == "remote-id"),
            "{outcomes:?}"
        );
        assert_eq!(outcomes[1], Ok(Removal::Deleted));
        assert_eq!(host.requests(), ["DELETE company/contacts/31"]);
    }

    #[test]
    fn a_url_that_is_not_absolute_http_is_refused_before_anything_is_sent() {
        let host = FakeHost::new();
        for bad in ["/hooks/connectwise", "ftp://bss.example.com/hooks"] {
            match subscribe(&host, bad, &[Entity::Account]) {
                Err(ConnectorError::Rejected(fields)) => {
                    assert_eq!(fields[0].field, "url", "{bad:?}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert!(host.sent.borrow().is_empty());
    }

    #[test]
    fn entities_pull_does_not_read_cannot_be_fetched() {
        let host = FakeHost::new();
        for entity in [
            Entity::Product,
            Entity::Invoice,
            Entity::Order,
            Entity::Payment,
            Entity::Subscription,
        ] {
            assert!(
                matches!(
                    fetch(&host, entity, "1"),
                    Err(ConnectorError::Unsupported(_))
                ),
                "{entity:?}"
            );
        }
        assert!(host.sent.borrow().is_empty());
    }

    #[test]
    fn only_accounts_and_contacts_are_removed() {
        let host = FakeHost::new();
        let ids = ["1".to_string()];
        for entity in [Entity::Invoice, Entity::Payment] {
            match remove(&host, entity, &ids, options(false)) {
                Err(ConnectorError::Unsupported(message)) => {
                    assert!(message.contains(&format!("{entity:?}")), "{message}");
                    assert!(message.contains("money records"), "{message}");
                }
                other => panic!("{entity:?}: {other:?}"),
            }
        }
        for entity in [Entity::Product, Entity::Order, Entity::Subscription] {
            match remove(&host, entity, &ids, options(false)) {
                Err(ConnectorError::Unsupported(message)) => {
                    assert!(message.contains(&format!("{entity:?}")), "{message}")
                }
                other => panic!("{entity:?}: {other:?}"),
            }
        }
        assert!(host.sent.borrow().is_empty());
    }

    #[test]
    fn errors_map_as_the_client_maps_them() {
        let host = FakeHost::new();
        host.fail.set(Some(401));
        assert!(matches!(
            fetch(&host, Entity::Account, "250"),
            Err(ConnectorError::Unauthorized(_))
        ));
        host.fail.set(Some(503));
        assert!(matches!(
            fetch(&host, Entity::Contact, "31"),
            Err(ConnectorError::Transient(_))
        ));
        // Per record in a removal; after a 429 the rest are not sent.
        host.fail.set(Some(403));
        let ids = ["31".to_string(), "32".to_string()];
        let outcomes = remove(&host, Entity::Contact, &ids, options(false)).unwrap();
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Err(ConnectorError::Forbidden(_)))),
            "{outcomes:?}"
        );
        host.fail.set(Some(429));
        let sent = host.sent.borrow().len();
        let outcomes = remove(&host, Entity::Account, &ids, options(false)).unwrap();
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Err(ConnectorError::RateLimited(_)))),
            "{outcomes:?}"
        );
        assert_eq!(host.sent.borrow().len(), sent + 1);
    }
}
