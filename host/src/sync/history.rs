//! What runs did and what waits: an instance's runs, one run's record outcomes, its retry queue,
//! and its change feed (read and acknowledged), as the CLI and the API show them. Reads go
//! through here so neither front end reaches into the store, and a second store backend changes
//! nothing above.

use serde::Serialize;

use crate::contract::manifest::Entity;
use crate::instances::{InstanceError, Instances};
use crate::store::schedule_store::FeedState;
use crate::store::{QueueItem, RunItem, RunRow};

/// The runs of an instance, oldest first.
pub fn runs(instances: &Instances, name: &str) -> Result<Vec<RunRow>, InstanceError> {
    Ok(instances.store().runs(name)?)
}

/// One run and the outcome of each record it handled; `None` when there is no such run.
pub fn run(
    instances: &Instances,
    run: i64,
) -> Result<Option<(RunRow, Vec<RunItem>)>, InstanceError> {
    Ok(instances.store().run(run)?)
}

/// The records of an instance waiting in the retry queue, in the order a retry sends them.
pub fn queue(instances: &Instances, name: &str) -> Result<Vec<QueueItem>, InstanceError> {
    Ok(instances.store().queue(name)?)
}

/// A change-feed entry as the CLI and the API give it: the record inline.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FeedLine {
    pub seq: i64,
    pub entity: Entity,
    pub remote_id: String,
    /// `changed` or `deleted`.
    pub change: String,
    /// The record as a pulled file holds it.
    pub record: serde_json::Value,
    pub run: Option<i64>,
    pub at: String,
}

/// Feed entries after `after` (after the acknowledged one when `None`), oldest first.
pub fn feed(
    instances: &Instances,
    name: &str,
    after: Option<i64>,
    limit: usize,
) -> Result<(Vec<FeedLine>, FeedState), InstanceError> {
    let store = instances.store();
    let state = store.feed_state(name)?;
    let entries = store.feed(name, after.unwrap_or(state.acknowledged), limit)?;
    let lines = entries
        .into_iter()
        .map(|e| FeedLine {
            seq: e.seq,
            entity: e.entity,
            remote_id: e.remote_id,
            change: e.change,
            record: serde_json::from_str(&e.record).unwrap_or(serde_json::Value::String(e.record)),
            run: e.run,
            at: e.at,
        })
        .collect();
    Ok((lines, state))
}

/// Acknowledges feed entries up to and including `upto`.
pub fn ack_feed(instances: &Instances, name: &str, upto: i64) -> Result<FeedState, InstanceError> {
    if upto < 0 {
        return Err(InstanceError::Invalid(vec![(
            "upto".into(),
            format!("{upto} is not a sequence number (0 or more)"),
        )]));
    }
    Ok(instances.store().ack_feed(name, upto)?)
}
