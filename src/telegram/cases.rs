//! The support team's side: a case posted to the staff chat with its path, messages relayed both ways, and the staff's buttons.
//!
//! Everything a case needs after a restart is in the store: the case, its
//! message and forum topic in the staff chat, and the messages replies
//! can be made to. Only text is relayed, and the person's text only when
//! it holds no code, phone or ID number.

use std::sync::Arc;

use teloxide::RequestError;
use teloxide::prelude::*;
use teloxide::types::{
    ChatId, InlineKeyboardButton, InlineKeyboardMarkup, MaybeInaccessibleMessage, MessageId,
    ThreadId, User,
};

use super::pacer::Priority;
use super::send::{
    Gone, Outbox, Outgoing, Shown, Target, answer, answer_soon, cannot_reach_person, deliver,
    keyboard,
};

mod desk;
pub(super) mod photos;
mod relay;
use crate::app::App;
use crate::callback::Action;
use crate::cases::events::{CaseEvent, Kind, emit};
use crate::cases::nudge::{Nudge, Pings};
use crate::cases::open::{Asker, Staff};
use crate::cases::{self, Case, Side};
use crate::clock::Instant;
use crate::conversation;
use crate::engine::{Button, Reply};
use crate::lang::Lang;
use crate::markup;
use crate::stats::{Fact, FactKind, Waits};
use crate::store::{Posted, SessionKey};
use crate::tree::{UiButton, UiText};
pub(super) use desk::{my_case, rate, staff_chat};
pub(super) use relay::{from_person, from_staff, open_case_for};

/// Sends one HTML message; the message, if it went out.
async fn post(
    out: &Outbox,
    app: &App,
    chat: ChatId,
    thread: Option<ThreadId>,
    reply_to: Option<MessageId>,
    html: &str,
    keyboard: Option<InlineKeyboardMarkup>,
) -> Option<Message> {
    match send(out, app, chat, thread, reply_to, html, keyboard).await {
        Ok(message) => Some(message),
        Err(Some(e)) => {
            log::warn!("chat {chat}: a support message could not be sent: {e}");
            None
        }
        Err(None) => None,
    }
}

/// Who wrote a staff message, as events name them: the member, or the
/// staff chat's title for an anonymous admin.
fn staff_name(msg: &Message) -> String {
    msg.from.as_ref().filter(|u| !u.is_bot).map_or_else(
        || msg.chat.title().unwrap_or_default().to_string(),
        User::full_name,
    )
}

/// Sends one HTML message; Telegram's refusal, or nothing when the bot
/// stopped first.
async fn send(
    out: &Outbox,
    app: &App,
    chat: ChatId,
    thread: Option<ThreadId>,
    reply_to: Option<MessageId>,
    html: &str,
    keyboard: Option<InlineKeyboardMarkup>,
) -> Result<Message, Option<RequestError>> {
    let ticket = out.pacer.submit(chat.0, Priority::Person, None);
    let message = Outgoing {
        thread,
        reply_to,
        keyboard,
        ..Outgoing::html(chat, html.to_string())
    };
    match out.put(app, ticket, message).await {
        Ok(Shown::Sent(message)) => Ok(*message),
        Ok(_) => Err(None),
        Err(e) => Err(Some(e)),
    }
}

/// Changes a case's message in the staff chat.
async fn edit(
    out: &Outbox,
    app: &App,
    chat: ChatId,
    message: MessageId,
    html: &str,
    keyboard: Option<InlineKeyboardMarkup>,
) {
    let ticket = out.pacer.submit(chat.0, Priority::Person, Some(message.0));
    let change = Outgoing {
        keyboard,
        edit: Some((message, Gone::Leave)),
        ..Outgoing::html(chat, html.to_string())
    };
    if let Err(e) = out.put(app, ticket, change).await {
        log::warn!("chat {chat}: a case message could not be changed: {e}");
    }
}

/// The person, as the staff see them: a link that opens their profile,
/// and their username.
fn person_html(case: &Case) -> String {
    let mut html = format!(
        "<a href=\"tg://user?id={}\">{}</a>",
        case.user,
        markup::escape(&case.name)
    );
    if let Some(username) = &case.username {
        html.push_str(&format!(" @{}", markup::escape(username)));
    }
    html
}

