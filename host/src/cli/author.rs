//! Commands for connector authors, which work on a `.wasm` file rather than on installed
//! connectors and instances: `connectors check` (will this file load here, and if not, what to
//! change) and `connectors call` (one export called with settings from the command line, without
//! an instance or a database).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;

use crate::capabilities::context::{InstanceContext, LookupEntry};
use crate::capabilities::options::InstanceOptions;
use crate::contract::bindings::connector::{ConflictPolicy, PushItem, PushOptions};
use crate::contract::bindings::types::Record;
use crate::runtime::imports::{Verdict, judge, surface};
use crate::runtime::{Runtime, RuntimeConfig, check_contract};
use crate::safe_text::printable;

/// A component of this size or more is worth a word about its cost.
const LARGE_COMPONENT_BYTES: u64 = 5_000_000;

/// Where the author commands keep compiled code: the user's cache (`$XDG_CACHE_HOME/bss-host`,
/// else `~/.cache/bss-host`), never a data folder, which a first compile would make look used
/// (and its missing database then refused), nor a shared temporary folder (compiled code there
/// could be another user's, and is run as native code). None without a home: no cache.
fn author_cache() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .filter(|path| path.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))?;
    Some(base.join("bss-host").join("compiled"))
}

/// `connectors check FILE`: whether the file loads on this host, each problem with its fix.
/// Fails (exit 1) when it would be refused.
pub async fn check(file: &Path, json: bool) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(file).with_context(|| format!("could not read {}", file.display()))?;
    let origin = file.display().to_string();
    let mut report = CheckReport {
        file: origin.clone(),
        bytes: bytes.len() as u64,
        ..CheckReport::default()
    };
    match crate::registry::signature::verify(&bytes) {
        Ok(Some(signer)) => {
            report.signature = Some(format!(
                "signed by key {} ({})",
                signer.key_id,
                crate::registry::signature::public_key_text(&signer.public_key)
            ))
        }
        Ok(None) => report.signature = Some("unsigned".into()),
        Err(error) if bytes.starts_with(b"\0asm") => report.problems.push(error),
        Err(_) => {}
    }
    match surface(&bytes) {
        Err(what) => report.problems.push(format!("{origin} is {what}")),
        Ok(surface) => {
            for import in &surface.imports {
                let (verdict, note) = match judge(import) {
                    Verdict::Contract => ("granted", "the contract".to_string()),
                    Verdict::Wasi(note) => ("granted", note.to_string()),
                    Verdict::Refused(fix) => {
                        report.problems.push(format!("import {import}: {fix}"));
                        ("refused", fix)
                    }
                };
                report.imports.push(ImportLine {
                    name: import.clone(),
                    verdict,
                    note,
                });
            }
            report.exports = surface.exports.clone();
            match check_contract(&surface.imports, &surface.exports, &origin) {
                Ok(contract) => report.contract = Some(contract.version().to_string()),
                Err(error) => report.problems.push(error.to_string()),
            }
        }
    }
    if report.problems.is_empty() {
        // Compiling, linking and reading the manifest twice: exactly what loading does.
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: author_cache(),
            ..RuntimeConfig::default()
        })
        .context("could not start the component runtime")?;
        let started = Instant::now();
        let compiles_before = runtime.compile_count();
        match runtime.load(&bytes, &origin).await {
            Ok(connector) => {
                let manifest = connector.manifest();
                report.manifest = Some(format!("{} {}", manifest.name, manifest.version));
                report.load_secs = Some(started.elapsed().as_secs_f64());
                report.compiled = runtime.compile_count() > compiles_before;
            }
            Err(error) => report.problems.push(error.to_string()),
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.describe());
    }
    if report.problems.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "{} would be refused: {}",
            printable(&origin),
            printable(&report.problems.join("; "))
        )
    }
}

