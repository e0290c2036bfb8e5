//! The guest's log: lines from the `log` import and from the guest's stdout and stderr, written into
//! `tracing` tagged with connector, version and instance.
//!
//! Every line passes through [`LogSink`], which replaces each secret value of the instance with
//! `[REDACTED]`, cuts over-long lines, and stops writing once the call's log budget is spent (the
//! rest is counted and reported in one line at the end of the call). It also keeps the last stderr
//! output, so a trap can be reported with what the guest said before it (a Rust panic message).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Replaces secret values in log text.
pub const REDACTED: &str = "[REDACTED]";
/// A single line longer than this is cut.
const MAX_LINE_BYTES: usize = 8 * 1024;
/// How much of the guest's last stderr output is kept for trap reports.
const STDERR_TAIL_BYTES: usize = 2 * 1024;

/// Replaces every one of `secrets` in `text` (give the longest first, as the instance context does).
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), REDACTED);
        }
    }
    out
}

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSource {
    Log,
    Stdout,
    Stderr,
}

impl LogSource {
    fn as_str(self) -> &'static str {
        match self {
            LogSource::Log => "log",
            LogSource::Stdout => "stdout",
            LogSource::Stderr => "stderr",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Who is speaking: put on every line.
#[derive(Debug, Clone)]
pub struct Labels {
    pub connector: String,
    pub version: String,
    pub instance: String,
}

/// One call's log: redaction, budget, and partial lines of stdout and stderr.
#[derive(Debug)]
pub struct LogSink {
    labels: Arc<Labels>,
    secrets: Vec<String>,
    budget: u64,
    suppressed_lines: u64,
    suppressed_bytes: u64,
    partial_stdout: Vec<u8>,
    partial_stderr: Vec<u8>,
    stderr_tail: String,
}

impl LogSink {
    pub fn new(labels: Arc<Labels>, secrets: &[String], budget: u64) -> Self {
        LogSink {
            labels,
            secrets: secrets.to_vec(),
            budget,
            suppressed_lines: 0,
            suppressed_bytes: 0,
            partial_stdout: Vec::new(),
            partial_stderr: Vec::new(),
            stderr_tail: String::new(),
        }
    }

    /// Replaces every secret value in `text`.
    pub fn redact(&self, text: &str) -> String {
        redact(text, &self.secrets)
    }

    /// Whether a line at `level` would be written: the host's log keeps that level and the call's
    /// budget is not spent.
    pub fn enabled(&self, level: Level) -> bool {
        if self.budget == 0 {
            return false;
        }
        match level {
            Level::Trace => tracing::enabled!(target: "connector", tracing::Level::TRACE),
            Level::Debug => tracing::enabled!(target: "connector", tracing::Level::DEBUG),
            Level::Info => tracing::enabled!(target: "connector", tracing::Level::INFO),
            Level::Warn => tracing::enabled!(target: "connector", tracing::Level::WARN),
            Level::Error => tracing::enabled!(target: "connector", tracing::Level::ERROR),
        }
    }

    /// Writes one line if the budget allows, redacted and cut to size.
    pub fn line(&mut self, level: Level, source: LogSource, text: &str) {
        let cost = text.len() as u64;
        if cost > self.budget {
            if self.suppressed_lines == 0 {
                self.emit(
                    Level::Warn,
                    source,
                    "log budget for this call is spent; further lines are counted, not written",
                );
            }
            self.budget = 0;
            self.suppressed_lines += 1;
            self.suppressed_bytes += cost;
            return;
        }
        self.budget -= cost;
        let mut text = self.redact(text);
        if text.len() > MAX_LINE_BYTES {
            let mut cut = MAX_LINE_BYTES;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str(" [cut]");
        }
        self.emit(level, source, &text);
    }

    fn emit(&self, level: Level, source: LogSource, text: &str) {
        let Labels {
            connector,
            version,
            instance,
        } = &*self.labels;
        let source = source.as_str();
        match level {
            Level::Trace => {
                tracing::trace!(target: "connector", connector, version, instance, source, "{text}")
            }
            Level::Debug => {
                tracing::debug!(target: "connector", connector, version, instance, source, "{text}")
            }
            Level::Info => {
                tracing::info!(target: "connector", connector, version, instance, source, "{text}")
            }
            Level::Warn => {
                tracing::warn!(target: "connector", connector, version, instance, source, "{text}")
            }
            Level::Error => {
                tracing::error!(target: "connector", connector, version, instance, source, "{text}")
            }
        }
    }

    /// Takes raw bytes from stdout or stderr and writes each complete line.
    fn stream_bytes(&mut self, source: LogSource, bytes: &[u8]) {
        if source == LogSource::Stderr {
            self.stderr_tail.push_str(&String::from_utf8_lossy(bytes));
            if self.stderr_tail.len() > STDERR_TAIL_BYTES {
                let mut start = self.stderr_tail.len() - STDERR_TAIL_BYTES;
                while !self.stderr_tail.is_char_boundary(start) {
                    start += 1;
                }
                self.stderr_tail.drain(..start);
            }
        }
        let mut pending = std::mem::take(match source {
            LogSource::Stderr => &mut self.partial_stderr,
            _ => &mut self.partial_stdout,
        });
        pending.extend_from_slice(bytes);
        let level = if source == LogSource::Stderr {
            Level::Warn
        } else {
            Level::Info
        };
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|b| *b == b'\n') {
            let line = String::from_utf8_lossy(&pending[start..start + end]).to_string();
            self.line(level, source, &line);
            start += end + 1;
        }
        pending.drain(..start);
        if pending.len() > MAX_LINE_BYTES {
            let line = String::from_utf8_lossy(&pending).to_string();
            self.line(level, source, &line);
            pending.clear();
        }
        *match source {
            LogSource::Stderr => &mut self.partial_stderr,
            _ => &mut self.partial_stdout,
        } = pending;
    }

    /// Flushes partial lines and reports what the budget held back. Called once a call ends.
    pub fn finish(&mut self) {
        for source in [LogSource::Stdout, LogSource::Stderr] {
            let pending = std::mem::take(match source {
                LogSource::Stderr => &mut self.partial_stderr,
                _ => &mut self.partial_stdout,
            });
            if !pending.is_empty() {
                let level = if source == LogSource::Stderr {
                    Level::Warn
                } else {
                    Level::Info
                };
                self.line(level, source, &String::from_utf8_lossy(&pending));
            }
        }
        if self.suppressed_lines > 0 {
            let text = format!(
                "{} log lines ({} bytes) over this call's log budget were not written",
                self.suppressed_lines, self.suppressed_bytes
            );
            self.emit(Level::Warn, LogSource::Log, &text);
            self.suppressed_lines = 0;
        }
    }

    /// What the guest last wrote to stderr (redacted), for reporting a trap.
    pub fn stderr_tail(&self) -> String {
        self.redact(self.stderr_tail.trim())
    }
}

/// The guest's stdout or stderr, feeding a [`LogSink`].
#[derive(Clone)]
pub struct GuestOutput {
    sink: Arc<Mutex<LogSink>>,
    source: LogSource,
}

impl GuestOutput {
    pub fn new(sink: Arc<Mutex<LogSink>>, source: LogSource) -> Self {
        GuestOutput { sink, source }
    }

