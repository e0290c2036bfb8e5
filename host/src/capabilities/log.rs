//! The guest's log: lines from the `log` import and from the guest's stdout and stderr, written into
//! `tracing` tagged with connector, version and instance; and the redaction every connector text
//! passes through before the host prints, stores or logs it.
//!
//! Every line passes through [`LogSink`], which redacts it (see the rule below), cuts over-long
//! lines, and stops writing once the call's log budget is spent (the rest is counted and reported
//! in one line at the end of the call). The host's own lines about a call (a refused or failed
//! request) are charged to the same budget: the first few are written, with their URL cut to
//! [`MAX_URL_CHARS`], and the rest are counted and summarised once the call ends ("1,998 more
//! requests refused"), so a connector cannot grow the log through the host. The sink also keeps
//! the guest's last words, so a trap can be reported with what the guest said before it: its last
//! stderr output (a Rust panic message under WASI), or else its last error line through `log` (a
//! guest built without WASI, like the bundled connector, reports its panics there).
//!
//! **The redaction rule** ([`Redactor`]). Two kinds of values are replaced with `[REDACTED]`:
//!
//! - *Secrets* — every `secret` setting of the instance, and every credential value derived from
//!   one: the `Authorization` value (the base64 of Basic credentials, a bearer token), the Basic
//!   `user:password` pair in clear, and each credential header or Basic user name whose template
//!   names a secret setting — are replaced **wherever they occur, whatever their length**, even
//!   inside a word. They are secret: mangling a word is a small price, a leak is not.
//! - *Non-secret values the host put into a request* — a credential header or Basic user name
//!   built only from non-secret settings (ConnectWise's `clientId`) — are replaced **only where
//!   they stand as a whole token**: the characters on either side are not letters, digits, `_`,
//!   `-` or any non-ASCII character. The connector can read these values through `settings`
//!   anyway, so scrubbing them protects nothing from it; they are scrubbed so an echoed header does
//!   not travel on, and they are kept out of ordinary words because a short value would otherwise
//!   wreck text: with `client-id=x`, `maximum` stays `maximum` and only a lone `x` is replaced.
//!
//! Matching is exact (case-sensitive), in one pass over the text (longest value first at each
//! position), so a replacement is never scanned again. [`Redactor::bounded`] applies the rule and
//! then caps the text at [`MAX_TEXT_BYTES`]: every connector text the host prints or stores (check
//! summaries, problems, choice labels, error texts) goes through it.

use std::borrow::Cow;
use std::fmt;
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
/// The longest connector text (summary, problem, label, error) the host prints or stores.
pub const MAX_TEXT_BYTES: usize = 4 * 1024;
/// URLs in the host's own lines are cut to this many characters.
pub const MAX_URL_CHARS: usize = 200;
/// The longest error detail in the host's own lines.
const MAX_DETAIL_CHARS: usize = 500;
/// Refused (or failed) requests of one call written one by one; the rest are counted.
const REQUEST_LINES_PER_CALL: u64 = 2;

/// `text` cut to at most `max` bytes (on a character boundary), saying how much was left out.
pub fn cap(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    Cow::Owned(format!(
        "{}… ({} bytes more)",
        &text[..cut],
        thousands((text.len() - cut) as u64)
    ))
}

/// `text` cut to at most `max` characters, saying how many were left out.
fn cap_chars(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => Cow::Owned(format!(
            "{}… ({} bytes more)",
            &text[..cut],
            thousands((text.len() - cut) as u64)
        )),
    }
}

/// `1998` as `1,998`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One value to replace.
#[derive(Clone, PartialEq, Eq)]
struct Needle {
    bytes: Vec<u8>,
    /// Replaced only as a whole token (a non-secret value).
    token: bool,
}

/// The instance's values that must not be shown, and the rule that replaces them (see the module
/// doc): secrets everywhere, non-secret request values only as whole tokens. Built once per
/// instance context and shared by its calls (a clone is a reference count).
#[derive(Clone, Default)]
pub struct Redactor(Arc<Values>);

#[derive(Default)]
struct Values {
    secrets: Vec<String>,
    tokens: Vec<String>,
    needles: Vec<Needle>,
    /// Which bytes start some needle.
    first: Vec<bool>,
    /// [`Redactor::lowercase`], made on first use.
    lowercase: std::sync::OnceLock<Redactor>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Redactor({} secrets, {} other values)",
            self.0.secrets.len(),
            self.0.needles.len() - self.0.secrets.len()
        )
    }
}

/// Part of a word, for the token rule.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b >= 0x80
}

