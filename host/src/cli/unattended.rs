//! The commands of the unattended host: schedules (set, list, remove, run what is due), the
//! change feed (show, acknowledge), the remote's callbacks (subscribe, unsubscribe, show),
//! deletions (reconcile, remove), and the API's tokens (create, list, revoke).

use super::*;
use crate::scheduler::{schedules, sink};
use crate::sync::history;

pub async fn run(app: &App, command: Command) -> anyhow::Result<()> {
    let instances = &app.instances;
    let owner = new_owner("cli");
    let who = format!("bss-host (pid {})", std::process::id());
    let by = |no_wait: bool| command_run_by(&owner, &who, no_wait);
    match command {
        Command::Tokens(TokensCommand::Create { name, role }) => {
            let role: crate::store::token_store::Role = role
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--role: {e}"))?;
            let token = crate::api::tokens::create(app.store.as_ref(), &name, role)?;
            eprintln!("token {name} ({role}), shown this once; only its hash is kept:");
            println!("{token}");
        }
        Command::Tokens(TokensCommand::List { json }) => {
            let tokens = app.store.tokens()?;
            if json {
                println!("{}", json_pretty(&tokens)?);
            } else if tokens.is_empty() {
                println!("no tokens; the first `bss-host serve` makes an admin token");
            } else {
                for t in &tokens {
                    println!(
                        "{:<24} {:<9} made {}{}",
                        t.name,
                        t.role.as_str(),
                        t.created_at,
                        t.revoked_at
                            .as_deref()
                            .map(|at| format!(", revoked {at}"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        Command::Workers(WorkersCommand::List { json }) => {
            let alive = crate::fleet::job_lease_secs();
            let workers = app.store.workers(alive, crate::fleet::LISTED_WITHIN_SECS)?;
            if json {
                println!("{}", json_pretty(&workers)?);
            } else if workers.is_empty() {
                println!("no worker in the last day; `bss-host serve` is one");
            } else {
                println!(
                    "{:<40} {:<8} {:>4} {:>14}  STARTED",
                    "WORKER", "STATE", "JOBS", "HEARTBEAT"
                );
                for w in &workers {
                    let state = match (w.alive, w.stopped) {
                        (true, _) => "alive",
                        (false, true) => "stopped",
                        (false, false) => "silent",
                    };
                    println!(
                        "{:<40} {:<8} {:>4} {:>12} s  {} (pid {} on {}, {})",
                        w.id,
                        state,
                        w.jobs_held,
                        format!("{:.1}", w.heartbeat_ago_ms as f64 / 1000.0),
                        w.started_at,
                        w.pid,
                        w.host,
                        w.version
                    );
                }
            }
        }
        Command::Tokens(TokensCommand::Revoke { name }) => {
            crate::api::tokens::revoke(app.store.as_ref(), &name)?;
            println!("token {name} is revoked: it is refused from now on");
        }
        Command::Callbacks(CallbacksCommand::Subscribe {
            name,
            public_url,
            entities,
        }) => {
            let entities = entities
                .map(|list| {
                    list.iter()
                        .map(|e| parse_entity(e))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?;
            let view = instances
                .subscribe_callbacks(&name, &public_url, entities)
                .await?;
            println!("{name} is subscribed; the remote calls back {}", view.url);
            print_registrations(&view.registrations);
            let left: Vec<&str> = view
                .entities
                .iter()
                .filter(|e| !view.registrations.iter().any(|r| r.entity == **e))
                .map(|e| e.as_str())
                .collect();
            if !left.is_empty() {
                println!(
                    "  no callbacks for {} (the remote has none); schedule pulls for them",
                    left.join(", ")
                );
            }
        }
        Command::Callbacks(CallbacksCommand::Unsubscribe { name }) => {
            instances.unsubscribe_callbacks(&name, true).await?;
            println!("{name} is unsubscribed; its hook is gone");
        }
        Command::Callbacks(CallbacksCommand::Show { name, json }) => {
            let Some(view) = instances.hook_view(&name)? else {
                bail!(
                    "{name} is not subscribed to callbacks; `bss-host callbacks subscribe {name} --public-url URL` subscribes it"
                );
            };
            let events = instances.store().events(&name, 20)?;
            if json {
                println!(
                    "{}",
                    json_pretty(&serde_json::json!({ "hook": view, "events": events }))?
                );
                return Ok(());
            }
            println!("hook          {}", view.url);
            println!(
                "state         {}{}",
                if view.active {
                    "subscribed"
                } else {
                    "not subscribed"
                },
                view.last_error
                    .as_deref()
                    .map(|e| format!(" ({})", printable(e)))
                    .unwrap_or_default()
            );
            print_registrations(&view.registrations);
            println!(
                "events        {} pending, {} failed",
                view.events.pending, view.events.failed
            );
            for e in &events {
                println!(
                    "  #{:<6} {:<8} {:<10} {:<12} {:<8} {}",
                    e.seq,
                    e.action.as_str(),
                    e.entity.as_str(),
                    printable(&e.remote_id),
                    e.state,
                    printable(e.outcome.as_deref().unwrap_or(""))
                );
            }
        }
        Command::Reconcile {
            name,
            entity,
            json,
            no_wait,
        } => {
            let entity = parse_entity(&entity)?;
            let report =
                crate::sync::service::reconcile(instances, &name, entity, by(no_wait)).await?;
            if json {
                println!("{}", json_pretty(&report)?);
            } else {
                println!(
                    "run {}: {} listed, {} linked, {} deleted remotely ({} new in the feed), {} not listed but still there",
                    report.run,
                    report.listed,
                    report.linked,
                    report.deleted,
                    report.fed,
                    report.still_there
                );
            }
            if let Some(reason) = report.stopped {
                return Err(SomeRecordsFailed(reason).into());
            }
        }
        Command::Remove {
            name,
            entity,
            bss_ids,
            dry_run,
            json,
            no_wait,
        } => {
            let entity = parse_entity(&entity)?;
            let report = crate::sync::service::remove(
                instances,
                &name,
                entity,
                &bss_ids,
                dry_run,
                by(no_wait),
            )
            .await?;
            if json {
                println!("{}", json_pretty(&report)?);
            } else {
                for item in &report.items {
                    println!(
                        "{:<24} {:<13} {}{}",
                        printable(&item.id),
                        item.outcome,
                        item.remote_id
                            .as_deref()
                            .map(|r| format!("remote {}", printable(r)))
                            .unwrap_or_default(),
                        item.message
                            .as_deref()
                            .map(|m| format!(" ({})", printable(m)))
                            .unwrap_or_default()
                    );
                }
                if dry_run {
                    println!("dry run: nothing was changed remotely");
                }
            }
            if !report.all_succeeded() {
                return Err(SomeRecordsFailed(format!(
                    "{} removal(s) failed (run {}); the others are done",
                    report.failed, report.run
                ))
                .into());
            }
        }
        Command::Schedules(SchedulesCommand::Set {
            name,
            target,
            cadence,
        }) => {
            let view = schedules::set(instances, &name, &target, &cadence.join(" "))?;
            println!(
                "{} {} {}: next run {}",
                view.instance, view.target, view.cadence, view.next_run
            );
        }
        Command::Schedules(SchedulesCommand::List { name, json }) => {
            let views = schedules::list(instances, name.as_deref())?;
            if json {
                println!("{}", json_pretty(&views)?);
            } else {
                for v in views {
                    println!(
                        "{:<16} {:<20} {:<14} {:<8} next {} last {} {}{}{}",
                        v.instance,
                        v.target,
                        v.cadence,
                        v.state,
                        v.next_run,
                        v.last_started.as_deref().unwrap_or("-"),
                        printable(v.last_outcome.as_deref().unwrap_or("")),
                        v.last_millis
                            .map(|ms| format!(" ({ms} ms)"))
                            .unwrap_or_default(),
                        v.blocked
                            .map(|b| format!(" blocked: {}", printable(&b)))
                            .unwrap_or_default()
                    );
                }
            }
        }
        Command::Schedules(SchedulesCommand::Remove { name, target }) => {
            schedules::remove(instances, &name, &target)?;
            println!("removed {name} {target}");
        }
        Command::Schedules(SchedulesCommand::RunDue { json }) => {
            let runs = schedules::run_due(instances).await?;
            if json {
                println!("{}", json_pretty(&runs)?);
            } else {
                for run in &runs {
                    println!(
                        "{} {}: {}",
                        run.instance,
                        run.target,
                        printable(&run.outcome)
                    );
                }
            }
            let failed = runs.iter().filter(|r| !r.ok).count();
            if failed > 0 {
                return Err(SomeRecordsFailed(format!(
                    "{failed} of {} scheduled run(s) did not succeed",
                    runs.len()
                ))
                .into());
            }
        }
        Command::Feed(FeedCommand::Show { name, after, limit }) => {
            let (lines, _) = history::feed(instances, &name, after, limit)?;
            for line in lines {
                println!("{}", serde_json::to_string(&line)?);
            }
        }
        Command::Feed(FeedCommand::Ack { name, upto }) => {
            let state = history::ack_feed(instances, &name, upto)?;
            println!(
                "{name}: acknowledged up to {}; {} entr{} after it",
                state.acknowledged,
                state.backlog,
                if state.backlog == 1 { "y" } else { "ies" }
            );
        }
        Command::Feed(FeedCommand::SinkSet {
            name,
            url,
            secret_env,
        }) => {
            let secret = std::env::var(&secret_env).with_context(|| {
                format!("set the sink's signing secret in the environment variable {secret_env}")
            })?;
            sink::set(instances, &name, &url, &secret)?;
            println!("{name}: the feed goes to {url} (from `serve`)");
        }
        Command::Feed(FeedCommand::SinkRemove { name }) => {
            sink::remove(instances, &name)?;
            println!("{name}: the feed is no longer posted");
        }
        Command::Feed(FeedCommand::Sinks { json }) => {
            let sinks = sink::list(instances)?;
            if json {
                println!("{}", json_pretty(&sinks)?);
            } else {
                for s in sinks {
                    println!(
                        "{:<16} {} delivered up to {} failures {}{}{}",
                        s.instance,
                        printable(&s.url),
                        s.delivered,
                        s.attempts,
                        s.next_try
                            .map(|t| format!(" next try {t}"))
                            .unwrap_or_default(),
                        s.last_error
                            .map(|e| format!(" last error: {}", printable(&e)))
                            .unwrap_or_default()
                    );
                }
            }
        }
        _ => unreachable!("cli::run sends only schedules and feed commands here"),
    }
    Ok(())
}

/// The remote's callback registrations of a hook, a line each.
fn print_registrations(registrations: &[crate::store::hook_store::Registration]) {
    for r in registrations {
        println!(
            "  {:<12} remote type {:<10} registration {}",
            r.entity.as_str(),
            printable(&r.remote_type),
            printable(&r.remote_id)
        );
    }
}
