//! Loading `dialogs/`: a raw serde mirror of the TOML files, checked once into a read-only `Tree`.
//!
//! Loading never stops at the first mistake: it collects every problem, each
//! with its file and line, so an editor fixes a broken folder in one pass.
//! Once a `Tree` exists, every lookup through it succeeds.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::fs;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::callback::{Action, MAX_DATA_BYTES, is_valid_id};
use crate::lang::{Lang, Localized};
use crate::router::{RouteData, Router, RouterData, Thresholds};

/// Telegram refuses message texts longer than this (counted in UTF-16 units).
pub const MAX_TEXT_CHARS: usize = 4096;

/// The entry menu's id.
pub const ROOT_ID: &str = "menu";

/// The entry nodes of the four symptom categories.
pub const CATEGORY_IDS: [&str; 4] = ["timeout", "not_received", "mismatch", "reset"];

/// The file that holds the texts and labels outside the nodes.
pub const UI_FILE: &str = "ui.toml";

/// The file that holds the free-text router's data.
pub const ROUTES_FILE: &str = "routes.toml";

/// The placeholder an end's text may carry for the answers chosen so far.
pub const SUMMARY_PLACEHOLDER: &str = "summary";

/// One dialogs file, read from disk or compiled into the binary.
#[derive(Debug, Clone)]
pub struct Source {
    /// The path shown in problem reports, e.g. `dialogs/timeout.toml`.
    pub path: String,
    pub text: String,
}

/// The dialogs compiled into the binary from the repository's `dialogs/`.
pub fn embedded() -> Vec<Source> {
    const FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/embedded_dialogs.rs"));
    FILES
        .iter()
        .map(|(name, text)| Source {
            path: format!("dialogs/{name}"),
            text: (*text).to_string(),
        })
        .collect()
}

/// Reads every `*.toml` file of `dir`, in name order.
pub fn read_dir(dir: &Path) -> Result<Vec<Source>, LoadError> {
    let fail = |message: String| {
        LoadError(vec![Problem {
            file: Some(dir.display().to_string()),
            line: None,
            node: None,
            message,
        }])
    };
    let entries = fs::read_dir(dir).map_err(|e| fail(format!("cannot read the folder: {e}")))?;
    let mut paths: Vec<_> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml") && path.is_file())
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(fail("holds no .toml files".to_string()));
    }
    let mut sources = Vec::with_capacity(paths.len());
    let mut problems = Vec::new();
    for path in paths {
        match fs::read_to_string(&path) {
            Ok(text) => sources.push(Source {
                path: path.display().to_string(),
                text,
            }),
            Err(e) => problems.push(Problem {
                file: Some(path.display().to_string()),
                line: None,
                node: None,
                message: format!("cannot read the file: {e}"),
            }),
        }
    }
    if problems.is_empty() {
        Ok(sources)
    } else {
        Err(LoadError(problems))
    }
}

