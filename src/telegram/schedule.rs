//! The scheduler: runs the features' scheduled work — reminders, next-day questions, pings about waiting cases — and closes conversations left idle.
//!
//! One task runs passes. A pass has the reminders' courier send what is
//! due and the next-day questions asked (both decide in their own folders;
//! they reach people through `Telegram` here), forgets what is past its
//! retention, then closes a batch of idle sessions, then sleeps until the
//! next reminder, a new one being set, or a few minutes — on the app's
//! clock, so tests move time by hand.

use std::sync::Arc;

use teloxide::types::{ChatId, MessageId, ThreadId};
use teloxide::{ApiError, RequestError};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::pacer::Priority;
use super::send::{Gone, Outbox, Outgoing, Shown, cannot_reach_person, keyboard};
use crate::app::{App, Delivery, Reach, Recipient};
use crate::cases::nudge;
use crate::clock::Instant;
use crate::engine::Reply;
use crate::markup;
use crate::reminders::courier::Courier;
use crate::stats;
use crate::store::{IdleSession, Posted, SessionKey, StoreError};
use crate::tree::UiText;

/// At most this many idle sessions closed per pass, and the pause before
/// the next batch: about ten menu edits a second, a third of what Telegram
/// allows a bot, so a mass expiry never crowds out live conversations.
const CLOSE_BATCH: usize = 50;
const CLOSE_PAUSE_SECS: i64 = 5;

/// With nothing due, the scheduler still looks again this often, for
/// sessions that have become idle.
const SWEEP_SECS: i64 = 5 * 60;

/// After a failure (the store down, Telegram unreachable), the next try.
pub(crate) const RETRY_SECS: i64 = 30;

/// The running scheduler.
pub(crate) struct Handle {
    stop: watch::Sender<bool>,
    settled: watch::Receiver<Instant>,
    task: JoinHandle<()>,
}

impl Handle {
    pub(crate) fn settled(&self) -> watch::Receiver<Instant> {
        self.settled.clone()
    }

    /// Lets the pass under way finish, then ends.
    pub(crate) async fn stop(self) {
        self.stop.send_replace(true);
        if let Err(e) = self.task.await {
            log::error!("the scheduler task failed: {e}");
        }
    }

    pub(crate) fn abort(self) {
        self.task.abort();
    }
}

