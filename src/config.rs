//! The configuration, read once from the command line and the environment, with every problem found at once.
//!
//! Values are looked up through a function rather than read from the
//! process environment directly, so tests can hand in their own. A
//! set-but-blank variable (as `.env.example` leaves them) means "unset".
//! Each problem is one sentence naming its variable and what to do.

use std::path::PathBuf;

use std::time::Duration;

use crate::app::{CaseWebhook, DEFAULT_SESSION_IDLE_SECS, Settings};
use crate::app::{
    DEFAULT_IDLE_MINUTES, DEFAULT_NUDGE_MINUTES, DEFAULT_REOPEN_MINUTES, MAX_DESK_MINUTES,
};
use crate::lang::Lang;
use crate::reminders::DEFAULT_TIMEZONE;
use crate::telegram::intake::FloodLimits;
use crate::telegram::pacer::Limits;
use crate::telegram::{HttpLimits, Options, Webhook};

/// The shortest idle time allowed, in hours.
pub const MIN_IDLE_HOURS: u32 = 1;

/// The longest idle time allowed: 30 days, as long as menu owners are
/// remembered, so an expiring session still finds its menu to close.
pub const MAX_IDLE_HOURS: u32 = 30 * 24;

/// `INSTANCE_LEASE_SECS`'s bounds: at least 3 s, as the lease's record
/// expires in whole seconds; at most 10 minutes.
pub(crate) const LEASE_SECS: (u32, u32) = (3, 600);

/// The longest `WEBHOOK_SECRET` Telegram takes.
pub(crate) const MAX_SECRET_LEN: usize = 256;

/// The shortest `CASE_WEBHOOK_SECRET`, in bytes: a secret that short
/// could be guessed from signed bodies.
pub const MIN_CASE_WEBHOOK_SECRET: usize = 16;

/// The exit status for a configuration problem: the service unit does not
/// restart the bot after it (`RestartPreventExitStatus`), as the same
/// configuration would fail the same way.
pub const EXIT_CONFIG: u8 = 2;

/// The exit status for a problem a later start may not have (another bot
/// holds the store, the store cannot be reached): the service unit starts
/// the bot again.
pub const EXIT_AGAIN: u8 = 1;

/// The log filter when `RUST_LOG` is unset, for the bot: it reports its
/// start and its steps. teloxide's poller would add a line for each failed
/// poll to the bot's own one per outage.
pub(crate) const LOG_BOT: &str = "info,teloxide::update_listeners::polling=warn";

/// The log filter when `RUST_LOG` is unset, for the other commands: the
/// console and `check` speak on stdout and log only trouble.
pub(crate) const LOG_OTHERS: &str = "warn";

