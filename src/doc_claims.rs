//! Every figure the docs state — durations, limits, counts, defaults — held to the value in the code.
//!
//! A claim is a phrase of a doc file with `{}` where a figure stands. The
//! test writes the code's value into it and looks for the result in the
//! file, with every run of whitespace read as one space (Markdown wraps
//! lines anywhere). A phrase found only inside a longer number or word
//! does not count: "Retry-After: 1" is not in "Retry-After: 10". Figures
//! that are not a named value anywhere else are read from what computes
//! them: the configuration's defaults from the parser itself, the
//! dialogue's from `dialogs/`, counts from the files counted.
//!
//! A failure names the file, the phrase as the code would have it, where
//! each value comes from, and what the file says instead, so the fix is
//! to write the code's figure into the doc (or, if the doc is right, to
//! change the code).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{self, BotConfig, Config};
use crate::store::kernel::sqlite::{FILE_MODE, FOLDER_MODE};
use crate::telegram::listener::{self, HttpLimits};
use crate::telegram::{Webhook, intake, keeper, pacer, retry, schedule, send, webhook};
use crate::{Tree, cases, console, stats, store};

const README: &str = "README.md";
const OPERATIONS: &str = "docs/operations.md";
const BEHAVIOUR: &str = "docs/behaviour.md";
const CONTRIBUTING: &str = "CONTRIBUTING.md";
const DIALOGS: &str = "dialogs/README.md";
const ENV_EXAMPLE: &str = ".env.example";
const UNIT: &str = "deploy/icp-sms-doctor.service";
const ALERTS: &str = "deploy/prometheus-alerts.yml";
const CASE_WEBHOOK: &str = "docs/case-webhook.md";

/// The claims checked so far, and those that failed.
struct Claims {
    root: PathBuf,
    /// Each file read, its whitespace normalised.
    texts: BTreeMap<&'static str, String>,
    held: BTreeMap<&'static str, usize>,
    failures: Vec<String>,
}

/// Every run of whitespace as one space.
fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A file's text as its sentences run: `.env.example`'s comments without
/// the `#` that opens each of their lines.
fn prose(file: &str, text: &str) -> String {
    if file != ENV_EXAMPLE {
        return normalise(text);
    }
    let lines: Vec<&str> = text
        .lines()
        .map(|line| line.trim_start().trim_start_matches('#'))
        .collect();
    normalise(&lines.join("\n"))
}

/// Where `phrase` stands in `text` as a whole: not inside a longer word
/// or number on either side.
fn find_whole(text: &str, phrase: &str) -> Option<usize> {
    let edge = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let (first, last) = (phrase.chars().next(), phrase.chars().next_back());
    text.match_indices(phrase).map(|(at, _)| at).find(|&at| {
        let before = text[..at].chars().next_back();
        let after = text[at + phrase.len()..].chars().next();
        !(edge(first) && edge(before) || edge(last) && edge(after))
    })
}

/// Up to `around` characters either side of `at..at + len` in `text`.
fn excerpt(text: &str, at: usize, len: usize, around: usize) -> String {
    let start = text[..at]
        .char_indices()
        .rev()
        .nth(around.saturating_sub(1))
        .map_or(0, |(i, _)| i);
    let end = text[at + len..]
        .char_indices()
        .nth(around)
        .map_or(text.len(), |(i, _)| at + len + i);
    format!("…{}…", &text[start..end])
}

impl Claims {
    fn new() -> Claims {
        Claims {
            root: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            texts: BTreeMap::new(),
            held: BTreeMap::new(),
            failures: Vec::new(),
        }
    }

    /// Claims over `text` in place of the file `file` (for the checker's
    /// own test).
    fn over(file: &'static str, text: &str) -> Claims {
        let mut claims = Claims::new();
        claims.texts.insert(file, normalise(text));
        claims
    }

    fn text(&mut self, file: &'static str) -> &str {
        let root = &self.root;
        self.texts.entry(file).or_insert_with(|| {
            let path = root.join(file);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            prose(file, &text)
        })
    }

    /// That `file` holds `template` with each `{}` replaced by its value,
    /// in order; each value comes with the code it is read from.
    fn claim(&mut self, file: &'static str, template: &str, values: &[(String, &str)]) {
        let pieces: Vec<&str> = template.split("{}").collect();
        assert_eq!(
            pieces.len(),
            values.len() + 1,
            "the claim {template:?} has {} figures but {} values",
            pieces.len() - 1,
            values.len()
        );
        let mut phrase = pieces[0].to_string();
        for ((value, _), piece) in values.iter().zip(&pieces[1..]) {
            phrase.push_str(value);
            phrase.push_str(piece);
        }
        let phrase = normalise(&phrase);
        let text = self.text(file).to_string();
        if find_whole(&text, &phrase).is_some() {
            *self.held.entry(file).or_default() += 1;
            return;
        }
        let sources: Vec<String> = values
            .iter()
            .map(|(value, source)| format!("{value} (from `{source}`)"))
            .collect();
        // What the file says where the phrase's own words are: those of
        // its words found least often (and the longest of those), so the
        // excerpts show the place rather than every "Default:".
        let words = pieces
            .iter()
            .map(|piece| normalise(piece))
            .filter(|piece| piece.chars().count() >= 4)
            .map(|piece| (text.matches(piece.as_str()).count(), piece))
            .filter(|(found, _)| *found > 0)
            .min_by_key(|(found, piece)| (*found, std::cmp::Reverse(piece.len())))
            .map(|(_, piece)| piece)
            .unwrap_or_default();
        let seen: Vec<String> = if words.is_empty() {
            Vec::new()
        } else {
            text.match_indices(&words)
                .take(3)
                .map(|(at, _)| excerpt(&text, at, words.len(), 40))
                .collect()
        };
        let instead = if seen.is_empty() {
            "the phrase's own words are not in the file either: find where it states this \
             figure and rewrite the claim in src/doc_claims.rs to its new wording"
                .to_string()
        } else {
            format!(
                "the file has: {}\n  \
                 write the code's figure there (or, if the doc is right, change the code)",
                seen.join("\n             ")
            )
        };
        self.failures.push(format!(
            "{file}: \"{phrase}\" is not there\n  the code has: {}\n  {instead}",
            sources.join(", ")
        ));
    }

    /// That `file` holds `phrase`, and what it says of the code holds:
    /// `why` says what the phrase means and what the code has.
    fn holds(&mut self, file: &'static str, phrase: &str, holds: bool, why: String) {
        self.claim(file, phrase, &[]);
        if holds {
            return;
        }
        self.failures.push(format!(
            "{file}: \"{phrase}\" no longer holds: {why}; change the doc to what the code does"
        ));
    }

    /// A failure found apart from a phrase (a table, a sample).
    fn fail(&mut self, failure: String) {
        self.failures.push(failure);
    }

    /// One more claim about `file` held.
    fn held(&mut self, file: &'static str) {
        *self.held.entry(file).or_default() += 1;
    }

    /// Fails with every failure, or says how many claims held.
    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} documented figure(s) differ from the code:\n\n{}\n",
            self.failures.len(),
            self.failures.join("\n\n")
        );
        for (file, count) in &self.held {
            eprintln!("{file}: {count} claim(s) held");
        }
    }
}

/// Claims about one file, one a line:
///
/// ```text
/// claims! { c, FILE;
///     "phrase with {} figures {}" => value, value;
/// }
/// ```
///
/// Each value is written with `Display`, and its expression is named when
/// the claim fails.
macro_rules! claims {
    ($claims:ident, $file:expr; $($phrase:literal => $($value:expr),+);+ $(;)?) => {
        $($claims.claim($file, $phrase, &[$((($value).to_string(), stringify!($value))),+]);)+
    };
}

// How the docs write figures.

