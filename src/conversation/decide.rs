//! A step decided: from the session, what the person did and what the step read, the next session, the replies, and what else should happen.
//!
//! Nothing here touches the store or the clock. `needs` says what a step
//! must read before it is decided; `decide` returns the effects — reminders
//! set or cancelled, a next-day question, facts for the figures — which the
//! runner writes together with the session, all or nothing.

use chrono_tz::Tz;

use super::Speaker;
use crate::callback::Action;
use crate::clock::Instant;
use crate::engine::{Command, Event, Reply, Session, arrival_question, button, render, step};
use crate::lang::Lang;
use crate::reminders::{self, Kind, NewReminder, Pending, Reminder};
use crate::stats::{Fact, FactKind, LATER_SECS, Later};
use crate::tree::router::has_personal_data;
use crate::tree::{NodeKind, RemindKind, Tree, UiButton, UiText};

/// What a step is decided with besides the session and the event.
pub(super) struct Context<'a> {
    pub tree: &'a Tree,
    pub who: &'a Speaker,
    pub now: Instant,
    pub tz: Tz,
    /// Whether a person can be asked for (a support chat is set).
    pub support: bool,
    /// Whether "ask me tomorrow" is offered.
    pub asks_later: bool,
}

/// Whose pending reminders a step reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// Those set in this chat.
    Chat,
    /// All of the person's, wherever they were set.
    Person,
}

/// What a step must read before it is decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Needs {
    pub pending: Option<Scope>,
    /// A new plan's id, for the reminders the step may set.
    pub plan: bool,
}

/// What a step read, as `Needs` asked.
#[derive(Debug, Default)]
pub(super) struct Seen {
    pub pending: Pending,
    pub plan: i64,
}

/// Which of the pending reminders read a cancel removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Which {
    All,
    Plan(i64),
}

impl Which {
    pub(super) fn picks(self, reminder: &Reminder) -> bool {
        match self {
            Which::All => true,
            Which::Plan(plan) => reminder.plan == plan,
        }
    }
}

/// What should happen besides the session and the replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Effect {
    /// Remove the pending reminders read that `Which` picks.
    Cancel(Which),
    /// Store new reminders as one plan.
    Remind {
        plan: i64,
        reminders: Vec<NewReminder>,
    },
    /// Ask the person again tomorrow whether it got solved.
    AskLater(Later),
    /// Record a fact for the figures.
    Record(Fact),
}

/// A step's outcome.
pub(super) struct Decision {
    pub session: Session,
    pub replies: Vec<Reply>,
    pub effects: Vec<Effect>,
}

/// The typed text that answers an open arrival question, if it is one.
/// Personal data and text that is no attempt at a time go to the engine,
/// which warns about the one and routes the other.
fn typed_time<'a>(session: &Session, event: Event<'a>) -> Option<&'a str> {
    match event {
        Event::Text(text) | Event::GroupText(text)
            if session.asking.is_some()
                && !has_personal_data(text)
                && reminders::parse::looks_like_time(text) =>
        {
            Some(text)
        }
        _ => None,
    }
}

/// What `decide` will need to have read for this event.
pub(super) fn needs(session: &Session, event: Event<'_>, private: bool) -> Needs {
    let sets = Needs {
        pending: Some(Scope::Chat),
        plan: true,
    };
    let reads = |scope| Needs {
        pending: Some(scope),
        plan: false,
    };
    if typed_time(session, event).is_some() {
        return sets;
    }
    match event {
        Event::Command(Command::Reminders) if private => reads(Scope::Person),
        Event::Command(Command::Reminders | Command::Reset) => reads(Scope::Chat),
        Event::Press(Some(action)) => match action {
            Action::RemindNewCode { .. } | Action::Arrived { .. } => sets,
            Action::Verified { .. } | Action::CancelPlan { .. } => reads(Scope::Person),
            Action::DropReminders => reads(Scope::Chat),
            _ => Needs::default(),
        },
        _ => Needs::default(),
    }
}

