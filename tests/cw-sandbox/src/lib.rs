//! `cw-sandbox`: a local, faithful stand-in for the ConnectWise Manage REST API, for end-to-end tests (started
//! in-process on a free loopback port) and for people (`cw-sandbox --listen 127.0.0.1:8080`).
//!
//! It serves `/v4_6_release/apis/3.0/...` with HTTP Basic auth (`{companyId}+{publicKey}` / `{privateKey}`) and a
//! mandatory `clientId` header, plus `GET /login/companyinfo/{companyId}`. The entities the BSS connector touches
//! (companies and their type associations, contacts and their communications, catalog items, product items,
//! invoices and their payments, sales orders, agreements and their additions) support list, get, count, POST, PUT,
//! PATCH (JSON Patch) and DELETE with ConnectWise's validation, paging, conditions and error bodies; the setup tables
//! they point into are seeded and read-only (ids in [`seed`]). Faults can be injected at any time ([`Faults`]), the
//! clock can be pinned, and the test handle can read and edit records directly.
//!
//! Record names for [`Sandbox::records`] are the generic resource names of [`resources::RESOURCES`], e.g.
//! `company/companies`, `company/companies/typeAssociations` (all companies' associations, each with its `company`
//! reference), `company/contacts/communications` (each with `contactId`), `finance/invoices/payments` (each with its
//! `invoice` reference), `finance/agreements/additions` (each with `agreementId`); a concrete path such as
//! `finance/agreements/8000/additions` gives one parent's records.
//!
//! Callbacks: `POST system/callbacks` registers one (`url`, `objectId`, `type`, `level`, `description`; list, get,
//! count, PUT, PATCH and DELETE as for entities). Once a company, contact, agreement, invoice or catalog item
//! (`type` `company`, `contact`, `agreement`, `invoice`, `product`) is added, updated or deleted — through the API or
//! the test handle ([`Sandbox::insert`], [`Sandbox::patch`], [`Sandbox::delete`]) — every active callback covering
//! it (`level` `owner`: all records; `recid`: record `objectId`) gets a signed JSON POST on the sandbox's runtime,
//! with the signing key at `GET /callbacks/keys/{keyId}` (see [`callbacks`]). Tests read [`Sandbox::callbacks`] and
//! [`Sandbox::deliveries`], wait with [`Sandbox::wait_deliveries`], drop or repeat deliveries with
//! [`Sandbox::set_callback_faults`], and rotate the key with [`Sandbox::rotate_signing_key`].
//!
//! The server runs on its own thread and runtime, so any test runtime flavour (or none) works; dropping the
//! [`Sandbox`] stops it, closes its connections and frees the port.

pub mod callbacks;
pub mod clock;
mod conditions;
pub mod error;
pub mod faults;
mod paging;
mod patch;
pub mod resources;
pub mod schema;
pub mod seed;
mod server;
mod store;
mod validation;
mod write;

use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

pub use crate::callbacks::{Action, CallbackFaults, Delivery, SigningKey};
pub use crate::faults::Faults;
pub use crate::server::{API_ROOT, KEPT_REQUESTS};

/// How to run a sandbox.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Company id (the login company); default `sandbox`.
    pub company_id: String,
    /// API public key; default `sandbox-public`.
    pub public_key: String,
    /// API private key; default `sandbox-private`.
    pub private_key: String,
    /// Faults active from the start; default none.
    pub faults: Faults,
    /// `CompanyName` of `/login/companyinfo`; default `Sandbox Company`.
    pub company_name: String,
    /// `_info/updatedBy` of records written through the API (the API member owning the keys); default `SandboxAPI`.
    pub api_member: String,
    /// `_info/updatedBy` of edits made with [`Sandbox::insert`] / [`Sandbox::patch`] ("a ConnectWise user");
    /// default `jsmith`.
    pub remote_user: String,
    /// The ConnectWise version the server reports (`VersionCode` of `/login/companyinfo`, `version` of
    /// `system/info`); default `v2026.4`, the model version the sandbox's reference documents describe.
    pub version: String,
}

