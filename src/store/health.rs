//! Whether the store takes writes: the outcome of every write the bot makes, and a small probe written when nothing says.
//!
//! A store can answer reads while it refuses every write: a full disk, a
//! read-only file, a Redis at its `maxmemory` with `noeviction`. A read
//! alone would call that healthy. So every commit goes through `Watched`,
//! which notes whether it was taken; the latest outcome is the store's
//! state. A failed write makes the store unhealthy until a write is taken
//! again, and /healthz, where nothing else has written for a while, writes
//! one record itself (`PROBE_KEY`, kept a minute), at most once every
//! `PROBE_EVERY` however often it is scraped. So a store that takes
//! writes again is seen to within a second or two.
//!
//! A write that only removes (a deletion, a trim) is no proof: Redis takes
//! those at its memory limit while it refuses anything that adds. Only a
//! write that adds (a record, an index member, a log value, a sequence's
//! next number) clears a failure. A lost check (`Conflict`) is neither:
//! the store answered, and wrote nothing.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
// Tokio's, so that tests can pause it; the real clock otherwise.
use tokio::time::Instant as Stopwatch;

use super::kernel::{Batch, Kernel, Record, Span, Window, Write};
use super::{Store, StoreError, kept_until};
use crate::clock::Instant;

/// The record the probe writes; it expires by itself a minute later.
pub(crate) const PROBE_KEY: &str = "health:probe";

/// How long the probe's record is kept, in seconds.
const PROBE_KEPT_SECS: i64 = 60;

/// The least time between two probes, however often /healthz is asked.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// What the store's writes have said lately. Clones of a store share it.
#[derive(Default)]
pub(crate) struct Writes {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Why the latest write that adds something failed, unless one was
    /// taken since.
    refused: Option<String>,
    /// When any write that adds was last taken or refused.
    heard: Option<Stopwatch>,
    /// When the probe was last started.
    probed: Option<Stopwatch>,
}

impl Writes {
    fn state(&self) -> MutexGuard<'_, State> {
        // Each change is one assignment: a poisoned lock guards whole data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes a write's outcome, and logs when the store starts or stops
    /// refusing writes.
    fn note(&self, outcome: Result<(), &StoreError>) {
        let mut state = self.state();
        state.heard = Some(Stopwatch::now());
        match outcome {
            Ok(()) => {
                if state.refused.take().is_some() {
                    log::info!("store: writes are taken again");
                }
            }
            Err(e) => {
                let why = e.to_string();
                if state.refused.is_none() {
                    log::warn!(
                        "store: a write was refused ({why}); /healthz answers 503 until one is taken"
                    );
                }
                state.refused = Some(why);
            }
        }
    }

    /// Whether a probe should be written now: nothing has been heard of
    /// writes for `PROBE_EVERY` and no probe was started within it. It
    /// counts as started when this says yes, so that scrapes at once
    /// make one probe between them.
    fn probe_due(&self, now: Stopwatch) -> bool {
        let mut state = self.state();
        let recent =
            |at: Option<Stopwatch>| at.is_some_and(|at| now.duration_since(at) < PROBE_EVERY);
        // A refusal is not taken on trust for long: the probe looks again,
        // however many of the bot's writes keep failing meanwhile.
        let heard = state.refused.is_none() && recent(state.heard);
        if heard || recent(state.probed) {
            return false;
        }
        state.probed = Some(now);
        true
    }

    /// Why writes are refused, if the latest one was.
    fn refused(&self) -> Option<String> {
        self.state().refused.clone()
    }
}

/// Whether a batch adds anything: only such a write shows the store takes
/// writes, as a full store may still let things be removed.
fn adds(batch: &Batch) -> bool {
    batch.writes.iter().any(|write| {
        matches!(
            write,
            Write::Put { .. } | Write::Index { .. } | Write::Append { .. }
        )
    })
}

/// A kernel whose writes are noted in `Writes`; what it answers is the
/// inner kernel's, unchanged.
pub(crate) struct Watched {
    inner: Arc<dyn Kernel>,
    writes: Arc<Writes>,
}

