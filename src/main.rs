//! The `icp-sms-doctor` command: wires the command line to the library.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use clap::{Parser, Subcommand};
use icp_sms_doctor::app::App;
use icp_sms_doctor::clock::Clock;
use icp_sms_doctor::config::{self, Config};
use icp_sms_doctor::redact::Redacting;
use icp_sms_doctor::telegram::{self, StartError};
use icp_sms_doctor::tree::graph::{self, Format};
use icp_sms_doctor::{Lang, Tree, console, eval, load_tree, open, stats};
use teloxide::Bot;

#[derive(Parser)]
#[command(name = "icp-sms-doctor", version, about)]
struct Cli {
    /// A dialogs folder to use instead of the one built into the binary
    /// [env: DIALOGS_DIR]
    #[arg(long, global = true)]
    dialogs_dir: Option<PathBuf>,

    /// The language for people whose own is unknown: zh or en [env:
    /// DEFAULT_LANG, default zh]
    #[arg(long, global = true)]
    default_lang: Option<Lang>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Telegram bot (the default).
    Run,
    /// Talk to the dialogue in the terminal: no token, no network.
    Console {
        /// The language to start in.
        #[arg(long)]
        lang: Option<Lang>,
        /// Speak JSON Lines: {"text": …} or {"press": …} in, one object per bot message out.
        #[arg(long)]
        json: bool,
    },
    /// Measure the free-text router on labelled files (label<TAB>text per
    /// line): per file, accuracy per category, off-topic lines routed, a
    /// confusion matrix and every miss; then one summary line per file.
    Eval {
        /// The labelled files, e.g. tests/data/routing-tune.tsv
        /// tests/data/routing-tune-2.tsv.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Route each file by a router built without the file's lines (in
        /// [training] and the off-topic examples): a tuning set measured as
        /// if it were new.
        #[arg(long)]
        leave_out: bool,
    },
    /// Validate a dialogs folder, print every problem, exit 2 on any.
    Check {
        /// The folder to check (default: DIALOGS_DIR, else the built-in dialogs).
        dir: Option<PathBuf>,
        /// Then list every node: id, kind, title and where it leads.
        #[arg(long)]
        map: bool,
    },
    /// Draw the dialogue: every node, coloured by category, and where its
    /// answers lead, printed as a Mermaid chart, DOT or SVG.
    Graph {
        /// The folder to draw (default: DIALOGS_DIR, else the built-in dialogs).
        dir: Option<PathBuf>,
        /// What to print.
        #[arg(long, value_enum, default_value_t = Format::Mermaid)]
        format: Format,
        /// The language of the labels (default: DEFAULT_LANG).
        #[arg(long)]
        lang: Option<Lang>,
        /// Annotate each end with its resolution rate and each answer with
        /// how often it was taken, from the store (DATABASE_URL).
        #[arg(long)]
        stats: bool,
        /// With --stats, the period: this many days up to now.
        #[arg(long, default_value_t = stats::DEFAULT_DAYS,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(stats::MAX_DAYS)))]
        days: u32,
        /// With --stats, the dialogue version whose figures to draw
        /// (default: the one drawn; `none` for facts from before versions).
        #[arg(long, value_name = "VERSION")]
        dialogue: Option<String>,
    },
    /// Print the team's figures from the store (DATABASE_URL): conversations
    /// by category and entry, ends reached, resolution rate per end, where
    /// people stopped, reminders and handoffs.
    Stats {
        /// The period: this many days up to now.
        #[arg(long, default_value_t = stats::DEFAULT_DAYS,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(stats::MAX_DAYS)))]
        days: u32,
        /// The language of the figures (default: DEFAULT_LANG).
        #[arg(long)]
        lang: Option<Lang>,
        /// The dialogue version whose figures to show (default: the one
        /// loaded; `none` for facts from before versions).
        #[arg(long, value_name = "VERSION")]
        dialogue: Option<String>,
    },
}

