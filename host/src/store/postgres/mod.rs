//! The store on PostgreSQL, for a fleet of `serve` workers sharing one database (issue 18; the
//! plan is `docs/postgres-store-design.md`): all six parts of the store — the registry's, the
//! instances', the sync engine's, the schedules' and feed's, the callbacks' and API access's —
//! with the guarantees their traits state, checked by the behaviour tests both backends run
//! (`store/behaviour/`); `copy.rs` is `migrate-store`, and `scratch.rs` the tests' databases.
//!
//! The store traits are synchronous; the driver (tokio-postgres, pooled by deadpool) is async.
//! [`PgStore`] keeps its own small tokio runtime on a thread of its own, which drives the
//! connections' sockets and timers; each method runs its async body to the end on the calling
//! thread, inside that runtime's context. That works from any caller: a `serve` worker, a
//! current-thread test runtime, or a plain thread. Its rules: the body is polled `unconstrained`
//! (a worker thread's co-operative budget belongs to the task it interrupted), no method is
//! called from the store's own runtime thread, and the runtime is dropped on its own thread.

pub mod copy;
mod hooks;
mod instances;
mod jobs;
#[cfg(test)]
mod jobs_tests;
mod registry;
mod schedules;
mod schema;
/// Scratch databases for tests (the crate's own and its integration tests).
#[doc(hidden)]
pub mod scratch;
mod sync;
pub mod tls;
mod tokens;
mod trust;

use std::time::Duration;

use super::{StoreError, StoreResult};

thread_local! {
    static ON_STORE_RUNTIME: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The server's clock in unix milliseconds, in SQL: leases, job leases and heartbeats are timed by
/// it, so workers whose clocks differ agree on when one lapses.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// Connections a store keeps open at most.
const POOL_SIZE: usize = 16;

pub struct PgStore {
    pool: deadpool_postgres::Pool,
    runtime: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The URL without its password, for messages.
    shown: String,
    /// How to connect, for the listening connection (outside the pool: it stays open).
    config: tokio_postgres::Config,
    /// TLS as the URL's `sslmode` and `sslrootcert` ask.
    tls: tls::RustlsConnect,
    /// Woken by notifications, once something asked for them.
    wakeup: std::sync::OnceLock<Wakeups>,
}

/// The channel that says another worker stored a connector component.
pub const COMPONENTS_CHANNEL: &str = "bss_connectors";

/// What the listening connection wakes, per channel.
#[derive(Clone)]
struct Wakeups {
    jobs: std::sync::Arc<tokio::sync::Notify>,
    components: std::sync::Arc<tokio::sync::Notify>,
}

impl Wakeups {
    fn wake(&self, channel: &str) {
        match channel {
            jobs::JOBS_CHANNEL => self.jobs.notify_one(),
            COMPONENTS_CHANNEL => self.components.notify_one(),
            _ => {}
        }
    }

    /// After a (re)connect: whatever was missed meanwhile may be waiting.
    fn wake_all(&self) {
        self.jobs.notify_one();
        self.components.notify_one();
    }
}

/// `url` with any password replaced by `***`.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        // A key=value connection string: drop a password=… pair.
        Err(_) => url
            .split_whitespace()
            .map(|pair| {
                if pair.starts_with("password=") {
                    "password=***"
                } else {
                    pair
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn open_error(shown: &str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Open {
        path: shown.to_string(),
        reason: reason.to_string(),
    }
}

/// An error with the errors that caused it (a refused handshake says why only in its cause).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut said = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let text = inner.to_string();
        if !said.contains(&text) {
            said = format!("{said}: {text}");
        }
        cause = inner.source();
    }
    said
}

/// What to do about a refused server certificate.
fn tls_hint(error: &str) -> &'static str {
    if error.contains("certificate") {
        " (the server's certificate was not trusted: name its CA with sslrootcert=PATH in the URL, or use sslmode=verify-ca when the host name differs)"
    } else {
        ""
    }
}

/// A driver error in the store's words; a broken unique constraint is a conflict.
pub(crate) fn db(error: tokio_postgres::Error) -> StoreError {
    StoreError::Database(match error.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => error.to_string(),
    })
}

/// A stored spelling (an entity, a direction, an action) read back; `what` names the column.
pub(crate) fn parsed<T: std::str::FromStr>(text: &str, what: &str) -> StoreResult<T>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e: T::Err| StoreError::Database(format!("{what}: {e}")))
}

