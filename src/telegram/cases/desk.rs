//! The desk around a case: the person's /case and rating, a closed case reopened by their next words, and the staff's /send, /canned and pings.

use std::sync::Arc;

use teloxide::prelude::*;
use teloxide::types::{ChatId, MessageId, ThreadId, UserId};

use super::{Posting, StaffChat, close_button, edit, header_html, staff_keyboard, tell_staff};
use crate::app::App;
use crate::callback::Action;
use crate::cases::events::{CaseEvent, Kind, emit};
use crate::cases::store::Rated;
use crate::cases::{Case, NEAR_SHOWN, Status};
use crate::clock::Instant;
use crate::conversation::{self, Speaker};
use crate::engine::{Event, Reply};
use crate::markup;
use crate::stats::{Fact, FactKind};
use crate::store::SessionKey;
use crate::telegram::pacer::Priority;
use crate::telegram::send::{Outbox, Target, answer, answer_soon, deliver};
use crate::tree::UiText;

/// The staff chat as the scheduler pings it.
pub(in crate::telegram) fn staff_chat(out: &Outbox, app: &Arc<App>) -> StaffChat {
    StaffChat {
        out: out.clone(),
        app: Arc::clone(app),
    }
}

/// `/case`: how the person's open case stands, with the button to close
/// it; or that they have none.
pub(in crate::telegram) async fn my_case(
    out: &Outbox,
    app: &Arc<App>,
    msg: &Message,
    target: Target,
) {
    let Some(user) = msg.from.as_ref() else {
        return;
    };
    let lang = conversation::person_lang(app, user.id.0, user.language_code.as_deref()).await;
    let tree = app.tree();
    let ui = tree.ui();
    let open = match app.settings.support_chat {
        Some(_) => app.store.open_case_of(user.id.0).await,
        None => Ok(None),
    };
    let reply = match open {
        Ok(Some(case)) => {
            let staff = case.taken_by.clone().unwrap_or_default();
            let which = match case.status() {
                // Answered by someone who did not take the case.
                Status::Waiting if staff.is_empty() => UiText::CaseStatusAnswered,
                Status::Waiting => UiText::CaseStatusWaiting,
                Status::Taken => UiText::CaseStatusTaken,
                Status::Open | Status::Closed => UiText::CaseStatusOpen,
            };
            let text = markup::fill(
                ui.text(which, lang),
                &[("case", &case.id.to_string()), ("staff", &staff)],
            );
            Reply {
                node: None,
                text,
                buttons: vec![vec![close_button(app, lang, case.id)]],
            }
        }
        Ok(None) => Reply::plain(ui.text(UiText::CaseNone, lang)),
        Err(e) => {
            log::error!("user {}: reading the open case failed: {e}", user.id);
            Reply::plain(ui.text(UiText::StoreError, lang))
        }
    };
    deliver(out, app, target, None, &[reply], Priority::Person);
}