fn main() -> ExitCode {
    // A missing .env file is the normal case, not an error.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let (config, problems) = Config::read(cli.dialogs_dir, cli.default_lang, &config::process_env);
    let command = cli.command.unwrap_or(Command::Run);
    // The bot reports these beside its own; other commands stop here.
    if !problems.is_empty() && !matches!(command, Command::Run) {
        for problem in &problems {
            eprintln!("{problem}");
        }
        return ExitCode::from(config::EXIT_CONFIG);
    }
    let filter = config::log_filter(&config::process_env, matches!(command, Command::Run));
    // Every line passes the redacting layer: whatever a library writes,
    // no token, message text or personal number reaches the log.
    let logger = pretty_env_logger::formatted_timed_builder()
        .parse_filters(&filter)
        .build();
    let max_level = logger.filter();
    // The case webhook's secret and address (whose path may hold a token
    // of the receiver's) are never written either.
    let secrets = ["TELOXIDE_TOKEN", "CASE_WEBHOOK_SECRET", "CASE_WEBHOOK_URL"]
        .into_iter()
        .filter_map(config::process_env)
        .collect();
    if log::set_boxed_logger(Box::new(Redacting::new(Box::new(logger), secrets))).is_ok() {
        log::set_max_level(max_level);
    }
    let dialogs_dir = config.dialogs_dir.as_deref();
    match command {
        Command::Run => run_bot(&config, problems),
        Command::Console { lang, json } => {
            let Some(tree) = load_or_report(dialogs_dir) else {
                return ExitCode::from(config::EXIT_CONFIG);
            };
            let lang = lang.unwrap_or(config.default_lang);
            let (stdin, stdout) = (io::stdin().lock(), io::stdout().lock());
            let result = if json {
                console::run_json(&tree, lang, stdin, stdout)
            } else {
                console::run_interactive(&tree, lang, stdin, stdout)
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                // A closed pipe on the reading side is how such sessions end.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("console: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Eval { files, leave_out } => {
            let Some(tree) = load_or_report(dialogs_dir) else {
                return ExitCode::from(config::EXIT_CONFIG);
            };
            let mut report = String::new();
            let mut summary = String::new();
            let left = if leave_out { " (left out)" } else { "" };
            for file in &files {
                let samples = std::fs::read_to_string(file)
                    .map_err(|e| e.to_string())
                    .and_then(|text| eval::parse(&tree, &text));
                let samples = match samples {
                    Ok(samples) => samples,
                    Err(e) => {
                        eprintln!("{}: {e}", file.display());
                        return ExitCode::from(config::EXIT_CONFIG);
                    }
                };
                let result = if leave_out {
                    eval::evaluate_left_out(&tree, &samples)
                } else {
                    eval::evaluate(&tree, &samples)
                };
                if files.len() > 1 {
                    report.push_str(&format!("== {}{left} ==\n", file.display()));
                }
                report.push_str(&format!("{result}\n"));
                summary.push_str(&format!("{}{left}: {}\n", file.display(), result.summary()));
            }
            emit(&format!("{report}summary:\n{summary}"))
        }
        Command::Check { dir, map } => {
            let dir = dir.or(config.dialogs_dir);
            let Some(tree) = load_or_report(dir.as_deref()) else {
                return ExitCode::from(config::EXIT_CONFIG);
            };
            let mut out = format!(
                "{}: OK, {} nodes ({} ends)\n",
                dir.map_or("built-in dialogs".to_string(), |d| d.display().to_string()),
                tree.len(),
                tree.end_count()
            );
            if map {
                out.push_str(&tree.map(config.default_lang));
            }
            emit(&out)
        }
        Command::Graph {
            dir,
            format,
            lang,
            stats: with_stats,
            days,
            dialogue,
        } => {
            let dir = dir.or(config.dialogs_dir);
            let Some(tree) = load_or_report(dir.as_deref()) else {
                return ExitCode::from(config::EXIT_CONFIG);
            };
            let lang = lang.unwrap_or(config.default_lang);
            let usage = if with_stats {
                match read_facts(days) {
                    Ok(facts) => {
                        let version = dialogue.as_deref().unwrap_or(tree.version());
                        Some(stats::usage(&tree, &stats::of_version(&facts, version)))
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        return ExitCode::from(config::EXIT_CONFIG);
                    }
                }
            } else {
                None
            };
            emit(&graph::render(&tree, format, lang, usage.as_ref()))
        }
        Command::Stats {
            days,
            lang,
            dialogue,
        } => {
            let Some(tree) = load_or_report(dialogs_dir) else {
                return ExitCode::from(config::EXIT_CONFIG);
            };
            let lang = lang.unwrap_or(config.default_lang);
            match read_facts(days) {
                Ok(facts) => emit(&format!(
                    "{}\n",
                    stats::Figures::of_version(
                        &tree,
                        &facts,
                        days,
                        dialogue.as_deref().unwrap_or(tree.version())
                    )
                    .render(&tree, lang)
                )),
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(config::EXIT_CONFIG)
                }
            }
        }
    }
}

