//! Messages of an open case relayed both ways: the staff's replies to the person, the person's text to the staff, and what cannot be relayed answered.

use std::sync::Arc;

use teloxide::prelude::*;
use teloxide::types::{ChatId, MessageKind, User};

use super::desk::open_again;
use super::{Posting, desk, post, staff_answered, staff_name, tell_person, tell_staff};
use crate::app::App;
use crate::cases::events::{CaseEvent, Kind, emit};
use crate::cases::store::{Linked, PersonCase};
use crate::cases::{Case, Side};
use crate::engine::Reply;
use crate::markup;
use crate::telegram::pacer::Priority;
use crate::telegram::send::{Outbox, Target, deliver};
use crate::tree::UiText;
use crate::tree::router::has_personal_data;

/// The longest text relayed, in UTF-16 units as Telegram counts: a frame
/// and a mention must still fit in its 4096.
const MAX_RELAYED_UNITS: usize = 3500;

/// Text relayed to the other side: escaped, and cut (with "…") to what a
/// message can hold.
fn relayed(text: &str) -> String {
    let (kept, cut) = markup::truncate_utf16(text, MAX_RELAYED_UNITS);
    let mut html = markup::escape(kept);
    if cut {
        html.push('…');
    }
    html
}

/// A command of the staff's about a case, with what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StaffCommand<'a> {
    /// `/reply <text>`: the text to the person.
    Reply(&'a str),
    /// `/send <node>`: a step of the tree, with its buttons.
    Send(&'a str),
    /// `/canned [name]`: a canned reply, or the list of them.
    Canned(&'a str),
}

/// Reads a staff command (`/reply@bot …` too); `None` for anything else.
fn staff_command(text: &str) -> Option<StaffCommand<'_>> {
    let rest = text.trim_start().strip_prefix('/')?;
    let (word, arg) = rest
        .split_once(char::is_whitespace)
        .map_or((rest, ""), |(word, arg)| (word, arg.trim()));
    let name = word.split_once('@').map_or(word, |(name, _)| name);
    match name.to_ascii_lowercase().as_str() {
        "reply" => Some(StaffCommand::Reply(arg)),
        "send" => Some(StaffCommand::Send(arg)),
        "canned" => Some(StaffCommand::Canned(arg)),
        _ => None,
    }
}

/// A message in the staff chat. What reaches the person is only ever
/// asked for: a reply to one of the case's messages (its post, the
/// person's words, the bot's notes) or a staff command in the case's
/// topic. Anything else written in a topic is the team's own note and
/// stays in the staff chat.
pub(in crate::telegram) async fn from_staff(out: &Outbox, app: &Arc<App>, msg: &Message) {
    let store = &app.store;
    let staff = msg.chat.id;
    // When staff answered: as they wrote, not once delivery is done.
    let now = app.clock.now();
    // Service messages (a pin, a topic renamed or closed) are nobody's
    // words; anonymous admins and bots have no name to answer as.
    if !matches!(msg.kind, MessageKind::Common(_)) {
        return;
    }
    // A member, or an anonymous admin posting as the staff chat itself.
    let as_staff_chat = msg.sender_chat.as_ref().is_some_and(|c| c.id == staff);
    if msg.from.as_ref().is_none_or(|u| u.is_bot) && !as_staff_chat {
        return;
    }
    let command = msg.text().and_then(staff_command);
    let slash = msg.text().is_some_and(|t| t.trim_start().starts_with('/'));
    let mut link = None;
    if let Some(replied) = msg.reply_to_message().map(|m| m.id.0) {
        link = store.case_link(staff.0, replied).await.unwrap_or_else(|e| {
            log::error!("chat {staff}: finding a case failed: {e}");
            None
        });
    }
    // Words replying to one of the bot's notes (a ping, "reopened") are
    // the team's own, like a note in the topic.
    if command.is_none() && !slash && matches!(link, Some(Linked::Note(_))) {
        log::debug!("chat {staff}: a reply to a note about a case, kept among the staff");
        return;
    }
    let mut case_id = link.map(Linked::case);
    if case_id.is_none()
        && command.is_some()
        && msg.is_topic_message
        && let Some(thread) = msg.thread_id
    {
        case_id = store.case_of_topic(thread.0.0).await.unwrap_or_else(|e| {
            log::error!("chat {staff}: finding a case failed: {e}");
            None
        });
    }
    let tree = app.tree();
    let staff_lang = app.settings.default_lang;
    let thread = msg.thread_id.filter(|_| msg.is_topic_message);
    // A note to the staff under their message, linked to the case as a
    // note: a command replying to it is about the case, words stay.
    let note = |html: String, case: Option<i64>| async move {
        if let Some(sent) = post(out, app, staff, thread, Some(msg.id), &html, None).await
            && let Some(case) = case
            && let Err(e) = app.store.link_case_note(staff.0, sent.id.0, case).await
        {
            log::error!("case {case}: linking a message failed: {e}");
        }
    };
    let say = |which: UiText| markup::to_html(tree.ui().text(which, staff_lang));
    let Some(case_id) = case_id else {
        if command.is_some() {
            note(say(UiText::StaffNoCase), None).await;
        } else if msg.is_topic_message {
            log::debug!("chat {staff}: a note in a topic, kept among the staff");
        }
        return;
    };
    let case = match store.case(case_id).await {
        Ok(Some(case)) => case,
        Ok(None) => return,
        Err(e) => {
            log::error!("case {case_id}: reading it failed: {e}");
            note(say(UiText::StoreError), None).await;
            return;
        }
    };
    if case.closed {
        note(say(UiText::CaseAlreadyClosed), Some(case.id)).await;
        return;
    }
    // Another bot's command, or a mistyped one, is never the person's to
    // read.
    if slash && command.is_none() {
        note(say(UiText::StaffCommandUnknown), Some(case.id)).await;
        return;
    }
    if super::photos::from_staff(out, app, &case, msg, now, &|which| {
        note(say(which), Some(case.id))
    })
    .await
    {
        return;
    }
    // What reaches the person, as HTML and as said.
    let (html, said) = match command {
        None => match msg.text() {
            Some(text) => (relayed(text), text.to_string()),
            None => {
                note(say(UiText::StaffTextOnly), Some(case.id)).await;
                return;
            }
        },
        Some(StaffCommand::Reply("")) => {
            note(say(UiText::StaffReplyUsage), Some(case.id)).await;
            return;
        }
        Some(StaffCommand::Reply(text)) => (relayed(text), text.to_string()),
        Some(StaffCommand::Canned(name)) => match desk::canned(app, &case, name) {
            Ok(reply) => (markup::to_html(&reply), reply),
            Err(answer) => {
                note(answer, Some(case.id)).await;
                return;
            }
        },
        Some(StaffCommand::Send(node)) => {
            let answer = desk::send_step(out, app, &case, node, (&staff_name(msg), now)).await;
            note(answer, Some(case.id)).await;
            return;
        }
    };
    let html = markup::fill(
        &markup::to_html(tree.ui().text(UiText::StaffReply, case.lang)),
        &[("text", &html)],
    );
    let closable = super::close_keyboard(app, case.lang, case.id);
    if tell_person(out, app, &case, &html, Some(closable)).await {
        log::info!("case {}: a staff reply relayed", case.id);
        let case = staff_answered(app, &case, now).await;
        let event = CaseEvent::new(Kind::Message, &case).by_staff(&staff_name(msg));
        emit(app, event.text(&said)).await;
    } else {
        log::warn!("case {}: a staff reply could not be delivered", case.id);
        note(say(UiText::RelayFailed), Some(case.id)).await;
    }
}

/// The person's case that text of theirs in `chat` goes to: their open
/// case (any in their private chat, in a group the one they opened
/// there), or else the one they closed within `CASE_REOPEN_MINUTES`,
/// which their words reopen (it comes back closed).
pub(in crate::telegram) async fn open_case_for(
    app: &App,
    chat: ChatId,
    user: &User,
) -> Option<Case> {
    app.settings.support_chat?;
    let found = app.store.person_case(user.id.0).await.unwrap_or_else(|e| {
        log::error!("user {}: reading the open case failed: {e}", user.id);
        PersonCase::None
    });
    let case = match (found, app.settings.reopen_secs) {
        (PersonCase::Open(case), _) => case,
        // Only a case the staff saw: one never posted was closed at once.
        (PersonCase::Closed(case, closed_at), Some(window))
            if case.post.is_some() && app.clock.now() < closed_at.saturating_add(window) =>
        {
            case
        }
        _ => return None,
    };
    (chat.is_user() || case.chat == chat.0).then_some(case)
}

/// The person's text (or anything else) while their case is open: text
/// goes to the staff, without codes, phone or ID numbers; the rest (a
/// photo, with its caption passed on) is answered with what does reach
/// them.
pub(in crate::telegram) async fn from_person(
    out: &Outbox,
    app: &Arc<App>,
    case: &Case,
    text: Option<&str>,
    with_media: bool,
    target: Target,
) {
    let tree = app.tree();
    let ui = tree.ui();
    let note = |which| Reply::plain(ui.text(which, case.lang));
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        deliver(
            out,
            app,
            target,
            None,
            &[note(UiText::RelayTextOnly)],
            Priority::Person,
        );
        return;
    };
    if has_personal_data(text) {
        deliver(
            out,
            app,
            target,
            None,
            &[note(UiText::RelayPersonalData)],
            Priority::Person,
        );
        return;
    }
    let now = app.clock.now();
    let mut notes = Vec::new();
    let reopened;
    let case = if case.closed {
        let Some((open, note)) = open_again(out, app, case, target, now).await else {
            return;
        };
        notes.extend(note);
        reopened = open;
        &reopened
    } else {
        case
    };
    let html = markup::fill(
        &markup::to_html(ui.text(UiText::PersonMessage, app.settings.default_lang)),
        &[("case", &case.id.to_string()), ("text", &relayed(text))],
    );
    if tell_staff(out, app, case, &html, Posting::Words).await {
        log::info!("case {}: a message from the person relayed", case.id);
        let after = match app.store.case_written(case.id, Side::Person, now).await {
            Ok(after) => after,
            Err(e) => {
                log::error!("case {}: noting the person's message failed: {e}", case.id);
                None
            }
        };
        let event = CaseEvent::new(Kind::Message, after.as_ref().unwrap_or(case));
        emit(app, event.by_person().text(text)).await;
    } else {
        log::warn!(
            "case {}: a message from the person could not be relayed",
            case.id
        );
        notes.push(note(UiText::RelayNotSent));
    }
    if with_media {
        notes.push(note(UiText::RelayTextOnly));
    }
    deliver(out, app, target, None, &notes, Priority::Person);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayed_text_is_escaped_and_cut_with_an_ellipsis() {
        assert_eq!(relayed("a <b> & c"), "a &lt;b&gt; &amp; c");
        let long = "😀".repeat(MAX_RELAYED_UNITS);
        let cut = relayed(&long);
        assert!(cut.ends_with('…'));
        assert_eq!(cut.chars().count(), MAX_RELAYED_UNITS / 2 + 1);
    }
}
