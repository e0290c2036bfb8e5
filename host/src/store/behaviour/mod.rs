//! What every store backend must do alike, as tests written once and run on each backend (the
//! SQLite file and a PostgreSQL scratch database). Each takes a way to open another handle on the
//! same store, as another process would.

pub mod jobs;
pub mod schedules;
pub mod sync;

use super::token_store::{Role, TokenRow, TokenStore};
use super::{
    CheckRow, ConnectorVersion, InstanceRow, InstanceStore, LookupRow, RegistryStore, StoreError,
    StoredValue,
};
use crate::contract::manifest::{Direction, Entity, Operations};

fn token(name: &str, hash: &str) -> TokenRow {
    TokenRow {
        name: name.into(),
        role: Role::Operator,
        hash: hash.into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        revoked_at: None,
    }
}

pub fn token_names_are_unique_and_revocation_is_seen_by_every_handle(
    open: &dyn Fn() -> Box<dyn TokenStore>,
) {
    let (store, other) = (open(), open());
    store.create_token(&token("night", "h-night")).unwrap();
    assert!(matches!(
        other.create_token(&token("night", "h-other")),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        other.token_by_hash("h-night").unwrap().unwrap().role,
        Role::Operator
    );
    assert!(other.revoke_token("night").unwrap());
    assert!(!store.revoke_token("night").unwrap(), "revoked once");
    assert_eq!(store.token_by_hash("h-night").unwrap(), None);
    let listed = store.tokens().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0].revoked_at.is_some(),
        "a revoked token stays listed"
    );
}

pub fn sessions_end_at_expiry_sign_out_and_revocation(open: &dyn Fn() -> Box<dyn TokenStore>) {
    let (store, other) = (open(), open());
    store.create_token(&token("night", "h-night")).unwrap();
    store.create_token(&token("day", "h-day")).unwrap();
    store.create_session("s1", "night", "csrf1", 1_000).unwrap();
    store.create_session("s2", "night", "csrf2", 2_000).unwrap();
    store.create_session("s3", "day", "csrf3", 2_000).unwrap();
    let found = store.session("s1", 999).unwrap().expect("unexpired");
    assert_eq!(
        (
            found.token.name.as_str(),
            found.token.role,
            found.csrf.as_str()
        ),
        ("night", Role::Operator, "csrf1")
    );
    assert_eq!(
        store.session("s1", 1_000).unwrap(),
        None,
        "expired at its time"
    );
    assert_eq!(store.session("nope", 0).unwrap(), None);
    assert!(other.session("s3", 0).unwrap().is_some());
    other.end_session("s3").unwrap();
    assert_eq!(store.session("s3", 0).unwrap(), None, "signed out");
    other.end_session("s3").unwrap();
    assert!(store.session("s2", 0).unwrap().is_some());
    assert!(store.revoke_token("night").unwrap());
    assert_eq!(other.session("s2", 0).unwrap(), None, "revoked");
    assert_eq!(store.prune_sessions(1_500).unwrap(), 1, "s1 expired");
    assert_eq!(store.prune_sessions(1_500).unwrap(), 0);
}

fn version(hash: &str, manifest: &str) -> ConnectorVersion {
    ConnectorVersion {
        name: "fixture".into(),
        version: "0.1.0".into(),
        content_hash: hash.into(),
        source: "plugins/fixture.wasm".into(),
        manifest: manifest.into(),
        loaded_at: "2026-01-01T00:00:00Z".into(),
        withdrawn: false,
        signer: None,
    }
}

pub fn a_build_keeps_its_first_manifest_and_versions_can_be_withdrawn(
    open: &dyn Fn() -> Box<dyn RegistryStore>,
) {
    let (store, other) = (open(), open());
    store
        .record_connector_version(&version("h1", "first"))
        .unwrap();
    other
        .record_connector_version(&version("h1", "second"))
        .unwrap();
    let listed = store.connector_versions().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].manifest, "first",
        "the same build keeps its first manifest"
    );
    other
        .record_connector_version(&version("h2", "rebuilt"))
        .unwrap();
    assert_eq!(store.connector_versions().unwrap()[0].manifest, "rebuilt");
    store.set_withdrawn("fixture", "0.1.0", true).unwrap();
    assert!(other.connector_versions().unwrap()[0].withdrawn);
    assert_eq!(store.component_refusal("bad").unwrap(), None);
    other
        .record_component_refusal("bad", "not a component")
        .unwrap();
    assert_eq!(
        store.component_refusal("bad").unwrap().as_deref(),
        Some("not a component")
    );
}

