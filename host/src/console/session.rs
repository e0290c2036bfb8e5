//! Console sign-in: a named API token (`bss-host tokens create`) is exchanged once for a session
//! cookie, so the token is not kept in the browser. The cookie is `HttpOnly` and
//! `SameSite=Strict`, `Secure` when the request came over TLS (a proxy's
//! `X-Forwarded-Proto: https`), and ends after [`SESSION_SECS`], at sign-out, or when its token is
//! revoked. Only the session's SHA-256 is stored, with the session's CSRF token, which every form
//! carries and every post must present ([`Signed::allow`]); the sign-in form, posted before a
//! session exists, is protected by a double-submitted cookie instead.

use axum::extract::{FromRequestParts, OptionalFromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Fields, PageError, Shared, see_other};
use crate::store::token_store::{Role, TokenRow};

/// How long a session lasts from sign-in (eight hours: a working day).
pub const SESSION_SECS: i64 = 8 * 3600;
const SESSION_COOKIE: &str = "bss_session";
/// The sign-in form's double-submit cookie (its value is also in the form).
const SIGN_IN_COOKIE: &str = "bss_sign_in";
const SIGN_IN_SECS: i64 = 900;

/// A signed-in user: the token's name and role, and the session's CSRF token.
#[derive(Clone)]
pub struct Signed {
    pub token: TokenRow,
    pub csrf: String,
}

impl Signed {
    /// Refuses a post without this session's CSRF token, or from a role below `needed`.
    pub fn allow(&self, fields: &Fields, needed: Role) -> Result<(), PageError> {
        if !same(fields.get("csrf").unwrap_or_default(), &self.csrf) {
            return Err(csrf_refused());
        }
        self.require(needed)
    }

    /// Refuses a role below `needed` (403 naming both).
    pub fn require(&self, needed: Role) -> Result<(), PageError> {
        if self.token.role >= needed {
            return Ok(());
        }
        Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Not allowed",
            format!(
                "you are signed in as {:?}, a {}; this needs a{} {} token. Sign in with one (`bss-host tokens create NAME --role {}`)",
                self.token.name,
                self.token.role,
                if needed == Role::Admin { "n" } else { "" },
                needed,
                needed
            ),
        ))
    }
}

fn csrf_refused() -> PageError {
    PageError::new(
        StatusCode::FORBIDDEN,
        "Form refused",
        "the form did not carry this session's security token (it is older than your sign-in, or came from another site); nothing was changed. Go back, reload the page and submit it again",
    )
}

/// Compares secrets in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !b.is_empty()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// Whether cookies set in answer to this request are `Secure`.
fn secure(console: &Shared, headers: &HeaderMap) -> bool {
    console.secure_cookies || over_tls(headers)
}

fn set_cookie(secure: bool, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("cookie values are URL-safe base64")
}

fn session_of(console: &Shared, headers: &HeaderMap) -> Result<Option<Signed>, PageError> {
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let hash = crate::api::tokens::hash(id);
    let row = console
        .instances
        .store()
        .session(&hash, crate::time::now_unix())?;
    Ok(row.map(|row| Signed {
        token: row.token,
        csrf: row.csrf,
    }))
}

impl FromRequestParts<Shared> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Shared) -> Result<Self, Response> {
        match session_of(console, &parts.headers) {
            Ok(Some(signed)) => Ok(signed),
            Ok(None) => {
                let here = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                // A post has nothing to come back to: after signing in, its page is shown.
                let next = if parts.method == axum::http::Method::GET {
                    here.to_string()
                } else {
                    parts.uri.path().to_string()
                };
                Err(see_other(&format!(
                    "/sign-in?next={}",
                    url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                )))
            }
            Err(e) => Err(console.error_page(None, e)),
        }
    }
}

impl OptionalFromRequestParts<Shared> for Signed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Shared,
    ) -> Result<Option<Self>, Response> {
        session_of(console, &parts.headers).map_err(|e| console.error_page(None, e))
    }
}

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// Only a path of this site is a place to go after signing in: it starts with one `/` and holds
/// only URL characters (no `\\`, whitespace or control characters, which browsers drop or bend
/// into `//elsewhere`).
fn safe_next(next: Option<&str>) -> String {
    let local = |n: &str| {
        n.starts_with('/')
            && !n.starts_with("//")
            && n.len() <= 2048
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_.~%?=&#-+:,;@!$'()*".contains(&b))
    };
    match next {
        Some(n) if local(n) => n.to_string(),
        _ => "/setup".to_string(),
    }
}

