//! The admin HTTP API under `/api/v1`: the same operations as the command, JSON in and out.
//!
//! Every route but `/api/v1/openapi.json` needs `Authorization: Bearer <token>`, a named token
//! whose role allows the route (`tokens`: 401 for no or a wrong token, 403 for a role that may
//! not); the callback hook (`/hooks/{instance}/{token}`, see `callbacks`) is authenticated by its
//! URL token and the remote's signature instead. Errors are
//! `{"error": "...", "problems": [[key, message]]}` with 400 (bad input), 401, 403, 404 (unknown
//! instance or connector), 409 (duplicate, disabled) or 502 (the connector or remote failed).

mod callbacks;
mod openapi;
pub mod tokens;

use std::sync::Arc;

use axum::extract::{Extension, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::instances::{InstanceError, Instances, parse_sync_option};
use crate::registry::RegistryError;
use crate::scheduler::schedules;
use crate::store::StoreError;
use crate::sync::history;

struct ApiState {
    app: App,
    receiver: crate::callbacks::Receiver,
}

type Shared = Arc<ApiState>;

pub fn router(app: App) -> Router {
    let receiver = crate::callbacks::Receiver::new(app.instances.clone());
    let state: Shared = Arc::new(ApiState { app, receiver });
    let protected = Router::new()
        .route("/connectors", get(list_connectors))
        .route("/instances", get(list_instances).post(activate))
        .route(
            "/instances/{name}",
            get(show_instance).delete(delete_instance),
        )
        .route("/instances/{name}/enable", post(enable))
        .route("/instances/{name}/disable", post(disable))
        .route("/instances/{name}/check", post(check))
        .route(
            "/instances/{name}/settings",
            get(show_settings).patch(set_settings),
        )
        .route("/instances/{name}/lookups", get(show_lookups))
        .route(
            "/instances/{name}/lookups/{lookup}",
            axum::routing::put(set_lookups),
        )
        .route(
            "/instances/{name}/lookups/{lookup}/choices",
            get(lookup_choices),
        )
        .route(
            "/instances/{name}/sync-options",
            get(show_sync_options).put(set_sync_options),
        )
        .route("/trust", get(list_trust).post(add_trust))
        .route("/trust/{name}", axum::routing::delete(remove_trust))
        .route("/audit", get(read_audit))
        .route("/connectors/{name}/rollback", post(rollback))
        .route("/connectors/{name}/restore/{version}", post(restore))
        .route("/instances/{name}/push/{entity}", post(push))
        .route("/instances/{name}/jobs/push/{entity}", post(submit_push))
        .route("/jobs", get(list_jobs))
        .route("/jobs/{job}", get(show_job).delete(cancel_job))
        .route("/instances/{name}/pull/{entity}", post(pull))
        .route("/instances/{name}/retry", post(retry_queue))
        .route("/instances/{name}/link/{entity}", post(link))
        .route("/instances/{name}/retry-queue", get(show_queue))
        .route("/instances/{name}/runs", get(list_runs))
        .route("/runs/{run}", get(show_run))
        .route("/health", get(health))
        .route("/schedules", get(list_all_schedules))
        .route("/schedules/run-due", post(run_due_schedules))
        .route("/instances/{name}/schedules", get(list_schedules))
        .route(
            "/instances/{name}/schedules/{target}",
            axum::routing::put(set_schedule).delete(remove_schedule),
        )
        .route("/instances/{name}/feed", get(read_feed))
        .route("/instances/{name}/feed/ack", post(ack_feed))
        .route(
            "/instances/{name}/callbacks",
            get(callbacks::show)
                .put(callbacks::subscribe)
                .delete(callbacks::unsubscribe),
        )
        .route("/instances/{name}/callbacks/events", get(callbacks::events))
        .route(
            "/instances/{name}/reconcile/{entity}",
            post(callbacks::reconcile),
        )
        .route("/instances/{name}/remove/{entity}", post(callbacks::remove))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    let api = Router::new()
        .route("/openapi.json", get(|| async { Json(openapi::document()) }))
        .merge(protected)
        .with_state(state.clone());
    let metrics = Router::new()
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state.clone());
    let hooks = Router::new()
        .route("/hooks/{name}/{token}", post(callbacks::receive))
        // Read no more than a delivery may be (the answer is 413), before the token is checked.
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::callbacks::receive::MAX_BODY_BYTES + 1,
        ))
        .with_state(state.clone());
    Router::new()
        .nest("/api/v1", api)
        .merge(metrics)
        .merge(hooks)
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such route; see /api/v1/openapi.json".into(),
                vec![],
            )
        })
}

