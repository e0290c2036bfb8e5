//! Schedules per instance, entity and job, as an operator writes them (`contact:pull every 5m`,
//! `account:retry daily 02:00`) and as `serve` runs them. A due schedule starts only when its
//! instance is enabled, its settings are complete and its last check did not fail; otherwise it
//! stays due and says why. Each run takes the instance/entity lease, refusing to wait, so a
//! scheduled run and a manual one never overlap (the schedule records `busy` instead). The next
//! due time is computed from the time a run starts, so slots missed while no `serve` ran run
//! once, not once per slot.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use crate::contract::manifest::Entity;
use crate::instances::{InstanceError, Instances};
use crate::store::schedule_store::{Cadence, Job, ScheduleRow};
use crate::store::{RunStatus, StoreError};
use crate::sync::engine::PullFrom;
use crate::sync::lease::WaitPolicy;
use crate::sync::service::{self, RunBy, RunError};

/// The shortest interval a schedule may have. The instance's request budget still bounds what
/// its runs send.
pub const MIN_EVERY_SECS: i64 = 1;

pub use crate::store::schedule_store::STUCK_AFTER_SECS;

/// The longest interval a schedule may have.
pub const MAX_EVERY_SECS: i64 = 366 * 86_400;

/// Parses `ENTITY:JOB` (`contact:pull`, `account:retry`).
pub fn parse_target(text: &str) -> Result<(Entity, Job), InstanceError> {
    let invalid = |message: String| InstanceError::Invalid(vec![("schedule".into(), message)]);
    let (entity, job) = text.split_once(':').ok_or_else(|| {
        invalid(format!(
            "{text:?} must be ENTITY:JOB, such as contact:pull or account:retry"
        ))
    })?;
    let entity = service::parse_entity(entity)?;
    let job = job.parse::<Job>().map_err(invalid)?;
    Ok((entity, job))
}

/// Parses `every 30s|5m|2h|1d` or `daily HH:MM` (UTC).
pub fn parse_cadence(text: &str) -> Result<Cadence, InstanceError> {
    let invalid = |message: String| InstanceError::Invalid(vec![("cadence".into(), message)]);
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        ["every", amount] => {
            let split = amount
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(amount.len());
            let (number, unit) = amount.split_at(split);
            let number: i64 = number.parse().map_err(|_| {
                invalid(format!(
                    "{amount:?} is not an interval such as 30s, 5m, 2h or 1d"
                ))
            })?;
            let unit_secs = match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3_600,
                "d" => 86_400,
                _ => {
                    return Err(invalid(format!(
                        "{amount:?} needs a unit: s, m, h or d (such as 5m)"
                    )));
                }
            };
            let seconds = number.saturating_mul(unit_secs);
            if seconds < MIN_EVERY_SECS {
                return Err(invalid(format!(
                    "{amount:?} is shorter than {MIN_EVERY_SECS}s"
                )));
            }
            if seconds > MAX_EVERY_SECS {
                return Err(invalid(format!(
                    "{amount:?} is longer than 366 days; use `daily HH:MM` or a shorter interval"
                )));
            }
            Ok(Cadence::Every { seconds })
        }
        ["daily", at] => {
            let minute = at
                .split_once(':')
                .and_then(|(h, m)| Some((h.parse::<i64>().ok()?, m.parse::<i64>().ok()?)))
                .filter(|(h, m)| (0..24).contains(h) && (0..60).contains(m) && at.len() == 5)
                .map(|(h, m)| h * 60 + m)
                .ok_or_else(|| invalid(format!("{at:?} is not a UTC time such as 02:00")))?;
            Ok(Cadence::Daily { minute })
        }
        _ => Err(invalid(format!(
            "{text:?} is not a cadence; write `every 5m` (s, m, h, d) or `daily 02:00` (UTC)"
        ))),
    }
}

/// Writes a cadence back the way it is parsed.
pub fn cadence_text(cadence: Cadence) -> String {
    match cadence {
        Cadence::Every { seconds } if seconds % 86_400 == 0 => {
            format!("every {}d", seconds / 86_400)
        }
        Cadence::Every { seconds } if seconds % 3_600 == 0 => format!("every {}h", seconds / 3_600),
        Cadence::Every { seconds } if seconds % 60 == 0 => format!("every {}m", seconds / 60),
        Cadence::Every { seconds } => format!("every {seconds}s"),
        Cadence::Daily { minute } => format!("daily {:02}:{:02}", minute / 60, minute % 60),
    }
}

