//! The UI catalogue: the texts, labels and command descriptions of `ui.toml` outside the nodes, and their checks.

use toml::Spanned;

use super::press::{is_page_name, names_one_of, pressed, quoted};
use super::raw::{RawReminders, RawTable, RawUi};
use super::report::{Report, check_text};
use crate::lang::{Lang, Localized};
use crate::markup::MAX_TEXT_CHARS;

/// Declares one catalogue of `ui.toml`: an enum whose variants are the
/// table's keys, each with the placeholders its text must carry (and may
/// carry no others) and, where Telegram's limit is shorter than a
/// message's, that limit. One line per entry, so nothing is kept in step
/// by hand.
macro_rules! catalogue {
    (
        $(#[$meta:meta])*
        $name:ident, default max $default:expr;
        $( $variant:ident = $key:literal $([$($ph:literal),*])? $(max $max:literal)?, )*
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($variant,)*
        }

        impl $name {
            /// Every entry, in declaration order (a text's index in `Ui`).
            pub const ALL: &[$name] = &[$($name::$variant,)*];

            /// The entry's key in its table.
            pub fn key(self) -> &'static str {
                match self {
                    $($name::$variant => $key,)*
                }
            }

            /// The placeholders the text must carry; it may carry no others.
            pub fn placeholders(self) -> &'static [&'static str] {
                match self {
                    $($name::$variant => &[$($($ph),*)?],)*
                }
            }

            /// Telegram's limit for the text.
            pub fn max_chars(self) -> usize {
                match self {
                    $($name::$variant => catalogue!(@max $default $(, $max)?),)*
                }
            }
        }
    };
    (@max $default:expr) => { $default };
    (@max $default:expr, $max:literal) => { $max };
}

