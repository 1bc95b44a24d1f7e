//! Showing replies in Telegram: every message sent or edited through the pacer, split where too long, a menu edited in place, keyboards, and answering presses at once.

use std::future::Future;
use std::sync::Arc;

use teloxide::payloads::{AnswerCallbackQuery, EditMessageText, SendMessage, SendPhoto};
use teloxide::prelude::*;
use teloxide::types::{
    CallbackQueryId, ChatId, FileId, InlineKeyboardButton, InlineKeyboardMarkup, InputFile,
    LinkPreviewOptions, MaybeInaccessibleMessage, MessageId, ParseMode, ReplyParameters, ThreadId,
    UserId,
};
use teloxide::{ApiError, RequestError};

use tokio::time::Instant;

use super::call::{call, call_for_outcome};
use super::inbox::Receipt;
use super::pacer::{Pacer, Priority, Ticket, Turn};
use super::retry::{
    Next, WINDOW, answered, answering_press, failing, is_transient, is_uncertain, kind_of, next,
};
use crate::app::App;
use crate::engine::Reply;
use crate::markup;
use crate::store::Posted;
use crate::tree::UiText;

/// How the bot reaches Telegram: the client, and the pacer every message
/// sent or changed goes through.
#[derive(Clone)]
pub(crate) struct Outbox {
    pub(super) bot: Bot,
    pub(super) pacer: Pacer,
    /// The longest a group member's answer may wait in the group's lane
    /// before they are offered the private chat instead.
    pub(super) busy_wait: std::time::Duration,
    /// What waits in each worker's queue, counted at the door.
    pub(super) backlog: Arc<super::intake::Backlog>,
    /// The members of busy groups waiting to be told so, and those told.
    pub(super) busy: Arc<std::sync::Mutex<BusyNotes>>,
    /// The update whose answers this outbox carries, held until they are
    /// delivered.
    _receipt: Option<Receipt>,
}

/// A chat, and the forum topic in it if any.
type Place = (i64, Option<i32>);

/// How long a member told that their group is busy is not told again.
pub(crate) const TOLD_BUSY_FOR: std::time::Duration = std::time::Duration::from_secs(120);

/// The most members one busy note names; more wait for the next.
pub(crate) const NAMED_MOST: usize = 20;

/// A member of a busy group whose answer is not queued: the note that
/// offers them the private chat names them and replies to their message.
#[derive(Debug, Clone)]
pub(super) struct Addressee {
    pub(super) id: UserId,
    pub(super) name: String,
    pub(super) code: Option<String>,
    pub(super) message: Option<MessageId>,
}

/// Busy notes: the members waiting for one in each place, and the members
/// told lately.
#[derive(Default)]
pub(super) struct BusyNotes {
    waiting: std::collections::HashMap<Place, Vec<Addressee>>,
    told: std::collections::HashMap<(Place, u64), Instant>,
}

/// What became of a member who is to be told their group is busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gather {
    /// The first waiting: whoever gathers them sends the note.
    First,
    /// Joins a note about to go.
    Joined,
    /// Told lately: nothing more.
    Told,
}

impl Outbox {
    pub(super) fn new(bot: Bot, pacer: Pacer, busy_wait: std::time::Duration) -> Self {
        Outbox {
            bot,
            pacer,
            busy_wait,
            backlog: Arc::new(super::intake::Backlog::new(
                super::WORKERS as usize,
                super::WORKER_QUEUE,
            )),
            busy: Arc::default(),
            _receipt: None,
        }
    }

    /// This outbox, carrying `receipt`: every delivery queued through it
    /// holds the receipt until it is made.
    pub(super) fn answering(&self, receipt: &Receipt) -> Outbox {
        Outbox {
            _receipt: Some(receipt.clone()),
            ..self.clone()
        }
    }

    /// Whether an answer in `chat` would now wait longer than a member
    /// should: a group whose lane is long.
    pub(super) fn is_busy(&self, chat: ChatId) -> bool {
        chat.0 < 0 && self.pacer.expected_wait(chat.0) > self.busy_wait
    }

