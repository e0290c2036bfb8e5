//! ConnectWise callbacks (`system/callbacks`) that deliver to the host's hook URL, kept at exactly
//! one per subscribed entity (since 1.3). Ours are the callbacks whose `url` is the hook URL,
//! listed with the condition `url='…'` and then compared exactly (ConnectWise compares condition
//! strings without regard to case); one is in place when it is active and has the entity's `type`,
//! level `owner`, `objectId` 1 and the description [`description`] gives. The missing are created
//! first, then every other callback of ours is deleted (duplicates included), so an interrupted call
//! is finished by the next; callbacks to any other URL are never touched. Orders and payments have no
//! ConnectWise callback type: they are left out, with a warning, and the host reads them on its
//! schedules.

use serde_json::{Value, json};

use crate::client::{Client, quote};
use crate::exports::Subscription;
use crate::fields::created_id;
use crate::host::Level;
use crate::push_context::rejected;
use crate::types::{ConnectorError, Entity};

const PATH: &str = "system/callbacks";
/// ConnectWise's level for callbacks on every record of a type.
const LEVEL: &str = "owner";
/// The placeholder object id of an `owner` callback.
const OBJECT_ID: i64 = 1;

/// The callback `type` ConnectWise sends an entity's changes under, if it has one.
pub fn remote_type(entity: Entity) -> Option<&'static str> {
    match entity {
        Entity::Account => Some("company"),
        Entity::Contact => Some("contact"),
        Entity::Subscription => Some("agreement"),
        Entity::Invoice => Some("invoice"),
        Entity::Product => Some("product"),
        Entity::Order | Entity::Payment => None,
    }
}

/// The BSS's name of an entity, as the contract spells it.
fn entity_name(entity: Entity) -> &'static str {
    match entity {
        Entity::Account => "account",
        Entity::Contact => "contact",
        Entity::Product => "product",
        Entity::Invoice => "invoice",
        Entity::Order => "order",
        Entity::Payment => "payment",
        Entity::Subscription => "subscription",
    }
}

/// The description of our callback for an entity.
pub fn description(entity: Entity) -> String {
    format!("BSS integration host: {}", entity_name(entity))
}