/// The facts of the last `days` days from the store DATABASE_URL names.
fn read_facts(days: u32) -> Result<Vec<icp_sms_doctor::stats::Fact>, String> {
    let url = config::process_env("DATABASE_URL").unwrap_or_default();
    let store = open::open(&url)
        .map_err(|e| format!("{e}; fix DATABASE_URL in .env or the environment"))?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let since = Clock::System.now() - i64::from(days) * 24 * 3600;
    runtime
        .block_on(store.facts(since))
        .map_err(|e| format!("reading the figures failed: {e}"))
}

/// Runs the bot. Every configuration problem — the environment's and the
/// dialogue's — is reported at once, one line each, before exiting with
/// `EXIT_CONFIG`.
fn run_bot(config: &Config, mut problems: Vec<config::ConfigError>) -> ExitCode {
    let bot_config = config
        .bot(&config::process_env)
        .map_err(|more| problems.extend(more));
    let dialogs_dir = config.dialogs_dir.as_deref();
    let tree = load_tree(dialogs_dir);
    for problem in &problems {
        eprintln!("{problem}");
    }
    let (Ok(bot_config), Ok(tree)) = (bot_config, tree.map_err(|e| report_dialogs(&e))) else {
        return ExitCode::from(config::EXIT_CONFIG);
    };
    // What the load used and freed (the files' text, the similarity
    // index's working) goes back to the system.
    icp_sms_doctor::memory::give_back_free_memory();
    // An SQLite file is held from here on: a second bot on it, by any
    // path, is refused before it reads or writes anything of it.
    let store = match open::open_to_run(
        &bot_config.database_url,
        bot_config.settings.session_idle_secs,
    ) {
        Ok(store) => store,
        Err(e @ icp_sms_doctor::store::StoreError::InUse(_)) => {
            eprintln!("{e}");
            return ExitCode::from(config::EXIT_AGAIN);
        }
        Err(e) => {
            eprintln!("{e}; fix DATABASE_URL in .env or the environment");
            return ExitCode::from(config::EXIT_CONFIG);
        }
    };
    // One process polls Telegram per store: a second one would take the
    // updates meant for the first.
    let mut bot = Bot::new(&bot_config.token);
    if let Some(api) = bot_config.api_url.clone() {
        bot = bot.set_api_url(api);
    }
    let bot_for_commands = bot.clone();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let settings = bot_config.settings;
    runtime.block_on(async move {
        // Listening from the first moment, so a reload sent while the bot
        // starts is not taken for SIGHUP's default: to end the process.
        let hangups = Hangups::listen();
        let shutdown = Shutdown::listen();
        // One process polls Telegram per store: a second one would take the
        // updates meant for the first. Behind a webhook, several processes
        // may serve one shared store; a store only one can use is held.
        let webhook = bot_config.options.webhook.is_some();
        if (!webhook || !store.is_shared())
            && let Err(e) = store.hold_poller_for(bot_config.options.lease).await
        {
            // Exit 1 either way: another process may stop, and a store
            // that cannot be reached now may be back by the next start.
            match e {
                icp_sms_doctor::store::StoreError::InUse(_) => eprintln!("{e}"),
                e => eprintln!("{e} ({}); the next start tries again", store.describe()),
            }
            return ExitCode::from(config::EXIT_AGAIN);
        }
        let (nodes, store_name) = (tree.len(), store.describe());
        let (timezone, idle_secs) = (settings.timezone, settings.session_idle_secs);
        let app = Arc::new(App::new(
            Arc::new(tree),
            store,
            Clock::System,
            settings,
        ));
        let running = match telegram::start(bot, app.clone(), bot_config.options.clone()).await {
            Ok(running) => running,
            Err(e @ StartError::Unauthorized(_)) => {
                eprintln!("{e}; check it in .env or the environment");
                return ExitCode::from(config::EXIT_CONFIG);
            }
            // Restarting won't help: the limit is the unit's or the shell's.
            Err(e @ StartError::OpenFiles { .. }) => {
                eprintln!("{e}");
                return ExitCode::from(config::EXIT_CONFIG);
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let updates = match &bot_config.options.webhook {
            Some(hook) => format!(
                "webhook {} on {}{}",
                hook.url,
                hook.listen,
                if hook.register { "" } else { " (not registered by this instance)" }
            ),
            None => "polling".to_string(),
        };
        log::info!(
            "started as @{}; updates: {updates}; store: {store_name}; dialogs: {}, {nodes} nodes; times in {}; sessions close after {} h idle",
            running.me.username(),
            dialogs_dir.map_or("built in".to_string(), |d| d.display().to_string()),
            timezone.name(),
            idle_secs / 3600,
        );
        let commands_bot = bot_for_commands.clone();
        let store = app.store.clone();
        tokio::spawn(reload_on_hangup(
            hangups,
            app,
            commands_bot,
            dialogs_dir.map(PathBuf::from),
        ));
        let stopped_cleanly = running.run_until(shutdown.asked()).await;
        // The poller's lease on a shared store is given back, so that a
        // successor (a restart) need not wait for it to run out.
        if let Err(e) = store.release_poller().await {
            log::warn!("the poller's lease was not given back (it runs out by itself): {e}");
        }
        if stopped_cleanly {
            ExitCode::SUCCESS
        } else {
            eprintln!("the bot stopped on its own; see the log above");
            ExitCode::FAILURE
        }
    })
}

/// SIGHUP, as `systemctl reload` sends it.
struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    fn listen() -> Hangups {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signal = signal(SignalKind::hangup())
                .map_err(|e| {
                    log::error!("cannot listen for SIGHUP, so the dialogs cannot be reloaded: {e}");
                })
                .ok();
            Hangups { signal }
        }
        #[cfg(not(unix))]
        Hangups {}
    }

    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            return signal.recv().await.is_some();
        }
        std::future::pending::<bool>().await
    }
}

