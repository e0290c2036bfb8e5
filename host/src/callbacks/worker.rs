//! Applying stored callback events: claims pending ones (one claimer each, across processes),
//! groups them by instance and entity, and applies each group as one run under the entity's
//! lease (`sync::service::apply_events`), renewing the batch's claims before each group. An entity
//! busy with another run is tried again in two
//! seconds without counting an attempt; a failure backs off (5 s doubling) and is given up after
//! `EVENT_MAX_ATTEMPTS`. The hook wakes the worker when it stores a new event; otherwise it looks
//! once per scheduler tick.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::contract::manifest::Entity;
use crate::instances::{InstanceError, Instances};
use crate::store::RunTrigger;
use crate::store::hook_store::{EventEnd, HookEvent};
use crate::sync::lease::{WaitPolicy, new_owner};
use crate::sync::remote_changes::{EVENT_MAX_ATTEMPTS, EventIn};
use crate::sync::service::{self, RunBy, RunError};

/// Events claimed at a time.
const BATCH: usize = 100;
/// How long an event waits when its entity is busy.
const BUSY_WAIT_SECS: i64 = 2;
/// How long an event waits while its instance is disabled.
const DISABLED_WAIT_SECS: i64 = 60;

fn wake_signal() -> &'static Notify {
    static WAKE: std::sync::OnceLock<Notify> = std::sync::OnceLock::new();
    WAKE.get_or_init(Notify::new)
}

/// Tells the worker a new event is stored.
pub fn wake() {
    wake_signal().notify_one();
}

/// Applies events until the task is aborted, waking on [`wake`] or every `tick`.
pub async fn run(instances: Arc<Instances>, tick: Duration) {
    let claimer = new_owner("callbacks");
    loop {
        match instances
            .store()
            .claim_events(&claimer, crate::time::now_unix(), BATCH)
        {
            Ok(events) if !events.is_empty() => {
                apply(&instances, &claimer, events).await;
                continue;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!("callback events could not be claimed: {error}"),
        }
        tokio::select! {
            _ = wake_signal().notified() => {}
            _ = tokio::time::sleep(tick) => {}
        }
    }
}

/// Applies claimed events, a run per instance and entity; returns how many were handled.
pub async fn apply(instances: &Instances, claimer: &str, events: Vec<HookEvent>) -> usize {
    let mut groups: BTreeMap<(String, Entity), Vec<HookEvent>> = BTreeMap::new();
    for event in events {
        groups
            .entry((event.instance.clone(), event.entity))
            .or_default()
            .push(event);
    }
    let mut handled = 0;
    for ((name, entity), events) in groups {
        // The groups before this one may have taken long (a remote's rate limit): the claims of
        // the rest are renewed so no other worker takes them over meanwhile.
        if let Err(error) = instances
            .store()
            .renew_event_claims(claimer, crate::time::now_unix())
        {
            tracing::warn!("callback event claims could not be renewed: {error}");
        }
        let owner = new_owner("callback");
        let by = RunBy {
            owner: &owner,
            who: "a callback",
            trigger: RunTrigger::Callback,
            policy: WaitPolicy::Refuse,
        };
        let inputs: Vec<EventIn> = events
            .iter()
            .map(|e| EventIn {
                seq: e.seq,
                remote_id: e.remote_id.clone(),
                action: e.action,
                attempts: e.attempts,
            })
            .collect();
        let now = crate::time::now_unix();
        let ends: Vec<(i64, EventEnd)> =
            match service::apply_events(instances, &name, entity, &inputs, by).await {
                Ok(report) => report.ends,
                Err(error) => {
                    let end = |event: &HookEvent| match &error {
                        RunError::Busy(busy) => EventEnd::Later {
                            reason: format!("busy: {busy}"),
                            next_try: now + BUSY_WAIT_SECS,
                        },
                        // Kept for when it is enabled again (a deletion announced meanwhile
                        // must not be lost); not an attempt.
                        RunError::Instance(InstanceError::Disabled(_)) => EventEnd::Later {
                            reason: "waiting: the instance is disabled".into(),
                            next_try: now + DISABLED_WAIT_SECS,
                        },
                        other if event.attempts + 1 >= EVENT_MAX_ATTEMPTS => {
                            EventEnd::Failed(other.to_string())
                        }
                        other => EventEnd::Retry {
                            error: other.to_string(),
                            next_try: now + (5_i64 << event.attempts.clamp(0, 8)).min(900),
                        },
                    };
                    events.iter().map(|e| (e.seq, end(e))).collect()
                }
            };
        for (seq, end) in ends {
            match instances.store().finish_event(seq, claimer, &end) {
                Ok(true) => handled += 1,
                Ok(false) => tracing::warn!(
                    instance = name,
                    seq,
                    "a callback event's claim was taken over before it finished"
                ),
                Err(error) => tracing::warn!(
                    instance = name,
                    seq,
                    "a callback event's end could not be recorded: {error}"
                ),
            }
        }
    }
    handled
}
