//! Instances through the real `bss-host` binary and its admin API, on a real SQLite file:
//! activation, settings of every kind, sealed secrets, sync options, lookups against the
//! ConnectWise sandbox, persistence across runs, and the API's token.

mod common;
mod cw;

use std::path::Path;

use common::cli::{BIN, Host, contains, database_bytes};
use cw_sandbox::{Sandbox, SandboxConfig};

const SECRET: &str = "sandbox-private";
/// The binary, logging everything (so a leak into any log line is seen).
const HOST: Host = Host {
    log: "trace",
    ..common::cli::HOST
};

/// Standard output of a command that must succeed and show the secret nowhere.
fn ok(data: &Path, args: &[&str]) -> String {
    let out = HOST.succeeds(data, args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !stderr.contains(SECRET) && !stdout.contains(SECRET),
        "the secret leaked into output of {args:?}"
    );
    stdout
}

/// Standard error of a command that must fail and show the secret nowhere.
fn fails(data: &Path, args: &[&str]) -> String {
    let stderr = HOST.fails(data, args);
    assert!(
        !stderr.contains(SECRET),
        "the secret leaked into errors of {args:?}"
    );
    stderr
}

fn settings_of(sandbox: &Sandbox) -> Vec<String> {
    vec![
        format!("url={}", sandbox.base_url()),
        "company-id=sandbox".into(),
        "public-key=sandbox-public".into(),
        format!("private-key={SECRET}"),
        format!("client-id={}", cw::CLIENT_ID),
        "host.allow-private-network=on".into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_are_managed_through_the_command() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.as_path();
    let sandbox_settings = settings_of(&sandbox);

    tokio::task::spawn_blocking({
        let data = data.to_path_buf();
        move || {
            let data = data.as_path();
            assert!(ok(data, &["connectors", "list"]).contains("connectwise"));
            ok(data, &["activate", "connectwise", "--name", "acme", "--installation", "Acme PSA"]);
            let err = fails(data, &["activate", "connectwise", "--name", "acme"]);
            assert!(err.contains("an instance named \"acme\" already exists"), "{err}");
            let err = fails(data, &["activate", "nosuch", "--name", "x"]);
            assert!(err.contains("no connector named \"nosuch\""), "{err}");

            // Every kind is validated, with the key named; nothing of a refused batch is stored.
            for (pair, expected) in [
                ("import-account-id=four", "import-account-id: \"four\" is not a whole number"),
                ("product-billable-option=Maybe", "product-billable-option: \"Maybe\" is not one of Billable, DoNotBill, NoCharge"),
                ("url=ftp://x", "url:"),
                ("host.call-deadline=soon", "host.call-deadline:"),
                ("colour=blue", "colour: not a setting of connectwise"),
                ("novalue", "novalue: expected KEY=VALUE"),
            ] {
                let err = fails(data, &["settings", "set", "acme", "company-id=first", pair]);
                assert!(err.contains(expected), "{pair}: {err}");
            }
            assert!(!ok(data, &["settings", "show", "acme"]).contains("first"), "a refused batch stored nothing");

            let mut args = vec!["settings", "set", "acme"];
            args.extend(sandbox_settings.iter().map(String::as_str));
            args.extend(["import-account-id=4", "product-billable-option=DoNotBill", "host.call-deadline=20s"]);
            let out = ok(data, &args);
            assert!(out.contains("check ok: Connected to ConnectWise company"), "{out}");
            let shown = ok(data, &["settings", "show", "acme"]);
            assert!(shown.contains("private-key") && shown.contains("********"), "{shown}");
            assert!(shown.contains("DoNotBill") && shown.contains("host.call-deadline"), "{shown}");
            let json = ok(data, &["settings", "show", "acme", "--json"]);
            assert!(json.contains("\"origin\": \"default\""), "{json}");

            // The secret is sealed: neither it nor its base64 is in the database, and two
            // instances with the same secret hold different ciphertexts.
            ok(data, &["activate", "connectwise", "--name", "beta"]);
            ok(data, &["settings", "set", "beta", &format!("private-key={SECRET}")]);
            let bytes = database_bytes(data);
            use base64::Engine as _;
            assert!(!contains(&bytes, SECRET.as_bytes()));
            assert!(!contains(&bytes, base64::engine::general_purpose::STANDARD.encode(SECRET).as_bytes()));
            let connection = rusqlite::Connection::open(data.join("bss.db")).unwrap();
            let sealed: Vec<String> = connection
                .prepare("SELECT value FROM instance_settings WHERE key = 'private-key' ORDER BY instance")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(sealed.len(), 2);
            assert_ne!(sealed[0], sealed[1]);
            assert!(sealed.iter().all(|s| s.starts_with("v1:")));
            drop(connection);

            // Sync options: only what the connector supports.
            ok(data, &["sync-options", "set", "acme", "account:push:create,update", "contact:pull:create"]);
            let err = fails(data, &["sync-options", "set", "acme", "invoice:pull:create"]);
            assert!(err.contains("does not support create for invoice:pull"), "{err}");
            // Invoices are money records: never removed.
            let err = fails(data, &["sync-options", "set", "acme", "invoice:push:delete"]);
            assert!(err.contains("does not support delete for invoice:push"), "{err}");
            let err = fails(data, &["sync-options", "set", "acme", "planet:push:create"]);
            assert!(err.contains("is not an entity"), "{err}");

            // Lookups: the choices come from ConnectWise; a value not offered is refused.
            let choices = ok(data, &["lookups", "choices", "acme", "account-type"]);
            assert!(choices.contains("Client") && choices.contains("Partner"), "{choices}");
            ok(data, &["lookups", "set", "acme", "account-type", "Customer=1", "Reseller=4"]);
            let err = fails(data, &["lookups", "set", "acme", "account-type", "Alien=99"]);
            assert!(err.contains("\"99\" is not offered by the connector"), "{err}");
            let err = fails(data, &["lookups", "choices", "acme", "flavour"]);
            assert!(err.contains("not a lookup of connectwise"), "{err}");

            // Disable keeps the instance but refuses work; enable restores it.
            ok(data, &["instances", "disable", "acme"]);
            let err = fails(data, &["lookups", "choices", "acme", "account-type"]);
            assert!(err.contains("instance \"acme\" is disabled"), "{err}");
            ok(data, &["instances", "enable", "acme"]);
        }
    })
    .await
    .unwrap();

    // A new process sees everything: the data folder is the state.
    let list = ok(data, &["instances", "list"]);
    assert!(
        list.contains("acme") && list.contains("beta") && list.contains("Acme PSA"),
        "{list}"
    );
    let lookups = ok(data, &["lookups", "show", "acme"]);
    assert!(
        lookups.contains("Customer") && lookups.contains("-> 4"),
        "{lookups}"
    );
    let options = ok(data, &["sync-options", "show", "acme"]);
    assert!(
        options.contains("account") && options.contains("create, update"),
        "{options}"
    );
    let show = ok(data, &["instances", "show", "acme"]);
    assert!(show.contains("last check    ok"), "{show}");
    let check = tokio::task::spawn_blocking({
        let data = data.to_path_buf();
        move || ok(&data, &["check", "acme"])
    })
    .await
    .unwrap();
    assert!(check.contains("check ok"), "{check}");

    // Deleting needs confirmation.
    let err = fails(data, &["instances", "delete", "beta"]);
    assert!(err.contains("--yes"), "{err}");
    ok(data, &["instances", "delete", "beta", "--yes"]);
    assert!(!ok(data, &["instances", "list"]).contains("beta"));

    // The wrong key file: a clear error, not garbage.
    use base64::Engine as _;
    let other_key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    std::fs::write(data.join("key"), format!("{other_key}\n")).unwrap();
    let err = tokio::task::spawn_blocking({
        let data = data.to_path_buf();
        move || fails(&data, &["check", "acme"])
    })
    .await
    .unwrap();
    assert!(err.contains("does not open with this key"), "{err}");
    std::fs::remove_file(data.join("key")).unwrap();
    let err = fails(data, &["instances", "list"]);
    assert!(
        err.contains("key is missing but the database holds sealed secrets"),
        "{err}"
    );
    assert!(
        !data.join("key").exists(),
        "no new key was made over the old secrets"
    );
    std::fs::write(data.join("key"), "not base64 at all\n").unwrap();
    let err = fails(data, &["instances", "list"]);
    assert!(err.contains("is not base64 of 32 bytes"), "{err}");
}

#[test]
fn a_data_folder_that_cannot_be_used_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    let err = fails(&file, &["instances", "list"]);
    assert!(
        err.contains("not-a-folder") && err.contains("could not be created"),
        "{err}"
    );

    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("bss.db"), vec![b'z'; 4096]).unwrap();
    let err = fails(&data, &["instances", "list"]);
    assert!(err.contains("bss.db could not be opened"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_needs_its_token_on_every_route_but_the_description() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = std::process::Command::new(BIN);
    server.arg("--data").arg(&data);
    let served = cw::serve(server);
    let (token, base) = (served.token.clone(), served.base.clone());
    let listed = ok(&data, &["tokens", "list", "--json"]);
    assert!(
        listed.contains("\"serve\"") && listed.contains("admin"),
        "{listed}"
    );
    assert!(!listed.contains(&token), "only the hash is kept");
    assert!(
        !contains(&database_bytes(&data), token.as_bytes()),
        "the token is nowhere in the store"
    );

    let client = cw::api_client();
    let routes = [
        ("GET", "/connectors"),
        ("GET", "/instances"),
        ("POST", "/instances"),
        ("GET", "/instances/acme"),
        ("DELETE", "/instances/acme"),
        ("POST", "/instances/acme/enable"),
        ("POST", "/instances/acme/disable"),
        ("POST", "/instances/acme/check"),
        ("GET", "/instances/acme/settings"),
        ("PATCH", "/instances/acme/settings"),
        ("GET", "/instances/acme/lookups"),
        ("PUT", "/instances/acme/lookups/currency"),
        ("GET", "/instances/acme/lookups/currency/choices"),
        ("GET", "/instances/acme/sync-options"),
        ("PUT", "/instances/acme/sync-options"),
        ("POST", "/instances/acme/push/account"),
        ("POST", "/instances/acme/pull/account"),
        ("POST", "/instances/acme/retry"),
        ("GET", "/instances/acme/retry-queue"),
        ("GET", "/instances/acme/runs"),
        ("GET", "/runs/1"),
    ];
    for (method, path) in routes {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let url = format!("{base}{path}");
        let none = client.request(method.clone(), &url).send().await.unwrap();
        assert_eq!(none.status(), 401, "{method} {path} without a token");
        let wrong = client
            .request(method.clone(), &url)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{method} {path} with a wrong token");
    }
    let description = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(description.status(), 200);
    let document: serde_json::Value = description.json().await.unwrap();
    assert_eq!(document["openapi"], "3.0.3");

    let created = client
        .post(format!("{base}/instances"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "connector": "connectwise", "name": "acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let duplicate = client
        .post(format!("{base}/instances"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "connector": "connectwise", "name": "acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(duplicate.status(), 409);
    let bad = client
        .patch(format!("{base}/instances/acme/settings"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "import-account-id": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(body["problems"][0][0], "import-account-id");
    let missing = client
        .get(format!("{base}/instances/nobody"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let listed: serde_json::Value = client
        .get(format!("{base}/instances"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["name"], "acme");
}

/// Named tokens with roles through the real binary and API: a viewer reads but changes nothing
/// (403), an operator runs syncs but changes no setting, an admin does both; a revoked token is
/// refused at once, also by the `serve` that was running when it was revoked; an earlier host's
/// single token becomes the admin token `serve`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_have_roles_and_the_api_enforces_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // The token file of an earlier host: its token keeps working, as an admin.
    let earlier = "an-earlier-hosts-token";
    std::fs::write(
        data.join("api-token.sha256"),
        format!("{}\n", bss_host::api::tokens::hash(earlier)),
    )
    .unwrap();
    ok(&data, &["activate", "connectwise", "--name", "acme"]);
    let viewer = ok(
        &data,
        &["tokens", "create", "dashboard", "--role", "viewer"],
    );
    let operator = ok(
        &data,
        &["tokens", "create", "nightly", "--role", "operator"],
    );
    let (viewer, operator) = (viewer.trim().to_string(), operator.trim().to_string());
    let err = fails(&data, &["tokens", "create", "nightly", "--role", "viewer"]);
    assert!(err.contains("exists"), "{err}");
    let err = fails(&data, &["tokens", "create", "Bad Name", "--role", "viewer"]);
    assert!(err.contains("not a token name"), "{err}");
    let err = fails(&data, &["tokens", "create", "x", "--role", "root"]);
    assert!(err.contains("viewer, operator, admin"), "{err}");

    let mut server = std::process::Command::new(BIN);
    server.arg("--data").arg(&data);
    let served = cw::serve_with_known_token(server, earlier);
    let base = served.base.clone();
    assert!(!data.join("api-token.sha256").exists(), "imported");
    let listed = ok(&data, &["tokens", "list"]);
    assert!(
        listed.contains("serve") && listed.contains("admin"),
        "{listed}"
    );

    let client = cw::api_client();
    let call =
        |method: reqwest::Method, path: &str, token: &str, body: Option<serde_json::Value>| {
            let mut request = client
                .request(method, format!("{base}{path}"))
                .bearer_auth(token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            async move { request.send().await.unwrap() }
        };
    use reqwest::Method;
    let settings = serde_json::json!({ "company-id": "acme" });
    // A viewer reads, and is refused every change with 403 naming its role.
    assert_eq!(
        call(Method::GET, "/instances/acme/settings", &viewer, None)
            .await
            .status(),
        200
    );
    let refused = call(
        Method::PATCH,
        "/instances/acme/settings",
        &viewer,
        Some(settings.clone()),
    )
    .await;
    assert_eq!(refused.status(), 403);
    let said: serde_json::Value = refused.json().await.unwrap();
    assert!(said["error"].as_str().unwrap().contains("viewer"), "{said}");
    assert_eq!(
        call(Method::POST, "/instances/acme/retry", &viewer, None)
            .await
            .status(),
        403
    );
    // An operator runs syncs (the retry of an empty queue) but changes no setting.
    assert_eq!(
        call(Method::POST, "/instances/acme/retry", &operator, None)
            .await
            .status(),
        409,
        "allowed through (the instance needs settings: 409, not 403)"
    );
    assert_eq!(
        call(
            Method::PATCH,
            "/instances/acme/settings",
            &operator,
            Some(settings.clone())
        )
        .await
        .status(),
        403
    );
    assert_eq!(
        call(Method::DELETE, "/instances/acme", &operator, None)
            .await
            .status(),
        403
    );
    // The admin does it.
    assert_eq!(
        call(
            Method::PATCH,
            "/instances/acme/settings",
            earlier,
            Some(settings)
        )
        .await
        .status(),
        200
    );
    // Revoked while serve runs: refused at once.
    ok(&data, &["tokens", "revoke", "nightly"]);
    assert_eq!(
        call(Method::GET, "/instances", &operator, None)
            .await
            .status(),
        401
    );
    let listed = ok(&data, &["tokens", "list"]);
    assert!(listed.contains("revoked"), "{listed}");
    let err = fails(&data, &["tokens", "revoke", "nightly"]);
    assert!(err.contains("no unrevoked token"), "{err}");
}
