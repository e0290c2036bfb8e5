//! The operator's pages of an instance: its runs (trigger, counts, duration) and one run's
//! records (filterable by outcome), the retry queue with *Retry now*, *Push a file* (uploaded,
//! dry-run first, then run) and *Pull now* (into the change feed, so nothing pulled is lost), each
//! run followed on a progress page while it goes; and the host's schedules, change feed,
//! callbacks and health.

use axum::Router;
use axum::extract::{Multipart, Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use super::jobs::{Job, JobEnd};
use super::{Answer, Fields, PageError, Shared, Signed, answer, instances, refused_if, see_other};
use crate::contract::manifest::{Direction, Entity};
use crate::store::RunTrigger;
use crate::store::token_store::Role;
use crate::sync::service::{self, RunBy};

/// The largest file *Push a file* takes.
pub const MAX_UPLOAD_BYTES: usize = 32 * 1024 * 1024;
/// How many runs the runs page lists (the newest).
const RUNS_SHOWN: usize = 50;
/// How many of a dry run's record outcomes its review shows.
const REVIEW_ITEMS: usize = 500;
/// Uploads older than this are removed when another file is uploaded.
const UPLOAD_KEPT_SECS: u64 = 24 * 3600;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/instances/{name}/runs", get(runs_page))
        .route("/instances/{name}/push", post(push_dry_run))
        .route("/instances/{name}/push/run", post(push_run))
        .route("/instances/{name}/pull", post(pull_now))
        .route("/instances/{name}/retry", post(retry_now))
        .route(
            "/instances/{name}/schedules",
            get(schedules_page).post(set_schedule),
        )
        .route(
            "/instances/{name}/schedules/{target}/remove",
            post(remove_schedule),
        )
        .route("/runs/{run}", get(run_page))
        .route("/runs/{run}/status", get(run_status))
        .route("/jobs/{job}", get(job_page))
        .route("/jobs/{job}/status", get(job_status))
        .route("/health", get(health_page))
}

fn console_run_by(owner: &str) -> RunBy<'_> {
    RunBy {
        owner,
        who: "the console",
        trigger: RunTrigger::Console,
        policy: crate::sync::lease::WaitPolicy::Refuse,
    }
}

/// The entities the instance's sync options enable in `direction`.
fn enabled_entities(
    console: &Shared,
    name: &str,
    direction: Direction,
) -> Result<Vec<Entity>, PageError> {
    Ok(instances(console)
        .sync_options(name)?
        .into_iter()
        .filter(|(_, d, ops)| *d == direction && (ops.create || ops.update || ops.delete))
        .map(|(e, _, _)| e)
        .collect())
}

async fn runs_page(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(name): UrlPath<String>,
) -> Answer {
    let result = (|| {
        let instances = instances(&console);
        let view = instances.view(&name)?;
        let mut runs = crate::sync::history::runs(instances, &name)?;
        runs.reverse();
        runs.truncate(RUNS_SHOWN);
        let runs: Vec<serde_json::Value> = runs
            .into_iter()
            .map(|r| {
                let duration = r.finished_at.as_deref().and_then(|end| {
                    let (a, b) = (
                        crate::time::parse_rfc3339(&r.started_at)?,
                        crate::time::parse_rfc3339(end)?,
                    );
                    Some(b - a)
                });
                serde_json::json!({ "run": r, "seconds": duration })
            })
            .collect();
        Ok(console.page(
            "runs.html",
            Some(&signed),
            serde_json::json!({
                "title": format!("Runs · {name}"),
                "nav": "instances",
                "tab": "runs",
                "name": name,
                "view": view,
                "runs": runs,
                "queue": crate::sync::history::queue(instances, &name)?,
                "push_entities": enabled_entities(&console, &name, Direction::Push)?,
                "pull_entities": enabled_entities(&console, &name, Direction::Pull)?,
            }),
        ))
    })();
    answer(console, signed, result)
}

#[derive(Deserialize)]
struct RunFilter {
    outcome: Option<String>,
}