impl Redactor {
    /// `secrets` are replaced wherever they occur; `tokens` (non-secret values the host puts into
    /// requests) only as whole tokens. Empty values are ignored; a value in both lists is a secret.
    pub fn new(secrets: Vec<String>, tokens: Vec<String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        let tokens: Vec<String> = tokens
            .into_iter()
            .filter(|t| !t.is_empty() && !secrets.contains(t))
            .collect();
        let mut needles: Vec<Needle> = secrets
            .iter()
            .map(|s| Needle {
                bytes: s.as_bytes().to_vec(),
                token: false,
            })
            .collect();
        for token in &tokens {
            let needle = Needle {
                bytes: token.as_bytes().to_vec(),
                token: true,
            };
            if !needles.contains(&needle) {
                needles.push(needle);
            }
        }
        // Longest first, so a value that contains another is replaced whole.
        needles.sort_by_key(|n| std::cmp::Reverse(n.bytes.len()));
        let mut first = vec![false; 256];
        for needle in &needles {
            first[usize::from(needle.bytes[0])] = true;
        }
        Redactor(Arc::new(Values {
            secrets,
            tokens,
            needles,
            first,
            lowercase: std::sync::OnceLock::new(),
        }))
    }

    /// The same values in lower case: for text the other side lower-cases (HTTP header names).
    /// Made once per redactor: every call of an instance asks for it.
    pub fn lowercase(&self) -> Redactor {
        self.0
            .lowercase
            .get_or_init(|| {
                let lower = |values: &[String]| values.iter().map(|v| v.to_lowercase()).collect();
                Redactor::new(lower(&self.0.secrets), lower(&self.0.tokens))
            })
            .clone()
    }

    /// This redactor with `more` secrets.
    pub fn with_secrets(&self, more: impl IntoIterator<Item = String>) -> Redactor {
        let secrets = self.0.secrets.iter().cloned().chain(more).collect();
        Redactor::new(secrets, self.0.tokens.clone())
    }

    /// The secret values, longest first.
    pub fn secrets(&self) -> &[String] {
        &self.0.secrets
    }

    pub fn is_empty(&self) -> bool {
        self.0.needles.is_empty()
    }

    fn matches_at(&self, hay: &[u8], at: usize) -> Option<usize> {
        self.0.needles.iter().find_map(|needle| {
            let n = &needle.bytes;
            if !hay[at..].starts_with(n) {
                return None;
            }
            if needle.token {
                let starts_word = is_word_byte(n[0]);
                let ends_word = is_word_byte(n[n.len() - 1]);
                let before = at.checked_sub(1).map(|i| hay[i]);
                let after = hay.get(at + n.len()).copied();
                if (starts_word && before.is_some_and(is_word_byte))
                    || (ends_word && after.is_some_and(is_word_byte))
                {
                    return None;
                }
            }
            Some(n.len())
        })
    }

    /// `hay` with every match replaced, or `None` when nothing matched.
    fn scrub(&self, hay: &[u8]) -> Option<Vec<u8>> {
        if self.0.needles.is_empty() {
            return None;
        }
        let mut out: Option<Vec<u8>> = None;
        let (mut copied, mut at) = (0, 0);
        while at < hay.len() {
            match hay[at..].iter().position(|b| self.0.first[usize::from(*b)]) {
                None => break,
                Some(skip) => at += skip,
            }
            match self.matches_at(hay, at) {
                Some(len) => {
                    let out = out.get_or_insert_with(|| Vec::with_capacity(hay.len()));
                    out.extend_from_slice(&hay[copied..at]);
                    out.extend_from_slice(REDACTED.as_bytes());
                    at += len;
                    copied = at;
                }
                None => at += 1,
            }
        }
        out.map(|mut out| {
            out.extend_from_slice(&hay[copied..]);
            out
        })
    }

    /// `text` with the instance's values replaced by the rule.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.scrub(text.as_bytes()) {
            None => Cow::Borrowed(text),
            // Matches of whole UTF-8 values start and end on character boundaries.
            Some(bytes) => Cow::Owned(
                String::from_utf8(bytes)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            ),
        }
    }

    /// Bytes (a response body) with the instance's values replaced by the rule.
    pub fn redact_bytes(&self, bytes: Vec<u8>) -> Vec<u8> {
        self.scrub(&bytes).unwrap_or(bytes)
    }

    /// A connector's text as the host may print or store it: redacted, then cut to
    /// [`MAX_TEXT_BYTES`] ("… (N bytes more)").
    pub fn bounded(&self, text: &str) -> String {
        cap(&self.redact(text), MAX_TEXT_BYTES).into_owned()
    }
}

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSource {
    Log,
    Stdout,
    Stderr,
    /// The host, about the call (a refused request).
    Host,
}

