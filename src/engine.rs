//! The dialogue engine: a pure step from (tree, session, event) to (session, replies).
//!
//! No I/O and no Telegram types live here, so the bot, the console and the
//! tests drive exactly the same conversation. A session records only a
//! position in the tree — never copies of its texts — so an edited tree
//! takes effect at once, even for conversations already under way.

use serde::{Deserialize, Serialize};

use crate::callback::Action;
use crate::lang::Lang;
use crate::markup::MAX_TEXT_CHARS;
use crate::tree::router::{Routing, has_personal_data};
use crate::tree::{NodeId, NodeKind, RemindKind, SUMMARY_PLACEHOLDER, Tree, UiButton, UiText};

/// How many steps Back can retrace; older ones are forgotten, which keeps a
/// stored session small even after loops through "not solved".
pub const MAX_HISTORY: usize = 64;

/// The longest command name echoed back in the "unknown command" answer.
const MAX_ECHOED_COMMAND: usize = 32;

/// One person's conversation in one chat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The node whose menu was shown last; `None` before /diagnose or after
    /// /reset and "solved".
    pub node: Option<String>,
    pub lang: Lang,
    /// The nodes passed on the way to `node`, oldest first, for Back.
    pub history: Vec<String>,
    /// For each step of `history`, which of that node's answers leading to
    /// the next step was chosen (0 for the first), for the summary.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub picks: Vec<u8>,
    /// The node whose "when did the SMS arrive?" question is open, so a
    /// typed time is read as the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asking: Option<String>,
    /// The number of the conversation under way, for the figures (see
    /// `stats`); 0 before the first one starts.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub conv: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Session {
    pub fn new(lang: Lang) -> Self {
        Session {
            node: None,
            lang,
            history: Vec::new(),
            picks: Vec::new(),
            asking: None,
            conv: 0,
        }
    }

    fn clear(&mut self) {
        self.node = None;
        self.clear_steps();
    }

    fn clear_steps(&mut self) {
        self.history.clear();
        self.picks.clear();
    }

    /// Records a step from `from` by its `nth` answer to the next node,
    /// forgetting the oldest steps beyond `MAX_HISTORY`.
    fn push_step(&mut self, from: String, nth: u8) {
        self.picks.resize(self.history.len(), 0);
        self.history.push(from);
        self.picks.push(nth);
        if self.history.len() > MAX_HISTORY {
            let excess = self.history.len() - MAX_HISTORY;
            self.history.drain(..excess);
            self.picks.drain(..excess);
        }
    }

    fn truncate_steps(&mut self, len: usize) {
        self.history.truncate(len);
        self.picks.truncate(len);
    }

    fn pop_step(&mut self) -> Option<String> {
        let last = self.history.pop();
        self.picks.truncate(self.history.len());
        last
    }

    fn set(&mut self, tree: &Tree, node: NodeId) {
        self.node = Some(tree.node(node).id.clone());
    }

    /// Stands at `at`, a node whose menu may be an older message: the
    /// history is retraced to it.
    fn return_to(&mut self, tree: &Tree, at: NodeId) {
        let id = &tree.node(at).id;
        if self.node.as_deref() != Some(id.as_str()) {
            let keep = self.history.iter().position(|h| h == id).unwrap_or(0);
            self.truncate_steps(keep);
        }
        self.set(tree, at);
    }
}

