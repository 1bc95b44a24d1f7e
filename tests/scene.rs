//! The scene of an end-to-end test: the fake Bot API and the bot running against it, always stopped.
//!
//! A scene owns both. `stop` shuts the bot down gracefully; dropping a
//! scene (as a failed assertion does) aborts the bot and closes the fake
//! API, so a failing test never leaves either running. Buttons are found
//! by the node they lead to, not by their wording, so editing a text in
//! `dialogs/` breaks only the tests about that text.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use icp_sms_doctor::app::{App, Settings};
use icp_sms_doctor::callback::Action;
use icp_sms_doctor::clock::{Clock, Instant};
use icp_sms_doctor::store::Store;
use icp_sms_doctor::telegram::intake::FloodLimits;
use icp_sms_doctor::telegram::pacer::Limits;
use icp_sms_doctor::telegram::{self, Options, Running};
use icp_sms_doctor::tree::Tree;
use serde_json::Value;

use crate::fake_api::FakeApi;
use crate::support::real_tree;

/// Every test runs under this bound, so nothing can hang CI.
pub async fn within<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("the scenario finished within 60 s")
}

/// `within`, for a story on a paused clock longer than a minute (an
/// outage of several minutes): `bound` is the test's own time.
pub async fn within_paused<T>(bound: Duration, test: impl Future<Output = T>) -> T {
    tokio::time::timeout(bound, test)
        .await
        .unwrap_or_else(|_| panic!("the scenario finished within {bound:?} of its paused clock"))
}

/// Limits far above the tests' traffic, so Telegram's pacing does not slow
/// them; the 429 scenarios check the waiting itself.
pub fn options() -> Options {
    Options {
        limits: Limits {
            per_second: 1000,
            private_burst: 1000,
            group_per_second: 1000,
            group_per_minute: 60_000,
            second: Duration::from_secs(1),
        },
        polling_timeout: Duration::from_secs(5),
        grace: Duration::from_secs(5),
        flood: FloodLimits {
            burst: 1_000_000,
            per_minute: 1_000_000,
        },
        busy_wait: Duration::from_secs(3600),
        ..Options::default()
    }
}

pub fn memory() -> Store {
    Store::memory()
}