/// The first time a new schedule is due: an interval at once, a daily time at its next
/// occurrence.
pub fn first_due(cadence: Cadence, now: i64) -> i64 {
    match cadence {
        Cadence::Every { .. } => now,
        Cadence::Daily { .. } => next_due(cadence, now),
    }
}

/// When a schedule that starts at `now` is due next: never a time already past, so missed slots
/// collapse into the run starting now.
pub fn next_due(cadence: Cadence, now: i64) -> i64 {
    match cadence {
        Cadence::Every { seconds } => now.saturating_add(seconds),
        Cadence::Daily { minute } => {
            let midnight = now - now.rem_euclid(86_400);
            let today = midnight + minute * 60;
            if today > now { today } else { today + 86_400 }
        }
    }
}

/// A schedule as `schedules list` and the API show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ScheduleView {
    pub instance: String,
    pub target: String,
    pub cadence: String,
    /// `waiting`, `due`, `blocked`, `running` or `stuck`.
    pub state: &'static str,
    pub next_run: String,
    pub last_started: Option<String>,
    pub last_outcome: Option<String>,
    pub last_run: Option<i64>,
    pub last_millis: Option<i64>,
    pub blocked: Option<String>,
}

impl ScheduleView {
    pub fn of(row: ScheduleRow, now: i64) -> ScheduleView {
        let running = row.last_outcome.as_deref() == Some("running");
        let started = row
            .last_started
            .as_deref()
            .and_then(crate::time::parse_rfc3339);
        let state = if running && started.is_some_and(|s| now - s > STUCK_AFTER_SECS) {
            "stuck"
        } else if running {
            "running"
        } else if row.blocked.is_some() {
            "blocked"
        } else if row.next_due <= now {
            "due"
        } else {
            "waiting"
        };
        ScheduleView {
            instance: row.instance,
            target: format!("{}:{}", row.entity, row.job),
            cadence: cadence_text(row.cadence),
            state,
            next_run: crate::time::rfc3339(row.next_due),
            last_started: row.last_started,
            last_outcome: row.last_outcome,
            last_run: row.last_run,
            last_millis: row.last_millis,
            blocked: row.blocked,
        }
    }
}

/// Creates or replaces a schedule; it is first due as [`first_due`] says.
pub fn set(
    instances: &Instances,
    name: &str,
    target: &str,
    cadence: &str,
) -> Result<ScheduleView, InstanceError> {
    let (entity, job) = parse_target(target)?;
    let cadence = parse_cadence(cadence)?;
    let now = crate::time::now_unix();
    let store = instances.store();
    store.set_schedule(name, entity, job, cadence, first_due(cadence, now))?;
    let row = store
        .schedules(Some(name))?
        .into_iter()
        .find(|r| r.entity == entity && r.job == job)
        .ok_or_else(|| StoreError::Database("the schedule just set is not there".into()))?;
    Ok(ScheduleView::of(row, now))
}

/// Removes a schedule; an error when there was none.
pub fn remove(instances: &Instances, name: &str, target: &str) -> Result<(), InstanceError> {
    let (entity, job) = parse_target(target)?;
    if instances.store().remove_schedule(name, entity, job)? {
        Ok(())
    } else {
        Err(InstanceError::NotFound(format!(
            "{name} has no schedule {target}; `bss-host schedules list {name}` shows its schedules"
        )))
    }
}

/// Every schedule, or one instance's.
pub fn list(instances: &Instances, name: Option<&str>) -> Result<Vec<ScheduleView>, InstanceError> {
    let now = crate::time::now_unix();
    Ok(instances
        .store()
        .schedules(name)?
        .into_iter()
        .map(|row| ScheduleView::of(row, now))
        .collect())
}

/// An instance with schedules whose last check failed is checked again after this long, so a
/// passing outage (the remote down, a key rotated and set again) does not hold its schedules back
/// until someone notices.
pub const RECHECK_AFTER_SECS: i64 = 300;