#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
struct CheckReport {
    file: String,
    bytes: u64,
    /// The contract minor it speaks, `bss:integration@1.4.0`'s "1.4.0".
    contract: Option<String>,
    /// "unsigned", or who signed it (the signature checked against its bytes).
    signature: Option<String>,
    imports: Vec<ImportLine>,
    exports: Vec<String>,
    /// Name and version, once it loaded.
    manifest: Option<String>,
    /// How long loading took (a compile, when `compiled`).
    load_secs: Option<f64>,
    compiled: bool,
    problems: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
struct ImportLine {
    name: String,
    verdict: &'static str,
    note: String,
}

impl CheckReport {
    fn describe(&self) -> String {
        let mut out = format!(
            "{}: {:.1} MB component\n",
            printable(&self.file),
            self.bytes as f64 / 1e6
        );
        if let Some(contract) = &self.contract {
            out.push_str(&format!(
                "contract: bss:integration@{contract} (this host serves 1.0.0 to {})\n",
                crate::contract::CONTRACT_VERSION
            ));
        }
        if let Some(signature) = &self.signature {
            out.push_str(&format!("signature: {signature}\n"));
        }
        if !self.imports.is_empty() {
            out.push_str("imports:\n");
            for import in &self.imports {
                out.push_str(&format!(
                    "  {:<8} {} — {}\n",
                    import.verdict,
                    printable(&import.name),
                    import.note
                ));
            }
        }
        if let Some(manifest) = &self.manifest {
            out.push_str(&format!("manifest: {} (valid)\n", printable(manifest)));
        }
        if let Some(secs) = self.load_secs {
            out.push_str(&format!(
                "load: {secs:.1} s{}\n",
                if self.compiled {
                    " (compiled now; the data folder's cache makes later loads milliseconds)"
                } else {
                    " (from the compile cache)"
                }
            ));
        }
        if self.bytes >= LARGE_COMPONENT_BYTES {
            out.push_str("cost: a large component (an interpreter inside, as componentize-py and ComponentizeJS build): expect a compile of tens of seconds once per build, and a few MB of memory per call\n");
        }
        if self.problems.is_empty() {
            out.push_str("ok: this host loads it\n");
        } else {
            out.push_str("problems:\n");
            for problem in &self.problems {
                out.push_str(&format!("  - {}\n", printable(problem)));
            }
        }
        out
    }
}

/// What `connectors call` calls, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Export {
    Manifest,
    Activate,
    LookupChoices(String),
    Pull {
        entity: String,
        since: Option<String>,
        page_token: Option<String>,
    },
    Fetch {
        entity: String,
        remote_id: String,
    },
    Push {
        entity: String,
        file: std::path::PathBuf,
        dry_run: bool,
    },
}