pub(crate) fn instance(name: &str) -> InstanceRow {
    InstanceRow {
        name: name.into(),
        connector: "connectwise".into(),
        version_req: None,
        installation: "Main".into(),
        enabled: true,
        created_at: "2026-01-01T00:00:00Z".into(),
    }
}

pub fn instances_keep_settings_lookups_options_and_checks_across_handles(
    open: &dyn Fn() -> Box<dyn InstanceStore>,
) {
    let store = open();
    store.create_instance(&instance("acme")).unwrap();
    assert!(matches!(
        open().create_instance(&instance("acme")),
        Err(StoreError::DuplicateInstance(_))
    ));
    store
        .change_settings(
            "acme",
            &[
                ("url".into(), Some(StoredValue::Plain("x".into()))),
                ("k".into(), Some(StoredValue::Sealed("v1:zz".into()))),
                ("gone".into(), Some(StoredValue::Plain("y".into()))),
            ],
        )
        .unwrap();
    store
        .change_settings("acme", &[("gone".into(), None)])
        .unwrap();
    let push = Operations {
        create: true,
        update: true,
        delete: false,
    };
    store
        .set_sync_options("acme", &[(Entity::Account, Direction::Push, push)])
        .unwrap();
    let row = |bss: &str, remote: &str| LookupRow {
        bss_value: bss.into(),
        remote_value: remote.into(),
        pull_default: false,
    };
    store
        .set_lookup_rows(
            "acme",
            "currency",
            &[row("USD", "1"), row("EUR", "2"), row("GBP", "3")],
        )
        .unwrap();
    // An update keeps the row's place; removal takes only what is named.
    store
        .set_lookup_rows("acme", "currency", &[row("USD", "7")])
        .unwrap();
    store
        .remove_lookup_rows("acme", "currency", &["EUR".to_string()])
        .unwrap();
    store
        .record_check(
            "acme",
            &CheckRow {
                checked_at: "2026-01-01T00:00:00Z".into(),
                ok: false,
                summary: "bad".into(),
                problems: vec![("url".into(), "unreachable".into())],
            },
        )
        .unwrap();
    store.set_enabled("acme", false).unwrap();
    store.set_version_req("acme", Some("=0.2.0")).unwrap();

    let other = open();
    let row_now = other.instance("acme").unwrap().unwrap();
    assert!(!row_now.enabled);
    assert_eq!(row_now.version_req.as_deref(), Some("=0.2.0"));
    assert_eq!(other.instances().unwrap().len(), 1);
    let settings = other.settings("acme").unwrap();
    assert_eq!(settings.len(), 2);
    assert_eq!(settings["k"], StoredValue::Sealed("v1:zz".into()));
    assert_eq!(other.sealed_count().unwrap(), 1);
    assert_eq!(
        other.sync_options("acme").unwrap(),
        vec![(Entity::Account, Direction::Push, push)]
    );
    let currency: Vec<(String, String)> = other.lookups("acme").unwrap()["currency"]
        .iter()
        .map(|r| (r.bss_value.clone(), r.remote_value.clone()))
        .collect();
    assert_eq!(
        currency,
        vec![("USD".into(), "7".into()), ("GBP".into(), "3".into())]
    );
    let check = other.last_check("acme").unwrap().unwrap();
    assert_eq!(
        check.problems,
        vec![("url".to_string(), "unreachable".to_string())]
    );

    other.delete_instance("acme").unwrap();
    assert!(matches!(
        store.settings("acme"),
        Err(StoreError::NoInstance(_))
    ));
    assert!(matches!(
        store.change_settings("acme", &[("url".into(), None)]),
        Err(StoreError::NoInstance(_))
    ));
    assert!(matches!(
        store.delete_instance("acme"),
        Err(StoreError::NoInstance(_))
    ));
    assert!(matches!(
        store.set_enabled("acme", true),
        Err(StoreError::NoInstance(_))
    ));
    assert_eq!(
        store.sealed_count().unwrap(),
        0,
        "its settings went with it"
    );
}

