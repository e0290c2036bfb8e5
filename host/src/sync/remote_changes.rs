//! Changes the remote announces or the BSS asks for one record at a time (contract 1.3): the
//! records a callback named, fetched by id and delivered to the change feed; the reconciling pass
//! that finds records deleted remotely by comparing the remote's ids with the id map; and the
//! removal of remote records the BSS deleted.
//!
//! A deletion is reported only once the connector's `fetch` confirms it (the remote answers that
//! the record does not exist), never on a callback's word alone: deliveries repeat and arrive out
//! of order. Deletions reach the feed only when the instance's pull sync option includes `delete`;
//! removals are sent only when its push sync option does.

use serde::Serialize;

use super::connector::SyncConnector;
use super::engine::{
    Engine, Failure, ReportItem, SyncError, enabled, is_echo, pulled_problem, shortened,
};
use super::lease::RunLease;
use crate::contract::bindings::connector::{ConflictPolicy, PushOptions, Removal};
use crate::contract::bindings::types::PulledRecord;
use crate::contract::manifest::{Direction, Entity};
use crate::store::NewFeedEntry;
use crate::store::hook_store::{Action, EventEnd};
use crate::store::{RunKind, RunStatus};

/// The feed's version of a deletion: one per record, however often it is confirmed.
pub const DELETED_VERSION: &str = "deleted";

/// One callback event to apply.
#[derive(Debug, Clone)]
pub struct EventIn {
    pub seq: i64,
    pub remote_id: String,
    pub action: Action,
    /// Earlier attempts at it.
    pub attempts: i64,
}

/// What applying a batch of events did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct EventsReport {
    pub run: i64,
    /// Entries added to the feed (changes and deletions not there already).
    pub fed: usize,
    /// How each event ended, by its sequence number.
    #[serde(skip)]
    pub ends: Vec<(i64, EventEnd)>,
}

/// What a reconciling pass found.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ReconcileReport {
    pub run: i64,
    /// Remote ids the full read listed.
    pub listed: usize,
    /// Remote ids the id map links for the entity.
    pub linked: usize,
    /// Linked records the read did not list, confirmed gone by `fetch`.
    pub deleted: usize,
    /// Of those, added to the feed now (not there from an earlier pass or a callback).
    pub fed: usize,
    /// Linked records not listed but still there when fetched by id.
    pub still_there: usize,
    /// Why no deletion was concluded (a read cut short by a cap), if so.
    pub stopped: Option<String>,
}

/// What a removal run did, per BSS id.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RemoveReport {
    pub run: i64,
    pub dry_run: bool,
    pub items: Vec<ReportItem>,
    pub failed: usize,
}

impl RemoveReport {
    pub fn all_succeeded(&self) -> bool {
        self.failed == 0
    }
}

/// How long a failed event waits before its next try, by attempts made: 5 s doubling to 15 min.
fn event_backoff(attempts: i64) -> i64 {
    (5_i64 << attempts.clamp(0, 8)).min(900)
}

/// Events given up after this many tries.
pub const EVENT_MAX_ATTEMPTS: i64 = 10;

impl<'a, C: SyncConnector> Engine<'a, C> {
    /// One record by remote id, retrying within the run as a pull page does.
    async fn fetch_one(
        &self,
        entity: Entity,
        remote_id: &str,
    ) -> Result<Option<PulledRecord>, Failure> {
        self.in_run(|| async {
            match self.connector.fetch(&self.context, entity, remote_id).await {
                // A record of another id is not an answer about this one.
                Ok(Ok(Some(found))) if found.remote_id != remote_id => Err(Failure::Call(format!(
                    "fetch of {} answered the record {}",
                    shortened(remote_id),
                    shortened(&found.remote_id)
                ))),
                Ok(Ok(found)) => Ok(found),
                // Only `none` confirms a deletion (the contract's word for "no such record"); an
                // error, a not-found one included, confirms nothing.
                Ok(Err(error)) => Err(Failure::Connector(error)),
                Err(call) => Err(Failure::Call(call.to_string())),
            }
        })
        .await
    }