impl Default for SandboxConfig {
    fn default() -> SandboxConfig {
        SandboxConfig {
            company_id: "sandbox".into(),
            public_key: "sandbox-public".into(),
            private_key: "sandbox-private".into(),
            faults: Faults::default(),
            company_name: "Sandbox Company".into(),
            api_member: "SandboxAPI".into(),
            remote_user: "jsmith".into(),
            version: "v2026.4".into(),
        }
    }
}

/// One request the sandbox received (any path: API requests, `/login/companyinfo`, unknown paths).
#[derive(Clone, Debug, PartialEq)]
pub struct SeenRequest {
    pub method: String,
    /// Full path, e.g. `/v4_6_release/apis/3.0/company/companies/250`.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// The `clientId` header.
    pub client_id: Option<String>,
    /// Whether an `Authorization` header was sent.
    pub authorization: bool,
    /// The `pagination-type` header.
    pub pagination_type: Option<String>,
    /// The body, when it was JSON.
    pub body: Option<Value>,
    /// Status answered; `None` while a response is being held (or still being produced).
    pub status: Option<u16>,
}

/// A running sandbox. Dropping it shuts the server down.
pub struct Sandbox {
    shared: Arc<server::Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start(config: SandboxConfig) -> std::io::Result<Sandbox> {
        Sandbox::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts on `addr` (port 0 = any free port).
    pub async fn start_on(addr: SocketAddr, config: SandboxConfig) -> std::io::Result<Sandbox> {
        let listener = StdListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let shared = Arc::new(server::Shared {
            state: Mutex::new(server::State {
                store: store::Store::new(),
                faults: faults::FaultState::new(config.faults.clone()),
                seen: server::RequestLog::default(),
                api_requests: 0,
                callbacks: callbacks::CallbackState::new(),
            }),
            clock: clock::Clock::default(),
            config,
            addr,
            runtime: runtime.handle().clone(),
            delivered: tokio::sync::Notify::new(),
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("cw-sandbox-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => server::serve(listener, serving, rx).await,
                        Err(e) => tracing::error!("cw-sandbox: cannot use the listener: {e}"),
                    }
                });
                // Dropping the runtime here cancels every connection task, held responses included.
            })?;
        Ok(Sandbox {
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://127.0.0.1:PORT`: what an admin types as the ConnectWise URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// `base_url()` + `/v4_6_release/apis/3.0`.
    pub fn api_url(&self) -> String {
        self.shared.api_url()
    }

    pub fn company_id(&self) -> &str {
        &self.shared.config.company_id
    }

    pub fn public_key(&self) -> &str {
        &self.shared.config.public_key
    }

    pub fn private_key(&self) -> &str {
        &self.shared.config.private_key
    }

    /// The value of the `Authorization` header that the sandbox accepts.
    pub fn authorization_header(&self) -> String {
        use base64::Engine as _;
        let c = &self.shared.config;
        let user = format!("{}+{}:{}", c.company_id, c.public_key, c.private_key);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user)
        )
    }

    /// The records of a resource as a GET shows them, ordered by id. `resource` is a generic name
    /// (`company/companies`, `finance/agreements/additions`) or a concrete sub-resource path
    /// (`finance/agreements/8000/additions`). Panics on an unknown resource.
    pub fn records(&self, resource: &str) -> Vec<Value> {
        let (res, parent) = resolve(resource);
        let state = self.shared.lock();
        let api_url = self.api_url();
        state
            .store
            .scope(res, parent, std::ops::Bound::Unbounded)
            .map(|(_, rec)| state.store.render(res, rec, &api_url))
            .collect()
    }

    /// One record as a GET shows it.
    pub fn record(&self, resource: &str, id: i64) -> Option<Value> {
        let (res, parent) = resolve(resource);
        let state = self.shared.lock();
        let rec = state.store.get(res.name, id)?;
        if parent.is_some() && store::parent_of(res, rec) != parent {
            return None;
        }
        Some(state.store.render(res, rec, &self.api_url()))
    }

