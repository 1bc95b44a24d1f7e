//! Whether the store takes writes: the outcome of every write the bot makes, and a small probe written when the bot has written nothing lately.
//!
//! A store can answer reads while it refuses every write: a full disk, a
//! read-only file, a Redis at its `maxmemory` with `noeviction`. A read
//! alone would call that healthy. So every commit goes through `Watched`,
//! which notes whether it was taken. The bot's own writes say first: while
//! the latest of them is under `FRESH` old, what it said is the store's
//! state, a refusal until one is taken again. When the bot has written
//! nothing for that long, /healthz writes one record itself (`PROBE_KEY`,
//! kept a minute), at most once every `PROBE_EVERY` however often it is
//! scraped, and that says. So a store that takes writes again is seen to
//! within about two seconds, whether the bot is busy or idle, and a probe
//! that happens to fit where the bot's writes do not (the last free bytes
//! of a full disk) does not hide the bot's failures while they go on.
//!
//! A write that only removes (a deletion, a trim) is no proof: Redis takes
//! those at its memory limit while it refuses anything that adds. Only a
//! write that adds (a record, an index member, a log value, a sequence's
//! next number) counts. A lost check (`Conflict`) is neither: the store
//! answered, and wrote nothing.

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
pub(crate) const PROBE_KEPT_SECS: i64 = 60;

/// The least time between two probes, however often /healthz is asked.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// How long the bot's latest write speaks for the store, before a probe
/// is asked instead.
pub(crate) const FRESH: Duration = Duration::from_secs(1);

/// What the store's writes have said lately. Clones of a store share it.
#[derive(Default)]
pub(crate) struct Writes {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The bot's latest write that adds something, taken or refused.
    bot: Option<Outcome>,
    /// The latest probe's.
    probe: Option<Outcome>,
    /// When the latest probe was started.
    probed: Option<Stopwatch>,
    /// Whether writes were last said to be refused, for the log.
    refusing: bool,
}

/// A write's outcome: when, and why it was refused, if it was.
#[derive(Clone)]
struct Outcome {
    at: Stopwatch,
    refused: Option<String>,
}

impl State {
    /// Why writes are refused at `now`, if they are: the bot's latest
    /// write while it is fresh, else the latest of it and the probe.
    fn verdict(&self, now: Stopwatch) -> Option<&str> {
        let latest = match (&self.bot, &self.probe) {
            (Some(bot), _) if now.saturating_duration_since(bot.at) < FRESH => Some(bot),
            (Some(bot), Some(probe)) => Some(if probe.at >= bot.at { probe } else { bot }),
            (bot, probe) => bot.as_ref().or(probe.as_ref()),
        };
        latest.and_then(|outcome| outcome.refused.as_deref())
    }
}

impl Writes {
    fn state(&self) -> MutexGuard<'_, State> {
        // Each change is whole before the lock is let go: a poisoned lock
        // guards whole data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes a write's outcome, the probe's or the bot's, and logs when
    /// the store starts or stops refusing writes.
    fn note(&self, probe: bool, outcome: Result<(), &StoreError>) {
        let now = Stopwatch::now();
        let mut state = self.state();
        let noted = Outcome {
            at: now,
            refused: outcome.err().map(ToString::to_string),
        };
        if probe {
            state.probe = Some(noted);
        } else {
            state.bot = Some(noted);
        }
        let refused = state.verdict(now).map(str::to_string);
        match &refused {
            Some(why) if !state.refusing => {
                log::warn!(
                    "store: a write was refused ({why}); /healthz answers 503 while writes are"
                );
            }
            None if state.refusing => log::info!("store: writes are taken again"),
            _ => {}
        }
        state.refusing = refused.is_some();
    }

    /// Whether a probe should be written at `now`: the bot has written
    /// nothing for `FRESH`, and no probe was started within
    /// `PROBE_EVERY`. It counts as started when this says yes, so that
    /// scrapes at once make one probe between them.
    fn probe_due(&self, now: Stopwatch) -> bool {
        let mut state = self.state();
        let within = |at: Option<Stopwatch>, span| {
            at.is_some_and(|at| now.saturating_duration_since(at) < span)
        };
        if within(state.bot.as_ref().map(|b| b.at), FRESH) || within(state.probed, PROBE_EVERY) {
            return false;
        }
        state.probed = Some(now);
        true
    }

    /// Why writes are refused at `now`, if they are.
    fn refused(&self, now: Stopwatch) -> Option<String> {
        self.state().verdict(now).map(str::to_string)
    }
}