impl Watched {
    pub(crate) fn new(inner: Arc<dyn Kernel>, writes: Arc<Writes>) -> Watched {
        Watched { inner, writes }
    }
}

#[async_trait]
impl Kernel for Watched {
    async fn get(&self, keys: &[String], now: Instant) -> Result<Vec<Option<Record>>, StoreError> {
        self.inner.get(keys, now).await
    }

    async fn commit(&self, batch: Batch) -> Result<usize, StoreError> {
        let adds = adds(&batch);
        let done = self.inner.commit(batch).await;
        match &done {
            Err(StoreError::Conflict) => {}
            Err(e) => self.writes.note(Err(e)),
            Ok(_) if adds => self.writes.note(Ok(())),
            Ok(_) => {}
        }
        done
    }

    async fn range(&self, index: &str, span: Span) -> Result<Vec<(String, i64)>, StoreError> {
        self.inner.range(index, span).await
    }

    async fn count(&self, index: &str) -> Result<usize, StoreError> {
        self.inner.count(index).await
    }

    async fn read_log(&self, log: &str, since: Instant) -> Result<Vec<String>, StoreError> {
        self.inner.read_log(log, since).await
    }

    async fn next_id(&self, seq: &str) -> Result<i64, StoreError> {
        let done = self.inner.next_id(seq).await;
        self.writes.note(done.as_ref().map(|_| ()));
        done
    }

    async fn sweep(&self, now: Instant) -> Result<usize, StoreError> {
        self.inner.sweep(now).await
    }

    async fn take(&self, windows: &[Window]) -> Result<Option<Duration>, StoreError> {
        self.inner.take(windows).await
    }

    async fn hold(&self) -> Result<(), StoreError> {
        self.inner.hold().await
    }

    fn is_shared(&self) -> bool {
        self.inner.is_shared()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

impl Store {
    /// Whether the store takes writes: `Err` with the reason while the
    /// latest write was refused. When no write was heard of for
    /// `PROBE_EVERY` (or the latest was refused), a small record is
    /// written first, at most once every `PROBE_EVERY`.
    pub async fn writable(&self, now: Instant) -> Result<(), String> {
        if self.writes.probe_due(Stopwatch::now()) {
            let mut probe = Batch::new(now);
            probe.put_until(
                PROBE_KEY,
                now.to_string(),
                Some(kept_until(now, PROBE_KEPT_SECS)),
            );
            // Its outcome is noted as any write's.
            let _ = self.kernel.commit(probe).await;
        }
        match self.writes.refused() {
            None => Ok(()),
            Some(why) => Err(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> StoreError {
        StoreError::Unavailable("disk full".into())
    }

    #[test]
    fn a_refused_write_holds_until_a_write_that_adds_is_taken() {
        let writes = Writes::default();
        assert_eq!(writes.refused(), None);
        writes.note(Err(&refused()));
        assert_eq!(
            writes.refused().as_deref(),
            Some("the store is unavailable: disk full")
        );
        writes.note(Ok(()));
        assert_eq!(writes.refused(), None);
    }

    #[test]
    fn probes_are_spaced_and_skipped_while_writes_are_heard_of() {
        let writes = Writes::default();
        let start = Stopwatch::now();
        // Nothing heard yet: probe, and not again within PROBE_EVERY.
        assert!(writes.probe_due(start));
        assert!(!writes.probe_due(start + PROBE_EVERY / 2));
        assert!(writes.probe_due(start + PROBE_EVERY));
        // A refusal does not stop the probes: they are how a store that
        // takes writes again is seen.
        writes.note(Err(&refused()));
        assert!(writes.probe_due(start + PROBE_EVERY * 2));
        assert!(!writes.probe_due(start + PROBE_EVERY * 2 + PROBE_EVERY / 2));
    }

    #[test]
    fn only_a_write_that_adds_counts() {
        let mut batch = Batch::new(0);
        batch.delete("a").trim("i", 5).cut("l", 5);
        assert!(!adds(&batch));
        batch.index("i", "m", 1);
        assert!(adds(&batch));
        assert!(adds(Batch::new(0).put("k", "v")));
        assert!(adds(Batch::new(0).append("l", 1, "v")));
    }
}
