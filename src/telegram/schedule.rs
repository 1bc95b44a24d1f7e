//! The scheduler: sends reminders when they fall due and closes conversations left idle.
//!
//! One task runs passes. A pass sends what is due (each reminder claimed in
//! the store before it is sent and removed after), then closes a batch of
//! idle sessions, then sleeps until the next reminder, a new one being set,
//! or a few minutes — on the app's clock, so tests move time by hand.

use std::sync::Arc;

use teloxide::types::{ChatId, MessageId, ThreadId};
use teloxide::{ApiError, RequestError};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::pacer::Priority;
use super::send::{Gone, Outbox, Outgoing, Shown, keyboard};
use crate::app::App;
use crate::clock::Instant;
use crate::engine::Reply;
use crate::markup;
use crate::reminders::{self, Kind, Reminder};
use crate::stats::{Fact, FactKind};
use crate::store::{IdleSession, Posted, SessionKey, StoreError};
use crate::tree::UiText;

/// At most this many reminders per pass; with more due, the next pass
/// follows at once.
const BATCH: usize = 100;

/// At most this many idle sessions closed per pass, and the pause before
/// the next batch: about ten menu edits a second, a third of what Telegram
/// allows a bot, so a mass expiry never crowds out live conversations.
const CLOSE_BATCH: usize = 50;
const CLOSE_PAUSE_SECS: i64 = 5;

/// With nothing due, the scheduler still looks again this often, for
/// sessions that have become idle.
const SWEEP_SECS: i64 = 5 * 60;

/// After a failure (the store down, Telegram unreachable), the next try.
const RETRY_SECS: i64 = 30;

/// The running scheduler.
pub struct Handle {
    stop: watch::Sender<bool>,
    settled: watch::Receiver<Instant>,
    task: JoinHandle<()>,
}

impl Handle {
    pub fn settled(&self) -> watch::Receiver<Instant> {
        self.settled.clone()
    }

    /// Lets the pass under way finish, then ends.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        if let Err(e) = self.task.await {
            log::error!("the scheduler task failed: {e}");
        }
    }

    pub fn abort(self) {
        self.task.abort();
    }
}

/// Starts the scheduler.
pub fn spawn(bot: Outbox, app: Arc<App>) -> Handle {
    let (stop, stopped) = watch::channel(false);
    let (settled_tx, settled) = watch::channel(Instant::MIN);
    let task = tokio::spawn(run(bot, app, stopped, settled_tx));
    Handle {
        stop,
        settled,
        task,
    }
}

/// What a pass leaves for the next.
#[derive(Default)]
struct State {
    /// Whether reminders claimed by an earlier process were cleared.
    recovered: bool,
    /// Reminders sent whose removal from the store failed: removed first
    /// thing next pass, and never sent again meanwhile (they stay claimed).
    sent_unrecorded: Vec<i64>,
    /// Reminders claimed but not sent whose release failed: released
    /// first thing next pass, so they are not lost.
    unsent_claimed: Vec<i64>,
    /// When what is past its retention was last forgotten.
    pruned_at: Instant,
    /// Who this process is, on the reminders it claims.
    owner: String,
}

/// How often what is past its retention is forgotten.
const PRUNE_SECS: i64 = 3600;

/// How long a claim on a reminder lasts: far longer than sending one takes,
/// even waiting out Telegram's limits. Only a claim that ran out (its
/// process died) is ever recovered.
const CLAIM_SECS: i64 = 600;

async fn run(
    bot: Outbox,
    app: Arc<App>,
    mut stop: watch::Receiver<bool>,
    settled: watch::Sender<Instant>,
) {
    let mut state = State {
        owner: app.instance.clone(),
        ..State::default()
    };
    loop {
        let now = app.clock.now();
        let next = match pass(&bot, &app, now, &mut state).await {
            Ok(next) => next,
            Err(e) => {
                log::error!("scheduler: the store failed ({e}); trying again in {RETRY_SECS} s");
                now + RETRY_SECS
            }
        };
        settled.send_replace(now);
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            () = app.clock.sleep_until(next, now) => {}
            () = app.wake.notified() => {}
            _ = stop.changed() => break,
        }
    }
}