/// A fresh SQLite file for one test, under the target directory.
pub fn db_path(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bot-{name}.db"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

/// The fake Bot API and the bot on it.
pub struct Scene {
    pub api: FakeApi,
    pub clock: Clock,
    pub tree: Arc<Tree>,
    settings: Settings,
    options: Options,
    bot: Option<Running>,
}

impl Scene {
    /// The real dialogue on the system clock, with default settings.
    pub async fn start(store: Store) -> Scene {
        Scene::with(store, Clock::System, Settings::default()).await
    }

    /// The real dialogue on `clock`, with `settings`.
    pub async fn with(store: Store, clock: Clock, settings: Settings) -> Scene {
        Scene::with_tree(Arc::new(real_tree()), store, clock, settings).await
    }

    /// Any dialogue: a scene for a tree the test made.
    pub async fn with_tree(
        tree: Arc<Tree>,
        store: Store,
        clock: Clock,
        settings: Settings,
    ) -> Scene {
        Scene::with_options(tree, store, clock, settings, options()).await
    }

    /// The real dialogue on the system clock, with the bot's `options`
    /// (its limits, above all).
    pub async fn paced(store: Store, options: Options) -> Scene {
        let tree = Arc::new(real_tree());
        Scene::with_options(tree, store, Clock::System, Settings::default(), options).await
    }

    pub async fn with_options(
        tree: Arc<Tree>,
        store: Store,
        clock: Clock,
        settings: Settings,
        options: Options,
    ) -> Scene {
        let mut scene = Scene {
            api: FakeApi::start().await,
            clock,
            tree,
            settings,
            options,
            bot: None,
        };
        scene.relaunch(store).await;
        scene
    }

    /// Starts the bot again on `store`, after `shut_down` or `crash`, as a
    /// new process would.
    ///
    /// A `/metrics` address from `free_address` was free when it was
    /// picked, not necessarily now (another socket of the machine's may
    /// have taken it since): taken, the bot starts on another one, which
    /// `metrics_listen` gives.
    pub async fn relaunch(&mut self, store: Store) {
        assert!(self.bot.is_none(), "the bot is already running");
        let app = Arc::new(App::new(
            self.tree.clone(),
            store,
            self.clock.clone(),
            self.settings.clone(),
        ));
        let mut tries = 0;
        let running = loop {
            match telegram::start(self.api.bot(), app.clone(), self.options.clone()).await {
                Err(telegram::StartError::Listen(at, e))
                    if e.kind() == std::io::ErrorKind::AddrInUse
                        && self.options.metrics_listen == Some(at)
                        && tries < 5 =>
                {
                    tries += 1;
                    self.options.metrics_listen = Some(crate::webhook::free_address());
                }
                started => break started.expect("the bot starts against the fake API"),
            }
        };
        self.bot = Some(running);
    }

    /// Where the bot serves `/metrics` and `/healthz`, if it does.
    pub fn metrics_listen(&self) -> Option<std::net::SocketAddr> {
        self.options.metrics_listen
    }

    pub fn bot(&self) -> &Running {
        self.bot.as_ref().expect("the bot is running")
    }

    /// Stops the bot gracefully and starts a new one on `store`, as a
    /// restart of the process would.
    pub async fn restart(&mut self, store: Store) {
        self.shut_down().await;
        self.relaunch(store).await;
    }

    /// Stops the bot gracefully, leaving the fake API up, for a restart
    /// after time has passed.
    pub async fn shut_down(&mut self) {
        if let Some(bot) = self.bot.take() {
            bot.stop().await;
        }
    }

    /// Kills the bot as a crash would: nothing in flight is finished.
    pub fn crash(&mut self) {
        if let Some(bot) = self.bot.take() {
            bot.abort();
        }
    }

    /// Moves the clock and waits for the scheduler's pass at the new time.
    pub async fn advance(&self, secs: i64) {
        self.clock.advance(secs);
        self.settle(self.clock.now()).await;
    }

    /// Waits until the scheduler has completed a pass at `at` or later.
    pub async fn settle(&self, at: Instant) {
        self.bot()
            .settled()
            .wait_for(|done| *done >= at)
            .await
            .expect("the scheduler runs");
    }

    /// Stops the bot gracefully (updates in flight are finished), then the
    /// fake API.
    pub async fn stop(mut self) {
        self.shut_down().await;
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        if let Some(bot) = self.bot.take() {
            bot.abort();
        }
        self.api.close();
    }
}

/// Every button of a message, as (label, data).
fn buttons(message: &Value) -> impl Iterator<Item = (&str, &str)> {
    message["reply_markup"]["inline_keyboard"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row.as_array().into_iter().flatten())
        .filter_map(|b| Some((b["text"].as_str()?, b["callback_data"].as_str()?)))
}

/// The data of the button labelled `label` (a label the test took from the
/// tree, such as a standard button of `ui.toml`).
pub fn data_of(message: &Value, label: &str) -> String {
    buttons(message)
        .find(|(l, _)| *l == label)
        .map(|(_, d)| d.to_string())
        .unwrap_or_else(|| panic!("no button {label:?} in {message}"))
}

/// The data of the button that leads to node `to`: an answer, "not
/// solved", or a jump offered by the router.
pub fn data_to(message: &Value, to: &str) -> String {
    buttons(message)
        .find(|(_, d)| match Action::parse(d) {
            Some(Action::Go { to: t, .. } | Action::Jump { to: t }) => t == to,
            _ => false,
        })
        .map(|(_, d)| d.to_string())
        .unwrap_or_else(|| panic!("no button to {to:?} in {message}"))
}

pub fn labels(message: &Value) -> Vec<String> {
    buttons(message).map(|(l, _)| l.to_string()).collect()
}

pub fn text_of(message: &Value) -> &str {
    message["text"].as_str().unwrap_or_default()
}

/// A node's own text (its first line is how its message begins).
pub fn node_text<'t>(tree: &'t Tree, id: &str, lang: icp_sms_doctor::lang::Lang) -> &'t str {
    let node = tree.get(id).unwrap_or_else(|| panic!("no node {id}"));
    tree.node(node).text.get(lang)
}

/// Whether a message shows node `id`: its text begins with the node's.
pub fn shows(tree: &Tree, message: &Value, id: &str, lang: icp_sms_doctor::lang::Lang) -> bool {
    let first = node_text(tree, id, lang).lines().next().unwrap_or_default();
    let first = icp_sms_doctor::markup::to_html(first);
    text_of(message).starts_with(&first)
}

/// A running process's log, line by line as it is written.
pub struct Log {
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Log {
    pub fn of(child: &mut std::process::Child) -> Log {
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in
                std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Log {
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`, for at most 20 s.
    pub async fn wait_for(&mut self, needle: &str) -> String {
        let waiting = async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line.clone());
                if line.contains(needle) {
                    return Some(line);
                }
            }
            None
        };
        match tokio::time::timeout(Duration::from_secs(20), waiting).await {
            Ok(Some(line)) => line,
            _ => panic!("no line with {needle:?} in\n{}", self.seen.join("\n")),
        }
    }

    /// Every line, once the process has ended.
    pub async fn all(mut self) -> Vec<String> {
        let rest = async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line);
            }
        };
        tokio::time::timeout(Duration::from_secs(10), rest)
            .await
            .expect("the log ends with the process");
        self.seen
    }
}