/// The case's message in the staff chat, with a line saying how it stands.
fn header_html(app: &App, case: &Case, status: Option<&str>) -> String {
    let tree = app.tree();
    let lang = app.settings.default_lang;
    let mut html = markup::fill(
        &markup::to_html(tree.ui().text(UiText::CaseHeader, lang)),
        &[
            ("case", &case.id.to_string()),
            ("person", &person_html(case)),
            ("place", &markup::escape(&case.place)),
            ("lang", case.lang.code()),
            ("summary", &markup::to_html(&case.summary)),
        ],
    );
    if let Some(status) = status {
        html.push_str("\n\n");
        html.push_str(status);
    }
    html
}

/// A text of `ui.toml` as HTML, with `{staff}` filled by a staff member's
/// name (escaped, so a name is never markup).
fn with_staff(app: &App, text: UiText, lang: Lang, staff: &str) -> String {
    let template = markup::to_html(app.tree().ui().text(text, lang));
    markup::fill(&template, &[("staff", &markup::escape(staff))])
}

/// The staff's buttons on an open case: take it (until taken), close it.
fn staff_keyboard(app: &App, case: &Case) -> InlineKeyboardMarkup {
    let tree = app.tree();
    let ui = tree.ui();
    let lang = app.settings.default_lang;
    let mut row = Vec::new();
    if case.taken_by.is_none() {
        row.push(InlineKeyboardButton::callback(
            ui.button(UiButton::CaseTake, lang),
            Action::CaseTake { case: case.id }.encode(),
        ));
    }
    row.push(InlineKeyboardButton::callback(
        ui.button(UiButton::CaseClose, lang),
        Action::CaseClose { case: case.id }.encode(),
    ));
    InlineKeyboardMarkup::new([row])
}

/// The question after a case closed, with a button per score, 1 to 5;
/// none for a case rated before (a reopened one).
fn rating_ask(app: &App, case: &Case, lang: Lang) -> Option<Reply> {
    if case.desk.rating.is_some() {
        return None;
    }
    let tree = app.tree();
    let ui = tree.ui();
    let mut text = String::new();
    // Whether writing back reopens it.
    if app.settings.reopen_secs.is_some() {
        text.push_str(ui.text(UiText::CaseReopenHint, lang));
        text.push_str("\n\n");
    }
    text.push_str(ui.text(UiText::CaseRateAsk, lang));
    let buttons = crate::callback::RATINGS
        .map(|stars| Button {
            label: format!("{stars} ★"),
            data: Action::CaseRate {
                case: case.id,
                stars,
            }
            .encode(),
        })
        .collect();
    Some(Reply {
        node: None,
        text,
        buttons: vec![buttons],
    })
}

/// The person's button to end the chat with the team.
fn close_button(app: &App, lang: Lang, case: i64) -> Button {
    Button {
        label: app
            .tree()
            .ui()
            .button(UiButton::CaseCloseMine, lang)
            .to_string(),
        data: Action::CaseClose { case }.encode(),
    }
}

/// The person's keyboard while their case is open: the button to end it.
fn close_keyboard(app: &App, lang: Lang, case: i64) -> InlineKeyboardMarkup {
    let button = close_button(app, lang, case);
    InlineKeyboardMarkup::new([[InlineKeyboardButton::callback(button.label, button.data)]])
}