/// Whether `error` is a broken unique constraint (SQLSTATE 23505).
pub(crate) fn is_unique_violation(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host/db` or `host=… dbname=…`) and
    /// brings its schema up to date; refuses a database a newer host wrote.
    pub fn open(url: &str) -> StoreResult<PgStore> {
        let shown = redact(url);
        let (driver_url, tls) = tls::split_url(url).map_err(|e| open_error(&shown, e))?;
        let tls = tls::connector(&tls).map_err(|e| open_error(&shown, e))?;
        let config: tokio_postgres::Config = driver_url.parse().map_err(|e| {
            open_error(
                &shown,
                format!("{e}; write it as postgres://USER@HOST:PORT/DATABASE"),
            )
        })?;
        let (handle_sender, handle) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("bss-postgres".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = handle_sender.send(Err(e.to_string()));
                        return;
                    }
                };
                ON_STORE_RUNTIME.with(|on| on.set(true));
                let _ = handle_sender.send(Ok(runtime.handle().clone()));
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })
            .map_err(|e| open_error(&shown, e))?;
        let runtime = handle
            .recv()
            .map_err(|e| open_error(&shown, e))?
            .map_err(|e| open_error(&shown, e))?;
        let manager = deadpool_postgres::Manager::from_config(
            config.clone(),
            tls.clone(),
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = {
            let _entered = runtime.enter();
            deadpool_postgres::Pool::builder(manager)
                .max_size(POOL_SIZE)
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(Duration::from_secs(30)))
                .create_timeout(Some(Duration::from_secs(10)))
                .build()
                .map_err(|e| open_error(&shown, e))?
        };
        let store = PgStore {
            pool,
            runtime,
            stop: Some(stop),
            shown,
            config,
            tls,
            wakeup: std::sync::OnceLock::new(),
        };
        store
            .run(async |client| schema::migrate(client, &store.shown).await)
            .map_err(|e| match e {
                StoreError::Database(reason) => open_error(&store.shown, reason),
                other => other,
            })?;
        Ok(store)
    }

    /// Runs one store operation to its end on the calling thread, with a pooled connection.
    fn run<T>(
        &self,
        operation: impl AsyncFnOnce(&mut deadpool_postgres::Object) -> StoreResult<T>,
    ) -> StoreResult<T> {
        assert!(
            !ON_STORE_RUNTIME.with(|on| on.get()),
            "a PgStore method was called on the store's own runtime thread"
        );
        let _entered = self.runtime.enter();
        futures_executor::block_on(tokio::task::unconstrained(async {
            let mut client = self.pool.get().await.map_err(|e| {
                let said = with_causes(&e);
                StoreError::Database(format!(
                    "no connection to {}: {said}{}",
                    self.shown,
                    tls_hint(&said)
                ))
            })?;
            operation(&mut client).await
        }))
    }
}

impl PgStore {
    /// The notifications of claimable jobs and stored components, listened for on a
    /// connection of its own (started on first use, reconnected when it drops).
    fn listener(&self) -> Wakeups {
        self.wakeup
            .get_or_init(|| {
                let woken = Wakeups {
                    jobs: std::sync::Arc::new(tokio::sync::Notify::new()),
                    components: std::sync::Arc::new(tokio::sync::Notify::new()),
                };
                self.runtime.spawn(listen(
                    self.config.clone(),
                    self.tls.clone(),
                    woken.clone(),
                    self.shown.clone(),
                ));
                woken
            })
            .clone()
    }
}

/// Forwards notifications to `woken` for as long as the store lives. After a reconnect it wakes
/// everything once, for what it may have missed.
async fn listen(
    config: tokio_postgres::Config,
    tls: tls::RustlsConnect,
    woken: Wakeups,
    shown: String,
) {
    loop {
        match config.connect(tls.clone()).await {
            Ok((client, mut connection)) => {
                let forward = woken.clone();
                let pump = tokio::spawn(async move {
                    while let Some(message) =
                        std::future::poll_fn(|cx| connection.poll_message(cx)).await
                    {
                        match message {
                            Ok(tokio_postgres::AsyncMessage::Notification(note)) => {
                                forward.wake(note.channel())
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
                let listening = client
                    .batch_execute(&format!(
                        "LISTEN {}; LISTEN {COMPONENTS_CHANNEL}",
                        jobs::JOBS_CHANNEL
                    ))
                    .await;
                match listening {
                    Ok(()) => {
                        woken.wake_all();
                        let _ = pump.await;
                    }
                    Err(error) => {
                        tracing::warn!("listening on {shown} failed: {error}");
                        pump.abort();
                    }
                }
                drop(client);
            }
            Err(error) => {
                tracing::warn!("no connection to {shown} to listen on: {error}");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // The runtime thread drops the runtime itself (dropping one in async context panics).
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::behaviour;
    use crate::store::token_store::TokenStore;
    use scratch::ScratchDb;

    #[test]
    fn token_names_are_unique_and_revocation_is_seen_by_every_handle() {
        let scratch = ScratchDb::create();
        behaviour::token_names_are_unique_and_revocation_is_seen_by_every_handle(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }

    #[test]
    fn trusted_keys_are_unique_and_a_removal_is_seen_by_every_handle() {
        let scratch = ScratchDb::create();
        behaviour::trusted_keys_are_unique_and_a_removal_is_seen_by_every_handle(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }

    #[test]
    fn the_audit_log_keeps_order_and_appends_a_once_key_once() {
        let scratch = ScratchDb::create();
        behaviour::the_audit_log_keeps_order_and_appends_a_once_key_once(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }

    #[test]
    fn sessions_end_at_expiry_sign_out_and_revocation() {
        let scratch = ScratchDb::create();
        behaviour::sessions_end_at_expiry_sign_out_and_revocation(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap()) as Box<dyn TokenStore>
        });
    }

    #[test]
    fn a_build_keeps_its_first_manifest_and_versions_can_be_withdrawn() {
        let scratch = ScratchDb::create();
        behaviour::a_build_keeps_its_first_manifest_and_versions_can_be_withdrawn(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }

    #[test]
    fn instances_keep_settings_lookups_options_and_checks_across_handles() {
        let scratch = ScratchDb::create();
        behaviour::instances_keep_settings_lookups_options_and_checks_across_handles(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }

    #[test]
    fn a_request_budget_is_shared_by_every_handle() {
        let scratch = ScratchDb::create();
        behaviour::a_request_budget_is_shared_by_every_handle(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }

    #[test]
    fn events_of_one_instance_and_entity_are_claimed_apart_and_due_groups_listed() {
        let scratch = ScratchDb::create();
        behaviour::events_of_one_instance_and_entity_are_claimed_apart_and_due_groups_listed(
            &|| Box::new(PgStore::open(&scratch.url).unwrap()),
        );
    }

    #[test]
    fn callback_events_are_kept_once_and_claimed_once() {
        let scratch = ScratchDb::create();
        behaviour::callback_events_are_kept_once_and_claimed_once(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }

    #[test]
    fn a_hook_is_kept_replaced_and_removed_with_its_events() {
        let scratch = ScratchDb::create();
        behaviour::a_hook_is_kept_replaced_and_removed_with_its_events(&|| {
            Box::new(PgStore::open(&scratch.url).unwrap())
        });
    }

    /// Opened from inside a runtime of either flavour, as `serve` and the tests do.
    #[tokio::test(flavor = "current_thread")]
    async fn works_inside_a_current_thread_runtime() {
        let scratch = ScratchDb::create();
        let store = PgStore::open(&scratch.url).unwrap();
        assert!(store.tokens().unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn works_inside_a_multi_thread_runtime_and_migrates_once() {
        let scratch = ScratchDb::create();
        let url = scratch.url.clone();
        let opened: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || PgStore::open(&url).map(|_| ()))
            })
            .collect();
        for handle in opened {
            handle.join().unwrap().unwrap();
        }
        let store = PgStore::open(&url).unwrap();
        let versions = store
            .run(async |client| {
                Ok(client
                    .query_one("SELECT count(*) FROM bss_schema", &[])
                    .await
                    .map_err(db)?
                    .get::<_, i64>(0))
            })
            .unwrap();
        assert_eq!(versions, schema::known(), "each migration applied once");
    }

    #[test]
    fn a_database_a_newer_host_wrote_is_refused() {
        let scratch = ScratchDb::create();
        let store = PgStore::open(&scratch.url).unwrap();
        store
            .run(async |client| {
                client
                    .execute(
                        "INSERT INTO bss_schema (version, name) VALUES (999, 'from the future')",
                        &[],
                    )
                    .await
                    .map_err(db)?;
                Ok(())
            })
            .unwrap();
        drop(store);
        let error = PgStore::open(&scratch.url).err().expect("refused");
        assert!(
            matches!(error, StoreError::NewerSchema { found: 999, .. }),
            "{error}"
        );
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://bss:s3cret@db.example:5432/bss"),
            "postgres://bss:***@db.example:5432/bss"
        );
        assert_eq!(
            redact("host=db user=bss password=s3cret dbname=bss"),
            "host=db user=bss password=*** dbname=bss"
        );
        assert_eq!(
            redact("postgres://root@127.0.0.1/postgres"),
            "postgres://root@127.0.0.1/postgres"
        );
    }

    #[test]
    fn a_server_that_is_not_there_is_a_clear_open_error() {
        let error = PgStore::open("postgres://nobody:pw@127.0.0.1:1/none")
            .err()
            .expect("nothing listens on port 1");
        let text = error.to_string();
        assert!(
            text.contains("postgres://nobody:***@127.0.0.1:1/none"),
            "{text}"
        );
        assert!(!text.contains("pw@"), "{text}");
    }
}