/// A score pressed under a closed case: recorded once, for the person
/// whose case it is; the staff are told.
pub(in crate::telegram) async fn rate(
    out: &Outbox,
    app: &Arc<App>,
    query: &CallbackQuery,
    case_id: i64,
    stars: u8,
    target: Target,
) {
    let user = &query.from;
    let lang = conversation::person_lang(app, user.id.0, user.language_code.as_deref()).await;
    let tree = app.tree();
    let ui = tree.ui();
    let case = match app.store.rate_case(case_id, user.id.0, stars).await {
        Ok(Rated::Now(case)) => *case,
        Ok(Rated::Already) => {
            answer(out, query, Some(ui.text(UiText::CaseRatedAlready, lang))).await;
            return;
        }
        Ok(Rated::Refused) => {
            answer(out, query, Some(ui.text(UiText::CaseRateRefused, lang))).await;
            return;
        }
        Err(e) => {
            log::error!("case {case_id}: recording a rating failed: {e}");
            answer(out, query, Some(ui.text(UiText::StoreError, lang))).await;
            return;
        }
    };
    answer_soon(out, &query.id);
    log::info!("case {}: rated {stars}", case.id);
    emit(
        app,
        CaseEvent::new(Kind::Rated, &case).by_person().stars(stars),
    )
    .await;
    let now = app.clock.now();
    let detail = rating_detail(stars, case.taken_by.as_deref());
    let fact = Fact::new(now, FactKind::CaseRated, 0, &case.node, case.lang).with_detail(&detail);
    if let Err(e) = app.store.record(tree.version(), &[fact]).await {
        log::error!("case {}: recording the fact failed: {e}", case.id);
    }
    let stars = stars.to_string();
    let thanks = markup::fill(ui.text(UiText::CaseRated, lang), &[("stars", &stars)]);
    let menu = query.message.as_ref();
    deliver(
        out,
        app,
        target,
        menu,
        &[Reply::plain(thanks)],
        Priority::Person,
    );
    let told = markup::fill(
        &markup::to_html(ui.text(UiText::CaseRatedStaff, app.settings.default_lang)),
        &[("case", &case.id.to_string()), ("stars", &stars)],
    );
    tell_staff(out, app, &case, &told, Posting::Note).await;
}

/// A rating fact's detail: the stars, and who took the case (`-` for
/// nobody).
pub(crate) fn rating_detail(stars: u8, staff: Option<&str>) -> String {
    format!("{stars}:{}", staff.unwrap_or("-"))
}

/// Reopens the person's closed case for their words: the staff are told
/// in its topic (opened again) and its message gets its buttons back.
/// The case, unless it could not be reopened.
pub(in crate::telegram) async fn reopen(
    out: &Outbox,
    app: &Arc<App>,
    case: &Case,
    now: Instant,
) -> Option<Case> {
    let case = match app.store.reopen_case(case.id, now).await {
        Ok(Some(case)) => case,
        Ok(None) => return None,
        Err(e) => {
            log::error!("case {}: reopening it failed: {e}", case.id);
            return None;
        }
    };
    log::info!("case {}: reopened by the person's message", case.id);
    emit(app, CaseEvent::new(Kind::Reopened, &case).by_person()).await;
    let Some(staff) = app.settings.support_chat.map(ChatId) else {
        return Some(case);
    };
    if let Some(topic) = case.topic
        && let Err(e) = out
            .bot
            .reopen_forum_topic(staff, ThreadId(MessageId(topic)))
            .await
    {
        log::warn!("case {}: its topic could not be reopened: {e}", case.id);
    }
    let lang = app.settings.default_lang;
    let ui_text = |which| markup::to_html(app.tree().ui().text(which, lang));
    let status = markup::fill(
        &ui_text(UiText::CaseReopenedStaff),
        &[("case", &case.id.to_string())],
    );
    if let Some(post) = case.post {
        let html = header_html(app, &case, Some(&status));
        let keyboard = staff_keyboard(app, &case);
        edit(out, app, staff, MessageId(post), &html, Some(keyboard)).await;
    }
    tell_staff(out, app, &case, &status, Posting::Note).await;
    Some(case)
}

/// The case a closed one's person now writes to: reopened, with the note
/// that tells them so; or, when it was not reopened (another instance did,
/// or they opened another case meanwhile), the one open now. `None` when
/// neither could be read, the person told so.
pub(super) async fn open_again(
    out: &Outbox,
    app: &Arc<App>,
    case: &Case,
    target: Target,
    now: Instant,
) -> Option<(Case, Option<Reply>)> {
    let tree = app.tree();
    if let Some(case) = reopen(out, app, case, now).await {
        let text = tree.ui().text(UiText::CaseReopened, case.lang);
        let note = Reply::plain(markup::fill(text, &[("case", &case.id.to_string())]));
        return Some((case, Some(note)));
    }
    match app.store.open_case_of(case.user).await {
        Ok(Some(open)) => Some((open, None)),
        _ => {
            let failed = [Reply::plain(tree.ui().text(UiText::StoreError, case.lang))];
            deliver(out, app, target, None, &failed, Priority::Person);
            None
        }
    }
}

