//! What the bot counts for Prometheus (`telegram/health.rs` serves it at `GET /metrics`).
//!
//! Counters are bumped where things happen; what the store holds
//! (sessions, reminders pending) and the queue's depth are read when
//! /metrics is asked for, so they cost nothing between scrapes.

use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
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
    /// Updates not handled again, by why: received before (Telegram sent
    /// it again), or a person repeating themselves while the answer is
    /// fresh.
    pub skipped: Family<Label, Counter>,
    /// Webhook posts refused for want of the right secret.
    pub refused_posts: Counter,
    /// Dialogue reloads (SIGHUP), by outcome: ok or failed.
    pub reloads: Family<Label, Counter>,
    /// Store calls that failed (a lost race excepted), by call.
    pub store_errors: Family<Label, Counter>,
    /// Per node of one dialogue version, over the figures' default period:
    /// conversations that reached it, stopped there, and said solved after
    /// it. Read from the store's facts (`nodes`), so store-wide.
    pub node_reached: Family<NodeLabels, Gauge>,
    pub node_left: Family<NodeLabels, Gauge>,
    pub node_solved_after: Family<NodeLabels, Gauge>,
    /// Which version the node figures are of, and when they were read.
    pub nodes_read: std::sync::Mutex<Option<(String, std::time::Instant)>>,
}

/// A node's labels: its id and the dialogue version.
pub(crate) type NodeLabels = Vec<(&'static str, String)>;

/// How long node figures read from the store are served before they are
/// read again: reading a week of facts at every scrape would cost the
/// store more than the figures are worth.
pub(crate) const NODES_FRESH: Duration = Duration::from_secs(60);

/// Why an update was skipped, each shown from the start.
pub(crate) const RECEIVED_BEFORE: &str = "received_before";
pub(crate) const REPEATED: &str = "repeated_by_person";

/// The store's calls, as `store_call_seconds` and `store_errors` name them.
const STORE_CALLS: [&str; 9] = [
    "get", "commit", "range", "count", "read_log", "next_id", "sweep", "take", "hold",
];

/// A store call's bounds, in seconds: 50 µs to 2.5 s, written as
/// numbers a person reads (not 0.00015000000000000001).
pub(crate) const STORE_BUCKETS: [f64; 15] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5,
];

fn store_histogram() -> Histogram {
    Histogram::new(STORE_BUCKETS)
}

/// The kinds of update counted, each shown from the start (at 0).
const UPDATE_KINDS: [&str; 3] = ["message", "callback_query", "other"];

