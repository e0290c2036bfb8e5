//! The operator console: the BSS documentation's setup pages (Systems Setup, Edit Integration,
//! Enabled Connectors, Settings, Synchronization Options and Lookups) and the operator's pages
//! (runs, the retry queue, pushing a file, pulling, schedules, the change feed, health), served
//! by `serve` at `/` beside the API. Pages are rendered on the server from templates embedded in
//! the binary (`templates/`), with one stylesheet and one small script (`assets/`); every form
//! works without JavaScript, which only adds inline checks and live progress. Access is by the
//! API's named tokens: signing in with one starts a session (`session`), and the token's role
//! decides what the pages offer and what the forms may do, as in the API.

mod instance_pages;
mod jobs;
mod run_pages;
mod session;
mod setup_pages;
mod token_pages;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::Environment;
use serde_json::Value;

use crate::instances::{InstanceError, Instances};
use crate::store::token_store::Role;

pub use session::SESSION_SECS;
use session::Signed;

/// What every console handler shares.
pub struct Console {
    instances: Arc<Instances>,
    templates: Environment<'static>,
    jobs: jobs::Jobs,
    /// Where uploaded files wait between their dry run and their run.
    uploads: std::path::PathBuf,
    /// Cookies are `Secure` whatever the request says (`serve --secure-cookies`).
    secure_cookies: bool,
}

type Shared = Arc<Console>;

/// The templates, embedded so the binary needs no files beside it.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html")),
    ("sign_in.html", include_str!("templates/sign_in.html")),
    ("error.html", include_str!("templates/error.html")),
    ("setup.html", include_str!("templates/setup.html")),
    ("activate.html", include_str!("templates/activate.html")),
    (
        "edit_integration.html",
        include_str!("templates/edit_integration.html"),
    ),
    ("instances.html", include_str!("templates/instances.html")),
    ("delete.html", include_str!("templates/delete.html")),
    (
        "instance_nav.html",
        include_str!("templates/instance_nav.html"),
    ),
    ("settings.html", include_str!("templates/settings.html")),
    (
        "sync_options.html",
        include_str!("templates/sync_options.html"),
    ),
    ("lookups.html", include_str!("templates/lookups.html")),
    ("runs.html", include_str!("templates/runs.html")),
    ("run.html", include_str!("templates/run.html")),
    (
        "push_review.html",
        include_str!("templates/push_review.html"),
    ),
    ("job.html", include_str!("templates/job.html")),
    ("schedules.html", include_str!("templates/schedules.html")),
    ("health.html", include_str!("templates/health.html")),
    ("tokens.html", include_str!("templates/tokens.html")),
];

const STYLESHEET: &str = include_str!("assets/console.css");
const SCRIPT: &str = include_str!("assets/console.js");

/// Every console page's security headers: nothing from elsewhere runs, nothing frames the page,
/// and nothing is cached (pages show settings and records).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

impl Console {
    pub fn new(instances: Arc<Instances>, data: &std::path::Path, secure_cookies: bool) -> Console {
        let mut templates = Environment::new();
        for (name, source) in TEMPLATES {
            templates
                .add_template(name, source)
                .unwrap_or_else(|e| panic!("console template {name} does not parse: {e}"));
        }
        Console {
            instances,
            templates,
            jobs: jobs::Jobs::default(),
            uploads: data.join("uploads"),
            secure_cookies,
        }
    }

    /// Renders page `template` for `signed` (none on the sign-in page) with `values`.
    fn page(&self, template: &str, signed: Option<&Signed>, values: Value) -> Response {
        self.page_with(StatusCode::OK, template, signed, values)
    }

