//! What the fleet's job queue gives and what PostgreSQL costs. Prints a Markdown table (in the
//! style of `benches/sandbox.rs`); run with `cargo bench -p bss-host --bench fleet` (release
//! build). `BENCH_ONLY=fleet,claim,cli` runs only the named sections.
//!
//! Everything runs on loopback, against the ConnectWise sandbox in this process with 20 ms added
//! to every API request (a remote's round trip), and the release `bss-host` binary in child
//! processes; each PostgreSQL store is a scratch database on the local server, dropped at the end.
//!
//! - `fleet`: records per second of 1, 2 and 4 `bss-host serve` workers on one PostgreSQL
//!   database. Each worker count gets a fresh sandbox, database and data folders, with
//!   [`INSTANCES`] ConnectWise instances set up through the CLI (16, so that 4 workers × 4 jobs at
//!   once can all be busy: one instance and entity runs one job at a time), and the same
//!   [`JOBS`] push jobs of [`RECORDS_PER_JOB`] new accounts each (disjoint ids), spread over the
//!   instances and submitted through the workers' APIs in turn. Timed from the first submission
//!   to the moment the last job is seen ended (polled every [`END_POLL`]).
//! - `claim`: submit → the job leaves `queued`, for [`CLAIM_JOBS`] one-record jobs submitted one
//!   after the other to idle workers (the 4-worker fleet once its pushes are done), each job
//!   polled with `GET /jobs/{id}` every [`CLAIM_POLL`].
//! - `cli`: `bss-host push INSTANCE account --file F --json` of [`CLI_ACCOUNTS`] new accounts, one
//!   process, on the data folder's SQLite and on PostgreSQL (`BSS_HOST_DATABASE`), with 20 ms and
//!   with no added latency (where the store's own cost shows); the time of the whole process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bss_host::store::postgres::scratch::ScratchDb;
use cw_sandbox::{Faults, Sandbox, SandboxConfig};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_bss-host");

/// Added to every API request of the sandbox while something is timed.
const LATENCY: Duration = Duration::from_millis(20);
const SYNC_OPTIONS: &str = "account:push:create,update";

/// Instances of the fleet section: 4 workers × 4 jobs at once.
const INSTANCES: usize = 16;
/// Push jobs of the fleet section, the same for every worker count (4 per instance).
const JOBS: usize = 64;
/// Accounts per job: 64 × 150 = 9,600 accounts per worker count.
const RECORDS_PER_JOB: usize = 150;
const WORKER_COUNTS: [usize; 3] = [1, 2, 4];
/// How often the fleet section looks whether the job it waits for has ended.
const END_POLL: Duration = Duration::from_millis(20);

/// One-record jobs of the claim section, and how often each is polled while queued.
const CLAIM_JOBS: usize = 40;
const CLAIM_POLL: Duration = Duration::from_millis(2);

/// Accounts of one CLI push, and the pushes without latency (median taken).
const CLI_ACCOUNTS: usize = 1_000;
const CLI_REPEATS_NO_LATENCY: usize = 3;

/// First account numbers of each section's records, so no two sections' ids meet.
const CLAIM_FIRST: usize = 100_000;
const CLI_FIRST: usize = 200_000;

fn row(what: &str, value: String) {
    println!("| {what:<66} | {value:>24} |");
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn rate(records: usize, took: Duration) -> f64 {
    records as f64 / took.as_secs_f64()
}

/// The value at fraction `p` of `sorted` (nearest rank).
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

const SECTIONS: &[&str] = &["fleet", "claim", "cli"];

/// The sections `BENCH_ONLY` names (all when unset); an unknown name stops the bench.
fn chosen_sections() -> Vec<&'static str> {
    let Ok(list) = std::env::var("BENCH_ONLY") else {
        return SECTIONS.to_vec();
    };
    list.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            SECTIONS
                .iter()
                .copied()
                .find(|s| *s == name)
                .unwrap_or_else(|| {
                    panic!(
                        "BENCH_ONLY names {name:?}, which is not a section; use some of: {}",
                        SECTIONS.join(",")
                    )
                })
        })
        .collect()
}

/// Runs a blocking step (a child process) off the async workers, so the sandbox keeps answering.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking step")
}

