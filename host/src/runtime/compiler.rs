//! Where components are compiled: in a child process of the `bss-host` binary when the binary
//! asked for it ([`compile_in_child_processes`]) and there is a compile cache to write into, else
//! on a blocking thread of this process.
//!
//! Compiling a 19 MB Python or JavaScript component takes Cranelift ~400 MB at its peak, and the
//! allocator keeps most of that after the compile ends: a `serve` that compiled one connector
//! would carry the peak for the rest of its life. A child process (`bss-host
//! __compile-component`, which reads the component on stdin and writes the engine's precompiled
//! artifact into a file its parent made, exclusively, in the cache folder) takes its peak with it
//! when it exits; the parent renames the artifact into the cache and maps it, as it maps any cache
//! entry. The child builds its engine from the same [`RuntimeConfig`], and the parent checks the
//! artifact's compatibility when it maps it.
//!
//! | the child | the parent |
//! |---|---|
//! | could not be started, or does not understand its arguments | compiles in this process, with a warning |
//! | exits 3: the bytes are not a valid component | refuses the component with the child's reason |
//! | a background child runs out of the memory it may add ([`CHILD_MEMORY_MIB`] MiB of writable address space, or `BSS_HOST_COMPILE_MEMORY_MB`) | refuses the component until the cap is raised or the file changes (it would run out again) |
//! | is killed, crashes, or runs past [`CHILD_DEADLINE`] (a background child: that much CPU time, or [`BACKGROUND_DEADLINE`]) | fails this load as stopped, not as an invalid component (not compiled here: that peak is what the child is for); it is tried again later |
//! | writes an artifact that does not load | compiles in this process, with a warning |
//!
//! While a compile runs for more than [`PROGRESS_AFTER`], a progress line says so, then one
//! every [`PROGRESS_EVERY`], so a first load of a large component is never silent. Under `serve`
//! ([`compile_in_background`]) the child runs at the lowest scheduling priority (nice 19 and
//! `SCHED_IDLE`) and on one thread, so the calls answered meanwhile keep their latency
//! (BENCHMARKS.md, "hot swap").

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

static IN_BACKGROUND: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes later compiler children run at the lowest scheduling priority: `serve` asks for it, so
/// the calls it answers keep their latency while a new version compiles. A command that waits for
/// its compile does not (at nice 19 its child would yield to every other busy process).
pub fn compile_in_background() {
    IN_BACKGROUND.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Why a compile gave no component.
#[derive(Debug)]
pub enum CompileFailure {
    /// The bytes are not a valid component (the compiler's reason).
    Invalid(String),
    /// The compile was stopped before it ended (killed, crashed, out of time): nothing is known
    /// about the bytes, and a later attempt may succeed.
    Stopped(String),
    /// The compile needed more memory than a compiler child may use: it would again, until the
    /// cap is raised. The cap in MiB, and what the child said.
    OverMemoryCap { cap_mib: u64, said: String },
}

/// Compiles `bytes` to a component of `engine`. With a child compiler (and a cache to write its
/// artifact into), the child writes the artifact to a file of its own in the cache folder, which
/// is renamed to `artifact` (the cache entry) and mapped from there. Says so while it takes long.
pub async fn compile(
    engine: &Engine,
    config: &RuntimeConfig,
    bytes: &[u8],
    origin: &str,
    artifact: Option<PathBuf>,
) -> Result<Component, CompileFailure> {
    let started = Instant::now();
    let _progress = AbortOnDrop(tokio::spawn(report_progress(
        origin.to_string(),
        bytes.len(),
    )));
    let compiled = match (COMPILER_PROGRAM.get(), artifact) {
        (Some(program), Some(artifact)) => {
            match compile_in_child(program, engine, config, bytes, &artifact).await {
                Ok(component) => Ok(component),
                Err(ChildFailed::Invalid(reason)) => Err(CompileFailure::Invalid(reason)),
                Err(ChildFailed::Stopped(reason)) => Err(CompileFailure::Stopped(reason)),
                Err(ChildFailed::OverMemoryCap(said)) => Err(CompileFailure::OverMemoryCap {
                    cap_mib: child_memory_bytes().unwrap_or(CHILD_MEMORY_MIB << 20) >> 20,
                    said,
                }),
                Err(ChildFailed::Unavailable(why)) => {
                    tracing::warn!(
                        origin,
                        "compiling in a child process is not possible here ({why}); compiling in this process"
                    );
                    compile_here(engine, bytes).await
                }
            }
        }
        _ => compile_here(engine, bytes).await,
    };
    if started.elapsed() >= PROGRESS_AFTER {
        tracing::info!(
            origin,
            "compiled in {:.1} s; later loads use the compile cache",
            started.elapsed().as_secs_f64()
        );
    }
    compiled
}

/// Aborts a task when dropped (a compile that is given up stops reporting progress).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Removes a file when dropped, unless it was kept.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
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

async fn compile_here(engine: &Engine, bytes: &[u8]) -> Result<Component, CompileFailure> {
    let engine = engine.clone();
    let owned = bytes.to_vec();
    tokio::task::spawn_blocking(move || Component::new(&engine, owned))
        .await
        .map_err(|e| CompileFailure::Stopped(format!("the compiler thread failed: {e}")))?
        .map_err(|e| CompileFailure::Invalid(format!("{e:#}")))
}

enum ChildFailed {
    /// The bytes are not a valid component: the child's reason.
    Invalid(String),
    /// The child was killed, crashed or ran out of time on them (a compile that runs out of
    /// memory must not be tried again in the host, which is what the child is there to protect):
    /// what happened.
    Stopped(String),
    /// The child ran out of the memory it may use: what it said.
    OverMemoryCap(String),
    /// The child could not be started here: compile in this process instead.
    Unavailable(String),
}

/// How long a compile may take in the child before it is stopped: far beyond the ~20 s a 20 MB
/// component takes, so only a stuck child meets it.
const CHILD_DEADLINE: Duration = Duration::from_secs(600);

/// A background child (nice 19) gets only the CPU busy calls leave, so its wall-clock deadline is
/// longer; it is held to [`CHILD_DEADLINE`] of CPU time instead (`RLIMIT_CPU`, all its threads
/// together), so a stuck compile still ends.
const BACKGROUND_DEADLINE: Duration = Duration::from_secs(3600);

/// A name no other process picks: this process, a counter and the clock's nanoseconds.
fn unique_suffix() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{unique}-{nanos:x}", std::process::id())
}

