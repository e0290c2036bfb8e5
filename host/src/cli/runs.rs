//! The commands that sync and show what syncing did: push, pull, retry, link and runs. Each run
//! takes its instance and entity's lease; without `--no-wait` it waits for a holder and says who.

use super::views::*;
use super::*;
use crate::sync::history;

pub(super) async fn run(app: &App, command: Command) -> anyhow::Result<()> {
    let instances = &app.instances;
    let owner = new_owner("cli");
    let who = format!("bss-host (pid {})", std::process::id());
    let by = |no_wait: bool| command_run_by(&owner, &who, no_wait);
    match command {
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
                        entity.as_str()
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
            feed,
        } => {
            let entity = parse_entity(&entity)?;
            let from = PullFrom {
                since,
                include_echoes,
                feed,
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
                entity.as_str(),
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
                    println!("{}:", entity.as_str());
                    print_push(run, false)?;
                }
                for entity in &report.busy {
                    println!(
                        "{}: left queued, another run of it is going on",
                        entity.as_str()
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
            let runs = history::runs(&app.instances, &name)?;
            if json {
                println!("{}", json_pretty(&runs)?);
            } else {
                for r in runs {
                    println!(
                        "{:>5} {:<6} {:<9} {:<13} {:<11} {} created {} updated {} unchanged {} reconciled {} skipped {} held {} failed {} queued {} pulled {}{}",
                        r.id,
                        r.kind,
                        r.trigger,
                        r.entity.map(|e| e.as_str()).unwrap_or("-"),
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
            let (row, items) = history::run(&app.instances, run)?.with_context(|| {
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
                    row.entity.map(|e| e.as_str()).unwrap_or("-"),
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
            let queue = history::queue(&app.instances, &name)?;
            if json {
                println!("{}", json_pretty(&queue)?);
            } else {
                for item in queue {
                    println!(
                        "{:<13} {:<24} tries {} since {}: {}",
                        item.entity.as_str(),
                        printable(&item.bss_id),
                        item.attempts,
                        item.queued_at,
                        printable(&item.error)
                    );
                }
            }
        }
        _ => unreachable!("cli::run sends setup commands to setup.rs"),
    }
    Ok(())
}
