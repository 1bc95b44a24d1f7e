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
    /// What waits in the store: the inbox's backlog, cases for the staff.
    pub waiting: Waiting,
    /// Conversations through the dialogue, by category.
    pub funnel: Funnel,
    /// The case webhook's deliveries.
    pub case_events: CaseEvents,
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
            waiting: Waiting::default(),
            funnel: Funnel::default(),
            case_events: CaseEvents::default(),
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
        metrics.waiting.register(&mut registry);
        metrics.funnel.register(&mut registry);
        metrics.case_events.register(&mut registry);
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

/// What waits in the store, read at each scrape. Store-wide: every
/// instance sharing a store reports the same figures (take their `max`).
#[derive(Default)]
pub struct Waiting {
    /// Updates recorded in the inbox and not yet done.
    pub inbox: Gauge,
    /// Open cases nobody on the staff has taken yet.
    pub cases: Gauge,
    /// How long the oldest of those has waited, in seconds (0 for none).
    pub oldest_case_secs: Gauge,
}

impl Waiting {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "icp_sms_doctor_inbox_backlog",
            "Updates recorded in the store's inbox and not yet done (store-wide)",
            self.inbox.clone(),
        );
        registry.register(
            "icp_sms_doctor_cases_waiting",
            "Open cases not yet taken by the staff (store-wide)",
            self.cases.clone(),
        );
        registry.register(
            "icp_sms_doctor_cases_oldest_wait_seconds",
            "How long the oldest open case not yet taken has waited, 0 for none (store-wide)",
            self.oldest_case_secs.clone(),
        );
    }
}

/// The case webhook's deliveries (`cases/webhook.rs`), each from 0.
#[derive(Default)]
pub struct CaseEvents {
    /// Events the receiver answered 2xx.
    pub posted: Counter,
    /// Failed tries, each followed by another later.
    pub retried: Counter,
    /// Events dropped: still failing a day after they were queued, or not
    /// queued at all because the store failed.
    pub given_up: Counter,
    /// Events queued and not yet delivered, read at each scrape.
    pub queued: Gauge,
}

impl CaseEvents {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "icp_sms_doctor_case_events_posted",
            "Case events the case webhook's receiver took (answered 2xx)",
            self.posted.clone(),
        );
        registry.register(
            "icp_sms_doctor_case_events_retried",
            "Posts of case events that failed and are tried again later",
            self.retried.clone(),
        );
        registry.register(
            "icp_sms_doctor_case_events_given_up",
            "Case events dropped: still failing a day after they were queued, or never queued because the store failed",
            self.given_up.clone(),
        );
        registry.register(
            "icp_sms_doctor_case_events_queued",
            "Case events queued for the case webhook and not yet delivered (store-wide)",
            self.queued.clone(),
        );
    }
}

/// A category's label: a category entry's node id (`-` for a node in none).
type Category = [(&'static str, String); 1];

/// A stage of the funnel a conversation goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// A category entered: from outside every category (the menu, the
    /// "not sure" questions), or started inside it (a deep link, routed
    /// text).
    Started,
    /// An end shown.
    EndReached,
    /// "Solved" pressed at an end.
    Solved,
    /// "Not solved" pressed at an end.
    NotSolved,
}

/// Conversations through the dialogue, by category: this process's
/// counters (take their `sum` across instances).
#[derive(Default)]
pub struct Funnel {
    started: Family<Category, Counter>,
    ends: Family<Category, Counter>,
    solved: Family<Category, Counter>,
    not_solved: Family<Category, Counter>,
}

impl Funnel {
    fn register(&self, registry: &mut Registry) {
        for (name, help, family) in [
            (
                "icp_sms_doctor_funnel_started",
                "Conversations entering a category from outside every category, or started inside it",
                &self.started,
            ),
            (
                "icp_sms_doctor_funnel_ends_reached",
                "Ends shown, by the category the conversation came through",
                &self.ends,
            ),
            (
                "icp_sms_doctor_funnel_solved",
                "Solved pressed at an end, by category",
                &self.solved,
            ),
            (
                "icp_sms_doctor_funnel_not_solved",
                "Not solved pressed at an end, by category",
                &self.not_solved,
            ),
        ] {
            registry.register(name, help, family.clone());
        }
    }

    fn family(&self, stage: Stage) -> &Family<Category, Counter> {
        match stage {
            Stage::Started => &self.started,
            Stage::EndReached => &self.ends,
            Stage::Solved => &self.solved,
            Stage::NotSolved => &self.not_solved,
        }
    }

    /// Shows every stage of these categories from now on, at 0 until
    /// counted: called with the dialogue's categories when it is loaded.
    pub fn show<'a>(&self, categories: impl IntoIterator<Item = &'a str>) {
        for category in categories {
            for stage in [
                Stage::Started,
                Stage::EndReached,
                Stage::Solved,
                Stage::NotSolved,
            ] {
                drop(
                    self.family(stage)
                        .get_or_create(&[("category", category.to_string())]),
                );
            }
        }
    }

    /// Counts a conversation reaching `stage` in `category`.
    pub fn count(&self, stage: Stage, category: &str) {
        self.family(stage)
            .get_or_create(&[("category", category.to_string())])
            .inc();
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

    /// What the operators' dashboard reads: the store's backlog and cases
    /// waiting at 0 from the start, the funnel at 0 for every category
    /// shown, and counted by stage and category.
    #[test]
    fn the_dashboards_figures_are_there_from_the_start_and_count() {
        let metrics = Metrics::default();
        metrics.funnel.show(["timeout", "not_received"]);
        let text = metrics.encode();
        for gauge in [
            "icp_sms_doctor_case_events_posted_total 0",
            "icp_sms_doctor_case_events_retried_total 0",
            "icp_sms_doctor_case_events_given_up_total 0",
            "icp_sms_doctor_case_events_queued 0",
            "icp_sms_doctor_inbox_backlog 0",
            "icp_sms_doctor_cases_waiting 0",
            "icp_sms_doctor_cases_oldest_wait_seconds 0",
        ] {
            assert!(text.contains(gauge), "{gauge}: {text}");
        }
        for stage in ["started", "ends_reached", "solved", "not_solved"] {
            for category in ["timeout", "not_received"] {
                let line =
                    format!("icp_sms_doctor_funnel_{stage}_total{{category=\"{category}\"}} 0");
                assert!(text.contains(&line), "{line}: {text}");
            }
        }
        metrics.funnel.count(Stage::Solved, "timeout");
        metrics.funnel.count(Stage::Solved, "timeout");
        metrics.funnel.count(Stage::EndReached, "-");
        metrics.waiting.oldest_case_secs.set(90);
        let text = metrics.encode();
        assert!(
            text.contains("icp_sms_doctor_funnel_solved_total{category=\"timeout\"} 2"),
            "{text}"
        );
        assert!(text.contains("icp_sms_doctor_funnel_ends_reached_total{category=\"-\"} 1"));
        assert!(text.contains("icp_sms_doctor_cases_oldest_wait_seconds 90"));
    }
}