pub fn a_request_budget_is_shared_by_every_handle(open: &dyn Fn() -> Box<dyn InstanceStore>) {
    let (first, second) = (open(), open());
    // A full bucket holds a minute's worth; what one process takes, the other cannot.
    assert_eq!(first.take_request_tokens("acme", 60, 45).unwrap(), 45);
    assert_eq!(second.take_request_tokens("acme", 60, 45).unwrap(), 15);
    assert_eq!(first.take_request_tokens("acme", 60, 1).unwrap(), 0);
    // Other instances have their own bucket; a lower limit caps what is left.
    assert_eq!(second.take_request_tokens("other", 600, 1000).unwrap(), 600);
    assert_eq!(first.take_request_tokens("other", 10, 1000).unwrap(), 0);
    // Many takers at once never spend more than the bucket holds.
    let taken: u32 = std::thread::scope(|scope| {
        let takers: Vec<_> = (0..8)
            .map(|_| {
                let store = open();
                scope.spawn(move || {
                    (0..10)
                        .map(|_| store.take_request_tokens("busy", 50, 1).unwrap())
                        .sum::<u32>()
                })
            })
            .collect();
        takers.into_iter().map(|t| t.join().unwrap()).sum()
    });
    assert!((50..=52).contains(&taken), "{taken} of a bucket of 50");
    // Tokens come back with time (at 6,000 a minute, 100 a second).
    assert_eq!(
        first.take_request_tokens("fast", 6_000, 6_000).unwrap(),
        6_000
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    let refilled = second.take_request_tokens("fast", 6_000, 6_000).unwrap();
    assert!((15..=60).contains(&refilled), "{refilled}");
}

/// Both parts a callback test needs.
pub trait HooksAndInstances: super::HookStore + InstanceStore {}
impl<T: super::HookStore + InstanceStore + ?Sized> HooksAndInstances for T {}

pub fn events_of_one_instance_and_entity_are_claimed_apart_and_due_groups_listed(
    open: &dyn Fn() -> Box<dyn HooksAndInstances>,
) {
    use super::hook_store::{Action, EventEnd};
    let store = open();
    for name in ["acme", "beta"] {
        store.create_instance(&instance(name)).unwrap();
    }
    let record = |name: &str, message: &str, entity: Entity| {
        assert!(
            store
                .record_event(name, message, entity, "7", Action::Updated)
                .unwrap()
        );
    };
    record("acme", "m1", Entity::Contact);
    record("acme", "m2", Entity::Contact);
    record("acme", "m3", Entity::Account);
    record("beta", "m4", Entity::Contact);
    let now = crate::time::now_unix() + 1;
    assert_eq!(
        store.due_event_groups(now).unwrap(),
        [
            ("acme".to_string(), Entity::Account),
            ("acme".to_string(), Entity::Contact),
            ("beta".to_string(), Entity::Contact)
        ]
    );
    let claimed = store
        .claim_events_of("j1", "acme", Entity::Contact, now, 10)
        .unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|e| (e.instance.as_str(), e.entity))
            .collect::<Vec<_>>(),
        [("acme", Entity::Contact), ("acme", Entity::Contact)]
    );
    assert!(
        store
            .claim_events_of("j2", "acme", Entity::Contact, now, 10)
            .unwrap()
            .is_empty(),
        "claimed once"
    );
    assert_eq!(
        store.due_event_groups(now).unwrap(),
        [
            ("acme".to_string(), Entity::Account),
            ("beta".to_string(), Entity::Contact)
        ],
        "claimed events are not due"
    );
    // One put off for later is due again at its time.
    store
        .finish_event(
            claimed[0].seq,
            "j1",
            &EventEnd::Later {
                reason: "busy".into(),
                next_try: now + 60,
            },
        )
        .unwrap();
    assert!(
        !store
            .due_event_groups(now)
            .unwrap()
            .contains(&("acme".to_string(), Entity::Contact))
    );
    assert!(
        store
            .due_event_groups(now + 60)
            .unwrap()
            .contains(&("acme".to_string(), Entity::Contact))
    );
}