/// Whether a batch is the probe's.
fn is_probe(batch: &Batch) -> bool {
    matches!(batch.writes.as_slice(), [Write::Put { key, .. }] if key == PROBE_KEY)
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
        let (adds, probe) = (adds(&batch), is_probe(&batch));
        let done = self.inner.commit(batch).await;
        match &done {
            Err(StoreError::Conflict) => {}
            Err(e) => self.writes.note(probe, Err(e)),
            Ok(_) if adds => self.writes.note(probe, Ok(())),
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
        self.writes.note(false, done.as_ref().map(|_| ()));
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
    /// Whether the store takes writes: `Err` with the reason while they
    /// are refused. When the bot has written nothing for a second, a small
    /// record is written first, at most once every `PROBE_EVERY`.
    pub async fn writable(&self, now: Instant) -> Result<(), String> {
        if self.writes.probe_due(Stopwatch::now()) {
            let mut probe = Batch::new(now);
            probe.put_until(
                PROBE_KEY,
                now.to_string(),
                Some(kept_until(now, PROBE_KEPT_SECS)),
            );
            // Its outcome is noted by `Watched`, as the probe's.
            let _ = self.kernel.commit(probe).await;
        }
        match self.writes.refused(Stopwatch::now()) {
            None => Ok(()),
            Some(why) => Err(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> StoreError {
        StoreError::Unavailable("disk full".into())
    }

    const WHY: &str = "the store is unavailable: disk full";

    #[tokio::test(start_paused = true)]
    async fn the_bots_latest_write_says_while_fresh_then_the_latest_of_it_and_the_probe() {
        let writes = Writes::default();
        assert_eq!(writes.refused(Stopwatch::now()), None);
        writes.note(false, Err(&full()));
        assert_eq!(writes.refused(Stopwatch::now()).as_deref(), Some(WHY));
        // A probe that fits where the bot's write did not does not speak
        // over it while it is fresh.
        writes.note(true, Ok(()));
        assert_eq!(writes.refused(Stopwatch::now()).as_deref(), Some(WHY));
        // The bot's next write, taken, does.
        writes.note(false, Ok(()));
        assert_eq!(writes.refused(Stopwatch::now()), None);
        // Once the bot's latest write is stale, the later probe says.
        writes.note(false, Err(&full()));
        tokio::time::advance(FRESH / 2).await;
        writes.note(true, Ok(()));
        assert_eq!(writes.refused(Stopwatch::now()).as_deref(), Some(WHY));
        tokio::time::advance(FRESH).await;
        assert_eq!(writes.refused(Stopwatch::now()), None);
        writes.note(true, Err(&full()));
        assert_eq!(writes.refused(Stopwatch::now()).as_deref(), Some(WHY));
    }

    #[tokio::test(start_paused = true)]
    async fn probes_are_spaced_and_only_while_the_bot_writes_nothing() {
        let writes = Writes::default();
        let start = Stopwatch::now();
        // Nothing heard yet: probe, and not again within PROBE_EVERY.
        assert!(writes.probe_due(start));
        assert!(!writes.probe_due(start + PROBE_EVERY / 2));
        assert!(writes.probe_due(start + PROBE_EVERY));
        // The bot's own writes, taken or refused, say for FRESH: no probe
        // meanwhile.
        let writes = Writes::default();
        writes.note(false, Err(&full()));
        let noted = Stopwatch::now();
        assert!(!writes.probe_due(noted + FRESH / 2));
        assert!(writes.probe_due(noted + FRESH));
        writes.note(false, Ok(()));
        assert!(!writes.probe_due(Stopwatch::now() + FRESH / 2));
    }

    #[test]
    fn only_a_write_that_adds_counts_and_the_probe_is_told_apart() {
        let mut batch = Batch::new(0);
        batch.delete("a").trim("i", 5).cut("l", 5);
        assert!(!adds(&batch));
        batch.index("i", "m", 1);
        assert!(adds(&batch));
        assert!(adds(Batch::new(0).put("k", "v")));
        assert!(adds(Batch::new(0).append("l", 1, "v")));
        assert!(is_probe(Batch::new(0).put(PROBE_KEY, "1")));
        assert!(!is_probe(Batch::new(0).put("k", "1")));
        assert!(!is_probe(Batch::new(0).put(PROBE_KEY, "1").put("k", "1")));
    }
}
