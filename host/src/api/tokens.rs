//! Access to the API: named tokens, each with a role (`viewer` reads, `operator` also runs syncs,
//! `admin` also changes what the host is set up to do), kept in the store as their SHA-256 only.
//! `bss-host tokens create|list|revoke` manages them; the first `serve` makes an admin token
//! named `serve` and prints it once (an `api-token.sha256` of an earlier host becomes that
//! token, so its token keeps working). Every request names its token; the route decides the role
//! it needs ([`required_role`]), and a weaker token gets 403.
//!
//! | request | role |
//! |---|---|
//! | `GET` (and `HEAD`) of any route, `/metrics` included, but `/audit` | viewer |
//! | `GET /audit` (who did what) | admin |
//! | `POST` `/instances/{name}/push/{entity}`, `pull/{entity}`, `link/{entity}`, `reconcile/{entity}`, `retry`, `check`, `feed/ack`, `jobs/push/{entity}`; `POST /schedules/run-due`; `DELETE /jobs/{job}` | operator |
//! | every other `POST`, `PUT`, `PATCH`, `DELETE` | admin |

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::instances::InstanceError;
use crate::store::Store;
use crate::store::token_store::{Role, TokenRow};

/// The file an earlier host kept its one token's hash in.
const LEGACY_TOKEN_FILE: &str = "api-token.sha256";
/// The name of the admin token `serve` makes.
pub const SERVE_TOKEN: &str = "serve";

/// SHA-256 (hex) of a token as presented.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

fn check_name(name: &str) -> Result<(), InstanceError> {
    let fits = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if fits {
        Ok(())
    } else {
        Err(InstanceError::Invalid(vec![(
            "name".into(),
            format!("{name:?} is not a token name: 1 to 64 of a-z, 0-9 and -, such as bss-console"),
        )]))
    }
}

/// Makes a token; returns it (shown once: only its hash is kept).
pub fn create(store: &dyn Store, name: &str, role: Role) -> Result<String, InstanceError> {
    check_name(name)?;
    let token = crate::store::secrets::random_token(32);
    store.create_token(&TokenRow {
        name: name.to_string(),
        role,
        hash: hash(&token),
        created_at: crate::time::now_rfc3339(),
        revoked_at: None,
    })?;
    Ok(token)
}

/// Ends a token's access (its row stays, listed as revoked).
pub fn revoke(store: &dyn Store, name: &str) -> Result<(), InstanceError> {
    if store.revoke_token(name)? {
        Ok(())
    } else {
        Err(InstanceError::NotFound(format!(
            "there is no unrevoked token named {name:?}; `bss-host tokens list` shows them"
        )))
    }
}

/// At `serve`'s start: an earlier host's token becomes the admin token `serve`; with no admin
/// token left, a new one is made and printed once.
pub fn ensure_admin(data: &Path, store: &dyn Store) -> anyhow::Result<()> {
    let tokens = store.tokens()?;
    let legacy = data.join(LEGACY_TOKEN_FILE);
    if let Ok(text) = std::fs::read_to_string(&legacy)
        && !tokens.iter().any(|t| t.name == SERVE_TOKEN)
    {
        let hash = text.trim().to_string();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            anyhow::bail!(
                "{} is damaged; delete it and restart serve to get a new token",
                legacy.display()
            );
        }
        store.create_token(&TokenRow {
            name: SERVE_TOKEN.into(),
            role: Role::Admin,
            hash,
            created_at: crate::time::now_rfc3339(),
            revoked_at: None,
        })?;
        std::fs::remove_file(&legacy)?;
        println!(
            "the API token of {} is now the admin token {SERVE_TOKEN:?}",
            legacy.display()
        );
        return Ok(());
    }
    if tokens
        .iter()
        .any(|t| t.role == Role::Admin && t.revoked_at.is_none())
    {
        return Ok(());
    }
    let name = (1..)
        .map(|n| {
            if n == 1 {
                SERVE_TOKEN.to_string()
            } else {
                format!("{SERVE_TOKEN}-{n}")
            }
        })
        .find(|n| !tokens.iter().any(|t| &t.name == n))
        .expect("some name is free");
    let token = create(store, &name, Role::Admin)?;
    println!("admin API token (shown this once; only its hash is kept): {token}");
    Ok(())
}

/// The role a request needs (see the module's table). `path` may carry the `/api/v1` prefix.
pub fn required_role(method: &axum::http::Method, path: &str) -> Role {
    use axum::http::Method;
    let path = path.trim_start_matches("/api/v1");
    if method == Method::GET || method == Method::HEAD {
        // Who did what is the admins' to read.
        return if path.trim_end_matches('/') == "/audit" {
            Role::Admin
        } else {
            Role::Viewer
        };
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let runs = method == Method::POST
        && matches!(
            segments.as_slice(),
            ["instances", _, "push" | "pull" | "link" | "reconcile", _]
                | ["instances", _, "jobs", "push", _]
                | ["instances", _, "retry" | "check"]
                | ["instances", _, "feed", "ack"]
                | ["schedules", "run-due"]
        );
    let cancels = method == Method::DELETE && matches!(segments.as_slice(), ["jobs", _]);
    if runs || cancels {
        Role::Operator
    } else {
        Role::Admin
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[test]
    fn routes_need_the_roles_the_table_says() {
        let cases = [
            (Method::GET, "/api/v1/instances/acme/settings", Role::Viewer),
            (Method::GET, "/metrics", Role::Viewer),
            (Method::GET, "/api/v1/audit", Role::Admin),
            (Method::GET, "/api/v1/trust", Role::Viewer),
            (Method::POST, "/trust", Role::Admin),
            (Method::DELETE, "/api/v1/trust/acme", Role::Admin),
            (Method::POST, "/instances/acme/pull/account", Role::Operator),
            (
                Method::POST,
                "/api/v1/instances/acme/push/account",
                Role::Operator,
            ),
            (Method::POST, "/instances/acme/retry", Role::Operator),
            (Method::DELETE, "/api/v1/jobs/12", Role::Operator),
            (Method::POST, "/instances/acme/feed/ack", Role::Operator),
            (Method::POST, "/schedules/run-due", Role::Operator),
            (Method::PATCH, "/instances/acme/settings", Role::Admin),
            (Method::POST, "/instances", Role::Admin),
            (Method::POST, "/instances/acme/remove/contact", Role::Admin),
            (Method::POST, "/instances/acme/disable", Role::Admin),
            (
                Method::PUT,
                "/instances/acme/schedules/account:pull",
                Role::Admin,
            ),
            (Method::DELETE, "/instances/acme", Role::Admin),
            (
                Method::POST,
                "/instances/acme/pull/account/extra",
                Role::Admin,
            ),
        ];
        for (method, path, role) in cases {
            assert_eq!(required_role(&method, path), role, "{method} {path}");
        }
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
    }
}