/// Whether `url` is an absolute http(s) URL with a host (and no user name), and nothing
/// ConnectWise would have to guess at (whitespace, control characters).
fn is_absolute_http(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        && !authority.is_empty()
        && !authority.starts_with(':')
        && !authority.contains('@')
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Whether a listed callback is the one we want for `entity`.
fn is_in_place(callback: &Value, entity: Entity, remote_type: &str) -> bool {
    let text = |field: &str| callback.get(field).and_then(Value::as_str).unwrap_or("");
    text("type").eq_ignore_ascii_case(remote_type)
        && text("level").eq_ignore_ascii_case(LEVEL)
        && callback.get("objectId").and_then(Value::as_i64) == Some(OBJECT_ID)
        && text("description") == description(entity)
        && !callback
            .get("inactiveFlag")
            .and_then(Value::as_bool)
            .unwrap_or(false)
}

/// Makes the callbacks delivering to `url` exactly one per entity of `entities` that ConnectWise
/// has a callback type for, and returns those.
pub fn subscribe(
    client: &Client,
    url: &str,
    entities: &[Entity],
) -> Result<Vec<Subscription>, ConnectorError> {
    let mut wanted: Vec<(Entity, &'static str)> = Vec::new();
    for &entity in entities {
        if wanted.iter().any(|(e, _)| *e == entity) {
            continue;
        }
        match remote_type(entity) {
            Some(remote_type) => wanted.push((entity, remote_type)),
            None => client.host().log(
                Level::Warn,
                &format!(
                    "ConnectWise has no callback for {} records: none is registered, and they are read on the schedules",
                    entity_name(entity)
                ),
            ),
        }
    }
    let ours: Vec<Value> = client
        .get_all(PATH, Some(&format!("url={}", quote(url))))?
        .into_iter()
        .filter(|c| c.get("url").and_then(Value::as_str) == Some(url))
        .collect();
    let id_of = |callback: &Value| callback.get("id").and_then(Value::as_i64);
    let mut kept: Vec<i64> = Vec::new();
    let mut subscriptions = Vec::new();
    for (entity, remote_type) in wanted {
        let found = ours
            .iter()
            .filter(|c| is_in_place(c, entity, remote_type))
            .find_map(id_of);
        let id = match found {
            Some(id) => {
                kept.push(id);
                id
            }
            None => {
                let created = client.post(
                    PATH,
                    &json!({
                        "url": url,
                        "objectId": OBJECT_ID,
                        "type": remote_type,
                        "level": LEVEL,
                        "description": description(entity),
                    }),
                )?;
                created_id(&created, "callback")?
            }
        };
        subscriptions.push(Subscription {
            entity,
            remote_type: remote_type.to_string(),
            remote_id: id.to_string(),
        });
    }
    for id in ours.iter().filter_map(id_of) {
        if !kept.contains(&id) {
            // Already gone (another call removed it) is as good as removed.
            client.delete_found(&format!("{PATH}/{id}"))?;
        }
    }
    Ok(subscriptions)
}

/// The `url` the host hands to `subscribe`, checked before anything is sent.
pub fn checked_url(url: &str) -> Result<&str, ConnectorError> {
    if is_absolute_http(url) {
        Ok(url)
    } else {
        Err(rejected(
            "url",
            format!("{url:?} is not an absolute http or https URL ConnectWise can deliver to"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeHost;

    const HOOK: &str = "https://bss.example.com/hooks/connectwise/inst-1";

    fn callback(id: i64, url: &str, kind: &str, description: &str) -> Value {
        json!({ "id": id, "url": url, "objectId": 1, "type": kind, "level": "owner",
                "description": description, "memberId": 7, "inactiveFlag": false })
    }

    fn subscribed(subscriptions: &[Subscription]) -> Vec<(Entity, &str, &str)> {
        subscriptions
            .iter()
            .map(|s| (s.entity, s.remote_type.as_str(), s.remote_id.as_str()))
            .collect()
    }

    #[test]
    fn subscribe_adds_the_missing_deletes_the_extras_and_leaves_other_urls_alone() {
        let host = FakeHost::new();
        let ours = "BSS integration host: account";
        host.insert(PATH, callback(1, HOOK, "company", ours));
        host.insert(PATH, callback(2, HOOK, "company", ours)); // a duplicate
        host.insert(PATH, callback(3, HOOK, "contact", "someone's old one"));
        host.insert(
            PATH,
            callback(4, HOOK, "ticket", "BSS integration host: ticket"),
        );
        host.insert(
            PATH,
            callback(5, "https://other.example.com/hook", "company", ours),
        );
        // The same text but for case: ConnectWise's condition matches it, and it is not ours.
        let upper = "https://bss.example.com/hooks/CONNECTWISE/inst-1";
        host.insert(PATH, callback(6, upper, "company", ours));
        let mut inactive = callback(7, HOOK, "agreement", "BSS integration host: subscription");
        inactive["inactiveFlag"] = json!(true);
        host.insert(PATH, inactive);

        let entities = [
            Entity::Account,
            Entity::Contact,
            Entity::Subscription,
            Entity::Order,
            Entity::Account,
        ];
        let subscriptions = subscribe(&host.client(), HOOK, &entities).unwrap();

        assert_eq!(
            subscribed(&subscriptions),
            [
                (Entity::Account, "company", "1"),
                (Entity::Contact, "contact", "1001"),
                (Entity::Subscription, "agreement", "1002"),
            ]
        );
        assert_eq!(
            host.writes(),
            [
                "POST system/callbacks",
                "POST system/callbacks",
                "DELETE system/callbacks/2",
                "DELETE system/callbacks/3",
                "DELETE system/callbacks/4",
                "DELETE system/callbacks/7",
            ]
        );
        assert_eq!(
            host.sent.borrow()[0].1,
            format!("system/callbacks?page=1&pageSize=1000&orderBy=id asc&conditions=url='{HOOK}'")
        );
        let posted = host.sent.borrow()[1].2.clone().unwrap();
        assert_eq!(
            posted,
            json!({ "url": HOOK, "objectId": 1, "type": "contact", "level": "owner",
                    "description": "BSS integration host: contact" })
        );
        let left: Vec<i64> = host
            .all(PATH)
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect();
        assert_eq!(left, [1, 5, 6, 1001, 1002]);
        let logs = host.logs.borrow();
        assert_eq!(logs.len(), 1, "{logs:?}");
        assert_eq!(logs[0].0, Level::Warn);
        assert!(logs[0].1.contains("order records"), "{logs:?}");
    }

    #[test]
    fn subscribe_is_idempotent() {
        let host = FakeHost::new();
        let entities = [
            Entity::Account,
            Entity::Contact,
            Entity::Invoice,
            Entity::Product,
        ];
        let first = subscribe(&host.client(), HOOK, &entities).unwrap();
        assert_eq!(host.writes().len(), 4);
        let types: Vec<&str> = first.iter().map(|s| s.remote_type.as_str()).collect();
        assert_eq!(types, ["company", "contact", "invoice", "product"]);

        let sent = host.sent.borrow().len();
        let again = subscribe(&host.client(), HOOK, &entities).unwrap();
        assert_eq!(again, first);
        assert_eq!(
            host.sent.borrow().len(),
            sent + 1,
            "one list, no writes: {:?}",
            host.requests()
        );
    }

    #[test]
    fn an_empty_list_unsubscribes_only_ours() {
        let host = FakeHost::new();
        subscribe(&host.client(), HOOK, &[Entity::Account, Entity::Contact]).unwrap();
        host.insert(
            PATH,
            callback(5, "https://other.example.com/hook", "company", "theirs"),
        );

        assert_eq!(subscribe(&host.client(), HOOK, &[]).unwrap(), []);
        assert_eq!(
            host.writes()[2..],
            [
                "DELETE system/callbacks/1001",
                "DELETE system/callbacks/1002"
            ]
        );
        let left: Vec<i64> = host
            .all(PATH)
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect();
        assert_eq!(left, [5]);
    }

    #[test]
    fn subscribe_pages_through_every_callback() {
        let host = FakeHost::new();
        let ours = "BSS integration host: account";
        for id in 1..=1001 {
            host.insert(PATH, callback(id, HOOK, "company", ours));
        }
        let subscriptions = subscribe(&host.client(), HOOK, &[Entity::Account]).unwrap();
        assert_eq!(
            subscribed(&subscriptions),
            [(Entity::Account, "company", "1")]
        );
        let lists: Vec<String> = host
            .requests()
            .into_iter()
            .filter(|r| r.starts_with("GET "))
            .collect();
        assert_eq!(lists.len(), 2, "{lists:?}");
        assert!(lists[1].contains("page=2&"), "{lists:?}");
        assert_eq!(host.writes().len(), 1000);
        assert_eq!(
            host.writes().last().unwrap(),
            "DELETE system/callbacks/1001"
        );
        assert_eq!(host.all(PATH).len(), 1);
    }

    #[test]
    fn urls_that_are_not_absolute_http_are_refused() {
        for bad in [
            "",
            "/hooks/connectwise",
            "bss.example.com/hooks",
            "ftp://bss.example.com/hooks",
            "https://",
            "https:///hooks",
            "https://:443/hooks",
            "https://user@bss.example.com/hooks",
            "https://bss.example.com/hooks with space",
        ] {
            match checked_url(bad) {
                Err(ConnectorError::Rejected(fields)) => {
                    assert_eq!(fields[0].field, "url", "{bad:?}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        for good in [HOOK, "HTTP://bss.example.com:8080/h?instance=1"] {
            assert_eq!(checked_url(good), Ok(good));
        }
    }

    #[test]
    fn errors_stop_the_call_as_the_client_maps_them() {
        let host = FakeHost::new();
        host.fail.set(Some(401));
        assert!(matches!(
            subscribe(&host.client(), HOOK, &[Entity::Account]),
            Err(ConnectorError::Unauthorized(_))
        ));
        host.fail.set(Some(503));
        assert!(matches!(
            subscribe(&host.client(), HOOK, &[Entity::Account]),
            Err(ConnectorError::Transient(_))
        ));
    }
}