/// The step itself: reminders, the next-day question and the handoff's
/// consent here, the dialogue in the engine.
pub(super) fn decide(
    ctx: &Context<'_>,
    mut session: Session,
    event: Event<'_>,
    seen: &Seen,
) -> Decision {
    let mut effects = Vec::new();
    let replies = if let Some(text) = typed_time(&session, event) {
        typed_arrival(ctx, &mut session, text, seen, &mut effects)
    } else {
        match event {
            Event::Command(Command::Reminders) => {
                let pending: Vec<Reminder> = seen.pending.reminders().cloned().collect();
                let reply =
                    reminders::replies::list_reply(ctx.tree, session.lang, ctx.tz, &pending);
                vec![reply]
            }
            Event::Command(Command::Reset) => {
                let (next, replies) = step(ctx.tree, session, event);
                let replies = match seen.pending.len() {
                    0 => replies,
                    count => vec![reminders::replies::reset_ask_reply(
                        ctx.tree, next.lang, count,
                    )],
                };
                return Decision {
                    session: next,
                    replies,
                    effects,
                };
            }
            Event::Press(Some(action)) => match pressed(ctx, &mut session, action, seen) {
                Some((replies, mut more)) => {
                    effects.append(&mut more);
                    replies
                }
                None => return engine_step(ctx.tree, session, event),
            },
            _ => return engine_step(ctx.tree, session, event),
        }
    };
    Decision {
        session,
        replies,
        effects,
    }
}

/// A step the engine alone decides.
fn engine_step(tree: &Tree, session: Session, event: Event<'_>) -> Decision {
    let (session, replies) = step(tree, session, event);
    Decision {
        session,
        replies,
        effects: Vec::new(),
    }
}

/// A typed time answering the arrival question: the window set, or the
/// question asked again.
fn typed_arrival(
    ctx: &Context<'_>,
    session: &mut Session,
    text: &str,
    seen: &Seen,
    effects: &mut Vec<Effect>,
) -> Vec<Reply> {
    let (tree, lang) = (ctx.tree, session.lang);
    let ui = tree.ui();
    let asked_at = session.asking.as_deref().and_then(|id| tree.get(id));
    let Some(arrival) = reminders::parse::parse_arrival(text, ctx.now, ctx.tz) else {
        let question = asked_at.map(|at| arrival_question(tree, lang, at));
        let mut reply = question.unwrap_or_else(|| Reply::plain(""));
        reply.text = ui.text(UiText::TimeUnreadable, lang).to_string();
        return vec![reply];
    };
    let mut replies = set_window(ctx, session, arrival.at, seen, effects);
    match arrival.other {
        // A guessed morning or evening: say so, and keep the question
        // open for a corrected time.
        Some(other) => {
            let time = |at| reminders::format_time(tree, lang, ctx.tz, at);
            let note = ui
                .text(UiText::TimeGuessed, lang)
                .replace("{time}", &time(arrival.at))
                .replace("{other}", &time(other));
            if let Some(first) = replies.first_mut() {
                first.text = format!("{}\n\n{note}", first.text.trim_end());
            }
        }
        None => session.asking = None,
    }
    replies
}

/// A press the conversation answers itself, with its effects; `None` for
/// one the engine answers.
fn pressed(
    ctx: &Context<'_>,
    session: &mut Session,
    action: &Action,
    seen: &Seen,
) -> Option<(Vec<Reply>, Vec<Effect>)> {
    let (tree, lang) = (ctx.tree, session.lang);
    let ui = tree.ui();
    let mut effects = Vec::new();
    let replies = match action {
        Action::RemindNewCode { at } => new_code(ctx, session, at, seen, &mut effects)?,
        // Only as one of the open arrival question's answers, or as a
        // new-code reminder's "it came" (just now): made-up data sets
        // nothing.
        Action::Arrived { hours }
            if (session.asking.is_some() && ui.reminders().arrived_hours_ago.contains(hours))
                || *hours == 0 =>
        {
            arrived(ctx, session, *hours, seen, &mut effects)
        }
        Action::Verified { plan } => {
            // Reminders are said to be cancelled only when some were.
            let which = match cancel(seen, Which::Plan(*plan), &mut effects) {
                0 => UiText::VerifiedNoneLeft,
                _ => UiText::Verified,
            };
            vec![Reply::plain(ui.text(which, lang))]
        }
        Action::CancelPlan { plan } => {
            let cancelled = cancel(seen, Which::Plan(*plan), &mut effects);
            vec![cancelled_reply(tree, lang, cancelled)]
        }
        Action::DropReminders => {
            let cancelled = cancel(seen, Which::All, &mut effects);
            vec![cancelled_reply(tree, lang, cancelled)]
        }
        Action::KeepReminders => vec![Reply::plain(ui.text(UiText::RemindersKept, lang))],
        Action::Later { at } if ctx.asks_later && stands_at_end(tree, session, at) => {
            ask_later(ctx, session, at, &mut effects)
        }
        Action::LaterAnswer { solved: true, at } if is_end(tree, at) => {
            vec![Reply::plain(ui.text(UiText::LaterSolved, lang))]
        }
        Action::LaterAnswer { solved: false, at } if is_end(tree, at) => {
            back_at_end(tree, session, at)
        }
        // Consent first: what would be shared is where the person stands,
        // so only the menu of where they stand offers it.
        Action::Handoff { at } if ctx.support && stands_at_end(tree, session, at) => {
            vec![consent(tree, lang, at)]
        }
        _ => return None,
    };
    Some((replies, effects))
}