/// Who made an API request, for the audit log (`token:NAME`).
#[derive(Debug, Clone)]
pub struct Actor(pub String);

async fn require_token(
    State(state): State<Shared>,
    headers: HeaderMap,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(presented) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return error(
            StatusCode::UNAUTHORIZED,
            "this route needs Authorization: Bearer <token>".into(),
            vec![],
        );
    };
    let token = match state.app.store.token_by_hash(&tokens::hash(presented)) {
        Ok(Some(token)) => token,
        Ok(None) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "the bearer token is wrong or revoked".into(),
                vec![],
            );
        }
        Err(e) => return ApiError::from(InstanceError::from(e)).into_response(),
    };
    let needed = tokens::required_role(request.method(), request.uri().path());
    if token.role < needed {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "the token {:?} is a {}; {} {} needs a{} {} token",
                token.name,
                token.role,
                request.method(),
                request.uri().path(),
                if needed == crate::store::token_store::Role::Admin {
                    "n"
                } else {
                    ""
                },
                needed
            ),
            vec![],
        );
    }
    request
        .extensions_mut()
        .insert(Actor(crate::store::trust_store::token_actor(&token.name)));
    next.run(request).await
}

fn error(status: StatusCode, message: String, problems: Vec<(String, String)>) -> Response {
    (
        status,
        Json(json!({ "error": message, "problems": problems })),
    )
        .into_response()
}

/// An error as the API answers it: the status says whose fault it is (the request 400/404/409,
/// the remote 502, the store 503), the body says what to do.
struct ApiError {
    status: StatusCode,
    message: String,
    problems: Vec<(String, String)>,
}

impl ApiError {
    fn new(status: StatusCode, message: String) -> Self {
        ApiError {
            status,
            message,
            problems: vec![],
        }
    }
}

fn store_status(error: &StoreError) -> StatusCode {
    match error {
        StoreError::NoInstance(_) => StatusCode::NOT_FOUND,
        StoreError::DuplicateInstance(_) | StoreError::Conflict(_) => StatusCode::CONFLICT,
        StoreError::Open { .. } | StoreError::NewerSchema { .. } | StoreError::Database(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

impl From<InstanceError> for ApiError {
    fn from(e: InstanceError) -> Self {
        let message = e.to_string();
        let (status, problems) = match e {
            InstanceError::Invalid(problems) => (StatusCode::BAD_REQUEST, problems),
            InstanceError::Store(e) => (store_status(&e), vec![]),
            InstanceError::Registry(e) => match *e {
                RegistryError::Unknown(_)
                | RegistryError::NoMatchingVersion { .. }
                | RegistryError::UnknownKey(_) => (StatusCode::NOT_FOUND, vec![]),
                RegistryError::BadRequirement(_) | RegistryError::BadTrust(_) => {
                    (StatusCode::BAD_REQUEST, vec![])
                }
                RegistryError::Store(e) => (store_status(&e), vec![]),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, vec![]),
            },
            InstanceError::NotFound(_) => (StatusCode::NOT_FOUND, vec![]),
            InstanceError::Disabled(_) | InstanceError::NeedsSettings { .. } => {
                (StatusCode::CONFLICT, vec![])
            }
            InstanceError::Call(_)
            | InstanceError::Choices { .. }
            | InstanceError::Callbacks(_) => (StatusCode::BAD_GATEWAY, vec![]),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, vec![]),
        };
        ApiError {
            status,
            message,
            problems,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.status, self.message, self.problems)
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

/// A query string parsed into `T`; one that does not parse is a 400 in the API's JSON error shape
/// (axum's own rejection is plain text).
struct Params<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S>
    for Params<T>
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Params(value)),
            Err(rejection) => Err(error(
                StatusCode::BAD_REQUEST,
                format!("the query string is not valid: {}", rejection.body_text()),
                vec![],
            )),
        }
    }
}

