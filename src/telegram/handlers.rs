//! The update handlers: a message or a press translated into a speaker and an event, the conversation's replies shown.

use std::sync::Arc;

use teloxide::prelude::*;
use teloxide::types::{Me, User};

use super::classify::{Incoming, classify};
use super::inbox::Receipt;
use super::pacer::Priority;
use super::send::{Outbox, Target, answer, answer_soon, deliver, deliver_link};
use super::{cases, team};
use crate::app::App;
use crate::callback::Action;
use crate::conversation::{self, Failed, Speaker};
use crate::engine::{Command, Event, Reply};
use crate::store::SessionKey;
use crate::tree::{UiButton, UiText};

pub(super) type HandlerError = Box<dyn std::error::Error + Send + Sync>;
type HandlerResult = Result<(), HandlerError>;

/// The speaker behind a Telegram user in a chat.
fn speaker(
    chat: ChatId,
    user: &User,
    thread: Option<teloxide::types::ThreadId>,
    receipt: &Receipt,
) -> Speaker {
    Speaker {
        key: SessionKey {
            chat: chat.0,
            user: user.id.0,
        },
        name: user.full_name(),
        language_code: user.language_code.clone(),
        thread: thread.map(|t| t.0.0),
        answering: Some(receipt.answering()),
    }
}

/// /stats or /graph.
fn is_team_command(event: &Event<'_>) -> bool {
    matches!(event, Event::Command(Command::Stats(_) | Command::Graph))
}

pub(super) async fn on_message(
    out: Outbox,
    msg: Message,
    me: Me,
    app: Arc<App>,
    receipt: Receipt,
) -> HandlerResult {
    // Whatever this message causes holds its receipt until delivered.
    let out = out.answering(&receipt);
    let incoming = classify(&msg, &me.user);
    // In the staff chat, the team's commands are answered; anything else
    // that is about a case goes to its person, and the rest is left alone.
    if app.settings.support_chat == Some(msg.chat.id.0) {
        let team_command = match &incoming {
            Some(Incoming::Event(event)) => is_team_command(event),
            Some(Incoming::GroupText(text)) => is_team_command(&Event::from_line(text)),
            _ => false,
        };
        if !team_command {
            cases::from_staff(&out, &app, &msg).await;
            return Ok(());
        }
    }
    let Some(incoming) = incoming else {
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
            let tree = app.tree();
            let text = tree
                .ui()
                .text(UiText::AnonymousAdmin, app.settings.default_lang);
            deliver(
                &out,
                &app,
                target,
                None,
                &[Reply::plain(text)],
                Priority::Person,
            );
            return Ok(());
        }
    };
    let Some(user) = msg.from.as_ref() else {
        return Ok(());
    };
    match event {
        Event::Command(Command::Stats(arg)) => {
            team::answer(&out, &app, target, user, Some(arg)).await;
            return Ok(());
        }
        Event::Command(Command::Graph) => {
            team::answer(&out, &app, target, user, None).await;
            return Ok(());
        }
        // While a case is open, what the person writes goes to the team.
        Event::Text(_) | Event::GroupText(_) | Event::NonText => {
            if let Some(case) = cases::open_case_for(&app, msg.chat.id, user).await {
                let text = match event {
                    Event::Text(text) | Event::GroupText(text) => Some(text),
                    _ => None,
                };
                // A photo's caption is passed on, the photo is not.
                let with_media = text.is_some() && msg.text().is_none();
                cases::from_person(&out, &app, &case, text, with_media, target).await;
                return Ok(());
            }
        }
        _ => {}
    }
    let who = speaker(msg.chat.id, user, target.thread, &receipt);
    let replies = match conversation::handle(&app, &who, event).await {
        Ok(replies) => replies,
        Err(Failed { apology }) => vec![Reply::plain(apology)],
    };
    // Come over from a busy group: what still waits there for them is
    // not sent, they go on here.
    if let Event::Command(Command::Start(Some(payload))) = event
        && msg.chat.is_private()
        && let Some(group) = conversation::payload_group(payload)
    {
        let taken = out.pacer.withdraw_person(group, user.id.0);
        if taken > 0 {
            log::info!(
                "chat {group} user {}: {taken} answer(s) waiting in the group not sent; gone on in private",
                user.id
            );
        }
    }
    if out.is_busy(msg.chat.id) {
        offer_private(&out, &app, &me, user, target);
    } else {
        out.pacer.room().await;
        deliver(&out, &app, target, None, &replies, Priority::Person);
    }
    Ok(())
}

