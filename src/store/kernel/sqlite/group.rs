//! The group commit: batches that arrive while a commit is under way wait, and are then written together in one transaction, each with its own checks and answer.

use std::sync::MutexGuard;

use tokio::sync::oneshot;

use super::SqliteKernel;
use super::calls::panicked;
use crate::store::StoreError;
use crate::store::kernel::Batch;

/// A batch waiting for its group's commit, and where its answer goes.
type Waiting = (Batch, oneshot::Sender<Result<usize, StoreError>>);

/// The batches waiting to be committed together.
#[derive(Default)]
pub(super) struct Queue {
    waiting: Vec<Waiting>,
    /// Whether a task is committing what waits (the leader): the batches
    /// left meanwhile join its next group.
    leading: bool,
    /// How many groups were committed, for the tests.
    #[cfg(test)]
    groups: usize,
}

impl SqliteKernel {
    /// Commits `batch` with whatever else waits: as the leader if no
    /// commit is under way, or in the leader's next group.
    pub(super) async fn commit_in_group(&self, batch: Batch) -> Result<usize, StoreError> {
        let (answer, answered) = oneshot::channel();
        let lead = {
            let mut queue = self.queue();
            queue.waiting.push((batch, answer));
            !std::mem::replace(&mut queue.leading, true)
        };
        if lead {
            let leader = Leader {
                kernel: self.clone(),
                done: false,
                handed: false,
            };
            leader.lead(LEAD_ROUNDS).await;
        }
        answered.await.unwrap_or_else(|_| Err(panicked()))
    }

    /// How many groups were committed so far.
    #[cfg(test)]
    pub(super) fn groups(&self) -> usize {
        self.queue().groups
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        // Taken for a push or a swap of the list alone.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commits the batches that wait as one group; false (and the leading
    /// given up) if none does.
    fn commit_waiting(&self) -> bool {
        let group = {
            let mut queue = self.queue();
            if queue.waiting.is_empty() {
                queue.leading = false;
                return false;
            }
            #[cfg(test)]
            {
                queue.groups += 1;
            }
            std::mem::take(&mut queue.waiting)
        };
        let (batches, answers): (Vec<Batch>, Vec<_>) = group.into_iter().unzip();
        let each = match self.calls.now(|db| db.commit_group(&batches)) {
            Ok(each) => each,
            // The group could not be written whole (a write failed
            // partway, say): each batch is written alone, and answered for
            // itself.
            Err(_) => batches
                .iter()
                .map(|batch| self.calls.now(|db| db.commit(batch)))
                .collect(),
        };
        for (answer, result) in answers.into_iter().zip(each) {
            // A caller that stopped waiting has its batch written all the
            // same, as a commit whose answer was lost would be.
            let _ = answer.send(result);
        }
        true
    }
}

/// The leading, held by the caller whose batch found no commit under way:
/// it commits what waits, a group at a time. Before each group it lets
/// the other tasks that are ready run: under load they are the steps about
/// to write, and their batches join the group; alone, it goes on at once.
/// After `LEAD_ROUNDS` groups, or if its caller stops waiting, the leading
/// goes on in a task of its own.
struct Leader {
    kernel: SqliteKernel,
    done: bool,
    /// Whether this is the task the leading was handed on to.
    handed: bool,
}

/// Groups a caller commits before it hands the leading on, so that its
/// own step is not held up by a steady stream of others.
const LEAD_ROUNDS: usize = 4;

impl Leader {
    async fn lead(mut self, rounds: usize) {
        for _ in 0..rounds {
            let_others_run().await;
            if !self.kernel.commit_waiting() {
                self.done = true;
                return;
            }
        }
    }
}

/// Lets the tasks that are ready run once before going on. A task that
/// wakes itself goes to the back of its runtime's queue; tokio's own
/// `yield_now` is not used, as it waits for the runtime's scheduler, which
/// never comes back under a blocking executor (the opening of an old file
/// runs under one).
async fn let_others_run() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

impl Drop for Leader {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let kernel = self.kernel.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) if !self.handed => {
                let next = Leader {
                    kernel,
                    done: false,
                    handed: true,
                };
                runtime.spawn(next.lead(usize::MAX));
            }
            // Outside a runtime, or the handed-on task dropped unfinished
            // (its runtime is shutting down): what waits is committed here,
            // rather than handed on again and again.
            _ => while kernel.commit_waiting() {},
        }
    }
}