/// A number as the docs spell it out: words up to twenty and a few round
/// tens, digits otherwise.
fn words(n: u64) -> String {
    const SMALL: &str = "zero one two three four five six seven eight nine ten eleven twelve \
                         thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty";
    match n {
        0..=20 => SMALL
            .split(' ')
            .nth(n as usize)
            .unwrap_or_default()
            .to_string(),
        30 => "thirty".into(),
        40 => "forty".into(),
        50 => "fifty".into(),
        60 => "sixty".into(),
        _ => n.to_string(),
    }
}

/// An ordinal in words: "third", "fifth", "fifteenth".
fn ordinal(n: u64) -> String {
    match n {
        1 => "first".into(),
        2 => "second".into(),
        3 => "third".into(),
        5 => "fifth".into(),
        8 => "eighth".into(),
        9 => "ninth".into(),
        12 => "twelfth".into(),
        20 => "twentieth".into(),
        4 | 6 | 7 | 10 | 11 | 13..=19 => format!("{}th", words(n)),
        _ => format!("{n}th"),
    }
}

/// A part of a whole: "half", "third", "quarter", "tenth".
fn part(n: u32) -> String {
    match n {
        2 => "half".into(),
        4 => "quarter".into(),
        n => ordinal(u64::from(n)),
    }
}

/// "a minute", "an hour", "two minutes".
fn count(n: u64, unit: &str) -> String {
    match n {
        1 if unit.starts_with('h') => format!("an {unit}"),
        1 => format!("a {unit}"),
        n => format!("{} {unit}s", words(n)),
    }
}

/// A span in the largest unit it is a whole number of: "a day", "two
/// minutes", "three seconds", "a year" (365 days).
fn span(secs: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (365 * 24 * 3600, "year"),
        (24 * 3600, "day"),
        (3600, "hour"),
        (60, "minute"),
        (1, "second"),
    ];
    let (size, unit) = UNITS
        .into_iter()
        .find(|(size, _)| secs >= *size && secs.is_multiple_of(*size))
        .unwrap_or((1, "second"));
    count(secs / size, unit)
}

/// A span of seconds given as `i64`, as the store's retentions are.
fn span_i(secs: i64) -> String {
    span(u64::try_from(secs).expect("a span is not negative"))
}

/// `n` in `unit`s: a whole number, or with its fraction.
fn per(n: i64, unit: i64) -> String {
    if n % unit == 0 {
        (n / unit).to_string()
    } else {
        format!("{}", n as f64 / unit as f64)
    }
}

/// Days, in digits.
fn days(secs: i64) -> String {
    per(secs, 24 * 3600)
}

/// Whole seconds, or with their fraction.
fn secs(d: Duration) -> String {
    per(d.as_millis() as i64, 1000)
}

/// Whole minutes, or with their fraction.
fn minutes(d: Duration) -> String {
    per(d.as_secs() as i64, 60)
}

/// Milliseconds.
fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

/// A short span as the docs say it: "a quarter of a second".
fn of_a_second(d: Duration) -> String {
    match d.as_millis() {
        250 => "a quarter of a second".into(),
        500 => "half a second".into(),
        1000 => "a second".into(),
        ms => format!("{ms} ms"),
    }
}

/// A histogram bound in seconds, as a person reads it: "50 µs", "2.5 s".
fn bound(seconds: f64) -> String {
    if seconds < 1e-3 {
        format!("{} µs", (seconds * 1e6).round())
    } else if seconds < 1.0 {
        format!("{} ms", (seconds * 1e3).round())
    } else {
        format!("{seconds} s")
    }
}

/// "12 h and 2 h".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A file mode as the docs write it: "0700".
fn mode(mode: u32) -> String {
    format!("{mode:04o}")
}

// What the code computes the figures from.

/// An environment of these variables alone, as `Config` reads one.
fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |key| {
        pairs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    }
}

/// The parser's result with nothing set but a token.
fn parsed() -> (Config, BotConfig) {
    let (config, problems) = Config::read(None, None, &env(&[]));
    assert!(problems.is_empty(), "{problems:?}");
    let bot = config
        .bot(&env(&[("TELOXIDE_TOKEN", "1:a")]))
        .expect("a token is all the bot needs");
    (config, bot)
}

/// The parser's webhook settings with only the address and secret set.
fn parsed_webhook() -> Webhook {
    let (config, _) = parsed();
    config
        .bot(&env(&[
            ("TELOXIDE_TOKEN", "1:a"),
            ("WEBHOOK_URL", "https://bot.example.com/hook"),
            ("WEBHOOK_SECRET", "s"),
        ]))
        .expect("webhook mode needs only these")
        .options
        .webhook
        .expect("webhook mode")
}

/// The default listener limits, as the parser gives them.
fn http_defaults() -> HttpLimits {
    parsed().1.options.http
}

/// Every variable the bot reads, as the parser asks for them: each is
/// answered with a value, so that every branch that reads one runs.
fn variables_read() -> BTreeSet<String> {
    let asked = RefCell::new(BTreeSet::new());
    let env = |key: &str| {
        asked.borrow_mut().insert(key.to_string());
        Some("x".to_string())
    };
    let (config, _) = Config::read(None, None, &env);
    let _ = config.bot(&env);
    let _ = config::log_filter(&env, true);
    asked.into_inner()
}

/// The dialogue compiled in, as the bot runs it.
fn tree() -> Tree {
    crate::load_tree(None).expect("the built-in dialogue loads")
}

