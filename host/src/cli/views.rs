//! How the command line prints what it did: reports, checks, manifests.

use super::*;

pub(super) fn print_push(report: &PushReport, json: bool) -> anyhow::Result<()> {
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

pub(super) fn print_check(outcome: &CheckOutcome) {
    println!(
        "check {}: {}",
        if outcome.ok { "ok" } else { "FAILED" },
        printable(&outcome.summary)
    );
    for (key, problem) in &outcome.problems {
        println!("  {}: {}", printable(key), printable(problem));
    }
}

pub(super) async fn inspect_file(data: &Path, file: &Path, json: bool) -> anyhow::Result<()> {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(data.join("cache")),
        ..RuntimeConfig::default()
    })
    .context("could not start the component runtime")?;
    let connector = runtime.load_file(file).await?;
    print_manifest(connector.manifest(), connector.content_hash(), json)
}

pub(super) fn print_manifest(manifest: &Manifest, hash: &str, json: bool) -> anyhow::Result<()> {
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
    match manifest.reach() {
        Ok(reach) => out.push_str(&format!("reaches {reach}\n")),
        Err(problems) => out.push_str(&format!("reaches (invalid) {}\n", problems.join("; "))),
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
