//! The store behaviour every backend shares (`store/behaviour.rs`), run on SQLite files.

use super::*;
use crate::store::behaviour;
use crate::store::token_store::TokenStore;

fn opener(dir: &tempfile::TempDir) -> impl Fn() -> Box<dyn TokenStore> + '_ {
    move || Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
}

#[test]
fn token_names_are_unique_and_revocation_is_seen_by_every_handle() {
    let dir = tempfile::tempdir().unwrap();
    behaviour::token_names_are_unique_and_revocation_is_seen_by_every_handle(&opener(&dir));
}

#[test]
fn sessions_end_at_expiry_sign_out_and_revocation() {
    let dir = tempfile::tempdir().unwrap();
    behaviour::sessions_end_at_expiry_sign_out_and_revocation(&opener(&dir));
}

#[test]
fn a_build_keeps_its_first_manifest_and_versions_can_be_withdrawn() {
    let dir = tempfile::tempdir().unwrap();
    behaviour::a_build_keeps_its_first_manifest_and_versions_can_be_withdrawn(&|| {
        Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
    });
}

#[test]
fn events_of_one_instance_and_entity_are_claimed_apart_and_due_groups_listed() {
    let dir = tempfile::tempdir().unwrap();
    behaviour::events_of_one_instance_and_entity_are_claimed_apart_and_due_groups_listed(&|| {
        Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
    });
}

#[test]
fn callback_events_are_kept_once_and_claimed_once() {
    let dir = tempfile::tempdir().unwrap();
    behaviour::callback_events_are_kept_once_and_claimed_once(&|| {
        Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
    });
}

#[test]
fn a_hook_is_kept_replaced_and_removed_with_its_events() {
    let dir = tempfile::tempdir().unwrap();
    behaviour::a_hook_is_kept_replaced_and_removed_with_its_events(&|| {
        Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
    });
}

#[test]
fn instances_keep_settings_lookups_options_and_checks_across_handles() {
    let dir = tempfile::tempdir().unwrap();
    behaviour::instances_keep_settings_lookups_options_and_checks_across_handles(&|| {
        Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
    });
}

#[test]
fn a_request_budget_is_shared_by_every_handle() {
    let dir = tempfile::tempdir().unwrap();
    behaviour::a_request_budget_is_shared_by_every_handle(&|| {
        Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
    });
}

#[test]
fn trusted_keys_are_unique_and_a_removal_is_seen_by_every_handle() {
    let dir = tempfile::tempdir().unwrap();
    behaviour::trusted_keys_are_unique_and_a_removal_is_seen_by_every_handle(&|| {
        Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
    });
}

#[test]
fn the_audit_log_keeps_order_and_appends_a_once_key_once() {
    let dir = tempfile::tempdir().unwrap();
    behaviour::the_audit_log_keeps_order_and_appends_a_once_key_once(&|| {
        Box::new(SqliteStore::open(&dir.path().join("bss.db")).unwrap())
    });
}
