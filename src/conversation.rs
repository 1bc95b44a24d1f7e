//! One person's event turned into new state and replies: the session loaded and saved, reminders set and cancelled, the engine stepped.
//!
//! The engine decides the dialogue; this module decides everything that
//! needs the store or the clock — reminder questions and typed times,
//! /reset's question about pending reminders, the lists — and nothing here
//! knows Telegram. An adapter only turns an update into an `Event` and a
//! `Speaker`, and the replies into messages.

mod carry;

use carry::carry_from_group;
pub use carry::{group_payload, payload_group};

use crate::app::App;
use crate::callback::Action;
use crate::clock::Instant;
use crate::engine::{
    Button, Command, Event, Reply, Session, arrival_question, button, render, step,
};
use crate::lang::Lang;
use crate::reminders::{self, Kind, NewReminder};
use crate::stats::{Fact, FactKind, LATER_SECS, new_conversation};
use crate::store::{self, Answer, Later, SessionKey, StoreError};
use crate::tree::router::has_personal_data;
use crate::tree::{NodeKind, RemindKind, Tree, UiButton, UiText};

/// Who is talking, and where, as the adapter learnt it: the forum topic is
/// kept with reminders so they come back to it.
#[derive(Debug, Clone)]
pub struct Speaker {
    pub key: SessionKey,
    /// How a reminder in a group addresses them.
    pub name: String,
    /// Their client's language, for a first conversation.
    pub language_code: Option<String>,
    pub thread: Option<i32>,
    /// The inbox entry this step answers, where there is an inbox.
    pub answering: Option<Answering>,
}

/// An entry of the inbox (a Telegram update) that a step answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answering {
    pub entry: i64,
    /// The replies saved with the step before the bot stopped: the step
    /// was taken, so they are given again instead of taking it twice.
    pub saved: Option<Vec<Reply>>,
}

/// A step that could not be taken: the store failed and nothing was
/// saved. The text is the apology to show, in the person's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub apology: String,
}

/// The language for someone without a session yet: the one they chose
/// with /lang before, else their client's language.
pub async fn person_lang(app: &App, user: u64, language_code: Option<&str>) -> Lang {
    let fallback = || Lang::from_language_code(language_code, app.settings.default_lang);
    match app.store.person_lang(user).await {
        Ok(Some(lang)) => lang,
        Ok(None) => fallback(),
        Err(e) => {
            log::error!("store: reading a language failed: {e}");
            fallback()
        }
    }
}

/// Whose a group menu is: as recorded when it was sent, else `fallback`
/// (the author of the command it answers). A menu whose owner cannot be
/// told is nobody's, so no one can take over another member's
/// conversation through it.
pub async fn menu_owner(app: &App, chat: i64, menu: i32, fallback: Option<u64>) -> Option<u64> {
    let recorded = app.store.menu_owner(chat, menu).await.unwrap_or_else(|e| {
        log::error!("chat {chat}: reading a menu's owner failed: {e}");
        None
    });
    recorded.or(fallback)
}

/// The short note for someone pressing another member's menu.
pub async fn not_yours(app: &App, user: u64, language_code: Option<&str>) -> String {
    note(app, user, language_code, UiText::NotYourMenu).await
}

/// A text of `ui.toml` in the person's language.
pub async fn note(app: &App, user: u64, language_code: Option<&str>, text: UiText) -> String {
    let lang = person_lang(app, user, language_code).await;
    app.tree().ui().text(text, lang).to_string()
}

