//! Messages of an open case relayed both ways: the staff's replies to the person, the person's text to the staff, and what cannot be relayed answered.

use std::sync::Arc;

use teloxide::prelude::*;
use teloxide::types::{ChatId, MessageKind, User};

use super::{post, tell_person, tell_staff};
use crate::app::App;
use crate::cases::Case;
use crate::cases::events::{CaseEvent, Kind, emit};
use crate::clock::Instant;
use crate::engine::Reply;
use crate::markup;
use crate::stats::{Fact, FactKind, Waits};
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

/// A message in the staff chat: a reply to a case's message (or to
/// anything the bot posted about it), or one in a case's topic, goes to
/// the person. Anything else is left alone.
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
    let replied = msg.reply_to_message().map(|m| m.id.0);
    let mut case_id = None;
    if let Some(replied) = replied {
        case_id = store
            .case_of_message(staff.0, replied)
            .await
            .unwrap_or_else(|e| {
                log::error!("chat {staff}: finding a case failed: {e}");
                None
            });
    }
    if case_id.is_none()
        && msg.is_topic_message
        && let Some(thread) = msg.thread_id
    {
        case_id = store.case_of_topic(thread.0.0).await.unwrap_or_else(|e| {
            log::error!("chat {staff}: finding a case failed: {e}");
            None
        });
    }
    let Some(case_id) = case_id else {
        return;
    };
    let case = match store.case(case_id).await {
        Ok(Some(case)) => case,
        Ok(None) => return,
        Err(e) => {
            log::error!("case {case_id}: reading it failed: {e}");
            return;
        }
    };
    let tree = app.tree();
    let staff_lang = app.settings.default_lang;
    let thread = msg.thread_id.filter(|_| msg.is_topic_message);
    // A note to the staff, linked to the case like everything the bot
    // posts about it, so a reply to the note reaches the case too.
    let note = |which: UiText| {
        let html = markup::to_html(tree.ui().text(which, staff_lang));
        async move {
            if let Some(sent) = post(out, app, staff, thread, Some(msg.id), &html, None).await
                && let Err(e) = app
                    .store
                    .link_case_message(staff.0, sent.id.0, case_id)
                    .await
            {
                log::error!("case {case_id}: linking a message failed: {e}");
            }
        }
    };
    if case.closed {
        note(UiText::CaseAlreadyClosed).await;
        return;
    }
    let Some(text) = msg.text() else {
        note(UiText::StaffTextOnly).await;
        return;
    };
    let html = markup::fill(
        &markup::to_html(tree.ui().text(UiText::StaffReply, case.lang)),
        &[("text", &relayed(text))],
    );
    if tell_person(out, app, &case, &html, true).await {
        log::info!("case {}: a staff reply relayed", case.id);
        emit(
            app,
            CaseEvent::new(Kind::Message, &case)
                .by_staff(&msg.from.as_ref().filter(|u| !u.is_bot).map_or_else(
                    || msg.chat.title().unwrap_or_default().to_string(),
                    User::full_name,
                ))
                .text(text),
        )
        .await;
        first_answer(app, &case, now).await;
    } else {
        log::warn!("case {}: a staff reply could not be delivered", case.id);
        note(UiText::RelayFailed).await;
    }
}

/// The person's open case that text of theirs in `chat` goes to: any in
/// their private chat, in a group the one they opened there.
pub(in crate::telegram) async fn open_case_for(
    app: &App,
    chat: ChatId,
    user: &User,
) -> Option<Case> {
    app.settings.support_chat?;
    let case = app
        .store
        .open_case_of(user.id.0)
        .await
        .unwrap_or_else(|e| {
            log::error!("user {}: reading the open case failed: {e}", user.id);
            None
        })?;
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
    let html = markup::fill(
        &markup::to_html(ui.text(UiText::PersonMessage, app.settings.default_lang)),
        &[("case", &case.id.to_string()), ("text", &relayed(text))],
    );
    let mut notes = Vec::new();
    if tell_staff(out, app, case, &html).await {
        log::info!("case {}: a message from the person relayed", case.id);
        emit(
            app,
            CaseEvent::new(Kind::Message, case).by_person().text(text),
        )
        .await;
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

/// Notes the first staff answer on the case, and the wait for the
/// figures: how long it took, and whether the case opened inside office
/// hours.
async fn first_answer(app: &App, case: &Case, now: Instant) {
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
