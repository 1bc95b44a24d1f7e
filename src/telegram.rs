//! The Telegram adapter: updates in, engine steps through the session store, inline menus out.
//!
//! Menus are inline keyboards edited in place, so a conversation stays one
//! tidy message. In groups every member has their own session, keyed by
//! (chat, person); a menu belongs to the member whose command it answers,
//! which the bot records by sending it as a reply to that command.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use teloxide::adaptors::Throttle;
use teloxide::adaptors::throttle::{Limits, Settings};
use teloxide::dispatching::{ShutdownToken, UpdateHandler};
use teloxide::error_handlers::LoggingErrorHandler;
use teloxide::prelude::*;
use teloxide::types::{
    BotCommand, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions,
    MaybeInaccessibleMessage, Me, MessageId, MessageKind, ParseMode, ReplyParameters, ThreadId,
    User, UserId,
};
use teloxide::update_listeners::Polling;
use teloxide::{ApiError, RequestError};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::callback::Action;
use crate::clock::{Clock, Instant};
use crate::tree::{RemindKind, Tree, UiCommand, UiText};
use crate::engine::{Command, Event, Reply, Session, arrival_question, render, step};
use crate::lang::Lang;
use crate::markup;
use crate::reminders::{self, Kind, NewReminder};
use crate::router::has_personal_data;
use crate::schedule;
use crate::store::{Posted, SessionKey, Store, StoreError};

/// The bot as handlers see it: every request goes through Telegram's rate
/// limits, and a 429 on a send is waited out and retried.
pub type TgBot = Throttle<Bot>;

type HandlerError = Box<dyn std::error::Error + Send + Sync>;
type HandlerResult = Result<(), HandlerError>;

/// What every handler shares.
pub struct App {
    pub tree: Arc<Tree>,
    pub store: Arc<dyn Store>,
    pub default_lang: Lang,
    /// Where "now" comes from.
    pub clock: Clock,
    /// The time zone times are shown in.
    pub timezone: chrono_tz::Tz,
    /// How long a conversation may stay idle before it is closed.
    pub session_idle_secs: i64,
    /// Wakes the scheduler when a reminder is set.
    pub(crate) wake: Notify,
}

/// The default idle time after which a conversation is closed: 24 hours.
pub const DEFAULT_SESSION_IDLE_SECS: i64 = 24 * 3600;

impl App {
    /// An app on the system clock, showing times in Asia/Shanghai and
    /// closing conversations idle for 24 hours.
    pub fn new(tree: Arc<Tree>, store: Arc<dyn Store>, default_lang: Lang) -> App {
        App {
            tree,
            store,
            default_lang,
            clock: Clock::System,
            timezone: reminders::DEFAULT_TIMEZONE,
            session_idle_secs: DEFAULT_SESSION_IDLE_SECS,
            wake: Notify::new(),
        }
    }
}

/// How the bot talks to the Bot API.
#[derive(Debug, Clone)]
pub struct Options {
    pub limits: Limits,
    /// The long-polling timeout for getUpdates.
    pub polling_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            limits: Limits::default(),
            polling_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("Telegram refused the token (TELOXIDE_TOKEN): {0}")]
    Unauthorized(RequestError),
    #[error("cannot reach the Bot API: {0}")]
    Unreachable(RequestError),
}

/// A bot that is polling for updates, and its scheduler.
pub struct Running {
    pub me: Me,
    token: ShutdownToken,
    handle: JoinHandle<()>,
    scheduler: schedule::Handle,
}

impl Running {
    /// The time of the scheduler's latest completed pass: reminders due
    /// then have been sent, and sessions idle then closed.
    pub fn settled(&self) -> watch::Receiver<Instant> {
        self.scheduler.settled()
    }

    /// Stops at once, as a crash would: nothing in flight is finished.
    pub fn abort(self) {
        self.handle.abort();
        self.scheduler.abort();
    }