pub fn callback_events_are_kept_once_and_claimed_once(
    open: &dyn Fn() -> Box<dyn HooksAndInstances>,
) {
    use super::hook_store::{Action, EVENT_CLAIM_SECS, EventEnd};
    let (store, other) = (open(), open());
    store.create_instance(&instance("acme")).unwrap();
    let record = |s: &dyn HooksAndInstances, message: &str, id: &str| {
        s.record_event("acme", message, Entity::Contact, id, Action::Updated)
            .unwrap()
    };
    assert!(record(store.as_ref(), "m1", "7"));
    assert!(
        !record(other.as_ref(), "m1", "7"),
        "a repeated delivery is not new"
    );
    assert!(
        record(store.as_ref(), "m2", "7"),
        "another message of the same record is"
    );
    let now = 10_000;
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| store.claim_events("a", now, 10).unwrap());
        let b = scope.spawn(|| other.claim_events("b", now, 10).unwrap());
        (a.join().unwrap(), b.join().unwrap())
    });
    let mut seqs: Vec<i64> = a.iter().chain(b.iter()).map(|e| e.seq).collect();
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), 2, "each event to one claimer, none left out");
    assert_eq!(a.len() + b.len(), 2);
    let held: Vec<(i64, &str)> = a
        .iter()
        .map(|e| (e.seq, "a"))
        .chain(b.iter().map(|e| (e.seq, "b")))
        .collect();
    let (seq, claimer) = held[0];
    let other_claimer = held[1].1;
    assert!(
        !store
            .finish_event(seq, "someone else", &EventEnd::Done("x".into()))
            .unwrap()
    );
    store
        .finish_event(
            seq,
            claimer,
            &EventEnd::Later {
                reason: "busy".into(),
                next_try: now + 2,
            },
        )
        .unwrap();
    let again = store.claim_events("c", now + 2, 10).unwrap();
    assert_eq!(again.iter().map(|e| e.seq).collect::<Vec<_>>(), [seq]);
    assert_eq!(again[0].attempts, 0, "busy is not an attempt");
    assert_eq!(
        store
            .renew_event_claims(other_claimer, now + EVENT_CLAIM_SECS)
            .unwrap(),
        1
    );
    assert!(
        store
            .claim_events("d", now + EVENT_CLAIM_SECS + 1, 10)
            .unwrap()
            .is_empty(),
        "renewed"
    );
    assert!(
        store
            .finish_event(seq, "c", &EventEnd::Failed("gone wrong".into()))
            .unwrap()
    );
    let lapsed = store
        .claim_events("d", now + 2 * EVENT_CLAIM_SECS + 1, 10)
        .unwrap();
    assert_eq!(lapsed.len(), 1, "the other event, not renewed since");
    assert_ne!(lapsed[0].seq, seq);
    assert!(
        !store
            .finish_event(lapsed[0].seq, other_claimer, &EventEnd::Done("late".into()))
            .unwrap(),
        "a lapsed claimer's end is not written"
    );
    let counts = store.event_counts(0).unwrap();
    assert_eq!(counts["acme"].failed, 1);
    assert_eq!(counts["acme"].last_error.as_deref(), Some("gone wrong"));
    assert_eq!(store.prune_events(i64::MAX).unwrap(), 1, "the finished one");
    assert_eq!(
        store.events("acme", 10).unwrap().len(),
        1,
        "the pending one stays"
    );
    assert!(matches!(
        store.events("nobody", 10),
        Err(StoreError::NoInstance(_))
    ));
}

pub fn a_hook_is_kept_replaced_and_removed_with_its_events(
    open: &dyn Fn() -> Box<dyn HooksAndInstances>,
) {
    use super::hook_store::{Action, HookRow, Registration};
    let (store, other) = (open(), open());
    let hook = |active: bool| HookRow {
        instance: "acme".into(),
        sealed_token: "v1:sealed".into(),
        public_url: "https://bss.example".into(),
        entities: vec![Entity::Account, Entity::Contact],
        registrations: vec![Registration {
            entity: Entity::Account,
            remote_type: "company".into(),
            remote_id: "11".into(),
        }],
        active,
        last_error: (!active).then(|| "unsubscribe failed".to_string()),
        updated_at: "2026-01-01T00:00:00Z".into(),
    };
    assert!(matches!(
        store.set_hook(&hook(true)),
        Err(StoreError::NoInstance(_))
    ));
    store.create_instance(&instance("acme")).unwrap();
    store.set_hook(&hook(true)).unwrap();
    other.set_hook(&hook(false)).unwrap();
    assert_eq!(store.hook("acme").unwrap(), Some(hook(false)), "replaced");
    assert_eq!(store.hooks().unwrap(), vec![hook(false)]);
    store
        .record_event("acme", "m1", Entity::Account, "11", Action::Deleted)
        .unwrap();
    assert!(other.remove_hook("acme").unwrap());
    assert!(!store.remove_hook("acme").unwrap());
    assert_eq!(store.hook("acme").unwrap(), None);
    assert!(
        store.events("acme", 10).unwrap().is_empty(),
        "its events went with it"
    );
}

