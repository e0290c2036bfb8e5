//! The routes of remote callbacks and deletions: the hook the remote posts to
//! (`POST /hooks/{instance}/{token}`, outside `/api/v1`: the token in its URL is its
//! authentication, and ConnectWise's signature is checked), and under `/api/v1` an instance's
//! subscription (`/instances/{name}/callbacks`), its recent events, a reconciling pass and the
//! removal of remote records the BSS deleted.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiResult, Params, Shared, api_run_by, error, instances};
use crate::instances::InstanceError;
use crate::sync::service::parse_entity;

/// `POST /hooks/{instance}/{token}`: answered at once; the worker fetches the record later.
pub(super) async fn receive(
    State(state): State<Shared>,
    UrlPath((name, token)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signature = headers
        .get("x-content-signature")
        .and_then(|v| v.to_str().ok());
    match state
        .receiver
        .receive(&name, &token, signature, &body)
        .await
    {
        Ok(accepted) => (StatusCode::OK, Json(json!(accepted))).into_response(),
        Err(refused) => {
            let status = StatusCode::from_u16(refused.status()).unwrap_or(StatusCode::BAD_REQUEST);
            error(status, refused.to_string(), vec![])
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(super) struct SubscribeBody {
    public_url: String,
    entities: Option<Vec<String>>,
}

fn entities(
    names: Option<Vec<String>>,
) -> Result<Option<Vec<crate::contract::manifest::Entity>>, ApiError> {
    names
        .map(|list| {
            list.iter()
                .map(|n| parse_entity(n))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(ApiError::from)
}

pub(super) async fn show(State(state): State<Shared>, UrlPath(name): UrlPath<String>) -> ApiResult {
    let view = instances(&state).hook_view(&name)?.ok_or_else(|| {
        InstanceError::NotFound(format!(
            "{name} is not subscribed to callbacks; PUT /api/v1/instances/{name}/callbacks subscribes it"
        ))
    })?;
    Ok(Json(json!(view)))
}

pub(super) async fn subscribe(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
    Json(body): Json<SubscribeBody>,
) -> ApiResult {
    let wanted = entities(body.entities)?;
    let view = instances(&state)
        .subscribe_callbacks(&name, &body.public_url, wanted)
        .await?;
    Ok(Json(json!(view)))
}

pub(super) async fn unsubscribe(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult {
    instances(&state).unsubscribe_callbacks(&name, true).await?;
    Ok(Json(json!({ "unsubscribed": name })))
}

#[derive(Deserialize)]
pub(super) struct EventsQuery {
    limit: Option<usize>,
}

pub(super) async fn events(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
    Params(query): Params<EventsQuery>,
) -> ApiResult {
    let limit = query.limit.unwrap_or(100).clamp(1, 1_000);
    let events = instances(&state)
        .store()
        .events(&name, limit)
        .map_err(InstanceError::from)?;
    Ok(Json(json!({ "events": events })))
}

pub(super) async fn reconcile(
    State(state): State<Shared>,
    UrlPath((name, entity)): UrlPath<(String, String)>,
) -> Result<Response, ApiError> {
    let entity = parse_entity(&entity)?;
    let owner = crate::sync::lease::new_owner("api");
    let report =
        crate::sync::service::reconcile(instances(&state), &name, entity, api_run_by(&owner))
            .await?;
    let status = if report.stopped.is_none() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(json!(report))).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(super) struct RemoveBody {
    bss_ids: Vec<String>,
    #[serde(default)]
    dry_run: bool,
}

pub(super) async fn remove(
    State(state): State<Shared>,
    UrlPath((name, entity)): UrlPath<(String, String)>,
    Json(body): Json<RemoveBody>,
) -> Result<Response, ApiError> {
    let entity = parse_entity(&entity)?;
    let owner = crate::sync::lease::new_owner("api");
    let report = crate::sync::service::remove(
        instances(&state),
        &name,
        entity,
        &body.bss_ids,
        body.dry_run,
        api_run_by(&owner),
    )
    .await?;
    let status = if report.all_succeeded() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(json!(report))).into_response())
}