    fn deleted_entry(&self, entity: Entity, remote_id: &str, bss_id: Option<&str>) -> NewFeedEntry {
        let mut record = serde_json::json!({
            "entity": entity.as_str(),
            "remote-id": remote_id,
            "deleted": true,
        });
        if let Some(bss_id) = bss_id {
            record["bss-id"] = serde_json::json!(bss_id);
        }
        NewFeedEntry {
            entity,
            remote_id: remote_id.to_string(),
            version: DELETED_VERSION.into(),
            change: "deleted".into(),
            record: record.to_string(),
        }
    }

    fn start(&self, kind: RunKind, entity: Entity, dry_run: bool) -> Result<i64, SyncError> {
        Ok(self.store.start_run(
            self.instance(),
            kind,
            self.trigger,
            Some(entity),
            dry_run,
            self.lease.map(RunLease::owner),
        )?)
    }

    /// Applies callback events of one entity as one run: each named record is fetched by id and
    /// delivered to the feed (unless it is an echo of this instance's own push); a record the
    /// remote no longer has is a confirmed deletion, reported once (never when this instance
    /// removed it). Each event's end says whether to try again.
    pub async fn apply_events(
        &self,
        entity: Entity,
        events: &[EventIn],
    ) -> Result<EventsReport, SyncError> {
        let run = self.start(RunKind::Pull, entity, false)?;
        let result = self.apply_events_run(run, entity, events).await;
        match &result {
            Ok(report) => {
                let failed = report
                    .ends
                    .iter()
                    .filter(|(_, end)| !matches!(end, EventEnd::Done(_)))
                    .count();
                let (status, message) = if failed == 0 {
                    (
                        RunStatus::Done,
                        format!("{} callback event(s) applied", events.len()),
                    )
                } else {
                    (
                        RunStatus::Failed,
                        format!("{failed} of {} callback event(s) failed", events.len()),
                    )
                };
                self.store
                    .finish_run(run, status, Some(&message), report.fed as i64)?;
            }
            Err(error) => {
                let _ = self
                    .store
                    .finish_run(run, RunStatus::Failed, Some(&error.to_string()), 0);
            }
        }
        result
    }

    async fn apply_events_run(
        &self,
        run: i64,
        entity: Entity,
        events: &[EventIn],
    ) -> Result<EventsReport, SyncError> {
        let instance = self.instance().to_string();
        let options = self.store.sync_options(&instance)?;
        let ops = enabled(&options, entity, Direction::Pull);
        let mut report = EventsReport {
            run,
            ..EventsReport::default()
        };
        let mut fed = Vec::new();
        let mut deleted: Vec<(String, Option<String>)> = Vec::new();
        let mut seen: std::collections::HashMap<String, EventEnd> = Default::default();
        for event in events {
            if self.lease.is_some_and(RunLease::is_lost) {
                return Err(SyncError::LeaseLost);
            }
            if !ops.create && !ops.update {
                report.ends.push((
                    event.seq,
                    EventEnd::Done(format!(
                        "ignored: pull of {} is not enabled for {instance}",
                        entity.as_str()
                    )),
                ));
                continue;
            }
            // One fetch per record and batch: its later events end as its first did.
            if let Some(end) = seen.get(&event.remote_id) {
                report.ends.push((event.seq, end.clone()));
                continue;
            }
            let ids = std::slice::from_ref(&event.remote_id);
            let end = match self.fetch_one(entity, &event.remote_id).await {
                Ok(Some(mut pulled)) => {
                    self.store
                        .forget_deletion(&instance, entity, &event.remote_id)?;
                    self.fetched(entity, &mut pulled, &mut fed)?
                }
                Ok(None)
                    if !self
                        .store
                        .known_deletions(&instance, entity, ids)?
                        .is_empty() =>
                {
                    EventEnd::Done("deleted: already reported, or removed by this instance".into())
                }
                Ok(None) if ops.delete => {
                    let known = self.store.bss_ids(&instance, entity, ids)?;
                    let bss_id = known.get(&event.remote_id).cloned();
                    if !deleted.iter().any(|(r, _)| r == &event.remote_id) {
                        fed.push(self.deleted_entry(entity, &event.remote_id, bss_id.as_deref()));
                        deleted.push((event.remote_id.clone(), bss_id));
                    }
                    EventEnd::Done("deleted: confirmed gone by fetch".into())
                }
                Ok(None) => EventEnd::Done(format!(
                    "deleted remotely; not reported (the pull sync option of {} does not include delete)",
                    entity.as_str()
                )),
                Err(failure) => {
                    let message = self.context.redactor().bounded(&failure.message());
                    if failure.retryable() && event.attempts + 1 < EVENT_MAX_ATTEMPTS {
                        EventEnd::Retry {
                            error: message,
                            next_try: crate::time::now_unix() + event_backoff(event.attempts),
                        }
                    } else {
                        EventEnd::Failed(message)
                    }
                }
            };
            seen.insert(event.remote_id.clone(), end.clone());
            report.ends.push((event.seq, end));
        }
        // The feed first: a crash before the deletions are noted reports them again, and the
        // feed keeps each once.
        report.fed = self.store.append_feed(&instance, Some(run), &fed)?;
        self.store.note_deletions(&instance, entity, &deleted)?;
        crate::metrics::records(&instance, entity.as_str(), "pulled", report.fed as u64);
        Ok(report)
    }