/// One thing wrong with a dialogs folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: Option<String>,
    pub line: Option<usize>,
    pub node: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{file}:{line}: ")?,
            (Some(file), None) => write!(f, "{file}: ")?,
            _ => {}
        }
        if let Some(node) = &self.node {
            write!(f, "node \"{node}\": ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a dialogs folder, in file and line order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError(pub Vec<Problem>);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// A text of `ui.toml`'s `[text]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiText {
    Welcome,
    Help,
    Channels,
    Safety,
    Solved,
    ResetDone,
    MenuOutdated,
    FreeText,
    UnknownCommand,
    EmptyInput,
    TooLong,
    LangChoose,
    LangSet,
    SummaryEmpty,
    ConsoleHint,
    NoSuchButton,
    InvalidJson,
    NotYourMenu,
    StoreError,
    AnonymousAdmin,
    RouteConfident,
    RouteCandidates,
    PersonalDataPrivate,
    PersonalDataGroup,
    RemindAsk,
    RemindSet,
    RemindTooClose,
    WindowAlreadyClosed,
    TimeUnreadable,
    TimeGuessed,
    RemindDeliveryPrivate,
    RemindDeliveryGroup,
    Reminder,
    ReminderLate,
    WindowClosed,
    NewCodeSet,
    NewCodeReminder,
    RemindersList,
    ReminderLine,
    NewCodeLine,
    RemindersNone,
    RemindersCancelled,
    Verified,
    ResetKeepAsk,
    RemindersKept,
    SessionEnded,
    RemindersConsole,
    Duration,
}

impl UiText {
    pub const ALL: [UiText; 48] = [
        UiText::Welcome,
        UiText::Help,
        UiText::Channels,
        UiText::Safety,
        UiText::Solved,
        UiText::ResetDone,
        UiText::MenuOutdated,
        UiText::FreeText,
        UiText::UnknownCommand,
        UiText::EmptyInput,
        UiText::TooLong,
        UiText::LangChoose,
        UiText::LangSet,
        UiText::SummaryEmpty,
        UiText::ConsoleHint,
        UiText::NoSuchButton,
        UiText::InvalidJson,
        UiText::NotYourMenu,
        UiText::StoreError,
        UiText::AnonymousAdmin,
        UiText::RouteConfident,
        UiText::RouteCandidates,
        UiText::PersonalDataPrivate,
        UiText::PersonalDataGroup,
        UiText::RemindAsk,
        UiText::RemindSet,
        UiText::RemindTooClose,
        UiText::WindowAlreadyClosed,
        UiText::TimeUnreadable,
        UiText::TimeGuessed,
        UiText::RemindDeliveryPrivate,
        UiText::RemindDeliveryGroup,
        UiText::Reminder,
        UiText::ReminderLate,
        UiText::WindowClosed,
        UiText::NewCodeSet,
        UiText::NewCodeReminder,
        UiText::RemindersList,
        UiText::ReminderLine,
        UiText::NewCodeLine,
        UiText::RemindersNone,
        UiText::RemindersCancelled,
        UiText::Verified,
        UiText::ResetKeepAsk,
        UiText::RemindersKept,
        UiText::SessionEnded,
        UiText::RemindersConsole,
        UiText::Duration,
    ];

    pub fn key(self) -> &'static str {
        match self {
            UiText::Welcome => "welcome",
            UiText::Help => "help",
            UiText::Channels => "channels",
            UiText::Safety => "safety",
            UiText::Solved => "solved",
            UiText::ResetDone => "reset_done",
            UiText::MenuOutdated => "menu_outdated",
            UiText::FreeText => "free_text",
            UiText::UnknownCommand => "unknown_command",
            UiText::EmptyInput => "empty_input",
            UiText::TooLong => "too_long",
            UiText::LangChoose => "lang_choose",
            UiText::LangSet => "lang_set",
            UiText::SummaryEmpty => "summary_empty",
            UiText::ConsoleHint => "console_hint",
            UiText::NoSuchButton => "no_such_button",
            UiText::InvalidJson => "invalid_json",
            UiText::NotYourMenu => "not_your_menu",
            UiText::StoreError => "store_error",
            UiText::AnonymousAdmin => "anonymous_admin",
            UiText::RouteConfident => "route_confident",
            UiText::RouteCandidates => "route_candidates",
            UiText::PersonalDataPrivate => "personal_data_private",
            UiText::PersonalDataGroup => "personal_data_group",
            UiText::RemindAsk => "remind_ask",
            UiText::RemindSet => "remind_set",
            UiText::RemindTooClose => "remind_too_close",
            UiText::WindowAlreadyClosed => "window_already_closed",
            UiText::TimeUnreadable => "time_unreadable",
            UiText::TimeGuessed => "time_guessed",
            UiText::RemindDeliveryPrivate => "remind_delivery_private",
            UiText::RemindDeliveryGroup => "remind_delivery_group",
            UiText::Reminder => "reminder",
            UiText::ReminderLate => "reminder_late",
            UiText::WindowClosed => "window_closed",
            UiText::NewCodeSet => "new_code_set",
            UiText::NewCodeReminder => "new_code_reminder",
            UiText::RemindersList => "reminders_list",
            UiText::ReminderLine => "reminder_line",
            UiText::NewCodeLine => "new_code_line",
            UiText::RemindersNone => "reminders_none",
            UiText::RemindersCancelled => "reminders_cancelled",
            UiText::Verified => "verified",
            UiText::ResetKeepAsk => "reset_keep_ask",
            UiText::RemindersKept => "reminders_kept",
            UiText::SessionEnded => "session_ended",
            UiText::RemindersConsole => "reminders_console",
            UiText::Duration => "duration",
        }
    }

    /// The placeholders the text must carry; it may carry no others.
    pub fn placeholders(self) -> &'static [&'static str] {
        match self {
            UiText::UnknownCommand => &["command"],
            UiText::TooLong => &["max"],
            UiText::NoSuchButton => &["number"],
            UiText::InvalidJson => &["error"],
            UiText::RouteConfident => &["title"],
            UiText::RemindSet => &["deadline", "left", "times"],
            UiText::RemindTooClose => &["deadline", "left"],
            UiText::WindowAlreadyClosed => &["deadline"],
            UiText::TimeGuessed => &["time", "other"],
            UiText::Reminder => &["deadline", "left"],
            UiText::WindowClosed => &["deadline"],
            UiText::NewCodeSet => &["time"],
            UiText::RemindersList => &["list"],
            UiText::ReminderLine => &["number", "time", "deadline"],
            UiText::NewCodeLine => &["number", "time"],
            UiText::ResetKeepAsk => &["count"],
            UiText::Duration => &["hours", "minutes"],
            _ => &[],
        }
    }

    /// Telegram's limit for the text, where it is shorter than a message's.
    pub fn max_chars(self) -> usize {
        match self {
            // Shown as a callback-query alert, which holds at most 200.
            UiText::NotYourMenu | UiText::StoreError => 200,
            _ => MAX_TEXT_CHARS,
        }
    }
}