    /// Adds `who` to the members to be told that the group (the forum
    /// topic, in a forum) is busy; each is told in a note of their own
    /// time, not by one sent before they wrote.
    pub(super) fn gather_busy(
        &self,
        chat: ChatId,
        thread: Option<ThreadId>,
        who: Addressee,
    ) -> Gather {
        let place = (chat.0, thread.map(|t| t.0.0));
        let now = Instant::now();
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        busy.told.retain(|_, at| now - *at < TOLD_BUSY_FOR);
        if busy.told.contains_key(&(place, who.id.0)) {
            return Gather::Told;
        }
        let waiting = busy.waiting.entry(place).or_default();
        if waiting.iter().any(|w| w.id == who.id) {
            return Gather::Joined;
        }
        waiting.push(who);
        if waiting.len() == 1 {
            Gather::First
        } else {
            Gather::Joined
        }
    }

    /// The next members to name in a busy note (at most `NAMED_MOST`),
    /// counted as told from now.
    pub(super) fn take_busy(&self, chat: ChatId, thread: Option<ThreadId>) -> Vec<Addressee> {
        let place = (chat.0, thread.map(|t| t.0.0));
        let now = Instant::now();
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let Some(waiting) = busy.waiting.get_mut(&place) else {
            return Vec::new();
        };
        let taken: Vec<Addressee> = waiting.drain(..waiting.len().min(NAMED_MOST)).collect();
        if waiting.is_empty() {
            busy.waiting.remove(&place);
        }
        for who in &taken {
            busy.told.insert((place, who.id.0), now);
        }
        taken
    }
}

/// How a paced request ended, short of an error from Telegram.
#[derive(Debug)]
pub(super) enum Paced<T> {
    Done(T),
    /// A newer edit of the same message went out in its place.
    Superseded,
    /// The bot shut down before its turn came.
    ShutDown,
}

impl Outbox {
    /// Makes one request in `ticket`'s turn: a 429 waits in the chat's
    /// lane and goes again first, however often it comes; a transient
    /// failure is tried again through the retry window (a send only when
    /// no connection was made, so a message never goes out twice unasked:
    /// one that may have arrived is returned for the caller to resolve).
    async fn paced<T, F, Fut>(
        ticket: &mut Ticket,
        idempotent: bool,
        mut request: F,
    ) -> Result<Paced<T>, RequestError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, RequestError>>,
    {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            match ticket.turn().await {
                Turn::Go => {}
                Turn::Superseded => return Ok(Paced::Superseded),
                Turn::Closed => return Ok(Paced::ShutDown),
            }
            let error = match request().await {
                Ok(value) => {
                    answered();
                    if let Some(metrics) = ticket.metrics() {
                        metrics.replies.inc();
                    }
                    return Ok(Paced::Done(value));
                }
                Err(e) => e,
            };
            if let RequestError::RetryAfter(after) = &error {
                if let Some(metrics) = ticket.metrics() {
                    metrics.too_many.inc();
                }
                log::debug!(
                    "chat {}: 429, waiting {:?} before trying again",
                    ticket.chat(),
                    after.duration()
                );
                ticket.retry_after(after.duration());
                continue;
            }
            attempt += 1;
            match next(&error, attempt, started.elapsed(), WINDOW, idempotent) {
                Next::Again(pause) => {
                    failing(&error);
                    ticket.again(pause);
                }
                Next::Uncertain | Next::Expired | Next::Refused => return Err(error),
            }
        }
    }
}

/// Where the bot's answer goes: the chat, the forum topic, and in groups
/// the member's message it answers (which marks the menu as theirs).
#[derive(Debug, Clone, Copy)]
pub(super) struct Target {
    pub(super) chat: ChatId,
    pub(super) thread: Option<ThreadId>,
    pub(super) reply_to: Option<MessageId>,
    /// The person whose menus these are.
    pub(super) owner: Option<UserId>,
}