/// A setting of the service unit, as written after `name=`.
fn unit_setting(claims: &Claims, name: &str) -> String {
    let text = std::fs::read_to_string(claims.root.join(UNIT)).expect("the service unit");
    text.lines()
        .find_map(|line| line.trim().strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{UNIT} sets no {name}"))
        .trim()
        .to_string()
}

/// The router measured on a held-out set, as `eval` measures it.
fn measured(claims: &Claims, tree: &Tree, file: &str) -> crate::eval::Evaluation {
    let text = std::fs::read_to_string(claims.root.join(file)).expect("the held-out set");
    let samples = crate::eval::parse(tree, &text).unwrap_or_else(|e| panic!("{file}: {e}"));
    crate::eval::evaluate(tree, &samples)
}

/// Every tuning set routed by a router built without its lines, as `eval
/// --leave-out` routes them: off-topic lines routed and off-topic lines, in
/// all of them and in `routing-tune-f.tsv`, and that set's size.
struct LeftOut {
    routed: usize,
    off_topic: usize,
    tune_f_routed: usize,
    tune_f_off_topic: usize,
    tune_f_lines: usize,
}

fn left_out(claims: &Claims, tree: &Tree) -> LeftOut {
    let mut all = LeftOut {
        routed: 0,
        off_topic: 0,
        tune_f_routed: 0,
        tune_f_off_topic: 0,
        tune_f_lines: 0,
    };
    for set in [
        "dev", "tune", "tune-b", "tune-2", "tune-3", "tune-c", "tune-d", "tune-e", "tune-f",
        "tune-g", "tune-h", "tune-i", "tune-j", "tune-k", "tune-l", "tune-m",
    ] {
        let file = format!("tests/data/routing-{set}.tsv");
        let text = std::fs::read_to_string(claims.root.join(&file)).expect("a tuning set");
        let samples = crate::eval::parse(tree, &text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let result = crate::eval::evaluate_left_out(tree, &samples);
        // Every line of a tuning set is in `[training]`, word for word:
        // one edited there would no longer be left out.
        assert_eq!(result.left_out, Some(samples.len()), "{file}");
        let off_topic = samples
            .iter()
            .filter(|s| s.label == crate::eval::NONE)
            .count();
        all.routed += result.off_topic_routed;
        all.off_topic += off_topic;
        if set == "tune-f" {
            all.tune_f_routed = result.off_topic_routed;
            all.tune_f_off_topic = off_topic;
            all.tune_f_lines = samples.len();
        }
    }
    all
}

/// A count as the docs write it: 2,271.
fn thousands(n: usize) -> String {
    match n {
        0..=999 => n.to_string(),
        _ => format!("{},{:03}", thousands(n / 1000), n % 1000),
    }
}

/// The labelled lines of an evaluation set, read as `eval` reads them.
fn samples(claims: &Claims, tree: &Tree, file: &str) -> usize {
    let text = std::fs::read_to_string(claims.root.join(file)).expect("an evaluation set");
    crate::eval::parse(tree, &text)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .len()
}

/// An alert rule's `expr` and `for`, as written in the rules file.
fn alert_rule(claims: &Claims, alert: &str) -> (String, String) {
    let text = std::fs::read_to_string(claims.root.join(ALERTS)).expect("the alert rules");
    let rule: Vec<&str> = text
        .split("- alert: ")
        .find(|rule| rule.starts_with(&format!("{alert}\n")))
        .unwrap_or_else(|| panic!("{ALERTS} has no {alert}"))
        .lines()
        .map(str::trim)
        .collect();
    let field = |name: &str| {
        rule.iter()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("{ALERTS}: {alert} has no {name}"))
            .to_string()
    };
    (field("expr"), field("for"))
}

/// The number an expression compares with after `after` (`> 3600`).
fn after_in(expr: &str, after: &str) -> String {
    let (_, rest) = expr
        .split_once(after)
        .unwrap_or_else(|| panic!("no {after:?} in {expr}"));
    rest.trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect()
}

/// Minutes as a rule writes them (`10m`), in the docs' words.
fn rule_minutes(written: &str) -> String {
    let n: u64 = written
        .trim_end_matches('m')
        .parse()
        .unwrap_or_else(|_| panic!("not minutes: {written}"));
    format!("{} minutes", words(n))
}

/// The soft limit on open files systemd gives a service unless told
/// otherwise: systemd's figure, which operations.md's example uses.
const SYSTEMD_SOFT_LIMIT: u64 = 1024;

#[test]
fn readme_figures_are_the_codes() {
    let mut c = Claims::new();
    let tree = tree();
    let reminders = tree.ui().reminders();
    claims! { c, README;
        "the SMS came, but {} hours passed" => reminders.window_hours;
        "through the {} ways the step fails" => words(tree.categories().len() as u64);
        "missing the {}-hour window" => reminders.window_hours;
    }
    let before: Vec<String> = reminders
        .before_deadline_hours
        .iter()
        .map(|h| format!("{h} h"))
        .collect();
    claims! { c, README;
        "({} before, by default)" => and_list(&before);
        "Needs Rust {} or newer" => env!("CARGO_PKG_RUST_VERSION");
        "store: SQLite file {}; dialogs: built in, {} nodes"
            => store::DEFAULT_URL.trim_start_matches("sqlite://"), tree.len();
        "seems to hold a {}-digit code" => crate::tree::router::CODE_DIGITS;
        "an unclear one offers the two or {} likeliest branches"
            => words(crate::tree::router::MOST_OFFERED as u64);
        "not on a configuration error (exit status {})" => config::EXIT_CONFIG;
    }
    // The configuration table's figures besides its defaults (those are
    // `readmes_configuration_table_is_the_parsers`).
    claims! { c, README;
        "required in webhook mode: 1–{} of `A-Za-z0-9_-`" => config::MAX_SECRET_LEN;
        "past it {} more serve /healthz and /metrics only" => listener::RESERVE;
        "lasts unless renewed ({}–{})" => config::LEASE_SECS.0, config::LEASE_SECS.1;
        "after which a conversation is closed ({}–{})"
            => config::MIN_IDLE_HOURS, config::MAX_IDLE_HOURS;
        "**Exit status {}** means something to fix first" => config::EXIT_CONFIG;
        "**Exit status {}** means something that may pass" => config::EXIT_AGAIN;
        "print every problem, exit {} on any" => config::EXIT_CONFIG;
        "the team's figures for the last N days (default {})" => stats::DEFAULT_DAYS;
        "type an option's number (`{}` back, `{}` start over)"
            => console::BACK_KEY, console::RESTART_KEY;
        "`{}` goes back where a page shows it, and `{}` starts over on every page"
            => console::BACK_KEY, console::RESTART_KEY;
    }
    c.finish();
}

/// What operations.md says of the alert rules, held to the rules file.
#[test]
fn operations_alert_figures_are_the_rules() {
    let mut c = Claims::new();
    let (_, down_for) = alert_rule(&c, "IcpSmsDoctorDown");
    let (quiet, _) = alert_rule(&c, "IcpSmsDoctorNoUpdates");
    let (share, _) = alert_rule(&c, "IcpSmsDoctorTooMany429");
    let (backlog, _) = alert_rule(&c, "IcpSmsDoctorInboxBacklogGrowing");
    let (_, errors_for) = alert_rule(&c, "IcpSmsDoctorStoreErrors");
    let (_, refused_for) = alert_rule(&c, "IcpSmsDoctorStoreRefusesWrites");
    let (waiting, _) = alert_rule(&c, "IcpSmsDoctorCaseWaiting");
    let share: f64 = after_in(&share, ") >").parse().expect("a share");
    claims! { c, OPERATIONS;
        "the bot down (`up` 0 for {})" => rule_minutes(&down_for);
        "no updates for {} while it is up" => rule_minutes(&after_in(&quiet, "updates_total["));
        "over {}% of requests answered 429" => share * 100.0;
        "backlog over {} and rising over {};"
            => after_in(&backlog, "inbox_backlog) >"),
               rule_minutes(&after_in(&backlog, "inbox_backlog["));
        "store calls failing for {};" => rule_minutes(&errors_for);
        "(failed commits for {}:" => rule_minutes(&refused_for);
        "has waited over {} s" => after_in(&waiting, "wait_seconds) >");
    }
    c.finish();
}

#[test]
fn operations_figures_are_the_codes() {
    let mut c = Claims::new();
    let (_, bot) = parsed();
    let http = http_defaults();
    let lease = bot.options.lease;
    let prunes = match schedule::PRUNE_SECS {
        3600 => "hourly".to_string(),
        secs => format!("every {}", span_i(secs)),
    };
    claims! { c, OPERATIONS;
        "per node of the loaded dialogue, over the last {} days" => stats::DEFAULT_DAYS;
        "read from the store at most once a {}"
            => span(crate::metrics::NODES_FRESH.as_secs()).trim_start_matches("a ").to_string();
    }
    claims! { c, OPERATIONS;
        "recognised by its id (kept {})" => span_i(store::INBOX_RETENTION_SECS);
        "Each update id is recorded (kept {})" => span_i(store::INBOX_RETENTION_SECS);
        "the request is tried again after {} ms, then after pauses" => millis(retry::FIRST_PAUSE);
        "that double up to {} s, for {} minutes" => secs(retry::MAX_PAUSE), minutes(retry::WINDOW);
        "So a single failure costs {}" => of_a_second(retry::FIRST_PAUSE);
        "every waiting reply goes within {} s" => secs(retry::MAX_PAUSE);
        "The answer to a button press is tried for {} s only" => secs(retry::PRESS_WINDOW);
        "cannot be delivered after {} minutes is given up" => minutes(retry::WINDOW);
        "recorded for its person (kept {} days)" => days(store::missed::MISSED_RETENTION_SECS);
        "exits with status {} and one line saying so" => config::EXIT_AGAIN;
        "is created {}, and its files {}, whatever the umask" => mode(FOLDER_MODE), mode(FILE_MODE);
        "is closed up to {} at start" => mode(FOLDER_MODE);
        "(another user's) stops it with exit status {}" => config::EXIT_CONFIG;
        "The scheduler prunes {}: facts after {} days" => prunes, stats::MAX_DAYS;
        "closed cases and menu owners after {}" => days(cases::CLOSED_RETENTION_SECS);
        "closed cases and menu owners after {}" => days(store::MENU_RETENTION_SECS);
        "next-day questions {} after they were due" => span_i(stats::LATER_SECS);
        "inbox ids after {}" => span_i(store::INBOX_RETENTION_SECS);
        "private chats {} after the person last wrote there"
            => span_i(store::PRIVATE_CHAT_RETENTION_SECS);
    }
    let code = crate::tree::router::CODE_DIGITS as u64;
    claims! { c, OPERATIONS;
        "a number shaped like a {}-digit code" => code;
        "(a {}-digit message id too)" => words(code);
        "`WEBHOOK_LISTEN` (default `{}`; TLS is the proxy's job)" => parsed_webhook().listen;
        "or that finds the queue full for {} s, is answered 503" => secs(webhook::ROOM_WAIT);
    }
    // The session's own expiry covers the idle time, the next-day
    // question's day and this many more.
    claims! { c, OPERATIONS;
        "expires by itself {} days after the idle time and the next-day question"
            => words(((store::KEPT_PAST_IDLE_SECS - stats::LATER_SECS) / (24 * 3600)) as u64);
        "writes a heartbeat (every {} of `INSTANCE_LEASE_SECS`, default {} s)"
            => part(keeper::BEATS_PER_LEASE), secs(lease);
        "and within a {} of the lease when it stopped cleanly" => part(keeper::BEATS_PER_LEASE);
        "answers 200 when the store answers within {} s"
            => secs(crate::telegram::health::STORE_WAIT);
        "`the store did not answer within {}`"
            => format!("{:?}", crate::telegram::health::STORE_WAIT);
        "When the bot has written nothing for {}," => span(store::health::FRESH.as_secs());
        "(`{}`, expiring after {})"
            => store::health::PROBE_KEY, span_i(store::health::PROBE_KEPT_SECS);
        "at most once {} however often it is scraped" => span(store::PROBE_EVERY.as_secs());
    }
    // Once the store takes writes again: the bot's latest refused write
    // stops speaking for it after `FRESH`, and the next probe is due within
    // `PROBE_EVERY`.
    claims! { c, OPERATIONS;
        "200 again within about {} seconds of the store taking them"
            => words((store::health::FRESH + store::PROBE_EVERY).as_secs());
    }
    let buckets = crate::metrics::STORE_BUCKETS;
    claims! { c, OPERATIONS;
        "latency bounds from {} to {}" => bound(buckets[0]), bound(buckets[buckets.len() - 1]);
        "(served as `{}`, which Prometheus reads)"
            => crate::telegram::health::METRICS_TYPE.trim_end_matches("; charset=utf-8");
        "a second one on the same Redis exits with status {}" => config::EXIT_AGAIN;
        "the poller's lease takes up to `INSTANCE_LEASE_SECS` ({} s) to lapse" => secs(lease);
        "so the restarted process may exit {} once or twice" => config::EXIT_AGAIN;
        "when a renewal (every {} of `INSTANCE_LEASE_SECS`)" => part(store::leases::RENEW_PARTS);
        "and a {} of the lease before it could run out when renewals fail"
            => part(store::leases::TRUST_MARGIN_PARTS);
        "(it tries every {} of the lease)" => part(store::leases::RETRY_PARTS);
    }
    // The listener's limits.
    claims! { c, OPERATIONS;
        "`HTTP_HEADER_TIMEOUT_SECS` ({} s)" => secs(http.header_timeout);
        "`HTTP_IDLE_TIMEOUT_SECS` ({} s)" => secs(http.idle_timeout);
        "`HTTP_BODY_TIMEOUT_SECS` ({} s)" => secs(http.body_timeout);
        "and a head over {} KB 431" => listener::MAX_HEAD / 1024;
        "At most `HTTP_MAX_CONNECTIONS` ({}) are open at once" => http.max_connections;
        "Past it, {} more are kept for `GET /healthz`" => listener::RESERVE;
        "one request each, {} s to send it, {} s in all"
            => secs(listener::RESERVE_HEADER), secs(listener::RESERVE_LIFETIME);
        "`Retry-After: {}`" => listener::RESERVE_RETRY_AFTER_SECS;
        "Past those {}, a connection is closed at once" => listener::RESERVE;
        "once when a {} of it is free again" => part(listener::ROOM_AGAIN as u32);
        "`HTTP connection cap reached: {} connections are open" => http.max_connections;
        "the cap, the {} for /healthz and {} for everything else"
            => listener::RESERVE, listener::FILES_MARGIN;
    }
    let cap = http.max_connections;
    let fitted = |limit: u64| listener::fit(cap, Some(limit)).ok();
    claims! { c, OPERATIONS;
        "systemd's default soft limit is {}" => SYSTEMD_SOFT_LIMIT;
        "`the open-files limit is {}, too low for HTTP_MAX_CONNECTIONS={}"
            => SYSTEMD_SOFT_LIMIT, cap;
        "(it needs {}): at most {} HTTP connections are served"
            => listener::files_needed(cap), fitted(SYSTEMD_SOFT_LIMIT).expect("room for some");
        "if fewer than {} connections would fit, the bot does not start (exit status {}"
            => listener::MIN_CONNECTIONS, config::EXIT_CONFIG;
    }
    c.holds(
        OPERATIONS,
        "`the open-files limit is 100, too low to serve HTTP",
        fitted(100).is_none(),
        format!(
            "with a limit of 100 the bot serves {:?} connections",
            fitted(100)
        ),
    );
    let nofile: u64 = unit_setting(&c, "LimitNOFILE")
        .parse()
        .expect("LimitNOFILE is a number");
    claims! { c, OPERATIONS;
        "so the unit in `deploy/` sets `LimitNOFILE={}`" => nofile;
    }
    c.holds(
        OPERATIONS,
        "room for the default cap",
        fitted(nofile) == Some(cap),
        format!(
            "LimitNOFILE={nofile} leaves room for {:?} of {cap}",
            fitted(nofile)
        ),
    );
    claims! { c, OPERATIONS;
        "and for one raised up to {}" => nofile - listener::files_needed(0);
        "a pause that doubles from {} ms to {}"
            => millis(listener::ACCEPT_PAUSE.0), span(listener::ACCEPT_PAUSE.1.as_secs());
        "256` (cap lowered to {})" => fitted(256).expect("256 open files leave room");
    }
    claims! { c, UNIT;
        "RestartPreventExitStatus={}" => config::EXIT_CONFIG;
    }
    c.finish();
}

#[test]
fn behaviour_figures_are_the_codes() {
    let mut c = Claims::new();
    let tree = tree();
    let reminders = tree.ui().reminders();
    let (_, bot) = parsed();
    let limits = bot.options.limits;
    claims! { c, BEHAVIOUR;
        "remind me before the {} h run out" => reminders.window_hours;
    }
    let ago: Vec<String> = reminders
        .arrived_hours_ago
        .iter()
        .filter(|h| **h > 0)
        .map(u32::to_string)
        .collect();
    let just_now = if reminders.arrived_hours_ago.contains(&0) {
        "just now, "
    } else {
        ""
    };
    claims! { c, BEHAVIOUR;
        "buttons ({}{} h ago)" => just_now, ago.join(" / ");
        "\"it came\" sets the {}-hour reminders" => reminders.window_hours;
        "shown in `TIMEZONE` (default `{}`)" => bot.settings.timezone.name();
        "`SESSION_IDLE_HOURS` (default {})" => per(bot.settings.session_idle_secs, 3600);
        "Owners of sent reminder messages are kept {} days, like group menu owners"
            => days(store::MENU_RETENTION_SECS);
        "closed cases are forgotten after {} days" => days(cases::CLOSED_RETENTION_SECS);
        "{} later the bot asks once" => span_i(stats::LATER_SECS);
        "`/stats [days] [version]` (default {} days, at most {})" => stats::DEFAULT_DAYS, stats::MAX_DAYS;
        "salmon and red as it passes 0, {}%, {}% and {}%"
            => crate::tree::graph::HEAT[1].0, crate::tree::graph::HEAT[2].0, crate::tree::graph::HEAT[3].0;
        "with no user id, kept {} days" => stats::MAX_DAYS;
    }
    // Asked `LATER_SECS` after "ask me tomorrow", kept `LATER_SECS` after
    // it was asked.
    claims! { c, BEHAVIOUR;
        "or {} after it was asked (at most {} days in all)"
            => span_i(stats::LATER_SECS), words((2 * stats::LATER_SECS / (24 * 3600)) as u64);
        "a case keeps it until {} days after closing" => days(cases::CLOSED_RETENTION_SECS);
        "send or edit about {} messages a second in all" => limits.per_second;
        "and {} a second and {} a minute per group"
            => limits.group_per_second, limits.group_per_minute;
        "or an outage outlasts {} minutes of retries" => minutes(retry::WINDOW);
        "A group's {} a minute is the ceiling" => limits.group_per_minute;
        "`BUSY_GROUP_WAIT_SECS` ({} s)" => secs(bot.options.busy_wait);
        "(up to {} a note)" => send::NAMED_MOST;
        "A member named in a note is not named again for {}"
            => span(send::TOLD_BUSY_FOR.as_secs());
        "the same command from the same member within {}" => span(intake::REPEAT_COMMAND.as_secs());
        "the same button pressed on the same menu within {}"
            => span(intake::REPEAT_PRESS.as_secs());
        "in a group at most once {}" => span(intake::NOTE_IN_GROUP.as_secs());
        "a fixed set of {} workers" => crate::telegram::WORKERS;
        "each holding at most {} waiting" => crate::telegram::WORKER_QUEUE;
        "past {} queued in all" => pacer::MAX_QUEUED;
    }
    let minute = 60 * limits.per_second as usize;
    c.holds(
        BEHAVIOUR,
        "(over a minute of Telegram's budget)",
        pacer::MAX_QUEUED > minute,
        format!(
            "MAX_QUEUED is {}, a minute at PACE_PER_SECOND's default is {minute}",
            pacer::MAX_QUEUED
        ),
    );
    claims! { c, BEHAVIOUR;
        "a member named in a busy note is remembered for {}"
            => span(send::TOLD_BUSY_FOR.as_secs());
    }
    c.finish();
}

#[test]
fn contributing_figures_are_the_codes() {
    let mut c = Claims::new();
    let tree = tree();
    claims! { c, CONTRIBUTING;
        "The checkpoints run once {} on a thread"
            => span(crate::store::kernel::sqlite::calls::CHECKPOINT_EVERY.as_secs());
        "A store failure delays delivery (retried every {} s)" => schedule::RETRY_SECS;
        "for the window's span ({}% over Telegram's)" => 100 / pacer::window::MARGIN;
        "Closed cases and their links go {} days after closing"
            => days(cases::CLOSED_RETENTION_SECS);
        "until it is answered or {} after it was asked" => span_i(stats::LATER_SECS);
        "The SQLite folder is created {} (one that exists" => mode(FOLDER_MODE);
        "lets others in is closed up to {} on opening)" => mode(FOLDER_MODE);
        "the database with its `-wal` and `-shm` files is {}, whatever the umask"
            => mode(FILE_MODE);
        "the systemd unit also sets `UMask={}`" => unit_setting(&c, "UMask");
        "a single 5xx costs {} ms" => millis(retry::FIRST_PAUSE);
        "the fixed `{}`/`{}` keys" => console::BACK_KEY, console::RESTART_KEY;
    }
    let payloads = std::fs::read_dir(c.root.join("tests/data/telegram-updates"))
        .expect("tests/data/telegram-updates")
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
        })
        .count();
    claims! { c, CONTRIBUTING;
        "and {} real `Update` payloads" => payloads;
        "adds a {}, made-up category" => ordinal(tree.categories().len() as u64 + 1);
        "`tests/data/routing-eval.tsv` ({} labelled lines"
            => samples(&c, &tree, "tests/data/routing-eval.tsv");
        "`tests/data/routing-heldout.tsv` ({} harder lines"
            => samples(&c, &tree, "tests/data/routing-heldout.tsv");
        "`tests/data/routing-heldout-13.tsv` ({} lines"
            => samples(&c, &tree, "tests/data/routing-heldout-13.tsv");
        "and the set before it, `tests/data/routing-heldout-12.tsv`, to {}% and at most {}."
            => (crate::eval::EARLIER_HELD_OUT_FLOOR * 100.0).round(),
               crate::eval::EARLIER_HELD_OUT_OFF_TOPIC;
        "at least {}% top-1 accuracy and at most {} of its"
            => (crate::eval::HELD_OUT_FLOOR * 100.0).round(), crate::eval::HELD_OUT_OFF_TOPIC;
        "`tests/data/routing-tune.tsv` ({} lines)"
            => samples(&c, &tree, "tests/data/routing-tune.tsv");
        "`tests/data/routing-tune-b.tsv` ({} lines)"
            => samples(&c, &tree, "tests/data/routing-tune-b.tsv");
        "`tests/data/routing-tune-2.tsv` ({} lines)"
            => samples(&c, &tree, "tests/data/routing-tune-2.tsv");
        "`tests/data/routing-tune-3.tsv` ({} lines)"
            => samples(&c, &tree, "tests/data/routing-tune-3.tsv");
        "`tests/data/routing-tune-c.tsv` ({} lines"
            => samples(&c, &tree, "tests/data/routing-tune-c.tsv");
        "`tests/data/routing-tune-d.tsv` ({} lines"
            => samples(&c, &tree, "tests/data/routing-tune-d.tsv");
        "`tests/data/routing-tune-e.tsv` ({} lines"
            => samples(&c, &tree, "tests/data/routing-tune-e.tsv");
        "`tests/data/routing-tune-f.tsv` ({} lines"
            => samples(&c, &tree, "tests/data/routing-tune-f.tsv");
        "`tests/data/routing-tune-g.tsv` ({} lines"
            => samples(&c, &tree, "tests/data/routing-tune-g.tsv");
        "`tests/data/routing-tune-h.tsv` ({} lines"
            => samples(&c, &tree, "tests/data/routing-tune-h.tsv");
        "`tests/data/routing-tune-i.tsv` ({} lines"
            => samples(&c, &tree, "tests/data/routing-tune-i.tsv");
        "`tests/data/routing-tune-j.tsv` ({} lines"
            => samples(&c, &tree, "tests/data/routing-tune-j.tsv");
        "`tests/data/routing-tune-k.tsv` ({} lines"
            => samples(&c, &tree, "tests/data/routing-tune-k.tsv");
        "`tests/data/routing-tune-l.tsv` ({} lines"
            => samples(&c, &tree, "tests/data/routing-tune-l.tsv");
        "`tests/data/routing-tune-m.tsv` ({} lines"
            => samples(&c, &tree, "tests/data/routing-tune-m.tsv");
    }
    c.finish();
}

