//! The process's metrics, served at `GET /metrics` in the Prometheus (OpenMetrics) text format.
//!
//! Counters are process-wide and counted where things happen: commands by verb and outcome and
//! refusals by reason (the bot), the append's latency (the writer), reminders sent (the
//! scheduler), Slack API calls and their errors (the Slack client), release markers delivered
//! and dead-lettered (the sinks). Gauges of the ledger's
//! state (queue length, open locks and the age of the oldest, the follower's lag, whether the
//! store answers) are read from the follower and the store when Prometheus scrapes.

use std::sync::LazyLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::domain::Refusal;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    pub command: String,
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    pub sink: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkOutcomeLabels {
    pub sink: String,
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub method: String,
}

pub struct Metrics {
    registry: Registry,
    commands: Family<CommandLabels, Counter>,
    refusals: Family<ReasonLabels, Counter>,
    append_seconds: Histogram,
    reminders_sent: Family<KindLabels, Counter>,
    slack_calls: Family<MethodLabels, Counter>,
    slack_errors: Family<MethodLabels, Counter>,
    sink_deliveries: Family<SinkOutcomeLabels, Counter>,
    sink_dead_letters: Family<SinkLabels, Counter>,
    tracker_lookups: Family<OutcomeLabels, Counter>,
    pub queue_length: Gauge,
    pub open_locks: Gauge,
    pub oldest_lock_age_seconds: Gauge<f64, AtomicU64>,
    pub follower_lag_events: Gauge,
    pub follower_caught_up: Gauge,
    pub ledger_up: Gauge,
}

/// The process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("dobrobot");
        let metrics = Metrics {
            registry: Registry::default(),
            commands: Family::default(),
            refusals: Family::default(),
            // 0.5 ms to about 8 s.
            append_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 15)),
            reminders_sent: Family::default(),
            slack_calls: Family::default(),
            slack_errors: Family::default(),
            sink_deliveries: Family::default(),
            sink_dead_letters: Family::default(),
            tracker_lookups: Family::default(),
            queue_length: Gauge::default(),
            open_locks: Gauge::default(),
            oldest_lock_age_seconds: Gauge::default(),
            follower_lag_events: Gauge::default(),
            follower_caught_up: Gauge::default(),
            ledger_up: Gauge::default(),
        };
        registry.register(
            "commands",
            "Commands handled, by verb and outcome (accepted, refused, already_recorded, not_recorded)",
            metrics.commands.clone(),
        );
        registry.register(
            "refusals",
            "Commands refused, by reason",
            metrics.refusals.clone(),
        );
        registry.register(
            "append_seconds",
            "Time to append a batch of events to the ledger",
            metrics.append_seconds.clone(),
        );
        registry.register(
            "reminders_sent",
            "Reminders posted, by kind",
            metrics.reminders_sent.clone(),
        );
        registry.register(
            "slack_api_calls",
            "Slack Web API calls, by method",
            metrics.slack_calls.clone(),
        );
        registry.register(
            "slack_api_errors",
            "Slack Web API calls that failed, by method",
            metrics.slack_errors.clone(),
        );
        registry.register(
            "sink_deliveries",
            "Release marker delivery attempts, by sink and outcome (delivered, retried, dead_lettered)",
            metrics.sink_deliveries.clone(),
        );
        registry.register(
            "sink_dead_letters",
            "Release markers given up on after repeated failure, by sink",
            metrics.sink_dead_letters.clone(),
        );
        registry.register(
            "tracker_lookups",
            "Tickets looked up in the tracker on dobro, by outcome (found, not_found, unavailable, misconfigured)",
            metrics.tracker_lookups.clone(),
        );
        registry.register(
            "queue_length",
            "Open release requests",
            metrics.queue_length.clone(),
        );
        registry.register("open_locks", "Held locks", metrics.open_locks.clone());
        registry.register(
            "oldest_lock_age_seconds",
            "Age of the oldest held lock (0 when none is held)",
            metrics.oldest_lock_age_seconds.clone(),
        );
        registry.register(
            "follower_lag_events",
            "Events in the ledger the read models do not have yet",
            metrics.follower_lag_events.clone(),
        );
        registry.register(
            "follower_caught_up",
            "1 once the read models have read the whole ledger",
            metrics.follower_caught_up.clone(),
        );
        registry.register(
            "ledger_up",
            "1 when the event store answered the last scrape",
            metrics.ledger_up.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    pub fn command(&self, command: &str, outcome: &str) {
        self.commands
            .get_or_create(&CommandLabels {
                command: command.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    pub fn refusal(&self, refusal: &Refusal) {
        // The reason's name is the one the ledger records (`kind` of the refusal's JSON).
        let reason = serde_json::to_value(refusal)
            .ok()
            .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
            .unwrap_or_else(|| "unknown".to_string());
        self.refusals.get_or_create(&ReasonLabels { reason }).inc();
    }

    pub fn append(&self, took: Duration) {
        self.append_seconds.observe(took.as_secs_f64());
    }

    pub fn reminder_sent(&self, kind: &str) {
        self.reminders_sent
            .get_or_create(&KindLabels {
                kind: kind.to_string(),
            })
            .inc();
    }

    pub fn slack_call(&self, method: &str, failed: bool) {
        let labels = MethodLabels {
            method: method.to_string(),
        };
        self.slack_calls.get_or_create(&labels).inc();
        if failed {
            self.slack_errors.get_or_create(&labels).inc();
        }
    }

    /// One attempt to deliver a release marker to `sink`, and how it ended.
    pub fn sink_delivery(&self, sink: &str, outcome: &str) {
        self.sink_deliveries
            .get_or_create(&SinkOutcomeLabels {
                sink: sink.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        if outcome == "dead_lettered" {
            self.sink_dead_letters
                .get_or_create(&SinkLabels {
                    sink: sink.to_string(),
                })
                .inc();
        }
    }

    /// A ticket looked up in the tracker, and what the tracker said.
    pub fn tracker_lookup(&self, outcome: &str) {
        self.tracker_lookups
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Everything, in the text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