/// A reminder after the typical wait for a new code, set from the menu of
/// `at` (a node that offers it; `None` for any other).
fn new_code(
    ctx: &Context<'_>,
    session: &Session,
    at: &str,
    seen: &Seen,
    effects: &mut Vec<Effect>,
) -> Option<Vec<Reply>> {
    let (tree, lang) = (ctx.tree, session.lang);
    let node = tree
        .get(at)
        .filter(|n| matches!(tree.node(*n).remind, Some((RemindKind::NewCode, _))))?;
    let due = ctx.now + i64::from(tree.ui().reminders().new_code_wait_minutes) * 60;
    let reminder = new_reminder(ctx.who, session, at, Kind::NewCode, due, None);
    effects.push(Effect::Cancel(Which::All));
    effects.push(Effect::Remind {
        plan: seen.plan,
        reminders: vec![reminder],
    });
    let fact = Fact::new(ctx.now, FactKind::ReminderSet, session.conv, at, lang);
    effects.push(Effect::Record(fact));
    // The menu stays; the confirmation comes below it.
    Some(vec![
        render(tree, session, node),
        reminders::replies::new_code_set_reply(tree, lang, ctx.tz, seen.plan, due),
    ])
}

/// The SMS arrived `hours` ago: the window's reminders set.
fn arrived(
    ctx: &Context<'_>,
    session: &mut Session,
    hours: u32,
    seen: &Seen,
    effects: &mut Vec<Effect>,
) -> Vec<Reply> {
    let menu = session.asking.take().and_then(|id| ctx.tree.get(&id));
    let arrived = ctx.now - i64::from(hours) * 3600;
    let mut replies = set_window(ctx, session, arrived, seen, effects);
    // Answered on the arrival question: the menu it replaced comes back,
    // and the confirmation follows.
    if let Some(node) = menu {
        replies.insert(0, render(ctx.tree, session, node));
    }
    replies
}

/// "Ask me tomorrow" at the end `at`.
fn ask_later(
    ctx: &Context<'_>,
    session: &Session,
    at: &str,
    effects: &mut Vec<Effect>,
) -> Vec<Reply> {
    let (tree, lang) = (ctx.tree, session.lang);
    let due_at = ctx.now + LATER_SECS;
    effects.push(Effect::AskLater(Later {
        chat: ctx.who.key.chat,
        user: ctx.who.key.user,
        thread: ctx.who.thread,
        name: ctx.who.name.clone(),
        lang,
        node: at.to_string(),
        conv: session.conv,
        due_at,
    }));
    let time = reminders::format_time(tree, lang, ctx.tz, due_at);
    let set = tree
        .ui()
        .text(UiText::LaterSet, lang)
        .replace("{time}", &time);
    // The menu stays; the confirmation comes below it.
    let menu = tree.get(at).map(|node| render(tree, session, node));
    menu.into_iter().chain([Reply::plain(set)]).collect()
}

/// The next-day answer "not solved": back at the end `at`, whose menu
/// offers the next steps (and, with a support chat, a person). The
/// question kept the session open, so the way there is still known; a
/// session closed meanwhile starts at the end.
fn back_at_end(tree: &Tree, session: &mut Session, at: &str) -> Vec<Reply> {
    let node = tree.get(at).unwrap_or(tree.root());
    if session.node.as_deref() != Some(at) {
        session.node = Some(at.to_string());
        session.history.clear();
        session.picks.clear();
    }
    session.asking = None;
    let text = tree.ui().text(UiText::LaterNotSolved, session.lang);
    vec![Reply::plain(text), render(tree, session, node)]
}