pub(super) async fn on_press(
    out: Outbox,
    query: CallbackQuery,
    me: Me,
    app: Arc<App>,
    receipt: Receipt,
) -> HandlerResult {
    let out = out.answering(&receipt);
    let (Some(data), Some(menu)) = (query.data.as_deref(), query.message.as_ref()) else {
        answer(&out, &query, None).await;
        return Ok(());
    };
    let presser = &query.from;
    let chat = menu.chat();
    let action = Action::parse(data);
    // The staff's buttons on a case: for members of the staff chat.
    if app.settings.support_chat == Some(chat.id.0)
        && let Some(action @ (Action::CaseTake { .. } | Action::CaseClose { .. })) = action.clone()
    {
        cases::on_staff_press(&out, &app, &query, action).await;
        return Ok(());
    }
    let original = menu.regular_message();
    let owner_command = original.and_then(|m| m.reply_to_message());
    let owner = if chat.is_private() {
        Some(presser.id.0)
    } else {
        let author = owner_command.and_then(|m| m.from.as_ref()).map(|u| u.id.0);
        conversation::menu_owner(&app, chat.id.0, menu.id().0, author).await
    };
    if owner != Some(presser.id.0) {
        let code = presser.language_code.as_deref();
        let alert = conversation::not_yours(&app, presser.id.0, code).await;
        answer(&out, &query, Some(&alert)).await;
        log::info!("chat {}: a press on another member's menu refused", chat.id);
        return Ok(());
    }
    let thread = original.and_then(|m| m.thread_id.filter(|_| m.is_topic_message));
    let target = Target {
        chat: chat.id,
        thread,
        reply_to: owner_command.map(|m| m.id),
        owner: Some(presser.id),
    };
    match &action {
        Some(Action::HandoffConfirm { at }) => {
            cases::confirm(&out, &app, &query, at, target).await;
            return Ok(());
        }
        Some(Action::CaseClose { case }) => {
            cases::person_closes(&out, &app, &query, *case, target).await;
            return Ok(());
        }
        _ => {}
    }
    let who = speaker(chat.id, presser, thread, &receipt);
    let replies = match conversation::handle(&app, &who, Event::Press(action.as_ref())).await {
        Ok(replies) => replies,
        Err(Failed { apology }) => {
            answer(&out, &query, Some(&apology)).await;
            return Ok(());
        }
    };
    answer_soon(&out, &query.id);
    if out.is_busy(chat.id) {
        offer_private(&out, &app, &me, presser, target);
    } else {
        out.pacer.room().await;
        deliver(&out, &app, target, Some(menu), &replies, Priority::Person);
    }
    Ok(())
}

/// In a group whose lane is too long, the member's answer does not join
/// the queue. The group is told once, ahead of the queue, that whoever is
/// waiting can go on in private, with a button that opens each person's
/// own conversation there (the link names the group; the person is who
/// opens it).
fn offer_private(out: &Outbox, app: &Arc<App>, me: &Me, user: &User, target: Target) {
    if !out.tell_busy(target.chat, target.thread) {
        log::info!(
            "chat {} user {}: busy group, told already; answer not queued",
            target.chat,
            user.id
        );
        return;
    }
    let payload = conversation::group_payload(target.chat.0);
    let Ok(url) = url::Url::parse(&format!("https://t.me/{}?start={payload}", me.username()))
    else {
        return;
    };
    log::info!(
        "chat {} user {}: busy group; offering the private chat",
        target.chat,
        user.id
    );
    let (out, app, user) = (out.clone(), Arc::clone(app), user.clone());
    tokio::spawn(async move {
        let code = user.language_code.as_deref();
        let text = conversation::note(&app, user.id.0, code, UiText::BusyGroup).await;
        let lang = conversation::person_lang(&app, user.id.0, code).await;
        let tree = app.tree();
        let label = tree.ui().button(UiButton::ContinuePrivately, lang);
        deliver_link(&out, &app, target, &text, label, url);
    });
}
