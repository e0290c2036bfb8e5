//! What a lying connector hands back, through the real `bss-host` binary (and `serve`), on
//! loopback: an echoing remote's response reaches the connector scrubbed of the host's
//! credentials; 2,000 refused requests with 64 KiB URLs stay within the call's log budget; escape
//! sequences come out escaped; a check summary of 20 MB is stored capped and redacted; and the
//! redaction rule leaves `maximum` alone with the ConnectWise `client-id=x`.

mod common;
mod cw;

use std::process::{Command, Output};

use base64::Engine as _;
use common::cli::{BIN, Folder, blocking, contains, database_bytes};
use common::{Reply, Seen, TestServer};

const FIXTURE: &str = env!("BSS_FIXTURE_WASM");
const SECRET: &str = "s3cr3t-Echo-KEY-42";

/// A data folder with the fixture installed and an instance `fx` of it.
fn folder() -> Folder {
    let folder = Folder::new();
    folder.plugin(FIXTURE, "fixture.wasm");
    ok(&folder, &["activate", "fixture", "--name", "fx"]);
    folder
}

fn run_with(folder: &Folder, log: &str, args: &[&str]) -> Output {
    folder.host().log(log).run(&folder.data, args)
}

fn run(folder: &Folder, args: &[&str]) -> Output {
    run_with(folder, "info", args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

fn ok(folder: &Folder, args: &[&str]) -> String {
    folder.host().log("info").ok(&folder.data, args)
}

/// `settings set fx ...` with everything the fixture needs; the check runs (and may fail).
fn set(folder: &Folder, base: &str, pairs: &[&str]) -> Output {
    let base = format!("base-url={base}");
    let api_key = format!("api-key={SECRET}");
    let mut args = vec![
        "settings",
        "set",
        "fx",
        base.as_str(),
        "user=alice",
        api_key.as_str(),
        "host.allow-private-network=on",
    ];
    args.extend_from_slice(pairs);
    run(folder, &args)
}

/// A remote that reflects the request: every header into its body and into response headers,
/// the Basic credentials decoded, and an ordinary word (`maximum`).
fn echo_reply(seen: &Seen) -> Reply {
    let mut body = String::from("maximum;");
    let mut headers = Vec::new();
    for (name, value) in &seen.headers {
        body.push_str(&format!(" {name}={value};"));
        headers.push((format!("x-echo-{name}"), value.clone()));
    }
    for value in seen.header_values("authorization") {
        let encoded = value.strip_prefix("Basic ").unwrap_or(&value);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        let decoded = String::from_utf8(decoded).unwrap();
        let (user, password) = decoded.split_once(':').unwrap();
        body.push_str(&format!(
            " decoded={decoded}; user={user}; password={password};"
        ));
        // A header named after the secret, too.
        headers.push((format!("x-{password}"), "named".into()));
    }
    Reply::Respond {
        status: 200,
        headers,
        body: body.into_bytes(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echoing_remote_reaches_the_connector_with_the_credentials_scrubbed() {
    let server = TestServer::start(echo_reply).await;
    let url = server.url();
    let folder = folder();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("x:{SECRET}"));
    let (out, folder) = blocking(move || {
        let param = format!("param={url}/echo");
        // user=x: a one-letter, non-secret value the host puts into every request.
        let set = set(&folder, &url, &["user=x", "mode=echo", &param]);
        assert!(set.status.success(), "{}", text(&set.stderr));
        (run(&folder, &["check", "fx"]), folder)
    })
    .await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));

    // The remote did get the credentials: the scrubbing is on the way back.
    let seen = server.seen();
    assert_eq!(
        seen.last().unwrap().header_values("authorization"),
        vec![format!("Basic {basic}")]
    );
    // The connector saw (and returned) the echo without them.
    for leaked in [SECRET, basic.as_str(), &format!("x:{SECRET}")] {
        assert!(
            !stdout.contains(leaked),
            "{leaked:?} reached the connector: {stdout}"
        );
    }
    assert!(
        stdout.starts_with("check ok: status 200 headers ["),
        "{stdout}"
    );
    assert!(
        stdout.contains("authorization=Basic [REDACTED];"),
        "{stdout}"
    );
    assert!(stdout.contains("x-api-key=[REDACTED];"), "{stdout}");
    assert!(
        stdout.contains("decoded=[REDACTED]; user=[REDACTED]; password=[REDACTED];"),
        "{stdout}"
    );
    assert!(
        stdout.contains("x-echo-authorization: Basic [REDACTED]"),
        "{stdout}"
    );
    assert!(stdout.contains("x-echo-x-api-key: [REDACTED]"), "{stdout}");
    assert!(stdout.contains("x-[REDACTED]: named"), "{stdout}");
    // The rule: the one-letter user name is scrubbed where it stands alone, not out of words.
    assert!(stdout.contains("body [maximum;"), "{stdout}");
    assert!(stdout.contains("x-echo-accept: text/plain"), "{stdout}");
    // What is stored is what was shown.
    let shown = ok(&folder, &["instances", "show", "fx", "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    let summary = shown["last_check"]["summary"].as_str().unwrap();
    assert!(summary.contains("password=[REDACTED]") && summary.contains("maximum"));
    assert!(!contains(&database_bytes(&folder.data), SECRET.as_bytes()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echo_the_host_could_not_read_is_refused_not_handed_over() {
    // The same echo, marked compressed: the host scrubs bytes, not what they decode to.
    let server = TestServer::start(|seen: &Seen| match echo_reply(seen) {
        Reply::Respond {
            status,
            mut headers,
            body,
        } => {
            headers.push(("content-encoding".into(), "gzip".into()));
            Reply::Respond {
                status,
                headers,
                body,
            }
        }
        other => other,
    })
    .await;
    let url = server.url();
    let folder = folder();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("x:{SECRET}"));
    let out = blocking(move || {
        let param = format!("param={url}/echo");
        let _ = set(&folder, &url, &["user=x", "mode=echo", &param]);
        run(&folder, &["check", "fx"])
    })
    .await;
    let all = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(
        all.contains("the response is encoded (gzip), so the host cannot scrub"),
        "{all}"
    );
    assert!(!all.contains(SECRET) && !all.contains(&basic), "{all}");
    // The guest could not ask for an encoding itself: the remote never saw Accept-Encoding.
    assert!(
        server
            .seen()
            .iter()
            .all(|s| s.header_values("accept-encoding").is_empty())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_refused_requests_stay_within_the_calls_log_budget() {
    let folder = folder();
    let (out, folder) = blocking(move || {
        let set = set(
            &folder,
            "http://127.0.0.1:9",
            &["mode=version", "host.log-bytes-per-call=64KiB"],
        );
        assert!(set.status.success(), "{}", text(&set.stderr));
        ok(&folder, &["settings", "set", "fx", "mode=refuse-many"]);
        let started = std::time::Instant::now();
        let out = run(&folder, &["check", "fx"]);
        eprintln!("2,000 refused requests: {:?}", started.elapsed());
        (out, folder)
    })
    .await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), "check ok: 2000 refused");
    eprintln!(
        "log written for 2,000 refused requests with 64 KiB URLs: {} bytes",
        stderr.len()
    );
    // 131 MB before; now two lines with cut URLs, then one summary.
    assert!(
        stderr.len() < 64 << 10,
        "the log grew by {} bytes, over the call's 64 KiB budget",
        stderr.len()
    );
    assert_eq!(
        stderr.matches("refused a connector's request to").count(),
        2
    );
    assert!(
        stderr.contains("https://evil.example/0/aaaa") && stderr.contains("bytes more)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1,998 more requests refused in this call"),
        "{stderr}"
    );

    // The host's lines are charged to the budget: with a budget smaller than one line, nothing
    // but the summaries is written.
    let tiny = blocking(move || {
        ok(
            &folder,
            &["settings", "set", "fx", "host.log-bytes-per-call=100B"],
        );
        run(&folder, &["check", "fx"])
    })
    .await;
    let stderr = text(&tiny.stderr);
    assert!(tiny.status.success());
    assert!(!stderr.contains("aaaaaaaa"), "{stderr}");
    assert!(stderr.contains("1,998 more requests refused"), "{stderr}");
    assert!(stderr.len() < 4 << 10, "{} bytes: {stderr}", stderr.len());
}

/// Whether `text` holds anything a terminal acts on.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_sequences_come_out_escaped() {
    let folder = folder();
    let folder = blocking(move || {
        let failed = set(&folder, "http://127.0.0.1:9", &["mode=escapes"]);
        assert!(!failed.status.success());
        folder
    })
    .await;
    let out = run(&folder, &["check", "fx"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success());
    // (The host's own log lines on stderr may be coloured; the error line is what it printed.)
    let error = stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect::<Vec<_>>()
        .join("\n");
    for output in [&stdout, &error] {
        assert_eq!(raw_controls(output), Vec::<char>::new(), "{output}");
        assert!(
            !output
                .lines()
                .any(|l| l.starts_with("ALL CHECKS PASSED") || l.starts_with("forged line")),
            "{output}"
        );
    }
    assert_eq!(
        stdout.trim_end(),
        "check FAILED: connector error: connector failed \\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\rALL CHECKS PASSED\\nforged line\\u{9b}31m"
    );

    let choices = ok(&folder, &["lookups", "choices", "fx", "fruit"]);
    assert_eq!(raw_controls(&choices), Vec::<char>::new(), "{choices}");
    assert_eq!(
        choices.trim_end(),
        "v\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\rALL CHECKS PASSED\\nforged line\\u{9b}31m label \\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\rALL CHECKS PASSED\\nforged line\\u{9b}31m"
    );

    ok(&folder, &["settings", "set", "fx", "mode=escapes-ok"]);
    let shown = ok(&folder, &["instances", "show", "fx"]);
    assert_eq!(raw_controls(&shown), Vec::<char>::new(), "{shown}");
    assert!(
        shown.contains("last check    ok at ")
            && shown.contains(": summary \\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\rALL CHECKS PASSED\\n"),
        "{shown}"
    );
    // --json stays JSON, with the controls escaped the JSON way.
    let json = ok(&folder, &["instances", "show", "fx", "--json"]);
    assert_eq!(raw_controls(&json), Vec::<char>::new(), "{json}");
    assert!(
        json.contains(
            "summary \\u001b[2J\\u001b]0;pwned\\u0007\\rALL CHECKS PASSED\\nforged line\\u009b31m"
        ),
        "{json}"
    );
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        value["last_check"]["summary"],
        "summary \u{1b}[2J\u{1b}]0;pwned\u{7}\rALL CHECKS PASSED\nforged line\u{9b}31m"
    );

    // Through `serve`: the API's JSON escapes the C0 controls (serde).
    let mut server = Command::new(BIN);
    server
        .arg("--data")
        .arg(&folder.data)
        .arg("--plugins")
        .arg(&folder.plugins)
        .env("BSS_HOST_LOG", "warn")
        .env("BSS_HOST_ALLOW_UNSIGNED", "1");
    let served = cw::serve(server);
    let body = cw::api_client()
        .post(format!("{}/instances/fx/check", served.base))
        .bearer_auth(&served.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!body.contains('\u{1b}') && !body.contains('\r') && !body.contains('\u{7}'));
    assert!(body.contains("\\u001b[2J"), "{body}");
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(value["summary"].as_str().unwrap().contains('\u{1b}'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_summary_of_many_megabytes_is_stored_capped_and_redacted() {
    let folder = folder();
    let param = format!("param={SECRET}");
    let out = blocking(move || {
        // The host's per-string bounds would refuse the answer outright; lift them so the
        // summary reaches the check.
        let set = set(
            &folder,
            "http://127.0.0.1:9",
            &[
                "mode=huge-summary",
                &param,
                "host.max-string-bytes=64MiB",
                "host.max-answer-bytes=64MiB",
            ],
        );
        (set, folder)
    })
    .await;
    let (set, folder) = out;
    let stdout = text(&set.stdout);
    assert!(set.status.success(), "{stdout}\n{}", text(&set.stderr));
    let line = stdout
        .lines()
        .find(|l| l.starts_with("check ok: "))
        .unwrap();
    assert!(line.len() < 4200, "{} bytes printed", line.len());
    assert!(
        line.starts_with("check ok: begin [REDACTED] yyyy"),
        "{line}"
    );
    assert!(
        line.ends_with(" bytes more)"),
        "{}",
        &line[line.len() - 60..]
    );
    assert!(!stdout.contains(SECRET));

    let shown = ok(&folder, &["instances", "show", "fx", "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    let summary = shown["last_check"]["summary"].as_str().unwrap();
    assert!(summary.len() < 4200, "{} bytes stored", summary.len());
    assert!(summary.starts_with("begin [REDACTED] yyy"));
    assert!(!summary.contains(SECRET));
    // (The database holds the secret only as the `param` setting the fixture guessed it from.)
    let stored = database_bytes(&folder.data);
    assert!(
        stored.len() < 2 << 20,
        "the database holds {} bytes",
        stored.len()
    );
}

/// ConnectWise's `clientId` header carries a non-secret setting: with `client-id=x` it is
/// scrubbed where it stands alone, never out of a word; the keys are scrubbed everywhere.
#[tokio::test]
async fn the_redaction_rule_leaves_maximum_intact_with_client_id_x() {
    let cw = cw::start().await;
    let context = cw::context_with(&cw, &[("client-id", Some("x"))]);
    let redactor = context.redactor();
    assert!(!context.secrets().contains(&"x".to_string()));
    assert_eq!(
        redactor.redact("the maximum is x, clientId=x; sandbox-private"),
        "the maximum is [REDACTED], clientId=[REDACTED]; [REDACTED]"
    );
    let basic =
        base64::engine::general_purpose::STANDARD.encode("sandbox+sandbox-public:sandbox-private");
    assert_eq!(
        redactor.redact(&format!("Basic {basic}")),
        "Basic [REDACTED]"
    );
    assert_eq!(
        redactor.redact("sandbox+sandbox-public:sandbox-private"),
        "[REDACTED]"
    );
}

/// A secret the remote splits across two chunks of a chunked body (sent apart in time) is still
/// caught: the host scrubs the whole (size-capped) body, not each chunk.
#[tokio::test]
async fn a_secret_split_across_chunks_is_still_scrubbed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let (first, second) = SECRET.split_at(7);
                let chunk = |text: String| format!("{:x}\r\n{text}\r\n", text.len());
                let mut out = String::from("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
                out.push_str(&chunk(format!("maximum {first}")));
                stream.write_all(out.as_bytes()).await.unwrap();
                stream.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                let rest = chunk(format!("{second} end")) + "0\r\n\r\n";
                stream.write_all(rest.as_bytes()).await.unwrap();
            });
        }
    });
    let runtime = common::runtime();
    let connector = common::fixture(&runtime).await;
    let target = format!("{url}/split");
    let settings = [
        ("base-url", url.as_str()),
        ("api-key", SECRET),
        ("mode", "echo"),
        ("param", target.as_str()),
    ];
    let context = common::context(&connector, &settings, common::private_ok());
    let summary = connector.activate(&context).await.unwrap().unwrap();
    assert!(
        summary.ends_with("body [maximum [REDACTED] end]"),
        "{summary}"
    );
}