impl LogSource {
    fn as_str(self) -> &'static str {
        match self {
            LogSource::Log => "log",
            LogSource::Stdout => "stdout",
            LogSource::Stderr => "stderr",
            LogSource::Host => "host",
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
    redactor: Redactor,
    budget: u64,
    suppressed_lines: u64,
    suppressed_bytes: u64,
    /// Requests the host refused in this call, and those whose sending failed.
    refused_requests: u64,
    failed_requests: u64,
    partial_stdout: Vec<u8>,
    partial_stderr: Vec<u8>,
    stderr_tail: String,
    /// The last error line the guest wrote through `log`, kept whatever the budget.
    last_error_line: String,
}

impl LogSink {
    /// The log of one call under `context`: its secrets redacted, its `host.log-bytes-per-call`.
    pub fn of_call(labels: Arc<Labels>, context: &super::context::InstanceContext) -> Self {
        Self::new(
            labels,
            context.redactor().clone(),
            context.options().log_bytes_per_call,
        )
    }

    pub fn new(labels: Arc<Labels>, redactor: Redactor, budget: u64) -> Self {
        LogSink {
            labels,
            redactor,
            budget,
            suppressed_lines: 0,
            suppressed_bytes: 0,
            refused_requests: 0,
            failed_requests: 0,
            partial_stdout: Vec::new(),
            partial_stderr: Vec::new(),
            stderr_tail: String::new(),
            last_error_line: String::new(),
        }
    }