/// A configuration problem; the program exits with `EXIT_CONFIG` on any.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("DEFAULT_LANG is {0:?}, which is not zh or en; fix it in .env or the environment")]
    DefaultLang(String),
    #[error(
        "TELOXIDE_TOKEN is not set: create a bot with @BotFather and put its token in .env (see .env.example) or the environment"
    )]
    NoToken,
    #[error(
        "TELOXIDE_TOKEN does not look like a bot token (expected <digits>:<secret>, as @BotFather gives it); fix it in .env or the environment"
    )]
    MalformedToken,
    #[error(
        "TIMEZONE is {0:?}, which is not a time zone name (such as Asia/Shanghai or UTC); fix it in .env or the environment"
    )]
    Timezone(String),
    #[error(
        "SESSION_IDLE_HOURS must be a whole number of hours from {MIN_IDLE_HOURS} to {MAX_IDLE_HOURS}; fix it in .env or the environment"
    )]
    IdleHours,
    #[error(
        "SUPPORT_CHAT_ID must be the id of a group or supergroup (a negative number such as -1001234567890), not {0:?}; fix it in .env or the environment"
    )]
    SupportChat(String),
    #[error(
        "ADMIN_IDS must be Telegram user ids separated by commas (such as 12345,67890), not {0:?}; fix it in .env or the environment"
    )]
    AdminIds(String),
    #[error("TELOXIDE_API_URL is not a URL ({0}); fix it in .env or the environment")]
    ApiUrl(String),
    #[error("{0}; fix DATABASE_URL in .env or the environment")]
    DatabaseUrl(String),
    #[error(
        "WEBHOOK_URL must be the https address Telegram posts to, such as https://bot.example.com/telegram, not {0:?} (Telegram posts to https only; http is for a loopback address, as a local Bot API server uses); fix it in .env or the environment"
    )]
    WebhookUrl(String),
    #[error(
        "{0} must be an address and port to listen on, such as 127.0.0.1:8080, not {1:?}; fix it in .env or the environment"
    )]
    Listen(&'static str, String),
    #[error(
        "WEBHOOK_SECRET must be set in webhook mode (WEBHOOK_URL is set) to 1 to {MAX_SECRET_LEN} characters of A-Z, a-z, 0-9, _ and -; fix it in .env or the environment"
    )]
    WebhookSecret,
    #[error("WEBHOOK_REGISTER must be true or false, not {0:?}; fix it in .env or the environment")]
    WebhookRegister(String),
    #[error(
        "CASE_WEBHOOK_URL must be the http:// or https:// address case events are posted to, such as https://desk.example.com/hooks/icp, not {0:?}; fix it in .env or the environment"
    )]
    CaseWebhookUrl(String),
    #[error(
        "CASE_WEBHOOK_SECRET must be set when CASE_WEBHOOK_URL is, to at least {MIN_CASE_WEBHOOK_SECRET} bytes (such as 64 random hex digits), to sign each post; fix it in .env or the environment"
    )]
    CaseWebhookSecret,
    #[error(
        "{key} must be a whole number from {min} to {max}, not {value:?}; fix it in .env or the environment"
    )]
    Number {
        key: &'static str,
        value: String,
        min: u32,
        max: u32,
    },
}

/// What every command needs: where the dialogue comes from and the
/// language for people whose own is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub dialogs_dir: Option<PathBuf>,
    pub default_lang: Lang,
}

/// What running the bot needs besides.
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// Never printed.
    pub token: String,
    /// Another Bot API server, such as a self-hosted one.
    pub api_url: Option<url::Url>,
    /// Which store to open; empty for the default SQLite file.
    pub database_url: String,
    pub settings: Settings,
    /// Telegram's limits, flood control and the stop's grace period.
    pub options: Options,
}

/// A whole number from `min` to `max`, `default` when unset.
fn number(
    env: &dyn Fn(&str) -> Option<String>,
    key: &'static str,
    default: u32,
    (min, max): (u32, u32),
    problems: &mut Vec<ConfigError>,
) -> u32 {
    match value(env, key) {
        None => default,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                problems.push(ConfigError::Number {
                    key,
                    value: v,
                    min,
                    max,
                });
                default
            }
        },
    }
}