/// A label of `ui.toml`'s `[button]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiButton {
    Back,
    Restart,
    Solved,
    NotSolved,
    LangZh,
    LangEn,
    NotThis,
    RemindWindow,
    RemindNewCode,
    ArrivedNow,
    ArrivedAgo,
    Verified,
    CodeArrived,
    CancelReminders,
    CancelNumbered,
    KeepReminders,
    DropReminders,
}

impl UiButton {
    pub const ALL: [UiButton; 17] = [
        UiButton::Back,
        UiButton::Restart,
        UiButton::Solved,
        UiButton::NotSolved,
        UiButton::LangZh,
        UiButton::LangEn,
        UiButton::NotThis,
        UiButton::RemindWindow,
        UiButton::RemindNewCode,
        UiButton::ArrivedNow,
        UiButton::ArrivedAgo,
        UiButton::Verified,
        UiButton::CodeArrived,
        UiButton::CancelReminders,
        UiButton::CancelNumbered,
        UiButton::KeepReminders,
        UiButton::DropReminders,
    ];

    pub fn key(self) -> &'static str {
        match self {
            UiButton::Back => "back",
            UiButton::Restart => "restart",
            UiButton::Solved => "solved",
            UiButton::NotSolved => "not_solved",
            UiButton::LangZh => "lang_zh",
            UiButton::LangEn => "lang_en",
            UiButton::NotThis => "not_this",
            UiButton::RemindWindow => "remind_window",
            UiButton::RemindNewCode => "remind_new_code",
            UiButton::ArrivedNow => "arrived_now",
            UiButton::ArrivedAgo => "arrived_ago",
            UiButton::Verified => "verified",
            UiButton::CodeArrived => "code_arrived",
            UiButton::CancelReminders => "cancel_reminders",
            UiButton::CancelNumbered => "cancel_numbered",
            UiButton::KeepReminders => "keep_reminders",
            UiButton::DropReminders => "drop_reminders",
        }
    }

    /// The placeholders the label must carry; it may carry no others.
    pub fn placeholders(self) -> &'static [&'static str] {
        match self {
            UiButton::ArrivedAgo => &["hours"],
            UiButton::CancelNumbered => &["number"],
            _ => &[],
        }
    }
}

/// A bot command, described in `ui.toml`'s `[command]` table for the
/// command menu Telegram shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiCommand {
    Diagnose,
    Reset,
    Reminders,
    Lang,
    Help,
    Start,
}

impl UiCommand {
    pub const ALL: [UiCommand; 6] = [
        UiCommand::Diagnose,
        UiCommand::Reset,
        UiCommand::Reminders,
        UiCommand::Lang,
        UiCommand::Help,
        UiCommand::Start,
    ];

    /// The command itself, without its slash.
    pub fn key(self) -> &'static str {
        match self {
            UiCommand::Diagnose => "diagnose",
            UiCommand::Reset => "reset",
            UiCommand::Reminders => "reminders",
            UiCommand::Lang => "lang",
            UiCommand::Help => "help",
            UiCommand::Start => "start",
        }
    }
}

/// Telegram's limit for a command's description.
pub const MAX_COMMAND_DESCRIPTION: usize = 256;

/// The checked texts and labels of `ui.toml`.
#[derive(Debug, Clone)]
pub struct Ui {
    texts: Vec<Localized>,
    buttons: Vec<Localized>,
    commands: Vec<Localized>,
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

/// What a node's reminder button offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemindKind {
    /// The SMS has arrived: reminders before its verification window closes.
    Window,
    /// A new code is on its way: one reminder after the typical wait.
    NewCode,
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
}

/// A node's position in the tree. Only a `Tree` hands these out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId(usize);

#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub text: Localized,
    pub kind: NodeKind,
    /// The reminder its menu offers, if any.
    pub remind: Option<RemindKind>,
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    /// A question: one button per answer, in order.
    Question(Vec<Choice>),
    /// Remediation steps; "not solved" leads to `not_solved`.
    End { not_solved: NodeId },
}

#[derive(Debug, Clone)]
pub struct Choice {
    pub label: Localized,
    pub target: NodeId,
}

/// How many answers before `choices[i]` lead to the same node: 0 for the
/// first answer leading there.
pub fn nth_to_same_target(choices: &[Choice], i: usize) -> u8 {
    let target = choices[i].target;
    let earlier = choices[..i].iter().filter(|c| c.target == target).count();
    u8::try_from(earlier).unwrap_or(u8::MAX)
}

/// The whole checked dialogue, read-only and shared.
#[derive(Debug, Clone)]
pub struct Tree {
    nodes: Vec<Node>,
    by_id: HashMap<String, NodeId>,
    root: NodeId,
    ui: Ui,
    router: Router,
}

impl Tree {
    pub fn root(&self) -> NodeId {
        self.root
    }

