//! Where components are compiled: in a child process of the `bss-host` binary when the binary
//! asked for it ([`compile_in_child_processes`]), else on a blocking thread of this process.
//!
//! Compiling a 19 MB Python or JavaScript component takes Cranelift ~400 MB at its peak, and the
//! allocator keeps most of that after the compile ends: a `serve` that compiled one connector
//! would carry the peak for the rest of its life. A child process (`bss-host
//! __compile-component`, which reads the component on stdin and writes the engine's precompiled
//! artifact to a file) takes its peak with it when it exits; the parent maps the artifact, as it
//! maps a compile-cache entry. The child builds its engine from the same [`RuntimeConfig`], and
//! the parent checks the artifact's compatibility when it maps it: anything that goes wrong
//! there falls back to compiling in this process, with a warning.
//!
//! While a compile runs for more than [`PROGRESS_AFTER`], a progress line says so, then one
//! every [`PROGRESS_EVERY`], so a first load of a large component is never silent.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use wasmtime::Engine;
use wasmtime::component::Component;

use super::RuntimeConfig;

/// The hidden first argument that makes the `bss-host` binary a compiler child.
pub const CHILD_COMMAND: &str = "__compile-component";

/// How long a compile runs before the first progress line.
pub const PROGRESS_AFTER: Duration = Duration::from_secs(1);

/// How often a progress line repeats after that.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(5);

static COMPILER_PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// Makes every later compile of this process run in a child process of `program` (the
/// `bss-host` binary itself; see [`child_main`]).
pub fn compile_in_child_processes(program: PathBuf) {
    let _ = COMPILER_PROGRAM.set(program);
}

/// Compiles `bytes` to a component of `engine`; when `artifact` is given and a child compiles,
/// the child writes its artifact there (a compile-cache path, renamed into place only once it
/// loads). Says so while it takes long.
pub async fn compile(
    engine: &Engine,
    config: &RuntimeConfig,
    bytes: &[u8],
    origin: &str,
    artifact: Option<PathBuf>,
) -> anyhow::Result<Component> {
    let started = Instant::now();
    let progress = tokio::spawn(report_progress(origin.to_string(), bytes.len()));
    let compiled = match COMPILER_PROGRAM.get() {
        Some(program) => {
            match compile_in_child(program, engine, config, bytes, artifact.as_deref()).await {
                Ok(component) => Ok(component),
                Err(ChildFailed::Refused(reason)) => Err(anyhow::anyhow!(reason)),
                Err(ChildFailed::Unavailable(why)) => {
                    tracing::warn!(
                        origin,
                        "compiling in a child process failed ({why}); compiling in this process"
                    );
                    compile_here(engine, bytes).await
                }
            }
        }
        None => compile_here(engine, bytes).await,
    };
    progress.abort();
    if started.elapsed() >= PROGRESS_AFTER {
        tracing::info!(
            origin,
            "compiled in {:.1} s; later loads use the compile cache",
            started.elapsed().as_secs_f64()
        );
    }
    compiled
}

async fn report_progress(origin: String, size: usize) {
    tokio::time::sleep(PROGRESS_AFTER).await;
    let started = Instant::now() - PROGRESS_AFTER;
    loop {
        tracing::info!(
            origin,
            "compiling a {:.1} MB component to native code ({} s so far; done once per build of a connector)",
            size as f64 / 1e6,
            started.elapsed().as_secs()
        );
        tokio::time::sleep(PROGRESS_EVERY).await;
    }
}

async fn compile_here(engine: &Engine, bytes: &[u8]) -> anyhow::Result<Component> {
    let engine = engine.clone();
    let owned = bytes.to_vec();
    tokio::task::spawn_blocking(move || Component::new(&engine, owned))
        .await
        .map_err(|e| anyhow::anyhow!("the compiler thread failed: {e}"))?
        .map_err(|e| anyhow::anyhow!("{e:#}"))
}

enum ChildFailed {
    /// The child compiled nothing because the bytes are not a valid component: the reason.
    Refused(String),
    /// The child could not do the work (not started, killed, artifact unusable).
    Unavailable(String),
}