/// The delivery settings: `PACE_PER_SECOND`, `PACE_PRIVATE_BURST`,
/// `PACE_GROUP_PER_SECOND`, `PACE_GROUP_PER_MINUTE`, `FLOOD_BURST`,
/// `FLOOD_PER_MINUTE`, `BUSY_GROUP_WAIT_SECS` and `SHUTDOWN_GRACE_SECS`;
/// the HTTP listener's `HTTP_MAX_CONNECTIONS` and `HTTP_*_TIMEOUT_SECS`.
fn options(env: &dyn Fn(&str) -> Option<String>, problems: &mut Vec<ConfigError>) -> Options {
    let defaults = Options::default();
    let (limits, flood, http) = (defaults.limits, defaults.flood, defaults.http);
    const MANY: u32 = 1_000_000;
    let mut n = |key, default, range| number(env, key, default, range, problems);
    let mut secs = |key, default: Duration, max| {
        Duration::from_secs(u64::from(n(key, default.as_secs() as u32, (1, max))))
    };
    let http = HttpLimits {
        header_timeout: secs("HTTP_HEADER_TIMEOUT_SECS", http.header_timeout, 600),
        idle_timeout: secs("HTTP_IDLE_TIMEOUT_SECS", http.idle_timeout, 3600),
        body_timeout: secs("HTTP_BODY_TIMEOUT_SECS", http.body_timeout, 600),
        max_connections: n("HTTP_MAX_CONNECTIONS", http.max_connections, (1, MANY)),
    };
    Options {
        limits: Limits {
            per_second: n("PACE_PER_SECOND", limits.per_second, (1, MANY)),
            private_burst: n("PACE_PRIVATE_BURST", limits.private_burst, (1, MANY)),
            group_per_second: n("PACE_GROUP_PER_SECOND", limits.group_per_second, (1, MANY)),
            group_per_minute: n("PACE_GROUP_PER_MINUTE", limits.group_per_minute, (1, MANY)),
            second: limits.second,
        },
        flood: FloodLimits {
            burst: n("FLOOD_BURST", flood.burst, (1, MANY)),
            per_minute: n("FLOOD_PER_MINUTE", flood.per_minute, (1, MANY)),
        },
        busy_wait: Duration::from_secs(u64::from(n(
            "BUSY_GROUP_WAIT_SECS",
            defaults.busy_wait.as_secs() as u32,
            (1, 3600),
        ))),
        grace: Duration::from_secs(u64::from(n(
            "SHUTDOWN_GRACE_SECS",
            defaults.grace.as_secs() as u32,
            (0, 600),
        ))),
        lease: Duration::from_secs(u64::from(n(
            "INSTANCE_LEASE_SECS",
            defaults.lease.as_secs() as u32,
            LEASE_SECS,
        ))),
        webhook: webhook(env, problems),
        metrics_listen: address(env, "METRICS_LISTEN", problems),
        http,
        ..defaults
    }
}

/// The default `WEBHOOK_LISTEN`.
const WEBHOOK_LISTEN: &str = "127.0.0.1:8080";

/// An address to listen on, from `key`.
fn address(
    env: &dyn Fn(&str) -> Option<String>,
    key: &'static str,
    problems: &mut Vec<ConfigError>,
) -> Option<std::net::SocketAddr> {
    let v = value(env, key)?;
    v.parse()
        .map_err(|_| problems.push(ConfigError::Listen(key, v)))
        .ok()
}

/// Whether a URL names this machine: localhost or a loopback address.
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Webhook mode, when `WEBHOOK_URL` is set: with `WEBHOOK_LISTEN`,
/// `WEBHOOK_SECRET` and `WEBHOOK_REGISTER`.
fn webhook(
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<ConfigError>,
) -> Option<Webhook> {
    let raw = value(env, "WEBHOOK_URL")?;
    let url = match url::Url::parse(&raw) {
        Ok(url) if url.scheme() == "https" && url.host().is_some() => Some(url),
        // A local Bot API server (or a test's) may post over plain HTTP
        // to this machine; Telegram itself never does.
        Ok(url) if url.scheme() == "http" && is_loopback(&url) => Some(url),
        _ => {
            problems.push(ConfigError::WebhookUrl(raw));
            None
        }
    };
    let listen = match value(env, "WEBHOOK_LISTEN") {
        None => WEBHOOK_LISTEN.parse().ok(),
        Some(_) => address(env, "WEBHOOK_LISTEN", problems),
    };
    let secret = value(env, "WEBHOOK_SECRET").filter(|s| {
        (1..=MAX_SECRET_LEN).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    if secret.is_none() {
        problems.push(ConfigError::WebhookSecret);
    }
    let register = match value(env, "WEBHOOK_REGISTER").map(|v| v.to_ascii_lowercase()) {
        None => Some(true),
        Some(v) if v == "true" => Some(true),
        Some(v) if v == "false" => Some(false),
        Some(v) => {
            problems.push(ConfigError::WebhookRegister(v));
            None
        }
    };
    Some(Webhook {
        url: url?,
        listen: listen?,
        secret: secret?,
        register: register?,
    })
}

/// The case webhook, when `CASE_WEBHOOK_URL` is set: an http(s) address,
/// with `CASE_WEBHOOK_SECRET` of at least `MIN_CASE_WEBHOOK_SECRET` bytes.
/// A secret without an address is left unused, as `WEBHOOK_SECRET` is.
/// An address as a problem quotes it: its scheme and host, never its path
/// or query, which may hold a token.
fn without_path(raw: &str) -> String {
    let (scheme, rest) = match raw.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), raw),
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let more = match &rest[host.len()..] {
        "" => "",
        "/" => "/",
        _ => "/…",
    };
    format!("{scheme}{host}{more}")
}