fn sign_in_form(
    console: &Shared,
    headers: &HeaderMap,
    status: StatusCode,
    next: &str,
    error: Option<String>,
) -> Response {
    let nonce = crate::store::secrets::random_token(24);
    let mut response = console.page_with(
        status,
        "sign_in.html",
        None,
        serde_json::json!({ "title": "Sign in", "nonce": nonce.clone(), "next": next, "error": error }),
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            secure(console, headers),
            SIGN_IN_COOKIE,
            &nonce,
            SIGN_IN_SECS,
        ),
    );
    response
}

pub async fn sign_in_page(
    State(console): State<Shared>,
    headers: HeaderMap,
    Query(next): Query<Next>,
) -> Response {
    if let Ok(Some(_)) = session_of(&console, &headers) {
        return see_other(&safe_next(next.next.as_deref()));
    }
    sign_in_form(
        &console,
        &headers,
        StatusCode::OK,
        &safe_next(next.next.as_deref()),
        None,
    )
}

pub async fn sign_in(
    State(console): State<Shared>,
    headers: HeaderMap,
    fields: Fields,
) -> Response {
    let next = safe_next(fields.get("next"));
    let nonce = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if !same(fields.get("nonce").unwrap_or_default(), nonce) {
        return sign_in_form(
            &console,
            &headers,
            StatusCode::FORBIDDEN,
            &next,
            Some("The sign-in form was stale or came from another site; nothing was done. Enter your token again.".into()),
        );
    }
    let presented = fields.text("token");
    let store = console.instances.store();
    let token = match store.token_by_hash(&crate::api::tokens::hash(&presented)) {
        Ok(Some(token)) if !presented.is_empty() => token,
        Ok(_) => {
            return sign_in_form(
                &console,
                &headers,
                StatusCode::UNAUTHORIZED,
                &next,
                Some("That token is wrong or revoked. Tokens are made with `bss-host tokens create NAME --role admin|operator|viewer`.".into()),
            );
        }
        Err(e) => return console.error_page(None, e.into()),
    };
    let now = crate::time::now_unix();
    if let Err(e) = store.prune_sessions(now) {
        tracing::warn!("expired console sessions could not be removed: {e}");
    }
    let id = crate::store::secrets::random_token(32);
    let csrf = crate::store::secrets::random_token(32);
    if let Err(e) = store.create_session(
        &crate::api::tokens::hash(&id),
        &token.name,
        &csrf,
        now + SESSION_SECS,
    ) {
        return console.error_page(None, e.into());
    }
    tracing::info!(token = %token.name, role = %token.role, "console sign-in");
    let mut response = see_other(&next);
    let out = response.headers_mut();
    out.append(
        header::SET_COOKIE,
        set_cookie(
            secure(&console, &headers),
            SESSION_COOKIE,
            &id,
            SESSION_SECS,
        ),
    );
    out.append(
        header::SET_COOKIE,
        set_cookie(secure(&console, &headers), SIGN_IN_COOKIE, "", 0),
    );
    response
}

pub async fn sign_out(
    State(console): State<Shared>,
    headers: HeaderMap,
    signed: Signed,
    fields: Fields,
) -> Response {
    if !same(fields.get("csrf").unwrap_or_default(), &signed.csrf) {
        return console.error_page(Some(&signed), csrf_refused());
    }
    if let Some(id) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = console
            .instances
            .store()
            .end_session(&crate::api::tokens::hash(id))
    {
        return console.error_page(Some(&signed), e.into());
    }
    let mut response = see_other("/sign-in");
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(secure(&console, &headers), SESSION_COOKIE, "", 0),
    );
    response.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(
            safe_next(Some("/instances/acme/settings")),
            "/instances/acme/settings"
        );
        assert_eq!(safe_next(Some("//evil.example/")), "/setup");
        assert_eq!(safe_next(Some("https://evil.example/")), "/setup");
        assert_eq!(safe_next(Some("/\\evil.example")), "/setup");
        assert_eq!(safe_next(Some("/\t/evil.example")), "/setup");
        assert_eq!(safe_next(Some("/ /evil.example")), "/setup");
        assert_eq!(
            safe_next(Some("/runs/7?outcome=failed")),
            "/runs/7?outcome=failed"
        );
        assert_eq!(safe_next(None), "/setup");
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("ab", "abc"));
        assert!(!same("", ""));
    }

    #[test]
    fn cookies_are_found_by_name_and_marked_secure_only_over_tls() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; bss_session=xyz; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("xyz"));
        let plain = set_cookie(over_tls(&headers), SESSION_COOKIE, "v", 60);
        assert_eq!(
            plain.to_str().unwrap(),
            "bss_session=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=60"
        );
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(
            set_cookie(over_tls(&headers), SESSION_COOKIE, "v", 60)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
    }
}
