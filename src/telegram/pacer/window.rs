//! A sliding window of requests for the pacer: at most so many in any span, each counted until its answer is back.

use std::time::Duration;

use tokio::time::Instant;

/// At most `max` requests in any `span`. A request counts from when it is
/// let go until its answer is back, at which time it is recorded again:
/// Telegram saw it somewhere in between, so timing the window from the
/// answer keeps the next request outside Telegram's window however late
/// the first one reached it. The span is kept 5% longer besides.
#[derive(Debug)]
pub(super) struct Window {
    span: Duration,
    max: usize,
    /// The ticket and its latest time: let go, or answered.
    log: Vec<(u64, Instant)>,
}

impl Window {
    pub(super) fn new(span: Duration, max: u32) -> Self {
        Window {
            span: span + span / 20,
            max: max.max(1) as usize,
            log: Vec::new(),
        }
    }

    fn forget(&mut self, now: Instant) {
        let span = self.span;
        self.log.retain(|(_, t)| *t + span > now);
    }

    /// When the next request may go.
    pub(super) fn ready_at(&mut self, now: Instant) -> Instant {
        self.forget(now);
        if self.log.len() < self.max {
            return now;
        }
        let mut times: Vec<Instant> = self.log.iter().map(|(_, t)| *t).collect();
        times.sort_unstable_by(|a, b| b.cmp(a));
        times[self.max - 1] + self.span
    }

    pub(super) fn record(&mut self, ticket: u64, now: Instant) {
        self.log.push((ticket, now));
    }

    /// The answer to `ticket`'s request is back.
    pub(super) fn answered(&mut self, ticket: u64, now: Instant) {
        for (t, at) in &mut self.log {
            if *t == ticket {
                *at = (*at).max(now);
            }
        }
    }

    pub(super) fn is_quiet(&mut self, now: Instant) -> bool {
        self.forget(now);
        self.log.is_empty()
    }
}
