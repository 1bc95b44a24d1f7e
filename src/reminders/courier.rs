//! Reminders sent when they fall due: each plan claimed before it is sent and removed after, so none is sent twice; one that could not go out is tried again, one that may have gone out is not.
//!
//! The scheduler runs a round now and then; how a message reaches the
//! person is the adapter's (`Reach`).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::task::JoinSet;

use super::{Kind, Reminder, replies};
use crate::app::{App, Delivery, Reach, Recipient};
use crate::clock::Instant;
use crate::stats::{Fact, FactKind};
use crate::store::StoreError;

/// At most this many plans per round; with more due, the next round
/// follows at once.
pub(crate) const BATCH: usize = 100;

/// How long a claim on a reminder lasts: far longer than sending one takes,
/// even waiting out Telegram's limits. Only a claim that ran out (its
/// process died) is ever recovered.
const CLAIM_SECS: i64 = 600;

/// How often claims left by a stopped process are looked for.
const RECOVER_SECS: i64 = 3600;

/// What a round found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Round {
    /// More were due than one round sends.
    pub more: bool,
    /// A send failed for now: the next round should wait a little.
    pub retry_soon: bool,
}

/// The sender of reminders, with what one round leaves for the next.
#[derive(Debug, Default)]
pub(crate) struct Courier {
    /// Who this process is, on the reminders it claims.
    owner: String,
    /// When claims left by a stopped process were last cleared.
    recovered_at: Option<Instant>,
    /// Reminders sent whose removal from the store failed: removed first
    /// thing next round, and never sent again meanwhile (they stay
    /// claimed).
    sent_unrecorded: Vec<i64>,
    /// Reminders claimed but not sent whose release failed: released
    /// first thing next round, so they are not lost.
    unsent_claimed: Vec<i64>,
}

impl Courier {
    pub(crate) fn new(owner: String) -> Courier {
        Courier {
            owner,
            ..Courier::default()
        }
    }