/// One step of one person's conversation, loaded from and saved to the
/// store, with the reminders it sets or cancels. On a store failure nothing
/// is saved.
pub async fn handle(app: &App, who: &Speaker, event: Event<'_>) -> Result<Vec<Reply>, Failed> {
    let key = who.key;
    if let Some(Answering {
        entry,
        saved: Some(replies),
    }) = &who.answering
    {
        log::info!(
            "chat {} user {}: update {entry} was answered before the bot stopped; its replies are given again",
            key.chat,
            key.user
        );
        return Ok(replies.clone());
    }
    // One tree for the whole step, even if a reload swaps it meanwhile,
    // and one time: what the step sets and the save that follows agree.
    let tree = app.tree();
    let now = app.clock.now();
    let apology = |lang: Lang| Failed {
        apology: tree.ui().text(UiText::StoreError, lang).to_string(),
    };
    // A deep link from a busy group brings the session there along.
    let carried = match event {
        Event::Command(Command::Start(Some(payload))) if key.is_private() => {
            carry_from_group(app, key, payload).await
        }
        _ => None,
    };
    let event = match &carried {
        Some(node) => Event::Command(Command::Start(Some(node.as_str()))),
        None => event,
    };
    let step = Step {
        tree: &tree,
        who,
        event,
        carried: carried.is_some(),
        now,
    };
    // Another process may write the same session meanwhile (two quick
    // presses reaching two instances): the write is compare-and-set, and
    // the step is taken again on what is stored then.
    let mut effects = Effects::default();
    for attempt in 1.. {
        match attempt_step(app, &step, &mut effects).await {
            Ok(replies) => return Ok(replies),
            Err(Missed::Failed(lang)) => return Err(apology(lang)),
            Err(Missed::Conflict) if attempt < MAX_ATTEMPTS => log::info!(
                "chat {} user {}: the session changed meanwhile; the step is taken again",
                key.chat,
                key.user
            ),
            Err(Missed::Conflict) => break,
        }
    }
    log::error!(
        "chat {} user {}: the session kept changing; the step was not saved",
        key.chat,
        key.user
    );
    Err(apology(
        person_lang(app, key.user, who.language_code.as_deref()).await,
    ))
}

/// How many times a step is taken when its session keeps changing.
const MAX_ATTEMPTS: u32 = 8;

/// A step to take: who, what they did, and when.
struct Step<'a> {
    tree: &'a Tree,
    who: &'a Speaker,
    event: Event<'a>,
    /// Whether a deep link brought the session from a group.
    carried: bool,
    now: Instant,
}

/// Why an attempt at a step saved nothing.
enum Missed {
    /// Another write came first: take it again.
    Conflict,
    /// The store failed; the apology goes in this language.
    Failed(Lang),
}

/// What a step did in the store besides its session, kept when it is
/// taken again: a second attempt must not cancel what the first did and
/// then say that nothing was left to cancel.
#[derive(Default)]
struct Effects {
    /// Facts to record with the session, made anew by each attempt.
    facts: Vec<Fact>,
    /// How many reminders the step cancelled, once it did.
    cancelled: Option<usize>,
}

impl Effects {
    /// Cancels reminders the first time; after that, says how many the
    /// first time did.
    async fn cancel(
        &mut self,
        cancel: impl std::future::Future<Output = Result<usize, StoreError>>,
    ) -> Result<usize, StoreError> {
        if let Some(cancelled) = self.cancelled {
            return Ok(cancelled);
        }
        let cancelled = cancel.await?;
        self.cancelled = Some(cancelled);
        Ok(cancelled)
    }
}

