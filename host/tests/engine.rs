//! The sync engine alone, in seconds: a scripted [`SyncConnector`] stands in for a connector and
//! the real SQLite store lives in a temporary folder. References go in waves, a cycle is said, a
//! `Retry-After` is waited for, passing failures beyond the tries go to the retry queue, an update
//! carries the last push, echoes of a push are not returned, and the cursor moves only to valid
//! stamps. The end-to-end tests through the binary cover the same paths with the real component.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bss_host::capabilities::context::InstanceContext;
use bss_host::capabilities::options::InstanceOptions;
use bss_host::contract::bindings::connector::{Change, PullPage, PushItem, PushOptions, Pushed};
use bss_host::contract::bindings::types::{
    self as wit, ConnectorError, EntityData, PulledRecord, RemoteReference,
};
use bss_host::contract::manifest::{
    Auth, AuthScheme, Direction, Entity, Manifest, Operations, SyncOption,
};
use bss_host::store::sqlite::SqliteStore;
use bss_host::store::{InstanceRow, InstanceStore, SyncStore};
use bss_host::sync::connector::{PullResult, PushResult, SyncConnector};
use bss_host::sync::records::parse_file;
use bss_host::sync::{Engine, Pacing, PullFrom, PushReport};
use serde_json::json;

const INSTANCE: &str = "acme";

/// A connector whose answers are scripted per BSS id; it records what each call was given.
#[derive(Default)]
struct Scripted {
    /// Answers given before the record succeeds, in order.
    failures: Mutex<BTreeMap<String, VecDeque<ConnectorError>>>,
    /// The BSS ids of each push call, and the items as given.
    calls: Mutex<Vec<Vec<PushItem>>>,
    /// Pull pages by page token ("" for the first); `since` of each pull call.
    pages: Mutex<BTreeMap<String, PullPage>>,
    pulled_since: Mutex<Vec<Option<String>>>,
    /// Whether successes say how the remote stored the record (as a pull would map it).
    stores_copies: bool,
    next_id: AtomicU64,
}

impl Scripted {
    fn fail(&self, bss_id: &str, errors: Vec<ConnectorError>) {
        self.failures
            .lock()
            .unwrap()
            .insert(bss_id.to_string(), errors.into());
    }

    fn call_ids(&self) -> Vec<Vec<String>> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.iter().map(|i| i.record.bss_id.clone()).collect())
            .collect()
    }
}

impl SyncConnector for Scripted {
    async fn push(
        &self,
        _context: &Arc<InstanceContext>,
        _entity: bss_host::contract::manifest::Entity,
        records: &[PushItem],
        _options: PushOptions,
    ) -> PushResult {
        self.calls.lock().unwrap().push(records.to_vec());
        let answers = records
            .iter()
            .map(|item| {
                let record = &item.record;
                if let Some(error) = self
                    .failures
                    .lock()
                    .unwrap()
                    .get_mut(&record.bss_id)
                    .and_then(VecDeque::pop_front)
                {
                    return Err(error);
                }
                let (change, remote_id) = match &record.remote_id {
                    Some(id) => (Change::Updated, id.clone()),
                    None => (
                        Change::Created,
                        format!("r{}", self.next_id.fetch_add(1, Ordering::Relaxed) + 1),
                    ),
                };
                let stored = self.stores_copies.then(|| PulledRecord {
                    remote_id: remote_id.clone(),
                    last_updated: "2026-05-01T10:00:00Z".into(),
                    data: record.data.clone(),
                    references: vec![],
                    warnings: vec![],
                });
                Ok(Pushed {
                    change,
                    remote_id,
                    overwritten: vec![],
                    stored,
                    warnings: vec![],
                })
            })
            .collect();
        Ok(Ok(answers))
    }

    async fn pull(
        &self,
        _context: &Arc<InstanceContext>,
        _entity: bss_host::contract::manifest::Entity,
        since: Option<&str>,
        page_token: Option<&str>,
    ) -> PullResult {
        if page_token.is_none() {
            self.pulled_since
                .lock()
                .unwrap()
                .push(since.map(str::to_string));
        }
        let page = self
            .pages
            .lock()
            .unwrap()
            .get(page_token.unwrap_or(""))
            .cloned()
            .unwrap_or(PullPage {
                records: vec![],
                next_page_token: None,
            });
        Ok(Ok(page))
    }
}

fn manifest() -> Manifest {
    let all = Operations {
        create: true,
        update: true,
        delete: false,
    };
    Manifest {
        name: "scripted".into(),
        version: "1.0.0".into(),
        description: "a scripted connector".into(),
        server_variables: vec![],
        sync_options: [Direction::Push, Direction::Pull]
            .into_iter()
            .map(|direction| SyncOption {
                entity: Entity::Account,
                direction,
                operations: all,
            })
            .collect(),
        lookups: vec![],
        auth: Auth {
            scheme: AuthScheme::None,
            headers: vec![],
        },
        remote_host_variable: String::new(),
        documentation_url: None,
        reach: Vec::new(),
    }
}

