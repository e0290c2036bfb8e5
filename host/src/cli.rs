//! The `bss-host` command line. Subcommands work directly on the data folder; this first cut
//! inspects connector components, and grows with the instance and sync parts.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::runtime::manifest::{AuthScheme, Manifest, VariableKind};
use crate::runtime::{Runtime, RuntimeConfig};

#[derive(Debug, Parser)]
#[command(
    name = "bss-host",
    version,
    about = "Runs sandboxed BSS connectors and keeps the BSS and outside systems in sync"
)]
pub struct Cli {
    /// Data folder: database, key file and compiled-code cache.
    #[arg(long, global = true, env = "BSS_HOST_DATA", default_value = "bss-data")]
    pub data: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connector components.
    #[command(subcommand)]
    Connectors(ConnectorsCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConnectorsCommand {
    /// Loads a connector component (without installing it) and prints its manifest.
    Inspect {
        /// The connector's `.wasm` file.
        file: PathBuf,
        /// Print the manifest as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Connectors(ConnectorsCommand::Inspect { file, json }) => {
            inspect(&cli.data, &file, json).await
        }
    }
}

async fn inspect(data: &Path, file: &Path, json: bool) -> anyhow::Result<()> {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(data.join("cache")),
        ..RuntimeConfig::default()
    })
    .context("could not start the component runtime")?;
    let connector = runtime.load_file(file).await?;
    let manifest = connector.manifest();
    if json {
        println!("{}", serde_json::to_string_pretty(manifest)?);
    } else {
        print!("{}", describe(manifest, connector.content_hash()));
    }
    Ok(())
}

/// A manifest as an admin reads it.
pub fn describe(manifest: &Manifest, content_hash: &str) -> String {
    let mut out = format!(
        "{} {}\n{}\nsha256 {content_hash}\n",
        manifest.name, manifest.version, manifest.description
    );
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
