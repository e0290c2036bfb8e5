//! The trust list's commands (`trust add|list|remove`) and the audit log's (`audit`): thin over
//! the registry, which validates a key, records the change and appends it to the audit log.

use super::*;
use crate::store::trust_store::cli_actor;

pub fn run(app: &App, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Trust(TrustCommand::Add {
            name,
            public_key,
            connectors,
        }) => {
            let public_key = read_public_key(&public_key)?;
            let key = app
                .registry
                .trust_key(&name, &public_key, &connectors, &cli_actor())?;
            println!(
                "trusted {} (key {}) for connectors {}; files it signed load from the next load on (a running serve picks up new files as they are dropped)",
                key.name, key.key_id, key.connectors
            );
        }
        Command::Trust(TrustCommand::List { json }) => {
            let keys = app.store.trusted_keys()?;
            if json {
                println!(
                    "{}",
                    json_pretty(&serde_json::json!({
                        "allow-unsigned": app.registry.allows_unsigned(),
                        "bundled": crate::registry::trust::BUNDLED_NAMES,
                        "keys": keys,
                    }))?
                );
                return Ok(());
            }
            println!("{:<20} {:<16} {:<24} ADDED", "NAME", "KEY ID", "CONNECTORS");
            println!(
                "{:<20} {:<16} {:<24} built into this binary",
                "host",
                "-",
                crate::registry::trust::BUNDLED_NAMES.join(",")
            );
            for key in &keys {
                println!(
                    "{:<20} {:<16} {:<24} {} by {}\n{:<20} {}",
                    key.name,
                    key.key_id,
                    key.connectors,
                    key.added_at,
                    key.added_by,
                    "",
                    key.public_key
                );
            }
            if keys.is_empty() {
                println!(
                    "no other key is trusted: only the bundled connectors load (add one with `bss-host trust add NAME PUBLIC-KEY`)"
                );
            }
        }
        Command::Trust(TrustCommand::Remove { name }) => {
            let (key, signed) = app.registry.distrust_key(&name, &cli_actor())?;
            println!(
                "removed {} (key {}): files it signed are refused from the next load on",
                key.name, key.key_id
            );
            if !signed.is_empty() {
                println!(
                    "versions it signed that were loaded before keep serving in processes that loaded them (a running serve) until you roll them back (`bss-host connectors rollback NAME`) or the process restarts:"
                );
                for version in &signed {
                    println!(
                        "  {} {} from {}",
                        version.name, version.version, version.source
                    );
                }
            }
        }
        Command::Audit { after, limit, json } => {
            let entries = app.store.audit_entries(after, limit)?;
            if json {
                println!("{}", json_pretty(&entries)?);
            } else if entries.is_empty() {
                println!("no audit entries after {after}");
            } else {
                for e in &entries {
                    println!(
                        "{:>6} {} {:<22} {:<24} {}  {}",
                        e.id, e.at, e.action, e.actor, e.subject, e.detail
                    );
                }
            }
        }
        _ => unreachable!("only trust and audit commands come here"),
    }
    Ok(())
}

/// A public key given as `ed25519:…`, or as a file holding it (the first `ed25519:` word in it).
fn read_public_key(given: &str) -> anyhow::Result<String> {
    if given.trim().starts_with("ed25519:") {
        return Ok(given.trim().to_string());
    }
    let path = Path::new(given);
    if !path.is_file() {
        anyhow::bail!(
            "PUBLIC-KEY {given:?} is neither a public key (ed25519:BASE64, as `bss-host keys generate` prints it) nor a file holding one"
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read the public key file {}", path.display()))?;
    text.split_whitespace()
        .find(|word| word.starts_with("ed25519:"))
        .map(str::to_string)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{} holds no public key (a word starting ed25519:)",
                path.display()
            )
        })
}
