//! A sliding window of requests for the pacer: at most so many in any span, each counted until its answer is back.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The span is kept longer than Telegram's by 1/MARGIN of it, 2%.
pub(crate) const MARGIN: u32 = 50;

/// At most `max` requests in any `span`. A request counts from when it is
/// let go until its answer is back, and for a span after that: Telegram
/// saw it somewhere in between, so timing the window from the answer keeps
/// the next request outside Telegram's window however late the first one
/// reached it. The span is kept 2% longer besides.
#[derive(Debug)]
pub(super) struct Window {
    span: Duration,
    max: usize,
    /// Requests let go whose answers are not back: they count however
    /// long they take.
    out: usize,
    /// When the answers of the others came back, oldest first.
    back: VecDeque<Instant>,
}

impl Window {
    pub(super) fn new(span: Duration, max: u32) -> Self {
        Window {
            span: span + span / MARGIN,
            max: max.max(1) as usize,
            out: 0,
            back: VecDeque::new(),
        }
    }

    fn forget(&mut self, now: Instant) {
        while self.back.front().is_some_and(|t| *t + self.span <= now) {
            self.back.pop_front();
        }
    }

    /// When the next request may go. While too many requests are out for
    /// any to go, that is a span from now; an answer coming back wakes the
    /// pacer sooner.
    pub(super) fn ready_at(&mut self, now: Instant) -> Instant {
        self.forget(now);
        let counted = self.out + self.back.len();
        if counted < self.max {
            return now;
        }
        // The oldest answers must leave the window until one place is free.
        let leaving = counted - self.max;
        match self.back.get(leaving) {
            Some(t) => *t + self.span,
            None => now + self.span,
        }
    }

    /// How many requests are out, their answers not back.
    pub(super) fn out(&self) -> usize {
        self.out
    }

    /// A request is let go.
    pub(super) fn record(&mut self) {
        self.out += 1;
    }

    /// The answer to a request let go is back: it counts a span from now.
    /// The pacer tells each request's answer once, and only of one it let
    /// go (a ticket's turn taken, or given and dropped).
    pub(super) fn answered(&mut self, now: Instant) {
        if self.out == 0 {
            return;
        }
        self.out -= 1;
        // Answers come back in time order, so `back` stays sorted.
        let at = self.back.back().map_or(now, |last| now.max(*last));
        self.back.push_back(at);
    }

    pub(super) fn is_quiet(&mut self, now: Instant) -> bool {
        self.forget(now);
        self.out == 0 && self.back.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPAN: Duration = Duration::from_millis(100);

    #[test]
    fn a_request_still_out_is_counted_however_long_it_takes() {
        let start = Instant::now();
        let mut window = Window::new(SPAN, 1);
        window.record();
        // Long after the span, the answer is still not back: no room.
        let later = start + SPAN * 10;
        assert!(window.ready_at(later) > later);
        assert!(!window.is_quiet(later));
        window.answered(later);
        // Counted a span (and 2%) from its answer.
        assert!(window.ready_at(later + SPAN) > later + SPAN);
        assert_eq!(window.ready_at(later + SPAN * 2), later + SPAN * 2);
        assert!(window.is_quiet(later + SPAN * 2));
    }

    #[test]
    fn the_next_place_frees_when_the_oldest_answer_leaves() {
        let start = Instant::now();
        let mut window = Window::new(SPAN, 2);
        for after in [0, 10] {
            window.record();
            window.answered(start + Duration::from_millis(after));
        }
        let span = SPAN + SPAN / MARGIN;
        assert_eq!(window.ready_at(start), start + span);
        window.record();
        // Three counted, two may be: both older answers must leave.
        assert_eq!(
            window.ready_at(start + span),
            start + Duration::from_millis(10) + span
        );
    }

    #[test]
    fn an_answer_with_no_request_out_changes_nothing() {
        let start = Instant::now();
        let mut window = Window::new(SPAN, 1);
        window.answered(start);
        assert!(window.is_quiet(start));
    }
}