/// What the person did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    Command(Command<'a>),
    /// A pressed button, its data read at the door: `None` for data that
    /// names no action (from an old release, or made up).
    Press(Option<&'a Action>),
    /// Anything typed that is not a command, in a private conversation.
    Text(&'a str),
    /// Text addressed to the bot where others read along (a group).
    GroupText(&'a str),
    /// A message without text: a sticker, a photo, a voice note…
    NonText,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// /start, with an optional deep-link payload naming a node.
    Start(Option<&'a str>),
    Help,
    Diagnose,
    Reset,
    /// /lang, with an optional language code.
    Lang(Option<&'a str>),
    /// /reminders: the person's pending reminders.
    Reminders,
    /// /stats, with an optional number of days: the figures, for the team.
    Stats(Option<&'a str>),
    /// /graph: the tree as a picture, for the team.
    Graph,
    /// Any other /word; holds the word without its slash.
    Unknown(&'a str),
}

impl<'a> Event<'a> {
    /// Reads a typed line: `/name args` is a command (an `@botname` suffix
    /// on the name is dropped; adapters decide whose commands they take),
    /// anything else is text.
    pub fn from_line(line: &'a str) -> Event<'a> {
        let trimmed = line.trim();
        let Some(rest) = trimmed.strip_prefix('/') else {
            return Event::Text(line);
        };
        let (word, arg) = rest
            .split_once(char::is_whitespace)
            .map_or((rest, ""), |(w, a)| (w, a.trim()));
        let name = word.split_once('@').map_or(word, |(name, _)| name);
        let arg = (!arg.is_empty()).then_some(arg);
        Event::Command(match name.to_ascii_lowercase().as_str() {
            "start" => Command::Start(arg),
            "help" => Command::Help,
            "diagnose" => Command::Diagnose,
            "reset" => Command::Reset,
            "lang" => Command::Lang(arg),
            "reminders" => Command::Reminders,
            "stats" => Command::Stats(arg),
            "graph" => Command::Graph,
            _ => Command::Unknown(name),
        })
    }
}

/// One message of the bot's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The node the message shows, if it shows one.
    pub node: Option<String>,
    pub text: String,
    /// Rows of buttons.
    pub buttons: Vec<Vec<Button>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub label: String,
    pub data: String,
}

impl Reply {
    /// A message with no buttons and no node.
    pub fn plain(text: impl Into<String>) -> Reply {
        Reply {
            node: None,
            text: text.into(),
            buttons: Vec::new(),
        }
    }

    /// The same message with a short note above it.
    pub(crate) fn below(self, note: &str) -> Reply {
        Reply {
            text: format!("{}\n\n{}", note.trim_end(), self.text),
            ..self
        }
    }
}

/// Advances one conversation by one event.
pub fn step(tree: &Tree, mut session: Session, event: Event<'_>) -> (Session, Vec<Reply>) {
    let ui = tree.ui();
    let lang = session.lang;
    // An open arrival question is answered by a typed time, which the
    // conversation reads before the engine; anything reaching here moves on.
    session.asking = None;
    let replies = match event {
        Event::Text(text) | Event::GroupText(text) if text.trim().is_empty() => {
            vec![Reply::plain(ui.text(UiText::EmptyInput, lang))]
        }
        Event::Text(text) | Event::GroupText(text) if text.chars().count() > MAX_TEXT_CHARS => {
            vec![Reply::plain(
                ui.text(UiText::TooLong, lang)
                    .replace("{max}", &MAX_TEXT_CHARS.to_string()),
            )]
        }
        Event::Text(text) | Event::GroupText(text) => {
            let mut replies = Vec::with_capacity(2);
            if has_personal_data(text) {
                let warning = match event {
                    Event::GroupText(_) => UiText::PersonalDataGroup,
                    _ => UiText::PersonalDataPrivate,
                };
                replies.push(Reply::plain(ui.text(warning, lang)));
            }
            replies.push(route_text(tree, &mut session, text));
            replies
        }
        Event::NonText => vec![pointer_to_menu(tree, &mut session)],
        Event::Command(command) => run_command(tree, &mut session, command),
        Event::Press(Some(action)) => press(tree, &mut session, action.clone()),
        Event::Press(None) => vec![out_of_date(tree, &mut session)],
    };
    (session, replies)
}

/// The hint that the bot works with menus, above the current menu.
fn pointer_to_menu(tree: &Tree, session: &mut Session) -> Reply {
    menu_below(tree, session, UiText::FreeText)
}

/// Where the session stands (or the entry menu), below `hint`.
fn menu_below(tree: &Tree, session: &mut Session, hint: UiText) -> Reply {
    let at = position_or_root(tree, session);
    render(tree, session, at).below(tree.ui().text(hint, session.lang))
}

/// Free text: straight to the branch it is clearly about, a choice of the
/// likeliest ones, or the menu with a hint.
fn route_text(tree: &Tree, session: &mut Session, text: &str) -> Reply {
    let ui = tree.ui();
    let lang = session.lang;
    let router = tree.router();
    let title = |node: NodeId| {
        router
            .title(node)
            .map_or(tree.node(node).id.as_str(), |t| t.get(lang))
    };
    let not_this = || vec![button(ui.button(UiButton::NotThis, lang), Action::Restart)];
    let (routing, scores) = router.route_scored(text);
    match routing {
        Routing::Confident(node) => {
            session.clear_steps();
            session.set(tree, node);
            let mut reply = render(tree, session, node).below(
                &ui.text(UiText::RouteConfident, lang)
                    .replace("{title}", title(node)),
            );
            // A routed answer offers "not this" instead of Back and Start
            // over, which would both lead to the same entry menu.
            reply.buttons.pop();
            reply.buttons.push(not_this());
            reply
        }
        Routing::Candidates(nodes) => {
            let mut buttons: Vec<Vec<Button>> = nodes
                .iter()
                .map(|n| {
                    vec![button(
                        title(*n),
                        Action::Jump {
                            to: tree.node(*n).id.clone(),
                        },
                    )]
                })
                .collect();
            buttons.push(not_this());
            Reply {
                node: None,
                text: ui.text(UiText::RouteCandidates, lang).to_string(),
                buttons,
            }
        }
        // Another app's code or a server's timeout, from someone not yet
        // in a branch: said to be outside what the bot does, rather than
        // left to the menu's hint alone. Within a branch, the same words
        // are more likely about the filing ("QQ codes arrive fine").
        Routing::Nothing if scores.elsewhere && !in_a_branch(tree, session) => {
            menu_below(tree, session, UiText::OtherSubject)
        }
        Routing::Nothing => pointer_to_menu(tree, session),
    }
}

fn run_command(tree: &Tree, session: &mut Session, command: Command<'_>) -> Vec<Reply> {
    let ui = tree.ui();
    let lang = session.lang;
    match command {
        Command::Start(payload) => {
            let linked = payload.and_then(|p| tree.get(p.trim()));
            // A deep link to where the session stands (from a busy group,
            // where it was moved here) continues it, the way there kept.
            if let Some(node) = linked
                && session.node.as_deref() == Some(tree.node(node).id.as_str())
            {
                return vec![render(tree, session, node)];
            }
            session.clear_steps();
            match linked {
                Some(node) => {
                    session.set(tree, node);
                    vec![render(tree, session, node)]
                }
                None => {
                    session.set(tree, tree.root());
                    vec![
                        Reply::plain(ui.text(UiText::Welcome, lang)),
                        render(tree, session, tree.root()),
                    ]
                }
            }
        }
        Command::Diagnose => {
            session.clear_steps();
            session.set(tree, tree.root());
            vec![render(tree, session, tree.root())]
        }
        Command::Help => vec![Reply::plain(ui.text(UiText::Help, lang))],
        Command::Reset => {
            session.clear();
            vec![Reply::plain(ui.text(UiText::ResetDone, lang))]
        }
        Command::Lang(arg) => match arg.and_then(|a| a.parse::<Lang>().ok()) {
            Some(new) => vec![switch_language(tree, session, new)],
            None => vec![Reply {
                node: None,
                text: ui.text(UiText::LangChoose, lang).to_string(),
                buttons: vec![vec![
                    button(ui.button(UiButton::LangZh, lang), Action::Lang(Lang::Zh)),
                    button(ui.button(UiButton::LangEn, lang), Action::Lang(Lang::En)),
                ]],
            }],
        },
        // Reminders need the store: `conversation` answers this, and only
        // the console, which has none, reaches here.
        Command::Reminders => vec![Reply::plain(ui.text(UiText::RemindersConsole, lang))],
        // The team's figures and picture come from the bot, for its
        // admins; elsewhere, from the command line.
        Command::Stats(_) | Command::Graph => vec![Reply::plain(ui.text(UiText::TeamOnly, lang))],
        Command::Unknown(name) => {
            let name: String = name.chars().take(MAX_ECHOED_COMMAND).collect();
            vec![Reply::plain(
                ui.text(UiText::UnknownCommand, lang)
                    .replace("{command}", &format!("/{name}")),
            )]
        }
    }
}

/// An answer taken: from the node whose menu held the button to `to`.
fn go(tree: &Tree, session: &mut Session, from: String, to: &str, nth: u8) -> Vec<Reply> {
    let (Some(from_id), Some(to_id)) = (tree.get(&from), tree.get(to)) else {
        return vec![out_of_date(tree, session)];
    };
    let leads_there = match &tree.node(from_id).kind {
        NodeKind::Question(choices) => {
            choices.iter().filter(|c| c.target == to_id).count() > usize::from(nth)
        }
        NodeKind::End { not_solved } => *not_solved == Some(to_id) && nth == 0,
    };
    if !leads_there {
        return vec![out_of_date(tree, session)];
    }
    // A button of an older message may be pressed while the session stands
    // elsewhere: retrace the history to that message's node.
    if session.node.as_deref() != Some(from.as_str()) {
        let keep = session.history.iter().position(|h| *h == from).unwrap_or(0);
        session.truncate_steps(keep);
    }
    session.push_step(from, nth);
    session.set(tree, to_id);
    vec![render(tree, session, to_id)]
}

/// Back from `from`, the node the session stands at, to the step before.
fn back(tree: &Tree, session: &mut Session, from: &str) -> Vec<Reply> {
    // The entry menu has no Back button, so such data was made up.
    let current = session.node.as_deref() == Some(from);
    if from == tree.node(tree.root()).id || !current || tree.get(from).is_none() {
        return vec![out_of_date(tree, session)];
    }
    let previous = session.pop_step().and_then(|id| tree.get(&id));
    let to = previous.unwrap_or_else(|| {
        session.clear_steps();
        tree.root()
    });
    session.set(tree, to);
    vec![render(tree, session, to)]
}

fn press(tree: &Tree, session: &mut Session, action: Action) -> Vec<Reply> {
    let ui = tree.ui();
    match action {
        Action::Go { from, to, nth } => go(tree, session, from, &to, nth),
        Action::Back { from } => back(tree, session, &from),
        Action::Restart => {
            session.clear_steps();
            session.set(tree, tree.root());
            vec![render(tree, session, tree.root())]
        }
        Action::Solved { at } => match tree.get(&at).map(|id| &tree.node(id).kind) {
            Some(NodeKind::End { .. }) => {
                session.clear();
                vec![Reply::plain(ui.text(UiText::Solved, session.lang))]
            }
            _ => vec![out_of_date(tree, session)],
        },
        Action::Lang(new) => vec![switch_language(tree, session, new)],
        Action::Jump { to } => match tree.get(&to) {
            Some(node) => {
                session.clear_steps();
                session.set(tree, node);
                vec![render(tree, session, node)]
            }
            None => vec![out_of_date(tree, session)],
        },
        Action::RemindAsk { at } => match tree.get(&at) {
            Some(node) if matches!(tree.node(node).remind, Some((RemindKind::Window, _))) => {
                session.return_to(tree, node);
                session.asking = Some(at);
                vec![arrival_question(tree, session.lang, node)]
            }
            _ => vec![out_of_date(tree, session)],
        },
        Action::Show { at } => match tree.get(&at) {
            Some(node) if session.node.as_deref() == Some(at.as_str()) => {
                vec![render(tree, session, node)]
            }
            _ => vec![out_of_date(tree, session)],
        },
        // The support team and the next-day question are the bot's; no
        // menu here offers them, so such data is out of date.
        Action::Handoff { .. }
        | Action::HandoffConfirm { .. }
        | Action::Later { .. }
        | Action::LaterAnswer { .. }
        | Action::CaseTake { .. }
        | Action::CaseClose { .. }
        | Action::CaseRate { .. }
        | Action::PhotoSend { .. }
        | Action::PhotoDrop { .. } => vec![out_of_date(tree, session)],
        // Reminders are `conversation`'s, which takes every such button
        // that fits; one reaching here does not (made up, or for a menu
        // that no longer offers it).
        Action::RemindNewCode { .. }
        | Action::Arrived { .. }
        | Action::Verified { .. }
        | Action::CancelPlan { .. }
        | Action::KeepReminders
        | Action::DropReminders => vec![out_of_date(tree, session)],
    }
}

/// "When did the SMS arrive?", with an answer per configured hour and a
/// way back to the menu it was asked from.
pub fn arrival_question(tree: &Tree, lang: Lang, from: NodeId) -> Reply {
    let ui = tree.ui();
    let answers: Vec<Button> = ui
        .reminders()
        .arrived_hours_ago
        .iter()
        .map(|&hours| {
            let label = match hours {
                0 => ui.button(UiButton::ArrivedNow, lang).to_string(),
                h => ui
                    .button(UiButton::ArrivedAgo, lang)
                    .replace("{hours}", &h.to_string()),
            };
            Button {
                label,
                data: Action::Arrived { hours }.encode(),
            }
        })
        .collect();
    let mut buttons: Vec<Vec<Button>> = answers.chunks(2).map(<[Button]>::to_vec).collect();
    buttons.push(vec![button(
        ui.button(UiButton::Back, lang),
        Action::Show {
            at: tree.node(from).id.clone(),
        },
    )]);
    Reply {
        node: Some(tree.node(from).id.clone()),
        text: ui.text(UiText::RemindAsk, lang).to_string(),
        buttons,
    }
}

fn switch_language(tree: &Tree, session: &mut Session, new: Lang) -> Reply {
    session.lang = new;
    let at = position_or_root(tree, session);
    render(tree, session, at).below(tree.ui().text(UiText::LangSet, new))
}

/// The answer to button data that no longer fits the tree or the session:
/// say so, and show where the person stands now.
fn out_of_date(tree: &Tree, session: &mut Session) -> Reply {
    let at = position_or_root(tree, session);
    render(tree, session, at).below(tree.ui().text(UiText::MenuOutdated, session.lang))
}

/// The session's node, or the entry menu when it has none (or names a node
/// an edited tree no longer has).
/// Whether the session stands somewhere past the entry menu.
fn in_a_branch(tree: &Tree, session: &Session) -> bool {
    session
        .node
        .as_deref()
        .and_then(|id| tree.get(id))
        .is_some_and(|node| node != tree.root())
}

fn position_or_root(tree: &Tree, session: &mut Session) -> NodeId {
    match session.node.as_deref().and_then(|id| tree.get(id)) {
        Some(node) => node,
        None => {
            session.clear_steps();
            session.set(tree, tree.root());
            tree.root()
        }
    }
}

pub fn button(label: &str, action: Action) -> Button {
    Button {
        label: label.to_string(),
        data: action.encode(),
    }
}

/// The message showing `node`, as seen by `session`.
pub fn render(tree: &Tree, session: &Session, node: NodeId) -> Reply {
    let ui = tree.ui();
    let lang = session.lang;
    let current = tree.node(node);
    let from = &current.id;
    let mut text = tree.body(node, lang);
    let placeholder = format!("{{{SUMMARY_PLACEHOLDER}}}");
    if text.contains(&placeholder) {
        text = text.replace(&placeholder, &summary(tree, session, node));
    }
    let buttons: Vec<Vec<Button>> = tree
        .menu(node)
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|b| Button {
                    label: b.label.get(ui, lang).to_string(),
                    data: b.action.encode(),
                })
                .collect()
        })
        .collect();
    Reply {
        node: Some(from.clone()),
        text,
        buttons,
    }
}

/// The way to `node`, one line per step, for the person to pass on to
/// their provider: each question with the answer chosen, and each end
/// whose steps did not solve it.
fn summary(tree: &Tree, session: &Session, node: NodeId) -> String {
    let lines = path_lines(tree, session, node);
    if lines.is_empty() {
        tree.ui()
            .text(UiText::SummaryEmpty, session.lang)
            .to_string()
    } else {
        lines.join("\n")
    }
}

/// The lines of the summary of the way to `node`, in the session's
/// language: only the tree's own words, never anything typed.
pub fn path_lines(tree: &Tree, session: &Session, node: NodeId) -> Vec<String> {
    let ui = tree.ui();
    let lang = session.lang;
    let mut path: Vec<(NodeId, u8)> = session
        .history
        .iter()
        .enumerate()
        .filter_map(|(i, id)| {
            let pick = session.picks.get(i).copied().unwrap_or(0);
            tree.get(id).map(|node| (node, pick))
        })
        .collect();
    path.push((node, 0));
    path.windows(2)
        .filter_map(|pair| {
            let ((from, pick), (to, _)) = (pair[0], pair[1]);
            let step = tree.node(from);
            let brief = step.brief.as_ref().map(|b| b.get(lang));
            let line = match &step.kind {
                NodeKind::Question(choices) => {
                    let answer = choices
                        .iter()
                        .filter(|c| c.target == to)
                        .nth(usize::from(pick))
                        .map(|c| c.label.get(lang))?;
                    match brief {
                        Some(question) => ui
                            .text(UiText::SummaryAnswer, lang)
                            .replace("{question}", question)
                            .replace("{answer}", answer),
                        None => answer.to_string(),
                    }
                }
                NodeKind::End { not_solved } if *not_solved == Some(to) => match brief {
                    Some(steps) => ui
                        .text(UiText::SummaryTried, lang)
                        .replace("{steps}", steps),
                    None => ui.button(UiButton::NotSolved, lang).to_string(),
                },
                NodeKind::End { .. } => return None,
            };
            Some(format!("- {line}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_starting_with_a_slash_are_commands() {
        assert_eq!(
            Event::from_line("/diagnose"),
            Event::Command(Command::Diagnose)
        );
        assert_eq!(
            Event::from_line("  /start   mismatch "),
            Event::Command(Command::Start(Some("mismatch")))
        );
        assert_eq!(
            Event::from_line("/diagnose@icp_bot"),
            Event::Command(Command::Diagnose)
        );
        assert_eq!(
            Event::from_line("/LANG en"),
            Event::Command(Command::Lang(Some("en")))
        );
        assert_eq!(
            Event::from_line("/frobnicate now"),
            Event::Command(Command::Unknown("frobnicate"))
        );
        assert_eq!(Event::from_line("/"), Event::Command(Command::Unknown("")));
    }

    #[test]
    fn other_lines_are_text() {
        assert_eq!(Event::from_line("短信收不到"), Event::Text("短信收不到"));
        assert_eq!(Event::from_line("a /diagnose"), Event::Text("a /diagnose"));
    }
}