catalogue! {
    /// A text of `ui.toml`'s `[text]` table. Alerts (callback-query
    /// answers) hold at most 200 characters.
    UiText, default max MAX_TEXT_CHARS;
    Welcome = "welcome",
    Help = "help",
    Channels = "channels",
    Safety = "safety",
    Closing = "closing",
    Solved = "solved",
    ResetDone = "reset_done",
    MenuOutdated = "menu_outdated",
    FreeText = "free_text",
    OtherSubject = "other_subject",
    UnknownCommand = "unknown_command" ["command"],
    EmptyInput = "empty_input",
    TooLong = "too_long" ["max"],
    LangChoose = "lang_choose",
    LangSet = "lang_set",
    SummaryEmpty = "summary_empty",
    SummaryAnswer = "summary_answer" ["question", "answer"],
    SummaryTried = "summary_tried" ["steps"],
    ConsoleHint = "console_hint",
    NoSuchButton = "no_such_button" ["number"],
    InvalidJson = "invalid_json" ["error"],
    NotYourMenu = "not_your_menu" max 200,
    SlowDown = "slow_down" max 200,
    BusyGroup = "busy_group",
    StoreError = "store_error" max 200,
    SentAgain = "sent_again",
    ReplyMissed = "reply_missed",
    AnonymousAdmin = "anonymous_admin",
    RouteConfident = "route_confident" ["title"],
    RouteCandidates = "route_candidates",
    PersonalDataPrivate = "personal_data_private",
    PersonalDataGroup = "personal_data_group",
    RemindAsk = "remind_ask",
    RemindSet = "remind_set" ["deadline", "left", "times"],
    RemindTooClose = "remind_too_close" ["deadline", "left"],
    WindowAlreadyClosed = "window_already_closed" ["deadline"],
    TimeUnreadable = "time_unreadable",
    TimeGuessed = "time_guessed" ["time", "other"],
    RemindDeliveryPrivate = "remind_delivery_private",
    RemindDeliveryGroup = "remind_delivery_group",
    Reminder = "reminder" ["deadline", "left"],
    ReminderLate = "reminder_late",
    WindowClosed = "window_closed" ["deadline"],
    NewCodeSet = "new_code_set" ["time"],
    NewCodeReminder = "new_code_reminder",
    RemindersList = "reminders_list" ["list"],
    ReminderLine = "reminder_line" ["number", "time", "deadline"],
    NewCodeLine = "new_code_line" ["number", "time"],
    RemindersNone = "reminders_none",
    RemindersCancelled = "reminders_cancelled",
    Verified = "verified",
    VerifiedNoneLeft = "verified_none_left",
    ResetKeepAsk = "reset_keep_ask" ["count"],
    RemindersKept = "reminders_kept",
    SessionEnded = "session_ended",
    RemindersConsole = "reminders_console",
    Duration = "duration" ["hours", "minutes"],
    TeamOnly = "team_only",
    ChatIds = "chat_ids" ["chat", "user"],
    StatsDays = "stats_days" ["max"],
    Stats = "stats" ["days", "started", "categories", "entries", "ended", "ends", "later", "left", "reminders_set", "reminders_sent", "opened", "closed"],
    StatsVersion = "stats_version" ["version"],
    StatsVersionsOther = "stats_versions_other" ["versions"],
    StatsNodes = "stats_nodes" ["nodes"],
    StatsNoCategory = "stats_no_category",
    StatsNone = "stats_none",
    StatsEntryCommand = "stats_entry_command",
    StatsEntryLink = "stats_entry_link",
    StatsEntryText = "stats_entry_text",
    StatsEntryRestart = "stats_entry_restart",
    StatsWaits = "stats_waits" ["inside", "outside"],
    StatsWait = "stats_wait" ["median", "count"],
    HandoffConsent = "handoff_consent",
    HandoffOpened = "handoff_opened" ["case"],
    HandoffOpenedGroup = "handoff_opened_group" ["case"],
    HandoffOpenedGroupPrivate = "handoff_opened_group_private" ["case"],
    HandoffExisting = "handoff_existing" ["case"],
    HandoffFailed = "handoff_failed",
    HandoffAfterHours = "handoff_after_hours" ["back"],
    HandoffReplyTime = "handoff_reply_time" ["within"],
    CaseSummary = "case_summary" ["category", "end", "path"],
    CaseHeader = "case_header" ["case", "person", "place", "lang", "summary"],
    CasePrivate = "case_private",
    CaseTaken = "case_taken" ["staff"],
    CaseTakenStaff = "case_taken_staff" ["staff"],
    CaseClosedByStaff = "case_closed_by_staff",
    CaseClosedByPerson = "case_closed_by_person",
    CaseClosedStaff = "case_closed_staff" ["staff"],
    CaseClosedDone = "case_closed_done",
    CaseAlreadyClosed = "case_already_closed" max 200,
    CaseAlreadyTaken = "case_already_taken" max 200,
    RelayFailed = "relay_failed",
    RelayNotSent = "relay_not_sent",
    StaffReply = "staff_reply" ["text"],
    PersonMessage = "person_message" ["case", "text"],
    RelayPersonalData = "relay_personal_data",
    RelayTextOnly = "relay_text_only",
    StaffTextOnly = "staff_text_only",
    NotStaff = "not_staff" max 200,
    LaterSet = "later_set" ["time"],
    LaterQuestion = "later_question" ["end"],
    LaterSolved = "later_solved",
    LaterNotSolved = "later_not_solved",
    CaseStatusOpen = "case_status_open" ["case"],
    CaseStatusTaken = "case_status_taken" ["case", "staff"],
    CaseStatusWaiting = "case_status_waiting" ["case", "staff"],
    CaseNone = "case_none",
    CaseReopened = "case_reopened" ["case"],
    CaseReopenedStaff = "case_reopened_staff" ["case"],
    CaseRateAsk = "case_rate_ask",
    CaseRated = "case_rated" ["stars"],
    CaseRatedAlready = "case_rated_already" max 200,
    CaseRatedStaff = "case_rated_staff" ["case", "stars"],
    CaseNudge = "case_nudge" ["case", "wait"],
    CaseNudgeIdle = "case_nudge_idle" ["case", "wait", "staff"],
    CaseStepSent = "case_step_sent",
    StaffOnly = "staff_only",
    StaffNoCase = "staff_no_case",
    StaffReplyUsage = "staff_reply_usage",
    StaffSendUsage = "staff_send_usage",
    StaffSendUnknown = "staff_send_unknown" ["node", "near"],
    StaffSent = "staff_sent" ["node", "lang"],
    StaffCannedList = "staff_canned_list" ["names"],
    StaffCannedUnknown = "staff_canned_unknown" ["name", "names"],
    StaffCannedNone = "staff_canned_none",
    StaffCommandUnknown = "staff_command_unknown",
    CaseStatusAnswered = "case_status_answered" ["case"],
    CaseRateRefused = "case_rate_refused" max 200,
    CaseReopenHint = "case_reopen_hint",
    StatsRatings = "stats_ratings" ["ends", "staff"],
    PhotoConfirm = "photo_confirm",
    PhotoCaption = "photo_caption" ["caption"],
    PhotoSent = "photo_sent",
    PhotoDropped = "photo_dropped",
    PhotoCaseClosed = "photo_case_closed",
    PhotoGone = "photo_gone" max 200,
    PhotoNotSent = "photo_not_sent" max 200,
    PhotoTooMany = "photo_too_many",
    PhotoAsFile = "photo_as_file",
    PhotoFromPerson = "photo_from_person" ["case"],
    PhotoNoCase = "photo_no_case",
}

