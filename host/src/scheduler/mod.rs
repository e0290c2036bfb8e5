//! What `serve` runs unattended, apart from the API: the schedules operators set (`schedules.rs`:
//! pulls into the change feed and retries, per instance and entity), checked every
//! [`TICK`]; the retry of every enabled instance's queue once a minute; and the pruning of
//! acknowledged feed entries. Every run takes its entity's lease, so none overlaps a manual run.

pub mod schedules;

use std::time::Duration;

use crate::instances::Instances;

/// How often `serve` retries the queues of enabled instances.
pub const RETRY_EVERY: Duration = Duration::from_secs(60);

/// How often `serve` looks for due schedules.
pub const TICK: Duration = Duration::from_secs(1);

/// Acknowledged feed entries are kept this long by default.
pub const FEED_RETENTION_DAYS: i64 = 7;

/// Starts the schedules, the scheduled retries and the feed pruning; they stop when the returned
/// tasks are aborted or the runtime ends.
pub fn start(
    instances: std::sync::Arc<Instances>,
    feed_retention_days: i64,
) -> Vec<tokio::task::JoinHandle<()>> {
    let schedules = {
        let instances = instances.clone();
        tokio::spawn(async move {
            let owner = crate::sync::lease::new_owner("serve-schedules");
            let mut last_prune: Option<std::time::Instant> = None;
            loop {
                match schedules::run_due(&instances, &owner).await {
                    Ok(runs) => {
                        for run in runs {
                            tracing::info!(
                                instance = run.instance,
                                schedule = run.target,
                                ok = run.ok,
                                "scheduled run: {}",
                                run.outcome
                            );
                        }
                    }
                    Err(error) => tracing::warn!("the schedules could not be read: {error}"),
                }
                if last_prune.is_none_or(|at| at.elapsed() > Duration::from_secs(3_600)) {
                    last_prune = Some(std::time::Instant::now());
                    let before = crate::time::rfc3339(
                        crate::time::now_unix() - feed_retention_days * 86_400,
                    );
                    match instances.store().prune_feed(&before) {
                        Ok(0) => {}
                        Ok(dropped) => tracing::info!(dropped, "acknowledged feed entries pruned"),
                        Err(error) => tracing::warn!("the feed could not be pruned: {error}"),
                    }
                }
                tokio::time::sleep(TICK).await;
            }
        })
    };
    vec![schedules, retry_queues(instances)]
}

/// Retries the queue of every enabled instance once a minute.
fn retry_queues(instances: std::sync::Arc<Instances>) -> tokio::task::JoinHandle<()> {
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
