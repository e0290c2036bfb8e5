//! *Access tokens*, for admins: the named tokens with their roles (never the tokens themselves),
//! a form that makes one and shows it once, and *Revoke*, which also ends the sessions signed in
//! with it. The same as `bss-host tokens create|list|revoke`.

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::routing::{get, post};

use super::{Answer, Done, Fields, PageError, Shared, Signed, answer, refused_if, see_other};
use crate::store::token_store::Role;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/tokens", get(tokens_page).post(create))
        .route("/tokens/{name}/revoke", post(revoke))
}

struct TokenForm<'a> {
    name: &'a str,
    role: &'a str,
    error: Option<String>,
    /// A token just made: shown this once.
    made: Option<(String, String)>,
    notice: Option<&'static str>,
}

fn page(
    console: &Shared,
    signed: &Signed,
    form: TokenForm<'_>,
) -> Result<axum::response::Response, PageError> {
    let tokens = console.instances.store().tokens()?;
    Ok(console.page_with(
        refused_if(form.error.is_some()),
        "tokens.html",
        Some(signed),
        serde_json::json!({
            "title": "Access tokens",
            "nav": "tokens",
            "tokens": tokens,
            "roles": Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            "name": form.name,
            "role": form.role,
            "name_error": form.error,
            "made": form.made.map(|(name, token)| serde_json::json!({ "name": name, "token": token })),
            "notice": form.notice,
        }),
    ))
}

async fn tokens_page(State(console): State<Shared>, signed: Signed, done: Done) -> Answer {
    let result = signed.require(Role::Admin).and_then(|()| {
        page(
            &console,
            &signed,
            TokenForm {
                name: "",
                role: "viewer",
                error: None,
                made: None,
                notice: done.0,
            },
        )
    });
    answer(console, signed, result)
}

async fn create(State(console): State<Shared>, signed: Signed, fields: Fields) -> Answer {
    let result = (|| {
        signed.allow(&fields, Role::Admin)?;
        let (name, role_text) = (fields.text("name"), fields.text("role"));
        let made = role_text
            .parse::<Role>()
            .map_err(|e| crate::instances::InstanceError::Invalid(vec![("role".into(), e)]))
            .and_then(|role| {
                crate::api::tokens::create(console.instances.store().as_ref(), &name, role)
                    .map(|token| (role, token))
            });
        let mut form = TokenForm {
            name: &name,
            role: &role_text,
            error: None,
            made: None,
            notice: None,
        };
        match made {
            Ok((role, token)) => {
                tracing::info!(token = %name, %role, by = %signed.token.name, "token made in the console");
                form.made = Some((name.clone(), token));
                form.name = "";
            }
            Err(crate::instances::InstanceError::Invalid(problems)) => {
                form.error = Some(
                    problems
                        .into_iter()
                        .map(|p| p.1)
                        .collect::<Vec<_>>()
                        .join("; "),
                );
            }
            Err(crate::instances::InstanceError::Store(crate::store::StoreError::Conflict(m))) => {
                form.error = Some(m);
            }
            Err(e) => return Err(e.into()),
        }
        let mut response = page(&console, &signed, form)?;
        // The page shows a token once: nothing may keep it.
        response.headers_mut().insert(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
        Ok(response)
    })();
    answer(console, signed, result)
}

async fn revoke(
    State(console): State<Shared>,
    signed: Signed,
    UrlPath(name): UrlPath<String>,
    fields: Fields,
) -> Answer {
    let result = (|| {
        signed.allow(&fields, Role::Admin)?;
        crate::api::tokens::revoke(console.instances.store().as_ref(), &name)?;
        tracing::info!(token = %name, by = %signed.token.name, "token revoked in the console");
        if name == signed.token.name {
            // Its own sessions ended with it: this one too.
            return Ok(see_other("/sign-in"));
        }
        Ok(see_other("/tokens?done=revoked"))
    })();
    answer(console, signed, result)
}