catalogue! {
    /// A label of `ui.toml`'s `[button]` table.
    UiButton, default max MAX_TEXT_CHARS;
    Back = "back",
    Restart = "restart",
    Solved = "solved",
    NotSolved = "not_solved",
    LangZh = "lang_zh",
    LangEn = "lang_en",
    NotThis = "not_this",
    RemindWindow = "remind_window",
    RemindNewCode = "remind_new_code",
    ArrivedNow = "arrived_now",
    ArrivedAgo = "arrived_ago" ["hours"],
    Verified = "verified",
    CodeArrived = "code_arrived",
    CancelReminders = "cancel_reminders",
    CancelNumbered = "cancel_numbered" ["number"],
    KeepReminders = "keep_reminders",
    DropReminders = "drop_reminders",
    ContinuePrivately = "continue_privately",
    Handoff = "handoff",
    HandoffConfirm = "handoff_confirm",
    CaseTake = "case_take",
    CaseClose = "case_close",
    CaseCloseMine = "case_close_mine",
    AskLater = "ask_later",
    LaterYes = "later_yes",
    LaterNo = "later_no",
    PhotoSend = "photo_send",
    PhotoDrop = "photo_drop",
}

catalogue! {
    /// A bot command, described in `ui.toml`'s `[command]` table for the
    /// command menu Telegram shows; the key is the command without its slash.
    UiCommand, default max MAX_COMMAND_DESCRIPTION;
    Diagnose = "diagnose",
    Reset = "reset",
    Reminders = "reminders",
    Lang = "lang",
    Help = "help",
    Start = "start",
}

/// Telegram's limit for a command's description.
pub(crate) const MAX_COMMAND_DESCRIPTION: usize = 256;

/// The checked texts and labels of `ui.toml`.
#[derive(Debug, Clone)]
pub struct Ui {
    texts: Vec<Localized>,
    buttons: Vec<Localized>,
    commands: Vec<Localized>,
    /// `[console]`: the texts said differently in the terminal, by index.
    console: Vec<Option<Localized>>,
    reminders: ReminderSettings,
}

