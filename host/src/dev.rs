//! `bss-host dev FILE`: a connector author's loop. Starts the ConnectWise sandbox in this
//! process, installs FILE into a data folder of its own (default `.bss-dev/`), activates instance
//! `dev` with the sandbox's credentials for every server variable the manifest declares that the
//! sandbox knows (plus `--set KEY=VALUE`), private network allowed and a high request budget, runs
//! the instance's check (the sandbox lives in memory, so each run starts instance `dev` afresh:
//! settings, lookups and id map), and then watches FILE: each rebuild (renamed into place or
//! closed after writing, as file-system notifications tell; or found by a rescan once it held
//! still) is loaded and checked again, and a build that is refused says why while the last good
//! one keeps serving. Other commands (`push dev …`, `pull dev …`) run against the same folder in
//! another terminal. Ends with Ctrl-C.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use cw_sandbox::{Sandbox, SandboxConfig};

use crate::app::App;

/// The instance `dev` sets up.
pub const INSTANCE: &str = "dev";

/// How often the file is looked at.
const WATCH_EVERY: Duration = Duration::from_millis(300);

/// What `dev` is asked to do.
pub struct DevOptions<'a> {
    pub file: &'a Path,
    pub folder: PathBuf,
    pub sets: &'a [String],
    pub port: u16,
    /// Stop after the first load and check (for tests and scripts).
    pub once: bool,
}

pub async fn run(options: DevOptions<'_>) -> anyhow::Result<()> {
    let DevOptions {
        file,
        folder,
        sets,
        port,
        once,
    } = options;
    let bytes =
        std::fs::read(file).with_context(|| format!("could not read {}", file.display()))?;
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let sandbox = Sandbox::start_on(address, SandboxConfig::default())
        .await
        .with_context(|| format!("the ConnectWise sandbox could not listen on {address}"))?;
    let plugins = folder.join("plugins");
    std::fs::create_dir_all(&plugins)
        .with_context(|| format!("could not create {}", plugins.display()))?;
    let installed = plugins.join("dev.wasm");
    std::fs::write(&installed, &bytes)?;
    // The author's own build: it need not be signed to be tried.
    let app = App::open_with(
        &folder,
        crate::app::OpenOptions {
            allow_unsigned: true,
            ..crate::app::OpenOptions::default()
        },
    )
    .await?;
    for problem in &app.load_problems {
        if problem.source.contains("dev.wasm") {
            anyhow::bail!("{} was refused: {}", file.display(), problem.error);
        }
    }
    let loaded = app
        .registry
        .loaded()
        .into_iter()
        .find(|l| l.source == installed.display().to_string())
        .context("the file did not load")?;
    let manifest = loaded.connector.manifest().clone();
    let instances = &app.instances;
    // The sandbox is new on every run: an id map from an earlier one would point at records it
    // does not hold, so the instance starts afresh.
    if instances.get(INSTANCE).is_ok() {
        instances.delete(INSTANCE)?;
    }
    instances.activate(&manifest.name, INSTANCE, None, Some("dev (sandbox)"))?;
    let mut pairs: Vec<(String, String)> = Vec::new();
    let known = [
        ("company-id", sandbox.company_id().to_string()),
        ("public-key", sandbox.public_key().to_string()),
        ("private-key", sandbox.private_key().to_string()),
        ("client-id", "bss-dev".to_string()),
    ];
    for variable in &manifest.server_variables {
        if variable.kind == crate::contract::manifest::VariableKind::Url {
            pairs.push((variable.key.clone(), sandbox.base_url()));
        } else if let Some((_, value)) = known.iter().find(|(key, _)| *key == variable.key) {
            pairs.push((variable.key.clone(), value.clone()));
        }
    }
    pairs.push(("host.allow-private-network".into(), "on".into()));
    pairs.push(("host.requests-per-minute".into(), "100000".into()));
    for set in sets {
        let (key, value) =
            crate::instances::parse_pair(set).map_err(|e| anyhow::anyhow!("--set {set:?}: {e}"))?;
        pairs.retain(|(k, _)| *k != key);
        pairs.push((key, value));
    }
    instances.set_settings(INSTANCE, &pairs, &crate::store::trust_store::cli_actor())?;
    println!(
        "ConnectWise sandbox at {} (company {}, keys {} / {})",
        sandbox.base_url(),
        sandbox.company_id(),
        sandbox.public_key(),
        sandbox.private_key()
    );
    println!(
        "instance {INSTANCE} of {} {} in {}; try, in another terminal:",
        manifest.name,
        manifest.version,
        folder.display()
    );
    println!(
        "  bss-host --data {} lookups choices {INSTANCE} KEY\n  bss-host --data {} push {INSTANCE} account --file accounts.ndjson",
        folder.display(),
        folder.display()
    );
    check(&app).await;
    if once {
        return Ok(());
    }
    println!("watching {} for rebuilds (Ctrl-C ends)", file.display());
    // Size, times and inode: a rebuild of the same size with a fixed time (a reproducible build)
    // is still a change.
    let stamp = crate::registry::plugin_index::stamp;
    let mut seen = stamp(file);
    // A rebuild renamed into place, or closed after writing, is told at once; the rescan catches
    // what notifications miss.
    let folder = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = file.file_name().map(ToOwned::to_owned);
    let mut notified: Option<crate::registry::Completed> =
        crate::registry::notifications(folder, move |p| p.file_name() == name.as_deref());
    loop {
        let complete = tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            Some(_) = crate::registry::next_completed(&mut notified) => true,
            _ = tokio::time::sleep(WATCH_EVERY) => false,
        };
        let now = stamp(file);
        if now == seen || now.is_none() {
            continue;
        }
        if !complete {
            // Found by a rescan, a build may still be writing the file: wait until it holds still.
            tokio::time::sleep(WATCH_EVERY).await;
            if stamp(file) != now {
                continue;
            }
        }
        seen = now;
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        // Written aside and renamed in, so a command reading the plugins folder meanwhile
        // never sees half a file.
        let aside = plugins.join("dev.wasm.writing");
        std::fs::write(&aside, &bytes)?;
        std::fs::rename(&aside, &installed)?;
        match app.registry.load_file(&installed).await {
            Ok(loaded) => {
                println!(
                    "rebuilt: {} {} loaded",
                    loaded.connector.manifest().name,
                    loaded.version
                );
                check(&app).await;
            }
            Err(error) => {
                println!("rebuilt, but refused (the last good build keeps serving): {error}")
            }
        }
    }
}

async fn check(app: &App) {
    match app.instances.check(INSTANCE).await {
        Ok(outcome) => {
            println!(
                "check {}: {}",
                if outcome.ok { "ok" } else { "FAILED" },
                outcome.summary
            );
            for (key, problem) in &outcome.problems {
                println!("  {key}: {problem}");
            }
        }
        Err(error) => println!("check could not run: {error}"),
    }
}