/// One attempt at a step: the session loaded, the step taken, and both
/// saved unless the session changed meanwhile.
async fn attempt_step(
    app: &App,
    step: &Step<'_>,
    effects: &mut Effects,
) -> Result<Vec<Reply>, Missed> {
    let Step {
        tree,
        who,
        event,
        carried,
        now,
    } = *step;
    let key = who.key;
    effects.facts.clear();
    let loaded = match app.store.load_step(key).await {
        Ok(loaded) => loaded,
        Err(e) => {
            log::error!(
                "chat {} user {}: loading the session failed: {e}",
                key.chat,
                key.user
            );
            let lang =
                Lang::from_language_code(who.language_code.as_deref(), app.settings.default_lang);
            return Err(Missed::Failed(lang));
        }
    };
    let session = match loaded.session.clone() {
        Some(session) => session,
        None => Session::new(person_lang(app, key.user, who.language_code.as_deref()).await),
    };
    let lang_before = session.lang;
    let node_before = session.node.clone();
    let (mut next, mut replies) = match converse(app, tree, who, session, event, now, effects).await
    {
        Ok(done) => done,
        Err(e) => {
            log::error!(
                "chat {} user {}: the store failed during a step: {e}",
                key.chat,
                key.user
            );
            return Err(Missed::Failed(lang_before));
        }
    };
    let remember_lang = next.lang != lang_before;
    let mut facts = facts_of(
        tree,
        node_before.as_deref(),
        &mut next,
        &event,
        carried,
        now,
    );
    facts.append(&mut effects.facts);
    offer_more(app, tree, &next, &mut replies);
    // With the session go the replies, so a crash before they are shown
    // shows these, not a second step.
    let answer = who.answering.as_ref().and_then(|a| {
        Some(Answer {
            entry: a.entry,
            replies: serde_json::to_string(&replies).ok()?,
        })
    });
    let write = store::Write {
        remember_lang,
        facts: &facts,
        now,
        answer: answer.as_ref(),
    };
    let saved = app.store.save_step(key, &next, &write, &loaded, true).await;
    match saved {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Err(Missed::Conflict),
        Err(e) => {
            log::error!(
                "chat {} user {}: saving the session failed: {e}",
                key.chat,
                key.user
            );
            return Err(Missed::Failed(next.lang));
        }
    }
    log::info!(
        "chat {} user {}: {} -> {}",
        key.chat,
        key.user,
        event_kind(&event),
        next.node.as_deref().unwrap_or("-")
    );
    Ok(replies)
}

