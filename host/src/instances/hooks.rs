//! An instance's callback hook: the secret URL the remote calls back (`{public}/hooks/{instance}/
//! {token}`, the token random and kept sealed), and the remote's registrations for it, which the
//! connector keeps (`subscribe`, contract 1.3). Subscribing again is idempotent and keeps the
//! token; disabling an instance unsubscribes it and enabling subscribes it again; deleting it
//! unsubscribes and forgets the hook. A failed unsubscribe is said, never hidden: the remote may
//! keep calling a hook that now answers 404.

use serde::Serialize;

use super::{InstanceError, Instances};
use crate::contract::bindings::types::ConnectorError;
use crate::contract::manifest::{Direction, Entity};
use crate::store::hook_store::{EventCounts, HookRow, Registration};

/// An instance's hook as the CLI and the API show it: never the token.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct HookView {
    pub instance: String,
    /// The hook's URL with its token masked.
    pub url: String,
    pub public_url: String,
    pub entities: Vec<Entity>,
    pub registrations: Vec<Registration>,
    pub active: bool,
    pub last_error: Option<String>,
    pub updated_at: String,
    pub events: EventCounts,
}

/// The place a hook token is sealed under.
fn token_place(instance: &str) -> String {
    format!("{instance}/hook-token")
}

/// The hook's path under the public URL.
pub fn hook_path(instance: &str, token: &str) -> String {
    format!("/hooks/{instance}/{token}")
}

