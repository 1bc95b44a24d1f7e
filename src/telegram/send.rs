//! Showing replies in Telegram: sending (split where too long), editing a menu in place, keyboards, and answering presses.

use teloxide::adaptors::Throttle;
use teloxide::prelude::*;
use teloxide::types::{
    ChatId, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions,
    MaybeInaccessibleMessage, MessageId, ParseMode, ReplyParameters, ThreadId, UserId,
};
use teloxide::{ApiError, RequestError};

use super::retry::retrying;
use crate::app::App;
use crate::engine::Reply;
use crate::markup;
use crate::store::Posted;

/// The bot as handlers see it: every request goes through Telegram's rate
/// limits, and a 429 on a send is waited out and retried.
pub type TgBot = Throttle<Bot>;

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

/// Sends a reply as new messages: split where it is too long, the
/// buttons under the last piece.
pub(super) async fn send(
    bot: &TgBot,
    app: &App,
    target: Target,
    reply: &Reply,
) -> Result<(), RequestError> {
    send_pieces(bot, app, target, &markup::split(&reply.text), reply).await
}

/// Sends the pieces of a reply, the buttons under the last one, and in a
/// group records whose menu that message is.
pub(super) async fn send_pieces(
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
            && let Err(e) = app
                .store
                .remember_menu(target.chat.0, sent.id.0, owner.0, posted, app.clock.now())
                .await
        {
            log::error!("chat {}: recording a menu's owner failed: {e}", target.chat);
        }
    }
    Ok(())
}

/// Shows a reply in place of the pressed menu; if that message cannot be
/// edited any more (too old, deleted), sends it anew.
pub(super) async fn edit_or_send(
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
pub(super) async fn answer(bot: &TgBot, query: &CallbackQuery, alert: Option<&str>) {
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