    /// Stops polling, lets updates in flight finish, and returns when done.
    pub async fn stop(self) {
        self.scheduler.stop().await;
        // The dispatcher becomes stoppable once it polls, right after it
        // has asked Telegram who it is; until then, look again shortly.
        // Its task ends when dispatching has stopped, so that is what is
        // awaited: the future `shutdown` returns can miss its wake-up when
        // the dispatcher finishes before that future is first polled.
        loop {
            match self.token.shutdown() {
                Ok(_requested) => break,
                Err(_) if self.handle.is_finished() => break,
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        if let Err(e) = self.handle.await {
            log::error!("the dispatcher task failed: {e}");
        }
    }

    /// Runs until `signal` completes, then shuts down gracefully. Returns
    /// false if the dispatcher ended on its own first (it could not start).
    pub async fn run_until(mut self, signal: impl Future<Output = ()>) -> bool {
        tokio::select! {
            () = signal => {
                log::info!("shutting down: finishing updates in flight");
                self.stop().await;
                true
            }
            result = &mut self.handle => {
                if let Err(e) = result {
                    log::error!("the dispatcher task failed: {e}");
                }
                false
            }
        }
    }
}

/// Checks the token, registers the command menu, and starts polling.
pub async fn start(bot: Bot, app: Arc<App>, options: Options) -> Result<Running, StartError> {
    // Throttle paces requests to Telegram's limits; its own retry of a 429
    // is switched off so that every request goes through `retrying`, with
    // one policy and one cap on the wait.
    let bot =
        Throttle::spawn_with_settings(bot, Settings::default().limits(options.limits).no_retry());
    let me = bot.get_me().await.map_err(|e| match e {
        RequestError::Api(ApiError::InvalidToken) => StartError::Unauthorized(e),
        e => StartError::Unreachable(e),
    })?;
    if let Err(e) = register_commands(&bot, &app.tree).await {
        log::warn!("could not register the command menu: {e}");
    }
    let listener = Polling::builder(bot.clone())
        .timeout(options.polling_timeout)
        .build();
    let (bot_for_scheduler, app_for_scheduler) = (bot.clone(), app.clone());
    let mut dispatcher = Dispatcher::builder(bot, schema())
        .dependencies(dptree::deps![app])
        .distribution_function(|update: &Update| {
            Some((update.chat()?.id, update.from().map(|user| user.id)))
        })
        .default_handler(|update| async move {
            log::debug!("update {} is not for the dialogue; ignored", update.id.0);
        })
        .error_handler(LoggingErrorHandler::with_custom_text("a handler failed"))
        .build();
    let token = dispatcher.shutdown_token();
    let scheduler = schedule::spawn(bot_for_scheduler, app_for_scheduler);
    let handle = tokio::spawn(async move {
        let listener_errors = LoggingErrorHandler::with_custom_text("getting updates failed");
        if let Err(e) = dispatcher
            .try_dispatch_with_listener(listener, listener_errors)
            .await
        {
            log::error!("the dispatcher could not start: {e}");
        }
    });
    Ok(Running {
        me,
        token,
        handle,
        scheduler,
    })
}

/// The command menu, in the default language and per language code.
async fn register_commands(bot: &TgBot, tree: &Tree) -> Result<(), RequestError> {
    let commands = |lang: Lang| -> Vec<BotCommand> {
        UiCommand::ALL
            .iter()
            .map(|c| BotCommand::new(c.key(), tree.ui().command(*c, lang)))
            .collect()
    };
    bot.set_my_commands(commands(Lang::default())).await?;
    for lang in Lang::ALL {
        bot.set_my_commands(commands(lang))
            .language_code(lang.code())
            .await?;
    }
    Ok(())
}

/// The update handler tree: messages and button presses; everything else
/// (edits, channel posts, reactions, member updates…) is left alone.
pub fn schema() -> UpdateHandler<HandlerError> {
    dptree::entry()
        .branch(Update::filter_message().endpoint(on_message))
        .branch(Update::filter_callback_query().endpoint(on_press))
}

/// What a message asks of the bot.
#[derive(Debug, PartialEq, Eq)]
enum Incoming<'a> {
    Event(Event<'a>),
    /// Text in a group that mentions the bot or replies to it, with the
    /// mention taken out.
    GroupText(String),
    /// A command of ours from an anonymous group admin, who has no
    /// person to key a session by.
    AnonymousAdmin,
}

/// Decides whether a message is for the bot, and as what. Service
/// messages, other bots' commands and messages from bots are not; in
/// groups, only our commands and text that mentions or replies to the bot.
fn classify<'a>(msg: &'a Message, me: &User) -> Option<Incoming<'a>> {
    if !matches!(msg.kind, MessageKind::Common(_)) {
        return None;
    }
    let private = msg.chat.is_private();
    let anonymous = msg.sender_chat.is_some();
    if !anonymous && msg.from.as_ref().is_none_or(|user| user.is_bot) {
        return None;
    }
    let username = me.username.as_deref().unwrap_or_default();
    // A photo's caption (a screenshot of the error page, say) is read
    // like text in a private chat.
    let text = msg.text().or_else(|| msg.caption().filter(|_| private));
    let Some(text) = text else {
        return (private && !anonymous).then_some(Incoming::Event(Event::NonText));
    };
    let event = Event::from_line(text);
    let Event::Command(command) = event else {
        if anonymous {
            return None;
        }
        if private {
            return Some(Incoming::Event(event));
        }
        let replies_to_bot = msg
            .reply_to_message()
            .and_then(|m| m.from.as_ref())
            .is_some_and(|u| u.id == me.id);
        let (mentioned, rest) = without_mention(text, username);
        return (replies_to_bot || mentioned).then_some(Incoming::GroupText(rest));
    };
    let word = text.split_whitespace().next().unwrap_or("");
    let addressed = match word.split_once('@') {
        // In a private chat it can only be a slip: say it is not ours.
        Some((_, name)) if !name.eq_ignore_ascii_case(username) && private => {
            let unknown = word.trim_start_matches('/');
            return Some(Incoming::Event(Event::Command(Command::Unknown(unknown))));
        }
        Some((_, name)) if !name.eq_ignore_ascii_case(username) => return None,
        Some(_) => true,
        None => false,
    };
    // A bare unknown command in a group is most likely another bot's.
    if !private && !addressed && matches!(command, Command::Unknown(_)) {
        return None;
    }
    if anonymous {
        return (!private).then_some(Incoming::AnonymousAdmin);
    }
    Some(Incoming::Event(event))
}

