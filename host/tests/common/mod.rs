//! Test support: loopback HTTP servers written on raw TCP, so tests control exactly what a
//! connector's requests meet (silence, redirects, endless bodies) and can count what arrived; the
//! fixture loaded into a runtime. Submodules: `cli` runs the real binary on a data folder,
//! `records` builds the records a push reads, `fixture_variants` builds the fixture's variants.

#![allow(dead_code)]

pub mod cli;
pub mod fixture_variants;
pub mod records;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bss_host::capabilities::context::{InstanceContext, LookupEntry};
use bss_host::capabilities::options::InstanceOptions;
use bss_host::contract::bindings::connector::{ConflictPolicy, PushItem, PushOptions};
use bss_host::contract::bindings::types::{Account, Entity, EntityData, Record};
use bss_host::runtime::{Connector, Runtime, RuntimeConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

pub const FIXTURE_WASM: &str = env!("BSS_FIXTURE_WASM");

/// The compile cache the whole test suite shares, so components compile once per engine.
pub fn shared_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compile-cache")
}

pub fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(shared_cache_dir()),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

pub async fn fixture(runtime: &Runtime) -> Connector {
    runtime
        .load_file(std::path::Path::new(FIXTURE_WASM))
        .await
        .unwrap()
}

/// An instance context for the fixture with these settings (server variables) and options.
pub fn context(
    connector: &Connector,
    settings: &[(&str, &str)],
    options: InstanceOptions,
) -> Arc<InstanceContext> {
    let mut values: BTreeMap<String, String> = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // The fixture's credentials need both; tests that care set their own.
    values
        .entry("user".into())
        .or_insert_with(|| "alice".into());
    values
        .entry("api-key".into())
        .or_insert_with(|| "default-api-key".into());
    let mut lookups = BTreeMap::new();
    lookups.insert(
        "fruit".to_string(),
        vec![
            LookupEntry {
                bss_value: "apple".into(),
                remote_value: "malus".into(),
                pull_default: false,
            },
            LookupEntry {
                bss_value: "crab-apple".into(),
                remote_value: "malus".into(),
                pull_default: true,
            },
            LookupEntry {
                bss_value: "pear".into(),
                remote_value: "pyrus".into(),
                pull_default: false,
            },
        ],
    );
    Arc::new(
        InstanceContext::new(
            "test-instance",
            connector.manifest(),
            &values,
            lookups,
            options,
        )
        .unwrap(),
    )
}

/// A minimal account record for the fixture.
pub fn account(bss_id: &str) -> Record {
    Record {
        entity: Entity::Account,
        bss_id: bss_id.to_string(),
        remote_id: None,
        maybe_created: false,
        data: EntityData::Account(Account {
            code: bss_id.to_string(),
            name: format!("Account {bss_id}"),
            account_type: None,
            status: None,
            currency: None,
            billing_address: None,
            phone: None,
            fax: None,
            website: None,
            parent_account: None,
            primary_contact: None,
            extra: vec![],
        }),
        references: vec![],
    }
}

pub fn private_ok() -> InstanceOptions {
    InstanceOptions {
        allow_private_network: true,
        ..InstanceOptions::default()
    }
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Lower-cased names, in arrival order.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// What the server does with a request.
#[derive(Debug, Clone)]
pub enum Reply {
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Accept, read the request, never answer.
    Silent,
    /// A chunked body of `total` bytes, written in 64 KiB chunks.
    Stream { total: u64 },
}

impl Reply {
    pub fn text(status: u16, body: &str) -> Reply {
        Reply::Respond {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn redirect(location: &str) -> Reply {
        Reply::Respond {
            status: 302,
            headers: vec![("Location".into(), location.into())],
            body: vec![],
        }
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
    written: Arc<AtomicU64>,
}

impl TestServer {
    /// Starts a server on 127.0.0.1 answering each request with `handler`.
    pub async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> TestServer {
        Self::start_on("127.0.0.1:0".parse().unwrap(), handler)
            .await
            .unwrap()
    }

    pub async fn start_on(
        bind: SocketAddr,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> std::io::Result<TestServer> {
        let socket = if bind.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // A small send buffer keeps the count of bytes written close to what the client read.
        socket.set_send_buffer_size(64 * 1024)?;
        socket.bind(bind)?;
        let listener: TcpListener = socket.listen(64)?;
        let addr = listener.local_addr()?;
        let server = TestServer {
            addr,
            accepted: Arc::default(),
            seen: Arc::default(),
            written: Arc::default(),
        };
        let (accepted, seen, written) = (
            server.accepted.clone(),
            server.seen.clone(),
            server.written.clone(),
        );
        let handler = Arc::new(handler);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let (seen, written, handler) = (seen.clone(), written.clone(), handler.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, seen, written, handler).await;
                });
            }
        });
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far (after letting pending accepts run).
    pub async fn accepted(&self) -> usize {
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Body bytes the server managed to write.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }
}

async fn serve(
    mut stream: TcpStream,
    seen: Arc<Mutex<Vec<Seen>>>,
    written: Arc<AtomicU64>,
    handler: Arc<dyn Fn(&Seen) -> Reply + Send + Sync>,
) -> std::io::Result<()> {
    loop {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await? == 0 {
                return Ok(());
            }
            head.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&head).to_string();
        let mut lines = text.split("\r\n");
        let mut request_line = lines.next().unwrap_or_default().split(' ');
        let method = request_line.next().unwrap_or_default().to_string();
        let path = request_line.next().unwrap_or_default().to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).await?;
        let request = Seen {
            method,
            path,
            headers,
        };
        seen.lock().unwrap().push(request.clone());
        match handler(&request) {
            Reply::Respond {
                status,
                headers,
                body,
            } => {
                let mut out = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                for (name, value) in headers {
                    out.push_str(&format!("{name}: {value}\r\n"));
                }
                out.push_str("\r\n");
                stream.write_all(out.as_bytes()).await?;
                stream.write_all(&body).await?;
            }
            Reply::Silent => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return Ok(());
            }
            Reply::Stream { total } => {
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                    .await?;
                let chunk = vec![b'z'; 64 * 1024];
                let mut sent = 0u64;
                while sent < total {
                    stream
                        .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                        .await?;
                    stream.write_all(&chunk).await?;
                    stream.write_all(b"\r\n").await?;
                    sent += chunk.len() as u64;
                    written.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                    // Paced so the client's buffers stay near empty: what was written was read.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                stream.write_all(b"0\r\n\r\n").await?;
                return Ok(());
            }
        }
    }
}

/// Collects what `tracing` writes on this thread while the returned guard lives, at `level` and
/// above, for tests that read the host's log.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Starts capturing on this thread.
    pub fn start(level: tracing::Level) -> (Captured, tracing::subscriber::DefaultGuard) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(level)
            .with_ansi(false)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        // Tests run side by side, each with a subscriber of its own: a call site whose interest
        // was cached while only another test's (less verbose) subscriber was alive would stay
        // off for this one. Recomputed now that this one is registered.
        tracing::callsite::rebuild_interest_cache();
        (captured, guard)
    }

    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Records to push with no last push known (creates, or updates the host has no base for).
#[allow(dead_code)]
pub fn items(records: &[Record]) -> Vec<PushItem> {
    records
        .iter()
        .map(|record| PushItem {
            record: record.clone(),
            last_pushed: None,
        })
        .collect()
}

/// Push options with the default conflict policy.
#[allow(dead_code)]
pub fn options(dry_run: bool) -> PushOptions {
    PushOptions {
        dry_run,
        conflicts: ConflictPolicy::BssWins,
    }
}