fn trusted(name: &str, key: &str) -> crate::store::trust_store::TrustedKey {
    crate::store::trust_store::TrustedKey {
        name: name.into(),
        public_key: key.into(),
        key_id: format!("id-{name}"),
        connectors: "acme-*".into(),
        added_at: "2026-01-01T00:00:00Z".into(),
        added_by: "cli:test".into(),
    }
}

pub fn trusted_keys_are_unique_and_a_removal_is_seen_by_every_handle(
    open: &dyn Fn() -> Box<dyn crate::store::TrustStore>,
) {
    let (store, other) = (open(), open());
    store
        .add_trusted_key(&trusted("acme", "ed25519:A"))
        .unwrap();
    let Err(StoreError::Conflict(same_name)) = other.add_trusted_key(&trusted("acme", "ed25519:B"))
    else {
        panic!("a second key named acme was added");
    };
    assert!(same_name.contains("trust remove acme"), "{same_name}");
    let Err(StoreError::Conflict(same_key)) = other.add_trusted_key(&trusted("other", "ed25519:A"))
    else {
        panic!("one key was listed twice");
    };
    assert!(same_key.contains("as \"acme\""), "{same_key}");
    other
        .add_trusted_key(&trusted("beta", "ed25519:B"))
        .unwrap();
    let names: Vec<String> = store
        .trusted_keys()
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["acme", "beta"]);
    let removed = other.remove_trusted_key("acme").unwrap().expect("listed");
    assert_eq!(removed, trusted("acme", "ed25519:A"));
    assert_eq!(store.remove_trusted_key("acme").unwrap(), None);
    assert_eq!(
        store.trusted_keys().unwrap(),
        [trusted("beta", "ed25519:B")]
    );

    // Two handles adding the same keys at once, as two `trust add`s of two processes: one of each
    // pair is added, the other is told the name is taken (never a raw database error).
    let attempts = |handle: &dyn crate::store::TrustStore| -> Vec<Result<(), StoreError>> {
        (0..40)
            .map(|i| {
                handle.add_trusted_key(&trusted(&format!("race-{i}"), &format!("ed25519:R{i}")))
            })
            .collect()
    };
    let (mine, theirs) = std::thread::scope(|scope| {
        let mine = scope.spawn(|| attempts(&*store));
        let theirs = scope.spawn(|| attempts(&*other));
        (mine.join().unwrap(), theirs.join().unwrap())
    });
    for (i, pair) in mine.iter().zip(&theirs).enumerate() {
        match pair {
            (Ok(()), Err(StoreError::Conflict(_))) | (Err(StoreError::Conflict(_)), Ok(())) => {}
            other => panic!("race-{i}: {other:?}"),
        }
    }
    assert_eq!(store.trusted_keys().unwrap().len(), 41);
}

pub fn the_audit_log_keeps_order_and_appends_a_once_key_once(
    open: &dyn Fn() -> Box<dyn crate::store::TrustStore>,
) {
    use crate::store::trust_store::NewAuditEntry;
    let (store, other) = (open(), open());
    let entry = |action, once| NewAuditEntry {
        actor: "host",
        action,
        subject: "acme-crm 1.0.0",
        detail: "signed by k1",
        once,
    };
    assert!(
        store
            .append_audit(&entry("connector.loaded", Some("load:h1")))
            .unwrap()
    );
    assert!(
        !other
            .append_audit(&entry("connector.loaded", Some("load:h1")))
            .unwrap()
    );
    assert!(other.append_audit(&entry("trust.removed", None)).unwrap());
    assert!(store.append_audit(&entry("trust.removed", None)).unwrap());
    let all = other.audit_entries(0, 100).unwrap();
    let actions: Vec<&str> = all.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["connector.loaded", "trust.removed", "trust.removed"]
    );
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    let after_first = store.audit_entries(all[0].id, 1).unwrap();
    assert_eq!(after_first, [all[1].clone()]);
}