/// On each SIGHUP the dialogue is loaded again from DIALOGS_DIR and used
/// from the next step on, and the command menu is registered again; a
/// broken edit is refused with its problems and the running dialogue stays.
async fn reload_on_hangup(mut hangups: Hangups, app: Arc<App>, bot: Bot, dir: Option<PathBuf>) {
    while hangups.next().await {
        let Some(dir) = &dir else {
            log::warn!(
                "SIGHUP: the dialogs are built into the binary; set DIALOGS_DIR to a folder to reload edits without a rebuild"
            );
            continue;
        };
        let reloaded = app.reload(dir);
        app.metrics.reload(reloaded.is_ok());
        match reloaded {
            Ok(tree) => {
                log::info!(
                    "dialogs reloaded from {}: {} nodes",
                    dir.display(),
                    tree.len()
                );
                if let Err(e) = telegram::register_commands(&bot, &tree).await {
                    log::warn!("could not register the command menu again: {e}");
                }
            }
            Err(problems) => log::error!(
                "dialogs not reloaded from {}; the running ones stay. {} problem(s):\n{problems}",
                dir.display(),
                problems.0.len()
            ),
        }
    }
}

/// Ctrl-C or SIGTERM (as systemd sends it), whichever comes first.
/// SIGTERM (systemd's stop) and SIGINT (Ctrl-C), listened for from the
/// moment this is made: a stop asked for while the bot is still starting
/// waits for it and ends it cleanly, instead of ending the process at once
/// by the signal's default.
struct Shutdown {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Shutdown {
    fn listen() -> Shutdown {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals = match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(term), Ok(int)) => Some((term, int)),
                (Err(e), _) | (_, Err(e)) => {
                    log::error!("cannot listen for SIGTERM and SIGINT: {e}");
                    None
                }
            };
            Shutdown { signals }
        }
        #[cfg(not(unix))]
        Shutdown {}
    }

    /// Returns once a stop is asked for.
    async fn asked(self) {
        #[cfg(unix)]
        match self.signals {
            Some((mut term, mut int)) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
            }
            None => std::future::pending::<()>().await,
        }
        #[cfg(not(unix))]
        if let Err(e) = tokio::signal::ctrl_c().await {
            log::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    }
}

fn load_or_report(dir: Option<&std::path::Path>) -> Option<Tree> {
    match load_tree(dir) {
        Ok(tree) => {
            log::debug!(
                "dialogs loaded: {} nodes, {} ends",
                tree.len(),
                tree.end_count()
            );
            Some(tree)
        }
        Err(problems) => {
            report_dialogs(&problems);
            None
        }
    }
}

/// Prints every problem of a dialogs folder, one a line, and a summary.
fn report_dialogs(problems: &icp_sms_doctor::LoadError) {
    eprintln!("{problems}");
    eprintln!(
        "{} problem(s) in the dialogs; nothing served.",
        problems.0.len()
    );
}

/// Writes a command's output to stdout. A reader that stops early (`|
/// head`) is no failure: the rest is dropped and the exit is quiet;
/// another write error is reported.
fn emit(text: &str) -> ExitCode {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("the output could not be written: {e}");
            ExitCode::FAILURE
        }
    }
}
