//! The host's own memory after a connector's oversized answer, through the real `bss-host serve`:
//! a lookup-choices answer of a million empty choices is refused with the typed error (502, naming
//! `host.max-items-per-answer`), the next call works, and the server's resident memory (`VmRSS`)
//! is back within 50 MiB of what it was before.

mod common;
mod cw;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_bss-host");
const FIXTURE: &str = env!("BSS_FIXTURE_WASM");

fn cli(data: &Path, plugins: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--data")
        .arg(data)
        .arg("--plugins")
        .arg(plugins)
        .args(args)
        .env_remove("BSS_HOST_KEY")
        .env("BSS_HOST_ALLOW_UNSIGNED", "1")
        .output()
        .unwrap()
}

/// A line of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_choice_answer_leaves_serves_memory_where_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let (data, plugins): (PathBuf, PathBuf) = (dir.path().join("data"), dir.path().join("plugins"));
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(FIXTURE, plugins.join("fixture.wasm")).unwrap();
    let out = cli(&data, &plugins, &["activate", "fixture", "--name", "fx"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "version" answers the settings check and lists the ordinary choices.
    cli(
        &data,
        &plugins,
        &[
            "settings",
            "set",
            "fx",
            "base-url=https://fixture.example",
            "user=alice",
            "api-key=k",
            "mode=version",
        ],
    );

    let mut server = Command::new(BIN);
    server
        .arg("--data")
        .arg(&data)
        .arg("--plugins")
        .arg(&plugins)
        .env_remove("BSS_HOST_KEY")
        .env("BSS_HOST_ALLOW_UNSIGNED", "1");
    let served = cw::serve(server);
    let pid = served.pid();
    let client = cw::api_client();
    let choices = format!("{}/instances/fx/lookups/fruit/choices", served.base);
    let get = || client.get(&choices).bearer_auth(&served.token).send();

    let at_start = status_kib(pid, "VmRSS");
    // Warm up: the connector loaded and one call made, as any serving host has.
    let warm = get().await.unwrap();
    assert_eq!(warm.status(), 200, "{}", warm.text().await.unwrap());
    let before = status_kib(pid, "VmRSS");

    let set = client
        .patch(format!("{}/instances/fx/settings", served.base))
        .bearer_auth(&served.token)
        .json(&serde_json::json!({ "mode": "million-choices" }))
        .send()
        .await
        .unwrap();
    assert!(
        set.status().is_success() || set.status() == 502,
        "{}",
        set.status()
    );
    for _ in 0..3 {
        let refused = get().await.unwrap();
        assert_eq!(refused.status(), 502);
        let body = refused.text().await.unwrap();
        assert!(
            body.contains("a list of 1000000 items") && body.contains("host.max-items-per-answer"),
            "{body}"
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = status_kib(pid, "VmRSS");
    let peak = status_kib(pid, "VmHWM");
    eprintln!(
        "serve VmRSS: {} MiB at start, {} MiB warm, {} MiB after three refused million-choice answers (peak {} MiB)",
        at_start >> 10,
        before >> 10,
        after >> 10,
        peak >> 10
    );
    assert!(
        after <= before + (50 << 10),
        "serve grew from {before} KiB to {after} KiB"
    );

    // And the next call works.
    client
        .patch(format!("{}/instances/fx/settings", served.base))
        .bearer_auth(&served.token)
        .json(&serde_json::json!({ "mode": "version" }))
        .send()
        .await
        .unwrap();
    let again = get().await.unwrap();
    assert_eq!(again.status(), 200);
    let listed: serde_json::Value = again.json().await.unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
}
