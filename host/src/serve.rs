//! `bss-host serve`: the plugins folder watched for new connector versions, the scheduler, and the
//! admin API, in one process.

use std::net::SocketAddr;

use crate::app::App;

/// How `serve` was asked to run.
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub feed_retention_days: i64,
    /// The console's cookies are always `Secure` (a TLS proxy is in front).
    pub secure_cookies: bool,
}

pub async fn serve(app: App, options: ServeOptions) -> anyhow::Result<()> {
    let ServeOptions {
        listen,
        feed_retention_days,
        secure_cookies,
    } = options;
    crate::api::tokens::ensure_admin(&app.data, app.store.as_ref())?;
    let _watcher = crate::registry::watch(
        app.registry.clone(),
        app.plugins.clone(),
        crate::registry::WATCH_EVERY,
    );
    let _scheduler = crate::scheduler::start(app.instances.clone(), feed_retention_days);
    // The console's pages beside the API (whose fallback answers unknown paths).
    let console = crate::console::router(app.instances.clone(), &app.data, secure_cookies);
    let router = crate::api::router(app).merge(console);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    // The API's line last: tests (and scripts) read up to it, then stop reading.
    println!("console at http://{address}/ (sign in with an API token)");
    println!("admin API listening on http://{address}/api/v1");
    axum::serve(listener, router).await?;
    Ok(())
}
