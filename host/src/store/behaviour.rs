//! What every store backend must do alike, as tests written once and run on each backend (the
//! SQLite file and a PostgreSQL scratch database). Each takes a way to open another handle on the
//! same store, as another process would.

use super::token_store::{Role, TokenRow, TokenStore};
use super::{ConnectorVersion, RegistryStore, StoreError};

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