    /// Stores a record directly, without validation, as a ConnectWise user would have entered it (bumps
    /// `lastUpdated`, `updatedBy` = the config's `remote_user`). The `id` is taken from the record (replacing any
    /// record with that id) or allocated. A company's `types: [{"id": n}]` and a contact's `communicationItems`
    /// go to their tables; a sub-resource record names its parent with its usual field (`agreementId`, `contactId`,
    /// `company`, `invoice`) or through a concrete path. Returns the id.
    pub fn insert(&self, resource: &str, record: Value) -> i64 {
        let (res, parent) = resolve(resource);
        let mut record = record;
        if let (Some(p), Some(pid)) = (res.parent, parent) {
            record[p.field] = if p.is_ref {
                serde_json::json!({ "id": pid })
            } else {
                serde_json::json!(pid)
            };
        }
        let now = self.shared.clock.now();
        let user = self.shared.config.remote_user.clone();
        let mut state = self.shared.lock();
        let existed = record["id"]
            .as_i64()
            .is_some_and(|id| state.store.exists(res.name, id));
        let id = write::direct_insert(
            &mut state.store,
            res,
            record,
            write::Stamp { now, user: &user },
        );
        let action = if existed {
            Action::Updated
        } else {
            Action::Added
        };
        self.changed(&mut state, res, id, action, &user);
        id
    }

    /// Merges top-level `fields` into a record as a remote user's edit (`null` removes a field; bumps
    /// `lastUpdated`). Panics if there is no such record.
    pub fn patch(&self, resource: &str, id: i64, fields: Value) {
        let (res, _) = resolve(resource);
        let now = self.shared.clock.now();
        let user = self.shared.config.remote_user.clone();
        let mut state = self.shared.lock();
        write::direct_patch(
            &mut state.store,
            res,
            id,
            fields,
            write::Stamp { now, user: &user },
        );
        self.changed(&mut state, res, id, Action::Updated, &user);
    }

    /// Deletes a record as a remote user would (with its sub-resource records, like `DELETE`). Returns whether there
    /// was such a record.
    pub fn delete(&self, resource: &str, id: i64) -> bool {
        let (res, parent) = resolve(resource);
        let now = self.shared.clock.now();
        let user = self.shared.config.remote_user.clone();
        let mut state = self.shared.lock();
        let Some(rec) = state.store.get(res.name, id) else {
            return false;
        };
        let owner = store::parent_of(res, rec);
        if parent.is_some() && owner != parent {
            return false;
        }
        let stamp = write::Stamp { now, user: &user };
        if write::delete(&mut state.store, res, id, stamp).is_err() {
            return false;
        }
        let change = callbacks::Change {
            res,
            id,
            action: Action::Deleted,
            parent: owner,
            user: &user,
        };
        callbacks::notify(&self.shared, &mut state, change);
        true
    }

    /// A direct edit stored: deliver it to the callbacks covering it.
    fn changed(
        &self,
        state: &mut server::State,
        res: &'static resources::Resource,
        id: i64,
        action: Action,
        user: &str,
    ) {
        let parent = state
            .store
            .get(res.name, id)
            .and_then(|rec| store::parent_of(res, rec));
        let change = callbacks::Change {
            res,
            id,
            action,
            parent,
            user,
        };
        callbacks::notify(&self.shared, state, change);
    }

    /// The callback registrations (`system/callbacks`) as a GET shows them, ordered by id.
    pub fn callbacks(&self) -> Vec<Value> {
        self.records(resources::CALLBACKS)
    }

