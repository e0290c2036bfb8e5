//! The commands of the unattended host: schedules (set, list, remove, run what is due) and the
//! change feed (show, acknowledge).

use super::*;
use crate::scheduler::{schedules, sink};
use crate::sync::history;

pub async fn run(app: &App, command: Command) -> anyhow::Result<()> {
    let instances = &app.instances;
    match command {
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
