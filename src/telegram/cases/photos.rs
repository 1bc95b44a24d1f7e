//! Screenshots in an open case: the person's reach the staff only once they confirm, their caption hidden as the log hides it; the staff's reach the person as they are.
//!
//! A photo from the person is kept in the store (its file id and its
//! caption, already redacted) and answered with a prompt under it: a
//! reminder to crop out ID numbers, codes and phone numbers, and two
//! buttons. "Send" takes it out of the store (once, however often it is
//! pressed) and posts it to the case in the staff chat, linked like every
//! message there so a staff reply to it reaches the person; "don't send"
//! takes it out and discards it. A picture sent as a file is not taken:
//! a file keeps its name and its metadata (where it was taken), which the
//! bot cannot strip, so the person is asked to send it as a photo.

use std::future::Future;
use std::sync::Arc;

use teloxide::prelude::*;
use teloxide::types::{ChatId, InlineKeyboardButton, InlineKeyboardMarkup, MessageId, ThreadId};

use super::desk::open_again;
use super::{close_keyboard, person_html, staff_name};
use crate::app::App;
use crate::callback::Action;
use crate::cases::events::{CaseEvent, Kind, emit};
use crate::cases::open::has_private_chat;
use crate::cases::photos::{Kept, Pending};
use crate::cases::{Case, Side};
use crate::clock::Instant;
use crate::conversation;
use crate::engine::Reply;
use crate::markup;
use crate::store::Posted;
use crate::telegram::pacer::Priority;
use crate::telegram::send::{
    Body, Outbox, Outgoing, Shown, Target, answer, answer_soon, cannot_reach_person, deliver,
};
use crate::tree::{UiButton, UiText};

/// The longest caption passed on, in UTF-16 units as Telegram counts:
/// with a frame and a mention it must still fit Telegram's 1024.
const MAX_CAPTION_UNITS: usize = 800;

/// What a message from the person is as far as screenshots go.
enum Picture<'a> {
    /// A photo: the file id of its largest size.
    Photo(&'a str),
    /// A picture sent as a file (uncompressed), with its name and metadata.
    File,
}

fn picture_of(msg: &Message) -> Option<Picture<'_>> {
    if let Some(sizes) = msg.photo() {
        // Telegram lists a photo's sizes smallest first.
        let largest = sizes
            .iter()
            .max_by_key(|s| u64::from(s.width) * u64::from(s.height))?;
        return Some(Picture::Photo(&largest.file.id.0));
    }
    let document = msg.document()?;
    let image = document
        .mime_type
        .as_ref()
        .is_some_and(|m| m.essence_str().starts_with("image/"));
    image.then_some(Picture::File)
}

/// A caption as it may be passed on: numbers shaped like a code, a phone
/// or an ID number hidden as the log hides them, then cut (with "…") to
/// what fits; `None` when nothing is left.
fn redacted(caption: Option<&str>) -> Option<String> {
    let caption = crate::redact::redact(caption?.trim(), &[]);
    let (kept, cut) = markup::truncate_utf16(&caption, MAX_CAPTION_UNITS);
    let mut kept = kept.to_string();
    if cut {
        kept.push('…');
    }
    (!kept.is_empty()).then_some(kept)
}