/// Checks again the instances that have schedules, are otherwise ready, and whose last check
/// failed at least [`RECHECK_AFTER_SECS`] ago; returns the instances checked and whether each
/// passed.
pub async fn recheck_failed(instances: &Instances) -> Vec<(String, bool)> {
    let now = crate::time::now_unix();
    let Ok(rows) = instances.store().schedules(None) else {
        return Vec::new();
    };
    let names: std::collections::BTreeSet<String> = rows.into_iter().map(|r| r.instance).collect();
    let mut checked = Vec::new();
    for name in names {
        let Ok(Some(check)) = instances.store().last_check(&name) else {
            continue;
        };
        let at = crate::time::parse_rfc3339(&check.checked_at).unwrap_or(0);
        if check.ok || now - at < RECHECK_AFTER_SECS || instances.context(&name).is_err() {
            continue;
        }
        match instances.check(&name).await {
            Ok(outcome) => {
                tracing::info!(
                    instance = name,
                    ok = outcome.ok,
                    "checked again: {}",
                    outcome.summary
                );
                checked.push((name, outcome.ok));
            }
            Err(error) => tracing::warn!(instance = name, "could not be checked again: {error}"),
        }
    }
    checked
}

/// Why an instance's schedules cannot start now, if they cannot.
fn blocked_reason(instances: &Instances, name: &str) -> Option<String> {
    if let Err(error) = instances.context(name) {
        return Some(error.to_string());
    }
    match instances.store().last_check(name) {
        Ok(Some(check)) if !check.ok => Some(format!(
            "its last check failed ({}); serve checks it again every {} minutes, or run `bss-host check {name}` once it is fixed",
            check.summary,
            RECHECK_AFTER_SECS / 60
        )),
        Ok(_) => None,
        Err(error) => Some(error.to_string()),
    }
}

/// What one scheduled run did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ScheduledRun {
    pub instance: String,
    pub target: String,
    pub run: Option<i64>,
    pub outcome: String,
    pub ok: bool,
}

/// Claims every due schedule that may start and runs them one after another; returns what each
/// did.
pub async fn run_due(instances: &Instances) -> Result<Vec<ScheduledRun>, StoreError> {
    let mut done = Vec::new();
    for schedule in claim_due(instances)? {
        done.push(run_one(instances, &schedule).await?);
    }
    Ok(done)
}

/// Claims every due schedule that may start (its next due time moves on); those that may not
/// stay due and record why.
pub fn claim_due(instances: &Instances) -> Result<Vec<ScheduleRow>, StoreError> {
    let store = instances.store();
    let now = crate::time::now_unix();
    let due: Vec<ScheduleRow> = store
        .schedules(None)?
        .into_iter()
        .filter(|r| r.next_due <= now)
        .collect();
    if due.is_empty() {
        return Ok(Vec::new());
    }
    // Asked before the claim: the claim's transaction may not call back into the store.
    let mut reasons: BTreeMap<String, Option<String>> = BTreeMap::new();
    for row in &due {
        if !reasons.contains_key(&row.instance) {
            reasons.insert(
                row.instance.clone(),
                blocked_reason(instances, &row.instance),
            );
        }
    }
    let started = crate::time::rfc3339(now);
    store.claim_due(
        now,
        // A schedule added between the read and the claim waits for the next tick's checks.
        &mut |row| {
            reasons.get(&row.instance).cloned().unwrap_or_else(|| {
                Some(
                    "added while the schedules were being claimed; checked at the next tick".into(),
                )
            })
        },
        &|row| next_due(row.cadence, now),
        &started,
    )
}

/// Runs one claimed schedule under a lease owner of its own (two schedules of one entity, a pull
/// and a retry, must not share one), refusing to wait for a busy lease; records how it ended.
pub async fn run_one(
    instances: &Instances,
    schedule: &ScheduleRow,
) -> Result<ScheduledRun, StoreError> {
    run_one_as(
        instances,
        schedule,
        &crate::sync::lease::new_owner("schedule"),
    )
    .await
}

