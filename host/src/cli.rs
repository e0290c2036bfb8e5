//! The `bss-host` command line. Subcommands work directly on the data folder (not through a
//! running `serve`), so each is the process that does the work. Errors name what was wrong and
//! where; nothing is half-written, since every change is one store transaction.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

use crate::app::App;
use std::io::IsTerminal as _;

use crate::contract::manifest::{AuthScheme, Manifest, VariableKind};
use crate::instances::{CheckOutcome, parse_pair, parse_sync_option};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::safe_text::{json_pretty, printable};
use crate::sync::PushReport;
use crate::sync::engine::PullFrom;
use crate::sync::lease::{WaitPolicy, new_owner};
use crate::sync::service::{RunBy, parse_entity, pull_to, push_reader, retry};

/// Exit codes, as `--help` states them.
pub const EXIT_HELP: &str = "Exit codes: 0 every record succeeded (created, updated, unchanged, reconciled) or the command did what it said; 2 the run happened but some records failed, were invalid or wait in the retry queue (the report says which); 1 the command could not run (unknown instance, bad arguments, busy with --no-wait, a failed check, the store or the remote failing).";

/// A run that happened but not every record succeeded: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SomeRecordsFailed(pub String);

#[derive(Debug, Parser)]
#[command(
    name = "bss-host",
    version,
    about = "Runs sandboxed BSS connectors and keeps the BSS and outside systems in sync",
    after_help = EXIT_HELP
)]
pub struct Cli {
    /// Data folder: database, key file and compiled-code cache.
    #[arg(long, global = true, env = "BSS_HOST_DATA", default_value = "bss-data")]
    pub data: PathBuf,
    /// Create a new, empty database in a data folder that was used before (its key file or
    /// cache is there but bss.db is missing or empty). Without it such a folder is refused, so
    /// a lost database is restored rather than silently replaced.
    #[arg(long, global = true)]
    pub new_database: bool,
    /// Connectors folder (default: plugins/ in the data folder).
    #[arg(long, global = true, env = "BSS_HOST_PLUGINS")]
    pub plugins: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connector components.
    #[command(subcommand)]
    Connectors(ConnectorsCommand),
    /// Creates an instance of a connector.
    Activate {
        /// The connector's name (see `connectors list`).
        connector: String,
        /// A unique name for the instance.
        #[arg(long)]
        name: String,
        /// A version requirement (`1.2`, `=1.0.3`); the newest version when absent.
        #[arg(long)]
        version: Option<String>,
        /// The installation name shown to admins (the instance name when absent).
        #[arg(long)]
        installation: Option<String>,
    },
    /// Instances: list, show, disable, enable, delete.
    #[command(subcommand)]
    Instances(InstancesCommand),
    /// Runs the connector's check of the instance's settings against the remote.
    Check { name: String },
    /// Server variables and `host.` options of an instance.
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// Lookup tables (BSS value -> remote value) of an instance.
    #[command(subcommand)]
    Lookups(LookupsCommand),
    /// Which entities, directions and operations an instance syncs.
    #[command(name = "sync-options", subcommand)]
    SyncOptions(SyncOptionsCommand),
    /// Pushes canonical BSS records from a file (a JSON array, or one object per line).
    Push {
        name: String,
        entity: String,
        #[arg(long)]
        file: PathBuf,
        /// Say what would be created or updated; change nothing remote.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Refuse at once (exit 1) when another run of this instance and entity is going on,
        /// instead of waiting for it.
        #[arg(long)]
        no_wait: bool,
    },
    /// Pulls records changed since the instance's cursor, as NDJSON.
    Pull {
        name: String,
        entity: String,
        /// Refuse at once when another run of this instance and entity is going on.
        #[arg(long)]
        no_wait: bool,
        /// Start from this remote time (RFC 3339) instead of the stored cursor.
        #[arg(long)]
        since: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also return records that are only this instance's own pushes coming back (echoes).
        #[arg(long)]
        include_echoes: bool,
    },
    /// Retries the instance's retry queue.
    Retry {
        name: String,
        #[arg(long)]
        json: bool,
        /// Leave an entity queued when another run of it is going on, instead of waiting.
        #[arg(long)]
        no_wait: bool,
    },
    /// Links a BSS record to a remote record that already exists (after a create was refused
    /// as "in use", or an ambiguous reconciliation). The remote record must exist.
    Link {
        name: String,
        entity: String,
        bss_id: String,
        remote_id: String,
        /// The record file that holds the BSS record, when it is not in the retry queue.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Run history and the retry queue.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Starts a ConnectWise sandbox, sets up an instance and syncs a sample of every entity.
    Demo,
    /// Runs the admin API.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8480")]
        listen: std::net::SocketAddr,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// The instance's runs.
    List {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// One run with each record's outcome.
    Show {
        run: i64,
        #[arg(long)]
        json: bool,
    },
    /// The instance's retry queue.
    Queue {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConnectorsCommand {
    /// Installed connectors and their versions.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Withdraws the newest version of a connector: instances that follow the newest go back to the
    /// version before.
    Rollback { name: String },
    /// Puts a withdrawn version back in service.
    Restore { name: String, version: String },
    /// Prints a connector's manifest: a `.wasm` file (not installed) or an installed connector's name.
    Inspect {
        target: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum InstancesCommand {
    List {
        #[arg(long)]
        json: bool,
    },
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Keeps the instance but refuses its syncs.
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
    /// Deletes the instance with its settings, lookups and id map.
    Delete {
        name: String,
        /// Confirms the deletion.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Sets values (`KEY=VALUE`; an empty value clears). Runs the check once settings are complete.
    Set {
        name: String,
        #[arg(required = true)]
        pairs: Vec<String>,
    },
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum LookupsCommand {
    /// The remote values the connector offers for a lookup.
    Choices { name: String, lookup: String },
    /// Maps BSS values to remote values (`BSS=REMOTE`; an empty REMOTE removes the mapping).
    Set {
        name: String,
        lookup: String,
        #[arg(required = true)]
        pairs: Vec<String>,
        /// The BSS value chosen on pull when several map to the same remote value.
        #[arg(long)]
        pull_default: Option<String>,
    },
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SyncOptionsCommand {
    /// Sets `ENTITY:DIRECTION:OPERATIONS` (e.g. `account:push:create,update`, `contact:pull:none`).
    Set {
        name: String,
        #[arg(required = true)]
        options: Vec<String>,
    },
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

/// Prints a push report: counts, each BSS id's remote id (its IntegrationId), and failures.
fn print_push(report: &PushReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", json_pretty(report)?);
        return Ok(());
    }
    let verb = if report.dry_run { "would be " } else { "" };
    println!(
        "run {}: {verb}created {}, {verb}updated {}, unchanged {}, reconciled {}, skipped {}, {verb}held for review {}, failed {}, queued for retry {}",
        report.run,
        report.created,
        report.updated,
        report.unchanged,
        report.reconciled,
        report.skipped,
        report.held,
        report.failed,
        report.queued
    );
    if report.items_truncated {
        println!(
            "  (the first {} of {} records; `bss-host runs show {}` lists every one)",
            report.items.len(),
            report.records,
            report.run
        );
    }
    for item in &report.items {
        // Remote ids and messages come from the connector; ids from the record file.
        let id = printable(&item.id);
        let remote_id = item.remote_id.as_deref().map(printable);
        let message = item.message.as_deref().map(printable);
        match (&remote_id, &message) {
            (Some(remote), None) => println!("  {id} -> {remote} ({})", item.outcome),
            (Some(remote), Some(message)) => {
                println!("  {id} -> {remote} ({}; {message})", item.outcome)
            }
            (None, Some(message)) => println!("  {id} {}: {message}", item.outcome),
            (None, None) => println!("  {id} {}", item.outcome),
        }
    }
    Ok(())
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Demo = &cli.command {
        #[cfg(feature = "demo")]
        return crate::demo::run().await;
        #[cfg(not(feature = "demo"))]
        anyhow::bail!(
            "this bss-host was built without the demo (cargo feature `demo`, on by default)"
        );
    }
    if let Command::Connectors(ConnectorsCommand::Inspect { target, json }) = &cli.command
        && (target.ends_with(".wasm") || Path::new(target).is_file())
    {
        return inspect_file(&cli.data, Path::new(target), *json).await;
    }
    // Listing instances and runs calls no connector: it does not load (or wait for) any.
    let load_connectors = !matches!(
        cli.command,
        Command::Instances(InstancesCommand::List { .. }) | Command::Runs(_)
    );
    let app = App::open_with(
        &cli.data,
        cli.plugins.as_deref(),
        cli.new_database,
        load_connectors,
    )
    .await?;
    let owner = new_owner("cli");
    let who = format!("bss-host (pid {})", std::process::id());
    let notice = |holder: &crate::store::LeaseHolder| {
        eprintln!(
            "waiting: {} holds this instance and entity since {} (lease {}); this run starts when it ends",
            holder.purpose, holder.acquired_at, holder.owner
        )
    };
    let by = |no_wait: bool| RunBy {
        owner: &owner,
        who: &who,
        policy: if no_wait {
            WaitPolicy::Refuse
        } else {
            WaitPolicy::Wait(&notice)
        },
    };
    for problem in &app.load_problems {
        eprintln!(
            "warning: connector {} was not loaded: {}",
            problem.source, problem.error
        );
    }
    let instances = &app.instances;
    match cli.command {
        Command::Connectors(ConnectorsCommand::List { json }) => {
            let rows = app.registry.listing()?;
            if json {
                let refused = app.registry.refusals();
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({ "loaded": rows, "refused": refused })
                    )?
                );
            } else {
                for row in rows {
                    println!(
                        "{:<20} {:<10} {:<24} {}  {}  {}{}",
                        row.name,
                        row.version,
                        row.wit,
                        &row.sha256[..12],
                        row.loaded_at,
                        row.source,
                        if row.withdrawn { "  (rolled back)" } else { "" }
                    );
                }
            }
        }
        Command::Connectors(ConnectorsCommand::Rollback { name }) => {
            let (withdrawn, serving) = app.registry.rollback(&name)?;
            println!(
                "{name} {withdrawn} is withdrawn; instances following the newest version now use {serving}"
            );
        }
        Command::Connectors(ConnectorsCommand::Restore { name, version }) => {
            app.registry.restore(&name, &version)?;
            println!("{name} {version} is back in service");
        }
        Command::Connectors(ConnectorsCommand::Inspect { target, json }) => {
            let loaded = app.registry.resolve(&target, None)?;
            print_manifest(
                loaded.connector.manifest(),
                loaded.connector.content_hash(),
                json,
            )?;
        }
        Command::Activate {
            connector,
            name,
            version,
            installation,
        } => {
            let row = instances.activate(
                &connector,
                &name,
                version.as_deref(),
                installation.as_deref(),
            )?;
            let loaded = instances.connector_of(&row)?;
            println!(
                "activated {} ({} {}); set its settings with `bss-host settings set {} KEY=VALUE...`",
                row.name, row.connector, loaded.version, row.name
            );
        }
        Command::Instances(command) => match command {
            InstancesCommand::List { json } => {
                let rows = instances.list()?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                } else {
                    for row in rows {
                        let state = if row.enabled { "enabled" } else { "disabled" };
                        println!(
                            "{:<24} {:<14} {:<9} {:<10} {}",
                            row.name,
                            row.connector,
                            state,
                            row.version_req.as_deref().unwrap_or("newest"),
                            row.installation
                        );
                    }
                }
            }
            InstancesCommand::Show { name, json } => {
                let view = instances.view(&name)?;
                if json {
                    println!("{}", json_pretty(&view)?);
                } else {
                    let row = &view.instance;
                    let state = if view.missing_settings.is_empty() {
                        view.state.to_string()
                    } else {
                        format!("{}: {}", view.state, view.missing_settings.join(", "))
                    };
                    println!(
                        "{}\n  connector     {} {} (requirement {})\n  installation  {}\n  state         {}\n  created       {}",
                        row.name,
                        row.connector,
                        view.version,
                        row.version_req.as_deref().unwrap_or("newest"),
                        row.installation,
                        state,
                        row.created_at
                    );
                    match view.last_check {
                        Some(c) => println!(
                            "  last check    {} at {}: {}",
                            if c.ok { "ok" } else { "FAILED" },
                            c.checked_at,
                            printable(&c.summary)
                        ),
                        None => println!("  last check    never"),
                    }
                }
            }
            InstancesCommand::Disable { name } => {
                instances.set_enabled(&name, false)?;
                println!("{name} is disabled: it keeps its settings and refuses syncs");
            }
            InstancesCommand::Enable { name } => {
                instances.set_enabled(&name, true)?;
                println!("{name} is enabled");
            }
            InstancesCommand::Delete { name, yes } => {
                instances.get(&name)?;
                if !yes {
                    bail!(
                        "deleting {name} removes its settings, lookups and id map for good; run again with --yes to confirm"
                    );
                }
                instances.delete(&name)?;
                println!("{name} is deleted");
            }
        },
        Command::Check { name } => {
            let outcome = instances.check(&name).await?;
            print_check(&outcome);
            if !outcome.ok {
                bail!("the check of {name} failed");
            }
        }
        Command::Settings(SettingsCommand::Set { name, pairs }) => {
            let pairs = pairs
                .iter()
                .map(|p| parse_pair(p))
                .collect::<Result<Vec<_>, _>>()?;
            let complete = instances.set_settings(&name, &pairs)?;
            println!("saved {} setting(s) of {name}", pairs.len());
            if complete {
                let outcome = instances.check(&name).await?;
                print_check(&outcome);
                if !outcome.ok {
                    bail!(
                        "the settings of {name} are saved, but the check against the remote failed (see above); correct them with `bss-host settings set` and the check runs again"
                    );
                }
            } else {
                println!(
                    "settings are not complete yet; the check runs once every required setting has a value"
                );
            }
        }
        Command::Settings(SettingsCommand::Show { name, json }) => {
            let views = instances.show_settings(&name)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&views)?);
            } else {
                for v in views {
                    let required = if v.required { "*" } else { " " };
                    println!(
                        "{required} {:<28} {:<8} {:<8} {}",
                        v.key,
                        v.kind,
                        v.origin,
                        v.value.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        Command::Lookups(LookupsCommand::Choices { name, lookup }) => {
            for (value, label) in instances.lookup_choices(&name, &lookup).await? {
                println!("{:<12} {}", printable(&value), printable(&label));
            }
        }
        Command::Lookups(LookupsCommand::Set {
            name,
            lookup,
            pairs,
            pull_default,
        }) => {
            let pairs = pairs
                .iter()
                .map(|p| parse_pair(p))
                .collect::<Result<Vec<_>, _>>()?;
            instances
                .set_lookups(&name, &lookup, &pairs, pull_default.as_deref())
                .await?;
            println!("saved {} mapping(s) of {lookup} for {name}", pairs.len());
        }
        Command::Lookups(LookupsCommand::Show { name, json }) => {
            let tables = instances.lookups(&name)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tables)?);
            } else {
                for (lookup, rows) in tables {
                    println!("{lookup}:");
                    for row in rows {
                        println!(
                            "  {:<24} -> {}{}",
                            row.bss_value,
                            row.remote_value,
                            if row.pull_default {
                                "  (pull default)"
                            } else {
                                ""
                            }
                        );
                    }
                }
            }
        }
        Command::SyncOptions(SyncOptionsCommand::Set { name, options }) => {
            let specs = options
                .iter()
                .map(|o| parse_sync_option(o))
                .collect::<Result<Vec<_>, _>>()?;
            instances.set_sync_options(&name, &specs)?;
            println!("saved {} sync option(s) of {name}", specs.len());
        }
        Command::SyncOptions(SyncOptionsCommand::Show { name, json }) => {
            let options = instances.sync_options(&name)?;
            if json {
                let rows: Vec<_> = options.iter().map(|(e, d, o)| serde_json::json!({ "entity": e, "direction": d, "operations": o })).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for (entity, direction, ops) in options {
                    let names: Vec<&str> = [
                        ("create", ops.create),
                        ("update", ops.update),
                        ("delete", ops.delete),
                    ]
                    .into_iter()
                    .filter_map(|(n, on)| on.then_some(n))
                    .collect();
                    println!(
                        "{:<14} {:<5} {}",
                        format!("{entity:?}").to_lowercase(),
                        format!("{direction:?}").to_lowercase(),
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    );
                }
            }
        }
        Command::Push {
            name,
            entity,
            file,
            dry_run,
            json,
            no_wait,
        } => {
            let entity = parse_entity(&entity)?;
            let input = std::fs::File::open(&file)
                .with_context(|| format!("could not read {}", file.display()))?;
            let show_progress = !json && std::io::stderr().is_terminal();
            let progress = |done: usize, _: usize| eprint!("\rpushed {done}");
            let outcome = push_reader(
                instances,
                &name,
                entity,
                std::io::BufReader::new(input),
                dry_run,
                show_progress.then_some(&progress as _),
                by(no_wait),
            )
            .await?;
            if show_progress {
                eprintln!();
            }
            if json {
                println!("{}", json_pretty(&outcome)?);
            } else {
                print_push(&outcome.report, false)?;
                for (entity, run) in &outcome.settled {
                    println!(
                        "queued {} records whose reference now exists:",
                        entity.name()
                    );
                    print_push(run, false)?;
                }
                if let Some(error) = &outcome.settle_error {
                    println!(
                        "the records queued for what this push created were not sent (they stay queued): {}",
                        printable(error)
                    );
                }
            }
            if !outcome.all_succeeded() {
                return Err(SomeRecordsFailed(format!(
                    "run {}: {} record(s) failed or were invalid, {} wait in the retry queue",
                    outcome.report.run, outcome.report.failed, outcome.report.queued
                ))
                .into());
            }
        }
        Command::Pull {
            name,
            entity,
            no_wait,
            since,
            out,
            include_echoes,
        } => {
            let entity = parse_entity(&entity)?;
            let from = PullFrom {
                since,
                include_echoes,
            };
            let report = match &out {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .with_context(|| format!("could not create {}", path.display()))?;
                    let mut writer = std::io::BufWriter::new(file);
                    let report =
                        pull_to(instances, &name, entity, from, &mut writer, by(no_wait)).await?;
                    writer
                        .into_inner()
                        .map_err(|e| e.into_error())?
                        .sync_all()?;
                    report
                }
                None => {
                    pull_to(
                        instances,
                        &name,
                        entity,
                        from,
                        &mut std::io::stdout(),
                        by(no_wait),
                    )
                    .await?
                }
            };
            eprintln!(
                "pulled {} {} record(s) in {} page(s) ({} already delivered, folded; {} echoes of this instance's own pushes, not returned); cursor {}; run {}",
                report.delivered,
                entity.name(),
                report.pages,
                report.folded,
                report.echoes,
                printable(report.cursor.as_deref().unwrap_or("none")),
                report.run
            );
            for refusal in &report.refusals {
                eprintln!(
                    "  refused {}: {}",
                    printable(&refusal.id),
                    printable(refusal.message.as_deref().unwrap_or(""))
                );
            }
            if let Some(reason) = &report.stopped {
                eprintln!("  {reason}");
            }
            if !report.complete() {
                return Err(SomeRecordsFailed(format!(
                    "run {}: {} record(s) refused{}",
                    report.run,
                    report.refused,
                    if report.stopped.is_some() {
                        ", and the run stopped at a cap before the last page"
                    } else {
                        ""
                    }
                ))
                .into());
            }
        }
        Command::Retry {
            name,
            json,
            no_wait,
        } => {
            let report = retry(instances, &name, by(no_wait)).await?;
            if json {
                println!("{}", json_pretty(&report)?);
            } else {
                println!("retried {} queued record(s) of {name}", report.claimed);
                for (entity, run) in &report.runs {
                    println!("{}:", entity.name());
                    print_push(run, false)?;
                }
                for entity in &report.busy {
                    println!(
                        "{}: left queued, another run of it is going on",
                        entity.name()
                    );
                }
            }
            if !report.all_succeeded() {
                return Err(SomeRecordsFailed(
                    "some queued records failed again or were left queued".into(),
                )
                .into());
            }
        }
        Command::Link {
            name,
            entity,
            bss_id,
            remote_id,
            file,
        } => {
            let entity = parse_entity(&entity)?;
            let text = match &file {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .with_context(|| format!("could not read {}", path.display()))?,
                ),
                None => None,
            };
            let said = crate::sync::service::link(
                instances,
                &name,
                entity,
                &bss_id,
                &remote_id,
                text.as_deref(),
                by(false),
            )
            .await?;
            println!("{}", printable(&said));
        }
        Command::Runs(RunsCommand::List { name, json }) => {
            let runs = app.store.runs(&name)?;
            if json {
                println!("{}", json_pretty(&runs)?);
            } else {
                for r in runs {
                    println!(
                        "{:>5} {:<6} {:<13} {:<11} {} created {} updated {} unchanged {} reconciled {} skipped {} held {} failed {} queued {} pulled {}{}",
                        r.id,
                        r.kind,
                        r.entity.map(|e| e.name()).unwrap_or("-"),
                        r.status,
                        r.started_at,
                        r.created,
                        r.updated,
                        r.unchanged,
                        r.reconciled,
                        r.skipped,
                        r.held,
                        r.failed,
                        r.queued,
                        r.pulled,
                        if r.dry_run { " (dry run)" } else { "" }
                    );
                }
            }
        }
        Command::Runs(RunsCommand::Show { run, json }) => {
            let (row, items) = app.store.run(run)?.with_context(|| {
                format!("there is no run {run}; `bss-host runs list NAME` lists them")
            })?;
            if json {
                println!(
                    "{}",
                    json_pretty(&serde_json::json!({ "run": row, "items": items }))?
                );
            } else {
                println!(
                    "run {} of {}: {} {} {}{}",
                    row.id,
                    row.instance,
                    row.kind,
                    row.entity.map(|e| e.name()).unwrap_or("-"),
                    row.status,
                    row.message
                        .map(|m| format!(" ({})", printable(&m)))
                        .unwrap_or_default()
                );
                println!(
                    "created {} updated {} unchanged {} reconciled {} skipped {} held {} failed {} queued {} pulled {}",
                    row.created,
                    row.updated,
                    row.unchanged,
                    row.reconciled,
                    row.skipped,
                    row.held,
                    row.failed,
                    row.queued,
                    row.pulled
                );
                for item in items {
                    println!(
                        "  {:<24} {:<12} {:<14} {}",
                        printable(&item.bss_id),
                        item.outcome,
                        printable(&item.remote_id.unwrap_or_default()),
                        printable(&item.message.unwrap_or_default())
                    );
                }
            }
        }
        Command::Runs(RunsCommand::Queue { name, json }) => {
            let queue = app.store.queue(&name)?;
            if json {
                println!("{}", json_pretty(&queue)?);
            } else {
                for item in queue {
                    println!(
                        "{:<13} {:<24} tries {} since {}: {}",
                        item.entity.name(),
                        printable(&item.bss_id),
                        item.attempts,
                        item.queued_at,
                        printable(&item.error)
                    );
                }
            }
        }
        Command::Demo => unreachable!("demo runs before the data folder opens"),
        Command::Serve { listen } => crate::serve::serve(app, listen).await?,
    }
    Ok(())
}

fn print_check(outcome: &CheckOutcome) {
    println!(
        "check {}: {}",
        if outcome.ok { "ok" } else { "FAILED" },
        printable(&outcome.summary)
    );
    for (key, problem) in &outcome.problems {
        println!("  {}: {}", printable(key), printable(problem));
    }
}

async fn inspect_file(data: &Path, file: &Path, json: bool) -> anyhow::Result<()> {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(data.join("cache")),
        ..RuntimeConfig::default()
    })
    .context("could not start the component runtime")?;
    let connector = runtime.load_file(file).await?;
    print_manifest(connector.manifest(), connector.content_hash(), json)
}

