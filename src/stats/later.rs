//! The next-day question ("did it get solved in the end?"), asked once when it falls due: taken from the store before it is sent, so a failure loses the question rather than asking twice.

use super::Later;
use crate::app::{App, Delivery, Reach, Recipient};
use crate::callback::Action;
use crate::clock::Instant;
use crate::engine::{Reply, button};
use crate::store::StoreError;
use crate::tree::{Tree, UiButton, UiText};

/// At most this many questions per round; with more due, the next round
/// follows at once.
const BATCH: usize = 100;

/// Asks the next-day questions due at `now`, each once, where a reminder
/// would go: privately if possible, else in the group with a mention.
/// Returns whether more are due.
pub(crate) async fn ask_due<R: Reach>(
    reach: &R,
    app: &App,
    now: Instant,
) -> Result<bool, StoreError> {
    let due = app.store.due_later(now, BATCH).await?;
    let more = due.len() == BATCH;
    for later in due {
        let private = app.store.has_private_chat(later.user).await?;
        if !app.store.take_later(later.chat, later.user).await? {
            continue;
        }
        let to = Recipient {
            chat: later.chat,
            user: later.user,
            name: later.name.clone(),
            thread: later.thread,
        };
        let who = format!("chat {} user {}", later.chat, later.user);
        match reach
            .deliver(&to, &question(&app.tree(), &later), private)
            .await
        {
            Delivery::Sent => log::info!("{who}: asked whether it got solved"),
            Delivery::Undeliverable(e) | Delivery::MaybeSent(e) | Delivery::TryAgain(e) => {
                log::warn!("{who}: the next-day question did not go out ({e}); not asked again");
            }
            Delivery::Postponed => {
                log::info!("{who}: shutting down; the next-day question was not asked");
            }
        }
    }
    Ok(more)
}

/// The next-day question: did it get solved after all, at the end where
/// the checks stopped?
pub(crate) fn question(tree: &Tree, later: &Later) -> Reply {
    let ui = tree.ui();
    let lang = later.lang;
    let end = tree
        .get(&later.node)
        .and_then(|n| tree.node(n).brief.as_ref())
        .map_or(later.node.as_str(), |b| b.get(lang));
    let answer = |solved| Action::LaterAnswer {
        solved,
        at: later.node.clone(),
    };
    Reply {
        node: None,
        text: ui.text(UiText::LaterQuestion, lang).replace("{end}", end),
        buttons: vec![vec![
            button(ui.button(UiButton::LaterYes, lang), answer(true)),
            button(ui.button(UiButton::LaterNo, lang), answer(false)),
        ]],
    }
}