/// A photo (or a picture sent as a file) from the person in their open
/// case: kept, with the question whether the team may see it, under it.
/// Whether the message was one; anything else is for the relay.
pub(in crate::telegram) async fn from_person(
    out: &Outbox,
    app: &Arc<App>,
    case: &Case,
    msg: &Message,
    target: Target,
) -> bool {
    let Some(picture) = picture_of(msg) else {
        return false;
    };
    let now = app.clock.now();
    // A caption soon after the case closed reopens it, as words do.
    let reopened;
    let case = if case.closed {
        let Some((open, note)) = open_again(out, app, case, target, now).await else {
            return true;
        };
        let notes: Vec<Reply> = note.into_iter().collect();
        deliver(out, app, target, None, &notes, Priority::Person);
        reopened = open;
        &reopened
    } else {
        case
    };
    let tree = app.tree();
    let ui = tree.ui();
    let lang = case.lang;
    let note = |which| Reply::plain(ui.text(which, lang));
    let file_id = match picture {
        Picture::Photo(file_id) => file_id,
        Picture::File => {
            log::info!("case {}: a picture sent as a file not taken", case.id);
            deliver(
                out,
                app,
                target,
                None,
                &[note(UiText::PhotoAsFile)],
                Priority::Person,
            );
            return true;
        }
    };
    let caption = redacted(msg.caption());
    let kept = app
        .store
        .keep_photo(case.id, case.user, file_id, caption.as_deref(), now)
        .await;
    let photo = match kept {
        Ok(Kept::Waiting(photo)) => photo,
        Ok(Kept::Full) => {
            deliver(
                out,
                app,
                target,
                None,
                &[note(UiText::PhotoTooMany)],
                Priority::Person,
            );
            return true;
        }
        Err(e) => {
            log::error!("case {}: keeping a screenshot failed: {e}", case.id);
            deliver(
                out,
                app,
                target,
                None,
                &[note(UiText::StoreError)],
                Priority::Person,
            );
            return true;
        }
    };
    log::info!(
        "case {}: screenshot {photo} waits for the person's answer",
        case.id
    );
    let mut html = markup::to_html(ui.text(UiText::PhotoConfirm, lang));
    if let Some(caption) = &caption {
        html.push_str("\n\n");
        html.push_str(&markup::fill(
            &markup::to_html(ui.text(UiText::PhotoCaption, lang)),
            &[("caption", &markup::escape(caption))],
        ));
    }
    let keyboard = InlineKeyboardMarkup::new([[
        InlineKeyboardButton::callback(
            ui.button(UiButton::PhotoSend, lang),
            Action::PhotoSend {
                case: case.id,
                photo,
            }
            .encode(),
        ),
        InlineKeyboardButton::callback(
            ui.button(UiButton::PhotoDrop, lang),
            Action::PhotoDrop {
                case: case.id,
                photo,
            }
            .encode(),
        ),
    ]]);
    let chat = target.chat;
    let ticket = out
        .pacer
        .submit_for(chat.0, Priority::Person, None, case.user);
    // Under the photo, so it is plain which one is meant.
    let prompt = Outgoing {
        thread: target.thread,
        reply_to: Some(msg.id),
        keyboard: Some(keyboard),
        owner: Some((case.user, Posted::Note)),
        ..Outgoing::html(chat, html)
    };
    if let Err(e) = out.put(app, ticket, prompt).await {
        log::warn!(
            "case {}: a screenshot's question could not be sent: {e}",
            case.id
        );
    }
    true
}

/// "Send" or "don't send" pressed under a screenshot (whose the button
/// is was checked before): sent to the case or discarded, once.
pub(in crate::telegram) async fn on_press(
    out: &Outbox,
    app: &Arc<App>,
    query: &CallbackQuery,
    action: &Action,
    target: Target,
) {
    let (case_id, photo, send) = match *action {
        Action::PhotoSend { case, photo } => (case, photo, true),
        Action::PhotoDrop { case, photo } => (case, photo, false),
        _ => return,
    };
    let tree = app.tree();
    let ui = tree.ui();
    let user = &query.from;
    let lang = conversation::person_lang(app, user.id.0, user.language_code.as_deref()).await;
    let alert = |which| ui.text(which, lang);
    let now = app.clock.now();
    // Data naming a case that is not the presser's is out of date (or
    // forged): nothing is said about that case.
    let case = match app.store.case(case_id).await {
        Ok(Some(case)) if case.user == user.id.0 => case,
        Ok(_) => {
            answer(out, query, Some(alert(UiText::MenuOutdated))).await;
            return;
        }
        Err(e) => {
            log::error!("case {case_id}: reading it failed: {e}");
            answer(out, query, Some(alert(UiText::StoreError))).await;
            return;
        }
    };
    // A closed case's screenshots were forgotten with it; one caught on
    // its way is let go now.
    if case.closed {
        if let Err(e) = app.store.take_photo(case.id, photo, user.id.0, now).await {
            log::error!("case {}: letting a screenshot go failed: {e}", case.id);
        }
        log::info!(
            "case {}: screenshot {photo} not sent, the case is closed",
            case.id
        );
        answer_soon(out, &query.id);
        let reply = Reply::plain(ui.text(UiText::PhotoCaseClosed, lang));
        let menu = query.message.as_ref();
        deliver(out, app, target, menu, &[reply], Priority::Person);
        return;
    }
    let taken = match app.store.take_photo(case.id, photo, user.id.0, now).await {
        Ok(taken) => taken,
        Err(e) => {
            log::error!("case {}: taking a screenshot failed: {e}", case.id);
            answer(out, query, Some(alert(UiText::StoreError))).await;
            return;
        }
    };
    let Some(pending) = taken else {
        // Answered before (a second press), or waited too long.
        answer(out, query, Some(alert(UiText::PhotoGone))).await;
        return;
    };
    let done = if !send {
        log::info!(
            "case {}: screenshot {photo} discarded by the person",
            case.id
        );
        UiText::PhotoDropped
    } else if to_staff(out, app, &case, &pending).await {
        log::info!("case {}: screenshot {photo} sent to the staff", case.id);
        // Like their words, it leaves the case waiting for the staff.
        let after = match app.store.case_written(case.id, Side::Person, now).await {
            Ok(after) => after,
            Err(e) => {
                log::error!("case {}: noting the screenshot failed: {e}", case.id);
                None
            }
        };
        let event = CaseEvent::new(Kind::Message, after.as_ref().unwrap_or(&case)).by_person();
        emit(app, event.photo(pending.caption.as_deref())).await;
        UiText::PhotoSent
    } else {
        // It waits again, for another press.
        if let Err(e) = app.store.put_back_photo(case.id, pending, now).await {
            log::error!("case {}: putting a screenshot back failed: {e}", case.id);
        }
        answer(out, query, Some(alert(UiText::PhotoNotSent))).await;
        return;
    };
    answer_soon(out, &query.id);
    let reply = Reply::plain(ui.text(done, lang));
    deliver(
        out,
        app,
        target,
        query.message.as_ref(),
        &[reply],
        Priority::Person,
    );
}