/// The question whether the path from `at` may be shared with the team.
fn consent(tree: &Tree, lang: Lang, at: &str) -> Reply {
    let ui = tree.ui();
    let confirm = Action::HandoffConfirm { at: at.to_string() };
    let back = Action::Show { at: at.to_string() };
    Reply {
        node: None,
        text: ui.text(UiText::HandoffConsent, lang).to_string(),
        buttons: vec![
            vec![button(ui.button(UiButton::HandoffConfirm, lang), confirm)],
            vec![button(ui.button(UiButton::Back, lang), back)],
        ],
    }
}

/// Cancels the pending reminders read that `which` picks; returns how
/// many there are.
fn cancel(seen: &Seen, which: Which, effects: &mut Vec<Effect>) -> usize {
    let count = seen.pending.reminders().filter(|r| which.picks(r)).count();
    if count > 0 {
        effects.push(Effect::Cancel(which));
    }
    count
}

/// Whether `id` names an end of the tree.
pub(super) fn is_end(tree: &Tree, id: &str) -> bool {
    tree.get(id)
        .is_some_and(|n| matches!(tree.node(n).kind, NodeKind::End { .. }))
}

/// Whether the session stands at `at`, and `at` is an end.
fn stands_at_end(tree: &Tree, session: &Session, at: &str) -> bool {
    session.node.as_deref() == Some(at) && is_end(tree, at)
}

/// "Cancelled", or, when nothing was left to cancel, that nothing is
/// pending.
fn cancelled_reply(tree: &Tree, lang: Lang, cancelled: usize) -> Reply {
    let which = if cancelled > 0 {
        UiText::RemindersCancelled
    } else {
        UiText::RemindersNone
    };
    Reply::plain(tree.ui().text(which, lang))
}

/// The reminders of a verification window for an SMS that arrived at
/// `arrived`, in place of the person's pending ones in this chat (a new
/// SMS makes the old window moot), and the reply that says so.
fn set_window(
    ctx: &Context<'_>,
    session: &Session,
    arrived: Instant,
    seen: &Seen,
    effects: &mut Vec<Effect>,
) -> Vec<Reply> {
    let (tree, lang, tz) = (ctx.tree, session.lang, ctx.tz);
    let settings = tree.ui().reminders();
    let Some(window) = reminders::window_plan(settings, arrived, ctx.now) else {
        let deadline = arrived + i64::from(settings.window_hours) * 3600;
        return vec![reminders::replies::already_closed_reply(
            tree, lang, tz, deadline,
        )];
    };
    // Where the question was asked, else where the person stands.
    let at = session
        .asking
        .as_deref()
        .or(session.node.as_deref())
        .unwrap_or(crate::tree::ROOT_ID);
    let new: Vec<NewReminder> = window
        .dues
        .iter()
        .map(|due| {
            let deadline = Some(window.deadline);
            new_reminder(ctx.who, session, at, Kind::Window, *due, deadline)
        })
        .collect();
    effects.push(Effect::Cancel(Which::All));
    let plan = (!new.is_empty()).then_some(seen.plan);
    if !new.is_empty() {
        let fact = Fact::new(ctx.now, FactKind::ReminderSet, session.conv, at, lang);
        effects.push(Effect::Record(fact));
        effects.push(Effect::Remind {
            plan: seen.plan,
            reminders: new,
        });
    }
    vec![reminders::replies::window_set_reply(
        tree,
        lang,
        tz,
        ctx.now,
        plan,
        &window,
        ctx.who.key.is_private(),
    )]
}