#[test]
fn dialogs_readme_figures_are_the_codes() {
    let mut c = Claims::new();
    let tree = tree();
    let reminders = tree.ui().reminders();
    let (config, _) = parsed();
    let earlier = measured(&c, &tree, "tests/data/routing-heldout-12.tsv");
    let held_out = measured(&c, &tree, "tests/data/routing-heldout-13.tsv");
    let left_out = left_out(&c, &tree);
    let row = |label: &str| {
        held_out
            .per_label
            .iter()
            .position(|(l, _, _)| l == label)
            .unwrap_or_else(|| panic!("no {label} row"))
    };
    let off_topic = row(crate::eval::NONE);
    let failures: Vec<usize> = (0..held_out.per_label.len())
        .filter(|&i| i != off_topic)
        .map(|i| held_out.per_label[i].1)
        .collect();
    let (fewest, most) = (
        failures.iter().copied().min().unwrap_or(0),
        failures.iter().copied().max().unwrap_or(0),
    );
    let tuning: usize = [
        "routing-tune.tsv",
        "routing-tune-b.tsv",
        "routing-tune-2.tsv",
        "routing-tune-3.tsv",
        "routing-tune-c.tsv",
    ]
    .iter()
    .map(|f| samples(&c, &tree, &format!("tests/data/{f}")))
    .sum();
    claims! { c, DIALOGS;
        "the router reaches **{}%**"
            => format!("{:.1}", 100.0 * held_out.accuracy());
        "({} of {}) and routes **{}** of its {} off-topic lines into a category ({} more"
            => held_out.correct, held_out.total, held_out.off_topic_routed,
               held_out.per_label[off_topic].1, held_out.answered_near_misses;
        "is the held-out set: {} lines ({} per failure category and {} off-topic"
            => held_out.total,
               if fewest == most { fewest.to_string() } else { format!("{fewest} to {most}") },
               held_out.per_label[off_topic].1;
        "checked the same way on all five ({} lines)" => thousands(tuning);
        "the router routes {} of their {} off-topic lines into a category, {} of"
            => left_out.routed, left_out.off_topic, left_out.tune_f_routed;
        "off-topic lines into a category ({} more answered by the node that fits them), with {} lines offered a choice"
            => held_out.answered_near_misses, held_out.offered_choice;
        "heavy on near misses ({} of its {} lines off topic"
            => left_out.tune_f_off_topic, left_out.tune_f_lines;
        "are met, and the tests hold it to {}% and at most {}."
            => (crate::eval::HELD_OUT_FLOOR * 100.0).round(), crate::eval::HELD_OUT_OFF_TOPIC;
        "`tests/data/routing-heldout-12.tsv` ({} lines, {} off topic"
            => earlier.total, earlier.per_label[off_topic].1;
        "with them it reaches {}% and routes {}."
            => format!("{:.1}", 100.0 * earlier.accuracy()), earlier.off_topic_routed;
        "It is not tuned on, and the tests hold it to {}% and at most {}."
            => (crate::eval::EARLIER_HELD_OUT_FLOOR * 100.0).round(),
               crate::eval::EARLIER_HELD_OUT_OFF_TOPIC;
        "(`{}`, the default)" => config.default_lang;
        "a few words (at most {} characters)" => crate::tree::load::MAX_BRIEF_CHARS;
        "a `brief`, if present, is at most {} characters" => crate::tree::load::MAX_BRIEF_CHARS;
        "and `check` exits with status {}" => config::EXIT_CONFIG;
        "button data stays within Telegram's {} bytes" => crate::callback::MAX_DATA_BYTES;
        "a message stays within Telegram's {} characters" => crate::markup::MAX_TEXT_CHARS;
        "may not restart the {} hours" => reminders.window_hours;
        "\"it came\" sets the {}-hour reminders" => reminders.window_hours;
        "# 0 is \"just now\"; at most {}" => crate::tree::ui::MAX_ARRIVAL_CHOICES;
    }
    c.finish();
}