impl Target {
    pub(super) fn of(msg: &Message) -> Self {
        Target {
            chat: msg.chat.id,
            thread: msg.thread_id.filter(|_| msg.is_topic_message),
            reply_to: None,
            owner: None,
        }
    }
}

pub(super) fn keyboard(reply: &Reply) -> Option<InlineKeyboardMarkup> {
    (!reply.buttons.is_empty()).then(|| {
        InlineKeyboardMarkup::new(reply.buttons.iter().map(|row| {
            row.iter()
                .map(|b| InlineKeyboardButton::callback(b.label.clone(), b.data.clone()))
                .collect::<Vec<_>>()
        }))
    })
}

pub(super) const NO_PREVIEW: LinkPreviewOptions = LinkPreviewOptions {
    is_disabled: true,
    url: None,
    prefer_small_media: false,
    prefer_large_media: false,
    show_above_text: false,
};

/// One message to post or change, with its place in the chat's lane.
struct Step {
    ticket: Ticket,
    html: String,
    keyboard: Option<InlineKeyboardMarkup>,
    /// The menu message to edit in place; sent anew when it cannot be.
    edit: Option<MessageId>,
    /// Whose menu a message with buttons is, and what kind.
    posted: Posted,
}

/// Queues `replies` for `target`, the first in place of `menu` when given,
/// and delivers them in the background, in order. Each message takes its
/// place in the chat's lane now, so the replies to one update never
/// overtake those to an earlier one; the caller does not wait for them.
pub(super) fn deliver(
    out: &Outbox,
    app: &Arc<App>,
    target: Target,
    menu: Option<&MaybeInaccessibleMessage>,
    replies: &[Reply],
    priority: Priority,
) {
    let mut steps = Vec::new();
    let mut edit = match menu {
        Some(MaybeInaccessibleMessage::Regular(message)) => Some(message.id),
        _ => None,
    };
    for reply in replies {
        // A dialogue menu is what expiry closes; other messages with
        // buttons (reminders, confirmations, lists) are kept apart.
        let posted = if reply.node.is_some() {
            Posted::Menu
        } else {
            Posted::Note
        };
        let pieces = markup::split(&reply.text);
        let last = pieces.len() - 1;
        for (i, piece) in pieces.iter().enumerate() {
            let this_edit = edit.take();
            let (chat, edit) = (target.chat.0, this_edit.map(|m| m.0));
            steps.push(Step {
                ticket: match target.owner {
                    Some(owner) => out.pacer.submit_for(chat, priority, edit, owner.0),
                    None => out.pacer.submit(chat, priority, edit),
                },
                html: markup::to_html(piece),
                keyboard: if i == last { keyboard(reply) } else { None },
                edit: this_edit,
                posted,
            });
        }
    }
    if steps.is_empty() {
        return;
    }
    let (out, app) = (out.clone(), Arc::clone(app));
    tokio::spawn(async move {
        for step in steps {
            show(&out, &app, target, step).await;
        }
    });
}

/// Sends `text`, naming `named` (each a mention that notifies them), with
/// one button opening `url`, ahead of everything waiting in the chat's
/// lane.
pub(super) fn deliver_link(
    out: &Outbox,
    app: &Arc<App>,
    target: Target,
    (text, named): (&str, &[Addressee]),
    label: &str,
    url: url::Url,
) {
    let mut html = markup::to_html(text);
    let mentions: Vec<String> = named
        .iter()
        .map(|who| {
            format!(
                "<a href=\"tg://user?id={}\">{}</a>",
                who.id.0,
                markup::escape(&who.name)
            )
        })
        .collect();
    if !mentions.is_empty() {
        html.push_str("\n\n");
        html.push_str(&mentions.join(", "));
    }
    let step = Step {
        ticket: out.pacer.submit_first(target.chat.0, Priority::Person),
        html,
        keyboard: Some(InlineKeyboardMarkup::new([[InlineKeyboardButton::url(
            label.to_string(),
            url,
        )]])),
        edit: None,
        posted: Posted::Note,
    };
    let (out, app) = (out.clone(), Arc::clone(app));
    let target = Target {
        owner: None,
        ..target
    };
    tokio::spawn(async move { show(&out, &app, target, step).await });
}