    fn write_bytes(&self, bytes: &[u8]) {
        self.sink
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stream_bytes(self.source, bytes);
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

#[wasmtime_wasi::async_trait]
impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(budget: u64) -> LogSink {
        let labels = Arc::new(Labels {
            connector: "c".into(),
            version: "1.0.0".into(),
            instance: "i".into(),
        });
        LogSink::new(labels, &["hunter2-secret".to_string()], budget)
    }

    #[test]
    fn secrets_are_redacted() {
        let sink = sink(1000);
        assert_eq!(
            sink.redact("key=hunter2-secret; again hunter2-secret"),
            "key=[REDACTED]; again [REDACTED]"
        );
    }

    #[test]
    fn stderr_lines_split_and_tail_kept() {
        let mut sink = sink(1000);
        sink.stream_bytes(LogSource::Stderr, b"panicked at x: hunter2-secret\npartial");
        assert_eq!(sink.partial_stderr, b"partial");
        assert!(sink.stderr_tail().contains("[REDACTED]"));
        assert!(!sink.stderr_tail().contains("hunter2"));
    }

    #[test]
    fn budget_stops_writing_and_counts() {
        let mut sink = sink(10);
        sink.line(Level::Info, LogSource::Log, "12345");
        sink.line(Level::Info, LogSource::Log, "123456");
        sink.line(Level::Info, LogSource::Log, "1");
        assert_eq!(sink.suppressed_lines, 2);
        assert_eq!(sink.budget, 0);
    }
}
