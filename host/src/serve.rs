//! `bss-host serve`: the plugins folder watched for new connector versions, the scheduler (on one
//! worker of the fleet at a time), the job worker, and the admin API, in one process.

use std::net::SocketAddr;

use crate::app::App;

/// How `serve` was asked to run.
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub feed_retention_days: i64,
    /// The console's cookies are always `Secure` (a TLS proxy is in front).
    pub secure_cookies: bool,
    /// This worker's id in the fleet (default: host, process id and a nonce).
    pub worker_id: Option<String>,
}

pub async fn serve(app: App, options: ServeOptions) -> anyhow::Result<()> {
    let ServeOptions {
        listen,
        feed_retention_days,
        secure_cookies,
        worker_id,
    } = options;
    crate::api::tokens::ensure_admin(&app.data, app.store.as_ref())?;
    let _watcher = crate::registry::watch(
        app.registry.clone(),
        app.plugins.clone(),
        crate::registry::WATCH_EVERY,
    );
    let _follower = crate::registry::follow_store(app.registry.clone());
    let worker_id = worker_id.unwrap_or_else(crate::fleet::default_worker_id);
    let _scheduler = crate::scheduler::start(
        app.instances.clone(),
        feed_retention_days,
        worker_id.clone(),
    );
    let _worker = crate::fleet::start(app.instances.clone(), worker_id)?;
    // The console's pages beside the API (whose fallback answers unknown paths).
    let console = crate::console::router(app.instances.clone(), &app.data, secure_cookies);
    let app_database = app.database.shown();
    let router = crate::api::router(app).merge(console);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    // The API's line last: tests (and scripts) read up to it, then stop reading.
    println!("worker {} on the store {}", _worker.id(), app_database);
    println!("console at http://{address}/ (sign in with an API token)");
    println!("admin API listening on http://{address}/api/v1");
    axum::serve(listener, router).await?;
    Ok(())
}
