//! The process's metrics in the Prometheus text format (`GET /metrics` on `serve`): connector
//! calls per connector, instance, export and outcome with their duration, whether each ran in a
//! fresh or a kept instance, the HTTP statuses
//! remotes answered, records per outcome, and gauges the store knows (queue depth, feed backlog)
//! set when scraped. One registry per process, kept in a static so any layer can count without
//! carrying a handle; counters start at zero with the process, as Prometheus expects.

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    connector: String,
    instance: String,
    export: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExportLabels {
    connector: String,
    export: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstancingLabels {
    connector: String,
    instance: String,
    /// `fresh` (instantiated for the call) or `kept` (left by an earlier call).
    how: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    instance: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RecordLabels {
    instance: String,
    entity: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallbackLabels {
    instance: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstanceLabels {
    instance: String,
}

struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    call_seconds: Family<ExportLabels, Histogram>,
    instancing: Family<InstancingLabels, Counter>,
    remote_responses: Family<StatusLabels, Counter>,
    records: Family<RecordLabels, Counter>,
    queue_depth: Family<InstanceLabels, Gauge>,
    feed_backlog: Family<InstanceLabels, Gauge>,
    callbacks: Family<CallbackLabels, Counter>,
}

fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let mut registry = Registry::with_prefix("bss");
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "connector_calls",
            "Connector export calls by outcome (ok, trap, deadline, memory, …)",
            calls.clone(),
        );
        let call_seconds = Family::<ExportLabels, Histogram>::new_with_constructor(|| {
            // 100 µs to about 100 s.
            Histogram::new(exponential_buckets(0.000_1, 4.0, 11))
        });
        registry.register(
            "connector_call_seconds",
            "Duration of connector export calls",
            call_seconds.clone(),
        );
        let instancing = Family::<InstancingLabels, Counter>::default();
        registry.register(
            "connector_call_instances",
            "Connector calls by the instance they ran in: fresh, or kept from an earlier call",
            instancing.clone(),
        );
        let remote_responses = Family::<StatusLabels, Counter>::default();
        registry.register(
            "remote_responses",
            "HTTP responses remotes gave connectors' requests, by status",
            remote_responses.clone(),
        );
        let records = Family::<RecordLabels, Counter>::default();
        registry.register(
            "records",
            "Records pushed or pulled, by outcome",
            records.clone(),
        );
        let queue_depth = Family::<InstanceLabels, Gauge>::default();
        registry.register(
            "retry_queue_depth",
            "Records waiting in the retry queue",
            queue_depth.clone(),
        );
        let feed_backlog = Family::<InstanceLabels, Gauge>::default();
        registry.register(
            "feed_backlog",
            "Change-feed entries the BSS has not acknowledged",
            feed_backlog.clone(),
        );
        let callbacks = Family::<CallbackLabels, Counter>::default();
        registry.register(
            "callbacks",
            "Remote callbacks the hook received, by outcome (accepted, duplicate, refused, …)",
            callbacks.clone(),
        );
        Metrics {
            callbacks,
            registry,
            calls,
            call_seconds,
            instancing,
            remote_responses,
            records,
            queue_depth,
            feed_backlog,
        }
    })
}

/// Counts one connector call and its duration.
pub fn connector_call(connector: &str, instance: &str, export: &str, outcome: &str, secs: f64) {
    let m = metrics();
    m.calls
        .get_or_create(&CallLabels {
            connector: connector.to_string(),
            instance: instance.to_string(),
            export: export.to_string(),
            outcome: outcome.to_string(),
        })
        .inc();
    m.call_seconds
        .get_or_create(&ExportLabels {
            connector: connector.to_string(),
            export: export.to_string(),
        })
        .observe(secs);
}

/// Counts the instance one connector call ran in: kept from an earlier call, or fresh.
pub fn connector_call_instance(connector: &str, instance: &str, kept: bool) {
    metrics()
        .instancing
        .get_or_create(&InstancingLabels {
            connector: connector.to_string(),
            instance: instance.to_string(),
            how: if kept { "kept" } else { "fresh" },
        })
        .inc();
}

/// Counts one HTTP response a remote gave (`status` 0: no response).
pub fn remote_response(instance: &str, status: u16) {
    metrics()
        .remote_responses
        .get_or_create(&StatusLabels {
            instance: instance.to_string(),
            status: status.to_string(),
        })
        .inc();
}

/// Counts `count` records of a run with this outcome.
pub fn records(instance: &str, entity: &str, outcome: &str, count: u64) {
    metrics()
        .records
        .get_or_create(&RecordLabels {
            instance: instance.to_string(),
            entity: entity.to_string(),
            outcome: outcome.to_string(),
        })
        .inc_by(count);
}

/// Counts one callback delivery. `instance` is empty until the hook's token matched, so a
/// caller guessing names cannot grow the label set.
pub fn callback(instance: &str, outcome: &str) {
    metrics()
        .callbacks
        .get_or_create(&CallbackLabels {
            instance: instance.to_string(),
            outcome: outcome.to_string(),
        })
        .inc();
}

/// Sets the gauges the store knows, per instance: (instance, queue depth, feed backlog).
pub fn set_store_gauges(values: &[(String, i64, i64)]) {
    let m = metrics();
    // Instances deleted since the last scrape must not linger.
    m.queue_depth.clear();
    m.feed_backlog.clear();
    for (instance, queue, backlog) in values {
        let labels = InstanceLabels {
            instance: instance.clone(),
        };
        m.queue_depth.get_or_create(&labels).set(*queue);
        m.feed_backlog.get_or_create(&labels).set(*backlog);
    }
}

/// Everything, in the Prometheus text exposition format.
pub fn render() -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &metrics().registry)
        .expect("writing to a String cannot fail");
    text
}