/// When reminders fall, from `ui.toml`'s `[reminders]` table.
#[derive(Debug, Clone)]
pub struct ReminderSettings {
    /// How long the verification window lasts after the SMS arrives.
    pub window_hours: u32,
    /// Reminders fall this many hours before the window closes.
    pub before_deadline_hours: Vec<u32>,
    /// The "it arrived N hours ago" answers offered (0 = just now).
    pub arrived_hours_ago: Vec<u32>,
    /// The typical wait for a new code, after which one reminder falls.
    pub new_code_wait_minutes: u32,
    /// How a time is shown, as a strftime pattern per language.
    pub time_format: Localized,
}

impl Ui {
    pub fn text(&self, which: UiText, lang: Lang) -> &str {
        self.texts[which as usize].get(lang)
    }

    pub fn button(&self, which: UiButton, lang: Lang) -> &str {
        self.buttons[which as usize].get(lang)
    }

    pub fn command(&self, which: UiCommand, lang: Lang) -> &str {
        self.commands[which as usize].get(lang)
    }

    pub fn reminders(&self) -> &ReminderSettings {
        &self.reminders
    }

    /// The same catalogue as the terminal console speaks it: every text of
    /// `[console]` in place of its `[text]` namesake, so neither channel
    /// speaks of the other's controls.
    pub fn for_console(&self) -> Ui {
        let mut ui = self.clone();
        for (text, console) in ui.texts.iter_mut().zip(&self.console) {
            if let Some(console) = console {
                *text = console.clone();
            }
        }
        ui
    }
}

pub(super) fn check_ui(report: &mut Report, file: usize, raw: &RawUi) -> Option<Ui> {
    let texts: Vec<_> = UiText::ALL
        .iter()
        .map(|t| (t.key(), t.placeholders(), t.max_chars()))
        .collect();
    let buttons: Vec<_> = UiButton::ALL
        .iter()
        .map(|b| (b.key(), b.placeholders(), b.max_chars()))
        .collect();
    let commands: Vec<_> = UiCommand::ALL
        .iter()
        .map(|c| (c.key(), c.placeholders(), c.max_chars()))
        .collect();
    let texts = check_table(report, file, "text", &raw.text, &texts);
    let buttons = check_table(report, file, "button", &raw.button, &buttons);
    let commands = check_table(report, file, "command", &raw.command, &commands);
    let console = check_console(report, file, &raw.console);
    let reminders = match &raw.reminders {
        Some(r) => check_reminders(report, file, r),
        None => {
            report.add(
                file,
                0,
                None,
                "the [reminders] table is missing".to_string(),
            );
            None
        }
    };
    // Problems of these two leave the catalogue usable, so the nodes are
    // still checked against it.
    check_closing(report, file, &raw.text);
    if let Some(buttons) = &buttons {
        check_presses(report, file, "text", &raw.text, buttons);
        check_presses(report, file, "console", &raw.console, buttons);
    }
    Some(Ui {
        texts: texts?,
        buttons: buttons?,
        commands: commands?,
        console: console?,
        reminders: reminders?,
    })
}

/// The longest closing advice, in characters. Every end carries it below
/// its steps, so it is a line or two, not the full advice.
const MAX_CLOSING_CHARS: usize = 300;

/// Checks that `text.closing`, added to every end, stays short.
fn check_closing(report: &mut Report, file: usize, table: &RawTable) {
    let Some(closing) = table
        .as_ref()
        .and_then(|t| t.get_ref().get(UiText::Closing.key()))
    else {
        // A missing one is reported with the other missing texts.
        return;
    };
    for (lang, value) in [
        (Lang::Zh, &closing.get_ref().zh),
        (Lang::En, &closing.get_ref().en),
    ] {
        let Some(value) = value else { continue };
        let len = value.get_ref().trim().chars().count();
        if len > MAX_CLOSING_CHARS {
            report.add(
                file,
                value.span().start,
                None,
                format!(
                    "text.closing ({lang}) is {len} characters, over {MAX_CLOSING_CHARS}: every end carries it, so keep it to a line or two"
                ),
            );
        }
    }
}