#[test]
fn env_example_figures_are_the_codes() {
    let mut c = Claims::new();
    let (config, bot) = parsed();
    let (http, limits, flood) = (bot.options.http, bot.options.limits, bot.options.flood);
    claims! { c, ENV_EXAMPLE;
        "(default sqlite://{}, created with its folder"
            => store::DEFAULT_URL.trim_start_matches("sqlite://");
        "The local address the webhook listens on. Default: {}." => parsed_webhook().listen;
        "Required in webhook mode: 1 to {} characters" => config::MAX_SECRET_LEN;
        "(past it, {} more are kept for /healthz and /metrics)" => listener::RESERVE;
        "Defaults: {} connections; {}, {} and {} seconds."
            => http.max_connections, secs(http.header_timeout), secs(http.idle_timeout),
               secs(http.body_timeout);
        "its latest heartbeat (written every {} of it)" => part(keeper::BEATS_PER_LEASE);
        "unless renewed (every {} of it)" => part(store::leases::RENEW_PARTS);
        "stops polling a {} of it early" => part(store::leases::TRUST_MARGIN_PARTS);
        "From {} to {}. Default: {}."
            => config::LEASE_SECS.0, config::LEASE_SECS.1, secs(bot.options.lease);
        "DEFAULT_LANG={}" => config.default_lang;
        "whatever it is. Default: {}." => bot.settings.timezone.name();
        "From {} to {} ({} days). Default: {}."
            => config::MIN_IDLE_HOURS, config::MAX_IDLE_HOURS,
               per(i64::from(config::MAX_IDLE_HOURS), 24),
               per(bot.settings.session_idle_secs, 3600);
        "Defaults: {} a second for the bot, {} in any {} seconds per private chat,"
            => limits.per_second, limits.private_burst, limits.private_burst;
        "per private chat, {} a second and {} a minute per group."
            => limits.group_per_second, limits.group_per_minute;
        "Defaults: {}, then {} a minute." => flood.burst, flood.per_minute;
        "offered (once) to continue in a private chat. Default: {}." => secs(bot.options.busy_wait);
        "what is left is logged. Default: {}." => secs(bot.options.grace);
    }
    c.finish();
}

