//! Support for the ConnectWise connector's tests: the sandbox started in-process, the built
//! connector component loaded into a real runtime, an instance context with every setting and
//! lookup a BSS admin would fill in, and builders for canonical records; and for tests through the
//! real binary, a data folder with a ConnectWise instance set up against a fresh sandbox.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bss_host::capabilities::context::{InstanceContext, LookupEntry};
use bss_host::capabilities::options::InstanceOptions;
use bss_host::contract::bindings::connector::{
    Change, ConflictPolicy, LastPushed, PushItem, PushOptions, Pushed,
};
use bss_host::contract::bindings::types::{
    Account, Address, ConnectorError, Contact, Entity, EntityData, Record, Reference,
};
use bss_host::runtime::{Connector, Runtime, RuntimeConfig};
use cw_sandbox::{Sandbox, SandboxConfig};
use serde_json::Value;

use crate::common::cli::{Host, blocking};
use crate::common::records::write_ndjson;

pub const CONNECTWISE_WASM: &str = env!("BSS_CONNECTWISE_WASM");
pub const CLIENT_ID: &str = "0c8f3c52-5b7e-4c1a-9d8e-1f2a3b4c5d6e";

pub struct Cw {
    pub sandbox: Sandbox,
    pub runtime: Runtime,
    pub connector: Connector,
    /// What was last pushed per record, kept as the host keeps it: the base of the next update.
    pub last_pushed: std::sync::Mutex<BTreeMap<String, LastPushed>>,
}

fn base_key(record: &Record) -> String {
    format!("{:?}/{}", record.entity, record.bss_id)
}

fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compile-cache")
}

pub async fn start() -> Cw {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache_dir()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let connector = runtime
        .load_file(Path::new(CONNECTWISE_WASM))
        .await
        .unwrap();
    Cw {
        sandbox,
        runtime,
        connector,
        last_pushed: Default::default(),
    }
}