/// Sends the person `html`, with `keyboard`: in their private chat if
/// they have one with the bot, else (or if that fails, as when they
/// blocked the bot) in the group they asked in, mentioning them. Whether
/// it went out.
async fn tell_person(
    out: &Outbox,
    app: &App,
    case: &Case,
    html: &str,
    keyboard: Option<InlineKeyboardMarkup>,
) -> bool {
    let own = ChatId(case.user as i64);
    let closable = keyboard.is_some();
    if cases::open::has_private_chat(app, case.user).await {
        // Only a private chat that is closed for good (the bot blocked)
        // sends the answer to the group: after any other failure it may
        // have arrived, and a private answer must not also go public.
        match send(out, app, own, None, None, html, keyboard.clone()).await {
            Ok(_) => return true,
            Err(Some(e)) if cannot_reach_person(&e) && case.chat != own.0 => {
                log::info!(
                    "case {}: the private chat is closed ({e}); answering in the group",
                    case.id
                );
                if let Err(e) = app.store.forget_private_chat(case.user).await {
                    log::error!("store: forgetting a private chat failed: {e}");
                }
            }
            Err(e) => {
                if let Some(e) = e {
                    log::warn!(
                        "case {}: an answer could not be sent privately: {e}",
                        case.id
                    );
                }
                return false;
            }
        }
    }
    let thread = case.thread.map(|t| ThreadId(MessageId(t)));
    let html = format!("{}\n{html}", person_html(case));
    let sent = post(out, app, ChatId(case.chat), thread, None, &html, keyboard).await;
    let delivered = sent.is_some();
    // In a group, only the person may press its button.
    if let Some(sent) = sent.filter(|_| closable)
        && let Err(e) = app
            .store
            .remember_menu(
                sent.chat.id.0,
                sent.id.0,
                case.user,
                Posted::Note,
                app.clock.now(),
            )
            .await
    {
        log::error!("chat {}: recording a note's owner failed: {e}", case.chat);
    }
    delivered
}

/// What the bot posts about a case in the staff chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Posting {
    /// The person's own words: a reply to them reaches the person.
    Words,
    /// The bot's note (a ping, what happened): a reply to it stays with
    /// the staff.
    Note,
}

/// Tells the staff chat about the case `case`, under its message (in its
/// topic); the message is linked to the case as `posting` says. Whether
/// it went out.
async fn tell_staff(out: &Outbox, app: &App, case: &Case, html: &str, posting: Posting) -> bool {
    let Some(staff) = app.settings.support_chat.map(ChatId) else {
        return false;
    };
    let thread = case.topic.map(|t| ThreadId(MessageId(t)));
    let reply_to = case.post.map(MessageId);
    let Some(sent) = post(out, app, staff, thread, reply_to, html, None).await else {
        return false;
    };
    let store = &app.store;
    let linked = match posting {
        Posting::Words => store.link_case_message(staff.0, sent.id.0, case.id).await,
        Posting::Note => store.link_case_note(staff.0, sent.id.0, case.id).await,
    };
    if let Err(e) = linked {
        log::error!("case {}: linking a message failed: {e}", case.id);
    }
    true
}

/// "Agree and send": opens the case and posts it to the staff chat, then
/// tells the person in place of the consent question.
pub(super) async fn confirm(
    out: &Outbox,
    app: &Arc<App>,
    query: &CallbackQuery,
    at: &str,
    target: Target,
) {
    let user = &query.from;
    let lang = conversation::person_lang(app, user.id.0, user.language_code.as_deref()).await;
    let key = SessionKey {
        chat: target.chat.0,
        user: user.id.0,
    };
    let session = match cases::open::consented(app, key, at).await {
        Ok(session) => session,
        Err(note) => {
            answer(out, query, Some(app.tree().ui().text(note, lang))).await;
            return;
        }
    };
    answer_soon(out, &query.id);
    let chat = query.message.as_ref().map(MaybeInaccessibleMessage::chat);
    let asker = Asker {
        key,
        thread: target.thread.map(|t| t.0.0),
        name: user.full_name(),
        username: user.username.clone(),
        group: chat
            .filter(|c| !c.is_private())
            .map(|c| c.title().unwrap_or("group").to_string()),
    };
    let staff = StaffChat {
        out: out.clone(),
        app: Arc::clone(app),
    };
    let told = cases::open::open(&staff, app, &asker, &session, at).await;
    let reply = cases::open::reply(app, lang, told);
    let menu = query.message.as_ref();
    deliver(out, app, target, menu, &[reply], Priority::Person);
}

/// The staff chat, as a case is posted to it.
pub(super) struct StaffChat {
    out: Outbox,
    app: Arc<App>,
}