/// Starts the scheduler.
pub(crate) fn spawn(bot: Outbox, app: Arc<App>) -> Handle {
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
struct State {
    /// The sender of reminders, with what it left.
    courier: Courier,
    /// When what is past its retention was last forgotten.
    pruned_at: Instant,
    /// When the open cases are next looked at for pings.
    nudges_at: Instant,
}

/// How often what is past its retention is forgotten.
pub(crate) const PRUNE_SECS: i64 = 3600;

async fn run(
    bot: Outbox,
    app: Arc<App>,
    mut stop: watch::Receiver<bool>,
    settled: watch::Sender<Instant>,
) {
    let mut state = State {
        courier: Courier::new(app.instance.clone()),
        pruned_at: Instant::MIN,
        nudges_at: Instant::MIN,
    };
    loop {
        let now = app.clock.now();
        let next = match pass(&bot, &app, now, &mut state).await {
            Ok(next) => next,
            Err(e) if e.is_outage() => {
                log::debug!("scheduler: the store failed ({e}); trying again in {RETRY_SECS} s");
                now + RETRY_SECS
            }
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
    let reach = Telegram {
        out: bot.clone(),
        app: Arc::clone(app),
    };
    let reminders = state.courier.round(&reach, app, now).await?;
    let more_later = stats::later::ask_due(&reach, app, now).await?;
    if now >= state.pruned_at + PRUNE_SECS {
        let gone = store.prune(now).await? + store.prune_facts(now).await?;
        if gone > 0 {
            log::info!("scheduler: {gone} row(s) past their retention forgotten");
        }
        state.pruned_at = now;
    }

    let more_idle = close_idle(bot, app, now).await?;
    if now >= state.nudges_at {
        let staff = super::cases::staff_chat(bot, app);
        let next = nudge::round(&staff, app, now, SWEEP_SECS).await?;
        state.nudges_at = next.unwrap_or(now + SWEEP_SECS);
    }

    // A failed send (Telegram unreachable) pauses delivery rather than
    // hammering at it; more due, or more to close, follow soon.
    let next = if reminders.retry_soon {
        now + RETRY_SECS
    } else if reminders.more || more_later {
        now
    } else if more_idle {
        now + CLOSE_PAUSE_SECS
    } else {
        store
            .next_due()
            .await?
            .map_or(now + SWEEP_SECS, |due| due.min(now + SWEEP_SECS))
            .min(state.nudges_at)
    };
    Ok(next.max(now))
}

/// Closes a batch of sessions left idle; returns whether more are idle.
async fn close_idle(bot: &Outbox, app: &Arc<App>, now: Instant) -> Result<bool, StoreError> {
    let store = &app.store;
    let idle = store
        .idle_sessions(
            now - app.settings.session_idle_secs,
            CLOSE_BATCH,
            &crate::conversation::KEEPS_OPEN,
        )
        .await?;
    let more = idle.len() == CLOSE_BATCH;
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
    match failure {
        Some(e) => Err(e),
        None => Ok(more),
    }
}

/// The adapter's way to a person outside a conversation.
#[derive(Clone)]
struct Telegram {
    out: Outbox,
    app: Arc<App>,
}

impl Reach for Telegram {
    /// To the person's private chat if they have one with the bot,
    /// otherwise to the group they asked in (its forum topic too),
    /// mentioning them.
    async fn deliver(&self, to: &Recipient, reply: &Reply, private: bool) -> Delivery {
        let asked_in_private = SessionKey {
            chat: to.chat,
            user: to.user,
        }
        .is_private();
        let own_chat = i64::try_from(to.user).ok();
        let text = markup::to_html(&reply.text);
        if let Some(own) = own_chat.filter(|_| private || asked_in_private) {
            match self.post(to, ChatId(own), None, &text, reply).await {
                Err(e) if cannot_reach_person(&e) && !asked_in_private => {
                    log::info!(
                        "user {}: the private chat is closed ({e}); reminding in the group",
                        to.user
                    );
                    if let Err(e) = self.app.store.forget_private_chat(to.user).await {
                        log::error!("store: forgetting a private chat failed: {e}");
                    }
                }
                result => return delivery(result),
            }
        }
        let mentioned = format!(
            "<a href=\"tg://user?id={}\">{}</a>\n{text}",
            to.user,
            markup::to_html(&to.name.replace("**", ""))
        );
        let thread = to.thread.map(|t| ThreadId(MessageId(t)));
        let chat = ChatId(to.chat);
        delivery(self.post(to, chat, thread, &mentioned, reply).await)
    }
}

impl Telegram {
    /// Sends one message and records whose its buttons are. A network
    /// failure is not retried unless the connection was never made: the
    /// message may have arrived, and it is never sent twice.
    async fn post(
        &self,
        to: &Recipient,
        chat: ChatId,
        thread: Option<ThreadId>,
        html: &str,
        reply: &Reply,
    ) -> Result<Shown, RequestError> {
        let ticket = self.out.pacer.submit(chat.0, Priority::Background, None);
        let message = Outgoing {
            thread,
            keyboard: keyboard(reply),
            owner: Some((to.user, Posted::Note)),
            ..Outgoing::html(chat, html.to_string())
        };
        self.out.put(&self.app, ticket, message).await
    }
}

fn delivery(result: Result<Shown, RequestError>) -> Delivery {
    let e = match result {
        Ok(Shown::Sent(_) | Shown::Edited) => return Delivery::Sent,
        Ok(Shown::Superseded | Shown::ShutDown) => return Delivery::Postponed,
        Err(e) => e,
    };
    match &e {
        RequestError::RetryAfter(_) => Delivery::TryAgain(e.to_string()),
        RequestError::Network(inner) if inner.is_connect() => Delivery::TryAgain(e.to_string()),
        // The request may have reached Telegram before the reply was lost.
        RequestError::Network(_) | RequestError::Io(_) => Delivery::MaybeSent(e.to_string()),
        _ => Delivery::Undeliverable(e.to_string()),
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