    /// Replaces the instance's values in `text` by the redaction rule.
    pub fn redact(&self, text: &str) -> String {
        self.redactor.redact(text).into_owned()
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
        if source == LogSource::Log {
            // Only an error line that is the guest's last `log` line speaks for a trap (a panic
            // hook's message); redacted before the cut, so the cut cannot split a secret.
            self.last_error_line = match level {
                Level::Error => cap(&self.redact(text), STDERR_TAIL_BYTES).into_owned(),
                _ => String::new(),
            };
        }
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

    /// The host's line about a request of this call that it refused (`refused`) or that failed:
    /// the first few are written (charged to the call's budget, URL and detail cut), the rest
    /// counted for [`LogSink::finish`].
    pub fn request_line(&mut self, refused: bool, url: &str, detail: &str) {
        let (count, level) = if refused {
            self.refused_requests += 1;
            (self.refused_requests, Level::Warn)
        } else {
            self.failed_requests += 1;
            (self.failed_requests, Level::Debug)
        };
        // A debug line nobody keeps costs the connector nothing.
        if count > REQUEST_LINES_PER_CALL
            || (level == Level::Debug
                && !tracing::enabled!(target: "connector", tracing::Level::DEBUG))
        {
            return;
        }
        let url = self.redactor.redact(url);
        let detail = self.redactor.redact(detail);
        let text = format!(
            "{} a connector's request to {}: {}",
            if refused { "refused" } else { "failed" },
            cap_chars(&url, MAX_URL_CHARS),
            cap_chars(&detail, MAX_DETAIL_CHARS)
        );
        self.line(level, LogSource::Host, &text);
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
                // From the next line on: a secret the cut split would no longer match the
                // redactor, so the cut line goes whole. With no line end to go to, skip as many
                // bytes as the longest secret has, which is longer than any piece of one.
                match self.stderr_tail[start..].find('\n') {
                    Some(newline) => start += newline + 1,
                    None => {
                        let longest = self.redactor.secrets().first().map_or(0, String::len);
                        start = (start + longest).min(self.stderr_tail.len());
                        while !self.stderr_tail.is_char_boundary(start) {
                            start += 1;
                        }
                    }
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
        for (count, what, level) in [
            (self.refused_requests, "refused", Level::Warn),
            (self.failed_requests, "failed", Level::Debug),
        ] {
            if count > REQUEST_LINES_PER_CALL {
                let text = format!(
                    "{} more requests {what} in this call (the first {REQUEST_LINES_PER_CALL} are logged)",
                    thousands(count - REQUEST_LINES_PER_CALL)
                );
                self.emit(level, LogSource::Host, &text);
            }
        }
        self.refused_requests = 0;
        self.failed_requests = 0;
        if self.suppressed_lines > 0 {
            let text = format!(
                "{} log lines ({} bytes) over this call's log budget were not written",
                self.suppressed_lines, self.suppressed_bytes
            );
            self.emit(Level::Warn, LogSource::Log, &text);
            self.suppressed_lines = 0;
        }
    }

    /// What the guest said last (redacted), for reporting a trap: its last stderr output, or when
    /// it wrote none, its last error line through `log`.
    pub fn last_words(&self) -> String {
        let said = match self.stderr_tail.trim() {
            "" => self.last_error_line.trim(),
            tail => tail,
        };
        self.redact(said)
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
        LogSink::new(
            labels,
            Redactor::new(vec!["hunter2-secret".to_string()], vec![]),
            budget,
        )
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
    fn the_rule_scrubs_secrets_everywhere_and_other_values_as_whole_tokens() {
        // client-id=x (a non-secret header value) and a one-letter secret.
        let redactor = Redactor::new(vec!["q".into()], vec!["x".into()]);
        assert_eq!(redactor.redact("maximum"), "maximum");
        assert_eq!(
            redactor.redact("x maximum x-ray (x) \"x\" xé"),
            "[REDACTED] maximum x-ray ([REDACTED]) \"[REDACTED]\" xé"
        );
        assert_eq!(redactor.redact("quiq"), "[REDACTED]ui[REDACTED]");
        // A longer value wins over a shorter one inside it; replacements are not scanned again.
        let redactor = Redactor::new(
            vec!["RED".into(), "hunter2".into()],
            vec!["0c8f3c52-5b7e".into()],
        );
        assert_eq!(
            redactor.redact("a hunter2b clientId=0c8f3c52-5b7e; id0c8f3c52-5b7e"),
            "a [REDACTED]b clientId=[REDACTED]; id0c8f3c52-5b7e"
        );
        assert_eq!(
            redactor.redact_bytes(b"\xff\x00hunter2\xfe".to_vec()),
            b"\xff\x00[REDACTED]\xfe".to_vec()
        );
        // A value that is a secret too is a secret.
        let redactor = Redactor::new(vec!["ab".into()], vec!["ab".into()]);
        assert_eq!(redactor.redact("cabd"), "c[REDACTED]d");
    }

    #[test]
    fn bounded_text_is_redacted_then_capped() {
        let redactor = Redactor::new(vec!["hunter2-secret".into()], vec![]);
        let text = format!("hunter2-secret {} hunter2-secret", "é".repeat(10_000));
        let bounded = redactor.bounded(&text);
        assert!(bounded.len() < MAX_TEXT_BYTES + 40, "{}", bounded.len());
        assert!(bounded.starts_with("[REDACTED] éé"));
        assert!(bounded.ends_with(" bytes more)"), "{bounded}");
        assert!(!bounded.contains("hunter2"));
        assert_eq!(redactor.bounded("short"), "short");
        assert_eq!(thousands(1998), "1,998");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
    }

    #[test]
    fn the_hosts_request_lines_are_counted_against_the_budget() {
        let mut sink = sink(1000);
        let url = format!("https://evil.example/{}", "a".repeat(64 << 10));
        for _ in 0..2000 {
            sink.request_line(true, &url, "HostNotAllowed(\"evil.example\")");
        }
        assert_eq!(sink.refused_requests, 2000);
        // Two lines written, each with its URL cut.
        assert!(
            sink.budget < 1000 && sink.budget > 1000 - 2 * 400,
            "{}",
            sink.budget
        );
        sink.finish();
        assert_eq!(sink.refused_requests, 0);
    }

    #[test]
    fn stderr_lines_split_and_tail_kept() {
        let mut sink = sink(1000);
        sink.stream_bytes(LogSource::Stderr, b"panicked at x: hunter2-secret\npartial");
        assert_eq!(sink.partial_stderr, b"partial");
        assert!(sink.last_words().contains("[REDACTED]"));
        assert!(!sink.last_words().contains("hunter2"));
    }

    #[test]
    fn last_error_line_is_the_last_words_without_stderr() {
        let mut sink = sink(10);
        sink.line(
            Level::Info,
            LogSource::Log,
            "an ordinary line over the budget",
        );
        sink.line(
            Level::Error,
            LogSource::Log,
            "panicked at src/x.rs: hunter2-secret",
        );
        assert!(
            sink.last_words().starts_with("panicked at src/x.rs"),
            "{}",
            sink.last_words()
        );
        assert!(!sink.last_words().contains("hunter2"));
        sink.stream_bytes(LogSource::Stderr, b"stderr wins\n");
        assert_eq!(sink.last_words(), "stderr wins");
    }

    #[test]
    fn a_stderr_line_the_tail_cut_is_dropped_whole() {
        let mut sink = sink(100_000);
        let long = format!(
            "{}hunter2-secret\nlast line\n",
            "y".repeat(STDERR_TAIL_BYTES - 5)
        );
        sink.stream_bytes(LogSource::Stderr, long.as_bytes());
        assert_eq!(sink.last_words(), "last line");

        // One line longer than the tail, cut inside the secret: no piece of it is kept.
        let mut cut = self::sink(100_000);
        let line = format!(
            "{}hunter2-secret{}",
            "y".repeat(10),
            "z".repeat(STDERR_TAIL_BYTES - 5)
        );
        cut.stream_bytes(LogSource::Stderr, line.as_bytes());
        let said = cut.last_words();
        assert!(!said.contains("secret") && !said.contains("et"), "{said}");
        assert!(said.starts_with("zzz"), "{said}");
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