struct Bench {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    context: Arc<InstanceContext>,
}

fn bench() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("bss.db")).unwrap();
    store
        .create_instance(&InstanceRow {
            name: INSTANCE.into(),
            connector: "scripted".into(),
            version_req: None,
            installation: "Acme".into(),
            enabled: true,
            created_at: "2026-01-01T00:00:00Z".into(),
        })
        .unwrap();
    let all = Operations {
        create: true,
        update: true,
        delete: false,
    };
    store
        .set_sync_options(
            INSTANCE,
            &[
                (Entity::Account, Direction::Push, all),
                (Entity::Account, Direction::Pull, all),
            ],
        )
        .unwrap();
    let context = Arc::new(
        InstanceContext::new(
            INSTANCE,
            &manifest(),
            &BTreeMap::new(),
            BTreeMap::new(),
            InstanceOptions::default(),
        )
        .unwrap(),
    );
    Bench {
        _dir: dir,
        store,
        context,
    }
}

impl Bench {
    fn engine<'a>(&'a self, connector: &'a Scripted) -> Engine<'a, Scripted> {
        Engine {
            store: &self.store,
            connector,
            context: Arc::clone(&self.context),
            pacing: Pacing {
                batch_size: 10,
                max_attempts: 3,
                max_rate_limit_waits: 5,
                first_backoff: Duration::from_millis(5),
                max_backoff: Duration::from_millis(20),
            },
            progress: None,
            lease: None,
            trigger: bss_host::store::RunTrigger::Command,
        }
    }

    async fn push(&self, connector: &Scripted, lines: &[serde_json::Value]) -> PushReport {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let (records, invalid) = parse_file(Entity::Account, &text);
        self.engine(connector)
            .push(
                Entity::Account,
                records,
                invalid,
                false,
                bss_host::store::RunKind::Push,
            )
            .await
            .unwrap()
    }
}

fn account(id: &str, parent: Option<&str>) -> serde_json::Value {
    json!({ "id": id, "code": format!("C-{id}"), "name": format!("Account {id}"), "parent-account": parent })
}

fn outcome<'r>(report: &'r PushReport, id: &str) -> &'r str {
    &report.items.iter().find(|i| i.id == id).unwrap().outcome
}

#[tokio::test]
async fn references_within_a_run_go_in_waves() {
    let b = bench();
    let connector = Scripted::default();
    let report = b
        .push(
            &connector,
            &[
                account("A3", Some("A2")),
                account("A2", Some("A1")),
                account("A1", None),
            ],
        )
        .await;
    assert_eq!(report.created, 3, "{report:?}");
    assert_eq!(connector.call_ids(), [["A1"], ["A2"], ["A3"]]);
    let calls = connector.calls.lock().unwrap();
    let a3 = &calls[2][0].record;
    assert_eq!(a3.references.len(), 1);
    assert_eq!(a3.references[0].field, "parent-account");
    assert_eq!(a3.references[0].remote_id, "r2", "A2's remote id");
}

#[tokio::test]
async fn a_cycle_is_said_and_nothing_of_it_is_sent() {
    let b = bench();
    let connector = Scripted::default();
    let report = b
        .push(
            &connector,
            &[
                account("A1", Some("A2")),
                account("A2", Some("A1")),
                account("A3", None),
            ],
        )
        .await;
    assert_eq!(report.created, 1);
    assert_eq!(report.failed, 2, "{report:?}");
    let message = report.items.iter().find(|i| i.id == "A1").unwrap();
    assert!(
        message
            .message
            .as_deref()
            .unwrap()
            .contains("refers back to it"),
        "{message:?}"
    );
    assert_eq!(connector.call_ids(), [["A3"]]);
}

#[tokio::test]
async fn a_retry_after_is_waited_for_and_passing_failures_are_tried_again() {
    let b = bench();
    let connector = Scripted::default();
    connector.fail("A1", vec![ConnectorError::RateLimited(Some(300))]);
    connector.fail(
        "A2",
        vec![ConnectorError::Transient("503 from the remote".into())],
    );
    let started = Instant::now();
    let report = b
        .push(&connector, &[account("A1", None), account("A2", None)])
        .await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(report.created, 2, "{report:?}");
    assert_eq!(connector.call_ids(), [vec!["A1", "A2"], vec!["A1", "A2"]]);
    assert!(b.store.queue(INSTANCE).unwrap().is_empty());
}

