//! The commands that set connectors and instances up: connectors, activate, instances, check,
//! settings, lookups and sync options.

use super::views::*;
use super::*;

pub(super) async fn run(app: &App, command: Command) -> anyhow::Result<()> {
    let instances = &app.instances;
    match command {
        Command::Connectors(ConnectorsCommand::List { json }) => {
            let rows = app.registry.listing()?;
            if json {
                let refused = app.registry.refusals();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "loaded": rows,
                        "refused": refused,
                        "allow-unsigned": app.registry.allows_unsigned(),
                    }))?
                );
            } else {
                if app.registry.allows_unsigned() {
                    println!(
                        "unsigned connectors are allowed (--allow-unsigned); they are marked below"
                    );
                }
                for row in rows {
                    println!(
                        "{:<20} {:<10} {:<24} {}  {}  {}  signed by {}{}",
                        row.name,
                        row.version,
                        row.wit,
                        &row.sha256[..12],
                        row.loaded_at,
                        row.source,
                        row.signed_by,
                        if row.withdrawn { "  (rolled back)" } else { "" }
                    );
                }
            }
        }
        Command::Connectors(ConnectorsCommand::Rollback { name }) => {
            let (withdrawn, serving) = app
                .registry
                .rollback(&name, &crate::store::trust_store::cli_actor())?;
            println!(
                "{name} {withdrawn} is withdrawn; instances following the newest version now use {serving}"
            );
        }
        Command::Connectors(ConnectorsCommand::Restore { name, version }) => {
            app.registry
                .restore(&name, &version, &crate::store::trust_store::cli_actor())?;
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
                let warning = instances.disable(&name).await?;
                println!("{name} is disabled: it keeps its settings and refuses syncs");
                if let Some(warning) = warning {
                    eprintln!("warning: {warning}");
                }
            }
            InstancesCommand::Enable { name } => {
                let warning = instances.enable(&name).await?;
                println!("{name} is enabled");
                if let Some(warning) = warning {
                    eprintln!("warning: {warning}");
                }
            }
            InstancesCommand::Delete { name, yes } => {
                instances.get(&name)?;
                if !yes {
                    bail!(
                        "deleting {name} removes its settings, lookups and id map for good; run again with --yes to confirm"
                    );
                }
                let warning = instances.delete_unsubscribed(&name).await?;
                println!("{name} is deleted");
                if let Some(warning) = warning {
                    eprintln!("warning: {warning}");
                }
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
            let complete =
                instances.set_settings(&name, &pairs, &crate::store::trust_store::cli_actor())?;
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
        _ => unreachable!("cli::run sends sync commands to runs.rs"),
    }
    Ok(())
}

/// `migrate-store`: the SQLite store of `from` copied into the empty PostgreSQL database `to`.
pub(super) fn migrate_store(from: &Path, to: &str) -> anyhow::Result<()> {
    use crate::store::location::StoreLocation;
    let file = if from.is_dir() {
        from.join("bss.db")
    } else {
        from.to_path_buf()
    };
    if !file.is_file() {
        bail!(
            "--from {}: there is no SQLite store there (looked for {}); name the data folder that holds bss.db",
            from.display(),
            file.display()
        );
    }
    let target = match StoreLocation::parse(Some(to), from).map_err(anyhow::Error::msg)? {
        StoreLocation::Postgres(url) => url,
        StoreLocation::SqliteFile(_) => bail!("--to must name a PostgreSQL database"),
    };
    let shown = crate::store::postgres::redact(&target);
    let store = crate::store::postgres::PgStore::open(&target)?;
    let copied = store
        .copy_from_sqlite(&file)
        .with_context(|| format!("copying {} into {shown}", file.display()))?;
    println!("{:<24} {:>10}", "TABLE", "ROWS");
    for table in &copied {
        println!("{:<24} {:>10}", table.table, table.rows);
    }
    let total: usize = copied.iter().map(|t| t.rows).sum();
    println!(
        "\nCopied {total} rows from {} into {shown}, read back and compared: identical.",
        file.display()
    );
    let key = if from.is_dir() {
        from.join("key").display().to_string()
    } else {
        "the data folder's key file".to_string()
    };
    println!(
        "Secrets stay sealed: every worker on {shown} needs the key {key} (or {}). Start the workers with --database {shown}; the SQLite file is left as it was and must not be used beside it.",
        crate::store::secrets::KEY_VARIABLE
    );
    Ok(())
}
