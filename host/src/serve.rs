//! `bss-host serve`: the plugins folder watched for new connector versions, the scheduler, and the
//! admin API, in one process.

use std::net::SocketAddr;

use crate::app::App;

pub async fn serve(app: App, listen: SocketAddr, feed_retention_days: i64) -> anyhow::Result<()> {
    crate::api::tokens::ensure_admin(&app.data, app.store.as_ref())?;
    let _watcher = crate::registry::watch(
        app.registry.clone(),
        app.plugins.clone(),
        crate::registry::WATCH_EVERY,
    );
    let _scheduler = crate::scheduler::start(app.instances.clone(), feed_retention_days);
    let router = crate::api::router(app);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    // The API's line last: tests (and scripts) read up to it, then stop reading.
    println!("console at http://{address}/ (sign in with an API token)");
    println!("admin API listening on http://{address}/api/v1");
    axum::serve(listener, router).await?;
    Ok(())
}
