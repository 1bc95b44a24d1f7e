//! The door for updates: polling only while this process holds the poller's lease, each polled batch recorded in the inbox whole before it is confirmed, repeats and unreadable kinds skipped, and updates beyond a member's pace dropped before the dispatcher sees them.

mod fetch;
pub(super) use fetch::Fetch;
mod gate;

use std::sync::Arc;

use teloxide::RequestError;
use teloxide::prelude::*;
use teloxide::types::ThreadId;
use teloxide::update_listeners::{StatefulListener, UpdateListener};

use super::inbox::{Inbox, Recorded};
use super::intake::{self, Admit, Intake, Said};
use super::pacer::Priority;
use super::send::{self, Outbox, Target, deliver};
use super::{lane_of, retry};
use crate::app::App;
use crate::conversation;
use crate::engine::Reply;
use crate::store::PollerLease;
use crate::tree::UiText;

/// Where updates come from.
pub(super) enum Source {
    /// Long polling, with the poller's lease where the store is shared:
    /// getUpdates only while it is held.
    Polling {
        polling: fetch::Fetch,
        lease: Option<PollerLease>,
        stop: teloxide::stop::StopToken,
        flag: teloxide::stop::StopFlag,
    },
    /// Posted to the webhook, recorded in the inbox already.
    Webhook {
        updates: tokio::sync::mpsc::Receiver<Update>,
        stop: teloxide::stop::StopToken,
        flag: teloxide::stop::StopFlag,
    },
}

impl Source {
    pub(super) fn polling(polling: fetch::Fetch, lease: Option<PollerLease>) -> Source {
        let (stop, flag) = teloxide::stop::mk_stop_token();
        Source::Polling {
            polling,
            lease,
            stop,
            flag,
        }
    }
}

/// How an update reached the door.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Fetched by polling: recorded here.
    Polled,
    /// Already in the inbox: posted to the webhook, or left open.
    Recorded,
}

/// The updates with the door in front: each polled update recorded in the
/// inbox before the next batch is asked for (which confirms this one),
/// repeats and unreadable kinds skipped, and updates beyond a member's
/// pace dropped before the dispatcher sees them. What a crash left open
/// goes first.
pub(super) struct Door {
    pub(super) source: Source,
    pub(super) intake: std::sync::Mutex<Intake>,
    pub(super) out: Outbox,
    pub(super) app: Arc<App>,
    pub(super) inbox: Arc<Inbox>,
    pub(super) reopened: Vec<Update>,
}

impl Door {
    pub(super) fn listener(self) -> impl UpdateListener<Err = RequestError> {
        StatefulListener::new(self, door_stream, |door: &mut Door| {
            match &mut door.source {
                Source::Polling { stop, .. } | Source::Webhook { stop, .. } => stop.clone(),
            }
        })
    }
}

fn door_stream<'a>(
    door: &'a mut Door,
) -> impl futures::Stream<Item = Result<Update, RequestError>> + Send + 'a {
    use futures::StreamExt;
    let Door {
        source,
        intake,
        out,
        app,
        inbox,
        reopened,
    } = door;
    let (intake, out, app, inbox) = (&*intake, &*out, &*app, &*inbox);
    // What a crash left open goes first, as one group.
    let reopened: Vec<Result<Update, RequestError>> =
        std::mem::take(reopened).into_iter().map(Ok).collect();
    let reopened = (!reopened.is_empty()).then_some((reopened, Origin::Recorded));
    let arriving = match source {
        // Each fetched batch is one item, and the request that confirms it
        // is made only when the stream is polled again: after `then` below
        // has recorded the batch whole. The gate passes the dispatcher's
        // stop on to the fetching.
        Source::Polling {
            polling,
            lease,
            flag,
            ..
        } => {
            let inner_stop = polling.stop_token();
            let inner = Box::pin(polling.batches());
            gate::gated(inner, lease.clone(), flag.clone(), inner_stop)
                .map(|batch| match batch {
                    Ok(updates) => (updates.into_iter().map(Ok).collect(), Origin::Polled),
                    Err(e) => (vec![Err(e)], Origin::Polled),
                })
                .boxed()
        }
        Source::Webhook { updates, flag, .. } => {
            futures::stream::poll_fn(move |cx| updates.poll_recv(cx))
                .map(|update| (vec![Ok(update)], Origin::Recorded))
                .take_until(flag.clone())
                .boxed()
        }
    };
    futures::stream::iter(reopened)
        .chain(arriving)
        .then(move |(items, origin)| async move {
            let polled = origin == Origin::Polled;
            // An update of a kind this bot cannot read is skipped unrecorded.
            let readable = |u: &Update| !matches!(u.kind, teloxide::types::UpdateKind::Error(_));
            let updates: Vec<&Update> = items
                .iter()
                .filter_map(|i| i.as_ref().ok())
                .filter(|u| readable(u))
                .collect();
            let mut recorded = if polled {
                inbox.record_all(&updates).await
            } else {
                Vec::new()
            }
            .into_iter();
            let mut passed = Vec::with_capacity(items.len());
            for item in items {
                let update = match item {
                    Ok(update) => update,
                    Err(e) => {
                        passed.push(Err(e));
                        continue;
                    }
                };
                let repeat = readable(&update) && matches!(recorded.next(), Some(Recorded::Repeat));
                if let Some(update) = at_door(intake, out, app, inbox, update, polled, repeat) {
                    passed.push(Ok(update));
                }
            }
            futures::stream::iter(passed)
        })
        .flatten()
}