async fn run_page(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(run): UrlPath<i64>,
    Query(filter): Query<RunFilter>,
) -> Answer {
    let result = (|| {
        let Some((row, items)) = crate::sync::history::run(instances(&console), run)? else {
            return Err(PageError::not_found(format!("there is no run {run}")));
        };
        let mut outcomes: Vec<String> = items.iter().map(|i| i.outcome.clone()).collect();
        outcomes.sort();
        outcomes.dedup();
        let wanted = filter.outcome.filter(|o| !o.is_empty());
        let shown: Vec<_> = items
            .into_iter()
            .filter(|i| wanted.as_ref().is_none_or(|o| &i.outcome == o))
            .collect();
        Ok(console.page(
            "run.html",
            Some(&signed),
            serde_json::json!({
                "title": format!("Run {run}"),
                "nav": "instances",
                "tab": "runs",
                "name": row.instance.clone(),
                "running": row.status == crate::store::RunStatus::Running,
                "run": row,
                "items": shown,
                "outcomes": outcomes,
                "outcome": wanted,
            }),
        ))
    })();
    answer(console, signed, result)
}

/// What an upload was reviewed for: its run pushes it to this instance, as this entity.
#[derive(serde::Serialize, serde::Deserialize)]
struct Reviewed {
    instance: String,
    entity: Entity,
    file_name: String,
}

/// A run's row as JSON, for the run page's script while it runs.
async fn run_status(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(run): UrlPath<i64>,
) -> Answer {
    let result = crate::sync::history::run(instances(&console), run)
        .map_err(PageError::from)
        .and_then(|found| {
            found.ok_or_else(|| PageError::not_found(format!("there is no run {run}")))
        })
        .map(|(row, _)| {
            let mut response =
                axum::response::IntoResponse::into_response(axum::Json(serde_json::json!(row)));
            super::secure_headers(response.headers_mut());
            response
        });
    answer(console, signed, result)
}

/// An uploaded file's name in the uploads folder (`ID.upload`, its review `ID.json`): only what
/// `random_token` makes.
fn upload_path(console: &Shared, id: &str) -> Result<std::path::PathBuf, PageError> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(PageError::bad_request(
            "the uploaded file is not known; upload it again",
        ));
    }
    Ok(console.uploads.join(format!("{id}.upload")))
}

fn forget_old_uploads(console: &Shared) {
    let Ok(entries) = std::fs::read_dir(&console.uploads) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > UPLOAD_KEPT_SECS);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The parts of the push form: fields, and the file's name and text.
async fn read_push_form(
    mut form: Multipart,
) -> Result<(Fields, Option<(String, String)>), PageError> {
    let mut fields = Vec::new();
    let mut file = None;
    while let Some(part) = form
        .next_field()
        .await
        .map_err(|e| PageError::bad_request(format!("the upload could not be read: {e}")))?
    {
        let name = part.name().unwrap_or_default().to_string();
        if name == "file" {
            let file_name = part.file_name().unwrap_or("upload").to_string();
            let bytes = part.bytes().await.map_err(|e| {
                PageError::bad_request(format!(
                    "the file could not be read ({e}); files up to {} MiB are taken",
                    MAX_UPLOAD_BYTES / (1024 * 1024)
                ))
            })?;
            let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                PageError::bad_request(format!(
                    "{file_name} is not UTF-8 text; upload a JSON array or NDJSON file of records"
                ))
            })?;
            file = Some((file_name, text));
        } else {
            let value = part
                .text()
                .await
                .map_err(|e| PageError::bad_request(format!("the form could not be read: {e}")))?;
            fields.push((name, value));
        }
    }
    Ok((Fields(fields), file))
}

fn entity_field(fields: &Fields) -> Result<Entity, PageError> {
    fields
        .text("entity")
        .parse()
        .map_err(|e: crate::contract::manifest::UnknownEntity| {
            PageError::bad_request(e.to_string())
        })
}