fn print_manifest(manifest: &Manifest, hash: &str, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(manifest)?);
    } else {
        print!("{}", describe(manifest, hash));
    }
    Ok(())
}

/// A manifest as an admin reads it.
pub fn describe(manifest: &Manifest, content_hash: &str) -> String {
    let mut out = format!(
        "{} {}\n{}\nsha256 {content_hash}\n",
        manifest.name, manifest.version, manifest.description
    );
    if let Some(link) = &manifest.documentation_url {
        out.push_str(&format!("documentation {link}\n"));
    }
    out.push_str("\nserver variables:\n");
    for v in &manifest.server_variables {
        let kind = match v.kind {
            VariableKind::Text => "text",
            VariableKind::Secret => "secret",
            VariableKind::Url => "url",
            VariableKind::Integer => "integer",
            VariableKind::Choice => "choice",
        };
        let required = if v.required { "required" } else { "optional" };
        out.push_str(&format!(
            "  {:<28} {kind:<8} {required:<9} {} — {}\n",
            v.key, v.label, v.purpose
        ));
        if let Some(default) = &v.default_value {
            out.push_str(&format!("  {:<28} default {default}\n", ""));
        }
    }
    out.push_str("\nsync options:\n");
    for o in &manifest.sync_options {
        let ops: Vec<&str> = [
            ("create", o.operations.create),
            ("update", o.operations.update),
            ("delete", o.operations.delete),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
        out.push_str(
            &format!("  {:?} {:?}: {}\n", o.entity, o.direction, ops.join(", ")).to_lowercase(),
        );
    }
    out.push_str("\nlookups:\n");
    for l in &manifest.lookups {
        out.push_str(&format!(
            "  {:<28} {} ({} -> {})\n",
            l.key, l.label, l.bss_field, l.remote_field
        ));
    }
    let scheme = match &manifest.auth.scheme {
        AuthScheme::None => "none".to_string(),
        AuthScheme::Basic { username, password } => format!("basic {username} / {password}"),
        AuthScheme::Bearer { token } => format!("bearer {token}"),
    };
    out.push_str(&format!(
        "\nauthentication: {scheme}, sent only to the host in {:?}\n",
        manifest.remote_host_variable
    ));
    for (name, template) in &manifest.auth.headers {
        out.push_str(&format!("  header {name}: {template}\n"));
    }
    out
}
