//! The host's per-instance options: the `host.` settings that bound what one instance's connector
//! may do in one call. Each has a documented default; an admin changes them per instance.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `host.allow-private-network` | `false` | may reach loopback, private and link-local addresses (still only allowed hosts) |
//! | `host.requests-per-minute` | `600` | request budget of this instance, shared by every process on the data folder |
//! | `host.call-deadline` | `60s` | wall-clock limit of one call, host imports included |
//! | `host.memory-limit` | `128MiB` | largest linear memory of the connector |
//! | `host.max-requests-per-call` | `500` | outbound requests one call may send |
//! | `host.max-response-bytes` | `16MiB` | largest response body read for the connector |
//! | `host.request-timeout` | `30s` | one request, from connecting to the last body byte |
//! | `host.log-bytes-per-call` | `1MiB` | log output kept per call; the rest is counted, not written |
//! | `host.max-items-per-answer` | `10000` | records, choices or outcomes one answer of the connector may hold |
//! | `host.max-string-bytes` | `64KiB` | longest single string (id, name, message, log line) a connector hands back |
//! | `host.max-answer-bytes` | `32MiB` | bytes one answer of the connector may hold in all, checked in guest memory before the host copies it |
//! | `host.max-pull-pages` | `10000` | pages one pull run reads before it stops and keeps its cursor |
//! | `host.max-pull-records` | `1000000` | records one pull run delivers before it stops and keeps its cursor |
//! | `host.max-retry-after` | `5m` | longest `Retry-After` a run waits for; a longer one fails the record for the retry queue |
//! | `host.keep-instance` | `true` | a call may run in an instance kept from an earlier call of this instance (same connector version, settings, lookups and options); `false` gives every call a fresh one |
//! | `host.conflicts` | `bss-wins` | a field both the BSS and the remote changed since the last push: `bss-wins` writes the BSS value and reports the remote's, `report` holds the record unchanged for review |
//!
//! Durations take `ms`, `s`, `m` or `h` (`1500ms`, `30s`, `2m`); sizes take `B`, `KiB`, `MiB` or
//! `GiB` (`512KiB`, `64MiB`), or a bare number of bytes.

use std::time::Duration;

/// Every option key, for listing and for refusing unknown `host.` keys.
pub const OPTION_KEYS: &[&str] = &[
    "host.allow-private-network",
    "host.requests-per-minute",
    "host.call-deadline",
    "host.memory-limit",
    "host.max-requests-per-call",
    "host.max-response-bytes",
    "host.request-timeout",
    "host.log-bytes-per-call",
    "host.max-items-per-answer",
    "host.max-string-bytes",
    "host.max-answer-bytes",
    "host.max-pull-pages",
    "host.max-pull-records",
    "host.max-retry-after",
    "host.keep-instance",
    "host.conflicts",
];

/// The largest memory limit an instance may ask for; the runtime reserves address space for it.
pub const MAX_MEMORY_LIMIT: u64 = 1 << 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceOptions {
    pub allow_private_network: bool,
    pub requests_per_minute: u32,
    pub call_deadline: Duration,
    pub memory_limit: u64,
    pub max_requests_per_call: u32,
    pub max_response_bytes: u64,
    pub request_timeout: Duration,
    pub log_bytes_per_call: u64,
    pub max_items_per_answer: u32,
    pub max_string_bytes: u64,
    pub max_answer_bytes: u64,
    pub max_pull_pages: u32,
    pub max_pull_records: u32,
    pub max_retry_after: Duration,
    /// Whether a call may run in an instance kept from an earlier call (`host.keep-instance`).
    pub keep_instance: bool,
    /// Whether the BSS's value wins a field both sides changed (`host.conflicts`).
    pub conflicts_held: bool,
}

impl Default for InstanceOptions {
    fn default() -> Self {
        InstanceOptions {
            allow_private_network: false,
            requests_per_minute: 600,
            call_deadline: Duration::from_secs(60),
            memory_limit: 128 << 20,
            max_requests_per_call: 500,
            max_response_bytes: 16 << 20,
            request_timeout: Duration::from_secs(30),
            log_bytes_per_call: 1 << 20,
            max_items_per_answer: 10_000,
            max_string_bytes: 64 << 10,
            max_answer_bytes: 32 << 20,
            max_pull_pages: 10_000,
            max_pull_records: 1_000_000,
            max_retry_after: Duration::from_secs(300),
            keep_instance: true,
            conflicts_held: false,
        }
    }
}

/// A `host.` option that could not be set, and how to set it right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct OptionError {
    pub key: String,
    pub message: String,
}

