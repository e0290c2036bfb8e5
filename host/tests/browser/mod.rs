//! Browser harness for the console tests: starts a private ChromeDriver and headless Chromium per
//! test (own port, own profile folder, so tests running in parallel threads don't meet), drives it
//! over WebDriver with `fantoccini`, and owns both processes, killing them when the `Browser` drops.
//! Helpers take CSS selectors and panic with the current URL on failure; screenshots land in
//! `target/test-artifacts/console/`. Chromium and ChromeDriver come from `BSS_CHROMIUM` /
//! `BSS_CHROMEDRIVER` or `/usr/bin`; when they are missing the test fails, pointing at
//! `scripts/install-test-deps.sh`.

#![allow(dead_code)]

use std::fmt::Display;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long `wait_for` and `submit_and_wait` wait.
const WAIT: Duration = Duration::from_secs(10);

pub struct Browser {
    client: Client,
    driver: Reaper,
    port: u16,
    /// The WebDriver session, until `close` ended it.
    session: Option<String>,
    test_name: String,
    /// Holds the Chromium profile and the ChromeDriver log; removed after the processes die.
    _dir: tempfile::TempDir,
}

/// Kills and reaps the child process when dropped, even when a panic unwinds.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn binary(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    if !path.is_file() {
        panic!(
            "the browser tests need Chromium and ChromeDriver, and {} is missing: run \
             `scripts/install-test-deps.sh`, or set BSS_CHROMIUM and BSS_CHROMEDRIVER to a \
             Chromium and a matching ChromeDriver",
            path.display()
        );
    }
    path
}