    pub fn ui(&self) -> &Ui {
        &self.ui
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    pub fn get(&self, id: &str) -> Option<NodeId> {
        self.by_id.get(id).copied()
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.nodes.iter().enumerate().map(|(i, n)| (NodeId(i), n))
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn end_count(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n.kind, NodeKind::End { .. }))
            .count()
    }

    /// The message text of a node before placeholders are filled: an end
    /// carries the official channels and the safety line below its steps.
    pub fn body(&self, id: NodeId, lang: Lang) -> String {
        let node = self.node(id);
        match node.kind {
            NodeKind::Question(_) => node.text.get(lang).to_string(),
            NodeKind::End { .. } => format!(
                "{}\n\n{}\n\n{}",
                node.text.get(lang).trim_end(),
                self.ui.text(UiText::Channels, lang).trim_end(),
                self.ui.text(UiText::Safety, lang).trim_end()
            ),
        }
    }

    /// Every piece of button data the node's menu carries.
    fn button_data(&self, id: NodeId) -> Vec<String> {
        let node = self.node(id);
        let from = node.id.clone();
        let mut data = Vec::new();
        match &node.kind {
            NodeKind::Question(choices) => {
                for (i, choice) in choices.iter().enumerate() {
                    data.push(
                        Action::Go {
                            from: from.clone(),
                            to: self.node(choice.target).id.clone(),
                            nth: nth_to_same_target(choices, i),
                        }
                        .encode(),
                    );
                }
            }
            NodeKind::End { not_solved } => {
                data.push(Action::Solved { at: from.clone() }.encode());
                data.push(
                    Action::Go {
                        from: from.clone(),
                        to: self.node(*not_solved).id.clone(),
                        nth: 0,
                    }
                    .encode(),
                );
            }
        }
        match node.remind {
            Some(RemindKind::Window) => data.push(Action::RemindAsk { at: from.clone() }.encode()),
            Some(RemindKind::NewCode) => {
                data.push(Action::RemindNewCode { at: from.clone() }.encode())
            }
            None => {}
        }
        data.push(Action::Back { from }.encode());
        data
    }
}