/// Checks that every button a text of `table` tells people to press
/// (点「X」, press "X") is a label of `[button]` in the same language, or,
/// in Chinese, a page's own words quoted the same in the English text.
fn check_presses(
    report: &mut Report,
    file: usize,
    name: &str,
    table: &RawTable,
    buttons: &[Localized],
) {
    let Some(table) = table else { return };
    for (key, text) in table.get_ref() {
        let raw = text.get_ref();
        let en = raw.en.as_ref().map_or("", |v| v.get_ref().as_str());
        for (lang, value) in [(Lang::Zh, &raw.zh), (Lang::En, &raw.en)] {
            let Some(value) = value else { continue };
            for named in pressed(value.get_ref(), lang) {
                let offered = names_one_of(named, buttons.iter().map(|b| b.get(lang)));
                let page = lang == Lang::Zh && is_page_name(named, en);
                if !offered && !page {
                    report.add(
                        file,
                        value.span().start,
                        None,
                        format!(
                            "{name}.{key} ({lang}) tells people to press {}, but no label of [button] says that",
                            quoted(named, lang)
                        ),
                    );
                }
            }
        }
    }
}

/// Checks `[console]`: each key names a text of `[text]`, and its console
/// wording carries the same placeholders within the same limit. The table
/// is optional, and so is each entry.
fn check_console(
    report: &mut Report,
    file: usize,
    table: &RawTable,
) -> Option<Vec<Option<Localized>>> {
    let mut console = vec![None; UiText::ALL.len()];
    let Some(table) = table else {
        return Some(console);
    };
    let mut ok = true;
    for (key, text) in table.get_ref() {
        let Some(which) = UiText::ALL.iter().find(|t| t.key() == key) else {
            report.add(
                file,
                text.span().start,
                None,
                format!("unknown key console.{key}: it must name a text of [text]"),
            );
            ok = false;
            continue;
        };
        let what = format!("console.{key}");
        let required = which.placeholders();
        let Some(t) = check_text(report, file, text, None, &what, required, required) else {
            ok = false;
            continue;
        };
        let max = which.max_chars();
        for lang in Lang::ALL {
            let len = t.get(lang).encode_utf16().count();
            if len > max {
                report.add(
                    file,
                    text.span().start,
                    None,
                    format!(
                        "{what} ({lang}) is {len} characters, over the {max} its text may hold"
                    ),
                );
                ok = false;
            }
        }
        console[*which as usize] = Some(t);
    }
    ok.then_some(console)
}

/// The most "it arrived N hours ago" answers offered, so they fit one menu.
pub(crate) const MAX_ARRIVAL_CHOICES: usize = 6;