/// Whether ChromeDriver on `port` answers `GET /status` with ready.
async fn driver_ready(port: u16) -> bool {
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let request =
            format!("GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        // ChromeDriver keeps the connection open despite `Connection: close`: read until ready.
        let mut response = Vec::new();
        let mut chunk = [0; 1024];
        loop {
            let n = stream.read(&mut chunk).await?;
            response.extend_from_slice(&chunk[..n]);
            if n == 0 || String::from_utf8_lossy(&response).contains("\"ready\":true") {
                break;
            }
        }
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&response).contains("\"ready\":true"))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), ask).await,
        Ok(Ok(true))
    )
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium with a 1280x900 window. `test_name` names the
    /// screenshots.
    pub async fn start(test_name: &str) -> Browser {
        let chromium = binary("BSS_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = binary("BSS_CHROMEDRIVER", "/usr/bin/chromedriver");
        let dir = tempfile::tempdir().expect("temporary folder for the browser profile");
        let log = dir.path().join("chromedriver.log");
        let read_log = || std::fs::read_to_string(&log).unwrap_or_default();

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free loopback port")
            .port();
        let mut driver = Reaper(
            Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", chromedriver.display())),
        );

        let deadline = Instant::now() + Duration::from_secs(20);
        while !driver_ready(port).await {
            if let Ok(Some(status)) = driver.0.try_wait() {
                panic!(
                    "chromedriver exited ({status}) before answering:\n{}",
                    read_log()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "chromedriver did not answer on port {port} within 20 s:\n{}",
                    read_log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let profile = dir.path().join("profile");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-extensions",
                    "--no-first-run",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let connect = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        let client = match connect {
            Ok(client) => client,
            Err(e) => panic!(
                "opening a Chromium session: {e}\nchromedriver log:\n{}",
                read_log()
            ),
        };
        let session = client.session_id().await.ok().flatten();
        Browser {
            client,
            driver,
            port,
            session,
            test_name: test_name.to_string(),
            _dir: dir,
        }
    }

    /// Ends the WebDriver session, which quits Chromium; ChromeDriver dies with the `Browser`.
    pub async fn close(mut self) {
        if let Err(e) = self.client.clone().close().await {
            panic!("closing the browser session: {e}");
        }
        self.session = None;
    }

    /// The fantoccini client, for what the helpers don't cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The current URL, or a note saying why it is unknown: for failure messages.
    async fn at(&self) -> String {
        match self.client.current_url().await {
            Ok(url) => url.to_string(),
            Err(e) => format!("<unknown URL: {e}>"),
        }
    }

    /// The value, or a panic saying `what` failed, and where.
    async fn ok<T, E: Display>(&self, result: Result<T, E>, what: impl Display) -> T {
        match result {
            Ok(value) => value,
            Err(e) => panic!("{what} failed at {}: {e}", self.at().await),
        }
    }

    async fn find(&self, css: &str) -> Element {
        let found = self.client.find(Locator::Css(css)).await;
        self.ok(found, format_args!("finding `{css}`")).await
    }

    pub async fn goto(&self, url: &str) {
        let r = self.client.goto(url).await;
        self.ok(r, format_args!("going to {url}")).await
    }

    pub async fn current_url(&self) -> String {
        let r = self.client.current_url().await;
        self.ok(r, "reading the URL").await.to_string()
    }

    /// The page's HTML as it is now (after scripts ran).
    pub async fn source(&self) -> String {
        let r = self.client.source().await;
        self.ok(r, "reading the page source").await
    }

    /// The visible text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let r = self.find(css).await.text().await;
        self.ok(r, format_args!("reading the text of `{css}`"))
            .await
    }

    /// The visible texts of all elements matching `css`, in document order.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let r = self.client.find_all(Locator::Css(css)).await;
        let elements = self.ok(r, format_args!("finding `{css}`")).await;
        let mut texts = Vec::new();
        for element in elements {
            let r = element.text().await;
            texts.push(
                self.ok(r, format_args!("reading the text of `{css}`"))
                    .await,
            );
        }
        texts
    }

    /// Whether an element matches `css` now, without waiting.
    pub async fn exists(&self, css: &str) -> bool {
        let r = self.client.find_all(Locator::Css(css)).await;
        !self.ok(r, format_args!("finding `{css}`")).await.is_empty()
    }

    /// Waits up to 10 s for an element matching `css`.
    pub async fn wait_for(&self, css: &str) {
        let r = self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await;
        self.ok(r, format_args!("waiting for `{css}`")).await;
    }

    /// Clears the field matching `css` and types `value` into it.
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        let r = field.clear().await;
        self.ok(r, format_args!("clearing `{css}`")).await;
        let r = field.send_keys(value).await;
        self.ok(r, format_args!("typing into `{css}`")).await;
    }

    /// Chooses the `<option>` whose value attribute is `value` in the `<select>` matching `css`.
    pub async fn select_value(&self, css: &str, value: &str) {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        self.click(&format!("{css} option[value=\"{escaped}\"]"))
            .await;
    }

    pub async fn click(&self, css: &str) {
        let r = self.find(css).await.click().await;
        self.ok(r, format_args!("clicking `{css}`")).await
    }

    /// Clicks the submit button matching `css` and waits (up to 10 s) until the browser left the
    /// page and the next one finished loading.
    pub async fn submit_and_wait(&self, css: &str) {
        let old = self.find("html").await;
        self.click(css).await;
        let deadline = Instant::now() + WAIT;
        loop {
            match old.tag_name().await {
                // Chromium sometimes says the old node left the document instead of "stale".
                Err(e)
                    if e.is_stale_element_reference()
                        || e.to_string().contains("does not belong to the document") =>
                {
                    break;
                }
                Err(e) => panic!("submitting `{css}` failed at {}: {e}", self.at().await),
                Ok(_) if Instant::now() > deadline => {
                    panic!(
                        "submitting `{css}`: the page did not change within 10 s, at {}",
                        self.at().await
                    )
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        while self.execute("return document.readyState").await != "complete" {
            if Instant::now() > deadline {
                panic!(
                    "submitting `{css}`: the next page did not load within 10 s, at {}",
                    self.at().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Puts the file at `path` into the `<input type=file>` matching `css`.
    pub async fn upload(&self, css: &str, path: &Path) {
        let path = std::path::absolute(path).expect("absolute path of the upload");
        let r = self
            .find(css)
            .await
            .send_keys(&path.to_string_lossy())
            .await;
        self.ok(r, format_args!("uploading {} into `{css}`", path.display()))
            .await
    }

    /// Runs `js` as a function body in the page (`return` gives the value).
    pub async fn execute(&self, js: &str) -> Value {
        let r = self.client.execute(js, Vec::new()).await;
        self.ok(r, format_args!("running `{js}`")).await
    }

    /// Resizes the window so the page's viewport is `width` x `height` CSS pixels.
    pub async fn set_viewport(&self, width: u32, height: u32) {
        let r = self.client.set_window_size(width, height).await;
        self.ok(r, "resizing the window").await;
        let inner = self
            .execute("return [window.innerWidth, window.innerHeight]")
            .await;
        let (w, h) = (
            inner[0].as_u64().unwrap_or(0) as u32,
            inner[1].as_u64().unwrap_or(0) as u32,
        );
        if (w, h) != (width, height) {
            let r = self
                .client
                .set_window_size(
                    (2 * width).saturating_sub(w),
                    (2 * height).saturating_sub(h),
                )
                .await;
            self.ok(r, "resizing the window").await;
        }
    }

    /// Saves a PNG of the viewport as `target/test-artifacts/console/<test>-<label>.png` and
    /// returns its path.
    pub async fn screenshot(&self, label: &str) -> PathBuf {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| workspace.join("target"), |t| workspace.join(t));
        let dir = target.join("test-artifacts").join("console");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let r = self.client.screenshot().await;
        let png = self.ok(r, format_args!("taking screenshot {label}")).await;
        let path = dir.join(format!("{}-{label}.png", self.test_name));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }
}

impl Drop for Browser {
    /// Ends a session still open (a test that panicked or did not `close`): killing ChromeDriver
    /// alone would leave Chromium running. Blocking, as `drop` can't await; then `Reaper` kills
    /// ChromeDriver.
    fn drop(&mut self) {
        let Some(id) = &self.session else { return };
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let request = format!(
            "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\r\n",
            self.port
        );
        if stream.write_all(request.as_bytes()).is_ok() {
            // ChromeDriver answers once Chromium quit.
            let _ = stream.read(&mut [0; 1024]);
        }
    }
}
