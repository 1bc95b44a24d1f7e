//! With a store several processes share: the heartbeat that keeps this process known as alive, and the takeover of what a stopped process left open in the inbox.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use dptree::di::DependencyMap;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::inbox::Inbox;
use super::send::Outbox;
use super::{lane_of, schema};
use crate::app::App;

/// Says this process is alive for another `lease`; whether that was
/// written.
pub(super) async fn beat(app: &App, lease: Duration) -> bool {
    let until = app.clock.now() + lease.as_secs() as i64;
    match app.store.heartbeat(&app.instance, until).await {
        Ok(()) => true,
        Err(e) if e.is_outage() => {
            log::debug!("the heartbeat could not be written: {e}");
            false
        }
        Err(e) => {
            log::warn!("the heartbeat could not be written: {e}");
            false
        }
    }
}

/// The heartbeat is written `BEATS_PER_LEASE` times a lease, and what a
/// stopped process left is looked for as often: a process that stopped
/// cleanly has its work taken over within that part of the lease.
pub(crate) const BEATS_PER_LEASE: u32 = 3;

/// With a shared store, the tasks that keep this process known as alive
/// and take over what a stopped process left.
pub(super) struct Keeper {
    pub(super) heart: JoinHandle<()>,
    pub(super) takeover: JoinHandle<()>,
    /// Tells the takeover to take nothing more.
    pub(super) stop: watch::Sender<bool>,
}

impl Keeper {
    pub(super) fn spawn(
        app: Arc<App>,
        inbox: Arc<Inbox>,
        out: Outbox,
        deps: DependencyMap,
        lease: Duration,
    ) -> Keeper {
        let every = (lease / BEATS_PER_LEASE).max(Duration::from_millis(100));
        let heart = {
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    beat(&app, lease).await;
                }
            })
        };
        let (stop, stopping) = watch::channel(false);
        let takeover = tokio::spawn(take_over(inbox, out, deps, every, stopping));
        Keeper {
            heart,
            takeover,
            stop,
        }
    }
}

/// Every `every`, handles what a process that stopped (its heartbeat ran
/// out) left open in the inbox: one update after another, in the order
/// they came, until told to stop.
async fn take_over(
    inbox: Arc<Inbox>,
    out: Outbox,
    deps: DependencyMap,
    every: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let handler = schema();
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stopping.changed() => return,
        }
        for update in inbox.reopen().await {
            if *stopping.borrow() {
                // Left open: handled after the restart, or by another.
                return;
            }
            // Counted into its worker's queue as the door counts it, since
            // the handler counts it out.
            if let (Some(chat), Some(user)) = (update.chat(), update.from()) {
                out.backlog
                    .enter(usize::from(lane_of(chat.id, Some(user.id))));
            }
            let mut deps = deps.clone();
            deps.insert(update);
            if let ControlFlow::Break(Err(e)) = handler.dispatch(deps).await {
                log::error!("an update taken over failed: {e}");
            }
        }
    }
}