impl Staff for StaffChat {
    async fn post_case(&self, case: &Case) -> bool {
        match self.app.settings.support_chat {
            Some(staff) => post_case(&self.out, &self.app, ChatId(staff), case).await,
            None => false,
        }
    }
}

impl Pings for StaffChat {
    async fn nudge(&self, case: &Case, nudge: Nudge) -> bool {
        let html = nudge_html(&self.app, case, nudge);
        tell_staff(&self.out, &self.app, case, &html, Posting::Note).await
    }
}

/// Posts a new case to the staff chat, in a topic of its own in a forum;
/// whether it went out.
async fn post_case(out: &Outbox, app: &App, staff: ChatId, case: &Case) -> bool {
    let forum = match out.bot.get_chat(staff).await {
        Ok(chat) => {
            use teloxide::types::{ChatFullInfoKind, ChatFullInfoPublicKind};
            match &chat.kind {
                ChatFullInfoKind::Public(public) => {
                    matches!(&public.kind, ChatFullInfoPublicKind::Supergroup(s) if s.is_forum)
                }
                ChatFullInfoKind::Private(_) => false,
            }
        }
        Err(e) => {
            log::warn!("the support chat {staff} cannot be reached: {e}");
            return false;
        }
    };
    let mut topic = None;
    if forum {
        let name: String = format!("#{} {}", case.id, case.name)
            .chars()
            .take(128)
            .collect();
        match out.bot.create_forum_topic(staff, name).await {
            Ok(created) => topic = Some(created.thread_id),
            // A topic is a convenience: the case goes to the general one.
            Err(e) => log::warn!("case {}: no topic of its own ({e})", case.id),
        }
    }
    let html = header_html(app, case, None);
    let keyboard = staff_keyboard(app, case);
    let Some(sent) = post(out, app, staff, topic, None, &html, Some(keyboard)).await else {
        return false;
    };
    let store = &app.store;
    let linked = async {
        store
            .set_case_post(case.id, sent.id.0, topic.map(|t| t.0.0))
            .await?;
        store.link_case_message(staff.0, sent.id.0, case.id).await
    };
    if let Err(e) = linked.await {
        log::error!("case {}: recording its message failed: {e}", case.id);
    }
    true
}

/// Whether the presser is a member of the staff chat.
async fn is_staff(out: &Outbox, staff: ChatId, user: &User) -> bool {
    match out.bot.get_chat_member(staff, user.id).await {
        Ok(member) => member.is_present(),
        Err(e) => {
            log::warn!("chat {staff}: checking a member failed: {e}");
            false
        }
    }
}

/// "Take it" or "Close" pressed in the staff chat.
pub(super) async fn on_staff_press(
    out: &Outbox,
    app: &Arc<App>,
    query: &CallbackQuery,
    action: Action,
) {
    let staff = ChatId(app.settings.support_chat.unwrap_or_default());
    let tree = app.tree();
    let ui = tree.ui();
    let lang = app.settings.default_lang;
    if !is_staff(out, staff, &query.from).await {
        answer(out, query, Some(ui.text(UiText::NotStaff, lang))).await;
        log::info!("chat {staff}: a case button pressed by a non-member refused");
        return;
    }
    let by = query.from.full_name();
    let now = app.clock.now();
    let (id, changing, taken) = match action {
        Action::CaseTake { case } => {
            let taking = app.store.take_case(case, &by, query.from.id.0, now);
            (case, taking.await, true)
        }
        Action::CaseClose { case } => (case, app.store.close_case(case, now).await, false),
        _ => return,
    };
    // Nothing changed: closed already, or taken by someone else first.
    let nothing = match app.store.case(id).await {
        Ok(Some(case)) if taken && !case.closed => UiText::CaseAlreadyTaken,
        _ => UiText::CaseAlreadyClosed,
    };
    let Some(case) = changed(out, app, query, lang, changing, nothing).await else {
        return;
    };
    answer_soon(out, &query.id);
    emit(
        app,
        CaseEvent::new(if taken { Kind::Taken } else { Kind::Closed }, &case).by_staff(&by),
    )
    .await;
    if !taken {
        closed(out, app, &case, now).await;
    }
    let post = case.post.map(MessageId);
    if taken {
        let status = with_staff(app, UiText::CaseTakenStaff, lang, &by);
        if let Some(post) = post {
            let keyboard = staff_keyboard(app, &case);
            edit(
                out,
                app,
                staff,
                post,
                &header_html(app, &case, Some(&status)),
                Some(keyboard),
            )
            .await;
        }
        let told = with_staff(app, UiText::CaseTaken, case.lang, &by);
        let keyboard = close_keyboard(app, case.lang, case.id);
        tell_person(out, app, &case, &told, Some(keyboard)).await;
        log::info!("case {}: taken", case.id);
    } else {
        let status = with_staff(app, UiText::CaseClosedStaff, lang, &by);
        if let Some(post) = post {
            edit(
                out,
                app,
                staff,
                post,
                &header_html(app, &case, Some(&status)),
                None,
            )
            .await;
        }
        let mut told = markup::to_html(ui.text(UiText::CaseClosedByStaff, case.lang));
        let ask = rating_ask(app, &case, case.lang);
        if let Some(ask) = &ask {
            told.push_str("\n\n");
            told.push_str(&markup::to_html(&ask.text));
        }
        tell_person(out, app, &case, &told, ask.as_ref().and_then(keyboard)).await;
    }
}