/// How many tries a receiver that is down gets in its first hour: the
/// first, then one per pause.
fn tries_in_an_hour() -> u64 {
    let (mut at, mut tries) = (0, 0);
    while at < 3600 {
        tries += 1;
        at += cases::webhook::retry_after(tries);
    }
    u64::from(tries)
}

#[test]
fn case_webhook_figures_are_the_codes() {
    use cases::events::{MAX_TEXT_UNITS, SCHEMA};
    use cases::webhook::{
        FIRST_RETRY_SECS, GIVE_UP_SECS, ID_HEADER, LEASE_SECS, MAX_RETRY_SECS, SIGNATURE_HEADER,
        TYPE_HEADER, queue::KEPT_SECS,
    };
    let mut c = Claims::new();
    let secret = config::MIN_CASE_WEBHOOK_SECRET;
    let timeout = crate::app::CASE_WEBHOOK_TIMEOUT;
    let first = secs(Duration::from_secs(FIRST_RETRY_SECS as u64));
    let most = minutes(Duration::from_secs(MAX_RETRY_SECS as u64));
    let hex = ring::hmac::HMAC_SHA256.digest_algorithm().output_len() * 2;
    let codes: Vec<String> = cases::webhook::REFUSALS
        .iter()
        .map(u16::to_string)
        .collect();
    let refusals = match codes.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => codes.join(""),
    };
    claims! { c, CASE_WEBHOOK;
        "`CASE_WEBHOOK_SECRET`: at least {} bytes" => secret;
        "a secret under {} bytes" => secret;
        "the variable (exit status {})" => config::EXIT_CONFIG;
        "| `{}` | `sha256=` and the lowercase hex" => SIGNATURE_HEADER;
        "| `{}` | the event's id" => ID_HEADER;
        "| `{}` | the event's type" => TYPE_HEADER;
        "X-Signature-256: sha256=<{} hex digits>" => hex;
        "| `schema` | the schema's version: {}." => SCHEMA;
        "\"schema\": {}," => SCHEMA;
        "A message's text is cut to {} UTF-16 units" => MAX_TEXT_UNITS;
        "no answer within {} s, a redirect" => secs(timeout);
        "`no answer within {} s`" => secs(timeout);
        "tried again after {} s, then after pauses that double up to {} minutes"
            => first, most;
        "one try per pause ({} in its first hour down)" => tries_in_an_hour();
        "An event still failing {} after it was queued" => span_i(GIVE_UP_SECS);
        "claimed in the store while it is posted, for {}," => span_i(LEASE_SECS);
        "are forgotten {} after they were queued" => span_i(KEPT_SECS);
        "for at most {} unless the webhook is removed" => span_i(GIVE_UP_SECS);
        "**One event refused.** A {} refuses that event alone" => refusals;
    }
    claims! { c, OPERATIONS;
        "tried again after {} s, then after pauses that double up to {} minutes"
            => first, most;
        "An event still failing {} after it was queued" => span_i(GIVE_UP_SECS);
        "posted again within {} of the start" => span_i(LEASE_SECS);
    }
    claims! { c, README;
        "required with `CASE_WEBHOOK_URL`: at least {} bytes" => secret;
    }
    claims! { c, ENV_EXAMPLE;
        "Required with CASE_WEBHOOK_URL: at least {} bytes" => secret;
    }
    c.finish();
}