/// Checks `[reminders]`: every reminder falls inside the window, and the
/// time patterns are ones strftime knows.
fn check_reminders(
    report: &mut Report,
    file: usize,
    raw: &Spanned<RawReminders>,
) -> Option<ReminderSettings> {
    let at = raw.span().start;
    let r = raw.get_ref();
    let mut ok = true;
    let mut fail = |report: &mut Report, offset: usize, message: String| {
        report.add(file, offset, None, message);
        ok = false;
    };
    if !(1..=168).contains(&r.window_hours) {
        fail(
            report,
            at,
            "reminders.window_hours lies between 1 and 168".to_string(),
        );
    }
    let inside = |h: &u32| (1..r.window_hours).contains(h);
    if r.before_deadline_hours.is_empty() || !r.before_deadline_hours.iter().all(inside) {
        fail(
            report,
            at,
            "reminders.before_deadline_hours needs at least one value, each from 1 to below window_hours".to_string(),
        );
    }
    let arrival_ok = r.arrived_hours_ago.iter().all(|h| *h < r.window_hours);
    if r.arrived_hours_ago.is_empty()
        || r.arrived_hours_ago.len() > MAX_ARRIVAL_CHOICES
        || !arrival_ok
    {
        fail(
            report,
            at,
            format!(
                "reminders.arrived_hours_ago needs 1 to {MAX_ARRIVAL_CHOICES} values, each below window_hours"
            ),
        );
    }
    if !(1..=1440).contains(&r.new_code_wait_minutes) {
        fail(
            report,
            at,
            "reminders.new_code_wait_minutes lies between 1 and 1440".to_string(),
        );
    }
    let time_format = check_text(
        report,
        file,
        &r.time_format,
        None,
        "reminders.time_format",
        &[],
        &[],
    );
    if let Some(format) = &time_format {
        for lang in Lang::ALL {
            let pattern = format.get(lang);
            let broken = chrono::format::StrftimeItems::new(pattern)
                .any(|item| matches!(item, chrono::format::Item::Error));
            if broken {
                fail(
                    report,
                    r.time_format.span().start,
                    format!(
                        "reminders.time_format ({lang}) \"{pattern}\" is not a valid strftime pattern"
                    ),
                );
            }
        }
    }
    let mut before = r.before_deadline_hours.clone();
    before.sort_unstable_by(|a, b| b.cmp(a));
    before.dedup();
    let time_format = time_format.filter(|_| ok)?;
    Some(ReminderSettings {
        window_hours: r.window_hours,
        before_deadline_hours: before,
        arrived_hours_ago: r.arrived_hours_ago.clone(),
        new_code_wait_minutes: r.new_code_wait_minutes,
        time_format,
    })
}

/// Checks one table of `ui.toml` against the keys the program uses, each
/// with the placeholder it must carry.
fn check_table(
    report: &mut Report,
    file: usize,
    name: &str,
    table: &RawTable,
    keys: &[(&str, &[&str], usize)],
) -> Option<Vec<Localized>> {
    let Some(table) = table else {
        report.add(file, 0, None, format!("the [{name}] table is missing"));
        return None;
    };
    let start = table.span().start;
    let entries = table.get_ref();
    let mut ok = true;
    let mut texts = Vec::with_capacity(keys.len());
    for &(key, required, max) in keys {
        let what = format!("{name}.{key}");
        match entries.get(key) {
            Some(text) => match check_text(report, file, text, None, &what, required, required) {
                Some(t) => {
                    for lang in Lang::ALL {
                        let len = t.get(lang).encode_utf16().count();
                        if len > max {
                            report.add(
                                file,
                                text.span().start,
                                None,
                                format!(
                                    "{what} ({lang}) is {len} characters, over Telegram's {max}"
                                ),
                            );
                            ok = false;
                        }
                    }
                    texts.push(t);
                }
                None => ok = false,
            },
            None => {
                report.add(file, start, None, format!("{what} is missing"));
                ok = false;
            }
        }
    }
    for (key, value) in entries {
        if !keys.iter().any(|(known, _, _)| known == key) {
            report.add(
                file,
                value.span().start,
                None,
                format!("unknown key {name}.{key}"),
            );
            ok = false;
        }
    }
    ok.then_some(texts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_catalogue_holds_its_variants_in_declaration_order() {
        // `Ui` finds a text at its variant's index in these lists.
        for (i, t) in UiText::ALL.iter().enumerate() {
            assert_eq!(*t as usize, i, "{t:?}");
        }
        for (i, b) in UiButton::ALL.iter().enumerate() {
            assert_eq!(*b as usize, i, "{b:?}");
        }
        for (i, c) in UiCommand::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i, "{c:?}");
        }
    }

    #[test]
    fn alerts_are_limited_to_what_telegram_shows() {
        assert_eq!(UiText::NotYourMenu.max_chars(), 200);
        assert_eq!(UiText::Help.max_chars(), MAX_TEXT_CHARS);
        assert_eq!(UiCommand::Diagnose.max_chars(), MAX_COMMAND_DESCRIPTION);
        assert_eq!(UiText::Duration.placeholders(), ["hours", "minutes"]);
    }
}
