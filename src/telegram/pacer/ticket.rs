//! A request's side of the pacer: a ticket waits for its turn here and, with a store other processes share, in their common budget; it is put back to try again, and gives its place up when dropped.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Pacer, Priority, Turn};
use crate::metrics::Metrics;
use crate::store::Budget;

impl Pacer {
    /// Shares Telegram's limits with the other processes that take from
    /// `budget`: each request, once its turn comes here, also waits for
    /// room there. Set once, before the first request.
    pub fn share(&self, budget: Arc<dyn Budget>) {
        let _ = self.shared.budget.set(budget);
    }

    /// Waits for room in the shared budget, if there is one. A budget that
    /// cannot be reached is skipped: this process's own pacing goes on.
    async fn take_shared(&self, chat: i64) {
        use std::sync::atomic::Ordering;
        let Some(budget) = self.shared.budget.get() else {
            return;
        };
        // A group's minute can be full for most of a minute; longer than
        // that, the other processes' share is not waited for.
        let give_up = Instant::now() + Duration::from_secs(90);
        loop {
            match budget.take(chat).await {
                Ok(None) => break,
                Ok(Some(_)) if Instant::now() >= give_up || self.lock().closed => {
                    log::warn!(
                        "chat {chat}: the shared budget stayed full; sent on this process's own pacing"
                    );
                    return;
                }
                Ok(Some(wait)) => tokio::time::sleep(wait.min(Duration::from_secs(1))).await,
                Err(e) => {
                    if !self.shared.budget_failing.swap(true, Ordering::Relaxed) {
                        log::warn!(
                            "the shared budget of messages cannot be reached ({e}); pacing by this process alone"
                        );
                    }
                    return;
                }
            }
        }
        if self.shared.budget_failing.swap(false, Ordering::Relaxed) {
            log::warn!("the shared budget of messages answers again");
        }
    }
}

/// Work a stop waits for; done when dropped.
pub struct Hold {
    pub(super) pacer: Pacer,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.pacer
            .shared
            .held
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        self.pacer.shared.done.notify_waiters();
    }
}

/// A place in a chat's lane. Dropping it gives the place (or the turn) up.
pub struct Ticket {
    pub(super) pacer: Pacer,
    pub(super) chat: i64,
    pub(super) ticket: u64,
    pub(super) priority: Priority,
    pub(super) owner: Option<u64>,
    pub(super) edit: Option<i32>,
    pub(super) turn: Option<oneshot::Receiver<Turn>>,
    pub(super) granted: bool,
    /// Whether the turn granted was also taken from the shared budget.
    pub(super) budgeted: bool,
}

impl Ticket {
    /// Waits for this ticket's turn.
    /// Cancel-safe: a wait given up keeps the ticket's place.
    pub async fn turn(&mut self) -> Turn {
        if let Some(rx) = self.turn.as_mut() {
            let turn = rx.await.unwrap_or(Turn::Closed);
            self.turn = None;
            self.granted = turn == Turn::Go;
            self.budgeted = false;
            if turn != Turn::Go {
                return turn;
            }
        } else if !self.granted {
            return Turn::Closed;
        }
        if !self.budgeted {
            self.pacer.take_shared(self.chat).await;
            self.budgeted = true;
        }
        Turn::Go
    }

    /// The request was refused with a 429: the chat waits `retry_after`
    /// and this request goes first after it.
    pub fn retry_after(&mut self, retry_after: Duration) {
        let pacer = self.pacer.clone();
        pacer.again(self, retry_after);
    }

    /// In its place, a new message instead of an edit that can no longer
    /// be made: no newer edit of that message supersedes it any more.
    pub fn again_as_send(&mut self) {
        self.edit = None;
        self.again(Duration::ZERO);
    }

    /// The request must be made again, after `pause`.
    pub fn again(&mut self, pause: Duration) {
        let pacer = self.pacer.clone();
        pacer.again(self, pause);
    }

    pub fn chat(&self) -> i64 {
        self.chat
    }

    /// Where this ticket's request is counted, if anywhere.
    pub fn metrics(&self) -> Option<&Metrics> {
        self.pacer.shared.metrics.get().map(|m| &**m)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.pacer
            .shared
            .alive
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if self.granted {
            self.pacer.finish(self.chat, self.ticket);
        } else {
            self.pacer.withdraw(self.chat, self.ticket);
        }
    }
}