/// A reminder for the speaker, set in `session` from the menu of `at`.
fn new_reminder(
    who: &Speaker,
    session: &Session,
    at: &str,
    kind: Kind,
    due_at: Instant,
    deadline: Option<Instant>,
) -> NewReminder {
    NewReminder {
        chat: who.key.chat,
        user: who.key.user,
        name: who.name.clone(),
        lang: session.lang,
        kind,
        due_at,
        deadline,
        thread: who.thread,
        conv: session.conv,
        node: at.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SessionKey;
    use crate::tree::load::{embedded, load};

    const NOW: Instant = 1_800_000_000;

    fn speaker() -> Speaker {
        Speaker {
            key: SessionKey { chat: 7, user: 7 },
            name: "A".to_string(),
            language_code: None,
            thread: None,
            answering: None,
        }
    }

    fn decided(session: Session, action: &Action, seen: &Seen) -> Decision {
        let tree = load(&embedded()).unwrap_or_else(|e| panic!("{e}"));
        let who = speaker();
        let ctx = Context {
            tree: &tree,
            who: &who,
            now: NOW,
            tz: reminders::DEFAULT_TIMEZONE,
            support: true,
            asks_later: true,
        };
        assert_eq!(
            needs(&session, Event::Press(Some(action)), true).plan,
            matches!(
                action,
                Action::Arrived { .. } | Action::RemindNewCode { .. }
            )
        );
        decide(&ctx, session, Event::Press(Some(action)), seen)
    }

    fn pending(plans: &[i64]) -> Pending {
        let made: Vec<(Reminder, u64)> = plans
            .iter()
            .enumerate()
            .map(|(i, plan)| {
                let reminder = Reminder {
                    id: i as i64 + 1,
                    plan: *plan,
                    chat: 7,
                    user: 7,
                    name: "A".to_string(),
                    lang: Lang::En,
                    kind: Kind::Window,
                    due_at: NOW + 3600,
                    deadline: None,
                    thread: None,
                    conv: 5,
                    node: "to_new_sms".to_string(),
                };
                (reminder, 1)
            })
            .collect();
        Pending::from_read(made)
    }

    #[test]
    fn an_arrival_replaces_the_chats_reminders_with_one_plan_and_records_where_it_was_asked() {
        let mut session = Session::new(Lang::En);
        session.node = Some("to_new_sms".to_string());
        session.asking = Some("to_new_sms".to_string());
        session.conv = 5;
        let seen = Seen {
            pending: pending(&[3]),
            plan: 9,
        };
        let d = decided(session, &Action::Arrived { hours: 2 }, &seen);
        assert_eq!(d.effects[0], Effect::Cancel(Which::All));
        let Effect::Record(fact) = &d.effects[1] else {
            panic!("no fact: {:?}", d.effects);
        };
        assert_eq!(
            (fact.kind, fact.conv, fact.node.as_str()),
            (FactKind::ReminderSet, 5, "to_new_sms")
        );
        let Effect::Remind { plan, reminders } = &d.effects[2] else {
            panic!("no reminders: {:?}", d.effects);
        };
        assert_eq!(*plan, 9);
        assert!(!reminders.is_empty() && reminders.iter().all(|r| r.kind == Kind::Window));
        assert_eq!(d.session.asking, None);
    }

    #[test]
    fn a_cancel_counts_what_was_read_and_cancels_nothing_when_none_is_the_plans() {
        let seen = Seen {
            pending: pending(&[3, 3, 4]),
            plan: 0,
        };
        let lang = Lang::En;
        let tree = load(&embedded()).unwrap_or_else(|e| panic!("{e}"));
        let ui = tree.ui();
        let d = decided(Session::new(lang), &Action::Verified { plan: 3 }, &seen);
        assert_eq!(d.effects, vec![Effect::Cancel(Which::Plan(3))]);
        assert_eq!(d.replies[0].text, ui.text(UiText::Verified, lang));
        let d = decided(Session::new(lang), &Action::Verified { plan: 8 }, &seen);
        assert!(d.effects.is_empty());
        assert_eq!(d.replies[0].text, ui.text(UiText::VerifiedNoneLeft, lang));
    }

    #[test]
    fn a_made_up_arrival_or_later_question_sets_nothing() {
        let seen = Seen::default();
        let d = decided(Session::new(Lang::En), &Action::Arrived { hours: 5 }, &seen);
        assert!(d.effects.is_empty(), "{:?}", d.effects);
        let later = Action::Later {
            at: "to_new_sms".to_string(),
        };
        let d = decided(Session::new(Lang::En), &later, &seen);
        assert!(d.effects.is_empty(), "{:?}", d.effects);
    }
}