/// Posts a screenshot the person agreed to send to the case in the staff
/// chat, under the case's message (in its topic), linked to the case so a
/// reply to it reaches the person. Whether it went out.
async fn to_staff(out: &Outbox, app: &App, case: &Case, pending: &Pending) -> bool {
    let Some(staff) = app.settings.support_chat.map(ChatId) else {
        return false;
    };
    let staff_lang = app.settings.default_lang;
    let mut caption = markup::fill(
        &markup::to_html(app.tree().ui().text(UiText::PhotoFromPerson, staff_lang)),
        &[("case", &case.id.to_string())],
    );
    if let Some(text) = &pending.caption {
        caption.push('\n');
        caption.push_str(&markup::escape(text));
    }
    let photo = Outgoing {
        thread: case.topic.map(|t| ThreadId(MessageId(t))),
        reply_to: case.post.map(MessageId),
        body: Body::Photo {
            file_id: pending.file_id.clone(),
            caption: Some(caption),
        },
        ..Outgoing::html(staff, String::new())
    };
    let ticket = out.pacer.submit(staff.0, Priority::Person, None);
    let sent = match out.put(app, ticket, photo).await {
        Ok(Shown::Sent(sent)) => sent,
        Ok(_) => return false,
        Err(e) => {
            log::warn!("case {}: a screenshot could not be posted: {e}", case.id);
            return false;
        }
    };
    if let Err(e) = app
        .store
        .link_case_message(staff.0, sent.id.0, case.id)
        .await
    {
        log::error!("case {}: linking a message failed: {e}", case.id);
    }
    true
}

/// A photo from the staff about the case `case` (the relay decided it
/// is): the person gets it as it is, its caption framed as a staff reply.
/// Whether the message was a photo; `note` tells the staff chat when it
/// could not be delivered.
pub(super) async fn from_staff<F, Fut>(
    out: &Outbox,
    app: &App,
    case: &Case,
    msg: &Message,
    now: Instant,
    note: &F,
) -> bool
where
    F: Fn(UiText) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(largest) = msg.photo().and_then(|sizes| {
        sizes
            .iter()
            .max_by_key(|s| u64::from(s.width) * u64::from(s.height))
    }) else {
        return false;
    };
    let text = msg.caption().unwrap_or_default().trim();
    let (kept, cut) = markup::truncate_utf16(text, MAX_CAPTION_UNITS);
    let mut text = markup::escape(kept);
    if cut {
        text.push('…');
    }
    let caption = markup::fill(
        &markup::to_html(app.tree().ui().text(UiText::StaffReply, case.lang)),
        &[("text", &text)],
    );
    if to_person(out, app, case, &largest.file.id.0, &caption).await {
        log::info!("case {}: a staff photo relayed", case.id);
        let case = super::staff_answered(app, case, now).await;
        let event = CaseEvent::new(Kind::Message, &case).by_staff(&staff_name(msg));
        emit(app, event.photo(msg.caption())).await;
    } else {
        log::warn!("case {}: a staff photo could not be delivered", case.id);
        note(UiText::RelayFailed).await;
    }
    true
}