/// One pass at `now`; returns when the next should run.
async fn pass(
    bot: &Outbox,
    app: &Arc<App>,
    now: Instant,
    state: &mut State,
) -> Result<Instant, StoreError> {
    let store = &app.store;
    if !state.recovered || now >= state.pruned_at + PRUNE_SECS {
        let dropped = store.recover_claimed(now).await?;
        if dropped > 0 {
            log::warn!(
                "scheduler: {dropped} reminder(s) were being sent by a process that stopped; \
                 they may have arrived, so they are not sent again"
            );
        }
        state.recovered = true;
    }
    if !state.sent_unrecorded.is_empty() {
        store.finish_reminders(&state.sent_unrecorded).await?;
        state.sent_unrecorded.clear();
    }
    if !state.unsent_claimed.is_empty() {
        store.release_reminders(&state.unsent_claimed).await?;
        state.unsent_claimed.clear();
    }

    let mut retry_soon = false;
    let due = store.due_reminders(now, BATCH).await?;
    let more_due = due.len() == BATCH;
    // The plans go side by side, so one waiting for a busy chat's budget
    // does not hold up the others; the pacer keeps them all within the
    // limits, behind people's own answers.
    let mut sends = JoinSet::new();
    let mut plans = std::collections::HashMap::new();
    for plan in due.chunk_by(|a, b| a.plan == b.plan) {
        let ids: Vec<i64> = plan.iter().map(|r| r.id).collect();
        let (bot, app, plan) = (bot.clone(), Arc::clone(app), plan.to_vec());
        let owner = state.owner.clone();
        let task = sends.spawn(async move {
            let mut left = State {
                owner: owner.clone(),
                ..State::default()
            };
            let done = deliver(&bot, &app, now, &plan, &mut left).await;
            (done, left)
        });
        plans.insert(task.id(), ids);
    }
    let mut failure = None;
    while let Some(joined) = sends.join_next().await {
        let (done, left) = match joined {
            Ok(finished) => finished,
            Err(e) => {
                // It may have been claimed and sent: as with a send whose
                // fate is unknown, it is removed, never sent twice.
                log::error!("scheduler: sending a reminder failed unexpectedly: {e}");
                state
                    .sent_unrecorded
                    .extend(plans.remove(&e.id()).unwrap_or_default());
                retry_soon = true;
                continue;
            }
        };
        state.sent_unrecorded.extend(left.sent_unrecorded);
        state.unsent_claimed.extend(left.unsent_claimed);
        match done {
            Ok(true) => {}
            Ok(false) => retry_soon = true,
            Err(e) => failure = Some(e),
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }

    let more_later = ask_later(bot, app, now).await?;
    if now >= state.pruned_at + PRUNE_SECS {
        let gone = store.prune(now).await? + store.prune_facts(now).await?;
        if gone > 0 {
            log::info!("scheduler: {gone} row(s) past their retention forgotten");
        }
        state.pruned_at = now;
    }

    let idle = store
        .idle_sessions(
            now - app.settings.session_idle_secs,
            CLOSE_BATCH,
            &crate::conversation::KEEPS_OPEN,
        )
        .await?;
    let more_idle = idle.len() == CLOSE_BATCH;
    // Each row goes first, so a menu is only ever closed for a session
    // that is gone; the edits then run side by side (the pacer paces them
    // to Telegram's limits, behind people's own answers), so a large batch is not a queue of
    // round trips.
    let mut edits = JoinSet::new();
    let mut failure = None;
    for session in idle {
        match store.expire_session(session.key, session.updated_at).await {
            Ok(true) => {
                log::info!(
                    "chat {} user {}: session closed after being idle",
                    session.key.chat,
                    session.key.user
                );
                let (bot, app) = (bot.clone(), Arc::clone(app));
                edits.spawn(async move { end_menu(&bot, &app, &session).await });
            }
            Ok(false) => {}
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    while let Some(done) = edits.join_next().await {
        if let Err(e) = done {
            log::error!("scheduler: closing a menu failed: {e}");
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }

    // A failed send (Telegram unreachable) pauses delivery rather than
    // hammering at it; more due, or more to close, follow soon.
    let next = if retry_soon {
        now + RETRY_SECS
    } else if more_due || more_later {
        now
    } else if more_idle {
        now + CLOSE_PAUSE_SECS
    } else {
        store
            .next_due()
            .await?
            .map_or(now + SWEEP_SECS, |due| due.min(now + SWEEP_SECS))
    };
    Ok(next.max(now))
}

/// Asks the next-day questions that are due, each once: taken from the
/// store before it is sent, so a failure loses the question rather than
/// asking twice. Returns whether more are due.
async fn ask_later(bot: &Outbox, app: &App, now: Instant) -> Result<bool, StoreError> {
    let due = app.store.due_later(now, BATCH).await?;
    let more = due.len() == BATCH;
    for later in due {
        let private = app.store.has_private_chat(later.user).await?;
        if !app.store.take_later(later.chat, later.user).await? {
            continue;
        }
        let reply = reminders::replies::later_question(&app.tree(), &later);
        // Delivered as a reminder is: privately if possible, else in the
        // group with a mention, and never twice.
        let as_reminder = Reminder {
            id: 0,
            plan: 0,
            chat: later.chat,
            user: later.user,
            name: later.name.clone(),
            lang: later.lang,
            kind: Kind::NewCode,
            due_at: later.due_at,
            deadline: None,
            thread: later.thread,
        };
        match send_reminder(bot, app, &as_reminder, &reply, private).await {
            Outcome::Sent => log::info!(
                "chat {} user {}: asked whether it got solved",
                later.chat,
                later.user
            ),
            Outcome::Undeliverable(e) | Outcome::MaybeSent(e) | Outcome::TryAgain(e) => {
                log::warn!(
                    "chat {} user {}: the next-day question did not go out ({e}); not asked again",
                    later.chat,
                    later.user
                );
            }
            Outcome::Postponed => log::info!(
                "chat {} user {}: shutting down; the next-day question was not asked",
                later.chat,
                later.user
            ),
        }
    }
    Ok(more)
}

/// Sends one plan's due reminders as one message: the latest of them (the
/// bot may have been down past several), or, if the window has closed
/// meanwhile, the note saying so. Returns false if it must be tried again.
async fn deliver(
    bot: &Outbox,
    app: &App,
    now: Instant,
    due: &[Reminder],
    state: &mut State,
) -> Result<bool, StoreError> {
    let Some(latest) = due.iter().max_by_key(|r| (r.due_at, r.id)) else {
        return Ok(true);
    };
    let ids: Vec<i64> = due.iter().map(|r| r.id).collect();
    let private = app.store.has_private_chat(latest.user).await?;
    let until = now + CLAIM_SECS;
    if !app.store.claim_reminders(&ids, &state.owner, until).await? {
        // Cancelled between the query and now.
        return Ok(true);
    }
    let closed = latest.kind == Kind::Window && latest.deadline.is_some_and(|d| d <= now);
    let reply = if closed {
        reminders::replies::window_closed_reply(&app.tree(), app.settings.timezone, latest)
    } else {
        reminders::replies::reminder_reply(&app.tree(), app.settings.timezone, now, latest)
    };
    let outcome = send_reminder(bot, app, latest, &reply, private).await;
    match &outcome {
        Outcome::Sent => {
            log::info!(
                "chat {} user {}: reminder {} sent{}",
                latest.chat,
                latest.user,
                latest.id,
                if closed { " (window closed)" } else { "" }
            );
            app.metrics.reminders_sent.inc();
            let fact = Fact::new(now, FactKind::ReminderSent, 0, "", latest.lang);
            if let Err(e) = app.store.record(&[fact]).await {
                log::error!("scheduler: recording a delivered reminder failed: {e}");
            }
        }
        Outcome::MaybeSent(e) => {
            log::warn!(
                "chat {} user {}: reminder {} may not have arrived ({e}); not sent again",
                latest.chat,
                latest.user,
                latest.id
            );
        }
        Outcome::Undeliverable(e) => {
            log::warn!(
                "chat {} user {}: reminder {} cannot be delivered ({e}); dropped",
                latest.chat,
                latest.user,
                latest.id
            );
        }
        Outcome::TryAgain(_) | Outcome::Postponed => {
            match &outcome {
                Outcome::TryAgain(e) => log::warn!(
                    "chat {} user {}: sending reminder {} failed ({e}); will try again",
                    latest.chat,
                    latest.user,
                    latest.id
                ),
                _ => log::info!(
                    "chat {} user {}: reminder {} not sent before shutting down; it will be",
                    latest.chat,
                    latest.user,
                    latest.id
                ),
            }
            if let Err(e) = app.store.release_reminders(&ids).await {
                state.unsent_claimed.extend(ids);
                return Err(e);
            }
            return Ok(false);
        }
    }
    if let Err(e) = app.store.finish_reminders(&ids).await {
        state.sent_unrecorded.extend(ids);
        return Err(e);
    }
    Ok(true)
}

enum Outcome {
    Sent,
    /// Telegram refused for good (blocked, removed from the group…).
    Undeliverable(RequestError),
    /// The connection broke after the request went out: it may have been
    /// delivered, so it counts as sent.
    MaybeSent(RequestError),
    /// A passing failure: the reminder was not sent.
    TryAgain(RequestError),
    /// Not sent because the bot is shutting down.
    Postponed,
}

/// To the person's private chat if they have one with the bot, otherwise
/// to the group they asked in (its forum topic too), mentioning them.
async fn send_reminder(
    bot: &Outbox,
    app: &App,
    reminder: &Reminder,
    reply: &Reply,
    private: bool,
) -> Outcome {
    let asked_in_private = SessionKey {
        chat: reminder.chat,
        user: reminder.user,
    }
    .is_private();
    let own_chat = i64::try_from(reminder.user).ok();
    let text = markup::to_html(&reply.text);
    if let Some(own) = own_chat.filter(|_| private || asked_in_private) {
        match post(bot, app, reminder, ChatId(own), None, &text, reply).await {
            Err(e) if cannot_reach_person(&e) && !asked_in_private => {
                log::info!(
                    "user {}: the private chat is closed ({e}); reminding in the group",
                    reminder.user
                );
                if let Err(e) = app.store.forget_private_chat(reminder.user).await {
                    log::error!("store: forgetting a private chat failed: {e}");
                }
            }
            result => return outcome(result),
        }
    }
    let mentioned = format!(
        "<a href=\"tg://user?id={}\">{}</a>\n{text}",
        reminder.user,
        markup::to_html(&reminder.name.replace("**", ""))
    );
    let thread = reminder.thread.map(|t| ThreadId(MessageId(t)));
    outcome(
        post(
            bot,
            app,
            reminder,
            ChatId(reminder.chat),
            thread,
            &mentioned,
            reply,
        )
        .await,
    )
}

/// Sends one reminder message and records whose its buttons are. A network
/// failure is not retried unless the connection was never made: the
/// message may have arrived, and a reminder is never sent twice.
async fn post(
    bot: &Outbox,
    app: &App,
    reminder: &Reminder,
    chat: ChatId,
    thread: Option<ThreadId>,
    html: &str,
    reply: &Reply,
) -> Result<Delivered, RequestError> {
    let ticket = bot.pacer.submit(chat.0, Priority::Background, None);
    let message = Outgoing {
        thread,
        keyboard: keyboard(reply),
        owner: Some((reminder.user, Posted::Note)),
        ..Outgoing::html(chat, html.to_string())
    };
    match bot.put(app, ticket, message).await? {
        Shown::Sent(_) | Shown::Edited => Ok(Delivered::Sent),
        Shown::Superseded | Shown::ShutDown => Ok(Delivered::NotSent),
    }
}

pub(super) fn cannot_reach_person(e: &RequestError) -> bool {
    matches!(
        e,
        RequestError::Api(
            ApiError::BotBlocked
                | ApiError::ChatNotFound
                | ApiError::UserDeactivated
                | ApiError::CantInitiateConversation
        )
    )
}

/// Whether a reminder went out.
enum Delivered {
    Sent,
    /// The bot shut down before its turn came: not sent.
    NotSent,
}

fn outcome(result: Result<Delivered, RequestError>) -> Outcome {
    let e = match result {
        Ok(Delivered::Sent) => return Outcome::Sent,
        Ok(Delivered::NotSent) => return Outcome::Postponed,
        Err(e) => e,
    };
    match &e {
        RequestError::RetryAfter(_) => Outcome::TryAgain(e),
        RequestError::Network(inner) if inner.is_connect() => Outcome::TryAgain(e),
        // The request may have reached Telegram before the reply was lost.
        RequestError::Network(_) | RequestError::Io(_) => Outcome::MaybeSent(e),
        _ => Outcome::Undeliverable(e),
    }
}

/// Replaces a closed session's menu with the note that it ended, which
/// takes its buttons away. A menu already gone or too old is left as is.
async fn end_menu(bot: &Outbox, app: &App, session: &IdleSession) {
    let Some(menu) = session.menu else {
        return;
    };
    let text = markup::to_html(app.tree().ui().text(UiText::SessionEnded, session.lang));
    let chat = ChatId(session.key.chat);
    let ticket = bot.pacer.submit(chat.0, Priority::Background, Some(menu));
    let ended = Outgoing {
        edit: Some((MessageId(menu), Gone::Leave)),
        ..Outgoing::html(chat, text)
    };
    match bot.put(app, ticket, ended).await {
        Ok(Shown::ShutDown) => log::warn!("chat {chat}: shutting down; an idle menu stays open"),
        Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => {}
        Err(RequestError::Api(ApiError::MessageCantBeEdited | ApiError::MessageToEditNotFound)) => {
        }
        Err(e) => log::warn!("chat {chat}: closing an idle session's menu failed: {e}"),
    }
}