    fn page_with(
        &self,
        status: StatusCode,
        template: &str,
        signed: Option<&Signed>,
        values: Value,
    ) -> Response {
        let mut values = values;
        if let (Some(s), Value::Object(map)) = (signed, &mut values) {
            map.insert(
                "me".into(),
                serde_json::json!({ "name": s.token.name, "role": s.token.role.as_str() }),
            );
            map.insert("csrf".into(), Value::String(s.csrf.clone()));
            map.insert(
                "can_operate".into(),
                Value::Bool(s.token.role >= Role::Operator),
            );
            map.insert("can_admin".into(), Value::Bool(s.token.role >= Role::Admin));
        }
        let rendered = self
            .templates
            .get_template(template)
            .and_then(|t| t.render(minijinja::value::Serde(&values)));
        match rendered {
            Ok(html) => html_response(status, html),
            Err(e) => {
                let reference = crate::store::secrets::random_token(6);
                tracing::error!(%reference, "console page {template} failed to render: {e:#}");
                html_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "<!doctype html><title>Error</title><p>The page could not be shown (reference {}; the host's log has the details).</p>",
                        escape(&reference)
                    ),
                )
            }
        }
    }

    /// An error page saying what happened and what to do. The host's own failures (500, 503)
    /// are logged with a reference, and the page gives only the reference: their details (paths,
    /// database errors) are not for the browser.
    fn error_page(&self, signed: Option<&Signed>, mut error: PageError) -> Response {
        if matches!(
            error.status,
            StatusCode::INTERNAL_SERVER_ERROR | StatusCode::SERVICE_UNAVAILABLE
        ) {
            let reference = crate::store::secrets::random_token(6);
            tracing::error!(%reference, status = %error.status, "console request failed: {}", error.message);
            error.message = format!(
                "the host could not do this (reference {reference}; its log has the details). Try again; if it goes on, tell whoever runs the host"
            );
        }
        self.page_with(
            error.status,
            "error.html",
            signed,
            serde_json::json!({ "title": error.title, "message": error.message }),
        )
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html_response(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(headers);
    response
}

fn secure_headers(headers: &mut axum::http::HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// A page that could not do what was asked: the status, a title and what to do.
pub struct PageError {
    status: StatusCode,
    title: &'static str,
    message: String,
}

impl PageError {
    fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> PageError {
        PageError {
            status,
            title,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::NOT_FOUND, "Not found", message)
    }

    fn bad_request(message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::BAD_REQUEST, "Not accepted", message)
    }
}

impl From<InstanceError> for PageError {
    fn from(e: InstanceError) -> Self {
        let message = e.to_string();
        let status = match &e {
            InstanceError::Invalid(_) => StatusCode::BAD_REQUEST,
            InstanceError::Store(crate::store::StoreError::NoInstance(_))
            | InstanceError::NotFound(_) => StatusCode::NOT_FOUND,
            InstanceError::Store(
                crate::store::StoreError::DuplicateInstance(_)
                | crate::store::StoreError::Conflict(_),
            )
            | InstanceError::Disabled(_)
            | InstanceError::NeedsSettings { .. } => StatusCode::CONFLICT,
            InstanceError::Call(_)
            | InstanceError::Choices { .. }
            | InstanceError::Callbacks(_) => StatusCode::BAD_GATEWAY,
            InstanceError::Registry(e) => match **e {
                crate::registry::RegistryError::Unknown(_)
                | crate::registry::RegistryError::NoMatchingVersion { .. } => StatusCode::NOT_FOUND,
                crate::registry::RegistryError::BadRequirement(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        PageError::new(status, "Could not be done", message)
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        PageError::from(InstanceError::from(e))
    }
}

impl From<crate::registry::RegistryError> for PageError {
    fn from(e: crate::registry::RegistryError) -> Self {
        PageError::from(InstanceError::from(e))
    }
}

/// A handler's answer: a page, or an error page for the signed-in user.
type PageResult = Result<Response, (Option<Signed>, PageError)>;

/// Turns a handler's error into its page.
struct Answer(Shared, PageResult);

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self.1 {
            Ok(response) => response,
            Err((signed, error)) => self.0.error_page(signed.as_ref(), error),
        }
    }
}

/// A handler's page, or its error shown to `signed`.
fn answer(console: Shared, signed: Signed, result: Result<Response, PageError>) -> Answer {
    Answer(console, result.map_err(|e| (Some(signed), e)))
}

/// 400 for a form shown again with what was refused, else 200.
fn refused_if(refused: bool) -> StatusCode {
    if refused {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

/// A posted form's fields in order (a name may repeat).
pub struct Fields(Vec<(String, String)>);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Fields {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Response> {
        match axum::Form::<Vec<(String, String)>>::from_request(request, state).await {
            Ok(axum::Form(fields)) => Ok(Fields(fields)),
            Err(rejection) => Err(html_response(
                StatusCode::BAD_REQUEST,
                format!(
                    "<!doctype html><title>Not accepted</title><p>The form could not be read: {}</p>",
                    escape(&rejection.body_text())
                ),
            )),
        }
    }
}

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().trim().to_string()
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// A redirect after a successful post (303: the browser follows with GET).
fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

pub fn router(instances: Arc<Instances>, data: &std::path::Path, secure_cookies: bool) -> Router {
    let console: Shared = Arc::new(Console::new(instances, data, secure_cookies));
    Router::new()
        .route("/", get(home))
        .route("/assets/console.css", get(stylesheet))
        .route("/assets/console.js", get(script))
        .route(
            "/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/sign-out", post(session::sign_out))
        .merge(setup_pages::routes())
        .merge(instance_pages::routes())
        .merge(run_pages::routes())
        .merge(token_pages::routes())
        // An upload is a push file: the same bound as the API's request bodies.
        .layer(axum::extract::DefaultBodyLimit::max(
            run_pages::MAX_UPLOAD_BYTES,
        ))
        .with_state(console)
}

async fn home(signed: Option<Signed>) -> Response {
    match signed {
        Some(_) => see_other("/setup"),
        None => see_other("/sign-in"),
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// The console's own state, for handlers in the submodules.
fn instances(console: &Console) -> &Instances {
    &console.instances
}

/// The notice a page shows after a post redirected to it (`?done=saved`): a fixed text per code,
/// so a link cannot make the console say anything else.
pub struct Done(Option<&'static str>);

const NOTICES: &[(&str, &str)] = &[
    (
        "created",
        "The instance was created. Fill in its settings below, then save: the connection is checked on save.",
    ),
    ("saved", "Saved."),
    (
        "rolled-back",
        "The newest version was rolled back; instances that follow the newest version use the one before it from their next call.",
    ),
    ("restored", "The version was restored."),
    ("enabled", "The instance is enabled."),
    (
        "disabled",
        "The instance is disabled: no call reaches its connector until it is enabled again.",
    ),
    ("deleted", "The instance was deleted."),
    ("pinned", "The instance's version choice was saved."),
    (
        "revoked",
        "The token was revoked; its sessions are signed out.",
    ),
];

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Done {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let code = parts.uri.query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "done")
                .map(|(_, v)| v.into_owned())
        });
        Ok(Done(code.and_then(|code| {
            NOTICES
                .iter()
                .find(|(c, _)| *c == code)
                .map(|(_, text)| *text)
        })))
    }
}