async fn compile_in_child(
    program: &Path,
    engine: &Engine,
    config: &RuntimeConfig,
    bytes: &[u8],
    artifact: &Path,
) -> Result<Component, ChildFailed> {
    let unavailable =
        |what: &str, e: &dyn std::fmt::Display| ChildFailed::Unavailable(format!("{what}: {e}"));
    // Checked here, where a wrong value can be reported; the child reads it again.
    child_memory_bytes().map_err(ChildFailed::Stopped)?;
    // The file the child writes is made here, exclusively (never one planted or shared by another
    // process), in the cache folder that only the host writes; the child opens it, never creates.
    let temporary = artifact.with_extension(format!("compiling-{}", unique_suffix()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .map_err(|e| unavailable(&format!("{} could not be created", temporary.display()), &e))?;
    let mut cleanup = RemoveOnDrop(Some(temporary.clone()));
    let (owned, target) = (bytes.to_vec(), temporary.clone());
    let shown = program.display().to_string();
    let program = program.to_path_buf();
    let (pooling, slots) = (config.pooling, config.max_concurrent_calls);
    let priority = if IN_BACKGROUND.load(std::sync::atomic::Ordering::Relaxed) {
        "background"
    } else {
        "foreground"
    };
    let ran =
        tokio::task::spawn_blocking(move || -> std::io::Result<Option<std::process::Output>> {
            let mut child = std::process::Command::new(&program)
                .arg(CHILD_COMMAND)
                .arg(&target)
                .arg(if pooling { "pooling" } else { "on-demand" })
                .arg(slots.to_string())
                .arg(priority)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()?;
            // The child reads all of stdin before it writes anything, so this cannot deadlock; a
            // child that dies early closes the pipe and the write fails, which its status explains.
            let mut stdin = child.stdin.take().expect("stdin is piped");
            let _ = stdin.write_all(&owned);
            drop(stdin);
            let deadline = Instant::now()
                + if priority == "background" {
                    BACKGROUND_DEADLINE
                } else {
                    CHILD_DEADLINE
                };
            loop {
                if child.try_wait()?.is_some() {
                    return child.wait_with_output().map(Some);
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .await
        .map_err(|e| unavailable("the compiler thread failed", &e))?;
    let output = match ran {
        Ok(Some(output)) => output,
        Ok(None) => {
            return Err(ChildFailed::Stopped(format!(
                "compiling took longer than {} s and was stopped",
                if priority == "background" {
                    BACKGROUND_DEADLINE
                } else {
                    CHILD_DEADLINE
                }
                .as_secs()
            )));
        }
        // Not started (no such program, not executable): this process compiles instead.
        Err(error) => return Err(unavailable(&format!("{shown} could not run"), &error)),
    };
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr).trim().to_string();
        // Rust's allocation-failure message (then an abort), or the child's own verdict; only a
        // background child is capped.
        if priority == "background"
            && (output.status.code() == Some(OVER_MEMORY_CAP)
                || said.contains("memory allocation of"))
        {
            return Err(ChildFailed::OverMemoryCap(said));
        }
        return Err(match output.status.code() {
            Some(INVALID_COMPONENT) => ChildFailed::Invalid(said),
            // A usage error: this binary's child does not understand its parent (a mixed build).
            Some(2) => ChildFailed::Unavailable(said),
            _ => ChildFailed::Stopped(format!(
                "the compiler process ended with {} ({})",
                output.status,
                if said.is_empty() {
                    "it said nothing"
                } else {
                    &said
                }
            )),
        });
    }
    // Into place first, then mapped from where it stays (a cache entry is never rewritten).
    std::fs::rename(&temporary, artifact)
        .map_err(|e| unavailable("its artifact could not be put in the cache", &e))?;
    cleanup.0 = None;
    // SAFETY: the artifact was written just now by this binary's own compiler child, into a file
    // this process created exclusively in the host's own cache folder, from an engine built with
    // the same configuration; `deserialize` checks its compatibility with this engine.
    match unsafe { Component::deserialize_file(engine, artifact) } {
        Ok(component) => Ok(component),
        Err(error) => {
            let _ = std::fs::remove_file(artifact);
            Err(unavailable("its artifact does not load", &error))
        }
    }
}

/// The most writable memory a compiler child may hold (`RLIMIT_DATA`), in MiB, unless
/// [`CHILD_MEMORY_VARIABLE`] says otherwise: about ten times the peak of the largest components
/// measured (a 20 MB Python one: ~400 MB).
const CHILD_MEMORY_MIB: u64 = 4096;

/// The environment variable that sets a compiler child's memory cap, in MiB.
pub const CHILD_MEMORY_VARIABLE: &str = "BSS_HOST_COMPILE_MEMORY_MB";

/// Checks [`CHILD_MEMORY_VARIABLE`] once at start-up (`main`), so a wrong value stops the command
/// with an error that names it rather than failing each compile.
pub fn check_memory_setting() -> Result<(), String> {
    child_memory_bytes().map(|_| ())
}

/// A compiler child's memory cap in bytes: [`CHILD_MEMORY_VARIABLE`] if set, else
/// [`CHILD_MEMORY_MIB`]; an error that says how to fix a value that is not a number of MiB.
fn child_memory_bytes() -> Result<u64, String> {
    let Some(value) = std::env::var_os(CHILD_MEMORY_VARIABLE) else {
        return Ok(CHILD_MEMORY_MIB << 20);
    };
    value
        .to_str()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|mib| (1..=1 << 24).contains(mib))
        .map(|mib| mib << 20)
        .ok_or_else(|| {
            format!(
                "{CHILD_MEMORY_VARIABLE}={} is not a number of MiB from 1 to 16777216; set a whole number (the default is {CHILD_MEMORY_MIB}) or unset it",
                value.to_string_lossy()
            )
        })
}

/// What `RLIMIT_DATA` counts for this process now (`VmData` in `/proc/self/status`), if known.
fn writable_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmData:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib << 10)
}

/// The child's exit code for bytes that are not a valid component (its stderr says why).
const INVALID_COMPONENT: i32 = 3;
/// The child's exit code for a compile that ran out of the memory the child may use.
const OVER_MEMORY_CAP: i32 = 4;

/// The compiler child: `bss-host __compile-component OUT pooling|on-demand SLOTS`, the component
/// on stdin; OUT exists already (its parent made it). Returns the process's exit code.
pub fn child_main(arguments: &[std::ffi::OsString]) -> i32 {
    let [output, allocation, slots, priority] = arguments else {
        eprintln!(
            "usage: bss-host {CHILD_COMMAND} OUT pooling|on-demand SLOTS background|foreground < COMPONENT"
        );
        return 2;
    };
    let background = priority.to_str() == Some("background");
    if background {
        // The calls the parent serves meanwhile come first: at nice 19 the scheduler gives this
        // process a small share of a core the parent wants, and all of an idle one. Lowering
        // one's own priority needs no privilege; if it fails, the compile still runs.
        // Its deadline is then CPU time, not wall-clock time: the kernel ends a compile that has
        // used CHILD_DEADLINE of CPU, however long it waited for a core.
        let cpu = libc::rlimit {
            rlim_cur: CHILD_DEADLINE.as_secs(),
            rlim_max: CHILD_DEADLINE.as_secs() + 10,
        };
        // SCHED_IDLE on top (Linux; no privilege needed to lower oneself): the scheduler weighs
        // it a fifth of nice 19, so a busy server's calls wait behind it less often.
        let idle = libc::sched_param { sched_priority: 0 };
        // SAFETY: setpriority only reads its integer arguments; setrlimit and sched_setscheduler
        // read the structs, which live across the calls.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, 0, 19);
            libc::sched_setscheduler(0, libc::SCHED_IDLE, &idle);
            libc::setrlimit(libc::RLIMIT_CPU, &cpu);
        }
    }
    let config = RuntimeConfig {
        cache_dir: None,
        pooling: allocation.to_str() == Some("pooling"),
        max_concurrent_calls: slots
            .to_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(RuntimeConfig::default().max_concurrent_calls),
    };
    let mut wasm = super::engine_config(&config);
    if background {
        // One compiling thread: a parallel compile's threads on both cores made the kernel
        // interrupt whichever core served calls (TLB shootdowns of the child's unmaps), and a
        // background compile's length is set by what the calls leave anyway.
        wasm.parallel_compilation(false);
    }
    let engine = match Engine::new(&wasm) {
        Ok(engine) => engine,
        Err(error) => {
            eprintln!("the engine could not be built: {error:#}");
            return 1;
        }
    };
    // A component crafted to make the compiler allocate without end meets this cap (the child
    // then aborts, and its parent refuses the component) instead of the machine's memory, where
    // the kernel's out-of-memory killer might pick the server. `RLIMIT_DATA` counts the process's
    // writable private memory; the cap is on what the compile adds to what the engine holds
    // already (its pooling tables are writable), so it is set now, on top of that. Only in a
    // background child (`serve`, compiling what lands in the plugins folder): it compiles on one
    // thread, so a refused allocation aborts it. Two compiling threads refused at once were seen
    // to wait for ever on std's panic-output lock instead; a command's own compile keeps both
    // threads and no cap.
    let cap = child_memory_bytes().unwrap_or(CHILD_MEMORY_MIB << 20);
    match writable_memory_bytes().filter(|_| background) {
        Some(held) => {
            let limit = held.saturating_add(cap);
            let data = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            // SAFETY: setrlimit reads the struct, which lives across the call.
            if unsafe { libc::setrlimit(libc::RLIMIT_DATA, &data) } != 0 {
                eprintln!(
                    "warning: the compile's memory cap could not be set: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
        None if !background => {}
        // Without knowing what is held, a cap could fall below it: none rather than a wrong one.
        None => eprintln!("warning: /proc/self/status has no VmData; the compile is not capped"),
    }
    let mut bytes = Vec::new();
    if let Err(error) = std::io::stdin().read_to_end(&mut bytes) {
        eprintln!("the component could not be read from stdin: {error}");
        return 1;
    }
    let artifact = match engine.precompile_component(&bytes) {
        Ok(artifact) => artifact,
        Err(error) => {
            let said = format!("{error:#}");
            eprint!("{said}");
            // An allocation the cap refused, reported as an error rather than an abort.
            let lower = said.to_lowercase();
            if lower.contains("cannot allocate memory") || lower.contains("out of memory") {
                return OVER_MEMORY_CAP;
            }
            return INVALID_COMPONENT;
        }
    };
    // Opened, never created: the parent made this file for it.
    let written = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(output)
        .and_then(|mut file| {
            file.write_all(&artifact)?;
            file.sync_all()
        });
    match written {
        Ok(()) => 0,
        Err(error) => {
            eprintln!(
                "the artifact could not be written to {}: {error}",
                Path::new(output).display()
            );
            1
        }
    }
}