fn case_webhook(
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<ConfigError>,
) -> Option<CaseWebhook> {
    let raw = value(env, "CASE_WEBHOOK_URL")?;
    let url = match url::Url::parse(&raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
        _ => {
            problems.push(ConfigError::CaseWebhookUrl(without_path(&raw)));
            None
        }
    };
    let secret = value(env, "CASE_WEBHOOK_SECRET").filter(|s| s.len() >= MIN_CASE_WEBHOOK_SECRET);
    if secret.is_none() {
        problems.push(ConfigError::CaseWebhookSecret);
    }
    Some(CaseWebhook::new(url?, secret?))
}

/// A variable's value through `env`, if it is set and not blank.
fn value(env: &dyn Fn(&str) -> Option<String>, key: &str) -> Option<String> {
    env(key)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The log filter: `RUST_LOG` if set, else `LOG_BOT` for the bot
/// (`bot`) and `LOG_OTHERS` for the other commands.
pub fn log_filter(env: &dyn Fn(&str) -> Option<String>, bot: bool) -> String {
    value(env, "RUST_LOG").unwrap_or_else(|| if bot { LOG_BOT } else { LOG_OTHERS }.to_string())
}

/// The process environment, as `Config::read` takes it.
pub fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

impl Config {
    /// The command line's values where given, else `DIALOGS_DIR` and
    /// `DEFAULT_LANG`; a bad value is reported and its default used, so the
    /// bot's own problems can be reported beside it.
    pub fn read(
        dialogs_dir: Option<PathBuf>,
        default_lang: Option<Lang>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> (Config, Vec<ConfigError>) {
        let mut problems = Vec::new();
        let dialogs_dir = dialogs_dir.or_else(|| value(env, "DIALOGS_DIR").map(PathBuf::from));
        let default_lang = match default_lang {
            Some(lang) => lang,
            None => match value(env, "DEFAULT_LANG") {
                None => Lang::Zh,
                Some(v) => v.parse::<Lang>().unwrap_or_else(|_| {
                    problems.push(ConfigError::DefaultLang(v));
                    Lang::Zh
                }),
            },
        };
        let config = Config {
            dialogs_dir,
            default_lang,
        };
        (config, problems)
    }

    /// The bot's own settings: `TELOXIDE_TOKEN`, `TELOXIDE_API_URL`,
    /// `DATABASE_URL`, `TIMEZONE` and `SESSION_IDLE_HOURS`, with every
    /// problem among them, in that order.
    pub fn bot(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<BotConfig, Vec<ConfigError>> {
        let mut problems = Vec::new();
        let token = value(env, "TELOXIDE_TOKEN").unwrap_or_default();
        if token.is_empty() {
            problems.push(ConfigError::NoToken);
        } else if !well_formed_token(&token) {
            problems.push(ConfigError::MalformedToken);
        }
        let api_url = match value(env, "TELOXIDE_API_URL").map(|v| url::Url::parse(&v)) {
            None => None,
            Some(Ok(url)) => Some(url),
            Some(Err(e)) => {
                problems.push(ConfigError::ApiUrl(e.to_string()));
                None
            }
        };
        let database_url = value(env, "DATABASE_URL").unwrap_or_default();
        if let Err(e) = crate::store::url::parse(&database_url) {
            problems.push(ConfigError::DatabaseUrl(e.to_string()));
        }
        let timezone = match value(env, "TIMEZONE") {
            None => DEFAULT_TIMEZONE,
            Some(name) => name.parse::<chrono_tz::Tz>().unwrap_or_else(|_| {
                problems.push(ConfigError::Timezone(name));
                DEFAULT_TIMEZONE
            }),
        };
        let session_idle_secs = match value(env, "SESSION_IDLE_HOURS").map(|v| v.parse::<u32>()) {
            None => DEFAULT_SESSION_IDLE_SECS,
            Some(Ok(hours)) if (MIN_IDLE_HOURS..=MAX_IDLE_HOURS).contains(&hours) => {
                i64::from(hours) * 3600
            }
            Some(_) => {
                problems.push(ConfigError::IdleHours);
                DEFAULT_SESSION_IDLE_SECS
            }
        };
        let support_chat = match value(env, "SUPPORT_CHAT_ID") {
            None => None,
            Some(v) => match v.parse::<i64>() {
                Ok(id) if id < 0 => Some(id),
                _ => {
                    problems.push(ConfigError::SupportChat(v));
                    None
                }
            },
        };
        let admins = match value(env, "ADMIN_IDS") {
            None => Vec::new(),
            Some(v) => {
                let ids: Option<Vec<u64>> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|id| !id.is_empty())
                    .map(|id| id.parse::<u64>().ok().filter(|id| *id > 0))
                    .collect();
                ids.unwrap_or_else(|| {
                    problems.push(ConfigError::AdminIds(v));
                    Vec::new()
                })
            }
        };
        let case_webhook = case_webhook(env, &mut problems);
        let options = options(env, &mut problems);
        let mut desk = |key, default| {
            let value = number(env, key, default, (0, MAX_DESK_MINUTES), &mut problems);
            crate::app::minutes(value)
        };
        let nudges = crate::app::NudgeWaits {
            unanswered: desk("CASE_NUDGE_MINUTES", DEFAULT_NUDGE_MINUTES),
            idle: desk("CASE_IDLE_MINUTES", DEFAULT_IDLE_MINUTES),
        };
        let reopen_secs = desk("CASE_REOPEN_MINUTES", DEFAULT_REOPEN_MINUTES);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(BotConfig {
            token,
            api_url,
            database_url,
            options,
            settings: Settings {
                default_lang: self.default_lang,
                timezone,
                session_idle_secs,
                support_chat,
                admins,
                asks_later: true,
                nudges,
                reopen_secs,
                case_webhook,
            },
        })
    }
}

/// A token's shape (`<bot id>:<secret>`, as @BotFather gives it).
fn well_formed_token(token: &str) -> bool {
    token.split_once(':').is_some_and(|(id, secret)| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_digit())
            && !secret.is_empty()
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn delivery_settings_are_read_and_a_bad_one_named() {
        let good = env(&[
            ("TELOXIDE_TOKEN", "123:abc"),
            ("PACE_GROUP_PER_MINUTE", "15"),
            ("FLOOD_BURST", "4"),
            ("SHUTDOWN_GRACE_SECS", "0"),
        ]);
        let (config, _) = Config::read(None, None, &good);
        let options = config.bot(&good).expect("valid").options;
        assert_eq!(options.limits.group_per_minute, 15);
        assert_eq!(options.limits.per_second, 30);
        assert_eq!(options.flood.burst, 4);
        assert_eq!(options.grace, Duration::ZERO);
        let bad = env(&[("TELOXIDE_TOKEN", "123:abc"), ("PACE_PER_SECOND", "0")]);
        let problems = config.bot(&bad).expect_err("refused");
        assert_eq!(
            problems[0].to_string(),
            "PACE_PER_SECOND must be a whole number from 1 to 1000000, not \"0\"; fix it in .env or the environment"
        );
    }

    #[test]
    fn the_http_listeners_limits_are_read_and_a_bad_one_named() {
        let (config, _) = Config::read(None, None, &env(&[]));
        let defaults = config
            .bot(&env(&[("TELOXIDE_TOKEN", "1:a")]))
            .expect("valid")
            .options
            .http;
        assert_eq!(defaults, HttpLimits::default());
        assert_eq!(defaults.max_connections, 1024);
        let set = config
            .bot(&env(&[
                ("TELOXIDE_TOKEN", "1:a"),
                ("HTTP_MAX_CONNECTIONS", "50"),
                ("HTTP_HEADER_TIMEOUT_SECS", "3"),
                ("HTTP_IDLE_TIMEOUT_SECS", "120"),
                ("HTTP_BODY_TIMEOUT_SECS", "7"),
            ]))
            .expect("valid")
            .options
            .http;
        assert_eq!(
            set,
            HttpLimits {
                max_connections: 50,
                header_timeout: Duration::from_secs(3),
                idle_timeout: Duration::from_secs(120),
                body_timeout: Duration::from_secs(7),
            }
        );
        let bad = config
            .bot(&env(&[
                ("TELOXIDE_TOKEN", "1:a"),
                ("HTTP_MAX_CONNECTIONS", "0"),
                ("HTTP_HEADER_TIMEOUT_SECS", "0"),
                ("HTTP_IDLE_TIMEOUT_SECS", "an hour"),
            ]))
            .expect_err("refused");
        let named: Vec<String> = bad.iter().map(ToString::to_string).collect();
        assert_eq!(
            named,
            [
                "HTTP_HEADER_TIMEOUT_SECS must be a whole number from 1 to 600, not \"0\"; fix it in .env or the environment",
                "HTTP_IDLE_TIMEOUT_SECS must be a whole number from 1 to 3600, not \"an hour\"; fix it in .env or the environment",
                "HTTP_MAX_CONNECTIONS must be a whole number from 1 to 1000000, not \"0\"; fix it in .env or the environment",
            ]
        );
    }

    #[test]
    fn blank_values_count_as_unset() {
        let env = env(&[("DIALOGS_DIR", "  "), ("DEFAULT_LANG", "")]);
        let (config, problems) = Config::read(None, None, &env);
        assert!(problems.is_empty());
        assert_eq!(config.dialogs_dir, None);
        assert_eq!(config.default_lang, Lang::Zh);
    }

    #[test]
    fn the_command_line_wins_over_the_environment() {
        let env = env(&[("DEFAULT_LANG", "fr"), ("DIALOGS_DIR", "a")]);
        let (config, problems) = Config::read(Some("b".into()), Some(Lang::En), &env);
        assert!(problems.is_empty());
        assert_eq!(config.dialogs_dir, Some(PathBuf::from("b")));
        assert_eq!(config.default_lang, Lang::En);
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let (config, _) = Config::read(None, None, &env(&[]));
        let bad = [
            (env(&[]), ConfigError::NoToken),
            (
                env(&[("TELOXIDE_TOKEN", "abc")]),
                ConfigError::MalformedToken,
            ),
            (
                env(&[("TELOXIDE_TOKEN", "1:a"), ("TIMEZONE", "Mars/Olympus")]),
                ConfigError::Timezone("Mars/Olympus".into()),
            ),
            (
                env(&[("TELOXIDE_TOKEN", "1:a"), ("SESSION_IDLE_HOURS", "0")]),
                ConfigError::IdleHours,
            ),
        ];
        for (env, expected) in bad {
            assert_eq!(config.bot(&env).err(), Some(vec![expected]));
        }
        let ok = config
            .bot(&env(&[
                ("TELOXIDE_TOKEN", "1:a"),
                ("SESSION_IDLE_HOURS", "2"),
            ]))
            .expect("valid");
        assert_eq!(ok.settings.session_idle_secs, 7200);
        assert_eq!(ok.database_url, "");
    }

    #[test]
    fn the_support_chat_and_admins_are_read_and_checked() {
        let (config, _) = Config::read(None, None, &env(&[]));
        let ok = config
            .bot(&env(&[
                ("TELOXIDE_TOKEN", "1:a"),
                ("SUPPORT_CHAT_ID", "-1001234"),
                ("ADMIN_IDS", " 12, 34 ,"),
            ]))
            .expect("valid");
        assert_eq!(ok.settings.support_chat, Some(-1001234));
        assert_eq!(ok.settings.admins, vec![12, 34]);
        let bad = config
            .bot(&env(&[
                ("TELOXIDE_TOKEN", "1:a"),
                ("SUPPORT_CHAT_ID", "1234"),
                ("ADMIN_IDS", "12,bob"),
            ]))
            .expect_err("refused");
        assert_eq!(
            bad,
            vec![
                ConfigError::SupportChat("1234".into()),
                ConfigError::AdminIds("12,bob".into())
            ]
        );
    }

    #[test]
    fn webhook_mode_is_read_and_each_bad_value_named() {
        let (config, _) = Config::read(None, None, &env(&[]));
        let options = |pairs: &'static [(&'static str, &'static str)]| config.bot(&env(pairs));
        let polling = options(&[
            ("TELOXIDE_TOKEN", "1:a"),
            ("METRICS_LISTEN", "0.0.0.0:9100"),
        ])
        .expect("valid");
        assert_eq!(polling.options.webhook, None);
        assert_eq!(
            polling.options.metrics_listen,
            Some("0.0.0.0:9100".parse().unwrap())
        );
        let hook = options(&[
            ("TELOXIDE_TOKEN", "1:a"),
            ("WEBHOOK_URL", "https://bot.example.com/tg/hook"),
            ("WEBHOOK_SECRET", "s3cret_-X"),
        ])
        .expect("valid")
        .options
        .webhook
        .expect("webhook mode");
        assert_eq!(hook.url.path(), "/tg/hook");
        assert_eq!(hook.listen, "127.0.0.1:8080".parse().unwrap());
        assert!(hook.register);
        assert!(!format!("{hook:?}").contains("s3cret"));
        let second = options(&[
            ("TELOXIDE_TOKEN", "1:a"),
            ("WEBHOOK_URL", "https://bot.example.com/"),
            ("WEBHOOK_SECRET", "x"),
            ("WEBHOOK_LISTEN", "127.0.0.1:8081"),
            ("WEBHOOK_REGISTER", "FALSE"),
        ])
        .expect("valid")
        .options
        .webhook
        .expect("webhook mode");
        assert!(!second.register);
        assert_eq!(second.listen.port(), 8081);
        let too_long: &'static str = "a".repeat(257).leak();
        for (pairs, expected) in [
            (
                vec![("WEBHOOK_URL", "https://bot.example.com/")],
                ConfigError::WebhookSecret,
            ),
            (
                vec![
                    ("WEBHOOK_URL", "https://bot.example.com/"),
                    ("WEBHOOK_SECRET", "has space"),
                ],
                ConfigError::WebhookSecret,
            ),
            (
                vec![
                    ("WEBHOOK_URL", "https://bot.example.com/"),
                    ("WEBHOOK_SECRET", too_long),
                ],
                ConfigError::WebhookSecret,
            ),
            (
                vec![("WEBHOOK_URL", "bot.example.com"), ("WEBHOOK_SECRET", "x")],
                ConfigError::WebhookUrl("bot.example.com".into()),
            ),
            (
                vec![
                    ("WEBHOOK_URL", "http://bot.example.com/tg"),
                    ("WEBHOOK_SECRET", "x"),
                ],
                ConfigError::WebhookUrl("http://bot.example.com/tg".into()),
            ),
            (
                vec![
                    ("WEBHOOK_URL", "https://bot.example.com/"),
                    ("WEBHOOK_SECRET", "x"),
                    ("WEBHOOK_LISTEN", "8080"),
                ],
                ConfigError::Listen("WEBHOOK_LISTEN", "8080".into()),
            ),
            (
                vec![
                    ("WEBHOOK_URL", "https://bot.example.com/"),
                    ("WEBHOOK_SECRET", "x"),
                    ("WEBHOOK_REGISTER", "maybe"),
                ],
                ConfigError::WebhookRegister("maybe".into()),
            ),
        ] {
            let mut pairs = pairs;
            pairs.push(("TELOXIDE_TOKEN", "1:a"));
            let pairs: &'static [(&'static str, &'static str)] = pairs.leak();
            assert_eq!(options(pairs).err(), Some(vec![expected]));
        }
    }

    #[test]
    fn the_case_webhook_is_read_and_each_bad_value_named() {
        let (config, _) = Config::read(None, None, &env(&[]));
        let bot = |pairs: &'static [(&'static str, &'static str)]| config.bot(&env(pairs));
        let none = bot(&[("TELOXIDE_TOKEN", "1:a")]).expect("valid");
        assert_eq!(none.settings.case_webhook, None);
        // A secret alone is left unused.
        let alone = bot(&[
            ("TELOXIDE_TOKEN", "1:a"),
            ("CASE_WEBHOOK_SECRET", "0123456789abcdef"),
        ])
        .expect("valid");
        assert_eq!(alone.settings.case_webhook, None);
        let hook = bot(&[
            ("TELOXIDE_TOKEN", "1:a"),
            (
                "CASE_WEBHOOK_URL",
                "https://desk.example.com/hooks/icp?key=k3y",
            ),
            ("CASE_WEBHOOK_SECRET", "0123456789abcdef"),
        ])
        .expect("valid")
        .settings
        .case_webhook
        .expect("configured");
        assert_eq!(hook.url.path(), "/hooks/icp");
        assert_eq!(hook.secret, "0123456789abcdef");
        assert_eq!(hook.timeout, crate::app::CASE_WEBHOOK_TIMEOUT);
        assert_eq!(hook.target(), "https://desk.example.com");
        let shown = format!("{hook:?}");
        assert!(
            !shown.contains("0123456789abcdef") && !shown.contains("k3y"),
            "{shown}"
        );
        let plain = bot(&[
            ("TELOXIDE_TOKEN", "1:a"),
            ("CASE_WEBHOOK_URL", "http://10.0.0.5:8080/in"),
            ("CASE_WEBHOOK_SECRET", "0123456789abcdef"),
        ])
        .expect("plain http is allowed, for a receiver on a private network");
        assert_eq!(
            plain.settings.case_webhook.expect("configured").target(),
            "http://10.0.0.5:8080"
        );
        for (pairs, expected) in [
            (
                vec![("CASE_WEBHOOK_URL", "https://desk.example.com/")],
                vec![ConfigError::CaseWebhookSecret],
            ),
            (
                vec![
                    ("CASE_WEBHOOK_URL", "https://desk.example.com/"),
                    ("CASE_WEBHOOK_SECRET", "fifteen-bytes.."),
                ],
                vec![ConfigError::CaseWebhookSecret],
            ),
            (
                vec![
                    ("CASE_WEBHOOK_URL", "ftp://desk.example.com/"),
                    ("CASE_WEBHOOK_SECRET", "0123456789abcdef"),
                ],
                vec![ConfigError::CaseWebhookUrl(
                    "ftp://desk.example.com/".into(),
                )],
            ),
            (
                vec![("CASE_WEBHOOK_URL", "desk.example.com/hook")],
                vec![
                    ConfigError::CaseWebhookUrl("desk.example.com/…".into()),
                    ConfigError::CaseWebhookSecret,
                ],
            ),
        ] {
            let mut pairs = pairs;
            pairs.push(("TELOXIDE_TOKEN", "1:a"));
            let pairs: &'static [(&'static str, &'static str)] = pairs.leak();
            assert_eq!(bot(pairs).err(), Some(expected));
        }
        assert!(
            ConfigError::CaseWebhookSecret
                .to_string()
                .contains("at least 16 bytes")
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let env = env(&[
            ("DEFAULT_LANG", "fr"),
            ("TELOXIDE_TOKEN", "nonsense"),
            ("DATABASE_URL", "postgres://localhost"),
            ("TIMEZONE", "Mars/Olympus"),
            ("SESSION_IDLE_HOURS", "a day"),
            ("TELOXIDE_API_URL", "not a url"),
        ]);
        let (config, mut problems) = Config::read(None, None, &env);
        problems.extend(config.bot(&env).err().unwrap_or_default());
        let named: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(named.len(), 6, "{named:#?}");
        for (line, variable) in named.iter().zip([
            "DEFAULT_LANG",
            "TELOXIDE_TOKEN",
            "TELOXIDE_API_URL",
            "DATABASE_URL",
            "TIMEZONE",
            "SESSION_IDLE_HOURS",
        ]) {
            assert!(line.contains(variable), "{line} names {variable}");
        }
    }
}
