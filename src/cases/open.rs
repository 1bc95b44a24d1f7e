//! Opening a case once the person consented: what the consent covers, one open case per person, the case posted to the team or not opened at all, and what the person is told.
//!
//! Posting to the staff chat is the adapter's (`Staff`); the decisions are
//! here.

use super::events::{CaseEvent, Kind, emit};
use super::{Case, NewCase, Opened, summary};
use crate::app::App;
use crate::callback::Action;
use crate::clock::Instant;
use crate::engine::{Reply, Session, button};
use crate::lang::Lang;
use crate::stats::{Fact, FactKind};
use crate::store::SessionKey;
use crate::tree::{Provider, UiButton, UiText};

/// The staff's side of a case, which the adapter provides.
pub(crate) trait Staff {
    /// Posts a new case to the staff chat; whether it went out.
    fn post_case(&self, case: &Case) -> impl std::future::Future<Output = bool> + Send;
}

/// Who asks for a person, and where, as the adapter learnt it.
#[derive(Debug, Clone)]
pub(crate) struct Asker {
    pub key: SessionKey,
    /// The forum topic they asked in.
    pub thread: Option<i32>,
    pub name: String,
    pub username: Option<String>,
    /// Where they asked, in words for the staff: a group's title, or
    /// `None` for their private chat.
    pub group: Option<String>,
}

/// The person's answer to their consent: a text of `ui.toml`, and the
/// case it is about while that case is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Told {
    pub text: UiText,
    pub case: Option<i64>,
    /// When a new case was opened, for what is said about staff hours.
    pub opened_at: Option<Instant>,
}

/// What consent given at `at` covers: the session of someone standing
/// there, with a team to hand the case to. Otherwise the note for the
/// press (the menu is out of date, or the store failed).
pub(crate) async fn consented(app: &App, key: SessionKey, at: &str) -> Result<Session, UiText> {
    let session = match app.store.load(key).await {
        Ok(session) => session,
        Err(e) => {
            log::error!(
                "chat {} user {}: loading the session failed: {e}",
                key.chat,
                key.user
            );
            return Err(UiText::StoreError);
        }
    };
    match session {
        // Consent covers where the person stood when they gave it.
        Some(session)
            if app.settings.support_chat.is_some() && session.node.as_deref() == Some(at) =>
        {
            Ok(session)
        }
        _ => Err(UiText::MenuOutdated),
    }
}

/// Opens the case of `asker`, who consented at `at`, and posts it to the
/// team: one open case at a time, and a case the team never saw is closed
/// at once.
pub(crate) async fn open(
    staff: &impl Staff,
    app: &App,
    asker: &Asker,
    session: &Session,
    at: &str,
) -> Told {
    let now = app.clock.now();
    let new = new_case(app, asker, session, at, now);
    let case = match app.store.open_case(&new, now).await {
        Ok(Opened::New(case)) => case,
        Ok(Opened::Existing(case)) => return told(UiText::HandoffExisting, Some(case.id)),
        Err(e) => {
            log::error!("user {}: opening a case failed: {e}", asker.key.user);
            return told(UiText::StoreError, None);
        }
    };
    if !staff.post_case(&case).await {
        if let Err(e) = app.store.close_case(case.id, now).await {
            log::error!("case {}: closing an unposted case failed: {e}", case.id);
        }
        return told(UiText::HandoffFailed, None);
    }
    log::info!(
        "case {}: opened for user {} from chat {}",
        case.id,
        asker.key.user,
        asker.key.chat
    );
    emit(app, CaseEvent::new(Kind::Opened, &case)).await;
    let fact = Fact::new(now, FactKind::HandoffOpened, session.conv, at, session.lang);
    if let Err(e) = app.store.record(app.tree().version(), &[fact]).await {
        log::error!("case {}: recording the fact failed: {e}", case.id);
    }
    // Where the team's answers will come: privately when the person has
    // started the bot there (a store failure counts as no).
    let opened = if asker.key.is_private() {
        UiText::HandoffOpened
    } else if has_private_chat(app, asker.key.user).await {
        UiText::HandoffOpenedGroupPrivate
    } else {
        UiText::HandoffOpenedGroup
    };
    Told {
        opened_at: Some(now),
        ..told(opened, Some(case.id))
    }
}

/// Whether staff are in at `at`: inside the profile's office hours, or
/// always when it gives none.
pub(crate) fn in_hours(provider: &Provider, at: Instant) -> bool {
    provider.hours.as_ref().is_none_or(|h| h.is_open(at))
}

/// What a person whose case opened at `at` is told about staff hours, in
/// `lang`: when staff are back, outside office hours; how soon they
/// usually answer, inside them (when the profile says).
pub(crate) fn hours_note(app: &App, at: Instant, lang: Lang) -> Option<String> {
    let tree = app.tree();
    let provider = tree.provider();
    let ui = tree.ui();
    if let Some(hours) = &provider.hours
        && !hours.is_open(at)
    {
        let back = hours.next_open(at)?;
        return Some(crate::markup::fill(
            ui.text(UiText::HandoffAfterHours, lang),
            &[("back", &hours.when(back, lang))],
        ));
    }
    let within = provider.field("reply_within", lang)?;
    Some(crate::markup::fill(
        ui.text(UiText::HandoffReplyTime, lang),
        &[("within", &within)],
    ))
}

/// Whether the person has started the bot in private (a store failure
/// counts as no: the group is the way that does not depend on it).
pub(crate) async fn has_private_chat(app: &App, user: u64) -> bool {
    app.store.has_private_chat(user).await.unwrap_or_else(|e| {
        log::error!("user {user}: reading the private chat failed: {e}");
        false
    })
}

fn told(text: UiText, case: Option<i64>) -> Told {
    Told {
        text,
        case,
        opened_at: None,
    }
}

/// The case as it goes to the team: what the person chose, never what
/// they typed.
fn new_case(app: &App, asker: &Asker, session: &Session, at: &str, now: Instant) -> NewCase {
    let tree = app.tree();
    let staff_lang = app.settings.default_lang;
    let place = match &asker.group {
        None => tree.ui().text(UiText::CasePrivate, staff_lang).to_string(),
        Some(title) => format!("{title} ({})", asker.key.chat),
    };
    NewCase {
        user: asker.key.user,
        chat: asker.key.chat,
        thread: asker.thread,
        name: asker.name.clone(),
        username: asker.username.clone(),
        lang: session.lang,
        node: at.to_string(),
        place,
        summary: summary(&tree, session, at, staff_lang),
        in_hours: in_hours(tree.provider(), now),
    }
}

/// The person's answer, in place of the consent question, in `lang`: the
/// text with the case's number and, while the case is open, the button
/// that ends it.
pub(crate) fn reply(app: &App, lang: Lang, told: Told) -> Reply {
    let tree = app.tree();
    let ui = tree.ui();
    let number = told.case.map(|c| c.to_string()).unwrap_or_default();
    let buttons = told.case.map(|case| {
        let close = ui.button(UiButton::CaseCloseMine, lang);
        vec![vec![button(close, Action::CaseClose { case })]]
    });
    let mut text = ui.text(told.text, lang).replace("{case}", &number);
    if let Some(note) = told.opened_at.and_then(|at| hours_note(app, at, lang)) {
        text.push_str("\n\n");
        text.push_str(&note);
    }
    Reply {
        node: None,
        text,
        buttons: buttons.unwrap_or_default(),
    }
}