/// Sends the person a photo, as `tell_person` sends them text: in their
/// private chat if they have one with the bot, else (or if that one is
/// closed for good) in the group they asked in, mentioning them; with the
/// button that ends the case. Whether it went out.
async fn to_person(out: &Outbox, app: &App, case: &Case, file_id: &str, caption: &str) -> bool {
    let own = ChatId(case.user as i64);
    let keyboard = close_keyboard(app, case.lang, case.id);
    let photo = |chat: ChatId, thread: Option<ThreadId>, caption: String| Outgoing {
        thread,
        body: Body::Photo {
            file_id: file_id.to_string(),
            caption: Some(caption),
        },
        keyboard: Some(keyboard.clone()),
        owner: Some((case.user, Posted::Note)),
        ..Outgoing::html(chat, String::new())
    };
    if has_private_chat(app, case.user).await {
        let ticket = out.pacer.submit(own.0, Priority::Person, None);
        match out
            .put(app, ticket, photo(own, None, caption.to_string()))
            .await
        {
            Ok(Shown::Sent(_)) => return true,
            Ok(_) => return false,
            Err(e) if cannot_reach_person(&e) && case.chat != own.0 => {
                log::info!(
                    "case {}: the private chat is closed ({e}); the photo goes to the group",
                    case.id
                );
                if let Err(e) = app.store.forget_private_chat(case.user).await {
                    log::error!("store: forgetting a private chat failed: {e}");
                }
            }
            Err(e) => {
                log::warn!("case {}: a photo could not be sent privately: {e}", case.id);
                return false;
            }
        }
    }
    let thread = case.thread.map(|t| ThreadId(MessageId(t)));
    let caption = format!("{}\n{caption}", person_html(case));
    let ticket = out.pacer.submit(case.chat, Priority::Person, None);
    let sent = out
        .put(app, ticket, photo(ChatId(case.chat), thread, caption))
        .await;
    match sent {
        Ok(Shown::Sent(_)) => true,
        Ok(_) => false,
        Err(e) => {
            log::warn!(
                "case {}: a photo could not be sent to the group: {e}",
                case.id
            );
            false
        }
    }
}

/// A photo (or a picture sent as a file) from someone with no open case
/// goes nowhere: the conversation's answer to it says so first.
pub(in crate::telegram) async fn no_case(
    app: &App,
    msg: &Message,
    replies: Vec<Reply>,
) -> Vec<Reply> {
    if picture_of(msg).is_none() {
        return replies;
    }
    let user = msg.from.as_ref();
    let lang = match user {
        Some(user) => {
            conversation::person_lang(app, user.id.0, user.language_code.as_deref()).await
        }
        None => app.settings.default_lang,
    };
    let note = app.tree().ui().text(UiText::PhotoNoCase, lang).to_string();
    let mut replies = replies.into_iter();
    match replies.next() {
        Some(first) => std::iter::once(first.below(&note)).chain(replies).collect(),
        None => vec![Reply::plain(note)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caption_is_redacted_as_the_log_is_then_cut() {
        assert_eq!(redacted(None), None);
        assert_eq!(redacted(Some("  ")), None);
        assert_eq!(
            redacted(Some("验证码 123456，身份证 11010519491231002X")).as_deref(),
            Some("验证码 <redacted>，身份证 <redacted>")
        );
        assert_eq!(
            redacted(Some("手机 138 1234 5678 收不到")).as_deref(),
            Some("手机 <redacted> 收不到")
        );
        let long = "截".repeat(MAX_CAPTION_UNITS + 5);
        let cut = redacted(Some(&long)).unwrap();
        assert_eq!(cut.chars().count(), MAX_CAPTION_UNITS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn a_photo_is_taken_by_its_largest_size_and_only_an_image_file_is_a_picture() {
        let message = |extra: serde_json::Value| -> Message {
            let mut json = serde_json::json!({
                "message_id": 1, "date": 0,
                "chat": {"id": 7, "type": "private", "first_name": "A"},
                "from": {"id": 7, "is_bot": false, "first_name": "A"},
            });
            for (k, v) in extra.as_object().unwrap() {
                json[k] = v.clone();
            }
            serde_json::from_value(json).expect("a message")
        };
        let photo = message(serde_json::json!({"photo": [
            {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 60},
            {"file_id": "large", "file_unique_id": "l", "width": 1280, "height": 853},
            {"file_id": "mid", "file_unique_id": "m", "width": 320, "height": 213},
        ]}));
        assert!(matches!(picture_of(&photo), Some(Picture::Photo("large"))));
        let png = message(serde_json::json!({"document": {
            "file_id": "d", "file_unique_id": "d", "file_name": "shot.png", "mime_type": "image/png"
        }}));
        assert!(matches!(picture_of(&png), Some(Picture::File)));
        let pdf = message(serde_json::json!({"document": {
            "file_id": "d", "file_unique_id": "d", "file_name": "a.pdf", "mime_type": "application/pdf"
        }}));
        assert!(picture_of(&pdf).is_none());
        assert!(picture_of(&message(serde_json::json!({"text": "hi"}))).is_none());
    }
}
