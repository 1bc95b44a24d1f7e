//! What the bot's parts share: the dialogue, the store, the clock and the settings.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::{Clock, DEFAULT_TIMEZONE};
use crate::engine::Reply;
use crate::lang::Lang;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::tree::Tree;
use crate::tree::report::LoadError;

pub use crate::store::DEFAULT_SESSION_IDLE_SECS;

/// The default waits, in minutes: before the staff chat is pinged about
/// a case nobody answered, before whoever took a case is pinged about its
/// person waiting, and how long after closing the person's next message
/// reopens it.
pub(crate) const DEFAULT_NUDGE_MINUTES: u32 = 30;
pub(crate) const DEFAULT_IDLE_MINUTES: u32 = 60;
pub(crate) const DEFAULT_REOPEN_MINUTES: u32 = 120;

/// The longest of those waits, in minutes: a week.
pub(crate) const MAX_DESK_MINUTES: u32 = 7 * 24 * 60;

/// A wait in minutes as seconds; 0 is never.
pub(crate) fn minutes(value: u32) -> Option<i64> {
    (value > 0).then_some(i64::from(value) * 60)
}

/// The waits before a ping, in seconds; `None` is never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NudgeWaits {
    /// A case that nobody took and no staff answered.
    pub unanswered: Option<i64>,
    /// A taken case whose person wrote last.
    pub idle: Option<i64>,
}

impl NudgeWaits {
    /// The defaults.
    pub fn default_waits() -> NudgeWaits {
        NudgeWaits {
            unanswered: minutes(DEFAULT_NUDGE_MINUTES),
            idle: minutes(DEFAULT_IDLE_MINUTES),
        }
    }