impl InstanceOptions {
    /// Sets one option from its textual value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), OptionError> {
        let fail = |message: String| OptionError {
            key: key.to_string(),
            message,
        };
        let value = value.trim();
        match key {
            "host.allow-private-network" => {
                self.allow_private_network = parse_bool(value).map_err(fail)?
            }
            "host.requests-per-minute" => {
                self.requests_per_minute = parse_count(value).map_err(fail)?
            }
            "host.call-deadline" => self.call_deadline = parse_duration(value).map_err(fail)?,
            "host.memory-limit" => {
                let bytes = parse_size(value).map_err(fail)?;
                if !(1 << 20..=MAX_MEMORY_LIMIT).contains(&bytes) {
                    return Err(fail(format!(
                        "must be between 1MiB and {}MiB",
                        MAX_MEMORY_LIMIT >> 20
                    )));
                }
                self.memory_limit = bytes;
            }
            "host.max-requests-per-call" => {
                self.max_requests_per_call = parse_count(value).map_err(fail)?
            }
            "host.max-response-bytes" => {
                self.max_response_bytes = parse_size(value).map_err(fail)?
            }
            "host.request-timeout" => self.request_timeout = parse_duration(value).map_err(fail)?,
            "host.log-bytes-per-call" => {
                self.log_bytes_per_call = parse_size(value).map_err(fail)?
            }
            "host.max-items-per-answer" => {
                self.max_items_per_answer = parse_count(value).map_err(fail)?
            }
            "host.max-string-bytes" => self.max_string_bytes = parse_size(value).map_err(fail)?,
            "host.max-answer-bytes" => self.max_answer_bytes = parse_size(value).map_err(fail)?,
            "host.max-pull-pages" => self.max_pull_pages = parse_count(value).map_err(fail)?,
            "host.max-pull-records" => self.max_pull_records = parse_count(value).map_err(fail)?,
            "host.max-retry-after" => self.max_retry_after = parse_duration(value).map_err(fail)?,
            "host.keep-instance" => self.keep_instance = parse_bool(value).map_err(fail)?,
            "host.conflicts" => {
                self.conflicts_held = match value.to_ascii_lowercase().as_str() {
                    "bss-wins" => false,
                    "report" => true,
                    _ => {
                        return Err(fail(format!(
                            "{value:?} is not a conflict policy; use bss-wins (the BSS's value is written and the remote's reported) or report (the record is held for review)"
                        )));
                    }
                }
            }
            _ => {
                return Err(fail(format!(
                    "unknown host option; the options are {}",
                    OPTION_KEYS.join(", ")
                )));
            }
        }
        Ok(())
    }
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        _ => Err(format!("{value:?} is not true or false")),
    }
}

fn parse_count(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{value:?} is not a whole number above 0")),
    }
}

/// Parses `1500ms`, `30s`, `2m`, `1h`.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let amount: u64 = digits
        .parse()
        .map_err(|_| format!("{value:?} is not a duration such as 30s, 1500ms or 2m"))?;
    let duration = match unit.trim() {
        "ms" => Duration::from_millis(amount),
        "s" => Duration::from_secs(amount),
        "m" => Duration::from_secs(amount * 60),
        "h" => Duration::from_secs(amount * 3600),
        _ => {
            return Err(format!(
                "{value:?} is not a duration such as 30s, 1500ms or 2m"
            ));
        }
    };
    if duration.is_zero() {
        return Err("must be longer than zero".to_string());
    }
    Ok(duration)
}

/// Parses `4096`, `512KiB`, `64MiB`, `1GiB` (also `KB`/`MB`/`GB`, taken as binary units).
pub fn parse_size(value: &str) -> Result<u64, String> {
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let amount: u64 = digits
        .parse()
        .map_err(|_| format!("{value:?} is not a size such as 512KiB or 64MiB"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "kib" | "kb" | "k" => 10,
        "mib" | "mb" | "m" => 20,
        "gib" | "gb" | "g" => 30,
        _ => return Err(format!("{value:?} is not a size such as 512KiB or 64MiB")),
    };
    let bytes = amount.checked_shl(shift).filter(|b| b >> shift == amount);
    match bytes {
        Some(b) if b > 0 => Ok(b),
        _ => Err(format!("{value:?} is not a size above zero")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_refuse() {
        let mut options = InstanceOptions::default();
        options.set("host.allow-private-network", "on").unwrap();
        options.set("host.call-deadline", "1500ms").unwrap();
        options.set("host.memory-limit", "64MiB").unwrap();
        options.set("host.max-response-bytes", "512KiB").unwrap();
        assert!(options.allow_private_network);
        assert_eq!(options.call_deadline, Duration::from_millis(1500));
        assert_eq!(options.memory_limit, 64 << 20);
        assert_eq!(options.max_response_bytes, 512 << 10);
        assert!(options.keep_instance, "kept instances are the default");
        options.set("host.keep-instance", "off").unwrap();
        assert!(!options.keep_instance);
        let err = options.set("host.keep-instance", "sometimes").unwrap_err();
        assert_eq!(
            err.to_string(),
            "host.keep-instance: \"sometimes\" is not true or false"
        );

        let err = options.set("host.memory-limit", "8GiB").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("host.memory-limit: must be between"),
            "{err}"
        );
        let err = options.set("host.call-deadline", "soon").unwrap_err();
        assert!(err.to_string().contains("such as 30s"), "{err}");
        let err = options.set("host.colour", "blue").unwrap_err();
        assert!(err.to_string().contains("unknown host option"), "{err}");
        assert_eq!(
            options
                .set("host.max-requests-per-call", "0")
                .unwrap_err()
                .key,
            "host.max-requests-per-call"
        );
    }
}
