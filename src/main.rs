//! The `icp-sms-doctor` command: wires the command line to the library.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use icp_sms_doctor::{Lang, console, load_tree};

#[derive(Parser)]
#[command(name = "icp-sms-doctor", version, about)]
struct Cli {
    /// A dialogs folder to use instead of the one built into the binary.
    #[arg(long, env = "DIALOGS_DIR", global = true)]
    dialogs_dir: Option<PathBuf>,

    /// The language for people whose own is unknown.
    #[arg(long, env = "DEFAULT_LANG", default_value = "zh", global = true)]
    default_lang: Lang,

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
    /// Validate a dialogs folder, print every problem, exit 2 on any.
    Check {
        /// The folder to check (default: DIALOGS_DIR, else the built-in dialogs).
        dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    // A missing .env file is the normal case, not an error.
    let _ = dotenvy::dotenv();
    pretty_env_logger::init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => {
            eprintln!(
                "Telegram mode is not built yet; try the dialogue with `icp-sms-doctor console`."
            );
            ExitCode::from(2)
        }
        Command::Console { lang, json } => {
            let Some(tree) = load_or_report(cli.dialogs_dir.as_deref()) else {
                return ExitCode::from(2);
            };
            let lang = lang.unwrap_or(cli.default_lang);
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

fn load_or_report(dir: Option<&std::path::Path>) -> Option<icp_sms_doctor::Tree> {
    match load_tree(dir) {
        Ok(tree) => {
            log::info!(
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
