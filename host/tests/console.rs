//! The operator console in headless Chromium, through the real `bss-host serve`, the bundled
//! ConnectWise component, the real SQLite file and the sandbox over loopback: the BSS
//! documentation's whole flow (activate with a duplicate name refused then a good one, Edit
//! Integration and Save, settings with one wrong value shown beside its field then right ones,
//! two lookups mapped from the remote's dropdowns, sync options, an accounts file uploaded,
//! dry-run, run, the run's records); a viewer who can read but finds no control to change a
//! setting (and the API answers 403); forms without the session's CSRF token refused; sessions
//! ended by sign-out and by revoking their token; and no secret in any page. Every test saves a
//! screenshot of its last page under `target/test-artifacts/console/`.

mod browser;
mod common;
mod cw;

use browser::Browser;
use common::cli::{blocking, ok};
use common::records::{account, write_ndjson};
use cw_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

/// A sandbox, a data folder and `serve` on it, with the console's address.
struct Console {
    sandbox: Sandbox,
    dir: tempfile::TempDir,
    served: cw::Served,
    root: String,
}

impl Console {
    async fn start() -> Console {
        let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        Console::serve(sandbox, dir)
    }

    /// `serve` on a data folder with ConnectWise instance `cw` set up from the command line.
    async fn with_instance(sync_options: &'static [&'static str]) -> Console {
        let setup = cw::setup(common::cli::HOST, sync_options).await;
        Console::serve(setup.sandbox, setup.dir)
    }

    fn serve(sandbox: Sandbox, dir: tempfile::TempDir) -> Console {
        let served = cw::serve(common::cli::command(&dir.path().join("data"), &[]));
        let root = served
            .base
            .strip_suffix("/api/v1")
            .expect("the API is under /api/v1")
            .to_string();
        Console {
            sandbox,
            dir,
            served,
            root,
        }
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.root)
    }

    /// Makes a token with `role` from the command line; the token.
    async fn token(&self, name: &str, role: &str) -> String {
        let data = self.data();
        let (name, role) = (name.to_string(), role.to_string());
        let out = blocking(move || ok(&data, &["tokens", "create", &name, "--role", &role])).await;
        out.lines()
            .map(str::trim)
            .find(|l| l.len() >= 40 && !l.contains(' '))
            .unwrap_or_else(|| panic!("no token in: {out}"))
            .to_string()
    }

    /// Activates ConnectWise instance `acme` through the API (no settings).
    async fn activate_acme(&self) {
        let body = json!({ "connector": "connectwise", "name": "acme" });
        let (status, answer) = self
            .api("POST", "/instances", &self.served.token, Some(body))
            .await;
        assert_eq!(status, 201, "{answer}");
    }

    /// An API call with `token`: the status and the JSON body.
    async fn api(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let client = cw::api_client();
        let url = format!("{}{path}", self.served.base);
        let mut request = client
            .request(method.parse().unwrap(), url)
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// Pages visited, kept to check that no secret is in any of them.
#[derive(Default)]
struct Seen(Vec<(String, String)>);

impl Seen {
    async fn page(&mut self, browser: &Browser) {
        let url = browser.current_url().await;
        let html = browser.source().await;
        unlabelled_controls(browser, &url).await;
        self.0.push((url, html));
    }

    fn assert_never_contains(&self, secret: &str) {
        for (url, html) in &self.0 {
            assert!(!html.contains(secret), "the secret is in the HTML of {url}");
        }
    }
}

/// Every visible form control has a label (its own `<label for>` or an `aria-label`).
async fn unlabelled_controls(browser: &Browser, url: &str) {
    let missing = browser
        .execute(
            "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
                .map(e => e.name || e.id || e.outerHTML)",
        )
        .await;
    assert_eq!(missing, json!([]), "controls without a label on {url}");
}

async fn sign_in(browser: &Browser, console: &Console, token: &str) {
    browser.goto(&console.url("/")).await;
    browser.wait_for("#token").await;
    browser.fill("#token", token).await;
    browser
        .submit_and_wait("main form button[type=submit]")
        .await;
    assert!(
        browser.current_url().await.ends_with("/setup"),
        "signed in, the console opens Systems Setup"
    );
}

/// The field's error shown beside it (`#KEY-error`).
async fn field_error(browser: &Browser, key: &str) -> String {
    browser.text(&format!("[id='{key}-error']")).await
}

/// Waits (up to 5 s) until the element with id `id` has text; the text.
async fn wait_for_text(browser: &Browser, id: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let text = browser
            .execute(&format!(
                "return document.getElementById('{id}').textContent"
            ))
            .await;
        let text = text.as_str().unwrap_or_default().trim().to_string();
        if !text.is_empty() || std::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// On the runs page: uploads `records` of `entity` as a file, dry-runs and runs it; the job's
/// summary.
async fn push_file(
    browser: &Browser,
    dir: &std::path::Path,
    entity: &str,
    records: &[Value],
) -> String {
    let file = dir.join(format!("{entity}-{}.ndjson", records.len()));
    write_ndjson(&file, records);
    browser.wait_for("#push-file").await;
    browser.select_value("#push-entity", entity).await;
    browser.upload("#push-file", &file).await;
    browser
        .submit_and_wait("#push-title ~ form button[type=submit]")
        .await;
    browser
        .submit_and_wait("form[action$='/push/run'] button[type=submit]")
        .await;
    browser.wait_for("#job-summary").await;
    browser.text("#job-summary").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_syncs_and_retries_but_does_not_set_up() {
    let console = Console::with_instance(&[
        "account:push:create,update",
        "contact:push:create,update",
        "account:pull:create,update",
    ])
    .await;
    let operator = console.token("night-shift", "operator").await;
    let browser = Browser::start("operator").await;
    sign_in(&browser, &console, &operator).await;
    browser.goto(&console.url("/instances/cw/settings")).await;
    browser.wait_for("dl.readonly").await;
    assert!(
        !browser.exists("form.settings").await,
        "settings are for admins"
    );
    browser.goto(&console.url("/instances/cw/runs")).await;

    // A contact whose account is not in ConnectWise yet waits in the retry queue.
    let summary = push_file(
        &browser,
        console.dir.path(),
        "contact",
        &[common::records::contact(1, Some("A0009"))],
    )
    .await;
    assert!(summary.contains("1 queued"), "{summary}");
    browser.goto(&console.url("/instances/cw/runs")).await;
    let waiting = browser
        .texts("#queue-title ~ .scroll tbody td:nth-child(2)")
        .await;
    assert_eq!(waiting, vec!["K0001"]);
    // Retry now: it is tried again, and still waits for its account.
    browser
        .submit_and_wait("form[action$='/retry'] button[type=submit]")
        .await;
    browser.wait_for("#job-summary").await;
    let retried = browser.text("#job-summary").await;
    assert!(retried.contains("1 queued records claimed"), "{retried}");
    // Pushing the account sends the contact that waited for it.
    browser.goto(&console.url("/instances/cw/runs")).await;
    let summary = push_file(&browser, console.dir.path(), "account", &[account(9)]).await;
    assert!(summary.contains("1 created"), "{summary}");
    browser.goto(&console.url("/instances/cw/runs")).await;
    assert!(browser.text("#queue-title ~ p").await.starts_with("Empty"));
    let contacts = console.sandbox.records("company/contacts");
    assert_eq!(
        contacts
            .iter()
            .filter(|c| c["firstName"] == "First1")
            .count(),
        1,
        "the contact once in ConnectWise"
    );
    let triggers = browser.texts("table.runs tbody td:nth-child(3)").await;
    assert!(triggers.iter().all(|t| t == "console"), "{triggers:?}");
    browser.screenshot("runs").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documentation_flow_in_a_real_browser() {
    // A file in the plugins folder that is not a component: listed as refused, with the reason.
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("data").join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::write(plugins.join("broken.wasm"), b"not a component").unwrap();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let console = Console::serve(sandbox, dir);
    let sandbox = &console.sandbox;
    // A name that is taken already.
    console.activate_acme().await;

    let browser = Browser::start("documentation-flow").await;
    let mut seen = Seen::default();
    sign_in(&browser, &console, &console.served.token).await;
    seen.page(&browser).await;

    // Systems Setup → Activate → a unique name.
    assert!(
        browser
            .text("#connector-connectwise")
            .await
            .contains("connectwise")
    );
    browser.click("a[href='/setup/connectwise/activate']").await;
    browser.wait_for("#name").await;
    browser.fill("#name", "acme").await;
    // Checked as it is typed, before the form is sent.
    let inline = wait_for_text(&browser, "name-error").await;
    assert!(inline.contains("exists already"), "inline check: {inline}");
    browser
        .submit_and_wait("main form button[type=submit]")
        .await;
    let refused = field_error(&browser, "name").await;
    assert!(
        refused.contains("exists already"),
        "duplicate refused: {refused}"
    );
    seen.page(&browser).await;
    browser.fill("#name", "acme-cw").await;
    browser
        .submit_and_wait("main form button[type=submit]")
        .await;

    // Edit Integration → Save.
    assert_eq!(browser.text("h1").await, "Edit Integration");
    assert_eq!(browser.text("#instance-name").await, "acme-cw");
    browser.fill("#installation", "Acme Corporation").await;
    browser.fill("#address", &sandbox.base_url()).await;
    seen.page(&browser).await;
    browser
        .submit_and_wait("main form button[type=submit]")
        .await;
    assert!(
        browser
            .current_url()
            .await
            .contains("/instances/acme-cw/settings")
    );
    assert!(browser.text(".notice").await.contains("created"));

    // Settings: one wrong value (an unknown company), its error beside its field.
    browser.fill("#setting-company-id", "no-such-company").await;
    browser
        .fill("#setting-public-key", sandbox.public_key())
        .await;
    browser
        .fill("#setting-private-key", sandbox.private_key())
        .await;
    browser.fill("#setting-client-id", cw::CLIENT_ID).await;
    browser.click("details summary").await;
    browser
        .fill("[id='setting-host.allow-private-network']", "on")
        .await;
    browser
        .fill("[id='setting-host.requests-per-minute']", "100000")
        .await;
    seen.page(&browser).await;
    browser
        .submit_and_wait("form.settings button[type=submit]")
        .await;
    let wrong = field_error(&browser, "setting-company-id").await;
    assert!(
        wrong.contains("no-such-company"),
        "the check's error beside company-id: {wrong}"
    );
    assert!(browser.exists("#field-company-id.invalid").await);
    browser.screenshot("settings-error").await;
    seen.page(&browser).await;

    // Then the right one: the check passes, and id-valued settings offer the remote's choices.
    browser
        .fill("#setting-company-id", sandbox.company_id())
        .await;
    browser
        .submit_and_wait("form.settings button[type=submit]")
        .await;
    let notice = browser.text(".notice").await;
    assert!(notice.contains("check passed"), "{notice}");
    assert!(!browser.exists("#setting-company-id-error").await);
    assert!(
        browser
            .exists("select#setting-import-account-id option[value='4']")
            .await,
        "the company statuses come from the remote"
    );
    browser
        .select_value("#setting-import-account-id", "4")
        .await;
    browser
        .submit_and_wait("form.settings button[type=submit]")
        .await;
    assert!(browser.text(".notice").await.contains("check passed"));
    seen.page(&browser).await;

    // Two lookups from the remote's dropdowns.
    browser.click("nav.tabs a[href$='/lookups']").await;
    browser.wait_for("#lookup-account-type").await;
    seen.page(&browser).await;
    for (lookup, bss, remote) in [("account-type", "Customer", "1"), ("currency", "USD", "1")] {
        let form = format!("#lookup-{lookup} form");
        browser
            .fill(&format!("{form} input[name='bss.new0']"), bss)
            .await;
        browser
            .select_value(&format!("{form} select[name='remote.new0']"), remote)
            .await;
        browser
            .submit_and_wait(&format!("{form} button[type=submit]"))
            .await;
        assert!(browser.text(".notice").await.contains("Saved"));
    }
    let mapped = browser
        .texts("#lookup-account-type tbody td:first-child")
        .await;
    assert!(mapped.iter().any(|t| t == "Customer"), "{mapped:?}");
    // A value the remote does not offer is refused with the reason.
    browser
        .execute(
            "const s = document.querySelector(\"#lookup-currency select[name='remote.new0']\");
             const o = document.createElement('option'); o.value = '999'; o.textContent = 'forged';
             s.appendChild(o); s.value = '999';
             document.querySelector(\"#lookup-currency input[name='bss.new0']\").value = 'EUR';",
        )
        .await;
    browser
        .submit_and_wait("#lookup-currency form button[type=submit]")
        .await;
    let refusal = browser.text("#lookup-currency .error").await;
    assert!(refusal.contains("not offered"), "{refusal}");
    seen.page(&browser).await;

    // Sync options: account push create and update; what ConnectWise cannot do is disabled.
    browser.click("nav.tabs a[href$='/sync-options']").await;
    browser.wait_for("table.options").await;
    assert!(
        browser
            .exists("input[id='product:pull:create'][disabled]")
            .await,
        "product pull is not offered by the connector"
    );
    assert!(
        browser
            .text("[id='product:pull:create-why']")
            .await
            .contains("does not pull")
    );
    browser.click("input[id='account:push:create']").await;
    browser.click("input[id='account:push:update']").await;
    browser.click("input[id='account:pull:create']").await;
    browser.click("input[id='account:pull:update']").await;
    seen.page(&browser).await;
    browser
        .submit_and_wait("main form button[type=submit]")
        .await;
    assert!(
        browser
            .exists("input[id='account:push:create']:checked")
            .await
    );

    // Push a file: dry run, then run, then the run's records.
    let file = console.dir.path().join("accounts.ndjson");
    let accounts: Vec<Value> = (1..=5).map(account).collect();
    write_ndjson(&file, &accounts);
    browser.click("nav.tabs a[href$='/runs']").await;
    browser.wait_for("#push-file").await;
    seen.page(&browser).await;
    browser.select_value("#push-entity", "account").await;
    browser.upload("#push-file", &file).await;
    browser
        .submit_and_wait("#push-title ~ form button[type=submit]")
        .await;
    let outcomes = browser.texts("#review-items tbody td:nth-child(2)").await;
    assert_eq!(outcomes, vec!["would-create"; 5], "the dry run");
    assert!(
        sandbox
            .records("company/companies")
            .iter()
            .all(|c| c["identifier"] != "A0001")
    );
    seen.page(&browser).await;
    let upload = browser
        .execute("return document.querySelector(\"input[name=upload]\").value")
        .await;
    browser
        .submit_and_wait("form[action$='/push/run'] button[type=submit]")
        .await;
    browser.wait_for("#job-summary").await;
    let summary = browser.text("#job-summary").await;
    assert!(summary.contains("5 created"), "{summary}");
    // The reviewed file runs once: posting its run again is refused.
    browser
        .execute(&format!(
            "const f = document.createElement('form'); f.method = 'post';
             f.action = '/instances/acme-cw/push/run';
             for (const [k, v] of [['csrf', document.querySelector('input[name=csrf]').value], ['upload', {upload}]]) {{
               const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
             }}
             document.body.appendChild(f); f.submit();"
        ))
        .await;
    browser.wait_for(".error").await;
    assert!(browser.text(".error").await.contains("run already"));
    browser.goto(&console.url("/instances/acme-cw/runs")).await;
    browser.click("table.runs tbody tr:first-child a").await;
    browser.wait_for("#run-items").await;
    let outcomes = browser.texts("#run-items tbody td:nth-child(3)").await;
    assert_eq!(outcomes, vec!["created"; 5], "the run's records");
    let companies = sandbox.records("company/companies");
    for i in 1..=5 {
        let code = format!("A{i:04}");
        assert_eq!(
            companies
                .iter()
                .filter(|c| c["identifier"] == code.as_str())
                .count(),
            1,
            "{code} once in ConnectWise"
        );
    }
    // Filtered to one outcome.
    browser.select_value("#outcome", "created").await;
    browser
        .submit_and_wait(".inline-form button[type=submit]")
        .await;
    assert_eq!(browser.texts("#run-items tbody tr").await.len(), 5);
    seen.page(&browser).await;
    browser.screenshot("run-records").await;

    // Pull now: the changes go to the change feed, shown with the schedules.
    browser.click(".crumbs a[href$='/runs']").await;
    browser.wait_for("#pull-entity").await;
    browser.select_value("#pull-entity", "account").await;
    browser
        .submit_and_wait("#pull-title ~ form button[type=submit]")
        .await;
    browser.wait_for("#job-summary").await;
    let pulled = browser.text("#job-summary").await;
    assert!(pulled.contains("records delivered"), "{pulled}");
    assert_eq!(browser.text("#job-state .status").await, "done");
    seen.page(&browser).await;
    browser.click("nav.tabs a[href$='/schedules']").await;
    browser.wait_for("#feed-title").await;
    // A schedule: a wrong cadence is refused beside its field, then a right one is listed.
    browser.fill("#target", "account:pull").await;
    browser.fill("#cadence", "every fortnight").await;
    browser
        .submit_and_wait("form[action$='/schedules'] button[type=submit]")
        .await;
    assert!(!field_error(&browser, "cadence").await.is_empty());
    browser.fill("#cadence", "every 15m").await;
    browser
        .submit_and_wait("form[action$='/schedules'] button[type=submit]")
        .await;
    let listed = browser
        .texts("#schedules-title ~ .scroll tbody td:first-child")
        .await;
    assert_eq!(listed, vec!["account:pull"]);
    seen.page(&browser).await;
    browser.click("header nav a[href='/health']").await;
    browser.wait_for("#behind").await;
    assert!(browser.text("h1").await.starts_with("Health"));
    seen.page(&browser).await;

    // Enabled Connectors lists both instances with their status; at phone width too.
    browser.click("header nav a[href='/instances']").await;
    browser.wait_for("table").await;
    let statuses = browser.texts("td .status").await;
    assert!(statuses.contains(&"enabled".to_string()), "{statuses:?}");
    assert!(
        statuses.contains(&"needs settings".to_string()),
        "{statuses:?}"
    );
    seen.page(&browser).await;
    browser.set_viewport(390, 844).await;
    let overflow = browser
        .execute("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        .await;
    assert_eq!(overflow, json!(true), "the page fits a phone's width");
    browser.screenshot("phone-width").await;

    seen.assert_never_contains(sandbox.private_key());
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_reads_settings_but_cannot_change_them() {
    let console = Console::start().await;
    let admin = console.served.token.clone();
    console.activate_acme().await;
    let (status, _) = console
        .api(
            "PATCH",
            "/instances/acme/settings",
            &admin,
            Some(json!({ "company-id": "sandbox", "private-key": "viewer-must-not-see" })),
        )
        .await;
    assert_eq!(status, 200);
    let viewer = console.token("dashboard", "viewer").await;

    let browser = Browser::start("viewer").await;
    sign_in(&browser, &console, &viewer).await;
    assert!(
        !browser
            .exists("a[href='/setup/connectwise/activate']")
            .await
    );
    browser.goto(&console.url("/instances/acme/settings")).await;
    browser.wait_for("dl.readonly").await;
    assert!(
        !browser.exists("form.settings").await,
        "no settings form for a viewer"
    );
    assert!(!browser.exists("input#setting-company-id").await);
    let shown = browser.texts("dl.readonly dd").await;
    assert!(shown.contains(&"sandbox".to_string()), "{shown:?}");
    assert!(shown.contains(&"set (hidden)".to_string()), "{shown:?}");
    let html = browser.source().await;
    assert!(!html.contains("viewer-must-not-see"));
    // No control on the other pages either.
    browser.goto(&console.url("/instances")).await;
    assert!(!browser.exists("form[action$='/disable']").await);
    browser
        .goto(&console.url("/instances/acme/sync-options"))
        .await;
    assert!(!browser.exists("main form button[type=submit]").await);
    assert!(
        browser
            .exists("input[id='account:push:create'][disabled]")
            .await
    );
    // The form's address, posted anyway, is refused for the role.
    browser
        .goto(&console.url("/setup/connectwise/activate"))
        .await;
    assert!(browser.text("h1").await.contains("Not allowed"));
    assert!(browser.text("[role=alert]").await.contains("viewer"));
    browser.screenshot("viewer-refused").await;
    browser.goto(&console.url("/tokens")).await;
    assert!(browser.text("h1").await.contains("Not allowed"));
    assert!(!browser.exists("header a[href='/tokens']").await);
    // And the API says 403.
    let (status, body) = console
        .api(
            "PATCH",
            "/instances/acme/settings",
            &viewer,
            Some(json!({ "company-id": "changed" })),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (_, settings) = console
        .api("GET", "/instances/acme/settings", &admin, None)
        .await;
    assert!(settings.to_string().contains("\"sandbox\""));
    browser.close().await;
}

/// A cookie-keeping client of the console, without a browser, to post what a browser would not.
struct Session {
    client: reqwest::Client,
    root: String,
    cookies: Vec<(String, String)>,
}

impl Session {
    fn new(root: &str) -> Session {
        let _ = cw::api_client();
        Session {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            root: root.to_string(),
            cookies: Vec::new(),
        }
    }

    fn keep(&mut self, response: &reqwest::Response) -> Vec<String> {
        let mut set = Vec::new();
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap().to_string();
            let (pair, _) = text.split_once(';').unwrap_or((&text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() {
                self.cookies.push((name.to_string(), value.to_string()));
            }
            set.push(text);
        }
        set
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn get(&mut self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.root))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&response);
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, String, Vec<String>) {
        let response = self
            .client
            .post(format!("{}{path}", self.root))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish(),
            )
            .send()
            .await
            .unwrap();
        let set = self.keep(&response);
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string())
            .unwrap_or_default();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, if text.is_empty() { location } else { text }, set)
    }
}

fn hidden_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in the page"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// The value of the input with id `id`.
fn hidden_value_of(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\" readonly value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {id} in the page"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

async fn signed_in(console: &Console, token: &str) -> Session {
    let mut session = Session::new(&console.root);
    let (_, page) = session.get("/sign-in").await;
    let nonce = hidden_value(&page, "nonce");
    let (status, to, cookies) = session
        .post(
            "/sign-in",
            &[("nonce", &nonce), ("next", "/instances"), ("token", token)],
        )
        .await;
    assert_eq!(status, 303, "{to}");
    assert_eq!(to, "/instances");
    let cookie = cookies
        .iter()
        .find(|c| c.starts_with("bss_session="))
        .expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_need_the_session_csrf_token_and_sessions_end() {
    let console = Console::start().await;
    let admin = console.served.token.clone();
    console.activate_acme().await;

    // Without a session, pages lead to the sign-in page and posts change nothing.
    let mut anonymous = Session::new(&console.root);
    let (status, to, _) = anonymous
        .post("/instances/acme/disable", &[("csrf", "x")])
        .await;
    assert_eq!(
        (status, to.as_str()),
        (303, "/sign-in?next=%2Finstances%2Facme%2Fdisable")
    );
    // A wrong token does not sign in; a sign-in post without the form's nonce is refused.
    let (_, page) = anonymous.get("/sign-in").await;
    let nonce = hidden_value(&page, "nonce");
    let (status, _, _) = anonymous
        .post("/sign-in", &[("nonce", &nonce), ("token", "not-a-token")])
        .await;
    assert_eq!(status, 401);
    let (status, _, _) = anonymous
        .post("/sign-in", &[("nonce", "forged"), ("token", &admin)])
        .await;
    assert_eq!(status, 403);

    let mut session = signed_in(&console, &admin).await;
    // A form posted without the CSRF token, or with another one, is refused; nothing changes.
    for form in [vec![], vec![("csrf", "not-the-token")]] {
        let (status, page, _) = session.post("/instances/acme/disable", &form).await;
        assert_eq!(status, 403, "{page}");
        assert!(page.contains("security token"), "{page}");
    }
    let (_, view) = console.api("GET", "/instances/acme", &admin, None).await;
    assert_eq!(view["instance"]["enabled"], json!(true), "still enabled");
    // With it, the form works.
    let (_, page) = session.get("/instances").await;
    let csrf = hidden_value(&page, "csrf");
    let (status, to, _) = session
        .post("/instances/acme/disable", &[("csrf", &csrf)])
        .await;
    assert_eq!((status, to.as_str()), (303, "/instances?done=disabled"));
    let (_, view) = console.api("GET", "/instances/acme", &admin, None).await;
    assert_eq!(view["instance"]["enabled"], json!(false));

    // In a real browser: the Enable form with its CSRF field taken out is refused.
    let browser = Browser::start("csrf").await;
    sign_in(&browser, &console, &admin).await;
    browser.goto(&console.url("/instances")).await;
    browser
        .execute("document.querySelector(\"form[action$='/enable'] input[name=csrf]\").remove()")
        .await;
    browser
        .submit_and_wait("form[action$='/enable'] button[type=submit]")
        .await;
    assert_eq!(browser.text("h1").await, "Form refused");
    browser.screenshot("refused").await;
    browser.close().await;
    let (_, view) = console.api("GET", "/instances/acme", &admin, None).await;
    assert_eq!(view["instance"]["enabled"], json!(false), "still disabled");

    // Sign-out ends the session: its cookie no longer opens a page.
    let kept = session.cookies.clone();
    let (status, to, _) = session.post("/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!((status, to.as_str()), (303, "/sign-in"));
    session.cookies = kept;
    let (status, _) = session.get("/instances").await;
    assert_eq!(status, 303, "a signed-out session is over");

    // A secret is cleared with its box; a pin is set and refused for a version that is not loaded;
    // deleting needs the name typed.
    let mut session = signed_in(&console, &admin).await;
    let (status, _) = console
        .api(
            "PATCH",
            "/instances/acme/settings",
            &admin,
            Some(json!({ "private-key": "to-be-cleared" })),
        )
        .await;
    assert_eq!(status, 200);
    let (_, page) = session.get("/instances/acme/settings").await;
    assert!(page.contains("name=\"clear:private-key\""));
    assert!(!page.contains("to-be-cleared"));
    let csrf = hidden_value(&page, "csrf");
    let (status, page, _) = session
        .post(
            "/instances/acme/settings",
            &[("csrf", &csrf), ("clear:private-key", "on")],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let (_, settings) = console
        .api("GET", "/instances/acme/settings", &admin, None)
        .await;
    let key = settings
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "private-key")
        .unwrap();
    assert_eq!(key["origin"], "unset", "{settings}");
    let (status, to, _) = session
        .post(
            "/instances/acme/pin",
            &[("csrf", &csrf), ("version", "0.2.0")],
        )
        .await;
    assert_eq!(
        (status, to.as_str()),
        (303, "/instances/acme/settings?done=pinned")
    );
    let (_, view) = console.api("GET", "/instances/acme", &admin, None).await;
    assert_eq!(view["instance"]["version_req"], "=0.2.0");
    let (status, page, _) = session
        .post(
            "/instances/acme/pin",
            &[("csrf", &csrf), ("version", "9.9.9")],
        )
        .await;
    assert_eq!(status, 404, "{page}");
    let (status, page, _) = session
        .post(
            "/instances/acme/delete",
            &[("csrf", &csrf), ("confirm", "acm")],
        )
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("nothing was deleted"), "{page}");
    let (status, to, _) = session
        .post(
            "/instances/acme/delete",
            &[("csrf", &csrf), ("confirm", "acme")],
        )
        .await;
    assert_eq!((status, to.as_str()), (303, "/instances?done=deleted"));
    assert_eq!(
        console.api("GET", "/instances/acme", &admin, None).await.0,
        404
    );

    // Admins make and revoke tokens on the tokens page; the new token is shown once and works.
    let (status, page) = session.get("/tokens").await;
    assert_eq!(status, 200);
    let csrf = hidden_value(&page, "csrf");
    let (status, page, _) = session
        .post(
            "/tokens",
            &[("csrf", &csrf), ("name", "kiosk"), ("role", "viewer")],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let made = hidden_value_of(&page, "made-token");
    assert_eq!(console.api("GET", "/instances", &made, None).await.0, 200);
    let (status, page, _) = session
        .post(
            "/tokens",
            &[("csrf", &csrf), ("name", "kiosk"), ("role", "viewer")],
        )
        .await;
    assert_eq!(status, 400, "a name is never reused");
    assert!(page.contains("choose another name"), "{page}");
    let (_, page) = session.get("/tokens").await;
    assert!(!page.contains(&made), "a token is shown once");
    let (status, to, _) = session
        .post("/tokens/kiosk/revoke", &[("csrf", &csrf)])
        .await;
    assert_eq!((status, to.as_str()), (303, "/tokens?done=revoked"));
    assert_eq!(console.api("GET", "/instances", &made, None).await.0, 401);

    // Revoking a token ends its sessions at once.
    let operator = console.token("night-shift", "operator").await;
    let mut session = signed_in(&console, &operator).await;
    assert_eq!(session.get("/instances").await.0, 200);
    let data = console.data();
    blocking(move || ok(&data, &["tokens", "revoke", "night-shift"])).await;
    assert_eq!(session.get("/instances").await.0, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_roll_back_restore_and_pin_from_systems_setup() {
    use common::fixture_variants::{Variant, fixture_variant};
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("data").join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(env!("BSS_FIXTURE_WASM"), plugins.join("fixture-0.1.0.wasm")).unwrap();
    std::fs::copy(
        fixture_variant(Variant::V2),
        plugins.join("fixture-0.2.0.wasm"),
    )
    .unwrap();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let console = Console::serve(sandbox, dir);
    let browser = Browser::start("versions").await;
    sign_in(&browser, &console, &console.served.token).await;
    let card = "section[aria-labelledby='connector-fixture']";
    let state = |version: &'static str| {
        let browser = &browser;
        async move {
            browser
                .texts(&format!("{card} tbody tr"))
                .await
                .into_iter()
                .find(|row| row.starts_with(version))
                .unwrap_or_else(|| panic!("no row for {version}"))
        }
    };
    assert!(state("0.2.0").await.contains("serving new instances"));
    assert!(state("0.1.0").await.contains("older"));

    // Roll back the newest, then restore it.
    browser
        .submit_and_wait(&format!("{card} form[action$='/rollback'] button"))
        .await;
    assert!(browser.text(".notice").await.contains("rolled back"));
    assert!(state("0.2.0").await.contains("rolled back"));
    assert!(state("0.1.0").await.contains("serving new instances"));
    browser
        .submit_and_wait(&format!("{card} form[action$='/restore'] button"))
        .await;
    assert!(state("0.2.0").await.contains("serving new instances"));

    // Activate pinned to 0.1.0, then let it follow the newest.
    browser.click("a[href='/setup/fixture/activate']").await;
    browser.wait_for("#name").await;
    browser.fill("#name", "pinned").await;
    browser
        .submit_and_wait("main form button[type=submit]")
        .await;
    browser.select_value("#version", "0.1.0").await;
    browser.fill("#address", "https://fixture.example").await;
    browser
        .submit_and_wait("main form button[type=submit]")
        .await;
    assert!(browser.text("p.meta").await.starts_with("fixture 0.1.0"));
    assert!(
        browser
            .exists("#pin-version option[value='0.1.0'][selected]")
            .await
    );
    browser.select_value("#pin-version", "").await;
    browser
        .submit_and_wait("form.pin button[type=submit]")
        .await;
    assert!(browser.text(".notice").await.contains("version choice"));
    assert!(browser.text("p.meta").await.starts_with("fixture 0.2.0"));
    browser.screenshot("pinned").await;
    browser.close().await;
}
