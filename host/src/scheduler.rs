//! What `serve` runs unattended, apart from the API: today the retry of every enabled instance's
//! queue once a minute (each retry under its entity's lease, so it never overlaps a manual run).
//! Later schedules (per instance and entity) join here rather than in the API.

use std::time::Duration;

use crate::instances::Instances;

/// How often `serve` retries the queues of enabled instances.
pub const RETRY_EVERY: Duration = Duration::from_secs(60);

/// Starts the scheduled retries; they stop when the returned task is aborted or the runtime ends.
pub fn start(instances: std::sync::Arc<Instances>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let owner = crate::sync::lease::new_owner("serve");
        let by = crate::sync::service::RunBy {
            owner: &owner,
            who: "serve's scheduled retry",
            policy: crate::sync::lease::WaitPolicy::Refuse,
        };
        loop {
            tokio::time::sleep(RETRY_EVERY).await;
            let Ok(list) = instances.list() else { continue };
            for instance in list.into_iter().filter(|i| i.enabled) {
                if instances
                    .store()
                    .queue(&instance.name)
                    .map(|q| q.is_empty())
                    .unwrap_or(true)
                {
                    continue;
                }
                match crate::sync::service::retry(&instances, &instance.name, by).await {
                    Ok(report) => tracing::info!(
                        instance = instance.name,
                        claimed = report.claimed,
                        "scheduled retry"
                    ),
                    Err(error) => {
                        tracing::warn!(instance = instance.name, "scheduled retry failed: {error}")
                    }
                }
            }
        }
    })
}
