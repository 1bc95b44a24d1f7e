//! The poller's gate: getUpdates is asked for only while this process can prove it holds the poller's lease on a shared store, and a 409 from Telegram has the lease checked at once.
//!
//! Telegram lets one getUpdates run per bot: a second one ends the first
//! with 409 ("terminated by other getUpdates request"), and the ended one
//! returns no updates. So two processes that both think they poll see a
//! stream of 409s, and the updates go to whichever asked last. The gate
//! lets the fetching stream go on (which makes the next request) only
//! while the lease is held; a 409 makes it wait for a check of the lease
//! that began after it. A request in flight when polling stops is left
//! as it is: Telegram ends it at its timeout, or with a 409 when the
//! holder asks, and what it returns waits, unconfirmed, for the holder.

use futures::{Stream, StreamExt};
use teloxide::stop::{StopFlag, StopToken};
use teloxide::types::Update;
use teloxide::{ApiError, RequestError};

use crate::store::PollerLease;

type Item = Result<Vec<Update>, RequestError>;

/// The fetching stream `inner`, gated by `lease` (none: always open), and
/// stopped by `flag`: while the lease is held, through the inner stream's
/// own `inner_stop`, so its last request confirms what was received; while
/// it is not, at once.
pub(super) fn gated<'a, S>(
    inner: S,
    lease: Option<PollerLease>,
    flag: StopFlag,
    inner_stop: StopToken,
) -> impl Stream<Item = Item> + Send + 'a
where
    S: Stream<Item = Item> + Send + Unpin + 'a,
{
    let gate = Gate {
        inner,
        lease,
        flag,
        inner_stop,
        stopping: false,
        frozen: false,
        proof_after: None,
        conflict_told: false,
    };
    futures::stream::unfold(gate, |mut gate| async move {
        let item = gate.next().await?;
        Some((item, gate))
    })
}

struct Gate<S> {
    inner: S,
    lease: Option<PollerLease>,
    flag: StopFlag,
    inner_stop: StopToken,
    /// The inner stream was told to stop and is left to end.
    stopping: bool,
    /// Polling stopped while a request may have been in flight: what it
    /// ends with, once polling resumes, is stale.
    frozen: bool,
    /// After a 409: polling goes on only on a proof of a check with a
    /// higher number than this.
    proof_after: Option<u64>,
    /// A 409 with the lease still this process's was told, in this run of
    /// them.
    conflict_told: bool,
}

impl<S: Stream<Item = Item> + Unpin> Gate<S> {
    /// Whether the lease allows polling now.
    fn open(&self) -> bool {
        self.lease.as_ref().is_none_or(|lease| lease.now().held)
    }

    async fn next(&mut self) -> Option<Item> {
        loop {
            if self.stopping {
                return self.inner.next().await;
            }
            if self.flag.is_stopped() {
                if !self.open() {
                    return None;
                }
                self.stopping = true;
                self.inner_stop.stop();
                continue;
            }
            let item = match &mut self.lease {
                None => tokio::select! {
                    biased;
                    () = &mut self.flag => continue,
                    item = self.inner.next() => item,
                },
                Some(lease) => {
                    // Before each batch (or error) is taken, which lets
                    // the next request go: only while the lease is held,
                    // and after a 409 only on a newer proof.
                    let after = self.proof_after;
                    let held = tokio::select! {
                        biased;
                        () = &mut self.flag => continue,
                        held = lease.until(|h| h.held && after.is_none_or(|p| h.proof > p)) => held,
                    };
                    if held.is_none() {
                        // The lease is no longer kept: nothing more is asked.
                        (&mut self.flag).await;
                        continue;
                    }
                    self.proof_after = None;
                    tokio::select! {
                        biased;
                        () = &mut self.flag => continue,
                        item = self.inner.next() => item,
                        _ = lease.until(|h| !h.held) => {
                            self.frozen = true;
                            continue;
                        }
                    }
                }
            };
            let item = item?;
            if std::mem::take(&mut self.frozen)
                && let Err(e) = &item
            {
                log::debug!("the getUpdates left in flight when polling stopped ended: {e}");
                continue;
            }
            let conflict = matches!(
                item,
                Err(RequestError::Api(ApiError::TerminatedByOtherGetUpdates))
            );
            if conflict && let Some(lease) = self.lease.clone() {
                self.after_conflict(lease).await;
                continue;
            }
            if item.is_ok() {
                self.conflict_told = false;
            }
            return Some(item);
        }
    }

    /// Another getUpdates with this bot's token ended this one: the lease
    /// is checked at once, and polling goes on only on a check that began
    /// after now and found it this process's.
    async fn after_conflict(&mut self, mut lease: PollerLease) {
        let asked = lease.now().begun;
        lease.recheck();
        self.proof_after = Some(asked);
        let answer = tokio::select! {
            biased;
            () = &mut self.flag => return,
            answer = lease.until(|h| h.ended > asked) => answer,
        };
        match answer {
            Some(h) if h.held && h.proof > asked => {
                if !std::mem::replace(&mut self.conflict_told, true) {
                    log::warn!(
                        "another getUpdates with this bot's token ended this process's (409), though this process holds the poller's lease: a bot outside this store may be polling"
                    );
                }
            }
            // Taken by another: the lease's renewal said so. Unreadable:
            // the next proof is waited for.
            _ => log::debug!("getUpdates ended by another (409); polling waits for the lease"),
        }
    }
}