    /// A fetched record, as a feed entry unless it is refused or an echo.
    fn fetched(
        &self,
        entity: Entity,
        pulled: &mut PulledRecord,
        fed: &mut Vec<NewFeedEntry>,
    ) -> Result<EventEnd, SyncError> {
        let instance = self.instance().to_string();
        if let Some(problem) = pulled_problem(pulled, entity, crate::time::now_unix()) {
            return Ok(EventEnd::Failed(
                self.context
                    .redactor()
                    .bounded(&format!("refused: {problem}")),
            ));
        }
        let ids = std::slice::from_ref(&pulled.remote_id);
        let copies = self.store.stored_copies(&instance, entity, ids)?;
        if copies
            .get(&pulled.remote_id)
            .is_some_and(|copy| is_echo(pulled, copy))
        {
            return Ok(EventEnd::Done("echo of this instance's own push".into()));
        }
        let known = self.store.bss_ids(&instance, entity, ids)?;
        let mut warnings = pulled.warnings.clone();
        if crate::time::parse_rfc3339(&pulled.last_updated).is_none() {
            warnings.push(format!(
                "last-updated {:?} is not a stamp of the form 2026-01-31T12:00:00Z",
                shortened(&pulled.last_updated)
            ));
        }
        let bss_id = known.get(&pulled.remote_id).cloned();
        let line = self.pulled_line(pulled, bss_id.as_deref(), warnings)?;
        fed.push(NewFeedEntry {
            entity,
            remote_id: pulled.remote_id.clone(),
            version: pulled.last_updated.clone(),
            change: "changed".into(),
            record: line.to_string(),
        });
        Ok(EventEnd::Done(format!(
            "fetched version {}",
            shortened(&pulled.last_updated)
        )))
    }

    /// Reads every remote id of the entity and reports, as deletions, the linked records the
    /// remote no longer has (each confirmed by `fetch`). Needs the pull sync option with
    /// `delete`. A read cut short by `host.max-pull-pages` concludes nothing.
    pub async fn reconcile(&self, entity: Entity) -> Result<ReconcileReport, SyncError> {
        let instance = self.instance().to_string();
        let options = self.store.sync_options(&instance)?;
        if !enabled(&options, entity, Direction::Pull).delete {
            return Err(SyncError::NotEnabled {
                instance,
                entity: entity.as_str(),
                direction: "pull (with delete)",
            });
        }
        let run = self.start(RunKind::Reconcile, entity, false)?;
        let result = self.reconcile_run(run, entity).await;
        let (status, message) = match &result {
            Ok(report) if report.stopped.is_some() => (RunStatus::Stopped, report.stopped.clone()),
            Ok(report) => (
                RunStatus::Done,
                Some(format!(
                    "{} listed, {} linked, {} deleted remotely ({} new in the feed)",
                    report.listed, report.linked, report.deleted, report.fed
                )),
            ),
            Err(error) => (RunStatus::Failed, Some(error.to_string())),
        };
        let count = result.as_ref().map(|r| r.fed as i64).unwrap_or(0);
        self.store
            .finish_run(run, status, message.as_deref(), count)?;
        result
    }

