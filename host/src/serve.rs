//! `bss-host serve`: the plugins folder watched for new connector versions, the scheduler (on one
//! worker of the fleet at a time), the job worker, and the admin API, in one process; and its
//! clean stop on SIGTERM or Ctrl-C: the API takes no new requests, the worker claims no new jobs
//! and gives the running ones a grace period to end, hands back what is left, and the lead of the
//! scheduler is given up, so the rest of the fleet carries on at once.

use std::net::SocketAddr;
use std::time::Duration;

use crate::app::App;

/// How `serve` was asked to run.
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub feed_retention_days: i64,
    /// The console's cookies are always `Secure` (a TLS proxy is in front).
    pub secure_cookies: bool,
    /// This worker's id in the fleet (default: host, process id and a nonce).
    pub worker_id: Option<String>,
    /// How long running jobs may take to end after a stop signal before they are handed back.
    pub shutdown_grace: Duration,
}

/// The default of `--shutdown-grace`: inside the 30 seconds a service manager or Kubernetes
/// gives before SIGKILL.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// What asked `serve` to stop.
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(error) => {
                tracing::warn!(
                    "SIGTERM cannot be caught ({error}); only Ctrl-C stops serve cleanly"
                );
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

pub async fn serve(app: App, options: ServeOptions) -> anyhow::Result<()> {
    let ServeOptions {
        listen,
        feed_retention_days,
        secure_cookies,
        worker_id,
        shutdown_grace,
    } = options;
    crate::api::tokens::ensure_admin(&app.data, app.store.as_ref())?;
    // New versions compile while calls are answered: the calls come first.
    crate::runtime::compiler::compile_in_background();
    let _watcher = crate::registry::watch(
        app.registry.clone(),
        app.plugins.clone(),
        crate::registry::WATCH_EVERY,
    );
    let _follower = crate::registry::follow_store(app.registry.clone());
    let worker_id = worker_id.unwrap_or_else(crate::fleet::default_worker_id);
    let scheduler = crate::scheduler::start(
        app.instances.clone(),
        feed_retention_days,
        worker_id.clone(),
    );
    let worker = crate::fleet::start(app.instances.clone(), worker_id)?;
    let instances = app.instances.clone();
    // The console's pages beside the API (whose fallback answers unknown paths).
    let console = crate::console::router(app.instances.clone(), &app.data, secure_cookies);
    let app_database = app.database.shown();
    let router = crate::api::router(app).merge(console);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    // The API's line last: tests (and scripts) read up to it, then stop reading.
    println!("worker {} on the store {}", worker.id(), app_database);
    println!("console at http://{address}/ (sign in with an API token)");
    println!("admin API listening on http://{address}/api/v1");
    let stopping = std::sync::Arc::new(tokio::sync::Notify::new());
    let server = axum::serve(listener, router).with_graceful_shutdown({
        let stopping = stopping.clone();
        async move { stopping.notified().await }
    });
    // On a task of its own, so it keeps being polled (and stops accepting at once) while the
    // worker drains below.
    let mut server = tokio::spawn(server.into_future());
    let signal = tokio::select! {
        ended = &mut server => {
            ended??;
            return Ok(());
        }
        signal = stop_signal() => signal,
    };
    eprintln!(
        "serve: {signal}: stopping; no new requests or jobs, {}s for the running jobs to end",
        shutdown_grace.as_secs()
    );
    stopping.notify_one();
    for task in &scheduler {
        task.abort();
    }
    let worker_id = worker.id().to_string();
    crate::scheduler::step_down(&instances, &worker_id);
    let ended = worker.shut_down(shutdown_grace).await;
    // Requests already being answered get a moment; a client holding its connection open does
    // not keep the process.
    let drained = tokio::time::timeout(Duration::from_secs(5), server).await;
    eprintln!(
        "serve: worker {worker_id} stopped: {} job(s) ended, {} handed back to the fleet{}",
        ended.finished,
        ended.handed_back,
        if drained.is_err() {
            "; open API connections were closed"
        } else {
            ""
        }
    );
    Ok(())
}