/// Checks a public base URL: absolute http(s), no query or fragment; trailing slashes dropped.
fn public_base(text: &str) -> Result<String, InstanceError> {
    let bad = |reason: &str| {
        InstanceError::Invalid(vec![(
            "public-url".into(),
            format!(
                "{text:?} {reason}; give the base URL the remote reaches `bss-host serve` at, such as https://bss.example.com"
            ),
        )])
    };
    let url = url::Url::parse(text.trim()).map_err(|_| bad("is not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("is not http or https"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("has a query or fragment"));
    }
    if url.host_str().is_none() {
        return Err(bad("has no host"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

fn sha256(text: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).into()
}

impl Instances {
    /// Subscribes the instance to the remote's callbacks for `entities` (by default every entity
    /// it pulls), delivered to `public_url`'s hook; keeps the token of an earlier subscription.
    pub async fn subscribe_callbacks(
        &self,
        name: &str,
        public_url: &str,
        entities: Option<Vec<Entity>>,
    ) -> Result<HookView, InstanceError> {
        let public_url = public_base(public_url)?;
        let entities = match entities {
            Some(list) if !list.is_empty() => list,
            Some(_) => {
                return Err(InstanceError::Invalid(vec![(
                    "entities".into(),
                    "name at least one entity, or leave it out for every entity the instance pulls"
                        .into(),
                )]));
            }
            None => {
                let pulled: Vec<Entity> = self
                    .store
                    .sync_options(name)?
                    .into_iter()
                    .filter(|(_, d, o)| *d == Direction::Pull && (o.create || o.update))
                    .map(|(e, _, _)| e)
                    .collect();
                if pulled.is_empty() {
                    return Err(InstanceError::Invalid(vec![(
                        "entities".into(),
                        format!(
                            "{name} pulls no entity; enable a pull sync option first (`bss-host sync-options set {name} contact:pull:create,update`)"
                        ),
                    )]));
                }
                pulled
            }
        };
        let existing = self.store.hook(name)?;
        let token = match &existing {
            Some(hook) => self.secrets.open(&token_place(name), &hook.sealed_token)?,
            None => crate::store::secrets::random_token(24),
        };
        let sealed_token = self.secrets.seal(&token_place(name), &token);
        // The token is stored before the remote hears of it, so no registration ever points at a
        // token the host does not know (a crash here leaves an inactive hook to retry).
        let previous = match existing {
            Some(hook) => hook,
            None => {
                let fresh = HookRow {
                    instance: name.to_string(),
                    sealed_token: sealed_token.clone(),
                    public_url: public_url.clone(),
                    entities: entities.clone(),
                    registrations: Vec::new(),
                    active: false,
                    last_error: None,
                    updated_at: crate::time::now_rfc3339(),
                };
                self.store.set_hook(&fresh)?;
                fresh
            }
        };
        // A new public URL: the registrations to the old one go first.
        if previous.public_url != public_url && !previous.registrations.is_empty() {
            if let Err(error) = self.call_subscribe(name, &previous, &token, false).await {
                let mut kept = previous.clone();
                kept.last_error = Some(format!(
                    "the callbacks to {} could not be removed: {error}",
                    previous.public_url
                ));
                self.store.set_hook(&kept)?;
                return Err(error);
            }
            let mut moved = previous.clone();
            moved.registrations.clear();
            moved.active = false;
            self.store.set_hook(&moved)?;
        }
        let mut hook = HookRow {
            instance: name.to_string(),
            sealed_token,
            public_url,
            entities,
            registrations: previous.registrations.clone(),
            active: previous.active,
            last_error: None,
            updated_at: crate::time::now_rfc3339(),
        };
        match self.call_subscribe(name, &hook, &token, true).await {
            Ok(registrations) => {
                hook.registrations = registrations;
                hook.active = true;
                self.store.set_hook(&hook)?;
                self.hook_view(name)?
                    .ok_or_else(|| InstanceError::NotFound(format!("{name} has no hook")))
            }
            Err(error) => {
                // What was in place stays in place (a working hook keeps working); the error is
                // shown with it.
                let mut kept = self.store.hook(name)?.unwrap_or(previous);
                kept.last_error = Some(format!("subscribe failed: {error}"));
                kept.updated_at = crate::time::now_rfc3339();
                self.store.set_hook(&kept)?;
                Err(error)
            }
        }
    }

    /// Asks the connector to make the remote's registrations for the hook those of `hook`'s
    /// entities (`on`), or none.
    async fn call_subscribe(
        &self,
        name: &str,
        hook: &HookRow,
        token: &str,
        on: bool,
    ) -> Result<Vec<Registration>, InstanceError> {
        let (loaded, context) = self.context(name)?;
        let url = format!("{}{}", hook.public_url, hook_path(name, token));
        let entities: Vec<crate::contract::bindings::types::Entity> = if on {
            hook.entities.iter().map(|e| (*e).into()).collect()
        } else {
            Vec::new()
        };
        // The token is a secret: whatever the connector says back is shown without it.
        let redactor = context.redactor().with_secrets([token.to_string()]);
        let answer = loaded
            .connector
            .subscribe(&context, &url, &entities)
            .await
            .map_err(|e| InstanceError::Callbacks(redactor.bounded(&e.to_string())))?;
        match answer {
            Ok(subscriptions) => Ok(subscriptions
                .into_iter()
                .map(|s| Registration {
                    entity: s.entity.into(),
                    remote_type: redactor.bounded(&s.remote_type),
                    remote_id: redactor.bounded(&s.remote_id),
                })
                .collect()),
            Err(error) => {
                let said = redactor.bounded(&crate::contract::describe_connector_error(&error));
                Err(match error {
                    ConnectorError::Rejected(_)
                    | ConnectorError::InvalidSettings(_)
                    | ConnectorError::Unsupported(_) => {
                        InstanceError::Invalid(vec![("callbacks".into(), said)])
                    }
                    _ => InstanceError::Callbacks(said),
                })
            }
        }
    }

    /// Removes the remote's registrations for the instance's hook, then (`forget`) drops the
    /// hook, its token and events, or keeps it inactive. When the remote's registrations could not
    /// be removed, the hook is kept inactive with the error (for `/health`, and for another try)
    /// and the error returned: nothing is forgotten that the remote may still call.
    pub async fn unsubscribe_callbacks(
        &self,
        name: &str,
        forget: bool,
    ) -> Result<(), InstanceError> {
        let Some(mut hook) = self.store.hook(name)? else {
            return if forget {
                Ok(())
            } else {
                Err(InstanceError::NotFound(format!(
                    "{name} is not subscribed to callbacks; `bss-host callbacks subscribe {name} --public-url URL` subscribes it"
                )))
            };
        };
        if hook.active || !hook.registrations.is_empty() {
            let token = self.secrets.open(&token_place(name), &hook.sealed_token)?;
            match self.call_subscribe(name, &hook, &token, false).await {
                Ok(left) => hook.registrations = left,
                Err(error) => {
                    hook.active = false;
                    hook.last_error = Some(format!(
                        "the remote's callbacks could not be removed ({error}); it may keep calling the hook, which answers 404 until they are"
                    ));
                    hook.updated_at = crate::time::now_rfc3339();
                    self.store.set_hook(&hook)?;
                    return Err(error);
                }
            }
        }
        if forget {
            self.store.remove_hook(name)?;
        } else {
            hook.active = false;
            hook.last_error = None;
            hook.updated_at = crate::time::now_rfc3339();
            self.store.set_hook(&hook)?;
        }
        Ok(())
    }

    /// Disables an instance, unsubscribing its callbacks first. Returns a warning when the
    /// remote's registrations could not be removed (the instance is disabled all the same, and
    /// the hook keeps the error for `/health`).
    pub async fn disable(&self, name: &str) -> Result<Option<String>, InstanceError> {
        let instance = self.get(name)?;
        let warning = if instance.enabled && self.store.hook(name)?.is_some() {
            self.unsubscribe_callbacks(name, false)
                .await
                .err()
                .map(|e| format!("the remote's callbacks could not be removed: {e}"))
        } else {
            None
        };
        self.store.set_enabled(name, false)?;
        Ok(warning)
    }

    /// Enables an instance and subscribes its callbacks again when it had a hook. Returns a
    /// warning when that failed (the instance is enabled all the same; schedules still pull).
    pub async fn enable(&self, name: &str) -> Result<Option<String>, InstanceError> {
        self.store.set_enabled(name, true)?;
        let Some(hook) = self.store.hook(name)? else {
            return Ok(None);
        };
        if hook.active {
            return Ok(None);
        }
        Ok(self
            .subscribe_callbacks(name, &hook.public_url, Some(hook.entities.clone()))
            .await
            .err()
            .map(|e| format!("the callbacks could not be subscribed again: {e}")))
    }

    /// Deletes an instance, unsubscribing its callbacks first. An enabled instance whose
    /// callbacks cannot be removed is not deleted (the error says so); a disabled one is deleted
    /// with a warning when its hook still had registrations (a failed unsubscribe at disable).
    pub async fn delete_unsubscribed(&self, name: &str) -> Result<Option<String>, InstanceError> {
        let instance = self.get(name)?;
        let mut warning = None;
        if instance.enabled {
            self.unsubscribe_callbacks(name, true).await.map_err(|e| {
                InstanceError::Callbacks(format!(
                    "{name} was not deleted: {e}; fix the cause and delete again, or disable it first (then the registrations are left in the remote, and listed)"
                ))
            })?;
        } else if let Some(hook) = self.store.hook(name)? {
            if !hook.registrations.is_empty() {
                warning = Some(format!(
                    "the remote may still hold callbacks to {}/hooks/{name}/… (registrations {}); remove them there",
                    hook.public_url,
                    hook.registrations
                        .iter()
                        .map(|r| format!("{} {}", r.remote_type, r.remote_id))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            self.store.remove_hook(name)?;
        }
        self.delete(name)?;
        Ok(warning)
    }

    /// The instance's hook, if it has one.
    pub fn hook_view(&self, name: &str) -> Result<Option<HookView>, InstanceError> {
        self.get(name)?;
        let Some(hook) = self.store.hook(name)? else {
            return Ok(None);
        };
        let events = self
            .store
            .event_counts(crate::time::now_unix() - crate::store::hook_store::FAILED_SHOWN_SECS)?
            .remove(name)
            .unwrap_or_default();
        Ok(Some(HookView {
            instance: name.to_string(),
            url: format!("{}{}", hook.public_url, hook_path(name, "****")),
            public_url: hook.public_url,
            entities: hook.entities,
            registrations: hook.registrations,
            active: hook.active,
            last_error: hook.last_error,
            updated_at: hook.updated_at,
            events,
        }))
    }

    /// The instance's hook when `token` is its token and it is active (the instance enabled).
    pub fn hook_for_token(
        &self,
        name: &str,
        token: &str,
    ) -> Result<Option<HookRow>, InstanceError> {
        let Some(hook) = self.store.hook(name)? else {
            return Ok(None);
        };
        let Ok(expected) = self.secrets.open(&token_place(name), &hook.sealed_token) else {
            return Ok(None);
        };
        // Compared as digests: equal-length values, so the time taken says nothing of the token.
        if sha256(&expected) != sha256(token) || !hook.active {
            return Ok(None);
        }
        Ok(Some(hook))
    }
}