/// The settings of a correctly set-up instance against this sandbox.
pub fn good_settings(sandbox: &Sandbox) -> BTreeMap<String, String> {
    [
        ("url", sandbox.base_url()),
        ("company-id", "sandbox".to_string()),
        ("public-key", "sandbox-public".to_string()),
        ("private-key", "sandbox-private".to_string()),
        ("client-id", CLIENT_ID.to_string()),
        ("import-account-id", "4".to_string()),
        ("product-category", "3".to_string()),
        ("product-subcategory", "6".to_string()),
        ("product-unit-of-measure", "1".to_string()),
        ("product-billable-option", "Billable".to_string()),
        ("sales-representative", "3".to_string()),
        ("credit-card-method-id", "cc".to_string()),
        ("bank-deposit-method-id", "bank".to_string()),
        ("subscription-name-field-id", "1".to_string()),
        ("subscription-id-field-id", "2".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// [`good_settings`] as `settings set` arguments, with private addresses allowed (the sandbox is on
/// loopback) and a rate limit no test reaches.
pub fn cli_settings(sandbox: &Sandbox) -> Vec<String> {
    good_settings(sandbox)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain([
            "host.allow-private-network=on".to_string(),
            "host.requests-per-minute=100000".to_string(),
        ])
        .collect()
}

/// A data folder (`data`, inside `dir`) with ConnectWise instance `cw` against `sandbox`.
pub struct Setup {
    pub sandbox: Sandbox,
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
}

impl Setup {
    /// Writes `records` as NDJSON to `name` next to the data folder; its path.
    pub fn file(&self, name: &str, records: &[Value]) -> String {
        let path = self.dir.path().join(name);
        write_ndjson(&path, records);
        path.display().to_string()
    }
}

/// Activates ConnectWise instance `name` with `settings` through `host`: the account-type and
/// currency lookups (Customer, USD) filled in, and `sync_options` set.
pub fn add_instance(
    host: Host,
    data: &Path,
    name: &str,
    settings: &[String],
    sync_options: &[&str],
) {
    host.ok(data, &["activate", "connectwise", "--name", name]);
    let mut args = vec!["settings", "set", name];
    args.extend(settings.iter().map(String::as_str));
    host.ok(data, &args);
    host.ok(
        data,
        &["lookups", "set", name, "account-type", "Customer=1"],
    );
    host.ok(data, &["lookups", "set", name, "currency", "USD=1"]);
    let mut args = vec!["sync-options", "set", name];
    args.extend(sync_options);
    host.ok(data, &args);
}

/// A data folder with instance `cw` ([`cli_settings`], `sync_options`) set up through `host`
/// against a fresh sandbox.
pub async fn setup(host: Host<'static>, sync_options: &'static [&'static str]) -> Setup {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let settings = cli_settings(&sandbox);
    let folder = data.clone();
    blocking(move || add_instance(host, &folder, "cw", &settings, sync_options)).await;
    Setup { sandbox, dir, data }
}

fn entries(rows: &[(&str, &str)]) -> Vec<LookupEntry> {
    rows.iter()
        .map(|(bss, remote)| LookupEntry {
            bss_value: bss.to_string(),
            remote_value: remote.to_string(),
            pull_default: false,
        })
        .collect()
}

/// The lookup tables of a correctly set-up instance (ids from the sandbox's seed).
pub fn good_lookups() -> BTreeMap<String, Vec<LookupEntry>> {
    let mut lookups = BTreeMap::new();
    lookups.insert(
        "account-type".into(),
        entries(&[("Customer", "1"), ("Lead", "2"), ("Reseller", "4")]),
    );
    lookups.insert(
        "currency".into(),
        entries(&[("USD", "1"), ("EUR", "2"), ("GBP", "3")]),
    );
    lookups.insert(
        "invoice-stage".into(),
        entries(&[("Draft", "1"), ("Posted", "2")]),
    );
    lookups.insert(
        "invoice-type".into(),
        entries(&[("Invoice", "Standard"), ("Credit", "CreditMemo")]),
    );
    lookups.insert(
        "product-type".into(),
        entries(&[("Hardware", "1"), ("Service", "2"), ("Recurring", "3")]),
    );
    lookups.insert(
        "unit-type".into(),
        entries(&[("Month", "5"), ("Hour", "6")]),
    );
    lookups.insert(
        "order-stage".into(),
        entries(&[("Open", "1"), ("Confirmed", "2")]),
    );
    lookups.insert(
        "subscription-units".into(),
        entries(&[("Monthly", "1"), ("Annual", "3")]),
    );
    lookups
}

pub fn context_with(cw: &Cw, changes: &[(&str, Option<&str>)]) -> Arc<InstanceContext> {
    let mut settings = good_settings(&cw.sandbox);
    for (key, value) in changes {
        match value {
            Some(value) => settings.insert(key.to_string(), value.to_string()),
            None => settings.remove(*key),
        };
    }
    let options = InstanceOptions {
        allow_private_network: true,
        ..InstanceOptions::default()
    };
    Arc::new(
        InstanceContext::new(
            "acme-cw",
            cw.connector.manifest(),
            &settings,
            good_lookups(),
            options,
        )
        .unwrap(),
    )
}

pub fn context(cw: &Cw) -> Arc<InstanceContext> {
    context_with(cw, &[])
}

pub fn reference(field: &str, entity: Entity, bss_id: &str, remote_id: &str) -> Reference {
    Reference {
        field: field.into(),
        entity,
        bss_id: bss_id.into(),
        remote_id: remote_id.into(),
    }
}

pub fn address() -> Address {
    Address {
        line1: Some("1 Main Street".into()),
        line2: Some("Suite 5".into()),
        city: Some("Sacramento".into()),
        state: Some("California".into()),
        zip: Some("95814".into()),
        country: Some("United States".into()),
    }
}

pub fn account(bss_id: &str, name: &str) -> Account {
    Account {
        code: format!("C-{bss_id}"),
        name: name.into(),
        account_type: Some("Customer".into()),
        status: None,
        currency: Some("USD".into()),
        billing_address: Some(address()),
        phone: Some("+1 916 555 0100".into()),
        fax: None,
        website: Some("https://example.com".into()),
        parent_account: None,
        primary_contact: None,
        extra: vec![],
    }
}

pub fn account_record(bss_id: &str, data: Account) -> Record {
    Record {
        entity: Entity::Account,
        bss_id: bss_id.into(),
        remote_id: None,
        maybe_created: false,
        data: EntityData::Account(data),
        references: vec![],
    }
}

pub fn contact(account: Option<&str>, first: &str) -> Contact {
    Contact {
        account: account.map(str::to_string),
        first_name: first.into(),
        last_name: Some("Doe".into()),
        title: Some("CFO".into()),
        email: Some(format!("{}@example.com", first.to_lowercase())),
        phone: Some("+1 916 555 0101".into()),
        mobile: Some("+1 916 555 0102".into()),
        fax: None,
        extra: vec![],
    }
}

pub fn contact_record(bss_id: &str, data: Contact) -> Record {
    Record {
        entity: Entity::Contact,
        bss_id: bss_id.into(),
        remote_id: None,
        maybe_created: false,
        data: EntityData::Contact(data),
        references: vec![],
    }
}

/// Pushes a batch, each record with its last push as the host would hand it over, and returns
/// each record's outcome (keeping the accepted ones as the next base).
pub async fn push(
    cw: &Cw,
    ctx: &Arc<InstanceContext>,
    entity: Entity,
    records: &[Record],
) -> Vec<Result<Pushed, ConnectorError>> {
    let items: Vec<PushItem> = {
        let bases = cw.last_pushed.lock().unwrap();
        records
            .iter()
            .map(|record| PushItem {
                record: record.clone(),
                last_pushed: bases.get(&base_key(record)).cloned(),
            })
            .collect()
    };
    let outcomes = cw
        .connector
        .push(
            ctx,
            entity,
            &items,
            PushOptions {
                dry_run: false,
                conflicts: ConflictPolicy::BssWins,
            },
        )
        .await
        .expect("the call completes")
        .expect("the batch is accepted");
    let mut bases = cw.last_pushed.lock().unwrap();
    for (record, outcome) in records.iter().zip(&outcomes) {
        if outcome.as_ref().is_ok_and(|p| p.change != Change::Held) {
            bases.insert(
                base_key(record),
                LastPushed {
                    data: record.data.clone(),
                    references: record.references.clone(),
                },
            );
        }
    }
    outcomes
}

/// Pushes one record that must succeed and returns its remote id.
pub async fn push_ok(cw: &Cw, ctx: &Arc<InstanceContext>, record: &Record) -> Pushed {
    let mut outcomes = push(cw, ctx, record.entity, std::slice::from_ref(record)).await;
    outcomes
        .remove(0)
        .unwrap_or_else(|e| panic!("pushing {} failed: {e:?}", record.bss_id))
}

/// The sandbox's stored record behind a remote id.
pub fn stored(cw: &Cw, resource: &str, remote_id: &str) -> serde_json::Value {
    let id: i64 = remote_id.parse().unwrap();
    cw.sandbox
        .record(resource, id)
        .unwrap_or_else(|| panic!("{resource}/{id} is stored"))
}

/// A child process that is killed when the guard drops, so a failing test never leaves a server
/// running (it would hold the test runner's output open).
pub struct Reaper(pub std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `bss-host serve`: its API base URL and token; killed when dropped.
pub struct Served {
    pub base: String,
    pub token: String,
    _process: Reaper,
}

impl Served {
    /// The server's process id (to read its memory from `/proc`).
    pub fn pid(&self) -> u32 {
        self._process.0.id()
    }

    /// Sends SIGTERM and waits (up to `within`) for the process to exit; its exit status, or
    /// None when it did not exit in time (it is killed then, as on drop).
    #[allow(dead_code)]
    pub fn terminate(mut self, within: std::time::Duration) -> Option<std::process::ExitStatus> {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM could not be sent");
        let started = std::time::Instant::now();
        while started.elapsed() < within {
            if let Some(status) = self._process.0.try_wait().expect("the process is ours") {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }
}

/// Starts `serve` on a free port with `command` (the binary with its data-folder options) and
/// reads the address and the one-time token it prints.
pub fn serve(command: std::process::Command) -> Served {
    start_serve(command, None, None)
}

/// Starts `serve` on a data folder whose admin token is `token` already (none is printed).
#[allow(dead_code)]
pub fn serve_with_known_token(command: std::process::Command, token: &str) -> Served {
    start_serve(command, Some(token), None)
}

/// As [`serve_with_known_token`], with the server's log (its stderr) written to `log`, for a
/// test to show when it fails.
#[allow(dead_code)]
pub fn serve_logged(command: std::process::Command, token: &str, log: &Path) -> Served {
    start_serve(command, Some(token), Some(log))
}

fn start_serve(
    mut command: std::process::Command,
    known: Option<&str>,
    log: Option<&Path>,
) -> Served {
    use std::io::{BufRead, BufReader};
    // BSS_TEST_SERVE_LOGS=DIR keeps each server's log (its stderr) in DIR, to see why a test
    // that drives servers failed.
    let kept = std::env::var_os("BSS_TEST_SERVE_LOGS").map(|dir| {
        static SERVED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SERVED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Path::new(&dir).join(format!("serve-{}-{n}.log", std::process::id()))
    });
    let stderr = match log.map(Path::to_path_buf).or(kept) {
        Some(path) => std::fs::File::create(&path)
            .unwrap_or_else(|e| {
                panic!("the server's log {} cannot be written: {e}", path.display())
            })
            .into(),
        None => std::process::Stdio::null(),
    };
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("bss-host serve starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let process = Reaper(child);
    let (mut token, mut base) = (known.map(str::to_string), None);
    while base.is_none() {
        let line = lines
            .next()
            .expect("serve prints its address")
            .expect("serve's output is text");
        if let Some(t) =
            line.strip_prefix("admin API token (shown this once; only its hash is kept): ")
        {
            token = Some(t.to_string());
        }
        if let Some(rest) = line.strip_prefix("admin API listening on ") {
            base = Some(rest.to_string());
        }
    }
    let token = token.expect("the token is shown on first run");
    Served {
        base: base.expect("an address"),
        token,
        _process: process,
    }
}

/// An HTTP client for the admin API (the host builds TLS without a default crypto provider).
pub fn api_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