/// Makes one step's request; logs, once, a reply given up.
async fn show(out: &Outbox, app: &App, target: Target, step: Step) {
    let message = Outgoing {
        chat: target.chat,
        thread: target.thread,
        reply_to: target.reply_to,
        body: Body::Html(step.html),
        keyboard: step.keyboard,
        edit: step.edit.map(|m| (m, Gone::SendAnew)),
        owner: target.owner.map(|o| (o.0, step.posted)),
    };
    let chat = target.chat;
    match out.put(app, step.ticket, message).await {
        Ok(Shown::Sent(_) | Shown::Edited) => {}
        Ok(Shown::Superseded) => log::debug!("chat {chat}: a newer message took this one's place"),
        Ok(Shown::ShutDown) => log::warn!("chat {chat}: shutting down; a reply was not shown"),
        Err(e) => {
            app.metrics.given_up.inc();
            log::warn!("chat {chat}: a reply could not be shown and is given up: {e}");
            // Lost on the way, not refused: the person hears of it at
            // their next message instead of never.
            if is_transient(&e)
                && let Some(key) = person_of(target.chat, target.owner)
                && let Err(e) = app.store.mark_missed(key, app.clock.now()).await
            {
                log::error!("chat {chat}: recording a reply given up failed: {e}");
            }
        }
    }
}

/// Whose conversation a message in `chat` belongs to: the owner of a
/// group's menu, or the person of a private chat.
fn person_of(chat: ChatId, owner: Option<UserId>) -> Option<crate::store::SessionKey> {
    let user = match owner {
        Some(owner) => owner.0,
        None if chat.0 > 0 => chat.0 as u64,
        None => return None,
    };
    Some(crate::store::SessionKey { chat: chat.0, user })
}

/// What the one sender sends: a text, a file, or a photo already on
/// Telegram's servers.
pub(super) enum Body {
    /// Telegram's HTML.
    Html(String),
    Document {
        name: String,
        bytes: Vec<u8>,
    },
    /// A photo by its file id, sent on without downloading it, with a
    /// caption in Telegram's HTML.
    Photo {
        file_id: String,
        caption: Option<String>,
    },
}

/// What becomes of an edit whose message can no longer be changed (too
/// old, or deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gone {
    /// Sent as a new message, in the same place in the lane: a menu.
    SendAnew,
    /// Left as it is.
    Leave,
}

/// One message for the one sender: where it goes, what it says, and whose
/// its buttons are.
pub(super) struct Outgoing {
    pub(super) chat: ChatId,
    pub(super) thread: Option<ThreadId>,
    /// The message it answers (which marks a group menu as its author's).
    pub(super) reply_to: Option<MessageId>,
    pub(super) body: Body,
    pub(super) keyboard: Option<InlineKeyboardMarkup>,
    /// The message to change in place instead of sending, and what to do
    /// when it can no longer be changed.
    pub(super) edit: Option<(MessageId, Gone)>,
    /// Whose buttons a sent message carries, and what kind of message it
    /// is: recorded once it is sent, so a press on it is known to be theirs.
    pub(super) owner: Option<(u64, Posted)>,
}

impl Outgoing {
    /// A text to `chat`, with nothing else.
    pub(super) fn html(chat: ChatId, html: String) -> Outgoing {
        Outgoing {
            chat,
            thread: None,
            reply_to: None,
            body: Body::Html(html),
            keyboard: None,
            edit: None,
            owner: None,
        }
    }
}