fn instances(state: &Shared) -> &Instances {
    &state.app.instances
}

async fn list_connectors(State(state): State<Shared>) -> ApiResult {
    let loaded = state.app.registry.listing().map_err(InstanceError::from)?;
    Ok(Json(json!({
        "loaded": loaded,
        "refused": state.app.registry.refusals(),
        "allow-unsigned": state.app.registry.allows_unsigned(),
    })))
}

async fn rollback(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult {
    let (withdrawn, serving) = state
        .app
        .registry
        .rollback(&name, &actor.0)
        .map_err(InstanceError::from)?;
    Ok(Json(
        json!({ "withdrawn": withdrawn.to_string(), "serving": serving.to_string() }),
    ))
}

async fn restore(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    UrlPath((name, version)): UrlPath<(String, String)>,
) -> ApiResult {
    state
        .app
        .registry
        .restore(&name, &version, &actor.0)
        .map_err(InstanceError::from)?;
    Ok(Json(json!({ "restored": version })))
}

async fn list_trust(State(state): State<Shared>) -> ApiResult {
    let keys = state
        .app
        .store
        .trusted_keys()
        .map_err(InstanceError::from)?;
    Ok(Json(json!({
        "keys": keys,
        "bundled": crate::registry::trust::BUNDLED_NAMES,
        "allow-unsigned": state.app.registry.allows_unsigned(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct NewTrustedKey {
    name: String,
    public_key: String,
    #[serde(default = "every_connector")]
    connectors: String,
}

fn every_connector() -> String {
    "*".into()
}

async fn add_trust(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    body: Result<Json<NewTrustedKey>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, Response> {
    let Json(key) = body.map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!(
                "{}; send {{\"name\": …, \"public-key\": \"ed25519:…\", \"connectors\": \"acme-*\"}}",
                e.body_text()
            ),
            vec![],
        )
    })?;
    let added = state
        .app
        .registry
        .trust_key(&key.name, &key.public_key, &key.connectors, &actor.0)
        .map_err(|e| ApiError::from(InstanceError::from(e)).into_response())?;
    Ok(Json(json!(added)))
}

async fn remove_trust(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult {
    let (key, signed) = state
        .app
        .registry
        .distrust_key(&name, &actor.0)
        .map_err(InstanceError::from)?;
    let still_serving: Vec<Value> = signed
        .iter()
        .map(|v| json!({ "name": v.name, "version": v.version, "source": v.source }))
        .collect();
    Ok(Json(json!({
        "removed": key,
        "still-serving": still_serving,
        "note": "files this key signed are refused from the next load on; the versions listed keep serving where they are loaded until rolled back or the process restarts",
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    #[serde(default)]
    after: i64,
    limit: Option<usize>,
}

async fn read_audit(State(state): State<Shared>, Query(query): Query<AuditQuery>) -> ApiResult {
    let limit = query.limit.unwrap_or(200).min(1000);
    let entries = state
        .app
        .store
        .audit_entries(query.after, limit)
        .map_err(InstanceError::from)?;
    Ok(Json(json!({ "entries": entries })))
}

async fn list_instances(State(state): State<Shared>) -> ApiResult {
    Ok(Json(json!(instances(&state).list()?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivateBody {
    connector: String,
    name: String,
    version: Option<String>,
    installation: Option<String>,
}

async fn activate(
    State(state): State<Shared>,
    body: Result<Json<ActivateBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), Response> {
    let Json(body) = body.map_err(|e| error(StatusCode::BAD_REQUEST, e.body_text(), vec![]))?;
    let row = instances(&state)
        .activate(
            &body.connector,
            &body.name,
            body.version.as_deref(),
            body.installation.as_deref(),
        )
        .map_err(|e| ApiError::from(e).into_response())?;
    Ok((StatusCode::CREATED, Json(json!(row))))
}

async fn show_instance(State(state): State<Shared>, UrlPath(name): UrlPath<String>) -> ApiResult {
    Ok(Json(json!(instances(&state).view(&name)?)))
}

#[derive(Deserialize)]
struct Confirm {
    #[serde(default)]
    confirm: bool,
}

async fn delete_instance(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
    Params(confirm): Params<Confirm>,
) -> Result<Json<Value>, Response> {
    instances(&state)
        .get(&name)
        .map_err(|e| ApiError::from(e).into_response())?;
    if !confirm.confirm {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("deleting {name} removes its settings, lookups and id map; add ?confirm=true"),
            vec![],
        ));
    }
    let warning = instances(&state)
        .delete_unsubscribed(&name)
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    Ok(Json(json!({ "deleted": name, "warning": warning })))
}

async fn enable(State(state): State<Shared>, UrlPath(name): UrlPath<String>) -> ApiResult {
    let warning = instances(&state).enable(&name).await?;
    Ok(Json(
        json!({ "name": name, "enabled": true, "warning": warning }),
    ))
}

async fn disable(State(state): State<Shared>, UrlPath(name): UrlPath<String>) -> ApiResult {
    let warning = instances(&state).disable(&name).await?;
    Ok(Json(
        json!({ "name": name, "enabled": false, "warning": warning }),
    ))
}

async fn check(State(state): State<Shared>, UrlPath(name): UrlPath<String>) -> ApiResult {
    Ok(Json(json!(instances(&state).check(&name).await?)))
}

async fn show_settings(State(state): State<Shared>, UrlPath(name): UrlPath<String>) -> ApiResult {
    Ok(Json(json!(instances(&state).show_settings(&name)?)))
}

async fn set_settings(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    UrlPath(name): UrlPath<String>,
    body: Result<
        Json<std::collections::BTreeMap<String, String>>,
        axum::extract::rejection::JsonRejection,
    >,
) -> Result<Json<Value>, Response> {
    let Json(values) = body.map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!(
                "{}; send an object of \"key\": \"value\" strings",
                e.body_text()
            ),
            vec![],
        )
    })?;
    let pairs: Vec<(String, String)> = values.into_iter().collect();
    let complete = instances(&state)
        .set_settings(&name, &pairs, &actor.0)
        .map_err(|e| ApiError::from(e).into_response())?;
    let check = if complete {
        Some(
            instances(&state)
                .check(&name)
                .await
                .map_err(|e| ApiError::from(e).into_response())?,
        )
    } else {
        None
    };
    Ok(Json(
        json!({ "saved": pairs.len(), "complete": complete, "check": check }),
    ))
}

async fn show_lookups(State(state): State<Shared>, UrlPath(name): UrlPath<String>) -> ApiResult {
    Ok(Json(json!(instances(&state).lookups(&name)?)))
}

async fn lookup_choices(
    State(state): State<Shared>,
    UrlPath((name, lookup)): UrlPath<(String, String)>,
) -> ApiResult {
    let choices = instances(&state).lookup_choices(&name, &lookup).await?;
    Ok(Json(json!(
        choices
            .into_iter()
            .map(|(value, label)| json!({ "value": value, "label": label }))
            .collect::<Vec<_>>()
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupBody {
    mappings: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pull_default: Option<String>,
}

async fn set_lookups(
    State(state): State<Shared>,
    UrlPath((name, lookup)): UrlPath<(String, String)>,
    body: Result<Json<LookupBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, Response> {
    let Json(body) = body.map_err(|e| error(StatusCode::BAD_REQUEST, e.body_text(), vec![]))?;
    let pairs: Vec<(String, String)> = body.mappings.into_iter().collect();
    instances(&state)
        .set_lookups(&name, &lookup, &pairs, body.pull_default.as_deref())
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    Ok(Json(json!({ "saved": pairs.len() })))
}

async fn show_sync_options(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult {
    let options = instances(&state).sync_options(&name)?;
    Ok(Json(json!(
        options
            .iter()
            .map(|(e, d, o)| json!({ "entity": e, "direction": d, "operations": o }))
            .collect::<Vec<_>>()
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncOptionsBody {
    options: Vec<String>,
}

async fn set_sync_options(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
    body: Result<Json<SyncOptionsBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, Response> {
    let Json(body) = body.map_err(|e| error(StatusCode::BAD_REQUEST, e.body_text(), vec![]))?;
    let specs = body
        .options
        .iter()
        .map(|o| parse_sync_option(o))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::from(e).into_response())?;
    instances(&state)
        .set_sync_options(&name, &specs)
        .map_err(|e| ApiError::from(e).into_response())?;
    Ok(Json(json!({ "saved": specs.len() })))
}

impl From<crate::sync::service::RunError> for ApiError {
    fn from(e: crate::sync::service::RunError) -> Self {
        use crate::sync::SyncError;
        use crate::sync::service::RunError;
        let message = e.to_string();
        let status = match e {
            RunError::Instance(e) => return ApiError::from(e),
            RunError::Store(e) => store_status(&e),
            RunError::Busy(crate::sync::lease::LeaseError::Held { .. }) => StatusCode::CONFLICT,
            RunError::Busy(crate::sync::lease::LeaseError::Store(e)) => store_status(&e),
            RunError::Sync(e) => match e {
                SyncError::NotEnabled { .. } | SyncError::LeaseLost => StatusCode::CONFLICT,
                SyncError::Store(e) => store_status(&e),
                SyncError::Pull { .. } => StatusCode::BAD_GATEWAY,
                SyncError::Input(..) => StatusCode::BAD_REQUEST,
                SyncError::Output(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        };
        ApiError::new(status, message)
    }
}

/// Who the API's runs are, for the leases they take: they never wait for a busy lease (409).
fn api_run_by(owner: &str) -> crate::sync::service::RunBy<'_> {
    crate::sync::service::RunBy {
        owner,
        who: "the admin API",
        trigger: crate::store::RunTrigger::Api,
        policy: crate::sync::lease::WaitPolicy::Refuse,
    }
}

#[derive(Deserialize)]
struct PushQuery {
    #[serde(default)]
    dry_run: bool,
}

async fn push(
    State(state): State<Shared>,
    UrlPath((name, entity)): UrlPath<(String, String)>,
    Params(query): Params<PushQuery>,
    body: String,
) -> Result<Response, ApiError> {
    let entity = crate::sync::service::parse_entity(&entity)?;
    let owner = crate::sync::lease::new_owner("api");
    let outcome = crate::sync::service::push_text(
        instances(&state),
        &name,
        entity,
        &body,
        query.dry_run,
        None,
        api_run_by(&owner),
    )
    .await?;
    // The run happened either way; 422 says not every record succeeded (the body says which).
    let status = if outcome.all_succeeded() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(json!(outcome))).into_response())
}

/// Queues a push for whichever worker of the fleet is free: 202 with the job's address.
async fn submit_push(
    State(state): State<Shared>,
    UrlPath((name, entity)): UrlPath<(String, String)>,
    Params(query): Params<PushQuery>,
    body: String,
) -> Result<Response, ApiError> {
    let entity = crate::sync::service::parse_entity(&entity)?;
    let job = crate::store::job_store::NewJob {
        kind: crate::store::job_store::JobKind::Push,
        instance: name,
        entity,
        trigger: crate::store::RunTrigger::Api,
        payload: body.into_bytes(),
        dry_run: query.dry_run,
    };
    let id = instances(&state)
        .store()
        .submit_job(&job)
        .map_err(|e| ApiError::new(store_status(&e), e.to_string()))?;
    crate::store::job_store::job_submitted();
    let href = format!("/api/v1/jobs/{id}");
    Ok((
        StatusCode::ACCEPTED,
        [(axum::http::header::LOCATION, href.clone())],
        Json(json!({ "job": id, "state": "queued", "href": href })),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobsQuery {
    instance: Option<String>,
    limit: Option<usize>,
}

async fn list_jobs(State(state): State<Shared>, Params(query): Params<JobsQuery>) -> ApiResult {
    let jobs = instances(&state)
        .store()
        .jobs(
            query.instance.as_deref(),
            query.limit.unwrap_or(100).min(1000),
        )
        .map_err(|e| ApiError::new(store_status(&e), e.to_string()))?;
    Ok(Json(json!(jobs)))
}

/// Cancels a queued job: 200 with the job; 409 when it is running or ended (a running job ends
/// with its run or its worker); 404 when there is none.
async fn cancel_job(State(state): State<Shared>, UrlPath(job): UrlPath<i64>) -> ApiResult {
    use crate::store::job_store::Cancel;
    let store = instances(&state).store();
    let found = store
        .cancel_job(job)
        .map_err(|e| ApiError::new(store_status(&e), e.to_string()))?;
    match found {
        Cancel::Cancelled => show_job(State(state), UrlPath(job)).await,
        Cancel::NotQueued(now) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "job {job} is {now}, not queued: only a job that has not started can be cancelled"
            ),
        )),
        Cancel::NoSuchJob => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("there is no job {job}"),
        )),
    }
}

async fn show_job(State(state): State<Shared>, UrlPath(job): UrlPath<i64>) -> ApiResult {
    match instances(&state)
        .store()
        .job(job)
        .map_err(|e| ApiError::new(store_status(&e), e.to_string()))?
    {
        Some(row) => Ok(Json(json!(row))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("there is no job {job}"),
        )),
    }
}

#[derive(Deserialize)]
struct PullQuery {
    since: Option<String>,
    /// Also return the instance's own pushes coming back.
    #[serde(default)]
    include_echoes: bool,
    /// Also append the records to the instance's change feed.
    #[serde(default)]
    feed: bool,
}

async fn pull(
    State(state): State<Shared>,
    UrlPath((name, entity)): UrlPath<(String, String)>,
    Params(query): Params<PullQuery>,
) -> Result<Response, ApiError> {
    let entity = crate::sync::service::parse_entity(&entity)?;
    let mut out: Vec<u8> = Vec::new();
    let owner = crate::sync::lease::new_owner("api");
    let report = crate::sync::service::pull_to(
        instances(&state),
        &name,
        entity,
        crate::sync::engine::PullFrom {
            since: query.since,
            include_echoes: query.include_echoes,
            feed: query.feed,
        },
        &mut out,
        api_run_by(&owner),
    )
    .await?;
    let records: Vec<Value> = String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let status = if report.complete() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((
        status,
        Json(json!({ "report": report, "records": records })),
    )
        .into_response())
}

async fn retry_queue(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> Result<Response, ApiError> {
    let owner = crate::sync::lease::new_owner("api");
    let report = crate::sync::service::retry(instances(&state), &name, api_run_by(&owner)).await?;
    let status = if report.all_succeeded() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(json!(report))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    bss_id: String,
    remote_id: String,
    /// The record, when it is not held in the retry queue.
    record: Option<Value>,
}

async fn link(
    State(state): State<Shared>,
    UrlPath((name, entity)): UrlPath<(String, String)>,
    body: Result<Json<LinkBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let Json(body) = body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let entity = crate::sync::service::parse_entity(&entity)?;
    let owner = crate::sync::lease::new_owner("api");
    let file = body.record.map(|r| Value::Array(vec![r]).to_string());
    let said = crate::sync::service::link(
        instances(&state),
        &name,
        entity,
        &body.bss_id,
        &body.remote_id,
        file.as_deref(),
        api_run_by(&owner),
    )
    .await?;
    Ok(Json(json!({ "linked": said })))
}

async fn show_queue(State(state): State<Shared>, UrlPath(name): UrlPath<String>) -> ApiResult {
    Ok(Json(json!(history::queue(&state.app.instances, &name)?)))
}

async fn list_runs(State(state): State<Shared>, UrlPath(name): UrlPath<String>) -> ApiResult {
    Ok(Json(json!(history::runs(&state.app.instances, &name)?)))
}

async fn show_run(
    State(state): State<Shared>,
    UrlPath(run): UrlPath<i64>,
) -> Result<Json<Value>, Response> {
    match history::run(&state.app.instances, run).map_err(|e| ApiError::from(e).into_response())? {
        Some((row, items)) => Ok(Json(json!({ "run": row, "items": items }))),
        None => Err(error(
            StatusCode::NOT_FOUND,
            format!("there is no run {run}"),
            vec![],
        )),
    }
}

async fn list_all_schedules(State(state): State<Shared>) -> ApiResult {
    Ok(Json(json!(schedules::list(instances(&state), None)?)))
}

async fn list_schedules(State(state): State<Shared>, UrlPath(name): UrlPath<String>) -> ApiResult {
    Ok(Json(json!(schedules::list(
        instances(&state),
        Some(&name)
    )?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleBody {
    /// `every 5m` or `daily 02:00`.
    cadence: String,
}

async fn set_schedule(
    State(state): State<Shared>,
    UrlPath((name, target)): UrlPath<(String, String)>,
    body: Result<Json<ScheduleBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let Json(body) = body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    Ok(Json(json!(schedules::set(
        instances(&state),
        &name,
        &target,
        &body.cadence
    )?)))
}

async fn remove_schedule(
    State(state): State<Shared>,
    UrlPath((name, target)): UrlPath<(String, String)>,
) -> ApiResult {
    schedules::remove(instances(&state), &name, &target)?;
    Ok(Json(json!({ "removed": target })))
}

async fn run_due_schedules(State(state): State<Shared>) -> Result<Response, ApiError> {
    let runs = schedules::run_due(instances(&state))
        .await
        .map_err(InstanceError::from)?;
    let status = if runs.iter().all(|r| r.ok) {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(json!(runs))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedQuery {
    /// Entries after this sequence number (default: after the acknowledged one).
    after: Option<i64>,
    #[serde(default = "default_feed_limit")]
    limit: usize,
}

fn default_feed_limit() -> usize {
    1000
}

/// The most feed entries one read returns: each holds a whole record, so a page stays bounded.
const MAX_FEED_PAGE: usize = 1_000;

async fn read_feed(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
    Params(query): Params<FeedQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let limit = query.limit.clamp(1, MAX_FEED_PAGE);
    let (lines, feed_state) = history::feed(instances(&state), &name, query.after, limit)?;
    let next_after = lines
        .last()
        .map(|l| l.seq)
        .unwrap_or(query.after.unwrap_or(feed_state.acknowledged));
    let ndjson = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/x-ndjson"));
    if ndjson {
        let mut body = String::new();
        for line in &lines {
            body.push_str(&serde_json::to_string(line).unwrap_or_default());
            body.push('\n');
        }
        return Ok((
            [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
            body,
        )
            .into_response());
    }
    Ok(Json(json!({
        "entries": lines,
        "next-after": next_after,
        "acknowledged": feed_state.acknowledged,
        "newest": feed_state.newest,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    /// Acknowledge entries up to and including this sequence number.
    upto: i64,
}

async fn ack_feed(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
    body: Result<Json<AckBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let Json(body) = body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    Ok(Json(json!(history::ack_feed(
        instances(&state),
        &name,
        body.upto
    )?)))
}

async fn health(State(state): State<Shared>) -> ApiResult {
    Ok(Json(json!(crate::scheduler::health(instances(&state))?)))
}

/// The Prometheus text format, with the store's gauges read now.
async fn metrics(State(state): State<Shared>) -> Result<Response, ApiError> {
    let instances = instances(&state);
    let store = instances.store();
    let (queues, backlogs) = (
        store.queue_depths().map_err(InstanceError::from)?,
        store.feed_backlogs().map_err(InstanceError::from)?,
    );
    let gauges: Vec<(String, i64, i64)> = instances
        .list()?
        .into_iter()
        .map(|i| {
            let queue = queues.get(&i.name).copied().unwrap_or(0);
            let backlog = backlogs.get(&i.name).copied().unwrap_or(0);
            (i.name, queue, backlog)
        })
        .collect();
    crate::metrics::set_store_gauges(&gauges);
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::metrics::render(),
    )
        .into_response())
}