/// Whether the text mentions `@username` as a whole word (not
/// `@username2`), and the text without those mentions.
fn without_mention(text: &str, username: &str) -> (bool, String) {
    if username.is_empty() {
        return (false, text.to_string());
    }
    let needle = format!("@{}", username.to_ascii_lowercase());
    let lower = text.to_ascii_lowercase();
    let mut found = false;
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    let mut from = 0;
    while let Some(at) = lower[from..].find(&needle).map(|i| from + i) {
        let end = at + needle.len();
        let whole = !lower[end..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if whole {
            found = true;
            out.push_str(&text[rest..at]);
            rest = end;
        }
        from = end;
    }
    out.push_str(&text[rest..]);
    (found, out)
}

/// Where the bot's answer goes: the chat, the forum topic, and in groups
/// the member's message it answers (which marks the menu as theirs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    pub(crate) chat: ChatId,
    pub(crate) thread: Option<ThreadId>,
    pub(crate) reply_to: Option<MessageId>,
    /// The person whose menus these are.
    pub(crate) owner: Option<UserId>,
}

impl Target {
    fn of(msg: &Message) -> Self {
        Target {
            chat: msg.chat.id,
            thread: msg.thread_id.filter(|_| msg.is_topic_message),
            reply_to: None,
            owner: None,
        }
    }
}

async fn on_message(bot: TgBot, msg: Message, me: Me, app: Arc<App>) -> HandlerResult {
    let Some(incoming) = classify(&msg, &me.user) else {
        return Ok(());
    };
    let mut target = Target::of(&msg);
    target.owner = msg.from.as_ref().map(|u| u.id);
    if !msg.chat.is_private() {
        target.reply_to = Some(msg.id);
    }
    let event = match &incoming {
        Incoming::Event(event) => *event,
        // "@bot /diagnose" is the command, addressed by mention.
        Incoming::GroupText(text) if text.trim_start().starts_with('/') => Event::from_line(text),
        Incoming::GroupText(text) => Event::GroupText(text),
        Incoming::AnonymousAdmin => {
            let text = app.tree.ui().text(UiText::AnonymousAdmin, app.default_lang);
            send(&bot, &app, target, &Reply::plain(text)).await?;
            return Ok(());
        }
    };
    let Some(user) = msg.from.as_ref() else {
        return Ok(());
    };
    let who = Speaker {
        key: SessionKey {
            chat: msg.chat.id.0,
            user: user.id.0,
        },
        user,
        thread: target.thread,
    };
    match advance(&app, who, event) {
        Ok(replies) => {
            for reply in &replies {
                send(&bot, &app, target, reply).await?;
            }
        }
        Err(lang) => {
            let apology = Reply::plain(app.tree.ui().text(UiText::StoreError, lang));
            send(&bot, &app, target, &apology).await?;
        }
    }
    Ok(())
}