#[tokio::test]
async fn failures_beyond_the_tries_go_to_the_retry_queue_and_rejections_do_not() {
    let b = bench();
    let connector = Scripted::default();
    connector.fail("A1", vec![ConnectorError::Transient("timeout".into()); 3]);
    connector.fail(
        "A2",
        vec![ConnectorError::Rejected(vec![wit::FieldError {
            field: "name".into(),
            message: "too long".into(),
        }])],
    );
    let report = b
        .push(&connector, &[account("A1", None), account("A2", None)])
        .await;
    assert_eq!((report.queued, report.failed), (1, 1), "{report:?}");
    assert_eq!(outcome(&report, "A1"), "queued");
    assert_eq!(outcome(&report, "A2"), "failed");
    let queue = b.store.queue(INSTANCE).unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].bss_id, "A1");
    assert!(queue[0].error.contains("timeout"), "{queue:?}");
    // The queued record is the one sent: the next push of it succeeds and empties the queue.
    let report = b.push(&connector, &[account("A1", None)]).await;
    assert_eq!(report.created, 1);
    assert!(b.store.queue(INSTANCE).unwrap().is_empty());
}

#[tokio::test]
async fn an_update_carries_what_was_last_pushed() {
    let b = bench();
    let connector = Scripted::default();
    b.push(&connector, &[account("A1", None)]).await;
    let mut renamed = account("A1", None);
    renamed["name"] = json!("Renamed");
    let report = b.push(&connector, &[renamed]).await;
    assert_eq!(report.updated, 1);
    let calls = connector.calls.lock().unwrap();
    assert!(calls[0][0].last_pushed.is_none(), "a create has no base");
    let base = calls[1][0].last_pushed.as_ref().expect("the last push");
    let EntityData::Account(last) = &base.data else {
        panic!()
    };
    assert_eq!(last.name, "Account A1");
}

fn pulled(remote_id: &str, stamp: &str) -> PulledRecord {
    PulledRecord {
        remote_id: remote_id.into(),
        last_updated: stamp.into(),
        data: EntityData::Account(wit::Account {
            code: format!("C-{remote_id}"),
            name: format!("Remote {remote_id}"),
            account_type: None,
            status: None,
            currency: None,
            billing_address: None,
            phone: None,
            fax: None,
            website: None,
            parent_account: None,
            primary_contact: None,
            extra: vec![],
        }),
        references: Vec::<RemoteReference>::new(),
        warnings: vec![],
    }
}

#[tokio::test]
async fn the_cursor_moves_only_to_valid_stamps_and_echoes_are_not_changes() {
    let b = bench();
    let connector = Scripted {
        stores_copies: true,
        ..Scripted::default()
    };
    // A1 pushed: the remote's copy of it is stored.
    let report = b.push(&connector, &[account("A1", None)]).await;
    let echo_id = report.items[0].remote_id.clone().unwrap();
    let mut echo = pulled(&echo_id, "2026-05-01T10:00:00Z");
    let calls = connector.calls.lock().unwrap().clone();
    echo.data = calls[0][0].record.data.clone();

    connector.pages.lock().unwrap().extend([
        (
            String::new(),
            PullPage {
                records: vec![
                    echo,
                    pulled("r7", "2026-05-01T11:00:00Z"),
                    pulled("r8", "2015-12-24T22: 08: 22Z"),
                ],
                next_page_token: Some("2".into()),
            },
        ),
        (
            "2".into(),
            PullPage {
                records: vec![pulled("r9", "2026-05-01T12:00:00Z")],
                next_page_token: None,
            },
        ),
    ]);
    let mut out = Vec::new();
    let report = b
        .engine(&connector)
        .pull(Entity::Account, PullFrom::default(), &mut out)
        .await
        .unwrap();
    assert_eq!((report.delivered, report.echoes), (3, 1), "{report:?}");
    assert_eq!(report.cursor.as_deref(), Some("2026-05-01T12:00:00Z"));
    let text = String::from_utf8(out).unwrap();
    assert!(
        !text.contains(&format!("\"remote-id\":\"{echo_id}\"")),
        "{text}"
    );
    assert!(text.contains("does not move the cursor"), "{text}");
    assert_eq!(
        b.store.cursor(INSTANCE, Entity::Account).unwrap().stamp,
        Some("2026-05-01T12:00:00Z".into())
    );

    // The next pull starts from the cursor and folds what it already delivered at that stamp.
    let mut out = Vec::new();
    let again = b
        .engine(&connector)
        .pull(Entity::Account, PullFrom::default(), &mut out)
        .await
        .unwrap();
    assert_eq!(
        connector
            .pulled_since
            .lock()
            .unwrap()
            .last()
            .cloned()
            .flatten(),
        Some("2026-05-01T12:00:00Z".to_string())
    );
    assert_eq!(again.folded, 1, "{again:?}");
}