/// How a message was shown, short of an error from Telegram.
#[derive(Debug)]
pub(super) enum Shown {
    Sent(Box<Message>),
    Edited,
    /// A newer edit of the same message went out in its place.
    Superseded,
    /// The bot shut down before its turn came.
    ShutDown,
}

impl Outbox {
    /// The one way a message reaches Telegram: sent, or changed in place,
    /// in `ticket`'s turn (paced, a 429 waited out, a network error tried
    /// again — a send only when no connection was made), and, carrying
    /// buttons, recorded as its owner's once sent.
    pub(super) async fn put(
        &self,
        app: &App,
        mut ticket: Ticket,
        message: Outgoing,
    ) -> Result<Shown, RequestError> {
        if let Some((id, gone)) = message.edit {
            match self.edit(&mut ticket, &message, id).await {
                Err(RequestError::Api(
                    ApiError::MessageCantBeEdited | ApiError::MessageToEditNotFound,
                )) if gone == Gone::SendAnew => {
                    log::info!(
                        "chat {}: message {} can no longer be edited; sent anew",
                        message.chat,
                        id.0
                    );
                    ticket.again_as_send();
                }
                Err(RequestError::Api(ApiError::MessageNotModified)) => return Ok(Shown::Edited),
                done => return done,
            }
        }
        let sent = match self.send(&mut ticket, &message, None).await {
            // A text: a file sent twice would carry no word of why.
            Err(e) if is_uncertain(&e) && matches!(message.body, Body::Html(_)) => {
                // It may have arrived, or not: sent once more, saying so,
                // rather than leaving the person with nothing.
                log::warn!(
                    "chat {}: a message may not have arrived ({}); sent again, marked",
                    message.chat,
                    kind_of(&e)
                );
                let marker = self.marker(app, &message).await;
                ticket.again(std::time::Duration::ZERO);
                self.send(&mut ticket, &message, marker.as_deref()).await
            }
            sent => sent,
        };
        // The chat's lane is free for its next message; a stop still
        // waits until the owner is recorded.
        let _recording = self.pacer.hold();
        drop(ticket);
        if let (Ok(Shown::Sent(sent)), Some((owner, posted)), Some(_)) =
            (&sent, message.owner, &message.keyboard)
            && let Err(e) = app
                .store
                .remember_menu(message.chat.0, sent.id.0, owner, posted, app.clock.now())
                .await
        {
            log::error!(
                "chat {}: recording a menu's owner failed: {e}",
                message.chat
            );
        }
        sent
    }

    async fn edit(
        &self,
        ticket: &mut Ticket,
        message: &Outgoing,
        id: MessageId,
    ) -> Result<Shown, RequestError> {
        let Body::Html(html) = &message.body else {
            return Ok(Shown::Edited);
        };
        let edited = Outbox::paced(ticket, true, || {
            let mut request = EditMessageText::new(message.chat, id, html.clone())
                .parse_mode(ParseMode::Html)
                .link_preview_options(NO_PREVIEW.clone());
            if let Some(keyboard) = &message.keyboard {
                request = request.reply_markup(keyboard.clone());
            }
            call_for_outcome(&self.bot, request)
        })
        .await?;
        Ok(match edited {
            Paced::Done(_) => Shown::Edited,
            Paced::Superseded => Shown::Superseded,
            Paced::ShutDown => Shown::ShutDown,
        })
    }

    /// The line that marks a message sent again, in its person's
    /// language, as HTML to put above it; `None` where it would not fit.
    async fn marker(&self, app: &App, message: &Outgoing) -> Option<String> {
        let Body::Html(html) = &message.body else {
            return None;
        };
        let owner = message.owner.map(|(owner, _)| UserId(owner));
        // The language of their conversation here, else theirs.
        let lang = match person_of(message.chat, owner) {
            Some(key) => match app.store.load(key).await {
                Ok(Some(session)) => session.lang,
                _ => crate::conversation::person_lang(app, key.user, None).await,
            },
            None => app.settings.default_lang,
        };
        let marker = markup::to_html(app.tree().ui().text(UiText::SentAgain, lang));
        // Telegram counts the text without its tags; the HTML's own
        // length is never less, so this cannot push it over the limit.
        let units = |s: &str| s.encode_utf16().count();
        (units(&marker) + 2 + units(html) <= markup::MAX_TEXT_CHARS).then(|| marker + "\n\n")
    }