/// One update at the door, recorded already if it is to be: whether it
/// goes on to the dispatcher.
fn at_door(
    intake: &std::sync::Mutex<Intake>,
    out: &Outbox,
    app: &Arc<App>,
    inbox: &Inbox,
    update: Update,
    polled: bool,
    repeat: bool,
) -> Option<Update> {
    if polled {
        retry::answered();
    }
    let id = i64::from(update.id.0);
    // Logged by id alone: teloxide would log it whole.
    if let teloxide::types::UpdateKind::Error(_) = &update.kind {
        log::warn!("update {id}: of a kind this bot cannot read; skipped");
        return None;
    }
    if repeat {
        log::info!("update {id}: received before; skipped");
        app.metrics.skip(crate::metrics::RECEIVED_BEFORE);
        return None;
    }
    app.metrics.update(match &update.kind {
        teloxide::types::UpdateKind::Message(_) => "message",
        teloxide::types::UpdateKind::CallbackQuery(_) => "callback_query",
        _ => "other",
    });
    let admitted = {
        let mut intake = intake.lock().unwrap_or_else(|e| e.into_inner());
        admit(&mut intake, out, app, &update)
    };
    if !admitted {
        inbox.done(id);
    }
    admitted.then_some(update)
}

/// Whether an update goes on to the dispatcher; a member over their pace
/// is told once, and their updates dropped until they calm down; an update
/// for a worker whose queue is full is dropped too.
fn admit(intake: &mut Intake, out: &Outbox, app: &Arc<App>, update: &Update) -> bool {
    let (Some(chat), Some(user)) = (update.chat(), update.from()) else {
        return true;
    };
    let now = tokio::time::Instant::now();
    // The staff chat's commands and presses are each an action on a case,
    // meant as given: none is taken for a repeat.
    let said = said_in(update).filter(|_| app.settings.support_chat != Some(chat.id.0));
    let verdict = intake.admit(chat.id.0, user.id.0, said, now);
    if verdict == Admit::Repeat {
        app.metrics.skip(crate::metrics::REPEATED);
        log::info!(
            "chat {} user {}: the same again while its answer is fresh; answered once",
            chat.id,
            user.id
        );
        if let teloxide::types::UpdateKind::CallbackQuery(query) = &update.kind {
            // The button stops spinning; the menu it changes is on its way.
            send::answer_soon(out, &query.id);
        }
        return false;
    }
    if verdict == Admit::Yes {
        // On only if its worker's queue has room: the dispatcher would
        // otherwise wait for it, and every other chat with it.
        return out
            .backlog
            .enter(usize::from(lane_of(chat.id, Some(user.id))));
    }
    if verdict == Admit::Warn {
        log::info!(
            "chat {} user {}: over the pace; told once, extra updates dropped",
            chat.id,
            user.id
        );
        let (out, app) = (out.clone(), Arc::clone(app));
        let (user_id, code) = (user.id, user.language_code.clone());
        let (chat_id, message) = (chat.id, update_message(update));
        tokio::spawn(async move {
            let text = conversation::note(&app, user_id.0, code.as_deref(), UiText::SlowDown).await;
            let target = Target {
                chat: chat_id,
                thread: message.and_then(|(_, thread)| thread),
                reply_to: message.map(|(id, _)| id).filter(|_| chat_id.0 < 0),
                owner: None,
            };
            deliver(
                &out,
                &app,
                target,
                None,
                &[Reply::plain(text)],
                Priority::Person,
            );
        });
    }
    false
}

/// What an update in a group carries, for telling a repeat: a command,
/// or a press of one button on one message. `None` for anything else, and
/// in a private chat, where nobody else's answers wait behind a repeat.
fn said_in(update: &Update) -> Option<Said> {
    use std::hash::{Hash, Hasher};
    use teloxide::types::UpdateKind;
    let mut hasher = std::hash::DefaultHasher::new();
    let fresh_for = match &update.kind {
        UpdateKind::Message(m) if !m.chat.is_private() => {
            let text = m.text()?.trim();
            if !text.starts_with('/') {
                return None;
            }
            text.hash(&mut hasher);
            intake::REPEAT_COMMAND
        }
        UpdateKind::CallbackQuery(q) => {
            let message = q.message.as_ref()?;
            if message.chat().is_private() {
                return None;
            }
            (message.id().0, q.data.as_deref()?).hash(&mut hasher);
            intake::REPEAT_PRESS
        }
        _ => return None,
    };
    Some(Said {
        what: hasher.finish(),
        fresh_for,
    })
}

/// The message an update is, or was pressed on, and its forum topic.
fn update_message(update: &Update) -> Option<(teloxide::types::MessageId, Option<ThreadId>)> {
    use teloxide::types::UpdateKind;
    match &update.kind {
        UpdateKind::Message(m) => Some((m.id, m.thread_id.filter(|_| m.is_topic_message))),
        UpdateKind::CallbackQuery(q) => q
            .message
            .as_ref()
            .and_then(|m| m.regular_message())
            .map(|m| (m.id, m.thread_id.filter(|_| m.is_topic_message))),
        _ => None,
    }
}