/// `connectors call FILE EXPORT …`: loads the file, builds an instance's context from `--set
/// KEY=VALUE` (server variables and `host.` options, validated as `settings set` does) and
/// `--lookup KEY:BSS=REMOTE`, makes the one call and prints its answer as JSON. A contract error
/// is printed and fails the command (exit 1), as does a trap.
pub async fn call(
    file: &Path,
    export: Export,
    sets: &[String],
    lookups: &[String],
) -> anyhow::Result<()> {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: author_cache(),
        ..RuntimeConfig::default()
    })
    .context("could not start the component runtime")?;
    let connector = runtime.load_file(file).await?;
    let manifest = connector.manifest().clone();
    if export == Export::Manifest {
        println!("{}", serde_json::to_string_pretty(&manifest)?);
        return Ok(());
    }
    let mut values = BTreeMap::new();
    let mut options = InstanceOptions::default();
    for pair in sets {
        let (key, value) = crate::instances::parse_pair(pair)
            .map_err(|e| anyhow::anyhow!("--set {pair:?}: {e}"))?;
        if key.starts_with("host.") {
            options
                .set(&key, &value)
                .map_err(|e| anyhow::anyhow!("--set {key}: {}", e.message))?;
        } else if manifest.variable(&key).is_some() {
            values.insert(key, value);
        } else {
            anyhow::bail!(
                "--set {key}: {} {} declares no server variable {key:?} (it declares: {})",
                manifest.name,
                manifest.version,
                manifest
                    .server_variables
                    .iter()
                    .map(|v| v.key.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let mut tables: BTreeMap<String, Vec<LookupEntry>> = BTreeMap::new();
    for entry in lookups {
        let parsed = entry
            .split_once(':')
            .and_then(|(key, pair)| pair.split_once('=').map(|(b, r)| (key, b, r)));
        let Some((key, bss, remote)) = parsed else {
            anyhow::bail!(
                "--lookup {entry:?} is not KEY:BSS=REMOTE (e.g. account-type:Customer=1)"
            );
        };
        tables
            .entry(key.to_string())
            .or_default()
            .push(LookupEntry {
                bss_value: bss.to_string(),
                remote_value: remote.to_string(),
                pull_default: false,
            });
    }
    let context =
        InstanceContext::new("(call)", &manifest, &values, tables, options).map_err(|e| {
            anyhow::anyhow!(
                "the settings are not valid for {} {}: {}",
                manifest.name,
                manifest.version,
                e.problems
                    .iter()
                    .map(|p| format!("{}: {}", p.key, p.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })?;
    let context = Arc::new(context);
    let answer: Result<serde_json::Value, String> = match export {
        Export::Manifest => unreachable!("answered above"),
        Export::Activate => answered(connector.activate(&context).await?)?,
        Export::LookupChoices(key) => answered(connector.lookup_choices(&context, &key).await?)?,
        Export::Pull {
            entity,
            since,
            page_token,
        } => {
            let entity = crate::sync::service::parse_entity(&entity)?;
            answered(
                connector
                    .pull(
                        &context,
                        entity.into(),
                        since.as_deref(),
                        page_token.as_deref(),
                    )
                    .await?,
            )?
        }
        Export::Fetch { entity, remote_id } => {
            let entity = crate::sync::service::parse_entity(&entity)?;
            answered(connector.fetch(&context, entity.into(), &remote_id).await?)?
        }
        Export::Push {
            entity,
            file,
            dry_run,
        } => {
            let entity = crate::sync::service::parse_entity(&entity)?;
            let items = push_items(entity, &file)?;
            let options = PushOptions {
                dry_run,
                conflicts: ConflictPolicy::Report,
            };
            answered(
                connector
                    .push(&context, entity.into(), &items, options)
                    .await?,
            )?
        }
    };
    match answer {
        Ok(value) => {
            println!("{}", serde_json::to_string_pretty(&value)?);
            Ok(())
        }
        Err(error) => anyhow::bail!("the connector answered with an error: {error}"),
    }
}

/// A call's answer as JSON, or the contract error it returned (as JSON text).
fn answered<T: serde::Serialize, E: serde::Serialize>(
    answer: Result<T, E>,
) -> anyhow::Result<Result<serde_json::Value, String>> {
    Ok(match answer {
        Ok(value) => Ok(serde_json::to_value(value)?),
        Err(error) => Err(serde_json::to_string(&error)?),
    })
}

/// The records of a file (a JSON array, or one object per line) as creates: `--file` for a
/// quick push without an id map (a record's `remote-id` field, when present, makes it an update).
fn push_items(
    entity: crate::contract::manifest::Entity,
    file: &Path,
) -> anyhow::Result<Vec<PushItem>> {
    use crate::sync::records::{RecordChecker, RecordReader};
    let input =
        std::fs::File::open(file).with_context(|| format!("could not read {}", file.display()))?;
    let mut checker = RecordChecker::default();
    let mut items = Vec::new();
    // The record files' own reader and checks (positions, ids, duplicates), as `push` reads them;
    // only `remote-id` is taken off first.
    for item in RecordReader::new(std::io::BufReader::new(input)) {
        let (position, value) = item.map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let (remote_id, value) = match value {
            Ok(mut value) => {
                let remote_id = value
                    .as_object_mut()
                    .and_then(|object| object.remove("remote-id"))
                    .and_then(|id| id.as_str().map(str::to_string));
                (remote_id, Ok(value))
            }
            Err(error) => (None, Err(error)),
        };
        let record = checker.check(entity, (position, value)).map_err(|bad| {
            anyhow::anyhow!(
                "{} record {}: {}",
                file.display(),
                bad.position,
                bad.message
            )
        })?;
        items.push(PushItem {
            record: Record {
                entity: entity.into(),
                bss_id: record.id,
                remote_id,
                maybe_created: false,
                data: record.data,
                references: Vec::new(),
            },
            last_pushed: None,
        });
    }
    Ok(items)
}

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/templates.rs"));
}

/// The languages `connectors new` has a template for.
pub const LANGUAGES: &[&str] = &["rust", "python", "javascript"];

/// The name every template is written with, replaced by the new connector's.
const TEMPLATE_NAME: &str = "template-connector";

/// `connectors new NAME --lang LANG [--dir DIR]`: writes the language's template into `DIR`
/// (default `./NAME`), named NAME, with the contract in `DIR/wit`. Refuses a folder that exists
/// and is not empty.
pub fn new(name: &str, lang: &str, dir: Option<&Path>) -> anyhow::Result<()> {
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !valid_name {
        anyhow::bail!(
            "{name:?} is not a connector name: use lower-kebab-case (letters, digits, dashes), e.g. acme-crm"
        );
    }
    if !LANGUAGES.contains(&lang) {
        anyhow::bail!(
            "--lang {lang:?}: the templates are {}",
            LANGUAGES.join(", ")
        );
    }
    let dir = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(name).to_path_buf());
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut entries| entries.next().is_some())
            .unwrap_or(true)
    {
        anyhow::bail!(
            "{} exists and is not empty; name another folder with --dir",
            dir.display()
        );
    }
    let mut written = 0;
    for (template, path, bytes) in embedded::TEMPLATE_FILES {
        if *template != lang {
            continue;
        }
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("could not create {}", parent.display()))?;
        }
        let contents = match std::str::from_utf8(bytes) {
            Ok(text) => text.replace(TEMPLATE_NAME, name).into_bytes(),
            Err(_) => bytes.to_vec(),
        };
        std::fs::write(&target, contents)
            .with_context(|| format!("could not write {}", target.display()))?;
        if path.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
        }
        written += 1;
    }
    let wit = dir.join("wit");
    std::fs::create_dir_all(&wit)?;
    for (file, bytes) in embedded::CONTRACT_FILES {
        std::fs::write(wit.join(file), bytes)?;
    }
    println!(
        "wrote the {lang} template as connector {name} into {} ({written} files, the contract bss:integration@{} in wit/)",
        dir.display(),
        crate::contract::CONTRACT_VERSION
    );
    println!(
        "next: {}/build.sh builds it (see its README.md); `bss-host connectors check` the .wasm; `bss-host dev` runs it against a local ConnectWise sandbox",
        dir.display()
    );
    Ok(())
}

