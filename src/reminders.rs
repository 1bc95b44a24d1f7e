//! Reminders as data: what is kept, when a verification window's reminders fall, and how times are shown.
//!
//! The reminders wing. This file and `parse` (typed arrival times) and
//! `replies` (the messages) are pure: "now" and the time zone come in as
//! arguments, so the same code serves the bot and the tests with a
//! hand-moved clock. `store` keeps reminders on the kernel; `courier`
//! sends them when they fall due.

pub(crate) mod courier;
pub mod parse;
pub(crate) mod replies;
pub(crate) mod store;

pub use store::{Fresh, Pending};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::clock::Instant;
use crate::lang::Lang;
use crate::tree::{ReminderSettings, Tree, UiText};

pub use crate::clock::DEFAULT_TIMEZONE;

/// A reminder sent more than this long after it was due says it is late.
pub const LATE_AFTER_SECS: i64 = 5 * 60;

/// What a reminder is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Before a verification window closes.
    Window,
    /// After the typical wait for a new code.
    NewCode,
}

impl Kind {
    pub fn code(self) -> &'static str {
        match self {
            Kind::Window => "window",
            Kind::NewCode => "new_code",
        }
    }

    pub fn from_code(code: &str) -> Option<Kind> {
        match code {
            "window" => Some(Kind::Window),
            "new_code" => Some(Kind::NewCode),
            _ => None,
        }
    }
}

/// A reminder as stored: to whom, where it was asked, and when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reminder {
    pub id: i64,
    /// The reminders set together share a plan, and are cancelled together.
    pub plan: i64,
    /// The chat it was asked in.
    pub chat: i64,
    pub user: u64,
    /// The person's name, for the mention when it goes to a group.
    pub name: String,
    pub lang: Lang,
    pub kind: Kind,
    pub due_at: Instant,
    /// When the verification window closes (window reminders).
    pub deadline: Option<Instant>,
    /// The forum topic it was asked in, for delivery to the group.
    pub thread: Option<i32>,
    /// The conversation it was set in (0 for one set before this was
    /// kept), and the node whose menu set it: for the figures.
    #[serde(default)]
    pub conv: u64,
    #[serde(default)]
    pub node: String,
}

/// A reminder to be stored; the store gives it its id and plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReminder {
    pub chat: i64,
    pub user: u64,
    pub name: String,
    pub lang: Lang,
    pub kind: Kind,
    pub due_at: Instant,
    pub deadline: Option<Instant>,
    pub thread: Option<i32>,
    pub conv: u64,
    pub node: String,
}

/// When a verification window closes and when its reminders fall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowPlan {
    pub deadline: Instant,
    /// The reminder times still ahead, earliest first.
    pub dues: Vec<Instant>,
}

/// The window of an SMS that arrived at `arrived`, seen at `now`; `None`
/// once it has closed.
pub fn window_plan(
    settings: &ReminderSettings,
    arrived: Instant,
    now: Instant,
) -> Option<WindowPlan> {
    let deadline = arrived + i64::from(settings.window_hours) * 3600;
    if deadline <= now {
        return None;
    }
    let mut dues: Vec<Instant> = settings
        .before_deadline_hours
        .iter()
        .map(|h| deadline - i64::from(*h) * 3600)
        .filter(|due| *due > now)
        .collect();
    dues.sort_unstable();
    Some(WindowPlan { deadline, dues })
}

/// An instant as a local time in `tz`.
fn local(at: Instant, tz: Tz) -> DateTime<Tz> {
    DateTime::<Utc>::from_timestamp(at, 0)
        .unwrap_or_default()
        .with_timezone(&tz)
}

/// A time as the dialogs' pattern shows it, in `tz`.
pub fn format_time(tree: &Tree, lang: Lang, tz: Tz, at: Instant) -> String {
    let pattern = tree.ui().reminders().time_format.get(lang);
    local(at, tz).format(pattern).to_string()
}

/// A deadline: the time, and the zone it is in.
pub fn format_deadline(tree: &Tree, lang: Lang, tz: Tz, at: Instant) -> String {
    format!("{} ({})", format_time(tree, lang, tz, at), tz.name())
}

/// How long until `until`, in whole hours and minutes (never negative).
pub fn format_left(tree: &Tree, lang: Lang, now: Instant, until: Instant) -> String {
    let minutes = (until - now).max(0) / 60;
    tree.ui()
        .text(UiText::Duration, lang)
        .replace("{hours}", &(minutes / 60).to_string())
        .replace("{minutes}", &(minutes % 60).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-29 10:40 in Shanghai (02:40 UTC).
    const NOW: Instant = 1_795_920_000;

    #[test]
    fn times_are_shown_as_the_dialogue_patterns_say() {
        let tree = crate::load_tree(None).expect("the built-in dialogs");
        let at = NOW + 22 * 3600;
        assert_eq!(
            format_deadline(&tree, Lang::Zh, DEFAULT_TIMEZONE, at),
            "11月30日 08:40 (Asia/Shanghai)"
        );
        assert_eq!(
            format_time(&tree, Lang::En, DEFAULT_TIMEZONE, at),
            "Nov 30, 08:40"
        );
        assert_eq!(format_left(&tree, Lang::Zh, NOW, at + 90), "22小时1分钟");
        assert_eq!(format_left(&tree, Lang::En, at, NOW), "0 h 0 min");
    }

    fn settings() -> ReminderSettings {
        ReminderSettings {
            window_hours: 24,
            before_deadline_hours: vec![12, 2],
            arrived_hours_ago: vec![0, 2],
            new_code_wait_minutes: 60,
            time_format: crate::lang::Localized {
                zh: "%H:%M".into(),
                en: "%H:%M".into(),
            },
        }
    }

    #[test]
    fn a_window_reminds_only_at_times_still_ahead() {
        let plan = window_plan(&settings(), NOW, NOW).expect("open");
        assert_eq!(plan.deadline, NOW + 24 * 3600);
        assert_eq!(plan.dues, [NOW + 12 * 3600, NOW + 22 * 3600]);
        // Arrived 13 hours ago: the 12-hours-left reminder has passed.
        let plan = window_plan(&settings(), NOW - 13 * 3600, NOW).expect("open");
        assert_eq!(plan.dues, [NOW + 9 * 3600]);
        // 23 hours ago: still open, but too close for any reminder.
        let plan = window_plan(&settings(), NOW - 23 * 3600, NOW).expect("open");
        assert!(plan.dues.is_empty());
        // 24 hours ago: closed.
        assert_eq!(window_plan(&settings(), NOW - 24 * 3600, NOW), None);
    }
}