    async fn reconcile_run(&self, run: i64, entity: Entity) -> Result<ReconcileReport, SyncError> {
        let instance = self.instance().to_string();
        let mut report = ReconcileReport {
            run,
            ..ReconcileReport::default()
        };
        let mut listed = std::collections::BTreeSet::new();
        let mut token: Option<String> = None;
        let mut pages = 0u32;
        loop {
            if self.lease.is_some_and(RunLease::is_lost) {
                return Err(SyncError::LeaseLost);
            }
            let page = self
                .pull_page(entity, None, token.as_deref())
                .await
                .map_err(|reason| SyncError::Pull {
                    entity: entity.as_str(),
                    reason: self.context.redactor().bounded(&reason),
                })?;
            pages += 1;
            listed.extend(page.records.into_iter().map(|r| r.remote_id));
            token = page.next_page_token;
            if token.is_none() {
                break;
            }
            if pages >= self.context.options().max_pull_pages {
                report.listed = listed.len();
                report.stopped = Some(format!(
                    "stopped after {pages} pages (host.max-pull-pages) with more to read; no deletion concluded"
                ));
                return Ok(report);
            }
        }
        report.listed = listed.len();
        let linked = self.store.linked(&instance, entity)?;
        report.linked = linked.len();
        let missing: Vec<String> = linked
            .keys()
            .filter(|r| !listed.contains(*r))
            .cloned()
            .collect();
        let known = self.store.known_deletions(&instance, entity, &missing)?;
        let mut fed = Vec::new();
        let mut deleted = Vec::new();
        let mut failure = None;
        for remote_id in missing.iter().filter(|r| !known.contains(*r)) {
            if self.lease.is_some_and(RunLease::is_lost) {
                failure = Some(SyncError::LeaseLost);
                break;
            }
            match self.fetch_one(entity, remote_id).await {
                Ok(None) => {
                    let bss_id = linked.get(remote_id).cloned();
                    report.deleted += 1;
                    fed.push(self.deleted_entry(entity, remote_id, bss_id.as_deref()));
                    deleted.push((remote_id.clone(), bss_id));
                }
                Ok(Some(_)) => report.still_there += 1,
                Err(error) => {
                    failure = Some(SyncError::Pull {
                        entity: entity.as_str(),
                        reason: self.context.redactor().bounded(&format!(
                            "confirming that {} is gone: {}",
                            shortened(remote_id),
                            error.message()
                        )),
                    });
                    break;
                }
            }
        }
        // What was confirmed before a failure is kept: the feed first, then the marks.
        report.fed = self.store.append_feed(&instance, Some(run), &fed)?;
        self.store.note_deletions(&instance, entity, &deleted)?;
        match failure {
            Some(error) => Err(error),
            None => Ok(report),
        }
    }

    /// Removes (deletes or deactivates) the remote records of BSS ids the BSS deleted. Needs the
    /// push sync option with `delete`. Each removed record leaves the retry queue; one deleted,
    /// or already gone, is unlinked from the id map, a deactivated one stays linked (the remote
    /// keeps it); the remote's word of the deletion later is not reported back. A record whose
    /// create is unsettled is refused; one never created but queued is unqueued. Idempotent:
    /// removing again answers `already-gone`, `deactivated` or `skipped`.
    pub async fn remove(
        &self,
        entity: Entity,
        bss_ids: &[String],
        dry_run: bool,
    ) -> Result<RemoveReport, SyncError> {
        let instance = self.instance().to_string();
        let options = self.store.sync_options(&instance)?;
        if !enabled(&options, entity, Direction::Push).delete {
            return Err(SyncError::NotEnabled {
                instance,
                entity: entity.as_str(),
                direction: "push (with delete)",
            });
        }
        let run = self.start(RunKind::Remove, entity, dry_run)?;
        let result = self.remove_run(run, entity, bss_ids, dry_run).await;
        match &result {
            Ok(report) => {
                let status = if report.failed == 0 {
                    RunStatus::Done
                } else {
                    RunStatus::Failed
                };
                let message = format!(
                    "{} removal(s) asked, {} failed{}",
                    bss_ids.len(),
                    report.failed,
                    if dry_run {
                        " (dry run: nothing written)"
                    } else {
                        ""
                    }
                );
                self.store.finish_run(
                    run,
                    status,
                    Some(&message),
                    (report.items.len() - report.failed) as i64,
                )?;
            }
            Err(error) => {
                let _ = self
                    .store
                    .finish_run(run, RunStatus::Failed, Some(&error.to_string()), 0);
            }
        }
        result
    }

