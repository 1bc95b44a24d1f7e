//! The update handlers: a message or a press translated into a speaker and an event, the conversation's replies shown.

use std::sync::Arc;

use teloxide::prelude::*;
use teloxide::types::{Me, User};

use super::classify::{Incoming, classify};
use super::inbox::Receipt;
use super::pacer::Priority;
use super::send::{Addressee, Gather, Outbox, Target, answer, answer_soon, deliver, deliver_link};
use super::shared::{Msg, Query};
use super::{cases, team};
use crate::app::App;
use crate::callback::Action;
use crate::cases::Case;
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

/// Where a message goes, decided once at the door (`schema` branches on
/// it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    /// Not for the bot: a service message, another bot's command, text in
    /// a group that is not addressed to the bot.
    Ignore,
    /// In the staff chat, and not a team command: about a case, or left
    /// alone.
    Staff,
    /// A command of ours from an anonymous group admin, who has no person
    /// to key a session by.
    AnonymousAdmin,
    /// /stats (with its argument) or /graph, for the team.
    Team(TeamAsk),
    /// What a person wrote or sent: to their open case if they have one,
    /// else to the conversation.
    Words,
    /// `/case`: how the person's case stands.
    MyCase,
    /// A staff command (`/reply`, `/send`, `/canned`) outside the staff
    /// chat: told where it belongs.
    StaffOnly,
    /// Any other command of ours, for the conversation.
    Command,
}

/// A team command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TeamAsk {
    Stats(Option<String>),
    Graph,
    /// `/id`: this chat's id and the sender's, for setting up
    /// `SUPPORT_CHAT_ID` and `ADMIN_IDS`; answered to anyone (it tells
    /// them only what their own client knows).
    Ids,
}

/// The event a message is, if it is for the bot: a command addressed by
/// mention ("@bot /diagnose") is the command.
fn event_of<'a>(incoming: &'a Incoming<'a>) -> Option<Event<'a>> {
    match incoming {
        Incoming::Event(event) => Some(*event),
        Incoming::GroupText(text) if text.trim_start().starts_with('/') => {
            Some(Event::from_line(text))
        }
        Incoming::GroupText(text) => Some(Event::GroupText(text)),
        Incoming::AnonymousAdmin => None,
    }
}

/// Where `msg` goes.
pub(super) fn route(msg: Msg, me: Me, app: Arc<App>) -> Route {
    let incoming = classify(&msg, &me.user);
    let event = incoming.as_ref().and_then(event_of);
    let team = match event {
        Some(Event::Command(Command::Stats(arg))) => Some(TeamAsk::Stats(arg.map(str::to_string))),
        Some(Event::Command(Command::Graph)) => Some(TeamAsk::Graph),
        Some(Event::Command(Command::Unknown("id"))) => Some(TeamAsk::Ids),
        _ => None,
    };
    // In the staff chat, the team's commands are answered; anything else
    // that is about a case goes to its person, and the rest is left alone.
    if app.settings.support_chat == Some(msg.chat.id.0) && team.is_none() {
        return Route::Staff;
    }
    match (&incoming, event, team) {
        (None, ..) => Route::Ignore,
        (Some(Incoming::AnonymousAdmin), ..) => Route::AnonymousAdmin,
        _ if msg.from.is_none() => Route::Ignore,
        (_, _, Some(team)) => Route::Team(team),
        (_, Some(Event::Command(Command::Unknown(word))), _) => {
            match word.to_ascii_lowercase().as_str() {
                "case" => Route::MyCase,
                "reply" | "send" | "canned" => Route::StaffOnly,
                _ => Route::Command,
            }
        }
        (_, Some(Event::Text(_) | Event::GroupText(_) | Event::NonText), _) => Route::Words,
        (_, Some(_), _) => Route::Command,
        (_, None, _) => Route::Ignore,
    }
}

/// Where the answer to `msg` goes: in groups, under it, which marks the
/// menu as its author's.
fn target_of(msg: &Message) -> Target {
    let mut target = Target::of(msg);
    target.owner = msg.from.as_ref().map(|u| u.id);
    if !msg.chat.is_private() {
        target.reply_to = Some(msg.id);
    }
    target
}