/// "End the chat with support", pressed by the person (whose the button is
/// was checked before).
pub(super) async fn person_closes(
    out: &Outbox,
    app: &Arc<App>,
    query: &CallbackQuery,
    case_id: i64,
    target: Target,
) {
    let tree = app.tree();
    let ui = tree.ui();
    let user = &query.from;
    let lang = conversation::person_lang(app, user.id.0, user.language_code.as_deref()).await;
    let now = app.clock.now();
    let case = match app.store.case(case_id).await {
        Ok(Some(case)) if case.user == user.id.0 => case,
        Ok(_) => {
            answer(out, query, Some(ui.text(UiText::MenuOutdated, lang))).await;
            return;
        }
        Err(e) => {
            log::error!("case {case_id}: reading it failed: {e}");
            answer(out, query, Some(ui.text(UiText::StoreError, lang))).await;
            return;
        }
    };
    let closing = app.store.close_case(case.id, now).await;
    let nothing = UiText::CaseAlreadyClosed;
    let Some(case) = changed(out, app, query, lang, closing, nothing).await else {
        return;
    };
    answer_soon(out, &query.id);
    emit(app, CaseEvent::new(Kind::Closed, &case).by_person()).await;
    closed(out, app, &case, now).await;
    let staff_lang = app.settings.default_lang;
    let note = ui.text(UiText::CaseClosedByPerson, staff_lang);
    if let (Some(staff), Some(post)) = (app.settings.support_chat.map(ChatId), case.post) {
        edit(
            out,
            app,
            staff,
            MessageId(post),
            &header_html(app, &case, Some(&markup::to_html(note))),
            None,
        )
        .await;
    }
    tell_staff(out, app, &case, &markup::to_html(note), Posting::Note).await;
    let mut done = Reply::plain(ui.text(UiText::CaseClosedDone, lang));
    if let Some(ask) = rating_ask(app, &case, lang) {
        done.text.push_str("\n\n");
        done.text.push_str(&ask.text);
        done.buttons = ask.buttons;
    }
    deliver(
        out,
        app,
        target,
        query.message.as_ref(),
        &[done],
        Priority::Person,
    );
}

/// The case a change left, or, with none (`nothing` says why, or the
/// store failed), the press answered with why.
async fn changed(
    out: &Outbox,
    app: &App,
    query: &CallbackQuery,
    lang: Lang,
    result: Result<Option<Case>, crate::store::StoreError>,
    nothing: UiText,
) -> Option<Case> {
    let alert = match result {
        Ok(Some(case)) => return Some(case),
        Ok(None) => nothing,
        Err(e) => {
            log::error!("a case could not be changed: {e}");
            UiText::StoreError
        }
    };
    answer(out, query, Some(app.tree().ui().text(alert, lang))).await;
    None
}