/// The step itself: reminder business here, the dialogue in the engine.
async fn converse(
    app: &App,
    tree: &Tree,
    who: &Speaker,
    mut session: Session,
    event: Event<'_>,
    now: Instant,
    effects: &mut Effects,
) -> Result<(Session, Vec<Reply>), StoreError> {
    let (store, key) = (&app.store, who.key);
    let tz = app.settings.timezone;
    let lang = session.lang;
    let ui = tree.ui();
    let replies = match event {
        Event::Command(Command::Reminders) => {
            // In the private chat, every reminder of the person's, wherever
            // it was set; in a group, those set there.
            let chat = (!key.is_private()).then_some(key.chat);
            let pending = store.pending_reminders(chat, key.user).await?;
            vec![reminders::replies::list_reply(tree, lang, tz, &pending)]
        }
        // A typed time answers the open arrival question. Personal data
        // and text that is no attempt at a time go to the engine, which
        // warns about the one and routes the other.
        Event::Text(text) | Event::GroupText(text)
            if session.asking.is_some()
                && !has_personal_data(text)
                && reminders::parse::looks_like_time(text) =>
        {
            let asked_at = session.asking.as_deref().and_then(|id| tree.get(id));
            match reminders::parse::parse_arrival(text, now, tz) {
                Some(arrival) => {
                    let mut replies = set_window(app, tree, who, lang, arrival.at, effects).await?;
                    match arrival.other {
                        // A guessed morning or evening: say so, and keep
                        // the question open for a corrected time.
                        Some(other) => {
                            let time = |at| reminders::format_time(tree, lang, tz, at);
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
                None => {
                    let question = asked_at.map(|at| arrival_question(tree, lang, at));
                    let mut reply = question.unwrap_or_else(|| Reply::plain(""));
                    reply.text = ui.text(UiText::TimeUnreadable, lang).to_string();
                    vec![reply]
                }
            }
        }
        Event::Press(data) => match Action::parse(data) {
            Some(Action::RemindNewCode { at }) => {
                let node = tree
                    .get(&at)
                    .filter(|n| matches!(tree.node(*n).remind, Some((RemindKind::NewCode, _))));
                let Some(node) = node else {
                    return Ok(step(tree, session, event));
                };
                let wait = i64::from(ui.reminders().new_code_wait_minutes) * 60;
                let due = now + wait;
                let reminder = new_reminder(who, lang, Kind::NewCode, due, None);
                let plan = store.set_reminders(key.chat, key.user, &[reminder]).await?;
                app.wake.notify_one();
                effects.facts.push(Fact::new(
                    now,
                    FactKind::ReminderSet,
                    session.conv,
                    &at,
                    lang,
                ));
                // The menu stays; the confirmation comes below it.
                vec![
                    render(tree, &session, node),
                    reminders::replies::new_code_set_reply(tree, lang, tz, plan, due),
                ]
            }
            // Only as one of the open arrival question's answers, or as a
            // new-code reminder's "it came" (just now): made-up data sets
            // nothing.
            Some(Action::Arrived { hours })
                if (session.asking.is_some()
                    && ui.reminders().arrived_hours_ago.contains(&hours))
                    || hours == 0 =>
            {
                let menu = session.asking.take().and_then(|id| tree.get(&id));
                let arrived = now - i64::from(hours) * 3600;
                let mut replies = set_window(app, tree, who, lang, arrived, effects).await?;
                // Answered on the arrival question: the menu it replaced
                // comes back, and the confirmation follows.
                if let Some(node) = menu {
                    replies.insert(0, render(tree, &session, node));
                }
                replies
            }
            Some(Action::Verified { plan }) => {
                // Reminders are said to be cancelled only when some were.
                let cancelled = effects.cancel(store.cancel_plan(plan, key.user)).await?;
                let which = match cancelled {
                    0 => UiText::VerifiedNoneLeft,
                    _ => UiText::Verified,
                };
                vec![Reply::plain(ui.text(which, lang))]
            }
            Some(Action::CancelPlan { plan }) => {
                let cancelled = effects.cancel(store.cancel_plan(plan, key.user)).await?;
                vec![cancelled_reply(tree, lang, cancelled)]
            }
            Some(Action::KeepReminders) => {
                vec![Reply::plain(ui.text(UiText::RemindersKept, lang))]
            }
            Some(Action::Later { at })
                if app.settings.asks_later
                    && session.node.as_deref() == Some(at.as_str())
                    && is_end(tree, &at) =>
            {
                let due_at = now + LATER_SECS;
                store
                    .ask_later(&Later {
                        chat: key.chat,
                        user: key.user,
                        thread: who.thread,
                        name: who.name.clone(),
                        lang,
                        node: at.clone(),
                        conv: session.conv,
                        due_at,
                    })
                    .await?;
                app.wake.notify_one();
                let time = reminders::format_time(tree, lang, tz, due_at);
                // The menu stays; the confirmation comes below it.
                let menu = tree.get(&at).map(|node| render(tree, &session, node));
                menu.into_iter()
                    .chain([Reply::plain(
                        ui.text(UiText::LaterSet, lang).replace("{time}", &time),
                    )])
                    .collect()
            }
            Some(Action::LaterAnswer { solved, at }) if is_end(tree, &at) => {
                if solved {
                    vec![Reply::plain(ui.text(UiText::LaterSolved, lang))]
                } else {
                    // Back at that end, whose menu offers the next steps
                    // (and, with a support chat, a person). The question
                    // kept the session open, so the way there is still
                    // known; a session closed meanwhile starts at the end.
                    let node = tree.get(&at).unwrap_or(tree.root());
                    if session.node.as_deref() != Some(at.as_str()) {
                        session.node = Some(at);
                        session.history.clear();
                        session.picks.clear();
                    }
                    session.asking = None;
                    vec![
                        Reply::plain(ui.text(UiText::LaterNotSolved, lang)),
                        render(tree, &session, node),
                    ]
                }
            }
            // Consent first: what would be shared is where the person
            // stands, so only the menu of where they stand offers it.
            Some(Action::Handoff { at })
                if app.settings.support_chat.is_some()
                    && session.node.as_deref() == Some(at.as_str())
                    && is_end(tree, &at) =>
            {
                vec![Reply {
                    node: None,
                    text: ui.text(UiText::HandoffConsent, lang).to_string(),
                    buttons: vec![
                        vec![button(
                            ui.button(UiButton::HandoffConfirm, lang),
                            Action::HandoffConfirm { at: at.clone() },
                        )],
                        vec![button(ui.button(UiButton::Back, lang), Action::Show { at })],
                    ],
                }]
            }
            Some(Action::DropReminders) => {
                let cancelled = effects
                    .cancel(store.cancel_reminders(key.chat, key.user))
                    .await?;
                vec![cancelled_reply(tree, lang, cancelled)]
            }
            _ => return Ok(step(tree, session, event)),
        },
        Event::Command(Command::Reset) => {
            let (next, replies) = step(tree, session, event);
            let pending = store.pending_reminders(Some(key.chat), key.user).await?;
            if pending.is_empty() {
                return Ok((next, replies));
            }
            return Ok((
                next,
                vec![reminders::replies::reset_ask_reply(
                    tree,
                    lang,
                    pending.len(),
                )],
            ));
        }
        _ => return Ok(step(tree, session, event)),
    };
    Ok((session, replies))
}

/// Whether `id` names an end of the tree.
fn is_end(tree: &Tree, id: &str) -> bool {
    tree.get(id)
        .is_some_and(|n| matches!(tree.node(n).kind, NodeKind::End { .. }))
}

/// Adds to an end's menu what the bot offers beyond the dialogue: a
/// person to talk to (with a support chat), and, for someone whom "not
/// solved" brought there, a question tomorrow.
fn offer_more(app: &App, tree: &Tree, session: &Session, replies: &mut [Reply]) {
    let ui = tree.ui();
    let lang = session.lang;
    let Some(at) = session.node.as_deref() else {
        return;
    };
    if !is_end(tree, at) {
        return;
    }
    let after_not_solved = session.history.last().is_some_and(|h| is_end(tree, h));
    for reply in replies
        .iter_mut()
        .filter(|r| r.node.as_deref() == Some(at) && !r.buttons.is_empty())
    {
        let mut extra: Vec<Vec<Button>> = Vec::new();
        if app.settings.support_chat.is_some() {
            extra.push(vec![button(
                ui.button(UiButton::Handoff, lang),
                Action::Handoff { at: at.to_string() },
            )]);
        }
        if app.settings.asks_later && after_not_solved {
            extra.push(vec![button(
                ui.button(UiButton::AskLater, lang),
                Action::Later { at: at.to_string() },
            )]);
        }
        // Above Back and Start over, which stay last.
        let last = reply.buttons.len().saturating_sub(1);
        reply.buttons.splice(last..last, extra);
    }
}

/// What a step leaves for the figures: a conversation started (under a
/// new number), an answer taken, an end reached, solved or not. Only
/// node ids and the language: nothing typed, nobody named.
fn facts_of(
    tree: &Tree,
    before: Option<&str>,
    next: &mut Session,
    event: &Event<'_>,
    carried: bool,
    now: Instant,
) -> Vec<Fact> {
    let lang = next.lang;
    let mut facts = Vec::new();
    let moved = next.node.as_deref() != before;
    let action = match event {
        Event::Press(data) => Action::parse(data),
        _ => None,
    };
    let entry = match (event, &action) {
        (Event::Command(Command::Start(Some(_))), _) if carried || !moved => None,
        (Event::Command(Command::Start(Some(_))), _) => Some("link"),
        (Event::Command(Command::Start(None) | Command::Diagnose), _) => Some("command"),
        (_, Some(Action::Restart)) => Some("restart"),
        (_, Some(Action::Jump { .. })) => Some("text"),
        (Event::Text(_) | Event::GroupText(_), _) if moved && next.history.is_empty() => {
            Some("text")
        }
        _ => None,
    };
    if let (Some(entry), Some(node)) = (entry, next.node.as_deref()) {
        next.conv = new_conversation();
        facts.push(Fact::new(now, FactKind::Started, next.conv, node, lang).with_detail(entry));
    } else if next.conv == 0 && next.node.is_some() {
        // A conversation from before numbers were drawn.
        next.conv = new_conversation();
    }
    let conv = next.conv;
    match &action {
        Some(Action::Go { from, to, .. }) if next.node.as_deref() == Some(to.as_str()) => {
            if is_end(tree, from) {
                facts.push(Fact::new(now, FactKind::NotSolved, conv, from, lang));
            }
            facts.push(Fact::new(now, FactKind::Step, conv, to, lang).with_detail(from));
        }
        Some(Action::Solved { at }) if next.node.is_none() && is_end(tree, at) => {
            facts.push(Fact::new(now, FactKind::Solved, conv, at, lang));
        }
        Some(Action::LaterAnswer { solved, at }) if is_end(tree, at) => {
            let kind = if *solved {
                FactKind::LaterSolved
            } else {
                FactKind::LaterNotSolved
            };
            facts.push(Fact::new(now, kind, conv, at, lang));
        }
        _ => {}
    }
    // The next-day answer puts the person back at the end they asked
    // from: no new visit.
    let returned = matches!(action, Some(Action::LaterAnswer { .. }));
    if moved
        && !returned
        && let Some(node) = next.node.as_deref().filter(|n| is_end(tree, n))
    {
        facts.push(Fact::new(now, FactKind::Reached, conv, node, lang));
    }
    facts
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

/// Sets the reminders of a verification window for an SMS that arrived at
/// `arrived`, replacing the person's pending ones in this chat (a new SMS
/// makes the old window moot).
async fn set_window(
    app: &App,
    tree: &Tree,
    who: &Speaker,
    lang: Lang,
    arrived: Instant,
    effects: &mut Effects,
) -> Result<Vec<Reply>, StoreError> {
    let tz = app.settings.timezone;
    let settings = tree.ui().reminders();
    let now = app.clock.now();
    let key = who.key;
    let Some(window) = reminders::window_plan(settings, arrived, now) else {
        let deadline = arrived + i64::from(settings.window_hours) * 3600;
        return Ok(vec![reminders::replies::already_closed_reply(
            tree, lang, tz, deadline,
        )]);
    };
    let new: Vec<NewReminder> = window
        .dues
        .iter()
        .map(|due| new_reminder(who, lang, Kind::Window, *due, Some(window.deadline)))
        .collect();
    let plan = app.store.set_reminders(key.chat, key.user, &new).await?;
    app.wake.notify_one();
    if !new.is_empty() {
        // Recorded with the session, once.
        effects
            .facts
            .push(Fact::new(now, FactKind::ReminderSet, 0, "", lang));
    }
    Ok(vec![reminders::replies::window_set_reply(
        tree,
        lang,
        tz,
        now,
        (!new.is_empty()).then_some(plan),
        &window,
        key.is_private(),
    )])
}

fn new_reminder(
    who: &Speaker,
    lang: Lang,
    kind: Kind,
    due_at: Instant,
    deadline: Option<Instant>,
) -> NewReminder {
    NewReminder {
        chat: who.key.chat,
        user: who.key.user,
        name: who.name.clone(),
        lang,
        kind,
        due_at,
        deadline,
        thread: who.thread,
    }
}

/// What happened, for the log: never the text itself.
fn event_kind(event: &Event<'_>) -> &'static str {
    match event {
        Event::Command(Command::Start(_)) => "/start",
        Event::Command(Command::Help) => "/help",
        Event::Command(Command::Diagnose) => "/diagnose",
        Event::Command(Command::Reset) => "/reset",
        Event::Command(Command::Lang(_)) => "/lang",
        Event::Command(Command::Reminders) => "/reminders",
        Event::Command(Command::Stats(_)) => "/stats",
        Event::Command(Command::Graph) => "/graph",
        Event::Command(Command::Unknown(_)) => "unknown command",
        Event::Press(_) => "press",
        Event::Text(_) => "text",
        Event::GroupText(_) => "group text",
        Event::NonText => "non-text message",
    }
}