// ---- the raw mirror of the files ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNodeFile {
    #[serde(default)]
    node: Vec<RawNode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    id: Spanned<String>,
    text: Option<Spanned<RawText>>,
    end: Option<Spanned<bool>>,
    not_solved: Option<Spanned<String>>,
    remind: Option<Spanned<String>>,
    #[serde(default)]
    button: Vec<Spanned<RawButton>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawButton {
    label: Option<Spanned<RawText>>,
    goto: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawText {
    zh: Option<Spanned<String>>,
    en: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUi {
    text: RawTable,
    button: RawTable,
    command: RawTable,
    reminders: Option<Spanned<RawReminders>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReminders {
    window_hours: u32,
    before_deadline_hours: Vec<u32>,
    arrived_hours_ago: Vec<u32>,
    new_code_wait_minutes: u32,
    time_format: Spanned<RawText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoutes {
    routing: Spanned<RawThresholds>,
    #[serde(default)]
    normalize: RawNormalize,
    off_topic: Spanned<RawLists>,
    #[serde(default)]
    route: Vec<Spanned<RawRoute>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThresholds {
    confident: f32,
    candidates: f32,
    margin: f32,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNormalize {
    #[serde(default)]
    synonyms: BTreeMap<String, String>,
    traditional: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLists {
    zh: Option<Vec<String>>,
    en: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    node: Spanned<String>,
    title: Option<Spanned<RawText>>,
    keywords: Option<Spanned<RawLists>>,
    examples: Option<Spanned<RawLists>>,
}

/// Collects problems against one file at a time.
struct Report<'a> {
    sources: &'a [Source],
    problems: Vec<(usize, Problem)>,
}

impl Report<'_> {
    fn line(&self, file: usize, offset: usize) -> usize {
        let text = self.sources[file].text.as_bytes();
        text[..offset.min(text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn add(&mut self, file: usize, offset: usize, node: Option<&str>, message: String) {
        let line = self.line(file, offset);
        self.problems.push((
            file,
            Problem {
                file: Some(self.sources[file].path.clone()),
                line: Some(line),
                node: node.map(str::to_string),
                message,
            },
        ));
    }

    /// A required file the folder lacks, reported beside its siblings.
    fn missing_file(&mut self, name: &str, why: &str) {
        let folder = self
            .sources
            .first()
            .and_then(|s| Path::new(&s.path).parent())
            .map_or("dialogs".to_string(), |p| p.display().to_string());
        self.problems.push((
            usize::MAX,
            Problem {
                file: Some(format!("{folder}/{name}")),
                line: None,
                node: None,
                message: format!("missing: {why}"),
            },
        ));
    }

    fn finish(mut self) -> LoadError {
        self.problems
            .sort_by_key(|(file, problem)| (*file, problem.line.unwrap_or(0)));
        LoadError(self.problems.into_iter().map(|(_, p)| p).collect())
    }
}

/// A node as parsed, with where it came from.
struct Parsed {
    file: usize,
    raw: RawNode,
}

/// Checks `sources` and builds the tree, or reports every problem found.
pub fn load(sources: &[Source]) -> Result<Tree, LoadError> {
    let mut report = Report {
        sources,
        problems: Vec::new(),
    };
    let mut parsed: Vec<Parsed> = Vec::new();
    let mut raw_ui: Option<(usize, RawUi)> = None;
    let mut raw_routes: Option<(usize, RawRoutes)> = None;
    for (file, source) in sources.iter().enumerate() {
        let name = Path::new(&source.path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let result = match name.as_str() {
            UI_FILE => toml::from_str::<RawUi>(&source.text).map(|ui| raw_ui = Some((file, ui))),
            ROUTES_FILE => toml::from_str::<RawRoutes>(&source.text)
                .map(|routes| raw_routes = Some((file, routes))),
            _ => toml::from_str::<RawNodeFile>(&source.text).map(|f| {
                parsed.extend(f.node.into_iter().map(|raw| Parsed { file, raw }));
            }),
        };
        if let Err(e) = result {
            let offset = e.span().map_or(0, |span| span.start);
            let message = e.message().trim_end().to_string();
            report.add(file, offset, None, message);
        }
    }

    // After a file failed to parse, its nodes are unknown: references to
    // them would be reported as missing, so cross-node checks wait until
    // every file parses.
    let complete = report.problems.is_empty();

    let ui = match &raw_ui {
        Some((file, raw)) => check_ui(&mut report, *file, raw),
        None => {
            report.missing_file(UI_FILE, "it holds the texts and labels outside the nodes");
            None
        }
    };
    if raw_routes.is_none() && complete {
        report.missing_file(ROUTES_FILE, "it holds the free-text router's data");
    }

    // Ids first, so targets can be resolved whatever the file order.
    let mut by_id: HashMap<String, NodeId> = HashMap::new();
    let mut first_seen: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut kept: Vec<&Parsed> = Vec::new();
    for p in &parsed {
        let id = p.raw.id.get_ref();
        let offset = p.raw.id.span().start;
        if !is_valid_id(id) {
            report.add(
                p.file,
                offset,
                Some(id),
                "id may hold only a-z, 0-9 and _".to_string(),
            );
        }
        if let Some((file, first)) = first_seen.get(id.as_str()) {
            let line = report.line(*file, *first);
            let message = format!(
                "duplicate id, first defined at {}:{line}",
                sources[*file].path
            );
            report.add(p.file, offset, Some(id), message);
            continue;
        }
        first_seen.insert(id, (p.file, offset));
        by_id.insert(id.clone(), NodeId(kept.len()));
        kept.push(p);
    }

    let mut nodes: Vec<Node> = Vec::with_capacity(kept.len());
    for p in &kept {
        if let Some(node) = check_node(&mut report, p, &by_id, complete) {
            nodes.push(node);
        }
    }

    // A missing category is reported where the entry menu is, since that
    // is where it should be offered; a missing entry menu, at the top of
    // the first file of nodes.
    let root = by_id.get(ROOT_ID).copied();
    if complete {
        let (file, offset) = match root {
            Some(NodeId(i)) => (kept[i].file, kept[i].raw.id.span().start),
            None => {
                let first = sources
                    .iter()
                    .position(|s| !s.path.ends_with(UI_FILE))
                    .unwrap_or(0);
                (first, 0)
            }
        };
        for required in std::iter::once(ROOT_ID).chain(CATEGORY_IDS) {
            if !by_id.contains_key(required) && !sources.is_empty() {
                report.add(
                    file,
                    offset,
                    root.map(|_| ROOT_ID),
                    format!("required node \"{required}\" is missing"),
                );
            }
        }
    }

    // Reachability is judged on the parsed edges, so it is reported even
    // when other nodes have problems of their own.
    if let (Some(root), true) = (root, complete) {
        let mut seen = vec![false; kept.len()];
        let mut queue = VecDeque::from([root.0]);
        seen[root.0] = true;
        while let Some(i) = queue.pop_front() {
            for target in raw_targets(&kept[i].raw) {
                if let Some(&NodeId(j)) = by_id.get(target)
                    && !seen[j]
                {
                    seen[j] = true;
                    queue.push_back(j);
                }
            }
        }
        for (i, p) in kept.iter().enumerate() {
            if !seen[i] {
                report.add(
                    p.file,
                    p.raw.id.span().start,
                    Some(p.raw.id.get_ref()),
                    format!("unreachable from \"{ROOT_ID}\""),
                );
            }
        }
    }

    let (Some(ui), Some(root), true) = (ui, root, nodes.len() == kept.len()) else {
        return Err(report.finish());
    };
    let router = match &raw_routes {
        Some((file, raw)) => check_routes(&mut report, *file, raw, &nodes, &by_id, root),
        None => None,
    };
    let Some(router) = router else {
        return Err(report.finish());
    };
    if !report.problems.is_empty() {
        return Err(report.finish());
    }
    let tree = Tree {
        nodes,
        by_id,
        root,
        ui,
        router: Router::build(router),
    };

    // Limits that depend on the assembled messages and buttons.
    for (p, (id, node)) in kept.iter().zip(tree.nodes()) {
        let offset = p.raw.id.span().start;
        for data in tree.button_data(id) {
            if data.len() > MAX_DATA_BYTES {
                report.add(
                    p.file,
                    offset,
                    Some(&node.id),
                    format!(
                        "button data \"{data}\" is {} bytes, over Telegram's {MAX_DATA_BYTES}; use shorter ids",
                        data.len()
                    ),
                );
            }
        }
        for lang in Lang::ALL {
            let len = tree.body(id, lang).encode_utf16().count();
            if len > MAX_TEXT_CHARS {
                report.add(
                    p.file,
                    offset,
                    Some(&node.id),
                    format!(
                        "{lang} text is {len} characters with the channels and safety line, over Telegram's {MAX_TEXT_CHARS}"
                    ),
                );
            }
        }
    }
    if report.problems.is_empty() {
        Ok(tree)
    } else {
        Err(report.finish())
    }
}

fn raw_targets(raw: &RawNode) -> impl Iterator<Item = &str> {
    raw.button
        .iter()
        .filter_map(|b| b.get_ref().goto.as_ref().map(|g| g.get_ref().as_str()))
        .chain(raw.not_solved.as_ref().map(|t| t.get_ref().as_str()))
}

fn check_node(
    report: &mut Report,
    p: &Parsed,
    by_id: &HashMap<String, NodeId>,
    complete: bool,
) -> Option<Node> {
    let raw = &p.raw;
    let id = raw.id.get_ref().as_str();
    let id_offset = raw.id.span().start;
    let is_end = raw.end.as_ref().is_some_and(|e| *e.get_ref());
    let mut ok = true;

    let placeholders: &[&str] = if is_end { &[SUMMARY_PLACEHOLDER] } else { &[] };
    let text = match &raw.text {
        Some(text) => check_text(report, p.file, text, Some(id), "text", placeholders, &[]),
        None => {
            report.add(p.file, id_offset, Some(id), "has no text".to_string());
            None
        }
    };
    ok &= text.is_some();

    let resolve = |report: &mut Report, target: &Spanned<String>, what: &str| {
        let found = by_id.get(target.get_ref().as_str()).copied();
        if found.is_none() && complete {
            report.add(
                p.file,
                target.span().start,
                Some(id),
                format!("{what} \"{}\" names no node", target.get_ref()),
            );
        }
        found
    };

    let kind = if is_end {
        if !raw.button.is_empty() {
            report.add(
                p.file,
                raw.button[0].span().start,
                Some(id),
                "an end (end = true) cannot also have buttons".to_string(),
            );
            ok = false;
        }
        match &raw.not_solved {
            Some(target) => {
                resolve(report, target, "not_solved").map(|not_solved| NodeKind::End { not_solved })
            }
            None => {
                report.add(
                    p.file,
                    id_offset,
                    Some(id),
                    "an end needs not_solved = \"<node id>\" (where \"not solved\" leads)"
                        .to_string(),
                );
                None
            }
        }
    } else {
        if let Some(target) = &raw.not_solved {
            report.add(
                p.file,
                target.span().start,
                Some(id),
                "not_solved belongs to ends only (add end = true, or remove it)".to_string(),
            );
            ok = false;
        }
        if raw.button.is_empty() {
            report.add(
                p.file,
                id_offset,
                Some(id),
                "dead end: no buttons and no end = true".to_string(),
            );
            None
        } else {
            let mut choices = Vec::with_capacity(raw.button.len());
            for (n, button) in raw.button.iter().enumerate() {
                let what = format!("button {}", n + 1);
                let b = button.get_ref();
                let label = match &b.label {
                    Some(label) => check_text(report, p.file, label, Some(id), &what, &[], &[]),
                    None => {
                        report.add(
                            p.file,
                            button.span().start,
                            Some(id),
                            format!("{what} has no label"),
                        );
                        None
                    }
                };
                let target = match &b.goto {
                    Some(goto) => resolve(report, goto, &format!("{what} goto")),
                    None => {
                        report.add(
                            p.file,
                            button.span().start,
                            Some(id),
                            format!("{what} has no goto"),
                        );
                        None
                    }
                };
                if let (Some(label), Some(target)) = (label, target) {
                    choices.push(Choice { label, target });
                }
            }
            (choices.len() == raw.button.len()).then_some(NodeKind::Question(choices))
        }
    };

    let remind = match &raw.remind {
        None => None,
        Some(r) => match r.get_ref().as_str() {
            "window" => Some(RemindKind::Window),
            "new_code" => Some(RemindKind::NewCode),
            other => {
                report.add(
                    p.file,
                    r.span().start,
                    Some(id),
                    format!("remind = \"{other}\" is neither \"window\" nor \"new_code\""),
                );
                ok = false;
                None
            }
        },
    };

    match (ok, text, kind) {
        (true, Some(text), Some(kind)) => Some(Node {
            id: id.to_string(),
            text,
            kind,
            remind,
        }),
        _ => None,
    }
}

/// Checks one localized text: both languages present and non-empty, and
/// placeholders limited to `allowed` (with `required` present).
fn check_text(
    report: &mut Report,
    file: usize,
    text: &Spanned<RawText>,
    node: Option<&str>,
    what: &str,
    allowed: &[&str],
    required: &[&str],
) -> Option<Localized> {
    let raw = text.get_ref();
    let get = |report: &mut Report, value: &Option<Spanned<String>>, lang: Lang| match value {
        Some(v) if !v.get_ref().trim().is_empty() => {
            let mut ok = true;
            for name in placeholders(v.get_ref()) {
                if !allowed.contains(&name) {
                    report.add(
                        file,
                        v.span().start,
                        node,
                        format!("{what} ({lang}) has unknown placeholder {{{name}}}"),
                    );
                    ok = false;
                }
            }
            for req in required {
                if !placeholders(v.get_ref()).any(|name| name == *req) {
                    report.add(
                        file,
                        v.span().start,
                        node,
                        format!("{what} ({lang}) must contain {{{req}}}"),
                    );
                    ok = false;
                }
            }
            ok.then(|| v.get_ref().clone())
        }
        Some(v) => {
            report.add(
                file,
                v.span().start,
                node,
                format!("{what} ({lang}) is empty"),
            );
            None
        }
        None => {
            report.add(
                file,
                text.span().start,
                node,
                format!("{what} is missing its {lang} translation"),
            );
            None
        }
    };
    let zh = get(report, &raw.zh, Lang::Zh);
    let en = get(report, &raw.en, Lang::En);
    Some(Localized { zh: zh?, en: en? })
}

/// The `{name}` placeholders in a text; braces around anything else (such
/// as a JSON example) are plain text.
pub fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split('{').skip(1).filter_map(|rest| {
        let (name, _) = rest.split_once('}')?;
        (!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            .then_some(name)
    })
}

type RawTable = Option<Spanned<BTreeMap<String, Spanned<RawText>>>>;

/// The nodes each category's questions lead to: reachable from its entry
/// by answers alone, without passing the entry menu or another category.
fn category_of_nodes(
    nodes: &[Node],
    by_id: &HashMap<String, NodeId>,
    root: NodeId,
) -> Vec<Option<NodeId>> {
    let entries: Vec<NodeId> = CATEGORY_IDS
        .iter()
        .filter_map(|c| by_id.get(*c).copied())
        .collect();
    let mut category = vec![None; nodes.len()];
    for &entry in &entries {
        let mut queue = VecDeque::from([entry]);
        let mut seen = vec![false; nodes.len()];
        seen[entry.0] = true;
        while let Some(id) = queue.pop_front() {
            category[id.0].get_or_insert(entry);
            if let NodeKind::Question(choices) = &nodes[id.0].kind {
                for c in choices {
                    let t = c.target;
                    if !seen[t.0] && t != root && (!entries.contains(&t) || t == entry) {
                        seen[t.0] = true;
                        queue.push_back(t);
                    }
                }
            }
        }
    }
    category
}

/// Checks `routes.toml` against the tree and turns it into router data.
fn check_routes(
    report: &mut Report,
    file: usize,
    raw: &RawRoutes,
    nodes: &[Node],
    by_id: &HashMap<String, NodeId>,
    root: NodeId,
) -> Option<RouterData> {
    let before = report.problems.len();
    let t = raw.routing.get_ref();
    let t_at = raw.routing.span().start;
    let valid = |x: f32| x.is_finite() && (0.0..=1.0).contains(&x);
    if !(valid(t.confident) && valid(t.candidates) && valid(t.margin)) || t.candidates > t.confident
    {
        report.add(
            file,
            t_at,
            None,
            "routing: confident, candidates and margin lie between 0 and 1, with candidates ≤ confident"
                .to_string(),
        );
    }
    let mut traditional = Vec::new();
    if let Some(pairs) = &raw.normalize.traditional {
        let chars: Vec<char> = pairs
            .get_ref()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if chars.len() % 2 != 0 {
            report.add(
                file,
                pairs.span().start,
                None,
                "normalize.traditional must hold pairs: each traditional character followed by its simplified one".to_string(),
            );
        }
        for pair in chars.chunks_exact(2) {
            if traditional.iter().any(|(k, _)| *k == pair[0]) {
                report.add(
                    file,
                    pairs.span().start,
                    None,
                    format!("normalize.traditional maps {} twice", pair[0]),
                );
            }
            traditional.push((pair[0], pair[1]));
        }
    }
    let mut synonyms = Vec::new();
    for (key, value) in &raw.normalize.synonyms {
        if key.trim().is_empty() || value.trim().is_empty() {
            report.add(
                file,
                0,
                None,
                format!("normalize.synonyms: {key:?} = {value:?} has an empty side"),
            );
        }
        synonyms.push((key.clone(), value.clone()));
    }
    let lists = |report: &mut Report,
                 lists: Option<&Spanned<RawLists>>,
                 at: usize,
                 what: &str,
                 node: Option<&str>| {
        let Some(lists) = lists else {
            report.add(file, at, node, format!("{what} is missing"));
            return Vec::new();
        };
        let mut all = Vec::new();
        for (lang, list) in [
            (Lang::Zh, &lists.get_ref().zh),
            (Lang::En, &lists.get_ref().en),
        ] {
            match list {
                Some(list) if !list.is_empty() && list.iter().all(|s| !s.trim().is_empty()) => {
                    all.extend(list.iter().cloned());
                }
                Some(list) if !list.is_empty() => report.add(
                    file,
                    lists.span().start,
                    node,
                    format!("{what} ({lang}) holds an empty entry"),
                ),
                _ => report.add(
                    file,
                    lists.span().start,
                    node,
                    format!("{what} needs at least one {lang} entry"),
                ),
            }
        }
        all
    };
    let off_topic = lists(report, Some(&raw.off_topic), 0, "off_topic", None);
    let category = category_of_nodes(nodes, by_id, root);
    let mut routes: Vec<RouteData> = Vec::new();
    for route in &raw.route {
        let r = route.get_ref();
        let at = route.span().start;
        let name = r.node.get_ref().as_str();
        let keywords = lists(report, r.keywords.as_ref(), at, "keywords", Some(name));
        let examples = lists(report, r.examples.as_ref(), at, "examples", Some(name));
        let title = match &r.title {
            Some(title) => check_text(report, file, title, Some(name), "title", &[], &[]),
            None => {
                report.add(file, at, Some(name), "title is missing".to_string());
                None
            }
        };
        let Some(node) = by_id.get(name).copied() else {
            report.add(
                file,
                r.node.span().start,
                Some(name),
                "route names no node".to_string(),
            );
            continue;
        };
        let Some(category) = category[node.0] else {
            report.add(
                file,
                r.node.span().start,
                Some(name),
                "a route must lead into one of the four categories".to_string(),
            );
            continue;
        };
        if routes.iter().any(|existing| existing.node == node) {
            report.add(
                file,
                r.node.span().start,
                Some(name),
                "a second route to the same node".to_string(),
            );
            continue;
        }
        if let Some(title) = title {
            routes.push(RouteData {
                node,
                category,
                title,
                keywords,
                examples,
            });
        }
    }
    (report.problems.len() == before).then_some(RouterData {
        thresholds: Thresholds {
            confident: t.confident,
            candidates: t.candidates,
            margin: t.margin,
        },
        synonyms,
        traditional,
        off_topic,
        routes,
    })
}

fn check_ui(report: &mut Report, file: usize, raw: &RawUi) -> Option<Ui> {
    let texts: Vec<_> = UiText::ALL
        .iter()
        .map(|t| (t.key(), t.placeholders(), t.max_chars()))
        .collect();
    let buttons: Vec<_> = UiButton::ALL
        .iter()
        .map(|b| (b.key(), b.placeholders(), MAX_TEXT_CHARS))
        .collect();
    let commands: Vec<_> = UiCommand::ALL
        .iter()
        .map(|c| (c.key(), &[][..], MAX_COMMAND_DESCRIPTION))
        .collect();
    let texts = check_table(report, file, "text", &raw.text, &texts);
    let buttons = check_table(report, file, "button", &raw.button, &buttons);
    let commands = check_table(report, file, "command", &raw.command, &commands);
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
    Some(Ui {
        texts: texts?,
        buttons: buttons?,
        commands: commands?,
        reminders: reminders?,
    })
}

/// The most "it arrived N hours ago" answers offered, so they fit one menu.
const MAX_ARRIVAL_CHOICES: usize = 6;

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
    fn placeholders_are_brace_words_only() {
        let found: Vec<_> =
            placeholders(r#"send {"text": "x"} or {command}, not {Bad} or {} {max}"#).collect();
        assert_eq!(found, ["command", "max"]);
    }

    #[test]
    fn problems_print_file_line_and_node() {
        let p = Problem {
            file: Some("dialogs/a.toml".into()),
            line: Some(7),
            node: Some("x".into()),
            message: "dead end".into(),
        };
        assert_eq!(p.to_string(), "dialogs/a.toml:7: node \"x\": dead end");
    }

    #[test]
    fn each_ui_list_holds_its_variants_in_declaration_order() {
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
    fn the_embedded_dialogs_load() {
        let tree = load(&embedded()).unwrap_or_else(|e| panic!("{e}"));
        assert!(tree.get(ROOT_ID).is_some());
    }
}