    /// Sends the plans due at `now`, side by side, so one waiting for a
    /// busy chat does not hold up the others (the adapter keeps them all
    /// within Telegram's limits, behind people's own answers).
    pub(crate) async fn round<R: Reach>(
        &mut self,
        reach: &R,
        app: &Arc<App>,
        now: Instant,
    ) -> Result<Round, StoreError> {
        self.settle(app, now).await?;
        let due = app.store.due_reminders(now, BATCH).await?;
        let mut round = Round {
            more: due.len() == BATCH,
            retry_soon: false,
        };
        let mut sends = JoinSet::new();
        let mut plans = HashMap::new();
        for plan in due.chunk_by(|a, b| a.plan == b.plan) {
            let ids: Vec<i64> = plan.iter().map(|r| r.id).collect();
            let (reach, app, plan) = (reach.clone(), Arc::clone(app), plan.to_vec());
            let mut left = Courier::new(self.owner.clone());
            let task = sends.spawn(async move {
                let done = left.deliver(&reach, &app, now, &plan).await;
                (done, left)
            });
            plans.insert(task.id(), ids);
        }
        let mut failure = None;
        while let Some(joined) = sends.join_next().await {
            let (done, left) = match joined {
                Ok(finished) => finished,
                Err(e) => {
                    // It may have been claimed and sent: as with a send
                    // whose fate is unknown, it is removed, never sent twice.
                    log::error!("scheduler: sending a reminder failed unexpectedly: {e}");
                    let ids = plans.remove(&e.id()).unwrap_or_default();
                    self.sent_unrecorded.extend(ids);
                    round.retry_soon = true;
                    continue;
                }
            };
            self.sent_unrecorded.extend(left.sent_unrecorded);
            self.unsent_claimed.extend(left.unsent_claimed);
            match done {
                Ok(true) => {}
                Ok(false) => round.retry_soon = true,
                Err(e) => failure = Some(e),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(round),
        }
    }

    /// Clears what earlier rounds, or a stopped process, left: claims run
    /// out (hourly, and at the first round), reminders sent but not
    /// removed, reminders not sent but not released.
    async fn settle(&mut self, app: &App, now: Instant) -> Result<(), StoreError> {
        let store = &app.store;
        if self.recovered_at.is_none_or(|at| now >= at + RECOVER_SECS) {
            let dropped = store.recover_claimed(now).await?;
            if dropped > 0 {
                log::warn!(
                    "scheduler: {dropped} reminder(s) were being sent by a process that stopped; \
                     they may have arrived, so they are not sent again"
                );
            }
            self.recovered_at = Some(now);
        }
        if !self.sent_unrecorded.is_empty() {
            store.finish_reminders(&self.sent_unrecorded).await?;
            self.sent_unrecorded.clear();
        }
        if !self.unsent_claimed.is_empty() {
            store.release_reminders(&self.unsent_claimed).await?;
            self.unsent_claimed.clear();
        }
        Ok(())
    }

    /// Sends one plan's due reminders as one message: the latest of them
    /// (the bot may have been down past several), or, if the window has
    /// closed meanwhile, the note saying so. Returns false if it must be
    /// tried again.
    async fn deliver<R: Reach>(
        &mut self,
        reach: &R,
        app: &App,
        now: Instant,
        due: &[Reminder],
    ) -> Result<bool, StoreError> {
        let Some(latest) = due.iter().max_by_key(|r| (r.due_at, r.id)) else {
            return Ok(true);
        };
        let ids: Vec<i64> = due.iter().map(|r| r.id).collect();
        let private = app.store.has_private_chat(latest.user).await?;
        let until = now + CLAIM_SECS;
        if !app.store.claim_reminders(&ids, &self.owner, until).await? {
            // Cancelled between the query and now.
            return Ok(true);
        }
        let closed = latest.kind == Kind::Window && latest.deadline.is_some_and(|d| d <= now);
        let (tree, tz) = (app.tree(), app.settings.timezone);
        let reply = match closed {
            true => replies::window_closed_reply(&tree, tz, latest),
            false => replies::reminder_reply(&tree, tz, now, latest),
        };
        let delivery = reach.deliver(&recipient(latest), &reply, private).await;
        let (who, id) = (
            format!("chat {} user {}", latest.chat, latest.user),
            latest.id,
        );
        match delivery {
            Delivery::Sent => {
                let late = if closed { " (window closed)" } else { "" };
                log::info!("{who}: reminder {id} sent{late}");
                app.metrics.reminders_sent.inc();
                let fact = Fact::new(
                    now,
                    FactKind::ReminderSent,
                    latest.conv,
                    &latest.node,
                    latest.lang,
                );
                if let Err(e) = app.store.record(app.tree().version(), &[fact]).await {
                    log::error!("scheduler: recording a delivered reminder failed: {e}");
                }
            }
            Delivery::MaybeSent(e) => {
                log::warn!("{who}: reminder {id} may not have arrived ({e}); not sent again");
            }
            Delivery::Undeliverable(e) => {
                log::warn!("{who}: reminder {id} cannot be delivered ({e}); dropped");
            }
            Delivery::TryAgain(_) | Delivery::Postponed => {
                match delivery {
                    Delivery::TryAgain(e) => {
                        log::warn!("{who}: sending reminder {id} failed ({e}); will try again");
                    }
                    _ => {
                        log::info!("{who}: reminder {id} not sent before shutting down; it will be")
                    }
                }
                if let Err(e) = app.store.release_reminders(&ids).await {
                    self.unsent_claimed.extend(ids);
                    return Err(e);
                }
                return Ok(false);
            }
        }
        if let Err(e) = app.store.finish_reminders(&ids).await {
            self.sent_unrecorded.extend(ids);
            return Err(e);
        }
        Ok(true)
    }
}

/// Whom a reminder goes to.
pub(crate) fn recipient(reminder: &Reminder) -> Recipient {
    Recipient {
        chat: reminder.chat,
        user: reminder.user,
        name: reminder.name.clone(),
        thread: reminder.thread,
    }
}