async fn on_press(bot: TgBot, query: CallbackQuery, app: Arc<App>) -> HandlerResult {
    let ui = app.tree.ui();
    let (Some(data), Some(menu)) = (query.data.as_deref(), query.message.as_ref()) else {
        answer(&bot, &query, None).await;
        return Ok(());
    };
    let presser = &query.from;
    let chat = menu.chat();
    let original = menu.regular_message();
    let owner_command = original.and_then(|m| m.reply_to_message());
    let owner = if chat.is_private() {
        Some(presser.id)
    } else {
        group_menu_owner(&app, chat.id, menu.id(), owner_command)
    };
    if owner != Some(presser.id) {
        let lang = person_lang(&app, presser);
        let alert = ui.text(UiText::NotYourMenu, lang);
        answer(&bot, &query, Some(alert)).await;
        log::info!("chat {}: a press on another member's menu refused", chat.id);
        return Ok(());
    }
    let thread = original.and_then(|m| m.thread_id.filter(|_| m.is_topic_message));
    let who = Speaker {
        key: SessionKey {
            chat: chat.id.0,
            user: presser.id.0,
        },
        user: presser,
        thread,
    };
    let replies = match advance(&app, who, Event::Press(data)) {
        Ok(replies) => replies,
        Err(lang) => {
            answer(&bot, &query, Some(ui.text(UiText::StoreError, lang))).await;
            return Ok(());
        }
    };
    answer(&bot, &query, None).await;
    let target = Target {
        chat: chat.id,
        thread,
        reply_to: owner_command.map(|m| m.id),
        owner: Some(presser.id),
    };
    let mut replies = replies.iter();
    if let Some(first) = replies.next() {
        edit_or_send(&bot, &app, target, menu, first).await?;
    }
    for reply in replies {
        send(&bot, &app, target, reply).await?;
    }
    Ok(())
}

/// Whose a group menu is: as recorded when it was sent, else the author
/// of the command it answers. A menu whose owner cannot be told is nobody's,
/// so no one can take over another member's conversation through it.
fn group_menu_owner(
    app: &App,
    chat: ChatId,
    menu: MessageId,
    command: Option<&Message>,
) -> Option<UserId> {
    let recorded = app.store.menu_owner(chat.0, menu.0).unwrap_or_else(|e| {
        log::error!("chat {chat}: reading a menu's owner failed: {e}");
        None
    });
    recorded
        .map(UserId)
        .or_else(|| command.and_then(|m| m.from.as_ref()).map(|u| u.id))
}

/// The language for someone without a session yet: the one they chose
/// with /lang before, else their Telegram language.
fn person_lang(app: &App, user: &User) -> Lang {
    match app.store.person_lang(user.id.0) {
        Ok(Some(lang)) => lang,
        Ok(None) => Lang::from_language_code(user.language_code.as_deref(), app.default_lang),
        Err(e) => {
            log::error!("store: reading a language failed: {e}");
            Lang::from_language_code(user.language_code.as_deref(), app.default_lang)
        }
    }
}

/// Who is talking, and where: the forum topic is kept with reminders so
/// they come back to it.
#[derive(Debug, Clone, Copy)]
struct Speaker<'a> {
    key: SessionKey,
    user: &'a User,
    thread: Option<ThreadId>,
}