/// *Push a file*: the file is kept, dry-run at once, and its review offers the real run.
async fn push_dry_run(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(name): UrlPath<String>,
    form: Multipart,
) -> Answer {
    let result = async {
        let (fields, file) = read_push_form(form).await?;
        signed.allow(&fields, Role::Operator)?;
        let entity = entity_field(&fields)?;
        let Some((file_name, text)) = file.filter(|(_, t)| !t.trim().is_empty()) else {
            return Err(PageError::bad_request(
                "choose a file of records to push (a JSON array or NDJSON)",
            ));
        };
        std::fs::create_dir_all(&console.uploads).map_err(|e| {
            PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Could not be done",
                format!(
                    "the uploads folder {} could not be made: {e}",
                    console.uploads.display()
                ),
            )
        })?;
        forget_old_uploads(&console);
        let id = crate::store::secrets::random_token(18);
        let path = upload_path(&console, &id)?;
        let reviewed = Reviewed {
            instance: name.clone(),
            entity,
            file_name: file_name.clone(),
        };
        std::fs::write(
            path.with_extension("json"),
            serde_json::to_vec(&reviewed).unwrap_or_default(),
        )
        .and_then(|()| std::fs::write(&path, &text))
        .map_err(|e| {
            PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Could not be done",
                format!(
                    "the upload could not be kept in {}: {e}",
                    console.uploads.display()
                ),
            )
        })?;
        let owner = crate::sync::lease::new_owner("console");
        let outcome = service::push_text(
            instances(&console),
            &name,
            entity,
            &text,
            true,
            None,
            console_run_by(&owner),
        )
        .await;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(path.with_extension("json"));
                return Err(run_error(e));
            }
        };
        let mut items = outcome.report.items.clone();
        let more = items.len() > REVIEW_ITEMS || outcome.report.items_truncated;
        items.truncate(REVIEW_ITEMS);
        Ok(console.page(
            "push_review.html",
            Some(&signed),
            serde_json::json!({
                "title": format!("Dry run · {name}"),
                "nav": "instances",
                "tab": "runs",
                "name": name,
                "entity": entity,
                "file_name": file_name,
                "upload": id,
                "report": outcome.report,
                "items": items,
                "more": more,
            }),
        ))
    }
    .await;
    answer(console, signed, result)
}

