//! What runs did and what waits: read-only views of an instance's runs, one run's record
//! outcomes, and its retry queue, as the CLI and the API show them. Reads go through here so
//! neither front end reaches into the store, and a second store backend changes nothing above.

use crate::instances::{InstanceError, Instances};
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
