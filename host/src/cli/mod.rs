//! The `bss-host` command line. Subcommands work directly on the data folder (not through a
//! running `serve`), so each is the process that does the work. Errors name what was wrong and
//! where; nothing is half-written, since every change is one store transaction.
//!
//! This file holds the arguments and the dispatch; `setup.rs` the commands that set connectors
//! and instances up, `runs.rs` those that sync and show runs, `views.rs` how results are printed.

mod author;
mod runs;
mod setup;
mod trust;
mod unattended;
mod views;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

use crate::app::{App, Connectors};
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

/// Says who holds the lease a run waits for.
fn lease_notice(holder: &crate::store::LeaseHolder) {
    eprintln!(
        "waiting: {} holds this instance and entity since {} (lease {}); this run starts when it ends",
        holder.purpose, holder.acquired_at, holder.owner
    )
}

/// How a command's runs take their lease: waiting for a holder (and saying who) unless
/// `--no-wait`, when a held lease refuses the run.
fn command_run_by<'a>(owner: &'a str, who: &'a str, no_wait: bool) -> RunBy<'a> {
    RunBy {
        owner,
        who,
        trigger: crate::store::RunTrigger::Command,
        policy: if no_wait {
            WaitPolicy::Refuse
        } else {
            WaitPolicy::Wait(&lease_notice)
        },
    }
}

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
    /// The store: a PostgreSQL database shared by several workers
    /// (postgres://USER@HOST:PORT/DATABASE). Default: bss.db in the data folder, which holds the
    /// key file and compile cache either way.
    #[arg(long, global = true, env = "BSS_HOST_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
    /// Connectors folder (default: plugins/ in the data folder).
    #[arg(long, global = true, env = "BSS_HOST_PLUGINS")]
    pub plugins: Option<PathBuf>,
    /// Load unsigned connector files too (listed as unsigned; a warning at start). Signed files
    /// are still checked against the trust list. For development, not production.
    #[arg(
        long,
        global = true,
        env = "BSS_HOST_ALLOW_UNSIGNED",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub allow_unsigned: bool,
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
        /// Also append the records to the instance's change feed (`bss-host feed show`).
        #[arg(long)]
        feed: bool,
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
    /// A connector author's loop: starts the ConnectWise sandbox, installs FILE in a data folder
    /// of its own, activates instance `dev` with the sandbox's settings (private network
    /// allowed), checks it, and loads and checks each rebuild of FILE until Ctrl-C.
    Dev {
        file: PathBuf,
        /// The data folder to use (default .bss-dev in the current folder).
        #[arg(long, default_value = ".bss-dev")]
        dev_data: PathBuf,
        /// A further server variable or `host.` option, KEY=VALUE (again for more).
        #[arg(long = "set")]
        sets: Vec<String>,
        /// The sandbox's port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Stop after the first load and check instead of watching.
        #[arg(long)]
        once: bool,
    },
    /// Runs the admin API, the schedules and the retry of queues.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8480")]
        listen: std::net::SocketAddr,
        /// Acknowledged change-feed entries older than this many days are dropped.
        #[arg(long, default_value_t = crate::scheduler::FEED_RETENTION_DAYS)]
        feed_retention_days: i64,
        /// Marks the console's cookies Secure on every request: for a TLS proxy in front that
        /// does not send `X-Forwarded-Proto: https` (with it, they are Secure anyway).
        #[arg(long, env = "BSS_HOST_SECURE_COOKIES")]
        secure_cookies: bool,
        /// This process's id among the workers on one store (`workers list` shows them); default
        /// host, process id and a nonce. A restarted worker may keep its id.
        #[arg(long, env = "BSS_HOST_WORKER_ID")]
        worker_id: Option<String>,
        /// Seconds the running jobs get to end after SIGTERM or Ctrl-C before they are handed
        /// back to the fleet (no new requests or jobs are taken meanwhile).
        #[arg(long, env = "BSS_HOST_SHUTDOWN_GRACE_SECS", default_value_t = crate::serve::SHUTDOWN_GRACE.as_secs())]
        shutdown_grace: u64,
    },
    /// Schedules of pulls and retries per instance and entity (`serve` runs them).
    #[command(subcommand)]
    Schedules(SchedulesCommand),
    /// The `serve` workers on this store.
    #[command(subcommand)]
    Workers(WorkersCommand),
    /// Copies a data folder's SQLite store (instances, sealed secrets, id map, cursors, retry
    /// queue, runs, feed, tokens) into an empty PostgreSQL database, reads it back and compares
    /// before committing. Stop every process on the data folder first.
    MigrateStore {
        /// The data folder whose bss.db is copied (or the .db file itself).
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL database to copy into (postgres://USER@HOST:PORT/DATABASE); it must
        /// hold no instances, tokens or connector versions.
        #[arg(long)]
        to: String,
    },
    /// The change feed: pulled records in order, for the BSS to read and acknowledge.
    #[command(subcommand)]
    Feed(FeedCommand),
    /// The remote's callbacks to `serve`'s hook (contract 1.3 connectors).
    #[command(subcommand)]
    Callbacks(CallbacksCommand),
    /// The compiled-code cache in the data folder.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Signing keys for connectors.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The trust list: the keys whose signed connectors load, each for some connector names.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// The audit log: connector loads and refusals, trust and settings changes, rollbacks and
    /// restores, each with who did it.
    Audit {
        /// Only entries after this id (each line starts with its id).
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many entries.
        #[arg(long, default_value_t = 200)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Named API tokens with a role: viewer (reads), operator (also runs syncs), admin (also
    /// changes connectors, instances, settings and tokens).
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Reads every remote id of an entity and reports, in the change feed, the linked records
    /// deleted remotely (needs the pull sync option with delete).
    Reconcile {
        name: String,
        entity: String,
        #[arg(long)]
        json: bool,
        /// Refuse at once when another run of this instance and entity is going on.
        #[arg(long)]
        no_wait: bool,
    },
    /// Removes the remote records of BSS records the BSS deleted: deletes them, or deactivates
    /// them where the remote keeps such records (needs the push sync option with delete).
    Remove {
        name: String,
        entity: String,
        /// The BSS ids of the deleted records.
        #[arg(required = true, num_args = 1..)]
        bss_ids: Vec<String>,
        /// Say what would be removed; change nothing remote.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
        /// Refuse at once when another run of this instance and entity is going on.
        #[arg(long)]
        no_wait: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Makes an Ed25519 signing key: writes it to --out (mode 0600; refused when it exists) and
    /// prints its public key (`ed25519:…`) and key id.
    Generate {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Trusts a public key (`ed25519:…`, as `keys generate` prints it, or a file holding it)
    /// for the connectors it may sign.
    Add {
        /// Your name for the key (the vendor or team).
        name: String,
        public_key: String,
        /// Connector names it may sign: comma-separated, `*` for any run of characters
        /// (`acme-*`). A bundled connector's name is granted only when named exactly.
        #[arg(long, default_value = "*")]
        connectors: String,
    },
    /// Every trusted key, with the connectors it may sign.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stops trusting a key: files it signed are refused from the next load on (a running
    /// `serve` keeps the versions it loaded until they are rolled back or it restarts).
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Removes the compiled code of components no longer installed (neither bundled, nor in the
    /// plugins folder, nor, on a shared store, stored there) and of other host builds. `serve`
    /// and every command that loads all connectors do this by themselves.
    Prune {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkersCommand {
    /// Each worker: alive or not, jobs it holds, its last heartbeat.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Makes a token and prints it once (only its hash is kept).
    Create {
        name: String,
        /// viewer, operator or admin.
        #[arg(long)]
        role: String,
    },
    /// Every token: name, role, when made, whether revoked (never the token).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Ends a token's access; its name stays listed as revoked.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum CallbacksCommand {
    /// Subscribes an instance to the remote's callbacks, delivered to
    /// `PUBLIC-URL/hooks/NAME/TOKEN` (`serve` answers there); again to change the entities.
    Subscribe {
        name: String,
        /// The base URL the remote reaches `bss-host serve` at (https://bss.example.com).
        #[arg(long)]
        public_url: String,
        /// Entities to be called back for (comma-separated); every pulled entity by default.
        #[arg(long, value_delimiter = ',')]
        entities: Option<Vec<String>>,
    },
    /// Removes the remote's callbacks and forgets the hook.
    Unsubscribe { name: String },
    /// The hook (its URL with the token masked), the registrations, and recent events.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SchedulesCommand {
    /// Creates or replaces a schedule: `schedules set acme contact:pull every 5m`,
    /// `schedules set acme account:retry daily 02:00` (UTC).
    Set {
        name: String,
        /// ENTITY:JOB, the job `pull` (into the change feed), `retry` (the queued records) or
        /// `reconcile` (a full read that reports records deleted remotely; needs pull with delete).
        target: String,
        /// `every 30s|5m|2h|1d` or `daily HH:MM` (UTC).
        #[arg(required = true, num_args = 1..)]
        cadence: Vec<String>,
    },
    /// Schedules with their next and last run, outcome, duration, and why one is blocked.
    List {
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Removes a schedule.
    Remove { name: String, target: String },
    /// Runs every due schedule once and exits (what `serve` does each second; for cron).
    RunDue {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum FeedCommand {
    /// Entries after a sequence number, one JSON object per line.
    Show {
        name: String,
        /// Entries after this sequence number (default: after the acknowledged one).
        #[arg(long)]
        after: Option<i64>,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Acknowledges entries up to and including a sequence number.
    Ack { name: String, upto: i64 },
    /// Posts the instance's feed to a BSS webhook (`serve` delivers, signs with the secret as
    /// `x-bss-signature: sha256=HMAC`, retries with backoff, acknowledges what the sink accepted).
    SinkSet {
        name: String,
        url: String,
        /// The environment variable holding the signing secret (at least 16 characters), so it
        /// stays out of the shell history.
        #[arg(long, default_value = "BSS_FEED_SINK_SECRET")]
        secret_env: String,
    },
    /// Stops posting the instance's feed.
    SinkRemove { name: String },
    /// The sinks: what each has delivered, failures in a row, next try, last error.
    Sinks {
        #[arg(long)]
        json: bool,
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
    /// Signs a component with an Ed25519 key (`keys generate`), in place or into --out; an
    /// earlier signature is replaced. The signature travels inside the file.
    Sign {
        file: PathBuf,
        /// The signing key file.
        #[arg(long)]
        key: PathBuf,
        /// Write the signed component here instead of replacing FILE.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Writes a new connector project from a template: `connectors new acme-crm --lang python`.
    New {
        name: String,
        /// rust, python or javascript.
        #[arg(long)]
        lang: String,
        /// The folder to write (default ./NAME); must not exist or be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Says whether a `.wasm` file loads on this host: its imports against what the host grants
    /// (each refusal with its fix), the contract version it exports, its manifest, its size and
    /// compile time. Exits 1 when it would be refused.
    Check {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Calls one export of a `.wasm` file with settings from the command line, without an
    /// instance: `manifest`, `activate`, `lookup-choices KEY`, `pull ENTITY`, `fetch ENTITY ID`,
    /// `push ENTITY --records FILE`. Prints the answer as JSON; a contract error exits 1.
    Call {
        file: PathBuf,
        /// manifest, activate, lookup-choices, pull, fetch or push.
        export: String,
        /// The export's arguments: the lookup key, the entity, the remote id.
        arguments: Vec<String>,
        /// A server variable or `host.` option, KEY=VALUE (again for more).
        #[arg(long = "set")]
        sets: Vec<String>,
        /// A lookup table row, KEY:BSS=REMOTE (again for more).
        #[arg(long = "lookup")]
        lookups: Vec<String>,
        /// pull: changes since this remote time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// pull: the page token a previous page answered.
        #[arg(long)]
        page_token: Option<String>,
        /// push: the records (a JSON array or one object per line; `remote-id` makes an update).
        #[arg(long)]
        records: Option<PathBuf>,
        /// push: a dry run.
        #[arg(long)]
        dry_run: bool,
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

/// The export `connectors call` names, with its arguments checked.
fn author_export(
    export: &str,
    arguments: &[String],
    since: &Option<String>,
    page_token: &Option<String>,
    records: &Option<PathBuf>,
    dry_run: bool,
) -> anyhow::Result<author::Export> {
    let arity = |n: usize, usage: &str| -> anyhow::Result<()> {
        if arguments.len() == n {
            Ok(())
        } else {
            anyhow::bail!(
                "`connectors call FILE {usage}` (got {} argument(s) after {export})",
                arguments.len()
            )
        }
    };
    Ok(match export {
        "manifest" => {
            arity(0, "manifest")?;
            author::Export::Manifest
        }
        "activate" => {
            arity(0, "activate --set KEY=VALUE …")?;
            author::Export::Activate
        }
        "lookup-choices" => {
            arity(1, "lookup-choices KEY")?;
            author::Export::LookupChoices(arguments[0].clone())
        }
        "pull" => {
            arity(1, "pull ENTITY [--since TIME] [--page-token TOKEN]")?;
            author::Export::Pull {
                entity: arguments[0].clone(),
                since: since.clone(),
                page_token: page_token.clone(),
            }
        }
        "fetch" => {
            arity(2, "fetch ENTITY REMOTE-ID")?;
            author::Export::Fetch {
                entity: arguments[0].clone(),
                remote_id: arguments[1].clone(),
            }
        }
        "push" => {
            arity(1, "push ENTITY --records FILE")?;
            let Some(file) = records else {
                anyhow::bail!("`connectors call FILE push ENTITY` needs --records FILE");
            };
            author::Export::Push {
                entity: arguments[0].clone(),
                file: file.clone(),
                dry_run,
            }
        }
        other => anyhow::bail!(
            "{other:?} is not an export `connectors call` makes: manifest, activate, lookup-choices, pull, fetch or push"
        ),
    })
}

/// The connectors a command calls, which are all it loads: none for the commands that only read
/// or write the store, those of the instance it names, all for `serve` and listings.
fn connectors_touched(command: &Command) -> Connectors {
    let instance = |name: &str| Connectors::Only {
        instances: vec![name.to_string()],
        connectors: Vec::new(),
    };
    let connector = |name: &str| Connectors::Only {
        instances: Vec::new(),
        connectors: vec![name.to_string()],
    };
    match command {
        Command::Instances(InstancesCommand::List { .. })
        | Command::Runs(_)
        | Command::Feed(_)
        | Command::Callbacks(CallbacksCommand::Show { .. })
        | Command::Tokens(_)
        | Command::Trust(_)
        | Command::Audit { .. }
        | Command::Workers(_)
        | Command::Cache(_)
        | Command::Schedules(SchedulesCommand::List { .. } | SchedulesCommand::Remove { .. }) => {
            Connectors::None
        }
        Command::Activate {
            connector: name, ..
        }
        | Command::Connectors(
            ConnectorsCommand::Rollback { name }
            | ConnectorsCommand::Restore { name, .. }
            | ConnectorsCommand::Inspect { target: name, .. },
        ) => connector(name),
        Command::Check { name }
        | Command::Instances(
            InstancesCommand::Show { name, .. }
            | InstancesCommand::Disable { name }
            | InstancesCommand::Enable { name }
            | InstancesCommand::Delete { name, .. },
        )
        | Command::Settings(
            SettingsCommand::Set { name, .. } | SettingsCommand::Show { name, .. },
        )
        | Command::Lookups(
            LookupsCommand::Choices { name, .. }
            | LookupsCommand::Set { name, .. }
            | LookupsCommand::Show { name, .. },
        )
        | Command::SyncOptions(
            SyncOptionsCommand::Set { name, .. } | SyncOptionsCommand::Show { name, .. },
        )
        | Command::Push { name, .. }
        | Command::Pull { name, .. }
        | Command::Retry { name, .. }
        | Command::Link { name, .. }
        | Command::Reconcile { name, .. }
        | Command::Remove { name, .. }
        | Command::Schedules(SchedulesCommand::Set { name, .. })
        | Command::Callbacks(
            CallbacksCommand::Subscribe { name, .. } | CallbacksCommand::Unsubscribe { name },
        ) => instance(name),
        _ => Connectors::All,
    }
}

/// Prints a push report: counts, each BSS id's remote id (its IntegrationId), and failures.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Demo = &cli.command {
        #[cfg(feature = "demo")]
        return crate::demo::run().await;
        #[cfg(not(feature = "demo"))]
        anyhow::bail!(
            "this bss-host was built without the demo (cargo feature `demo`, on by default)"
        );
    }
    if let Command::Dev {
        file,
        dev_data,
        sets,
        port,
        once,
    } = &cli.command
    {
        #[cfg(feature = "demo")]
        return crate::dev::run(crate::dev::DevOptions {
            file,
            folder: dev_data.clone(),
            sets,
            port: *port,
            once: *once,
        })
        .await;
        #[cfg(not(feature = "demo"))]
        {
            let _ = (file, dev_data, sets, port, once);
            anyhow::bail!(
                "this bss-host was built without the sandbox (cargo feature `demo`, on by default)"
            );
        }
    }
    if let Command::MigrateStore { from, to } = &cli.command {
        return setup::migrate_store(from, to);
    }
    if let Command::Connectors(ConnectorsCommand::Inspect { target, json }) = &cli.command
        && (target.ends_with(".wasm") || Path::new(target).is_file())
    {
        return views::inspect_file(&cli.data, Path::new(target), *json).await;
    }
    match &cli.command {
        Command::Keys(KeysCommand::Generate { out }) => return author::generate_key(out),
        Command::Connectors(ConnectorsCommand::Sign { file, key, out }) => {
            return author::sign(file, key, out.as_deref());
        }
        Command::Connectors(ConnectorsCommand::New { name, lang, dir }) => {
            return author::new(name, lang, dir.as_deref());
        }
        Command::Connectors(ConnectorsCommand::Check { file, json }) => {
            return author::check(file, *json).await;
        }
        Command::Connectors(ConnectorsCommand::Call {
            file,
            export,
            arguments,
            sets,
            lookups,
            since,
            page_token,
            records,
            dry_run,
        }) => {
            let export = author_export(export, arguments, since, page_token, records, *dry_run)?;
            return author::call(file, export, sets, lookups).await;
        }
        _ => {}
    }
    let connectors = connectors_touched(&cli.command);
    let app = App::open_with(
        &cli.data,
        crate::app::OpenOptions {
            plugins: cli.plugins.as_deref(),
            database: cli.database.as_deref(),
            new_database: cli.new_database,
            connectors,
            allow_unsigned: cli.allow_unsigned,
        },
    )
    .await?;
    for problem in &app.load_problems {
        eprintln!(
            "warning: connector {} was not loaded: {}",
            problem.source, problem.error
        );
    }
    match cli.command {
        Command::Demo | Command::Dev { .. } | Command::MigrateStore { .. } => {
            unreachable!("run before the data folder opens")
        }
        Command::Serve {
            listen,
            feed_retention_days,
            secure_cookies,
            worker_id,
            shutdown_grace,
        } => {
            let options = crate::serve::ServeOptions {
                listen,
                feed_retention_days,
                secure_cookies,
                worker_id,
                shutdown_grace: std::time::Duration::from_secs(shutdown_grace),
            };
            crate::serve::serve(app, options).await?
        }
        Command::Cache(CacheCommand::Prune { json }) => {
            let pruned = app.registry.prune_compiled(&app.plugins)?;
            if json {
                println!("{}", serde_json::to_string(&pruned)?);
            } else {
                println!(
                    "removed {} compiled component(s) ({:.1} MB); kept {} ({:.1} MB)",
                    pruned.removed,
                    pruned.removed_bytes as f64 / 1e6,
                    pruned.kept,
                    pruned.kept_bytes as f64 / 1e6
                );
            }
        }
        command @ (Command::Trust(_) | Command::Audit { .. }) => trust::run(&app, command)?,
        command @ (Command::Schedules(_)
        | Command::Tokens(_)
        | Command::Workers(_)
        | Command::Feed(_)
        | Command::Callbacks(_)
        | Command::Reconcile { .. }
        | Command::Remove { .. }) => unattended::run(&app, command).await?,
        command @ (Command::Push { .. }
        | Command::Pull { .. }
        | Command::Retry { .. }
        | Command::Link { .. }
        | Command::Runs(_)) => runs::run(&app, command).await?,
        command => setup::run(&app, command).await?,
    }
    Ok(())
}