/// As [`run_one`], under the run-lease owner `owner` (a job's, which ties the run to the job).
pub async fn run_one_as(
    instances: &Instances,
    schedule: &ScheduleRow,
    owner: &str,
) -> Result<ScheduledRun, StoreError> {
    let (name, entity, job) = (&schedule.instance, schedule.entity, schedule.job);
    let who = format!("the schedule {entity}:{job}");
    let by = RunBy {
        owner,
        who: &who,
        trigger: crate::store::RunTrigger::Schedule,
        policy: WaitPolicy::Refuse,
    };
    let started = Instant::now();
    let (run, outcome, ok) = match job {
        Job::Pull => {
            let from = PullFrom {
                feed: true,
                ..PullFrom::default()
            };
            match service::pull_to(instances, name, entity, from, &mut std::io::sink(), by).await {
                Ok(report) => {
                    let ok = report.complete();
                    let outcome = match &report.stopped {
                        Some(reason) => format!("{}: {reason}", RunStatus::Stopped),
                        None => format!(
                            "{}: {} delivered, {} new in the feed",
                            RunStatus::Done,
                            report.delivered,
                            report.fed
                        ),
                    };
                    (Some(report.run), outcome, ok)
                }
                // Busy is not a failure: another run of the entity is doing the work.
                Err(error) => (None, said(&error), matches!(error, RunError::Busy(_))),
            }
        }
        Job::Retry => match service::retry_entity(instances, name, Some(entity), by).await {
            Ok(report) if !report.busy.is_empty() => (
                None,
                "busy: another run holds the lease; the queued records wait for the next slot"
                    .to_string(),
                true,
            ),
            Ok(report) => {
                let ok = report.all_succeeded();
                let run = report.runs.last().map(|(_, r)| r.run);
                let outcome = format!(
                    "{}: {} queued record(s) sent",
                    if ok {
                        RunStatus::Done
                    } else {
                        RunStatus::Failed
                    },
                    report.claimed
                );
                (run, outcome, ok)
            }
            Err(error) => (None, said(&error), matches!(error, RunError::Busy(_))),
        },
        Job::Reconcile => match service::reconcile(instances, name, entity, by).await {
            Ok(report) => {
                let outcome = match &report.stopped {
                    Some(reason) => format!("{}: {reason}", RunStatus::Stopped),
                    None => format!(
                        "{}: {} listed, {} deleted remotely, {} new in the feed",
                        RunStatus::Done,
                        report.listed,
                        report.deleted,
                        report.fed
                    ),
                };
                (Some(report.run), outcome, report.stopped.is_none())
            }
            Err(error) => (None, said(&error), matches!(error, RunError::Busy(_))),
        },
    };
    let millis = started.elapsed().as_millis() as i64;
    instances
        .store()
        .finish_schedule(schedule, run, &outcome, millis)?;
    Ok(ScheduledRun {
        instance: name.clone(),
        target: format!("{entity}:{job}"),
        run,
        outcome,
        ok,
    })
}

/// A run that did not start or failed, in the schedule's words.
fn said(error: &RunError) -> String {
    match error {
        RunError::Busy(_) => format!("busy: {error}"),
        _ => format!("{}: {error}", RunStatus::Failed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cadences_parse_and_print_back() {
        for text in [
            "every 30s",
            "every 5m",
            "every 2h",
            "every 1d",
            "daily 02:00",
        ] {
            assert_eq!(cadence_text(parse_cadence(text).unwrap()), text);
        }
        for bad in [
            "every",
            "every 5",
            "every 5w",
            "daily 2:00",
            "daily 24:00",
            "hourly",
        ] {
            assert!(parse_cadence(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn missed_slots_collapse_into_one_run() {
        let every = Cadence::Every { seconds: 60 };
        // Due at 1000, started at 1500 after a downtime: next due one interval after the start.
        assert_eq!(next_due(every, 1_500), 1_560);
        let daily = Cadence::Daily { minute: 2 * 60 };
        let day = 20_000 * 86_400;
        assert_eq!(next_due(daily, day + 3_600), day + 7_200);
        assert_eq!(next_due(daily, day + 7_200), day + 86_400 + 7_200);
        assert_eq!(first_due(every, 42), 42);
    }

    #[test]
    fn targets_name_an_entity_and_a_job() {
        assert_eq!(
            parse_target("contact:pull").unwrap(),
            (Entity::Contact, Job::Pull)
        );
        assert!(parse_target("contact").is_err());
        assert!(parse_target("contact:push").is_err());
        assert!(parse_target("thing:pull").is_err());
    }
}