/// Records a case's closing for the figures, and closes its forum topic,
/// so the staff see at a glance which cases are done.
async fn closed(out: &Outbox, app: &App, case: &Case, now: crate::clock::Instant) {
    log::info!("case {}: closed", case.id);
    // Screenshots still waiting for the person's answer go with it.
    if let Err(e) = app.store.forget_case_photos(case.id).await {
        log::error!("case {}: forgetting its screenshots failed: {e}", case.id);
    }
    let fact = Fact::new(now, FactKind::HandoffClosed, 0, &case.node, case.lang);
    if let Err(e) = app.store.record(app.tree().version(), &[fact]).await {
        log::error!("case {}: recording the fact failed: {e}", case.id);
    }
    if let (Some(staff), Some(topic)) = (app.settings.support_chat, case.topic) {
        let topic = ThreadId(MessageId(topic));
        if let Err(e) = out.bot.close_forum_topic(ChatId(staff), topic).await {
            log::warn!("case {}: its topic could not be closed: {e}", case.id);
        }
    }
}

/// Notes a staff answer: the case now waits for the person; the first
/// answer also gives the wait for the figures (how long it took, and
/// whether the case opened inside office hours). The case as it now is.
async fn staff_answered(app: &App, case: &Case, now: Instant) -> Case {
    let after = match app.store.case_written(case.id, Side::Staff, now).await {
        Ok(after) => after,
        Err(e) => {
            log::error!("case {}: noting the staff answer failed: {e}", case.id);
            None
        }
    };
    match app.store.first_answer(case.id, now).await {
        Ok(Some(case)) => {
            let detail = Waits::detail(case.in_hours, now - case.opened_at);
            let fact = Fact::new(now, FactKind::StaffAnswered, 0, &case.node, case.lang)
                .with_detail(&detail);
            if let Err(e) = app.store.record(app.tree().version(), &[fact]).await {
                log::error!("case {}: recording the fact failed: {e}", case.id);
            }
        }
        Ok(None) => {}
        Err(e) => log::error!("case {}: noting the first answer failed: {e}", case.id),
    }
    after.unwrap_or_else(|| case.clone())
}

/// The ping's text for the staff chat.
fn nudge_html(app: &App, case: &Case, nudge: Nudge) -> String {
    let tree = app.tree();
    let ui = tree.ui();
    let lang = app.settings.default_lang;
    let wait = |secs: i64| {
        let minutes = u32::try_from((secs.max(0) + 59) / 60).unwrap_or(u32::MAX);
        crate::tree::provider::minutes(minutes, lang)
    };
    let id = case.id.to_string();
    match nudge {
        Nudge::Unanswered { waited } => markup::fill(
            &markup::to_html(ui.text(UiText::CaseNudge, lang)),
            &[("case", &id), ("wait", &wait(waited))],
        ),
        Nudge::Idle { waited, .. } => {
            let staff = match (case.desk.taken_by_id, &case.taken_by) {
                (Some(id), Some(name)) => {
                    format!("<a href=\"tg://user?id={id}\">{}</a>", markup::escape(name))
                }
                (_, name) => markup::escape(name.as_deref().unwrap_or_default()),
            };
            markup::fill(
                &markup::to_html(ui.text(UiText::CaseNudgeIdle, lang)),
                &[("case", &id), ("wait", &wait(waited)), ("staff", &staff)],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_text_in_the_staff_chat_never_markup() {
        let case = Case {
            id: 1,
            user: 7,
            chat: 7,
            thread: None,
            name: "<b>Al & {summary}</b>".into(),
            username: Some("al_1".into()),
            lang: Lang::Zh,
            node: "out_of_checks".into(),
            place: String::new(),
            summary: String::new(),
            opened_at: 0,
            taken_by: None,
            closed: false,
            post: None,
            topic: None,
            in_hours: true,
            first_answer_at: None,
            desk: Default::default(),
        };
        assert_eq!(
            person_html(&case),
            "<a href=\"tg://user?id=7\">&lt;b&gt;Al &amp; {summary}&lt;/b&gt;</a> @al_1"
        );
    }
}