/// A default as the README's table writes it: a value in backticks, or
/// words for none.
fn value(v: impl std::fmt::Display) -> String {
    format!("`{v}`")
}

/// A default the parser leaves unset, as the table words it.
fn unset(is_unset: bool, words: &str, otherwise: impl FnOnce() -> String) -> String {
    if is_unset {
        words.to_string()
    } else {
        otherwise()
    }
}

/// What the README's table should say is `variable`'s default, from the
/// parser itself; `None` for a variable the parser does not know.
fn table_default(variable: &str) -> Option<String> {
    let (config, bot) = parsed();
    let options = &bot.options;
    let (limits, flood, http) = (options.limits, options.flood, options.http);
    let hook = parsed_webhook();
    let in_secs = |d: Duration| value(secs(d));
    Some(match variable {
        "TELOXIDE_TOKEN" => {
            let needed = config.bot(&env(&[])).err() == Some(vec![config::ConfigError::NoToken]);
            unset(needed, "—", || "(not required)".into())
        }
        "TELOXIDE_API_URL" => unset(bot.api_url.is_none(), "Telegram's", || {
            value(bot.api_url.as_ref().expect("set"))
        }),
        "RUST_LOG" => {
            let first = |filter: String| filter.split(',').next().unwrap_or("").to_string();
            format!(
                "`{}` for the bot, `{}` otherwise",
                first(config::log_filter(&env(&[]), true)),
                first(config::log_filter(&env(&[]), false))
            )
        }
        "DIALOGS_DIR" => unset(
            config.dialogs_dir.is_none(),
            "the dialogs compiled in",
            || value(config.dialogs_dir.as_ref().expect("set").display()),
        ),
        "DATABASE_URL" => {
            let default = store::url::parse(&bot.database_url).expect("the default parses");
            let named = store::url::parse(store::DEFAULT_URL).expect("DEFAULT_URL parses");
            if default == named {
                value(store::DEFAULT_URL)
            } else {
                format!("{default:?}")
            }
        }
        "WEBHOOK_URL" => unset(options.webhook.is_none(), "—", || "(webhook mode)".into()),
        "WEBHOOK_LISTEN" => value(hook.listen),
        "WEBHOOK_SECRET" => {
            let required = config
                .bot(&env(&[
                    ("TELOXIDE_TOKEN", "1:a"),
                    ("WEBHOOK_URL", "https://bot.example.com/hook"),
                ]))
                .err()
                == Some(vec![config::ConfigError::WebhookSecret]);
            unset(required, "—", || "(not required)".into())
        }
        "WEBHOOK_REGISTER" => value(hook.register),
        "METRICS_LISTEN" => unset(options.metrics_listen.is_none(), "—", || {
            value(options.metrics_listen.expect("set"))
        }),
        "HTTP_MAX_CONNECTIONS" => value(http.max_connections),
        "HTTP_HEADER_TIMEOUT_SECS" => in_secs(http.header_timeout),
        "HTTP_IDLE_TIMEOUT_SECS" => in_secs(http.idle_timeout),
        "HTTP_BODY_TIMEOUT_SECS" => in_secs(http.body_timeout),
        "INSTANCE_LEASE_SECS" => in_secs(options.lease),
        "DEFAULT_LANG" => value(config.default_lang),
        "TIMEZONE" => value(bot.settings.timezone.name()),
        "SESSION_IDLE_HOURS" => value(per(bot.settings.session_idle_secs, 3600)),
        "PACE_PER_SECOND" => value(limits.per_second),
        "PACE_PRIVATE_BURST" => value(limits.private_burst),
        "PACE_GROUP_PER_SECOND" => value(limits.group_per_second),
        "PACE_GROUP_PER_MINUTE" => value(limits.group_per_minute),
        "FLOOD_BURST" => value(flood.burst),
        "FLOOD_PER_MINUTE" => value(flood.per_minute),
        "BUSY_GROUP_WAIT_SECS" => in_secs(options.busy_wait),
        "SHUTDOWN_GRACE_SECS" => in_secs(options.grace),
        "CASE_WEBHOOK_URL" => unset(bot.settings.case_webhook.is_none(), "—", || {
            "(configured)".into()
        }),
        "CASE_WEBHOOK_SECRET" => {
            let required = config
                .bot(&env(&[
                    ("TELOXIDE_TOKEN", "1:a"),
                    ("CASE_WEBHOOK_URL", "https://desk.example.com/hook"),
                ]))
                .err()
                == Some(vec![config::ConfigError::CaseWebhookSecret]);
            unset(required, "—", || "(not required)".into())
        }
        "SUPPORT_CHAT_ID" => unset(bot.settings.support_chat.is_none(), "—", || {
            value(bot.settings.support_chat.expect("set"))
        }),
        "ADMIN_IDS" => unset(bot.settings.admins.is_empty(), "—", || {
            value(format!("{:?}", bot.settings.admins))
        }),
        "CASE_NUDGE_MINUTES" => value(desk_minutes(bot.settings.nudges.unanswered)),
        "CASE_IDLE_MINUTES" => value(desk_minutes(bot.settings.nudges.idle)),
        "CASE_REOPEN_MINUTES" => value(desk_minutes(bot.settings.reopen_secs)),
        _ => return None,
    })
}

/// The rows of the README's configuration table: the variables of each
/// (a row may name several, separated by " / ") and its default column.
fn configuration_table(readme: &str) -> Vec<(Vec<String>, String)> {
    let (_, section) = readme
        .split_once("\n## Configuration\n")
        .expect("README.md has a Configuration section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line
                .trim()
                .trim_matches('|')
                .split(" | ")
                .map(str::trim)
                .collect();
            let variables = cells[0]
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect();
            (variables, cells.get(1).copied().unwrap_or("").to_string())
        })
        .collect()
}

#[test]
fn readmes_configuration_table_is_the_parsers() {
    let mut c = Claims::new();
    let readme = std::fs::read_to_string(c.root.join(README)).expect("README.md");
    let rows = configuration_table(&readme);
    let read = variables_read();
    let mut listed = BTreeSet::new();
    for (variables, default) in &rows {
        let expected: Vec<String> = variables
            .iter()
            .map(|variable| {
                listed.insert(variable.clone());
                table_default(variable).unwrap_or_else(|| format!("(unknown: {variable})"))
            })
            .collect();
        let expected = expected.join(" / ");
        let names = variables.join(" / ");
        if let Some(stranger) = variables.iter().find(|v| !read.contains(*v)) {
            c.fail(format!(
                "{README}: the configuration table lists `{stranger}`, which the parser \
                 (src/config.rs) never reads: remove the row, or read it in the parser"
            ));
        } else if *default != expected {
            c.fail(format!(
                "{README}: the configuration table's row {names} gives the default {default:?}; \
                 the parser (src/config.rs) gives {expected:?} when it is unset: write that in \
                 the default column (or, if the table is right, change the parser's default)"
            ));
        } else {
            c.held(README);
        }
    }
    let missing: Vec<&String> = read.difference(&listed).collect();
    if !missing.is_empty() {
        c.fail(format!(
            "{README}: the configuration table has no row for {missing:?}, which the parser \
             (src/config.rs) reads: add a row with its default and meaning"
        ));
    }
    c.finish();
}

