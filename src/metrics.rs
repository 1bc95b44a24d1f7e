//! What the bot counts for Prometheus (`telegram/health.rs` serves it at `GET /metrics`).
//!
//! Counters are bumped where things happen; what the store holds
//! (sessions, reminders pending) and the queue's depth are read when
//! /metrics is asked for, so they cost nothing between scrapes.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// One label, such as `kind="message"`.
type Label = [(&'static str, &'static str); 1];

/// A histogram per store call.
type Timings = Family<Label, Histogram, fn() -> Histogram>;

/// The bot's figures, shared by every part of it.
pub struct Metrics {
    registry: Registry,
    /// Updates taken in, by kind (message, callback_query, other), after
    /// repeats were skipped.
    pub updates: Family<Label, Counter>,
    /// Messages sent and edits made.
    pub replies: Counter,
    /// Requests Telegram answered 429 (too many requests).
    pub too_many: Counter,
    /// Replies that could not be delivered and were given up.
    pub given_up: Counter,
    /// Requests waiting in the outbound queue or out, across all chats.
    pub queued: Gauge,
    /// How long each store call took, by call.
    pub store_calls: Timings,
    /// Sessions stored, read at each scrape.
    pub sessions: Gauge,
    /// Reminders waiting to be sent, read at each scrape.
    pub reminders_pending: Gauge,
    /// Reminders sent.
    pub reminders_sent: Counter,
}

fn store_histogram() -> Histogram {
    // 50 µs to about 3 s.
    Histogram::new(exponential_buckets(0.00005, 3.0, 11))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("icp_sms_doctor");
        let metrics = Metrics {
            updates: Family::default(),
            replies: Counter::default(),
            too_many: Counter::default(),
            given_up: Counter::default(),
            queued: Gauge::default(),
            store_calls: Family::new_with_constructor(store_histogram),
            sessions: Gauge::default(),
            reminders_pending: Gauge::default(),
            reminders_sent: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "updates",
            "Updates taken in, by kind, repeats skipped",
            metrics.updates.clone(),
        );
        registry.register(
            "replies_sent",
            "Messages sent and edits made",
            metrics.replies.clone(),
        );
        registry.register(
            "requests_429",
            "Requests Telegram answered with 429 Too Many Requests",
            metrics.too_many.clone(),
        );
        registry.register(
            "replies_given_up",
            "Replies that could not be delivered and were given up",
            metrics.given_up.clone(),
        );
        registry.register(
            "queue_depth",
            "Messages waiting in the outbound queue or out",
            metrics.queued.clone(),
        );
        registry.register(
            "store_call_seconds",
            "How long each store call took",
            metrics.store_calls.clone(),
        );
        registry.register(
            "sessions_stored",
            "Conversations stored",
            metrics.sessions.clone(),
        );
        registry.register(
            "reminders_pending",
            "Reminders waiting to be sent",
            metrics.reminders_pending.clone(),
        );
        registry.register(
            "reminders_sent",
            "Reminders sent",
            metrics.reminders_sent.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    /// Counts an update taken in.
    pub fn update(&self, kind: &'static str) {
        self.updates.get_or_create(&[("kind", kind)]).inc();
    }

    /// Records how long a store call took.
    pub fn store_call(&self, call: &'static str, took: Duration) {
        self.store_calls
            .get_or_create(&[("call", call)])
            .observe(took.as_secs_f64());
    }

    /// The figures in Prometheus's text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            log::error!("metrics: encoding failed: {e}");
        }
        text
    }
}