fn run_error(e: service::RunError) -> PageError {
    use crate::sync::SyncError;
    use service::RunError;
    let message = e.to_string();
    let status = match &e {
        RunError::Instance(_) | RunError::Store(_) => {
            return match e {
                RunError::Instance(e) => e.into(),
                RunError::Store(e) => e.into(),
                _ => unreachable!(),
            };
        }
        RunError::Busy(_) => StatusCode::CONFLICT,
        RunError::Sync(SyncError::Input(..)) => StatusCode::BAD_REQUEST,
        RunError::Sync(SyncError::NotEnabled { .. } | SyncError::LeaseLost) => StatusCode::CONFLICT,
        RunError::Sync(SyncError::Pull { .. }) => StatusCode::BAD_GATEWAY,
        RunError::Sync(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    PageError::new(status, "The run could not be done", message)
}

/// Starts `work` as a job of `name` and shows its progress page.
fn spawn_job<F, Fut>(console: &Shared, name: &str, what: String, work: F) -> Response
where
    F: FnOnce(std::sync::Arc<crate::instances::Instances>, std::sync::Arc<Job>) -> Fut,
    Fut: std::future::Future<Output = JobEnd> + Send + 'static,
{
    let job = console.jobs.start(name, what);
    let future = work(console.instances.clone(), job.clone());
    let id = job.id.clone();
    let task = tokio::spawn(future);
    // A job whose task panicked ends too, saying so, instead of showing "running" for ever.
    tokio::spawn(async move {
        let end = task.await.unwrap_or_else(|e| JobEnd {
            ok: false,
            summary: format!("the run stopped unexpectedly ({e}); the instance's runs page shows what it recorded"),
            run: None,
        });
        job.finish(end);
    });
    see_other(&format!("/jobs/{id}"))
}

/// The real run of a reviewed upload.
async fn push_run(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(name): UrlPath<String>,
    fields: Fields,
) -> Answer {
    let result = (|| {
        signed.allow(&fields, Role::Operator)?;
        let path = upload_path(&console, &fields.text("upload"))?;
        let gone = || {
            PageError::bad_request(
                "the uploaded file was run already, or is older than a day; upload it again",
            )
        };
        let reviewed: Reviewed = std::fs::read(path.with_extension("json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(gone)?;
        if reviewed.instance != name {
            return Err(PageError::bad_request(format!(
                "that file was reviewed for instance {}, not {name}; upload it here to push it here",
                reviewed.instance
            )));
        }
        // Claimed by renaming: a second post of the same review finds nothing to run.
        let claimed = path.with_extension("running");
        std::fs::rename(&path, &claimed).map_err(|_| gone())?;
        let text = std::fs::read_to_string(&claimed).map_err(|_| gone())?;
        let _ = std::fs::remove_file(path.with_extension("json"));
        let (entity, file_name) = (reviewed.entity, reviewed.file_name);
        let path = claimed;
        tracing::info!(instance = %name, %entity, file = %file_name, by = %signed.token.name, "push started in the console");
        let instance = name.clone();
        Ok(spawn_job(
            &console,
            &name,
            format!("push of {file_name} ({entity})"),
            move |instances, job| async move {
                let owner = crate::sync::lease::new_owner("console");
                let progress = |done: usize, total: usize| job.progress(done, total);
                let outcome = service::push_text(
                    &instances,
                    &instance,
                    entity,
                    &text,
                    false,
                    Some(&progress),
                    console_run_by(&owner),
                )
                .await;
                let end = match outcome {
                    Ok(outcome) => JobEnd {
                        ok: outcome.all_succeeded(),
                        summary: push_summary(&outcome.report, outcome.settle_error.as_deref()),
                        run: Some(outcome.report.run),
                    },
                    Err(e) => JobEnd {
                        ok: false,
                        summary: e.to_string(),
                        run: None,
                    },
                };
                let _ = std::fs::remove_file(&path);
                end
            },
        ))
    })();
    answer(console, signed, result)
}

fn push_summary(report: &crate::sync::engine::PushReport, settle_error: Option<&str>) -> String {
    let mut text = format!(
        "{} records: {} created, {} updated, {} unchanged, {} reconciled, {} queued, {} skipped, {} held, {} failed",
        report.records,
        report.created,
        report.updated,
        report.unchanged,
        report.reconciled,
        report.queued,
        report.skipped,
        report.held,
        report.failed
    );
    if let Some(error) = settle_error {
        text.push_str(&format!(
            "; the queued records it unblocked could not be sent: {error}"
        ));
    }
    text
}

/// *Pull now*: the records go to the instance's change feed, where the BSS reads them.
async fn pull_now(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(name): UrlPath<String>,
    fields: Fields,
) -> Answer {
    let result = (|| {
        signed.allow(&fields, Role::Operator)?;
        let entity = entity_field(&fields)?;
        instances(&console).get(&name)?;
        tracing::info!(instance = %name, %entity, by = %signed.token.name, "pull started in the console");
        let instance = name.clone();
        Ok(spawn_job(
            &console,
            &name,
            format!("pull of {entity} into the change feed"),
            move |instances, _job| async move {
                let owner = crate::sync::lease::new_owner("console");
                let outcome = service::pull_to(
                    &instances,
                    &instance,
                    entity,
                    crate::sync::engine::PullFrom {
                        since: None,
                        include_echoes: false,
                        feed: true,
                    },
                    &mut std::io::sink(),
                    console_run_by(&owner),
                )
                .await;
                match outcome {
                    Ok(report) => JobEnd {
                        ok: report.complete(),
                        summary: format!(
                            "{} records delivered, {} new in the change feed, {} pages, {} refused",
                            report.delivered, report.fed, report.pages, report.refused
                        ),
                        run: Some(report.run),
                    },
                    Err(e) => JobEnd {
                        ok: false,
                        summary: e.to_string(),
                        run: None,
                    },
                }
            },
        ))
    })();
    answer(console, signed, result)
}

/// *Retry now*: sends the instance's retry queue.
async fn retry_now(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(name): UrlPath<String>,
    fields: Fields,
) -> Answer {
    let result = (|| {
        signed.allow(&fields, Role::Operator)?;
        instances(&console).get(&name)?;
        let instance = name.clone();
        Ok(spawn_job(
            &console,
            &name,
            "retry of the queue".to_string(),
            move |instances, _job| async move {
                let owner = crate::sync::lease::new_owner("console");
                match service::retry(&instances, &instance, console_run_by(&owner)).await {
                    Ok(report) => JobEnd {
                        ok: report.all_succeeded(),
                        summary: format!(
                            "{} queued records claimed; {}{}",
                            report.claimed,
                            report
                                .runs
                                .iter()
                                .map(|(e, r)| format!("{e}: {}", push_summary(r, None)))
                                .collect::<Vec<_>>()
                                .join("; "),
                            if report.busy.is_empty() {
                                String::new()
                            } else {
                                format!(
                                    "; left for the run holding them: {}",
                                    report
                                        .busy
                                        .iter()
                                        .map(|e| e.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            }
                        ),
                        run: report.runs.last().map(|(_, r)| r.run),
                    },
                    Err(e) => JobEnd {
                        ok: false,
                        summary: e.to_string(),
                        run: None,
                    },
                }
            },
        ))
    })();
    answer(console, signed, result)
}

fn job_of(console: &Shared, id: &str) -> Result<std::sync::Arc<Job>, PageError> {
    console.jobs.get(id).ok_or_else(|| {
        PageError::not_found("there is no such job here (jobs are kept by the serve that ran them, until it stops); the instance's runs page lists every run")
    })
}

async fn job_page(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(id): UrlPath<String>,
) -> Answer {
    let result = job_of(&console, &id).map(|job| {
        let view = job.view();
        console.page(
            "job.html",
            Some(&signed),
            serde_json::json!({
                "title": job.what.clone(),
                "nav": "instances",
                "tab": "runs",
                "name": job.instance.clone(),
                "job": view,
            }),
        )
    });
    answer(console, signed, result)
}

/// The job's progress as JSON, for the page's script.
async fn job_status(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(id): UrlPath<String>,
) -> Answer {
    let result = job_of(&console, &id).map(|job| {
        let mut response = axum::response::IntoResponse::into_response(axum::Json(job.view()));
        super::secure_headers(response.headers_mut());
        response
    });
    answer(console, signed, result)
}

fn schedules_view(
    console: &Shared,
    signed: &Signed,
    name: &str,
    form: (&str, &str, Vec<(String, String)>),
    notice: Option<&str>,
) -> Result<Response, PageError> {
    let instances = instances(console);
    let view = instances.view(name)?;
    let (feed, feed_state) = crate::sync::history::feed(instances, name, None, 20)?;
    let (target, cadence, problems) = form;
    Ok(console.page_with(
        refused_if(!problems.is_empty()),
        "schedules.html",
        Some(signed),
        serde_json::json!({
            "title": format!("Schedules and feed · {name}"),
            "nav": "instances",
            "tab": "schedules",
            "name": name,
            "view": view,
            "schedules": crate::scheduler::schedules::list(instances, Some(name))?,
            "feed": feed.iter().map(|l| serde_json::json!({
                "seq": l.seq, "entity": l.entity, "remote_id": l.remote_id,
                "change": l.change, "at": l.at, "run": l.run,
            })).collect::<Vec<_>>(),
            "feed_state": feed_state,
            "hook": instances.hook_view(name)?,
            "target": target,
            "cadence": cadence,
            "target_error": problems.iter().filter(|(k, _)| k == "schedule" || k == "entity").map(|(_, m)| m.clone()).collect::<Vec<_>>().join("; "),
            "cadence_error": problems.iter().filter(|(k, _)| k == "cadence").map(|(_, m)| m.clone()).collect::<Vec<_>>().join("; "),
            "notice": notice,
        }),
    ))
}

async fn schedules_page(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(name): UrlPath<String>,
    done: super::Done,
) -> Answer {
    let result = schedules_view(
        &console,
        &signed,
        &name,
        ("", "every 15m", Vec::new()),
        done.0,
    );
    answer(console, signed, result)
}

/// Adds or replaces a schedule of the instance (admins, as in the API).
async fn set_schedule(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(name): UrlPath<String>,
    fields: Fields,
) -> Answer {
    let result = (|| {
        signed.allow(&fields, Role::Admin)?;
        let (target, cadence) = (fields.text("target"), fields.text("cadence"));
        match crate::scheduler::schedules::set(instances(&console), &name, &target, &cadence) {
            Ok(_) => {
                tracing::info!(instance = %name, %target, %cadence, by = %signed.token.name, "schedule set in the console");
                Ok(see_other(&format!(
                    "/instances/{name}/schedules?done=saved"
                )))
            }
            Err(crate::instances::InstanceError::Invalid(problems)) => schedules_view(
                &console,
                &signed,
                &name,
                (&target, &cadence, problems),
                None,
            ),
            Err(e) => Err(e.into()),
        }
    })();
    answer(console, signed, result)
}

async fn remove_schedule(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath((name, target)): UrlPath<(String, String)>,
    fields: Fields,
) -> Answer {
    let result = (|| {
        signed.allow(&fields, Role::Admin)?;
        crate::scheduler::schedules::remove(instances(&console), &name, &target)?;
        tracing::info!(instance = %name, %target, by = %signed.token.name, "schedule removed in the console");
        Ok(see_other(&format!(
            "/instances/{name}/schedules?done=saved"
        )))
    })();
    answer(console, signed, result)
}

async fn health_page(State(console): State<Shared>, signed: Signed) -> Answer {
    let result = (|| {
        let health = crate::scheduler::health(instances(&console))?;
        Ok(console.page(
            "health.html",
            Some(&signed),
            serde_json::json!({
                "title": "Health",
                "nav": "health",
                "health": health,
                "schedules": crate::scheduler::schedules::list(instances(&console), None)?,
            }),
        ))
    })();
    answer(console, signed, result)
}