    /// The callback deliveries, oldest first: one entry per attempt (repeats included) and one per dropped message,
    /// up to the latest [`callbacks::KEPT_DELIVERIES`]. Entries of deliveries in flight have neither `status` nor
    /// `error` yet.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.lock().callbacks.deliveries()
    }

    /// Forgets the logged deliveries (and the count [`Sandbox::wait_deliveries`] waits on).
    pub fn clear_deliveries(&self) {
        self.shared.lock().callbacks.clear_deliveries();
    }

    /// Waits until at least `n` deliveries logged since the start (or [`Sandbox::clear_deliveries`]) are finished —
    /// answered, failed or dropped — or `timeout` passes; returns whether they are. Needs a tokio runtime with time
    /// enabled (any flavour).
    pub async fn wait_deliveries(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let enough = || self.shared.lock().callbacks.finished() >= n as u64;
        loop {
            let notified = self.shared.delivered.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if enough() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return enough();
            }
        }
    }

    /// Replaces the callback delivery faults; their counter restarts from zero.
    pub fn set_callback_faults(&self, faults: CallbackFaults) {
        self.shared.lock().callbacks.set_faults(faults);
    }

    /// The active callback delivery faults.
    pub fn callback_faults(&self) -> CallbackFaults {
        self.shared.lock().callbacks.faults()
    }

    /// The key signing deliveries now: its id (the last segment of `Metadata.key_url`) and `signing_key`.
    pub fn signing_key(&self) -> SigningKey {
        self.shared.lock().callbacks.current_key().clone()
    }

    /// Makes a new signing key (new id) for the deliveries to come and returns it. Earlier keys stay served, so
    /// deliveries already made still verify.
    pub fn rotate_signing_key(&self) -> SigningKey {
        self.shared.lock().callbacks.rotate_key()
    }

    /// Replaces the active faults; their counters restart from zero.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.lock().faults = faults::FaultState::new(faults);
    }

    /// The active faults.
    pub fn faults(&self) -> Faults {
        self.shared.lock().faults.faults.clone()
    }

    /// A cloneable handle to change faults from elsewhere (another task or thread) while the sandbox runs.
    pub fn fault_handle(&self) -> FaultHandle {
        FaultHandle(self.shared.clone())
    }

    /// Pins the clock at a Unix time.
    pub fn set_clock(&self, unix_seconds: i64) {
        self.shared.clock.set(unix_seconds);
    }

    /// Moves the clock by `seconds` (pinning it if it was real).
    pub fn advance_clock(&self, seconds: i64) {
        self.shared.clock.advance(seconds);
    }

    /// Back to real time.
    pub fn use_real_clock(&self) {
        self.shared.clock.use_real();
    }

    /// The sandbox's current time (Unix seconds).
    pub fn now(&self) -> i64 {
        self.shared.clock.now()
    }

    /// Number of API requests received (under `/v4_6_release/apis/3.0`, whatever their outcome).
    pub fn request_count(&self) -> u64 {
        self.shared.lock().api_requests
    }

    /// The requests received, oldest first (API requests, `/login/companyinfo` and unknown paths alike): every one
    /// of them, up to the latest [`KEPT_REQUESTS`] (older ones are dropped so that long runs do not keep every body).
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared.lock().seen.to_vec()
    }

    /// Forgets the recorded requests (the count too).
    pub fn clear_requests(&self) {
        let mut state = self.shared.lock();
        state.seen.clear();
        state.api_requests = 0;
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Changes a running sandbox's faults; see [`Sandbox::fault_handle`].
#[derive(Clone)]
pub struct FaultHandle(Arc<server::Shared>);

impl FaultHandle {
    /// Replaces the active faults; their counters restart from zero.
    pub fn set(&self, faults: Faults) {
        self.0.lock().faults = faults::FaultState::new(faults);
    }

    /// Edits the active faults in place (counters restart from zero).
    pub fn update(&self, edit: impl FnOnce(&mut Faults)) {
        let mut state = self.0.lock();
        let mut faults = state.faults.faults.clone();
        edit(&mut faults);
        state.faults = faults::FaultState::new(faults);
    }

    pub fn get(&self) -> Faults {
        self.0.lock().faults.faults.clone()
    }

    /// Replaces the callback delivery faults; see [`Sandbox::set_callback_faults`].
    pub fn set_callbacks(&self, faults: CallbackFaults) {
        self.0.lock().callbacks.set_faults(faults);
    }
}

/// Generic resource and optional parent id of a name given to the test handle.
fn resolve(resource: &str) -> (&'static resources::Resource, Option<i64>) {
    let name = resource
        .trim()
        .trim_start_matches(API_ROOT)
        .trim_matches('/');
    if let Some(res) = resources::by_name(name) {
        return (res, None);
    }
    if let Some(route) = resources::route(&format!("{name}/"))
        && route.parent_id.is_some()
        && route.target == resources::Target::List
    {
        return (route.resource, route.parent_id);
    }
    let known: Vec<&str> = resources::RESOURCES.iter().map(|r| r.name).collect();
    panic!(
        "cw-sandbox has no resource '{resource}'; known: {}",
        known.join(", ")
    )
}