impl Default for Metrics {
    fn default() -> Self {
        // Named in full here: the process's own figures carry the names
        // every Prometheus client gives them, without the bot's prefix.
        let mut registry = Registry::default();
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
            skipped: Family::default(),
            refused_posts: Counter::default(),
            reloads: Family::default(),
            store_errors: Family::default(),
            node_reached: Family::default(),
            node_left: Family::default(),
            node_solved_after: Family::default(),
            nodes_read: std::sync::Mutex::new(None),
            registry: Registry::default(),
        };
        registry.register(
            "icp_sms_doctor_updates",
            "Updates taken in, by kind, repeats skipped",
            metrics.updates.clone(),
        );
        registry.register(
            "icp_sms_doctor_replies_sent",
            "Messages sent and edits made",
            metrics.replies.clone(),
        );
        registry.register(
            "icp_sms_doctor_requests_429",
            "Requests Telegram answered with 429 Too Many Requests",
            metrics.too_many.clone(),
        );
        registry.register(
            "icp_sms_doctor_replies_given_up",
            "Replies that could not be delivered and were given up",
            metrics.given_up.clone(),
        );
        registry.register(
            "icp_sms_doctor_queue_depth",
            "Messages waiting in the outbound queue or out",
            metrics.queued.clone(),
        );
        registry.register(
            "icp_sms_doctor_store_call_seconds",
            "How long each store call took",
            metrics.store_calls.clone(),
        );
        registry.register(
            "icp_sms_doctor_sessions_stored",
            "Conversations stored",
            metrics.sessions.clone(),
        );
        registry.register(
            "icp_sms_doctor_reminders_pending",
            "Reminders waiting to be sent",
            metrics.reminders_pending.clone(),
        );
        registry.register(
            "icp_sms_doctor_reminders_sent",
            "Reminders sent",
            metrics.reminders_sent.clone(),
        );
        registry.register(
            "icp_sms_doctor_updates_skipped",
            "Updates not handled again: received before, or repeated by a person while the answer is fresh",
            metrics.skipped.clone(),
        );
        registry.register(
            "icp_sms_doctor_webhook_posts_refused",
            "Webhook posts refused for want of the right secret",
            metrics.refused_posts.clone(),
        );
        registry.register(
            "icp_sms_doctor_reloads",
            "Dialogue reloads (SIGHUP), by outcome",
            metrics.reloads.clone(),
        );
        registry.register(
            "icp_sms_doctor_store_errors",
            "Store calls that failed, by call",
            metrics.store_errors.clone(),
        );
        registry.register(
            "icp_sms_doctor_node_reached",
            "Conversations that reached a node, over the figures' default period (store-wide)",
            metrics.node_reached.clone(),
        );
        registry.register(
            "icp_sms_doctor_node_left",
            "Conversations not marked solved that stopped at a node, over the figures' default period (store-wide)",
            metrics.node_left.clone(),
        );
        registry.register(
            "icp_sms_doctor_node_solved_after",
            "Conversations that reached a node and said solved after it, over the figures' default period (store-wide)",
            metrics.node_solved_after.clone(),
        );
        registry.register(
            "icp_sms_doctor_build",
            "The running build",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register_collector(Box::new(Process));
        for kind in UPDATE_KINDS {
            drop(metrics.updates.get_or_create(&[("kind", kind)]));
        }
        for why in [RECEIVED_BEFORE, REPEATED] {
            drop(metrics.skipped.get_or_create(&[("why", why)]));
        }
        for outcome in ["ok", "failed"] {
            drop(metrics.reloads.get_or_create(&[("outcome", outcome)]));
        }
        for call in STORE_CALLS {
            drop(metrics.store_errors.get_or_create(&[("call", call)]));
        }
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

    /// Records how long a store call took, and whether it failed.
    pub fn store_call(&self, call: &'static str, took: Duration, failed: bool) {
        self.store_calls
            .get_or_create(&[("call", call)])
            .observe(took.as_secs_f64());
        if failed {
            self.store_errors.get_or_create(&[("call", call)]).inc();
        }
    }

    /// Counts an update skipped, and why.
    pub fn skip(&self, why: &'static str) {
        self.skipped.get_or_create(&[("why", why)]).inc();
    }

    /// Counts a reload of the dialogue.
    pub fn reload(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        self.reloads.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// Puts the node figures of dialogue `version` in place of whatever
    /// was there: one series per node reached, labelled with the version.
    pub fn set_nodes(&self, version: &str, nodes: &[(String, [u64; 3])]) {
        for family in [&self.node_reached, &self.node_left, &self.node_solved_after] {
            family.clear();
        }
        for (node, [reached, left, solved_after]) in nodes {
            let labels = vec![("node", node.clone()), ("version", version.to_string())];
            self.node_reached
                .get_or_create(&labels)
                .set(*reached as i64);
            self.node_left.get_or_create(&labels).set(*left as i64);
            self.node_solved_after
                .get_or_create(&labels)
                .set(*solved_after as i64);
        }
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

/// The process's own figures, read from `/proc` at each scrape (Linux;
/// elsewhere left out): CPU time, resident memory, open files and when
/// it started.
#[derive(Debug)]
struct Process;

/// Clock ticks a second in `/proc/self/stat` (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(figures) = ProcessFigures::read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(figures.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time spent, in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory, in bytes",
                Some(figures.resident_bytes),
            ),
            (
                "process_open_fds",
                "Open file descriptors",
                Some(figures.open_fds),
            ),
            (
                "process_start_time_seconds",
                "When the process started, in seconds since the Unix epoch",
                figures.start_time,
            ),
        ] {
            let Some(value) = value else {
                continue;
            };
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

/// What `/proc` says of this process.
struct ProcessFigures {
    cpu_seconds: f64,
    resident_bytes: f64,
    open_fds: f64,
    /// Left out where the boot time cannot be read (the unit's
    /// `ProcSubset=pid` hides `/proc/stat`).
    start_time: Option<f64>,
}

impl ProcessFigures {
    fn read() -> Option<ProcessFigures> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The fields after the command's name, which may hold spaces and
        // parentheses: field 3 (state) onwards.
        let after = stat.get(stat.rfind(')')? + 2..)?;
        let fields: Vec<&str> = after.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
        let cpu_seconds = (field(14)? + field(15)?) / TICKS;
        let started_ticks = field(22)?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let resident_kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|stat| {
            stat.lines()
                .find_map(|l| l.strip_prefix("btime "))?
                .trim()
                .parse::<f64>()
                .ok()
        });
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as f64;
        Some(ProcessFigures {
            cpu_seconds,
            resident_bytes: resident_kb * 1024.0,
            open_fds,
            start_time: boot.map(|boot| boot + started_ticks / TICKS),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_figure_is_there_from_the_start_with_clean_bounds() {
        let text = Metrics::default().encode();
        for kind in UPDATE_KINDS {
            assert!(
                text.contains(&format!(
                    "icp_sms_doctor_updates_total{{kind=\"{kind}\"}} 0"
                )),
                "{text}"
            );
        }
        for counter in [
            "replies_sent",
            "requests_429",
            "replies_given_up",
            "reminders_sent",
        ] {
            assert!(
                text.contains(&format!("icp_sms_doctor_{counter}_total 0")),
                "{text}"
            );
        }
        assert!(text.contains(&format!(
            "icp_sms_doctor_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )));
        for process in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_start_time_seconds ",
        ] {
            assert!(text.contains(process), "{process}: {text}");
        }
        let metrics = Metrics::default();
        metrics.store_call("get", Duration::from_micros(70), false);
        metrics.store_call("commit", Duration::from_millis(3), true);
        metrics.reload(false);
        let text = metrics.encode();
        assert!(text.contains("icp_sms_doctor_store_errors_total{call=\"commit\"} 1"));
        assert!(text.contains("icp_sms_doctor_store_errors_total{call=\"get\"} 0"));
        assert!(text.contains("icp_sms_doctor_reloads_total{outcome=\"failed\"} 1"));
        assert!(text.contains("le=\"0.00025\""), "{text}");
        assert!(!text.contains("0000000001"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
