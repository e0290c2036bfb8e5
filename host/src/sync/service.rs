//! Sync runs of an instance as the command and the API start them: read a record file and push
//! it, pull to a writer, retry the queue. Each builds the instance's context (refusing a
//! disabled instance) and runs the engine on the connector version serving it.

use std::io::Write;

use serde::Serialize;

use super::engine::{Engine, Pacing, Progress, PullReport, PushReport};
use super::records::{self, parse_file};
use crate::instances::{InstanceError, Instances};
use crate::runtime::manifest::Entity;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Instance(#[from] InstanceError),
    #[error(transparent)]
    Sync(#[from] super::SyncError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a retry run did, per entity.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RetryReport {
    pub claimed: usize,
    pub runs: Vec<(Entity, PushReport)>,
}

/// Parses an entity name as commands and routes write it.
pub fn parse_entity(text: &str) -> Result<Entity, InstanceError> {
    serde_json::from_value(serde_json::json!(text.trim().to_ascii_lowercase())).map_err(|_| {
        InstanceError::Invalid(vec![(
            "entity".into(),
            format!("{text:?} is not an entity (account, contact, product, invoice, order, payment, subscription)"),
        )])
    })
}

pub async fn push_text(
    instances: &Instances,
    name: &str,
    entity: Entity,
    text: &str,
    dry_run: bool,
    progress: Option<Progress<'_>>,
) -> Result<PushReport, RunError> {
    let (loaded, context) = instances.context(name)?;
    let (records, invalid) = parse_file(entity, text);
    let engine = Engine {
        store: instances.store().as_ref(),
        connector: &loaded.connector,
        pacing: Pacing::for_context(&context),
        context,
        progress,
    };
    Ok(engine
        .push(entity, records, invalid, dry_run, "push")
        .await?)
}

pub async fn pull_to(
    instances: &Instances,
    name: &str,
    entity: Entity,
    since: Option<String>,
    out: &mut (dyn Write + Send),
) -> Result<PullReport, RunError> {
    let (loaded, context) = instances.context(name)?;
    let engine = Engine {
        store: instances.store().as_ref(),
        connector: &loaded.connector,
        pacing: Pacing::for_context(&context),
        context,
        progress: None,
    };
    Ok(engine.pull(entity, since, out).await?)
}

/// Retries the instance's queue: claims its items (so a concurrent retry takes none of them),
/// pushes them entity by entity in dependency order, and releases what it did not settle.
pub async fn retry(
    instances: &Instances,
    name: &str,
    claimer: &str,
) -> Result<RetryReport, RunError> {
    let (loaded, context) = instances.context(name)?;
    let store = instances.store();
    let claimed = store.claim_queue(name, claimer)?;
    let mut report = RetryReport {
        claimed: claimed.len(),
        runs: Vec::new(),
    };
    let engine = Engine {
        store: store.as_ref(),
        connector: &loaded.connector,
        pacing: Pacing::for_context(&context),
        context,
        progress: None,
    };
    let result = async {
        for entity in Entity::DEPENDENCY_ORDER {
            let mut batch = Vec::new();
            let mut invalid = Vec::new();
            for (position, item) in claimed.iter().filter(|i| i.entity == entity).enumerate() {
                let value: serde_json::Value =
                    serde_json::from_str(&item.record).unwrap_or(serde_json::Value::Null);
                match records::parse_record(entity, value) {
                    Ok(record) => batch.push(record),
                    Err(message) => invalid.push(records::InvalidRecord {
                        position: position + 1,
                        id: Some(item.bss_id.clone()),
                        message,
                    }),
                }
            }
            if batch.is_empty() && invalid.is_empty() {
                continue;
            }
            let pushed = engine.push(entity, batch, invalid, false, "retry").await?;
            report.runs.push((entity, pushed));
        }
        Ok::<(), RunError>(())
    }
    .await;
    store.release_queue(name, claimer)?;
    result?;
    Ok(report)
}
