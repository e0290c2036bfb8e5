//! Finding what an earlier create may already have made. ConnectWise has no idempotency keys, so
//! every entity writes a key of its BSS record on create (an identifier, an `integrationXRef`, a
//! custom field, …) and, when the host says a create's outcome is unknown (`maybe-created`), looks
//! for records carrying that key before creating again. This module owns what the entities share:
//! when to search, choosing among candidates, recognising ConnectWise's "already in use" refusal,
//! and the two identity-conflict errors the host acts on. Both are a rejection of field `bss-id`
//! (the host keeps the record's pending mark and does not retry it by itself) whose message starts
//! with `ambiguous:` (several records may be this one) or `in use:` (a record holds this record's
//! unique value without carrying its key); each names the remote ids and the `bss-host link`
//! command that settles it.

use crate::types::{ConnectorError, FieldError, Record};

/// The field of an identity-conflict rejection.
pub const IDENTITY_FIELD: &str = "bss-id";

/// The record's remote id: the one the host knows or — only for a create whose earlier attempt
/// had an unknown outcome — what `search` finds. `None` means create.
pub fn remote_id_of(
    record: &Record,
    search: impl FnOnce() -> Result<Option<String>, ConnectorError>,
) -> Result<Option<String>, ConnectorError> {
    if let Some(id) = &record.remote_id {
        return Ok(Some(id.clone()));
    }
    if record.maybe_created {
        search()
    } else {
        Ok(None)
    }
}

/// What the host's `bss-host link` calls the entity.
pub fn entity_name(record: &Record) -> &'static str {
    use crate::types::Entity;
    match record.entity {
        Entity::Account => "account",
        Entity::Contact => "contact",
        Entity::Product => "product",
        Entity::Invoice => "invoice",
        Entity::Order => "order",
        Entity::Payment => "payment",
        Entity::Subscription => "subscription",
    }
}

fn conflict(message: String) -> ConnectorError {
    ConnectorError::Rejected(vec![FieldError {
        field: IDENTITY_FIELD.to_string(),
        message,
    }])
}

/// Several records may be this one: the host cannot tell, nor can the connector.
/// `what` is the plural shown to people ("payments"), `ids` remote ids as the entity writes them.
pub fn ambiguous(record: &Record, what: &str, ids: &[String]) -> ConnectorError {
    conflict(format!(
        "ambiguous: ConnectWise holds {} {what} that may be this one (ids {}); link the right one with bss-host link INSTANCE {} {} <id>",
        ids.len(),
        ids.join(", "),
        entity_name(record),
        record.bss_id,
    ))
}

/// A record holds this record's unique value (`held`, e.g. "identifier ACME-1") without carrying
/// its key: it may be someone else's, so it is not taken over.
pub fn in_use(record: &Record, what: &str, id: &str, held: &str) -> ConnectorError {
    conflict(format!(
        "in use: ConnectWise {what} {id} already has {held} and does not carry this record's key; if it is the same record, link it: bss-host link INSTANCE {} {} {id}",
        entity_name(record),
        record.bss_id,
    ))
}

/// The one candidate, none, or an `ambiguous:` rejection listing them all.
pub fn at_most_one(
    record: &Record,
    what: &str,
    candidates: Vec<String>,
) -> Result<Option<String>, ConnectorError> {
    match candidates.len() {
        0 => Ok(None),
        1 => Ok(candidates.into_iter().next()),
        _ => Err(ambiguous(record, what, &candidates)),
    }
}

/// Whether ConnectWise refused a create because `field`'s value is already used by another
/// record ("The identifier 'X' is already in use by Company 250.").
pub fn refused_as_in_use(error: &ConnectorError, field: &str) -> bool {
    let ConnectorError::Rejected(fields) = error else {
        return false;
    };
    fields.iter().any(|f| {
        let message = f.message.to_ascii_lowercase();
        f.field.trim_end_matches("/id") == field
            && (message.contains("already in use") || message.contains("already exists"))
    })
}