/// `keys generate --out FILE`: a new Ed25519 signing key, written to FILE (mode 0600, refused when
/// FILE exists); prints its public key and key id, which operators add to their trust list.
pub fn generate_key(out: &Path) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let (private, public) = crate::registry::signature::generate();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| {
            format!(
                "could not create the key file {} (it must not exist yet)",
                out.display()
            )
        })?;
    file.write_all(&private)?;
    file.sync_all()?;
    println!(
        "wrote the signing key to {} (keep it private)\npublic key {}\nkey id {}",
        out.display(),
        crate::registry::signature::public_key_text(&public),
        crate::registry::signature::key_id(&public)
    );
    Ok(())
}

/// `connectors sign FILE --key KEYFILE [--out OUT]`: signs a component (replacing an earlier
/// signature), in place or into OUT (written whole, then renamed into place).
pub fn sign(file: &Path, key: &Path, out: Option<&Path>) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(file).with_context(|| format!("could not read {}", file.display()))?;
    surface(&bytes).map_err(|what| anyhow::anyhow!("{} is {what}", file.display()))?;
    let private = std::fs::read(key)
        .with_context(|| format!("could not read the key file {}", key.display()))?;
    let signed = crate::registry::signature::sign(&bytes, &private)
        .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
    let signer = crate::registry::signature::verify(&signed)
        .map_err(anyhow::Error::msg)?
        .expect("just signed");
    let target = out.unwrap_or(file);
    let temporary = target.with_extension(format!("signing-{}", std::process::id()));
    std::fs::write(&temporary, &signed)
        .with_context(|| format!("could not write {}", temporary.display()))?;
    std::fs::rename(&temporary, target)
        .with_context(|| format!("could not write {}", target.display()))?;
    println!(
        "signed {} with key {} ({})",
        target.display(),
        signer.key_id,
        crate::registry::signature::public_key_text(&signer.public_key)
    );
    Ok(())
}