/// Account number `i` as the BSS hands it over: a USD customer the instances have lookups for.
fn account(i: usize) -> Value {
    json!({
        "id": format!("A{i:06}"), "code": format!("C{i:06}"), "name": format!("Account {i}"),
        "account-type": "Customer", "currency": "USD",
        "billing-address": { "line1": format!("{i} Main Street"), "city": "Austin" }
    })
}

/// Accounts `first..first + count` as NDJSON.
fn accounts(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("{}\n", account(i)))
        .collect()
}

/// A data folder and the store its commands use: `BSS_HOST_DATABASE`, or the folder's SQLite.
#[derive(Clone)]
struct Folder {
    data: PathBuf,
    database: Option<String>,
}

impl Folder {
    /// `bss-host --data <data> <args>`, not yet run; warnings only, no key from the environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            // The fixtures are unsigned: benchmarks measure other things than the trust list.
            .env("BSS_HOST_ALLOW_UNSIGNED", "1")
            .arg("--data")
            .arg(&self.data)
            .args(args)
            .env("BSS_HOST_LOG", "warn")
            .env_remove("BSS_HOST_KEY")
            .env_remove("BSS_HOST_DATABASE");
        if let Some(url) = &self.database {
            command.env("BSS_HOST_DATABASE", url);
        }
        command
    }

    /// Standard output of a command that must succeed.
    fn run(&self, args: &[&str]) -> String {
        let out = self.command(args).output().expect("run bss-host");
        assert!(
            out.status.success(),
            "bss-host {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Activates ConnectWise instance `name` against the sandbox at `url`: settings, the
    /// account-type and currency lookups, and [`SYNC_OPTIONS`].
    fn add_instance(&self, name: &str, url: &str) {
        self.run(&["activate", "connectwise", "--name", name]);
        let url = format!("url={url}");
        self.run(&[
            "settings",
            "set",
            name,
            &url,
            "company-id=sandbox",
            "public-key=sandbox-public",
            "private-key=sandbox-private",
            "client-id=0c8f3c52-5b7e-4c1a-9d8e-1f2a3b4c5d6e",
            "import-account-id=4",
            "host.allow-private-network=on",
            "host.requests-per-minute=10000000",
        ]);
        self.run(&["lookups", "set", name, "account-type", "Customer=1"]);
        self.run(&["lookups", "set", name, "currency", "USD=1"]);
        self.run(&["sync-options", "set", name, SYNC_OPTIONS]);
    }
}

/// A running `bss-host serve`: its API base URL; killed when dropped.
struct Worker {
    base: String,
    process: Child,
}

impl Worker {
    /// Starts `serve` on a free port as worker `id` and reads the address it prints.
    fn start(folder: &Folder, id: &str) -> Worker {
        let mut process = folder
            .command(&["serve", "--listen", "127.0.0.1:0"])
            .env("BSS_HOST_WORKER_ID", id)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("bss-host serve");
        let mut lines = BufReader::new(process.stdout.take().expect("stdout")).lines();
        let base = loop {
            let line = lines.next().expect("serve's address").expect("text");
            if let Some(base) = line.strip_prefix("admin API listening on ") {
                break base.to_string();
            }
        };
        // Whatever it prints later is read and dropped, never left to fill the pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Worker { base, process }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Copies the files of `from` (a compile cache) into `to`.
fn copy_files(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}

fn instance_name(i: usize) -> String {
    format!("cw{i:02}")
}

/// Workers on one scratch PostgreSQL database with [`INSTANCES`] instances against a sandbox of
/// their own, and an operator token. Fields drop in order: the workers stop before their
/// database goes.
struct Fleet {
    workers: Vec<Worker>,
    token: String,
    client: reqwest::Client,
    sandbox: Sandbox,
    _database: ScratchDb,
    _dir: tempfile::TempDir,
}

impl Fleet {
    /// Sets everything up through the CLI, starts `count` workers (each on a data folder of its
    /// own with the fleet's key and a warm compile cache), then adds [`LATENCY`] to the sandbox.
    async fn start(count: usize) -> Fleet {
        let sandbox = Sandbox::start(SandboxConfig::default())
            .await
            .expect("sandbox");
        let database = blocking(ScratchDb::create).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let setup = Folder {
            data: dir.path().join("setup"),
            database: Some(database.url.clone()),
        };
        let (folder, url, root) = (setup.clone(), sandbox.base_url(), dir.path().to_path_buf());
        let (token, workers) = blocking(move || {
            for i in 0..INSTANCES {
                folder.add_instance(&instance_name(i), &url);
            }
            let token = folder.run(&["tokens", "create", "bench", "--role", "operator"]);
            let workers = (0..count)
                .map(|i| {
                    let worker = Folder {
                        data: root.join(format!("worker-{i}")),
                        database: folder.database.clone(),
                    };
                    copy_files(&folder.data.join("cache"), &worker.data.join("cache"));
                    std::fs::copy(folder.data.join("key"), worker.data.join("key")).expect("key");
                    Worker::start(&worker, &format!("w{i}"))
                })
                .collect::<Vec<_>>();
            (token.trim().to_string(), workers)
        })
        .await;
        sandbox.set_faults(Faults::default().with_latency(LATENCY));
        Fleet {
            workers,
            token,
            client: api_client(),
            sandbox,
            _database: database,
            _dir: dir,
        }
    }

    /// Submits a push of `body` (NDJSON accounts) to `instance` through worker `via`'s API.
    async fn submit(&self, via: usize, instance: &str, body: String) -> i64 {
        let base = &self.workers[via % self.workers.len()].base;
        let answer = self
            .client
            .post(format!("{base}/instances/{instance}/jobs/push/account"))
            .bearer_auth(&self.token)
            .body(body)
            .send()
            .await
            .expect("submit");
        assert_eq!(answer.status(), 202, "{}", answer.text().await.unwrap());
        let answer: Value = answer.json().await.expect("json");
        answer["job"].as_i64().expect("job id")
    }

    /// Job `id` as `GET /jobs/{id}` shows it.
    async fn job(&self, id: i64) -> Value {
        self.client
            .get(format!("{}/jobs/{id}", self.workers[0].base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("job")
            .error_for_status()
            .expect("job status")
            .json()
            .await
            .expect("json")
    }

    /// Job `id` once it is done or failed, looked at every `every`.
    async fn ended(&self, id: i64, every: Duration) -> Value {
        let started = Instant::now();
        loop {
            let job = self.job(id).await;
            if job["state"] == "done" || job["state"] == "failed" {
                return job;
            }
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "job {id} never ended: {job:#}"
            );
            tokio::time::sleep(every).await;
        }
    }
}

/// An HTTP client for the admin API (the host builds TLS without a default crypto provider).
fn api_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// What a set of ended jobs did, from their rows and their runs' reports.
#[derive(Default)]
struct Ended {
    done: usize,
    failed: usize,
    created: usize,
    failed_records: usize,
    first_error: Option<String>,
    by_worker: std::collections::BTreeMap<String, usize>,
}

fn ended(jobs: &[Value]) -> Ended {
    let mut sum = Ended::default();
    for job in jobs {
        if job["state"] == "done" {
            sum.done += 1;
        } else {
            sum.failed += 1;
            sum.first_error
                .get_or_insert_with(|| job["error"].to_string());
        }
        let worker = job["worker"].as_str().unwrap_or("none").to_string();
        *sum.by_worker.entry(worker).or_default() += 1;
        let report: Value = job["outcome"]
            .as_str()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or(Value::Null);
        sum.created += report["created"].as_u64().unwrap_or(0) as usize;
        sum.failed_records += report["failed"].as_u64().unwrap_or(0) as usize;
    }
    sum
}

/// Submits the fleet section's [`JOBS`] (through the workers in turn) and waits for every one
/// to end: the time from the first submission to the last end seen, and the jobs' rows.
async fn push_jobs(fleet: &Fleet) -> (Duration, Vec<Value>) {
    let bodies: Vec<(String, String)> = (0..JOBS)
        .map(|job| {
            let first = 1 + job * RECORDS_PER_JOB;
            (
                instance_name(job % INSTANCES),
                accounts(first, RECORDS_PER_JOB),
            )
        })
        .collect();
    let started = Instant::now();
    let mut ids = Vec::with_capacity(JOBS);
    for (via, (instance, body)) in bodies.into_iter().enumerate() {
        ids.push(fleet.submit(via, &instance, body).await);
    }
    let mut jobs = Vec::with_capacity(JOBS);
    for id in ids {
        jobs.push(fleet.ended(id, END_POLL).await);
    }
    (started.elapsed(), jobs)
}

/// Records per second of 1, 2 and 4 workers; returns the last fleet, idle, for the claim
/// section.
async fn fleet_throughput() -> Fleet {
    let records = JOBS * RECORDS_PER_JOB;
    let mut one_worker = None;
    let mut last = None;
    for count in WORKER_COUNTS {
        // The previous fleet stops before this one is set up.
        drop(last.take());
        let fleet = Fleet::start(count).await;
        let (took, jobs) = push_jobs(&fleet).await;
        let per_second = rate(records, took);
        let sum = ended(&jobs);
        let workers = if count == 1 { "worker" } else { "workers" };
        row(
            &format!(
                "fleet push, {records} accounts as {JOBS} jobs on {INSTANCES} instances: {count} {workers}"
            ),
            format!("{per_second:.0} records/s, {}", secs(took)),
        );
        let one = *one_worker.get_or_insert(per_second);
        if count > 1 {
            row(
                &format!("  records/s of {count} workers ÷ 1 worker"),
                format!("{:.2}×", per_second / one),
            );
        }
        report_jobs(&fleet, &sum);
        last = Some(fleet);
    }
    last.expect("a fleet")
}

/// What the jobs did, what reached the sandbox (each account exactly once?), and the first job
/// error if any.
fn report_jobs(fleet: &Fleet, sum: &Ended) {
    let spread: Vec<String> = sum.by_worker.values().map(usize::to_string).collect();
    row(
        "  jobs done / failed; accounts created / failed; jobs per worker",
        format!(
            "{} / {}; {} / {}; {}",
            sum.done,
            sum.failed,
            sum.created,
            sum.failed_records,
            spread.join("+")
        ),
    );
    let (companies, distinct) = companies(&fleet.sandbox);
    row(
        "  companies in the sandbox (distinct identifiers)",
        format!("{companies} ({distinct})"),
    );
    if let Some(error) = &sum.first_error {
        row("  first job error", error.clone());
    }
}

/// The companies in the sandbox, and how many distinct identifiers (account codes) they have.
fn companies(sandbox: &Sandbox) -> (usize, usize) {
    let all = sandbox.records("company/companies");
    let distinct: std::collections::BTreeSet<String> =
        all.iter().map(|c| c["identifier"].to_string()).collect();
    (all.len(), distinct.len())
}

/// Submit (the POST sent) → the job leaves `queued`, for one-record jobs sent one after the
/// other to idle workers in turn, each waited for to the end; also the POST's own time, and
/// whether the worker that took each was the one it was submitted to (woken in-process rather
/// than by PostgreSQL's notification).
async fn claim_latency(fleet: &Fleet) {
    let mut latencies = Vec::with_capacity(CLAIM_JOBS);
    let mut polls = Vec::new();
    let mut posts = Vec::with_capacity(CLAIM_JOBS);
    let mut by_receiver = 0;
    let mut failed = 0;
    for k in 0..CLAIM_JOBS {
        let via = k % fleet.workers.len();
        let body = accounts(CLAIM_FIRST + k, 1);
        let submitted = Instant::now();
        let id = fleet.submit(via, &instance_name(k % INSTANCES), body).await;
        posts.push(submitted.elapsed());
        let job = loop {
            let asked = Instant::now();
            let job = fleet.job(id).await;
            polls.push(asked.elapsed());
            if job["state"] != "queued" {
                break job;
            }
            tokio::time::sleep(CLAIM_POLL).await;
        };
        latencies.push(submitted.elapsed());
        if job["worker"] == format!("w{via}") {
            by_receiver += 1;
        }
        if fleet.ended(id, CLAIM_POLL).await["state"] != "done" {
            failed += 1;
        }
    }
    latencies.sort();
    let mean = |d: &[Duration]| d.iter().sum::<Duration>() / d.len() as u32;
    row(
        &format!("job claim latency (submit → not queued), {CLAIM_JOBS} jobs: p50 / p99"),
        format!(
            "{} / {}",
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99))
        ),
    );
    row(
        &format!(
            "  {} idle workers; each job polled every {} ms + a GET's time (mean)",
            fleet.workers.len(),
            CLAIM_POLL.as_millis()
        ),
        ms(mean(&polls)),
    );
    row(
        "  of which the submit POST until its 202 (mean)",
        ms(mean(&posts)),
    );
    row(
        "  claimed by the worker it was submitted to; jobs failed",
        format!("{by_receiver} of {CLAIM_JOBS}; {failed}"),
    );
}

/// A data folder with instance `cw` against a sandbox of its own, on SQLite or PostgreSQL.
struct CliSetup {
    folder: Folder,
    sandbox: Sandbox,
    _database: Option<ScratchDb>,
    dir: tempfile::TempDir,
}

impl CliSetup {
    async fn new(postgres: bool) -> CliSetup {
        let sandbox = Sandbox::start(SandboxConfig::default())
            .await
            .expect("sandbox");
        let database = if postgres {
            Some(blocking(ScratchDb::create).await)
        } else {
            None
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let folder = Folder {
            data: dir.path().join("data"),
            database: database.as_ref().map(|d| d.url.clone()),
        };
        let (setup, url) = (folder.clone(), sandbox.base_url());
        blocking(move || setup.add_instance("cw", &url)).await;
        CliSetup {
            folder,
            sandbox,
            _database: database,
            dir,
        }
    }

    /// The time of `bss-host push cw account --file F --json` of accounts `first..` (written
    /// beforehand) with `latency` added; every account must be created.
    async fn push(&self, latency: Duration, first: usize) -> Duration {
        let file = self.dir.path().join(format!("accounts-{first}.ndjson"));
        std::fs::write(&file, accounts(first, CLI_ACCOUNTS)).expect("file");
        self.sandbox
            .set_faults(Faults::default().with_latency(latency));
        let folder = self.folder.clone();
        let (took, out) = blocking(move || {
            let file = file.display().to_string();
            let started = Instant::now();
            let out = folder.run(&["push", "cw", "account", "--file", &file, "--json"]);
            (started.elapsed(), out)
        })
        .await;
        let report: Value = serde_json::from_str(&out).expect("push --json");
        assert_eq!(report["created"], CLI_ACCOUNTS, "{report:#}");
        took
    }
}

/// The same CLI push on SQLite and on PostgreSQL, with and without latency.
async fn cli_push() {
    let stores = [CliSetup::new(false).await, CliSetup::new(true).await];
    let mut first = CLI_FIRST;
    for (latency, repeats) in [(LATENCY, 1), (Duration::ZERO, CLI_REPEATS_NO_LATENCY)] {
        let mut times = [Vec::new(), Vec::new()];
        for _ in 0..repeats {
            for (store, times) in stores.iter().zip(&mut times) {
                times.push(store.push(latency, first).await);
                first += CLI_ACCOUNTS;
            }
        }
        let [sqlite, postgres] = times.map(|mut t| {
            t.sort();
            t[t.len() / 2]
        });
        let how = if repeats == 1 {
            format!("{} ms latency", latency.as_millis())
        } else {
            format!("0 ms (median of {repeats})")
        };
        row(
            &format!("CLI push, {CLI_ACCOUNTS} accounts, {how}: SQLite / PostgreSQL"),
            format!("{} / {}", secs(sqlite), secs(postgres)),
        );
        row(
            "  PostgreSQL ÷ SQLite (target ≤ 1.5)",
            format!("{:.2}", postgres.as_secs_f64() / sqlite.as_secs_f64()),
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // On a runtime worker, like the sandbox bench: the sandbox answers from these threads.
    tokio::spawn(sections()).await.expect("bench");
}

async fn sections() {
    let chosen = chosen_sections();
    let wanted = |section: &str| chosen.contains(&section);
    println!("| {:<66} | {:>24} |\n|---|---|", "what", "figure");
    let mut idle = None;
    if wanted("fleet") {
        idle = Some(fleet_throughput().await);
    }
    if wanted("claim") {
        let fleet = match idle.take() {
            Some(fleet) => fleet,
            None => Fleet::start(4).await,
        };
        claim_latency(&fleet).await;
    }
    drop(idle);
    if wanted("cli") {
        cli_push().await;
    }
}