    /// The shortest wait there is.
    pub(crate) fn shortest(self) -> Option<i64> {
        match (self.unanswered, self.idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// How the conversations behave, as configured.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The language for people whose own is unknown.
    pub default_lang: Lang,
    /// The time zone times are shown in.
    pub timezone: chrono_tz::Tz,
    /// How long a conversation may stay idle before it is closed.
    pub session_idle_secs: i64,
    /// The staff chat cases are handed to; without one, nobody is offered
    /// a person.
    pub support_chat: Option<i64>,
    /// Who may see /stats and /graph in a private chat.
    pub admins: Vec<u64>,
    /// Whether "ask me tomorrow" is offered: only where a scheduler runs
    /// to ask (not in the console).
    pub asks_later: bool,
    /// The waits before a case is pinged to the staff.
    pub nudges: NudgeWaits,
    /// How long after a case closed its person's next message reopens it;
    /// `None`: never, it opens a new one.
    pub reopen_secs: Option<i64>,
    /// Where the cases' events are posted; without one, none are queued.
    pub case_webhook: Option<CaseWebhook>,
}

/// How long one post of a case event may take, answer included, before
/// it counts as failed and is tried again later.
pub const CASE_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// The outgoing webhook for case events (`CASE_WEBHOOK_URL`,
/// `CASE_WEBHOOK_SECRET`): where they are posted and the secret each body
/// is signed with. Its `Debug` shows neither the secret nor the address's
/// path, which may hold a token of its own.
#[derive(Clone, PartialEq, Eq)]
pub struct CaseWebhook {
    pub url: url::Url,
    pub secret: String,
    /// How long one post may take.
    pub timeout: Duration,
}

impl CaseWebhook {
    pub fn new(url: url::Url, secret: String) -> CaseWebhook {
        CaseWebhook {
            url,
            secret,
            timeout: CASE_WEBHOOK_TIMEOUT,
        }
    }

    /// The address as logs show it: its scheme, host and port, nothing of
    /// its path or query.
    pub fn target(&self) -> String {
        let host = self.url.host_str().unwrap_or("?");
        match self.url.port() {
            Some(port) => format!("{}://{host}:{port}", self.url.scheme()),
            None => format!("{}://{host}", self.url.scheme()),
        }
    }
}

impl std::fmt::Debug for CaseWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseWebhook")
            .field("target", &self.target())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Default for Settings {
    /// Chinese, times in Asia/Shanghai, conversations closed after 24 idle
    /// hours, no support chat, no admins, next-day questions asked, the
    /// desk's default waits, no case webhook.
    fn default() -> Self {
        Settings {
            default_lang: Lang::Zh,
            timezone: DEFAULT_TIMEZONE,
            session_idle_secs: DEFAULT_SESSION_IDLE_SECS,
            support_chat: None,
            admins: Vec::new(),
            asks_later: true,
            nudges: NudgeWaits::default_waits(),
            reopen_secs: minutes(DEFAULT_REOPEN_MINUTES),
            case_webhook: None,
        }
    }
}

/// This process, as the owner of what it takes in a shared store: its
/// host, its pid and when it started, so no two processes are the same.
fn instance() -> String {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    format!(
        "{} pid {} started {started}",
        host.trim(),
        std::process::id()
    )
}

/// What every handler and the scheduler share.
pub struct App {
    /// The dialogue in use; a reload swaps it whole, so a step that took
    /// it keeps one consistent tree to its end.
    tree: RwLock<Arc<Tree>>,
    pub store: Store,
    /// Where "now" comes from.
    pub clock: Clock,
    pub settings: Settings,
    /// Wakes the scheduler when a reminder is set.
    pub(crate) wake: Notify,
    /// Wakes the case webhook's courier when an event is queued.
    pub(crate) case_events: Notify,
    /// Who this process is, on what it takes in a store other processes
    /// may share: inbox entries, reminder claims.
    pub instance: String,
    /// What /metrics shows.
    pub metrics: Arc<Metrics>,
}

impl App {
    pub fn new(tree: Arc<Tree>, store: Store, clock: Clock, settings: Settings) -> App {
        // Every store call is timed for /metrics.
        let metrics = Arc::new(Metrics::default());
        show_categories(&metrics, &tree);
        let timing = Arc::clone(&metrics);
        let store = store.timed(Arc::new(move |call, took, failed| {
            timing.store_call(call, took, failed)
        }));
        App {
            tree: RwLock::new(tree),
            store,
            metrics,
            clock,
            settings,
            wake: Notify::new(),
            case_events: Notify::new(),
            instance: instance(),
        }
    }

    /// The dialogue in use now.
    pub fn tree(&self) -> Arc<Tree> {
        // The lock guards a pointer swap: a panic cannot leave it half done.
        self.tree.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Loads the dialogue from `dir` again and uses it from the next step
    /// on. A folder with problems is refused and the running tree stays;
    /// sessions standing on a node the new tree lacks get the entry menu
    /// with a note, as for any out-of-date menu.
    pub fn reload(&self, dir: &Path) -> Result<Arc<Tree>, LoadError> {
        let tree = Arc::new(crate::load_tree(Some(dir))?);
        show_categories(&self.metrics, &tree);
        *self.tree.write().unwrap_or_else(|e| e.into_inner()) = tree.clone();
        Ok(tree)
    }
}

/// The funnel in /metrics shows each of the dialogue's categories from
/// the start, at 0.
fn show_categories(metrics: &Metrics, tree: &Tree) {
    let ids = tree.categories().iter().map(|c| tree.node(*c).id.as_str());
    metrics.funnel.show(ids);
}

/// Someone written to outside a conversation (a reminder, a next-day
/// question): where they asked, and how a group addresses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The chat they asked in.
    pub chat: i64,
    pub user: u64,
    pub name: String,
    /// The forum topic they asked in.
    pub thread: Option<i32>,
}

/// How a message written outside a conversation fared.
#[derive(Debug)]
pub enum Delivery {
    Sent,
    /// Refused for good (the bot blocked, removed from the group…).
    Undeliverable(String),
    /// The connection broke after the request went out: it may have
    /// arrived, so it counts as sent.
    MaybeSent(String),
    /// A passing failure: it was not sent.
    TryAgain(String),
    /// Not sent because the bot is shutting down.
    Postponed,
}

/// How the features reach a person outside a conversation; the Telegram
/// adapter provides it.
pub trait Reach: Clone + Send + Sync + 'static {
    /// Sends `reply` to the person's private chat when `private` (they
    /// have one with the bot) or when they asked there, else to the group
    /// they asked in, mentioning them; a message never goes out twice.
    fn deliver(
        &self,
        to: &Recipient,
        reply: &Reply,
        private: bool,
    ) -> impl std::future::Future<Output = Delivery> + Send;
}