#[test]
fn env_example_names_every_variable_the_parser_reads_and_no_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join(ENV_EXAMPLE)).expect(".env.example");
    let named: BTreeSet<String> = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, _)| name.trim())
        .filter(|name| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_')
        })
        .map(str::to_string)
        .collect();
    let read = variables_read();
    let missing: Vec<&String> = read.difference(&named).collect();
    let unknown: Vec<&String> = named.difference(&read).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "{ENV_EXAMPLE}: the parser (src/config.rs) reads {missing:?}, which the file does not \
         name: add each with a comment saying what it does and its default; the file names \
         {unknown:?}, which the parser never reads: remove them (or read them in the parser)"
    );
}

/// The TOML sample of `dialogs/README.md` that opens with `[table]`.
fn sample(readme: &str, table: &str) -> toml::Table {
    let block = readme
        .split("```toml\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
        .find(|block| block.trim_start().starts_with(&format!("[{table}]")))
        .unwrap_or_else(|| panic!("{DIALOGS} has no ```toml sample opening with [{table}]"));
    toml::from_str(block).unwrap_or_else(|e| panic!("{DIALOGS}'s [{table}] sample: {e}"))
}

/// The table `[table]` of a TOML file of `dialogs/`.
fn real_table(root: &Path, file: &str, table: &str) -> toml::Table {
    let path = root.join("dialogs").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut all: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    match all.remove(table) {
        Some(toml::Value::Table(table)) => table,
        _ => panic!("dialogs/{file} has no [{table}] table"),
    }
}

#[test]
fn dialogs_readmes_samples_show_the_real_settings() {
    let mut c = Claims::new();
    let readme = std::fs::read_to_string(c.root.join(DIALOGS)).expect("dialogs/README.md");
    for (table, file) in [("reminders", "ui.toml"), ("routing", "routes.toml")] {
        let shown = sample(&readme, table);
        let shown = match shown.get(table) {
            Some(toml::Value::Table(shown)) => shown.clone(),
            _ => panic!("{DIALOGS}'s sample has no [{table}] table"),
        };
        let real = real_table(&c.root, file, table);
        let keys: BTreeSet<&String> = shown.keys().chain(real.keys()).collect();
        for key in keys {
            match (shown.get(key), real.get(key)) {
                (Some(a), Some(b)) if a == b => c.held(DIALOGS),
                (Some(a), Some(b)) => c.fail(format!(
                    "{DIALOGS}: the [{table}] sample has {key} = {a}; dialogs/{file} has \
                     {key} = {b}: copy the real value into the sample"
                )),
                (Some(_), None) => c.fail(format!(
                    "{DIALOGS}: the [{table}] sample has {key}, which dialogs/{file}'s \
                     [{table}] has not: remove it from the sample (or add it to the file)"
                )),
                (None, Some(b)) => c.fail(format!(
                    "{DIALOGS}: the [{table}] sample leaves out {key} = {b} of dialogs/{file}: \
                     add it to the sample, with a comment saying what it does"
                )),
                (None, None) => unreachable!("a key of one of them"),
            }
        }
    }
    c.finish();
}

#[test]
fn a_figure_that_differs_fails_naming_the_file_the_phrase_the_value_and_the_fix() {
    let mut c = Claims::over(
        OPERATIONS,
        "tried again after\n250 ms, for 20 minutes.\nRetry-After: 10.",
    );
    let (pause, window) = (Duration::from_millis(250), Duration::from_secs(15 * 60));
    claims! { c, OPERATIONS; "after {} ms" => millis(pause) }
    assert!(c.failures.is_empty(), "{:?}", c.failures);
    claims! { c, OPERATIONS;
        "for {} minutes" => minutes(window);
        "Retry-After: {}" => 1;
    }
    let [wrong, inside] = &c.failures[..] else {
        panic!("two failures: {:?}", c.failures);
    };
    assert_eq!(
        wrong,
        "docs/operations.md: \"for 15 minutes\" is not there\n  \
         the code has: 15 (from `minutes(window)`)\n  \
         the file has: …tried again after 250 ms, for 20 minutes. Retry-After: 10.…\n  \
         write the code's figure there (or, if the doc is right, change the code)"
    );
    assert!(
        inside.starts_with("docs/operations.md: \"Retry-After: 1\" is not there"),
        "{inside}"
    );
}

#[test]
fn figures_are_written_as_the_docs_write_them() {
    assert_eq!(span(60), "a minute");
    assert_eq!(span(120), "two minutes");
    assert_eq!(span(3), "three seconds");
    assert_eq!(span(3600), "an hour");
    assert_eq!(span(24 * 3600), "a day");
    assert_eq!(span(365 * 24 * 3600), "a year");
    assert_eq!(span(366 * 24 * 3600), "366 days");
    assert_eq!(part(3), "third");
    assert_eq!(part(10), "tenth");
    assert_eq!(part(15), "fifteenth");
    assert_eq!(ordinal(5), "fifth");
    assert_eq!(words(60), "sixty");
    assert_eq!(bound(0.00005), "50 µs");
    assert_eq!(bound(2.5), "2.5 s");
    assert_eq!(secs(Duration::from_millis(2500)), "2.5");
    assert_eq!(
        of_a_second(Duration::from_millis(250)),
        "a quarter of a second"
    );
    assert_eq!(mode(0o700), "0700");
    assert_eq!(and_list(&["12 h".into(), "2 h".into()]), "12 h and 2 h");
    assert_eq!(find_whole("a 10 b", "a 1"), None);
    assert_eq!(find_whole("a 1, b", "a 1"), Some(0));
}

#[test]
fn desk_figures_are_the_codes() {
    let (_, bot) = parsed();
    let settings = &bot.settings;
    let (nudge, idle) = (settings.nudges.unanswered, settings.nudges.idle);
    let reopen = settings.reopen_secs;
    let mut c = Claims::new();
    claims! { c, README;
        "(0 turns each off; at most {})" => crate::app::MAX_DESK_MINUTES;
    }
    claims! { c, BEHAVIOUR;
        "`CASE_REOPEN_MINUTES` (default {}) reopen the same case" => desk_minutes(reopen);
        "after `CASE_NUDGE_MINUTES` (default {})" => desk_minutes(nudge);
        "by mention, after `CASE_IDLE_MINUTES`\n  (default {})" => desk_minutes(idle);
        "1 to {} buttons under the closing message" => crate::callback::RATINGS.end();
        "answered with the {} closest ones" => words(cases::NEAR_SHOWN as u64);
    }
    claims! { c, ENV_EXAMPLE;
        "(0 turns each off, at most {}, a week)" => crate::app::MAX_DESK_MINUTES;
        "CASE_NUDGE_MINUTES (default {})" => desk_minutes(nudge);
        "after CASE_IDLE_MINUTES (default {})" => desk_minutes(idle);
        "CASE_REOPEN_MINUTES (default {})" => desk_minutes(reopen);
    }
    c.finish();
}

/// A desk wait as the docs give it, in minutes (0: off).
fn desk_minutes(secs: Option<i64>) -> i64 {
    secs.map_or(0, |s| s / 60)
}

#[test]
fn screenshot_figures_are_the_codes() {
    use crate::cases::photos::{MOST_PENDING, PENDING_SECS};
    let mut c = Claims::new();
    claims! { c, BEHAVIOUR;
        "it waits {} at most, and closing the case discards it" => span_i(PENDING_SECS);
        "a press after {}, or one on another person's screenshot" => span_i(PENDING_SECS);
        "At most {} wait at once per case" => MOST_PENDING;
    }
    claims! { c, OPERATIONS;
        "(its file id and redacted caption) goes {} after it was sent" => span_i(PENDING_SECS);
    }
    claims! { c, CONTRIBUTING;
        "already hidden, for {} at most" => span_i(PENDING_SECS);
    }
    c.finish();
}