/// A message in the staff chat.
pub(super) async fn on_staff(
    out: Outbox,
    msg: Msg,
    app: Arc<App>,
    receipt: Receipt,
) -> HandlerResult {
    cases::from_staff(&out.answering(&receipt), &app, &msg).await;
    Ok(())
}

/// An anonymous admin is told how to get a conversation of their own.
pub(super) async fn on_anonymous_admin(
    out: Outbox,
    msg: Msg,
    app: Arc<App>,
    receipt: Receipt,
) -> HandlerResult {
    let tree = app.tree();
    let text = tree
        .ui()
        .text(UiText::AnonymousAdmin, app.settings.default_lang);
    let out = out.answering(&receipt);
    let reply = [Reply::plain(text)];
    deliver(&out, &app, target_of(&msg), None, &reply, Priority::Person);
    Ok(())
}

/// /stats or /graph.
pub(super) async fn on_team(
    out: Outbox,
    msg: Msg,
    app: Arc<App>,
    receipt: Receipt,
    ask: TeamAsk,
) -> HandlerResult {
    let (out, target) = (out.answering(&receipt), target_of(&msg));
    let Some(user) = msg.from.as_ref() else {
        return Ok(());
    };
    let stats = match &ask {
        TeamAsk::Stats(arg) => Some(arg.as_deref()),
        TeamAsk::Graph => None,
        TeamAsk::Ids => {
            let code = user.language_code.as_deref();
            let template = conversation::note(&app, user.id.0, code, UiText::ChatIds).await;
            let (chat, who) = (msg.chat.id.0.to_string(), user.id.0.to_string());
            let text = crate::markup::fill(&template, &[("chat", &chat), ("user", &who)]);
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
    team::answer(&out, &app, target, user, stats).await;
    Ok(())
}

/// The open case of whoever wrote `msg`, if they have one; or the case
/// they closed a moment ago, which text of theirs reopens.
pub(super) async fn open_case(msg: Msg, app: Arc<App>) -> Option<Case> {
    let case = cases::open_case_for(&app, msg.chat.id, msg.from.as_ref()?).await?;
    let words = msg
        .text()
        .or(msg.caption())
        .is_some_and(|t| !t.trim().is_empty());
    (!case.closed || words).then_some(case)
}

/// `/case`, or a staff command where it does not belong.
pub(super) async fn on_desk(
    out: Outbox,
    msg: Msg,
    app: Arc<App>,
    receipt: Receipt,
    route: Route,
) -> HandlerResult {
    let (out, target) = (out.answering(&receipt), target_of(&msg));
    if route == Route::MyCase {
        cases::my_case(&out, &app, &msg, target).await;
        return Ok(());
    }
    let Some(user) = msg.from.as_ref() else {
        return Ok(());
    };
    let code = user.language_code.as_deref();
    let text = conversation::note(&app, user.id.0, code, UiText::StaffOnly).await;
    let reply = [Reply::plain(text)];
    deliver(&out, &app, target, None, &reply, Priority::Person);
    Ok(())
}

/// While a case is open, what the person writes goes to the team.
pub(super) async fn on_case_words(
    out: Outbox,
    msg: Msg,
    me: Me,
    app: Arc<App>,
    receipt: Receipt,
    case: Case,
) -> HandlerResult {
    let (out, target) = (out.answering(&receipt), target_of(&msg));
    // A photo waits for the person's consent; other media are answered.
    if cases::photos::from_person(&out, &app, &case, &msg, target).await {
        return Ok(());
    }
    let incoming = classify(&msg, &me.user);
    let text = match incoming.as_ref().and_then(event_of) {
        Some(Event::Text(text) | Event::GroupText(text)) => Some(text),
        _ => None,
    };
    // Another file's caption is passed on, the file is not.
    let with_media = text.is_some() && msg.text().is_none();
    cases::from_person(&out, &app, &case, text, with_media, target).await;
    Ok(())
}

/// A person's message to the conversation.
pub(super) async fn on_message(
    out: Outbox,
    msg: Msg,
    me: Me,
    app: Arc<App>,
    receipt: Receipt,
) -> HandlerResult {
    // Whatever this message causes holds its receipt until delivered.
    let out = out.answering(&receipt);
    let incoming = classify(&msg, &me.user);
    let (Some(event), Some(user)) = (incoming.as_ref().and_then(event_of), msg.from.as_ref())
    else {
        return Ok(());
    };
    let target = target_of(&msg);
    let who = speaker(msg.chat.id, user, target.thread, &receipt);
    let replies = match conversation::handle(&app, &who, event).await {
        Ok(replies) => replies,
        Err(Failed { apology }) => vec![Reply::plain(apology)],
    };
    let replies = cases::photos::no_case(&app, &msg, replies).await;
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

/// A press's button data, read once at the door: `None` for data that
/// names no action of ours.
#[derive(Debug, Clone)]
pub(super) struct Pressed(pub(super) Option<Action>);

pub(super) fn pressed(query: Query) -> Pressed {
    Pressed(query.data.as_deref().and_then(Action::parse))
}

/// The staff's buttons on a case, pressed in the staff chat.
pub(super) fn staff_press(query: Query, app: Arc<App>, pressed: Pressed) -> Option<Action> {
    let chat = query.message.as_ref()?.chat().id;
    match pressed.0? {
        action @ (Action::CaseTake { .. } | Action::CaseClose { .. })
            if app.settings.support_chat == Some(chat.0) =>
        {
            Some(action)
        }
        _ => None,
    }
}

/// A press on a case's button in the staff chat.
pub(super) async fn on_staff_press(
    out: Outbox,
    query: Query,
    app: Arc<App>,
    receipt: Receipt,
    action: Action,
) -> HandlerResult {
    cases::on_staff_press(&out.answering(&receipt), &app, &query, action).await;
    Ok(())
}

/// A press on a menu of the conversation (or on the person's own case
/// buttons).
pub(super) async fn on_press(
    out: Outbox,
    query: Query,
    me: Me,
    app: Arc<App>,
    receipt: Receipt,
    Pressed(action): Pressed,
) -> HandlerResult {
    let out = out.answering(&receipt);
    let (Some(_), Some(menu)) = (query.data.as_deref(), query.message.as_ref()) else {
        answer(&out, &query, None).await;
        return Ok(());
    };
    let presser = &query.from;
    let chat = menu.chat();
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
        Some(Action::CaseRate { case, stars }) => {
            cases::rate(&out, &app, &query, *case, *stars, target).await;
            return Ok(());
        }
        Some(action @ (Action::PhotoSend { .. } | Action::PhotoDrop { .. })) => {
            cases::photos::on_press(&out, &app, &query, action, target).await;
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
/// the queue. They are told so, ahead of the queue, in a note that names
/// them and replies to their message, with a button that opens their own
/// conversation in private (the link names the group; the person is who
/// opens it). Members who write within a moment of each other share one
/// note; each is told once in a while, never by a note sent before they
/// wrote.
fn offer_private(out: &Outbox, app: &Arc<App>, me: &Me, user: &User, target: Target) {
    let who = Addressee {
        id: user.id,
        name: user.full_name(),
        code: user.language_code.clone(),
        message: target.reply_to,
    };
    match out.gather_busy(target.chat, target.thread, who) {
        Gather::Told => {
            log::info!(
                "chat {} user {}: busy group, told them already; answer not queued",
                target.chat,
                user.id
            );
            return;
        }
        Gather::Joined => {
            log::info!(
                "chat {} user {}: busy group; named in the note about to go",
                target.chat,
                user.id
            );
            return;
        }
        Gather::First => {}
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
    let (out, app) = (out.clone(), Arc::clone(app));
    tokio::spawn(async move {
        // Those who write within the moment are named in the same note.
        tokio::time::sleep(BUSY_GATHER).await;
        loop {
            let named = out.take_busy(target.chat, target.thread);
            let Some(first) = named.first() else {
                break;
            };
            let code = first.code.as_deref();
            let text = conversation::note(&app, first.id.0, code, UiText::BusyGroup).await;
            let lang = conversation::person_lang(&app, first.id.0, code).await;
            let tree = app.tree();
            let label = tree.ui().button(UiButton::ContinuePrivately, lang);
            let reply_to = named.iter().rev().find_map(|w| w.message);
            let target = Target { reply_to, ..target };
            deliver_link(&out, &app, target, (&text, &named), label, url.clone());
        }
    });
}

/// How long a busy note waits for others who write at the same moment.
const BUSY_GATHER: std::time::Duration = std::time::Duration::from_millis(300);
