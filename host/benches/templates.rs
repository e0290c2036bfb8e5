//! The three connector templates side by side (Rust, Python, JavaScript), in one run: what a
//! third party's connector costs in each language. Prints a Markdown table; run with
//! `cargo bench -p bss-host --bench templates` (release build) after
//! `scripts/install-test-deps.sh` (the templates' toolchains).
//!
//! - **build**: the template's `build.sh` (its own toolchain), and the component's size; `rust-lean`
//!   is the Rust template built with `build.sh --lean` (no WASI adapter: it imports the contract
//!   only);
//! - **compile**: `Runtime::load` of the component with no cache, compiled in this process: wall
//!   time, and the process's peak resident memory during it above what it held before (the peak
//!   is reset through `/proc/self/clear_refs` before each compile);
//! - **call**: instantiation alone, and instantiate + one trivial export (`lookup-choices` of a
//!   key the template does not know, answered without a request), [`CALLS`] times each after a
//!   warm-up: the means; the most guest memory one call held; what the pooled slot keeps resident
//!   after a call (the dirty pages wasmtime's reset found and copied back: its scan stops after 32
//!   runs of dirty pages and drops the rest of the memory, so for the interpreters this is a floor,
//!   and those pages come back as page faults); the minor page faults per call — all with
//!   `host.keep-instance=false`, a fresh instance per call; and the same call as the host runs it
//!   by default, in an instance kept from the call before (its per-call set-up included);
//! - **push**: `bss-host push` of [`PUSH_ACCOUNTS`] new accounts through the release binary (a
//!   child process, compile cache warm) against a sandbox of its own in this process with no
//!   added latency: the whole command's time (the median of [`PUSHES`]), and its ratio to the Rust
//!   template's;
//! - **serve**: `bss-host serve` with the Python template in its plugins folder: resident and peak
//!   memory once it listens, having compiled it in a child process (the default), having compiled
//!   it in the server itself (`BSS_HOST_COMPILE_IN_PROCESS=1`, as before), and with it cached;
//! - **unrelated command**: `instances show` of an instance of the bundled connector with and
//!   without the Python template in the plugins folder (median of 5): a command pays only for the
//!   connectors it touches.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bss_host::capabilities::context::InstanceContext;
use bss_host::capabilities::options::InstanceOptions;
use bss_host::runtime::{Runtime, RuntimeConfig};
use cw_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_bss-host");
/// The templates measured: a language, or `rust-lean` (the Rust template, `build.sh --lean`).
const LANGUAGES: [&str; 4] = ["rust", "rust-lean", "python", "javascript"];
const CALLS: usize = 1_000;
const PUSH_ACCOUNTS: usize = 1_000;
/// Pushes of new accounts per template; the median is reported.
const PUSHES: usize = 3;