async fn compile_in_child(
    program: &Path,
    engine: &Engine,
    config: &RuntimeConfig,
    bytes: &[u8],
    artifact: Option<&Path>,
) -> Result<Component, ChildFailed> {
    let unavailable =
        |what: &str, e: &dyn std::fmt::Display| ChildFailed::Unavailable(format!("{what}: {e}"));
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = match artifact {
        Some(path) => path.with_extension(format!("compiling-{}-{unique}", std::process::id())),
        None => std::env::temp_dir().join(format!(
            "bss-host-compile-{}-{unique}.cwasm",
            std::process::id()
        )),
    };
    let (owned, target) = (bytes.to_vec(), temporary.clone());
    let shown = program.display().to_string();
    let program = program.to_path_buf();
    let (pooling, slots) = (config.pooling, config.max_concurrent_calls);
    let ran = tokio::task::spawn_blocking(
        move || -> std::io::Result<(std::process::Output, std::io::Result<()>)> {
            let mut child = std::process::Command::new(&program)
                .arg(CHILD_COMMAND)
                .arg(&target)
                .arg(if pooling { "pooling" } else { "on-demand" })
                .arg(slots.to_string())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()?;
            // The child reads all of stdin before it writes anything, so this cannot deadlock.
            let mut stdin = child.stdin.take().expect("stdin is piped");
            let fed = stdin.write_all(&owned);
            drop(stdin);
            Ok((child.wait_with_output()?, fed))
        },
    )
    .await
    .map_err(|e| unavailable("the compiler thread failed", &e))?;
    let (output, fed) =
        ran.map_err(|e| unavailable(&format!("the compiler child ({shown}) failed"), &e))?;
    let remove_temporary = || {
        let _ = std::fs::remove_file(&temporary);
    };
    if !output.status.success() {
        remove_temporary();
        let said = String::from_utf8_lossy(&output.stderr).trim().to_string();
        return Err(match output.status.code() {
            Some(INVALID_COMPONENT) => ChildFailed::Refused(said),
            _ => ChildFailed::Unavailable(format!("it ended with {}: {said}", output.status)),
        });
    }
    fed.map_err(|e| {
        unavailable(
            "the component could not be handed to the compiler child",
            &e,
        )
    })?;
    // SAFETY: the artifact was written just now by this binary's own compiler child, from an
    // engine built with the same configuration, into a file only the host writes; `deserialize`
    // checks its compatibility with this engine before using it.
    let loaded = unsafe { Component::deserialize_file(engine, &temporary) };
    let component = match loaded {
        Ok(component) => component,
        Err(error) => {
            remove_temporary();
            return Err(unavailable("its artifact does not load", &error));
        }
    };
    match artifact {
        Some(path) => {
            if let Err(error) = std::fs::rename(&temporary, path) {
                remove_temporary();
                tracing::warn!("could not write the compiled-code cache: {error}");
            }
        }
        // Mapped already: the file may go.
        None => remove_temporary(),
    }
    Ok(component)
}

/// The child's exit code for bytes that are not a valid component (its stderr says why).
const INVALID_COMPONENT: i32 = 3;

/// The compiler child: `bss-host __compile-component OUT pooling|on-demand SLOTS`, the component
/// on stdin. Returns the process's exit code.
pub fn child_main(arguments: &[String]) -> i32 {
    let [output, allocation, slots] = arguments else {
        eprintln!("usage: bss-host {CHILD_COMMAND} OUT pooling|on-demand SLOTS < COMPONENT");
        return 2;
    };
    let config = RuntimeConfig {
        cache_dir: None,
        pooling: allocation == "pooling",
        max_concurrent_calls: slots
            .parse()
            .unwrap_or(RuntimeConfig::default().max_concurrent_calls),
    };
    let engine = match Engine::new(&super::engine_config(&config)) {
        Ok(engine) => engine,
        Err(error) => {
            eprintln!("the engine could not be built: {error:#}");
            return 1;
        }
    };
    let mut bytes = Vec::new();
    if let Err(error) = std::io::stdin().read_to_end(&mut bytes) {
        eprintln!("the component could not be read from stdin: {error}");
        return 1;
    }
    let artifact = match engine.precompile_component(&bytes) {
        Ok(artifact) => artifact,
        Err(error) => {
            eprint!("{error:#}");
            return INVALID_COMPONENT;
        }
    };
    let written = std::fs::File::create(output).and_then(|mut file| {
        file.write_all(&artifact)?;
        file.sync_all()
    });
    match written {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("the artifact could not be written to {output}: {error}");
            1
        }
    }
}