/// One step of one person's conversation, loaded from and saved to the
/// store, with the reminders it sets or cancels. On a store failure nothing
/// is saved, and the error carries the language to apologise in.
fn advance(app: &App, who: Speaker<'_>, event: Event<'_>) -> Result<Vec<Reply>, Lang> {
    let (key, user) = (who.key, who.user);
    let fallback = || Lang::from_language_code(user.language_code.as_deref(), app.default_lang);
    let session = match app.store.load(key) {
        Ok(Some(session)) => session,
        Ok(None) => Session::new(person_lang(app, user)),
        Err(e) => {
            log::error!(
                "chat {} user {}: loading the session failed: {e}",
                key.chat,
                key.user
            );
            return Err(fallback());
        }
    };
    let lang_before = session.lang;
    let (next, replies) = match converse(app, who, session, event) {
        Ok(done) => done,
        Err(e) => {
            log::error!(
                "chat {} user {}: the store failed during a step: {e}",
                key.chat,
                key.user
            );
            return Err(lang_before);
        }
    };
    if let Err(e) = app
        .store
        .save(key, &next, next.lang != lang_before, app.clock.now())
    {
        log::error!(
            "chat {} user {}: saving the session failed: {e}",
            key.chat,
            key.user
        );
        return Err(next.lang);
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
fn converse(
    app: &App,
    who: Speaker<'_>,
    mut session: Session,
    event: Event<'_>,
) -> Result<(Session, Vec<Reply>), StoreError> {
    let (tree, store, key) = (&app.tree, &app.store, who.key);
    let lang = session.lang;
    let ui = tree.ui();
    let now = app.clock.now();
    let replies = match event {
        Event::Command(Command::Reminders) => {
            // In the private chat, every reminder of the person's, wherever
            // it was set; in a group, those set there.
            let chat = (!key.is_private()).then_some(key.chat);
            let pending = store.pending_reminders(chat, key.user)?;
            vec![reminders::list_reply(tree, lang, app.timezone, &pending)]
        }
        // A typed time answers the open arrival question. Personal data
        // and text that is no attempt at a time go to the engine, which
        // warns about the one and routes the other.
        Event::Text(text) | Event::GroupText(text)
            if session.asking.is_some()
                && !has_personal_data(text)
                && reminders::looks_like_time(text) =>
        {
            let asked_at = session.asking.as_deref().and_then(|id| tree.get(id));
            match reminders::parse_arrival(text, now, app.timezone) {
                Some(arrival) => {
                    let mut replies = set_window(app, who, lang, arrival.at)?;
                    match arrival.other {
                        // A guessed morning or evening: say so, and keep
                        // the question open for a corrected time.
                        Some(other) => {
                            let time = |at| reminders::format_time(tree, lang, app.timezone, at);
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
                    .filter(|n| tree.node(*n).remind == Some(RemindKind::NewCode));
                let Some(node) = node else {
                    return Ok(step(tree, session, event));
                };
                let wait = i64::from(ui.reminders().new_code_wait_minutes) * 60;
                let due = now + wait;
                let reminder = new_reminder(who, lang, Kind::NewCode, due, None);
                let plan = store.set_reminders(key.chat, key.user, &[reminder])?;
                app.wake.notify_one();
                // The menu stays; the confirmation comes below it.
                vec![
                    render(tree, &session, node),
                    reminders::new_code_set_reply(tree, lang, app.timezone, plan, due),
                ]
            }
            Some(Action::Arrived { hours }) => {
                let menu = session.asking.take().and_then(|id| tree.get(&id));
                let arrived = now - i64::from(hours) * 3600;
                let mut replies = set_window(app, who, lang, arrived)?;
                // Answered on the arrival question: the menu it replaced
                // comes back, and the confirmation follows.
                if let Some(node) = menu {
                    replies.insert(0, render(tree, &session, node));
                }
                replies
            }
            Some(Action::Verified { plan }) => {
                store.cancel_plan(plan, key.user)?;
                vec![Reply::plain(ui.text(UiText::Verified, lang))]
            }
            Some(Action::CancelPlan { plan }) => {
                let cancelled = store.cancel_plan(plan, key.user)?;
                vec![cancelled_reply(app, lang, cancelled)]
            }
            Some(Action::KeepReminders) => {
                vec![Reply::plain(ui.text(UiText::RemindersKept, lang))]
            }
            Some(Action::DropReminders) => {
                let cancelled = store.cancel_reminders(key.chat, key.user)?;
                vec![cancelled_reply(app, lang, cancelled)]
            }
            _ => return Ok(step(tree, session, event)),
        },
        Event::Command(Command::Reset) => {
            let (next, replies) = step(tree, session, event);
            let pending = store.pending_reminders(Some(key.chat), key.user)?;
            if pending.is_empty() {
                return Ok((next, replies));
            }
            return Ok((
                next,
                vec![reminders::reset_ask_reply(tree, lang, pending.len())],
            ));
        }
        _ => return Ok(step(tree, session, event)),
    };
    Ok((session, replies))
}

/// "Cancelled", or, when nothing was left to cancel, that nothing is
/// pending.
fn cancelled_reply(app: &App, lang: Lang, cancelled: usize) -> Reply {
    let which = if cancelled > 0 {
        UiText::RemindersCancelled
    } else {
        UiText::RemindersNone
    };
    Reply::plain(app.tree.ui().text(which, lang))
}

/// Sets the reminders of a verification window for an SMS that arrived at
/// `arrived`, replacing the person's pending ones in this chat (a new SMS
/// makes the old window moot).
fn set_window(
    app: &App,
    who: Speaker<'_>,
    lang: Lang,
    arrived: Instant,
) -> Result<Vec<Reply>, StoreError> {
    let tree = &app.tree;
    let settings = tree.ui().reminders();
    let now = app.clock.now();
    let key = who.key;
    let Some(window) = reminders::window_plan(settings, arrived, now) else {
        let deadline = arrived + i64::from(settings.window_hours) * 3600;
        return Ok(vec![reminders::already_closed_reply(
            tree,
            lang,
            app.timezone,
            deadline,
        )]);
    };
    let new: Vec<NewReminder> = window
        .dues
        .iter()
        .map(|due| new_reminder(who, lang, Kind::Window, *due, Some(window.deadline)))
        .collect();
    let plan = app.store.set_reminders(key.chat, key.user, &new)?;
    app.wake.notify_one();
    Ok(vec![reminders::window_set_reply(
        tree,
        lang,
        app.timezone,
        now,
        (!new.is_empty()).then_some(plan),
        &window,
        key.is_private(),
    )])
}

fn new_reminder(
    who: Speaker<'_>,
    lang: Lang,
    kind: Kind,
    due_at: Instant,
    deadline: Option<Instant>,
) -> NewReminder {
    NewReminder {
        chat: who.key.chat,
        user: who.key.user,
        name: who.user.full_name(),
        lang,
        kind,
        due_at,
        deadline,
        thread: who.thread.map(|t| t.0.0),
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
        Event::Command(Command::Unknown(_)) => "unknown command",
        Event::Press(_) => "press",
        Event::Text(_) => "text",
        Event::GroupText(_) => "group text",
        Event::NonText => "non-text message",
    }
}

pub(crate) fn keyboard(reply: &Reply) -> Option<InlineKeyboardMarkup> {
    (!reply.buttons.is_empty()).then(|| {
        InlineKeyboardMarkup::new(reply.buttons.iter().map(|row| {
            row.iter()
                .map(|b| InlineKeyboardButton::callback(b.label.clone(), b.data.clone()))
                .collect::<Vec<_>>()
        }))
    })
}

pub(crate) const NO_PREVIEW: LinkPreviewOptions = LinkPreviewOptions {
    is_disabled: true,
    url: None,
    prefer_small_media: false,
    prefer_large_media: false,
    show_above_text: false,
};

/// Sends a reply as new messages: split where it is too long, the
/// buttons under the last piece.
pub(crate) async fn send(
    bot: &TgBot,
    app: &App,
    target: Target,
    reply: &Reply,
) -> Result<(), RequestError> {
    send_pieces(bot, app, target, &markup::split(&reply.text), reply).await
}

/// Sends the pieces of a reply, the buttons under the last one, and in a
/// group records whose menu that message is.
pub(crate) async fn send_pieces(
    bot: &TgBot,
    app: &App,
    target: Target,
    pieces: &[String],
    reply: &Reply,
) -> Result<(), RequestError> {
    let last = pieces.len() - 1;
    // A dialogue menu is what expiry closes; other messages with buttons
    // (reminders, confirmations, lists) are kept apart.
    let posted = if reply.node.is_some() {
        Posted::Menu
    } else {
        Posted::Note
    };
    for (i, piece) in pieces.iter().enumerate() {
        let html = markup::to_html(piece);
        let keyboard = if i == last { keyboard(reply) } else { None };
        let sent = retrying(|| {
            let mut request = bot
                .send_message(target.chat, html.clone())
                .parse_mode(ParseMode::Html)
                .link_preview_options(NO_PREVIEW.clone());
            if let Some(thread) = target.thread {
                request = request.message_thread_id(thread);
            }
            if let Some(id) = target.reply_to {
                request = request.reply_parameters(ReplyParameters {
                    allow_sending_without_reply: Some(true),
                    ..ReplyParameters::new(id)
                });
            }
            if let Some(keyboard) = &keyboard {
                request = request.reply_markup(keyboard.clone());
            }
            request.into_future()
        })
        .await?;
        if let (Some(owner), Some(_)) = (target.owner, &keyboard)
            && let Err(e) =
                app.store
                    .remember_menu(target.chat.0, sent.id.0, owner.0, posted, app.clock.now())
        {
            log::error!("chat {}: recording a menu's owner failed: {e}", target.chat);
        }
    }
    Ok(())
}

/// Shows a reply in place of the pressed menu; if that message cannot be
/// edited any more (too old, deleted), sends it anew.
async fn edit_or_send(
    bot: &TgBot,
    app: &App,
    target: Target,
    menu: &MaybeInaccessibleMessage,
    reply: &Reply,
) -> Result<(), RequestError> {
    let pieces = markup::split(&reply.text);
    let MaybeInaccessibleMessage::Regular(message) = menu else {
        return send_pieces(bot, app, target, &pieces, reply).await;
    };
    // A reply too long for one message replaces the menu with its first
    // piece and follows with the rest, the buttons under the last.
    let (first, rest) = pieces.split_first().expect("split gives a piece");
    let keyboard = if rest.is_empty() {
        keyboard(reply)
    } else {
        None
    };
    let html = markup::to_html(first);
    let result = retrying(|| {
        let mut request = bot
            .edit_message_text(target.chat, message.id, html.clone())
            .parse_mode(ParseMode::Html)
            .link_preview_options(NO_PREVIEW.clone());
        if let Some(keyboard) = &keyboard {
            request = request.reply_markup(keyboard.clone());
        }
        request.into_future()
    })
    .await;
    match result {
        Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => {}
        Err(RequestError::Api(ApiError::MessageCantBeEdited | ApiError::MessageToEditNotFound)) => {
            return send_pieces(bot, app, target, &pieces, reply).await;
        }
        Err(e) => return Err(e),
    }
    if !rest.is_empty() {
        send_pieces(bot, app, target, rest, reply).await?;
    }
    Ok(())
}

/// Answers a button press, so the person's client stops waiting; with a
/// text, as an alert. A failure here costs only the spinner: logged.
async fn answer(bot: &TgBot, query: &CallbackQuery, alert: Option<&str>) {
    let result = retrying(|| {
        let mut request = bot.answer_callback_query(query.id.clone());
        if let Some(text) = alert {
            request = request.text(text).show_alert(true);
        }
        request.into_future()
    })
    .await;
    if let Err(e) = result {
        log::warn!("answering a button press failed: {e}");
    }
}

/// How often a request is tried before its error is given up on.
const ATTEMPTS: u32 = 4;

/// The longest wait a 429 may impose before the request is given up on.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Sends a request, waiting out a 429 and retrying transient network
/// errors with growing pauses.
pub(crate) async fn retrying<T, F, Fut>(request: F) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RequestError>>,
{
    retry(request, true).await
}

/// Like `retrying`, but a network error is retried only when no
/// connection was made, so the request surely did not arrive: for sends
/// that must not happen twice.
pub(crate) async fn retrying_if_unsent<T, F, Fut>(request: F) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RequestError>>,
{
    retry(request, false).await
}

async fn retry<T, F, Fut>(mut request: F, after_any_network_error: bool) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RequestError>>,
{
    let mut attempt = 1;
    loop {
        let error = match request().await {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        let pause = match &error {
            RequestError::RetryAfter(after) if after.duration() <= MAX_RETRY_AFTER => {
                after.duration()
            }
            RequestError::Network(e) if after_any_network_error || e.is_connect() => {
                Duration::from_millis(250 * 2u64.pow(attempt))
            }
            RequestError::Io(_) if after_any_network_error => {
                Duration::from_millis(250 * 2u64.pow(attempt))
            }
            _ => return Err(error),
        };
        if attempt >= ATTEMPTS {
            return Err(error);
        }
        log::warn!("request failed ({error}); retrying in {pause:?}");
        tokio::time::sleep(pause).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(json: serde_json::Value) -> Message {
        serde_json::from_value(json).expect("a valid message")
    }

    fn group_text(text: &str) -> Message {
        message(serde_json::json!({
            "message_id": 1, "date": 0,
            "chat": {"id": -100, "type": "supergroup", "title": "g"},
            "from": {"id": 7, "is_bot": false, "first_name": "A"},
            "text": text,
        }))
    }

    fn private_text(text: &str) -> Message {
        message(serde_json::json!({
            "message_id": 1, "date": 0,
            "chat": {"id": 7, "type": "private", "first_name": "A"},
            "from": {"id": 7, "is_bot": false, "first_name": "A"},
            "text": text,
        }))
    }

    fn me() -> User {
        serde_json::from_value(serde_json::json!({
            "id": 42, "is_bot": true, "first_name": "Bot", "username": "icp_doctor_bot"
        }))
        .expect("a user")
    }

    #[test]
    fn group_text_mentioning_the_bot_is_taken_without_the_mention() {
        assert_eq!(
            classify(&group_text("@ICP_doctor_bot 验证码一直收不到"), &me()),
            Some(Incoming::GroupText(" 验证码一直收不到".to_string()))
        );
    }

    #[test]
    fn a_longer_username_is_not_a_mention_of_this_bot() {
        assert_eq!(
            classify(&group_text("@icp_doctor_bot2 收不到"), &me()),
            None
        );
        assert_eq!(
            without_mention(
                "hi @icp_doctor_bot, 收不到 @ICP_DOCTOR_BOT",
                "icp_doctor_bot"
            ),
            (true, "hi , 收不到 ".to_string())
        );
    }

    #[test]
    fn group_text_replying_to_the_bot_is_taken() {
        let mut msg = serde_json::to_value(group_text("还是没收到")).expect("json");
        msg["reply_to_message"] = serde_json::json!({
            "message_id": 0, "date": 0,
            "chat": {"id": -100, "type": "supergroup", "title": "g"},
            "from": {"id": 42, "is_bot": true, "first_name": "Bot"},
            "text": "menu",
        });
        let msg: Message = serde_json::from_value(msg).expect("a message");
        assert_eq!(
            classify(&msg, &me()),
            Some(Incoming::GroupText("还是没收到".to_string()))
        );
    }

    #[test]
    fn group_commands_for_this_bot_are_taken() {
        for text in [
            "/diagnose",
            "/diagnose@icp_doctor_bot",
            "/diagnose@ICP_Doctor_Bot now",
        ] {
            assert_eq!(
                classify(&group_text(text), &me()),
                Some(Incoming::Event(Event::Command(Command::Diagnose))),
                "{text}"
            );
        }
    }

    #[test]
    fn commands_for_other_bots_and_group_chatter_are_ignored() {
        for text in [
            "/diagnose@other_bot",
            "/weather",
            "hello all",
            "/start@other_bot x",
        ] {
            assert_eq!(classify(&group_text(text), &me()), None, "{text}");
        }
    }

    #[test]
    fn an_unknown_command_addressed_to_this_bot_is_answered() {
        assert_eq!(
            classify(&group_text("/weather@icp_doctor_bot"), &me()),
            Some(Incoming::Event(Event::Command(Command::Unknown("weather"))))
        );
    }

    #[test]
    fn in_private_another_bots_command_is_named_as_unknown() {
        assert_eq!(
            classify(&private_text("/diagnose@other_bot"), &me()),
            Some(Incoming::Event(Event::Command(Command::Unknown(
                "diagnose@other_bot"
            ))))
        );
    }

    #[test]
    fn in_private_everything_is_for_the_bot() {
        assert_eq!(
            classify(&private_text("my sms"), &me()),
            Some(Incoming::Event(Event::Text("my sms")))
        );
        assert_eq!(
            classify(&private_text("/weather"), &me()),
            Some(Incoming::Event(Event::Command(Command::Unknown("weather"))))
        );
    }
}