    /// Sends `message`, with `marker` above its text when given.
    async fn send(
        &self,
        ticket: &mut Ticket,
        message: &Outgoing,
        marker: Option<&str>,
    ) -> Result<Shown, RequestError> {
        let reply = message.reply_to.map(|id| ReplyParameters {
            allow_sending_without_reply: Some(true),
            ..ReplyParameters::new(id)
        });
        // Where a message goes and what it carries besides its body, the
        // same for a text and a file (their requests are different types).
        macro_rules! placed {
            ($request:expr) => {{
                let mut request = $request;
                if let Some(thread) = message.thread {
                    request = request.message_thread_id(thread);
                }
                if let Some(reply) = &reply {
                    request = request.reply_parameters(reply.clone());
                }
                if let Some(keyboard) = &message.keyboard {
                    request = request.reply_markup(keyboard.clone());
                }
                request
            }};
        }
        let sent = match &message.body {
            Body::Html(html) => {
                let html = match marker {
                    Some(marker) => format!("{marker}{html}"),
                    None => html.clone(),
                };
                Outbox::paced(ticket, false, || {
                    let request = placed!(
                        SendMessage::new(message.chat, html.clone())
                            .parse_mode(ParseMode::Html)
                            .link_preview_options(NO_PREVIEW.clone())
                    );
                    call(&self.bot, request)
                })
                .await?
            }
            Body::Document { name, bytes } => {
                Outbox::paced(ticket, false, || {
                    let file = InputFile::memory(bytes.clone()).file_name(name.clone());
                    // A file goes as multipart, through teloxide's own
                    // client (which waits 10 s after a 5xx).
                    placed!(self.bot.send_document(message.chat, file)).into_future()
                })
                .await?
            }
            Body::Photo { file_id, caption } => {
                Outbox::paced(ticket, false, || {
                    let photo = InputFile::file_id(FileId(file_id.clone()));
                    let mut request = SendPhoto::new(message.chat, photo);
                    if let Some(caption) = caption {
                        request = request.caption(caption.clone()).parse_mode(ParseMode::Html);
                    }
                    // A file id is a string: the request goes as JSON.
                    call(&self.bot, placed!(request))
                })
                .await?
            }
        };
        Ok(match sent {
            Paced::Done(sent) => Shown::Sent(Box::new(sent)),
            Paced::Superseded => Shown::Superseded,
            Paced::ShutDown => Shown::ShutDown,
        })
    }
}

/// Answers a button press, so the person's client stops waiting; with a
/// text, as an alert. A failure here costs only the spinner: logged.
pub(super) async fn answer(out: &Outbox, query: &CallbackQuery, alert: Option<&str>) {
    answer_id(out, &query.id, alert).await;
}

/// Answers the press `id` without an alert, in the background: the
/// handler goes on with the reply meanwhile.
pub(super) fn answer_soon(out: &Outbox, id: &CallbackQueryId) {
    let (out, id) = (out.clone(), id.clone());
    tokio::spawn(async move { answer_id(&out, &id, None).await });
}

async fn answer_id(out: &Outbox, id: &CallbackQueryId, alert: Option<&str>) {
    let result = answering_press(|| {
        let mut request = AnswerCallbackQuery::new(id.clone());
        if let Some(text) = alert {
            request = request.text(text).show_alert(true);
        }
        call(&out.bot, request)
    })
    .await;
    if let Err(e) = result {
        log::warn!("answering a button press failed: {e}");
    }
}

/// Whether a send failed because the person can never be reached in that
/// chat: they blocked the bot, left, or never started it.
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