    async fn remove_run(
        &self,
        run: i64,
        entity: Entity,
        bss_ids: &[String],
        dry_run: bool,
    ) -> Result<RemoveReport, SyncError> {
        let instance = self.instance().to_string();
        let mut report = RemoveReport {
            run,
            dry_run,
            ..RemoveReport::default()
        };
        let map = self.store.id_map(&instance, entity, bss_ids)?;
        let mut linked = Vec::new();
        for bss_id in bss_ids {
            let entry = map.get(bss_id);
            if entry.is_some_and(|e| e.pending) {
                report.failed += 1;
                report.items.push(ReportItem {
                    id: bss_id.clone(),
                    outcome: "failed".into(),
                    remote_id: None,
                    message: Some(format!(
                        "a create of it was sent and its outcome is not known; settle it first (`bss-host retry {instance}`, or `bss-host link`), then remove it"
                    )),
                });
                continue;
            }
            match entry.and_then(|e| e.remote_id.clone()) {
                Some(remote_id) => linked.push((bss_id.clone(), remote_id)),
                None => {
                    let queued =
                        !dry_run && self.store.record_removal(&instance, entity, bss_id, None)?;
                    report.items.push(ReportItem {
                        id: bss_id.clone(),
                        outcome: if queued { "unqueued" } else { "skipped" }.into(),
                        remote_id: None,
                        message: Some(if queued {
                            "never created remotely; it waited in the retry queue and will not be sent".into()
                        } else {
                            "not linked to a remote record: nothing to remove".into()
                        }),
                    });
                }
            }
        }
        for chunk in linked.chunks(100) {
            if self.lease.is_some_and(RunLease::is_lost) {
                return Err(SyncError::LeaseLost);
            }
            let remote_ids: Vec<String> = chunk.iter().map(|(_, r)| r.clone()).collect();
            let answers = self.remove_batch(entity, &remote_ids, dry_run).await;
            for (index, (bss_id, remote_id)) in chunk.iter().enumerate() {
                let answer = match &answers {
                    Ok(results) => results.get(index).cloned().unwrap_or_else(|| {
                        Err(Failure::Call(
                            "the connector answered fewer results than ids".into(),
                        ))
                    }),
                    Err(failure) => Err(failure.clone()),
                };
                let (outcome, message) = match answer {
                    Ok(removal) => {
                        let deleted = matches!(removal, Removal::Deleted | Removal::AlreadyGone);
                        if !dry_run {
                            self.store.record_removal(
                                &instance,
                                entity,
                                bss_id,
                                Some((remote_id, deleted)),
                            )?;
                        }
                        let said = match removal {
                            Removal::Deleted => "deleted",
                            Removal::Deactivated => "deactivated",
                            Removal::AlreadyGone => "already-gone",
                        };
                        (said.to_string(), None)
                    }
                    Err(failure) => {
                        report.failed += 1;
                        (
                            "failed".to_string(),
                            Some(self.context.redactor().bounded(&failure.message())),
                        )
                    }
                };
                report.items.push(ReportItem {
                    id: bss_id.clone(),
                    outcome,
                    remote_id: Some(remote_id.clone()),
                    message,
                });
            }
        }
        Ok(report)
    }

    async fn remove_batch(
        &self,
        entity: Entity,
        remote_ids: &[String],
        dry_run: bool,
    ) -> Result<Vec<Result<Removal, Failure>>, Failure> {
        let options = || PushOptions {
            dry_run,
            conflicts: ConflictPolicy::BssWins,
        };
        self.in_run(|| async {
            match self
                .connector
                .remove(&self.context, entity, remote_ids, options())
                .await
            {
                Ok(Ok(results)) if results.len() == remote_ids.len() => Ok(results
                    .into_iter()
                    .map(|r| r.map_err(Failure::Connector))
                    .collect()),
                Ok(Ok(results)) => Err(Failure::Call(format!(
                    "the connector answered {} results for {} ids",
                    results.len(),
                    remote_ids.len()
                ))),
                Ok(Err(error)) => Err(Failure::Batch(error)),
                Err(call) => Err(Failure::Call(call.to_string())),
            }
        })
        .await
    }
}