/// `/canned [name]`: the reply to send, in the person's language (as
/// `dialogs/` writes texts); or, for no name or an unknown one, what to
/// tell the staff, as HTML.
pub(in crate::telegram) fn canned(app: &App, case: &Case, name: &str) -> Result<String, String> {
    let tree = app.tree();
    let ui = tree.ui();
    let lang = app.settings.default_lang;
    let replies = tree.canned();
    let names = replies.keys().cloned().collect::<Vec<_>>().join(", ");
    if replies.is_empty() {
        return Err(markup::to_html(ui.text(UiText::StaffCannedNone, lang)));
    }
    match replies.get(name) {
        Some(reply) => Ok(reply.get(case.lang).to_string()),
        None if name.is_empty() => Err(markup::to_html(&markup::fill(
            ui.text(UiText::StaffCannedList, lang),
            &[("names", &names)],
        ))),
        None => Err(markup::to_html(&markup::fill(
            ui.text(UiText::StaffCannedUnknown, lang),
            &[("name", name), ("names", &names)],
        ))),
    }
}

/// `/send <node>`, from `by`: the person lands at that step, with its
/// buttons, in their language, where they talk with the bot (their
/// private chat if they have one). What to tell the staff.
pub(in crate::telegram) async fn send_step(
    out: &Outbox,
    app: &Arc<App>,
    case: &Case,
    node: &str,
    (by, now): (&str, Instant),
) -> String {
    let tree = app.tree();
    let ui = tree.ui();
    let lang = app.settings.default_lang;
    let say = |which, values: &[(&str, &str)]| {
        markup::to_html(&markup::fill(ui.text(which, lang), values))
    };
    if node.is_empty() {
        return say(UiText::StaffSendUsage, &[]);
    }
    if tree.get(node).is_none() {
        let mut near: Vec<(f64, &str)> = tree
            .nodes()
            .map(|(_, n)| (strsim::jaro_winkler(node, &n.id), n.id.as_str()))
            .collect();
        near.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        let near: Vec<&str> = near
            .into_iter()
            .take(NEAR_SHOWN)
            .map(|(_, id)| id)
            .collect();
        return say(
            UiText::StaffSendUnknown,
            &[("node", node), ("near", &near.join(", "))],
        );
    }
    let private = crate::cases::open::has_private_chat(app, case.user).await;
    let chat = if private { case.user as i64 } else { case.chat };
    let thread = case.thread.filter(|_| !private);
    let who = Speaker {
        key: SessionKey {
            chat,
            user: case.user,
        },
        name: case.name.clone(),
        language_code: Some(case.lang.code().to_string()),
        thread,
        answering: None,
    };
    let jump = Action::Jump {
        to: node.to_string(),
    };
    let replies = match conversation::handle(app, &who, Event::Press(Some(&jump))).await {
        Ok(replies) => replies,
        Err(e) => {
            log::error!("case {}: sending a step failed", case.id);
            return markup::to_html(&e.apology);
        }
    };
    let intro = markup::to_html(ui.text(UiText::CaseStepSent, case.lang));
    super::tell_person(out, app, case, &intro, None).await;
    let target = Target {
        chat: ChatId(chat),
        thread: thread.map(|t| ThreadId(MessageId(t))),
        reply_to: None,
        owner: Some(UserId(case.user)),
    };
    deliver(out, app, target, None, &replies, Priority::Person);
    log::info!("case {}: staff sent the step {node}", case.id);
    let case = super::staff_answered(app, case, now).await;
    let event = CaseEvent::new(Kind::Message, &case).by_staff(by);
    emit(app, event.text(&format!("/send {node}"))).await;
    say(
        UiText::StaffSent,
        &[("node", node), ("lang", case.lang.code())],
    )
}