fn row(what: &str, value: String) {
    println!("| {what:<58} | {value:>30} |");
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn build(lang: &str, out: &Path) -> Duration {
    let started = Instant::now();
    let (template, flags): (&str, &[&str]) = match lang {
        "rust-lean" => ("rust", &["--lean"]),
        _ => (lang, &[]),
    };
    let built = Command::new("bash")
        .arg(
            repository()
                .join("templates")
                .join(template)
                .join("build.sh"),
        )
        .args(flags)
        .arg(out)
        .output()
        .expect("build.sh runs");
    assert!(
        built.status.success(),
        "the {lang} template did not build (run scripts/install-test-deps.sh first):\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    started.elapsed()
}

/// A memory line of `/proc/<process>/status` (`VmHWM:`, `VmRSS:`), in bytes.
fn status_bytes(process: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches(" kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Measured {
    size: u64,
    build: Duration,
    compile: Duration,
    compile_peak: u64,
    instantiate: Duration,
    call: Duration,
    call_memory: u64,
    kept_resident: u64,
    faults_per_call: f64,
    kept_instance_call: Duration,
    push: Option<Duration>,
}

/// Whether the push and serve sections run (`BENCH_ONLY=calls` runs build, compile and calls;
/// `BENCH_LANGS=python` measures the Rust baseline and Python only).
fn pushes_wanted() -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| only.split(',').any(|s| s.trim() == "push"))
}

fn account(i: usize) -> Value {
    json!({
        "id": format!("A{i:06}"), "code": format!("C{i:06}"), "name": format!("Account {i}"),
        "account-type": "Customer", "currency": "USD",
        "billing-address": { "line1": format!("{i} Main Street"), "city": "Austin" }
    })
}

fn cli(data: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        // The fixtures are unsigned: benchmarks measure other things than the trust list.
        .env("BSS_HOST_ALLOW_UNSIGNED", "1")
        .arg("--data")
        .arg(data)
        .args(args)
        .env("BSS_HOST_LOG", "warn")
        .env_remove("BSS_HOST_KEY")
        .output()
        .expect("bss-host runs");
    assert!(
        out.status.success(),
        "bss-host {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

async fn measure(lang: &str, dir: &Path, sandbox: &Sandbox) -> Measured {
    let wasm = dir.join(format!("{lang}.wasm"));
    let build = build(lang, &wasm);
    let bytes = std::fs::read(&wasm).unwrap();

    // Compile, in this process, with no cache.
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let before = status_bytes("self", "VmRSS:");
    reset_peak();
    let started = Instant::now();
    let connector = runtime
        .load(&bytes, lang)
        .await
        .expect("the template loads");
    let compile = started.elapsed();
    let compile_peak = status_bytes("self", "VmHWM:").saturating_sub(before);

    // Instantiate + a trivial export, in a fresh instance per call. Calls run one after another,
    // so each takes the slot the previous one left: what it holds resident afterwards is what one
    // call dirtied (up to the scan's cap).
    let fresh = InstanceOptions {
        keep_instance: false,
        ..InstanceOptions::default()
    };
    let context = Arc::new(InstanceContext::empty_with("bench", fresh));
    for _ in 0..10 {
        let _ = connector.lookup_choices(&context, "no-such-lookup").await;
    }
    let kept_resident = runtime.idle_slots_resident_bytes().unwrap_or(0) as u64;
    let started = Instant::now();
    for _ in 0..CALLS {
        connector.instantiate(&context).await.expect("instantiate");
    }
    let instantiate = started.elapsed() / CALLS as u32;
    runtime.take_peak_guest_memory();
    let faults = common::minor_faults();
    let started = Instant::now();
    for _ in 0..CALLS {
        let answer = connector.lookup_choices(&context, "no-such-lookup").await;
        assert!(answer.is_ok(), "{lang}: the call trapped: {answer:?}");
    }
    let call = started.elapsed() / CALLS as u32;
    let faults_per_call = (common::minor_faults() - faults) as f64 / CALLS as f64;
    let call_memory = runtime.take_peak_guest_memory();
    // The same call as the host makes it by default: in the instance the call before kept.
    let kept_context = Arc::new(InstanceContext::empty("bench"));
    let _ = connector
        .lookup_choices(&kept_context, "no-such-lookup")
        .await;
    let started = Instant::now();
    for _ in 0..CALLS {
        let answer = connector
            .lookup_choices(&kept_context, "no-such-lookup")
            .await;
        assert!(answer.is_ok(), "{lang}: the call trapped: {answer:?}");
    }
    let kept_instance_call = started.elapsed() / CALLS as u32;
    assert_eq!(runtime.kept_instances(), 1, "{lang}: the instance was kept");
    let mut measured = Measured {
        size: bytes.len() as u64,
        build,
        compile,
        compile_peak,
        instantiate,
        call,
        call_memory,
        kept_resident,
        faults_per_call,
        kept_instance_call,
        push: None,
    };
    if !pushes_wanted() {
        return measured;
    }

    // A push through the release binary.
    let data = dir.join(format!("{lang}-data"));
    std::fs::create_dir_all(data.join("plugins")).unwrap();
    std::fs::copy(&wasm, data.join("plugins").join(format!("{lang}.wasm"))).unwrap();
    let offset = match lang {
        "rust" => 100_000,
        "rust-lean" => 150_000,
        "python" => 200_000,
        _ => 300_000,
    };
    let records: Vec<PathBuf> = (0..PUSHES)
        .map(|n| {
            let file = dir.join(format!("{lang}-accounts-{n}.ndjson"));
            let first = offset + n * PUSH_ACCOUNTS;
            std::fs::write(
                &file,
                (first..first + PUSH_ACCOUNTS)
                    .map(|i| format!("{}\n", account(i)))
                    .collect::<String>(),
            )
            .unwrap();
            file
        })
        .collect();
    let base = sandbox.base_url();
    let push = tokio::task::spawn_blocking(move || {
        cli(&data, &["activate", "template-connector", "--name", "t"]);
        cli(
            &data,
            &[
                "settings",
                "set",
                "t",
                &format!("url={base}"),
                "company-id=sandbox",
                "public-key=sandbox-public",
                "private-key=sandbox-private",
                "client-id=bench",
                "host.allow-private-network=on",
                "host.requests-per-minute=1000000",
            ],
        );
        cli(
            &data,
            &["lookups", "set", "t", "account-type", "Customer=1"],
        );
        cli(
            &data,
            &["sync-options", "set", "t", "account:push:create,update"],
        );
        // The median of three pushes of new accounts.
        let mut times: Vec<Duration> = records
            .iter()
            .map(|file| {
                let started = Instant::now();
                let report: Value = serde_json::from_str(&cli(
                    &data,
                    &[
                        "push",
                        "t",
                        "account",
                        "--file",
                        file.to_str().unwrap(),
                        "--json",
                    ],
                ))
                .unwrap();
                let took = started.elapsed();
                assert_eq!(report["created"], PUSH_ACCOUNTS, "{report:#}");
                took
            })
            .collect();
        times.sort();
        times[times.len() / 2]
    })
    .await
    .unwrap();
    measured.push = Some(push);
    measured
}

/// `bss-host serve` on `data` (its plugins compiled now, or from the cache): the server's
/// resident memory once it listens and has settled, and its peak.
fn serve_memory(data: &Path, in_process: bool) -> (u64, u64) {
    use std::io::{BufRead, BufReader};
    let mut command = Command::new(BIN);
    command
        // The fixtures are unsigned: benchmarks measure other things than the trust list.
        .env("BSS_HOST_ALLOW_UNSIGNED", "1")
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("BSS_HOST_LOG", "warn")
        .env_remove("BSS_HOST_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    if in_process {
        command.env("BSS_HOST_COMPILE_IN_PROCESS", "1");
    }
    let mut child = command.spawn().expect("serve starts");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines {
        if line.unwrap().starts_with("admin API listening on") {
            break;
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    let process = child.id().to_string();
    let measured = (
        status_bytes(&process, "VmRSS:"),
        status_bytes(&process, "VmHWM:"),
    );
    let _ = child.kill();
    let _ = child.wait();
    measured
}

/// `serve` with the Python template, and an unrelated command beside it (rows of the table).
fn serve_and_unrelated(dir: &Path) {
    // `serve` with the Python template: compiling it (in a child process, or in the server
    // itself as before), and starting with it compiled already.
    let python = dir.join("python.wasm");
    let serve_with = |name: &str| {
        let data = dir.join(name);
        std::fs::create_dir_all(data.join("plugins")).unwrap();
        std::fs::copy(&python, data.join("plugins").join("python.wasm")).unwrap();
        data
    };
    let child_data = serve_with("serve-child");
    let compiling_in_child = serve_memory(&child_data, false);
    let cached = serve_memory(&child_data, false);
    let compiling_here = serve_memory(&serve_with("serve-here"), true);
    // A command on an instance of the bundled connector, with and without the Python template
    // beside it.
    let rust_data = dir.join("rust-data");
    cli(&rust_data, &["activate", "connectwise", "--name", "cw"]);
    let unrelated = |with_python: bool| {
        let installed = rust_data.join("plugins").join("python.wasm");
        if with_python {
            std::fs::copy(&python, &installed).unwrap();
            // One command over every connector compiles it and indexes the file.
            cli(&rust_data, &["connectors", "list"]);
        } else {
            let _ = std::fs::remove_file(&installed);
        }
        let mut times: Vec<Duration> = (0..5)
            .map(|_| {
                let started = Instant::now();
                cli(&rust_data, &["instances", "show", "cw"]);
                started.elapsed()
            })
            .collect();
        times.sort();
        times[2]
    };
    let without_python = unrelated(false);
    let with_python = unrelated(true);
    let mb = |bytes: u64| format!("{:.0} MB", bytes as f64 / 1e6);
    row(
        "serve, Python template compiled in a child: resident",
        mb(compiling_in_child.0),
    );
    row(
        "serve, Python template compiled in a child: peak",
        mb(compiling_in_child.1),
    );
    row(
        "serve, Python template from the cache: resident",
        mb(cached.0),
    );
    row(
        "serve, Python template compiled in the server: resident",
        mb(compiling_here.0),
    );
    row(
        "serve, Python template compiled in the server: peak",
        mb(compiling_here.1),
    );
    row(
        "`instances show` of a ConnectWise instance, no Python plugin",
        format!("{:.0} ms", without_python.as_secs_f64() * 1e3),
    );
    row(
        "the same, the Python template in the plugins folder",
        format!("{:.0} ms", with_python.as_secs_f64() * 1e3),
    );
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut measured = Vec::new();
    // `BENCH_LANGS=python,javascript` measures only those (the Rust template always runs: it is
    // the baseline of the ratios).
    let langs = std::env::var("BENCH_LANGS").unwrap_or_default();
    for lang in LANGUAGES {
        if lang != "rust" && !langs.is_empty() && !langs.split(',').any(|l| l.trim() == lang) {
            continue;
        }
        // A sandbox of its own: its costs grow with the companies it holds, and each language's
        // pushes meet the same.
        let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
        measured.push((lang, measure(lang, dir.path(), &sandbox).await));
    }
    let rust_call = measured[0].1.call.as_secs_f64();
    println!("| {:<58} | {:>30} |", "templates (one run)", "value");
    println!("|{}|{}|", "-".repeat(60), "-".repeat(32));
    if pushes_wanted() {
        serve_and_unrelated(dir.path());
    }
    let rust_push = measured[0].1.push.map(|push| push.as_secs_f64());
    for (lang, m) in &measured {
        row(
            &format!("{lang}: component size"),
            format!("{:.1} MB", m.size as f64 / 1e6),
        );
        row(
            &format!("{lang}: build (its toolchain)"),
            format!("{:.1} s", m.build.as_secs_f64()),
        );
        row(
            &format!("{lang}: compile to native code"),
            format!("{:.1} s", m.compile.as_secs_f64()),
        );
        row(
            &format!("{lang}: compile peak memory (above before)"),
            format!("{:.0} MB", m.compile_peak as f64 / 1e6),
        );
        row(
            &format!("{lang}: instantiate alone"),
            format!("{:.1} µs", m.instantiate.as_secs_f64() * 1e6),
        );
        row(
            &format!("{lang}: instantiate + trivial export (fresh instance)"),
            format!(
                "{:.1} µs (×{:.2} Rust)",
                m.call.as_secs_f64() * 1e6,
                m.call.as_secs_f64() / rust_call
            ),
        );
        row(
            &format!("{lang}: trivial export, kept instance (default)"),
            format!("{:.1} µs", m.kept_instance_call.as_secs_f64() * 1e6),
        );
        row(
            &format!("{lang}: guest memory of one call (size / kept resident)"),
            format!(
                "{:.1} MB / {:.2} MB",
                m.call_memory as f64 / 1e6,
                m.kept_resident as f64 / 1e6
            ),
        );
        row(
            &format!("{lang}: minor page faults per call"),
            format!("{:.1}", m.faults_per_call),
        );
        if let (Some(push), Some(rust_push)) = (m.push, rust_push) {
            row(
                &format!("{lang}: push {PUSH_ACCOUNTS} accounts (whole command)"),
                format!(
                    "{:.2} s (×{:.2} Rust)",
                    push.as_secs_f64(),
                    push.as_secs_f64() / rust_push
                ),
            );
        }
    }
}
