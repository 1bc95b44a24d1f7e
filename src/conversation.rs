//! One person's event turned into new state and replies: what the step needs read, the step decided, and everything it changes written at once.
//!
//! The engine decides the dialogue; `decide` decides the rest of a step —
//! reminder questions and typed times, /reset's question about pending
//! reminders, the lists, the next-day question, the handoff's consent —
//! from what the runner here read, and returns its effects; the runner
//! writes them with the session in one batch. Nothing here knows
//! Telegram: an adapter only turns an update into an `Event` and a
//! `Speaker`, and the replies into messages.

mod around;
mod carry;
mod decide;

use carry::carry_from_group;
pub use carry::{group_payload, payload_group};

use decide::{Context, Decision, Effect, Needs, Scope, Seen};

use crate::app::App;
use crate::clock::Instant;
use crate::engine::{Command, Event, Reply, Session};
use crate::lang::Lang;
use crate::reminders::Pending;
use crate::stats::store::{Waiting, later_into, later_key, record_into};
use crate::store::{self, Answer, Batch, Keep, Loaded, SessionKey, StoreError, missed_key};
use crate::tree::{Tree, UiText};

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
    for attempt in 1.. {
        match attempt_step(app, &step).await {
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

/// What keeps an idle session open: a pending reminder in its chat, or a
/// next-day question waiting there.
pub const KEEPS_OPEN: [Keep; 2] = [
    Keep::Index(crate::reminders::store::chat_index),
    Keep::Record(later_key),
];

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

/// One attempt at a step: what it needs read, the step decided, and
/// everything it changes saved at once, unless something it read changed
/// meanwhile (then nothing is written, and the step is taken again).
async fn attempt_step(app: &App, step: &Step<'_>) -> Result<Vec<Reply>, Missed> {
    let Step {
        tree, who, event, ..
    } = *step;
    let key = who.key;
    let failed = |what: &str, e: StoreError, lang: Lang| {
        log::error!("chat {} user {}: {what} failed: {e}", key.chat, key.user);
        Missed::Failed(lang)
    };
    let client_lang =
        Lang::from_language_code(who.language_code.as_deref(), app.settings.default_lang);
    let loaded = (app
        .store
        .load_step_with(key, &[later_key(key), missed_key(key)])
        .await)
        .map_err(|e| failed("loading the session", e, client_lang))?;
    let session = match loaded.session.clone() {
        Some(session) => session,
        None => Session::new(person_lang(app, key.user, who.language_code.as_deref()).await),
    };
    let lang_before = session.lang;
    let node_before = session.node.clone();
    let needs = decide::needs(&session, event, key.is_private());
    let seen = read(app, key, needs)
        .await
        .map_err(|e| failed("reading the reminders", e, lang_before))?;
    let ctx = Context {
        tree,
        who,
        now: step.now,
        tz: app.settings.timezone,
        support: app.settings.support_chat.is_some(),
        asks_later: app.settings.asks_later,
    };
    let mut decision = decide::decide(&ctx, session, event, &seen);
    let facts = around::facts_of(
        tree,
        node_before.as_deref(),
        &mut decision.session,
        &event,
        step.carried,
        step.now,
    );
    decision
        .effects
        .extend(facts.into_iter().map(Effect::Record));
    around::offer_more(&ctx, &decision.session, &mut decision.replies);
    // An earlier answer was given up on: this one says so first.
    if missed(&loaded).is_some()
        && let Some(first) = decision.replies.first_mut()
    {
        let note = tree.ui().text(UiText::ReplyMissed, decision.session.lang);
        *first = std::mem::replace(first, Reply::plain("")).below(note);
    }
    let remember_lang = decision.session.lang != lang_before;
    match save(app, step, &loaded, &seen, &decision, remember_lang).await {
        Ok(()) => Ok(decision.replies),
        Err(StoreError::Conflict) => Err(Missed::Conflict),
        Err(e) => Err(failed("saving the session", e, decision.session.lang)),
    }
}

/// The version of the record saying an answer to this person was given
/// up on, if there is one (read with the session, after `later_key`).
fn missed(loaded: &Loaded) -> Option<u64> {
    loaded
        .with
        .get(1)
        .and_then(Option::as_ref)
        .map(|r| r.version)
}

/// Reads what a step needs before it is decided.
async fn read(app: &App, key: SessionKey, needs: Needs) -> Result<Seen, StoreError> {
    let pending = match needs.pending {
        Some(Scope::Chat) => app.store.read_pending(Some(key.chat), key.user).await?,
        Some(Scope::Person) => app.store.read_pending(None, key.user).await?,
        None => Pending::default(),
    };
    let plan = match needs.plan {
        true => app.store.new_plan().await?,
        false => 0,
    };
    Ok(Seen { pending, plan })
}

/// Carries out a decided step: the session, the replies of the inbox
/// entry it answers and its effects, in one write.
async fn save(
    app: &App,
    step: &Step<'_>,
    loaded: &Loaded,
    seen: &Seen,
    decision: &Decision,
    remember_lang: bool,
) -> Result<(), StoreError> {
    let key = step.who.key;
    let mut also = Batch::new(step.now);
    let mut facts = Vec::new();
    let mut wake = false;
    for effect in &decision.effects {
        match effect {
            Effect::Cancel(which) => {
                seen.pending.cancel_into(&mut also, |r| which.picks(r));
            }
            Effect::Remind { plan, reminders } => {
                let fresh = app.store.fresh(*plan, reminders).await?;
                fresh.into_batch(&mut also);
                wake = true;
            }
            Effect::AskLater(later) => {
                later_into(&mut also, later);
                wake = true;
            }
            Effect::Record(fact) => facts.push(fact.clone()),
        }
    }
    // With the session go the replies, so a crash before they are shown
    // shows these, not a second step.
    let answer = step.who.answering.as_ref().and_then(|a| {
        Some(Answer {
            entry: a.entry,
            replies: serde_json::to_string(&decision.replies).ok()?,
        })
    });
    record_into(&mut also, step.tree.version(), &facts);
    // The person is back: a next-day question asked for them here before
    // now is not asked.
    if let Some(waiting) = loaded.with.first().cloned().flatten().and_then(Waiting::of) {
        waiting.drop_if_asked_before(&mut also, key, step.now);
    }
    // Told now that an answer was missed: not again. Only if no newer
    // answer was given up on meanwhile (else the step is taken again).
    if let Some(version) = missed(loaded)
        && !decision.replies.is_empty()
    {
        also.check(missed_key(key), version).delete(missed_key(key));
    }
    let write = store::Write {
        remember_lang,
        now: step.now,
        answer: answer.as_ref(),
        also,
    };
    let next = &decision.session;
    app.store.save_step(key, next, write, loaded, true).await?;
    let before = loaded.session.as_ref();
    for (stage, category) in around::funnel_of(step.tree, before, next, &facts) {
        app.metrics.funnel.count(stage, &category);
    }
    if wake {
        app.wake.notify_one();
    }
    log::info!(
        "chat {} user {}: {} -> {}",
        key.chat,
        key.user,
        event_kind(&step.event),
        next.node.as_deref().unwrap_or("-")
    );
    Ok(())
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
