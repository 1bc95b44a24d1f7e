//! The `icp-sms-doctor` command: wires the command line to the library.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use clap::{Parser, Subcommand};
use icp_sms_doctor::telegram::{self, App, Options, StartError};
use icp_sms_doctor::{Lang, Tree, console, eval, load_tree, store};
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
    /// Measure the free-text router on a labelled file (label<TAB>text per
    /// line): accuracy per category, off-topic lines routed, every miss.
    Eval {
        /// The labelled file, e.g. tests/data/routing-eval.tsv.
        file: PathBuf,
    },
    /// Validate a dialogs folder, print every problem, exit 2 on any.
    Check {
        /// The folder to check (default: DIALOGS_DIR, else the built-in dialogs).
        dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    // A missing .env file is the normal case, not an error.
    let _ = dotenvy::dotenv();
    let mut cli = Cli::parse();
    // Set-but-empty variables (as `.env.example` leaves them) mean "unset".
    if cli.dialogs_dir.is_none() {
        cli.dialogs_dir = env_value("DIALOGS_DIR").map(PathBuf::from);
    }
    let default_lang = match cli.default_lang {
        Some(lang) => lang,
        None => match env_value("DEFAULT_LANG").map(|v| v.parse::<Lang>()) {
            None => Lang::Zh,
            Some(Ok(lang)) => lang,
            Some(Err(e)) => {
                eprintln!("DEFAULT_LANG: {e}; fix it in .env or the environment");
                return ExitCode::from(2);
            }
        },
    };
    let command = cli.command.unwrap_or(Command::Run);
    // The bot reports its start and its steps; the console and `check`
    // speak on stdout and log only trouble.
    let default_filter = if matches!(command, Command::Run) {
        "info"
    } else {
        "warn"
    };
    pretty_env_logger::formatted_timed_builder()
        .parse_filters(&env_value("RUST_LOG").unwrap_or_else(|| default_filter.to_string()))
        .init();
    match command {
        Command::Run => run_bot(cli.dialogs_dir.as_deref(), default_lang),
        Command::Console { lang, json } => {
            let Some(tree) = load_or_report(cli.dialogs_dir.as_deref()) else {
                return ExitCode::from(2);
            };
            let lang = lang.unwrap_or(default_lang);
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
        Command::Eval { file } => {
            let Some(tree) = load_or_report(cli.dialogs_dir.as_deref()) else {
                return ExitCode::from(2);
            };
            let samples = std::fs::read_to_string(&file)
                .map_err(|e| e.to_string())
                .and_then(|text| eval::parse(&tree, &text));
            match samples {
                Ok(samples) => {
                    print!("{}", eval::evaluate(&tree, &samples));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    ExitCode::from(2)
                }
            }
        }
        Command::Check { dir } => {
            let dir = dir.or(cli.dialogs_dir);
            let Some(tree) = load_or_report(dir.as_deref()) else {
                return ExitCode::from(2);
            };
            println!(
                "{}: OK, {} nodes ({} ends)",
                dir.map_or("built-in dialogs".to_string(), |d| d.display().to_string()),
                tree.len(),
                tree.end_count()
            );
            ExitCode::SUCCESS
        }
    }
}

/// The longest idle time allowed: 30 days, as long as menu owners are
/// remembered, so an expiring session still finds its menu to close.
const MAX_IDLE_HOURS: u32 = 30 * 24;

/// An environment variable's value, if it is set and not blank.
fn env_value(key: &str) -> Option<String> {
    std::env::var(key)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Checks a token's shape (`<bot id>:<secret>`, as @BotFather gives it)
/// without ever printing it.
fn token_problem(token: Option<&str>) -> Option<&'static str> {
    let Some(token) = token else {
        return Some(
            "TELOXIDE_TOKEN is not set: create a bot with @BotFather and put its token in .env (see .env.example) or the environment",
        );
    };
    let well_formed = token.split_once(':').is_some_and(|(id, secret)| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_digit())
            && !secret.is_empty()
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    (!well_formed).then_some(
        "TELOXIDE_TOKEN does not look like a bot token (expected <digits>:<secret>, as @BotFather gives it); fix it in .env or the environment",
    )
}

fn run_bot(dialogs_dir: Option<&std::path::Path>, default_lang: Lang) -> ExitCode {
    let token = env_value("TELOXIDE_TOKEN");
    if let Some(problem) = token_problem(token.as_deref()) {
        eprintln!("{problem}");
        return ExitCode::from(2);
    }
    let token = token.unwrap_or_default();
    let Some(tree) = load_or_report(dialogs_dir) else {
        return ExitCode::from(2);
    };
    let url = env_value("DATABASE_URL").unwrap_or_default();
    let store = match store::open(&url) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("{e}; fix DATABASE_URL in .env or the environment");
            return ExitCode::from(2);
        }
    };
    let timezone = match env_value("TIMEZONE").map(|v| v.parse::<chrono_tz::Tz>()) {
        None => icp_sms_doctor::reminders::DEFAULT_TIMEZONE,
        Some(Ok(tz)) => tz,
        Some(Err(_)) => {
            eprintln!(
                "TIMEZONE is not a time zone name (such as Asia/Shanghai or UTC); fix it in .env or the environment"
            );
            return ExitCode::from(2);
        }
    };
    let session_idle_secs = match env_value("SESSION_IDLE_HOURS").map(|v| v.parse::<u32>()) {
        None => telegram::DEFAULT_SESSION_IDLE_SECS,
        Some(Ok(hours)) if (1..=MAX_IDLE_HOURS).contains(&hours) => i64::from(hours) * 3600,
        Some(_) => {
            eprintln!(
                "SESSION_IDLE_HOURS must be a whole number of hours from 1 to {MAX_IDLE_HOURS}; fix it in .env or the environment"
            );
            return ExitCode::from(2);
        }
    };
    let mut bot = Bot::new(token);
    if let Some(api) = env_value("TELOXIDE_API_URL") {
        match url::Url::parse(&api) {
            Ok(api) => bot = bot.set_api_url(api),
            Err(e) => {
                eprintln!("TELOXIDE_API_URL is not a URL ({e}); fix it in .env or the environment");
                return ExitCode::from(2);
            }
        }
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let (nodes, store_name) = (tree.len(), store.describe());
        let mut app = App::new(Arc::new(tree), Arc::from(store), default_lang);
        app.timezone = timezone;
        app.session_idle_secs = session_idle_secs;
        let app = Arc::new(app);
        let running = match telegram::start(bot, app, Options::default()).await {
            Ok(running) => running,
            Err(e @ StartError::Unauthorized(_)) => {
                eprintln!("{e}; check it in .env or the environment");
                return ExitCode::from(2);
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        log::info!(
            "started as @{}; store: {store_name}; dialogs: {}, {nodes} nodes; times in {}; sessions close after {} h idle",
            running.me.username(),
            dialogs_dir.map_or("built in".to_string(), |d| d.display().to_string()),
            timezone.name(),
            session_idle_secs / 3600,
        );
        if running.run_until(shutdown_signal()).await {
            ExitCode::SUCCESS
        } else {
            eprintln!("the bot stopped on its own; see the log above");
            ExitCode::FAILURE
        }
    })
}

/// Ctrl-C or SIGTERM (as systemd sends it), whichever comes first.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            log::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                log::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
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
            eprintln!("{problems}");
            eprintln!(
                "{} problem(s) in the dialogs; nothing served.",
                problems.0.len()
            );
            None
        }
    }
}
