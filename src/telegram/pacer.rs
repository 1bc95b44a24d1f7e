//! One outbound queue for every request that posts or changes a message: Telegram's limits per bot and per chat, a 429 waited out by its chat, edits of one message coalesced, a person's own answers before background work.
//!
//! A request takes a `Ticket` in its chat's lane when it is made, so the
//! messages of one chat go out in the order they were made, one at a time.
//! The pacer grants a lane's first ticket its turn when the chat's budget
//! and the bot's allow it; the holder then makes the request and says how
//! it went. Nothing is given up for being early: a 429 pauses the lane and
//! puts the ticket back in front. A lane is forgotten once its windows
//! are quiet (a few seconds for a private chat, a minute for a group), so
//! the pacer holds state only for chats in use.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

mod ticket;
pub(crate) mod window;

use crate::metrics::Metrics;
use crate::store::Budget;
pub use ticket::{Hold, Ticket};
use window::Window;

/// Telegram's limits on messages sent or changed (edits count like sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// For the bot as a whole, per second.
    pub per_second: u32,
    /// Per private chat: at most this many in any `private_burst` seconds,
    /// which allows a short burst and about one a second after it.
    pub private_burst: u32,
    /// Per group, per second.
    pub group_per_second: u32,
    /// Per group, per minute.
    pub group_per_minute: u32,
    /// How long Telegram's second lasts: one second, shorter only where a
    /// test or bench runs the same limits faster.
    pub second: Duration,
}

impl Limits {
    /// The same limits, as a budget shared between processes counts them.
    pub fn rates(&self) -> crate::store::Rates {
        crate::store::Rates {
            per_second: self.per_second,
            private_burst: self.private_burst,
            group_per_second: self.group_per_second,
            group_per_minute: self.group_per_minute,
            second_ms: self.second.as_millis() as u64,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_second: 30,
            private_burst: 3,
            group_per_second: 1,
            group_per_minute: 20,
            second: Duration::from_secs(1),
        }
    }
}

/// The most requests out at once, across all chats.
const MAX_IN_FLIGHT: usize = 64;

/// The most requests waiting or out, across all chats, before `room` makes
/// new ones wait: over a minute's worth at Telegram's 30 a second, so it
/// binds only when the bot as a whole is far behind, and then holds back
/// the updates behind them (they wait at Telegram) instead of memory.
pub const MAX_QUEUED: usize = 2048;

/// Whose request it is: a person's own action goes before background work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// The answer to what a person just did.
    Person,
    /// Reminders and the edits that close idle menus.
    Background,
}

/// What a ticket's holder is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Make the request now.
    Go,
    /// A newer edit of the same message took this one's place: nothing to do.
    Superseded,
    /// The pacer shut down before the turn came.
    Closed,
}

struct Waiting {
    ticket: u64,
    priority: Priority,
    /// The person it answers, where one does.
    owner: Option<u64>,
    /// The message an edit changes, for coalescing.
    edit: Option<i32>,
    go: oneshot::Sender<Turn>,
}

/// One chat's queue and budget.
struct Lane {
    queue: VecDeque<Waiting>,
    /// The ticket whose request is out.
    busy: Option<u64>,
    paused_until: Option<Instant>,
    windows: Vec<Window>,
}

impl Lane {
    /// Gives `ticket` its turn: counted in the bot's window and this
    /// lane's from now until its answer is back.
    fn let_go(&mut self, global: &mut Window, ticket: u64) {
        global.record();
        for window in &mut self.windows {
            window.record();
        }
        self.paused_until = None;
        self.busy = Some(ticket);
    }

    /// The answer to the request let go is back (or it was never made).
    fn answered(&mut self, global: &mut Window, now: Instant) {
        global.answered(now);
        for window in &mut self.windows {
            window.answered(now);
        }
    }

    fn new(chat: i64, limits: &Limits) -> Self {
        let second = limits.second;
        let windows = if chat < 0 {
            vec![
                Window::new(second, limits.group_per_second),
                Window::new(second * 60, limits.group_per_minute),
            ]
        } else {
            let burst = limits.private_burst.max(1);
            vec![Window::new(second * burst, burst)]
        };
        Lane {
            queue: VecDeque::new(),
            busy: None,
            paused_until: None,
            windows,
        }
    }

    fn ready_at(&mut self, now: Instant) -> Instant {
        let budget = self
            .windows
            .iter_mut()
            .map(|w| w.ready_at(now))
            .max()
            .unwrap_or(now);
        self.paused_until.map_or(budget, |p| p.max(budget))
    }

    fn is_forgettable(&mut self, now: Instant) -> bool {
        self.queue.is_empty()
            && self.busy.is_none()
            && self.paused_until.is_none_or(|p| p <= now)
            && self.windows.iter_mut().all(|w| w.is_quiet(now))
    }
}

struct State {
    limits: Limits,
    next_ticket: u64,
    global: Window,
    lanes: HashMap<i64, Lane>,
    /// Lanes whose first request may go now, in the order they go: a
    /// person's first, the oldest first. A pass looks only at these and
    /// at `sleeping`, however many chats are known. Entries are checked
    /// when taken, so one made stale by a later change is skipped.
    ready: BTreeSet<(Priority, u64, i64)>,
    /// Lanes with a request waiting for their budget or a pause, by when
    /// they may go.
    sleeping: BinaryHeap<Reverse<(Instant, i64)>>,
    /// When a pass next looks for quiet lanes to forget.
    next_sweep: Instant,
    closed: bool,
}

impl State {
    /// Forgets the lanes gone quiet, at most once a `second`: whichever
    /// path gives the turns, state is kept only for chats in use.
    fn sweep(&mut self, now: Instant) {
        if now >= self.next_sweep {
            self.lanes.retain(|_, lane| !lane.is_forgettable(now));
            self.next_sweep = now + self.limits.second;
        }
    }

    /// Files `chat`'s lane under `ready` or `sleeping` if it has a request
    /// waiting and none out; returns whether it did.
    fn mark(&mut self, chat: i64, now: Instant) -> bool {
        let Some(lane) = self.lanes.get_mut(&chat) else {
            return false;
        };
        if lane.busy.is_some() {
            return false;
        }
        let Some((priority, ticket)) = lane.queue.front().map(|h| (h.priority, h.ticket)) else {
            return false;
        };
        let at = lane.ready_at(now);
        if at <= now {
            self.ready.insert((priority, ticket, chat));
        } else {
            self.sleeping.push(Reverse((at, chat)));
        }
        true
    }
}

struct Shared {
    state: Mutex<State>,
    wake: Notify,
    /// Signalled whenever a ticket is done, for `drain` and `room`.
    done: Notify,
    /// Tickets alive: waiting, out, or still held.
    alive: std::sync::atomic::AtomicUsize,
    /// Work after a request that a stop still waits for (`hold`).
    held: std::sync::atomic::AtomicUsize,
    /// The budget other processes on the same store share with this one,
    /// taken from after this pacer's own turn.
    budget: std::sync::OnceLock<Arc<dyn Budget>>,
    /// Whether the shared budget is failing (logged once per outage).
    budget_failing: std::sync::atomic::AtomicBool,
    /// Where requests answered and refused are counted.
    metrics: std::sync::OnceLock<Arc<Metrics>>,
}

/// The bot's one outbound queue; cheap to clone.
#[derive(Clone)]
pub struct Pacer {
    shared: Arc<Shared>,
}

impl Pacer {
    /// Starts the pacer's task.
    pub fn spawn(limits: Limits) -> Pacer {
        let pacer = Pacer {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    limits,
                    next_ticket: 0,
                    global: Window::new(limits.second, limits.per_second),
                    lanes: HashMap::new(),
                    ready: BTreeSet::new(),
                    sleeping: BinaryHeap::new(),
                    next_sweep: Instant::now(),
                    closed: false,
                }),
                wake: Notify::new(),
                done: Notify::new(),
                alive: std::sync::atomic::AtomicUsize::new(0),
                held: std::sync::atomic::AtomicUsize::new(0),
                budget: std::sync::OnceLock::new(),
                budget_failing: std::sync::atomic::AtomicBool::new(false),
                metrics: std::sync::OnceLock::new(),
            }),
        };
        let task = pacer.clone();
        tokio::spawn(async move { task.run().await });
        pacer
    }

    /// Counts the requests made in turns into `metrics`. Set once.
    pub fn measure(&self, metrics: Arc<Metrics>) {
        let _ = self.shared.metrics.set(metrics);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a place in `chat`'s lane. For an edit of a message whose
    /// earlier edit is still waiting, the new one takes that place and
    /// the earlier one is told it was superseded.
    pub fn submit(&self, chat: i64, priority: Priority, edit: Option<i32>) -> Ticket {
        self.enter(chat, priority, edit, None, false)
    }

    /// As `submit`, for a request that answers `owner`: one that
    /// `withdraw_person` can take back while it waits.
    pub fn submit_for(
        &self,
        chat: i64,
        priority: Priority,
        edit: Option<i32>,
        owner: u64,
    ) -> Ticket {
        self.enter(chat, priority, edit, Some(owner), false)
    }

    /// Takes back what waits in `chat`'s lane for `owner`, who has gone
    /// on elsewhere: each is told it was superseded. Returns how many.
    pub fn withdraw_person(&self, chat: i64, owner: u64) -> usize {
        let mut state = self.lock();
        let Some(lane) = state.lanes.get_mut(&chat) else {
            return 0;
        };
        let mut taken = 0;
        lane.queue.retain_mut(|w| {
            if w.owner != Some(owner) {
                return true;
            }
            taken += 1;
            // The holder may have given up meanwhile; nothing to tell then.
            let (go, _) = oneshot::channel();
            let _ = std::mem::replace(&mut w.go, go).send(Turn::Superseded);
            false
        });
        state.mark(chat, Instant::now());
        drop(state);
        if taken > 0 {
            self.shared.wake.notify_one();
        }
        taken
    }

    /// Takes the first place in `chat`'s lane, ahead of what waits there:
    /// for the one note that tells a busy group's member where to go on.
    pub fn submit_first(&self, chat: i64, priority: Priority) -> Ticket {
        self.enter(chat, priority, None, None, true)
    }

    fn enter(
        &self,
        chat: i64,
        priority: Priority,
        edit: Option<i32>,
        owner: Option<u64>,
        first: bool,
    ) -> Ticket {
        self.shared
            .alive
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (go, turn) = oneshot::channel();
        let mut state = self.lock();
        state.next_ticket += 1;
        let ticket = state.next_ticket;
        let closed = state.closed;
        let limits = state.limits;
        let now = Instant::now();
        state.sweep(now);
        let State {
            lanes,
            global,
            ready,
            sleeping,
            ..
        } = &mut *state;
        let lane = lanes
            .entry(chat)
            .or_insert_with(|| Lane::new(chat, &limits));
        let waiting = Waiting {
            ticket,
            priority,
            owner,
            edit,
            go,
        };
        // Nothing waits anywhere and the budgets allow it: the turn is
        // given here and now, without a round through the pacer's task.
        let at_once = !closed
            && lane.busy.is_none()
            && lane.queue.is_empty()
            && ready.is_empty()
            && sleeping.peek().is_none_or(|Reverse((at, _))| *at > now)
            && global.out() < MAX_IN_FLIGHT
            && global.ready_at(now) <= now
            && lane.ready_at(now) <= now;
        if at_once {
            lane.let_go(global, ticket);
            // The receiver is held here, in the ticket returned below.
            let _ = waiting.go.send(Turn::Go);
        } else if closed {
            let _ = waiting.go.send(Turn::Closed);
        } else {
            // An older edit of the same message gives way. The newer one takes
            // its place only when nothing was queued after it; otherwise it
            // goes last, so nothing made later shows an older state.
            let earlier = edit.and_then(|m| lane.queue.iter().position(|w| w.edit == Some(m)));
            match earlier {
                Some(i) if i + 1 == lane.queue.len() => {
                    let old = std::mem::replace(&mut lane.queue[i], waiting);
                    let _ = old.go.send(Turn::Superseded);
                }
                Some(i) => {
                    if let Some(old) = lane.queue.remove(i) {
                        let _ = old.go.send(Turn::Superseded);
                    }
                    lane.queue.push_back(waiting);
                }
                None if first => lane.queue.push_front(waiting),
                None => lane.queue.push_back(waiting),
            }
            state.mark(chat, now);
        }
        drop(state);
        if !at_once {
            self.shared.wake.notify_one();
        }
        Ticket {
            pacer: self.clone(),
            chat,
            ticket,
            priority,
            owner,
            edit,
            turn: Some(turn),
            granted: false,
            budgeted: false,
        }
    }

    /// Waits until the pacer holds fewer than `MAX_QUEUED` requests.
    pub async fn room(&self) {
        loop {
            let done = self.shared.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            let alive = self.shared.alive.load(std::sync::atomic::Ordering::Relaxed);
            if alive < MAX_QUEUED || self.lock().closed {
                return;
            }
            done.await;
        }
    }

    /// How many requests wait or are out, across all chats.
    pub fn depth(&self) -> usize {
        let held = self.shared.held.load(std::sync::atomic::Ordering::Acquire);
        let state = self.lock();
        held + state
            .lanes
            .values()
            .map(|l| l.queue.len() + usize::from(l.busy.is_some()))
            .sum::<usize>()
    }

    /// Marks work that follows a request (recording what was sent) as
    /// something a stop waits for, without keeping the chat's lane busy.
    pub fn hold(&self) -> Hold {
        self.shared
            .held
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Hold {
            pacer: self.clone(),
        }
    }

    /// How long a request submitted now to `chat` would wait, judged by
    /// a pause the chat is in, the requests ahead of it and its budget.
    pub fn expected_wait(&self, chat: i64) -> Duration {
        let mut state = self.lock();
        let now = Instant::now();
        let Some(lane) = state.lanes.get_mut(&chat) else {
            return Duration::ZERO;
        };
        // The pause, or the budget already spent, whichever is later.
        let paused = lane.ready_at(now).saturating_duration_since(now);
        let per_second = if chat < 0 {
            (f64::from(state.limits.group_per_minute) / 60.0)
                .min(f64::from(state.limits.group_per_second))
        } else {
            1.0
        };
        let lane = &state.lanes[&chat];
        let ahead = lane.queue.len() + usize::from(lane.busy.is_some());
        paused
            + state
                .limits
                .second
                .mul_f64(ahead as f64 / per_second.max(0.001))
    }

    /// Waits until every lane is empty or `grace` has passed, then closes:
    /// tickets still waiting are told `Closed`. Returns how many were.
    pub async fn drain(&self, grace: Duration) -> usize {
        let deadline = Instant::now() + grace;
        loop {
            let done = self.shared.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if self.depth() == 0 || Instant::now() >= deadline {
                break;
            }
            let _ = tokio::time::timeout_at(deadline, done).await;
        }
        let mut state = self.lock();
        state.closed = true;
        let mut dropped = 0;
        for lane in state.lanes.values_mut() {
            for waiting in lane.queue.drain(..) {
                dropped += 1;
                let _ = waiting.go.send(Turn::Closed);
            }
        }
        state.ready.clear();
        state.sleeping.clear();
        dropped
    }

    async fn run(&self) {
        loop {
            let wake = self.shared.wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            let next = self.grant(Instant::now());
            match next {
                Some(at) => {
                    let _ = tokio::time::timeout_at(at, wake).await;
                }
                None => wake.await,
            }
            if self.lock().closed && Arc::strong_count(&self.shared) == 1 {
                return;
            }
        }
    }

    /// Gives turns to every lane that may go now, a person's requests
    /// first and the oldest first; returns when to look again.
    fn grant(&self, now: Instant) -> Option<Instant> {
        let mut state = self.lock();
        if state.closed {
            return None;
        }
        state.sweep(now);
        // Lanes whose wait is over are filed again: as ready, or asleep
        // until a later time if a pause or their budget says so.
        while let Some(Reverse((at, chat))) = state.sleeping.peek().copied()
            && at <= now
        {
            state.sleeping.pop();
            state.mark(chat, now);
        }
        let mut later = None;
        // Requests out at once are few under Telegram's limits; the cap
        // keeps connections and buffers bounded where the limits are lifted.
        while state.global.out() < MAX_IN_FLIGHT {
            let at = state.global.ready_at(now);
            if at > now {
                later = Some(at);
                break;
            }
            let Some((_, ticket, chat)) = state.ready.pop_first() else {
                break;
            };
            let State {
                global,
                lanes,
                sleeping,
                ..
            } = &mut *state;
            let Some(lane) = lanes.get_mut(&chat) else {
                continue;
            };
            if lane.busy.is_some() || lane.queue.front().is_none_or(|h| h.ticket != ticket) {
                // Stale: the lane was filed again when it changed.
                continue;
            }
            let at = lane.ready_at(now);
            if at > now {
                sleeping.push(Reverse((at, chat)));
                continue;
            }
            let Some(head) = lane.queue.pop_front() else {
                continue;
            };
            lane.let_go(global, head.ticket);
            if head.go.send(Turn::Go).is_err() {
                // Its holder is gone: the request is never made, and the
                // turn passes on.
                lane.answered(global, now);
                lane.busy = None;
                state.mark(chat, now);
            }
        }
        let asleep = state.sleeping.peek().map(|Reverse((at, _))| *at);
        match (later, asleep) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Counts `ticket`'s request in the windows from now, its answer back.
    /// Called once for each request let go: when its holder is done, or
    /// gives up a turn it was given.
    fn answered(state: &mut State, chat: i64) {
        let now = Instant::now();
        match state.lanes.get_mut(&chat) {
            Some(lane) => lane.answered(&mut state.global, now),
            None => state.global.answered(now),
        }
    }

    fn finish(&self, chat: i64, ticket: u64) {
        let mut state = self.lock();
        Self::answered(&mut state, chat);
        if let Some(lane) = state.lanes.get_mut(&chat)
            && lane.busy == Some(ticket)
        {
            lane.busy = None;
            // A lane is kept a while after its last request (its windows
            // must see it out); its queue's buffer need not be.
            if lane.queue.is_empty() {
                lane.queue = VecDeque::new();
            }
        }
        let filed = state.mark(chat, Instant::now());
        // The pacer's task is needed only if someone waits for a turn.
        let wake = filed || !state.ready.is_empty();
        drop(state);
        if wake {
            self.shared.wake.notify_one();
        }
        self.shared.done.notify_waiters();
    }

    fn withdraw(&self, chat: i64, ticket: u64) {
        let mut state = self.lock();
        // Granted, but dropped before the turn was taken: the lane is free.
        let granted = state
            .lanes
            .get(&chat)
            .is_some_and(|lane| lane.busy == Some(ticket));
        if granted {
            Self::answered(&mut state, chat);
        }
        if let Some(lane) = state.lanes.get_mut(&chat) {
            lane.queue.retain(|w| w.ticket != ticket);
            if granted {
                lane.busy = None;
            }
        }
        state.mark(chat, Instant::now());
        drop(state);
        self.shared.wake.notify_one();
        self.shared.done.notify_waiters();
    }

    /// Puts a granted ticket back in front of its lane, the lane paused
    /// for `pause`.
    fn again(&self, ticket: &mut Ticket, pause: Duration) {
        let (go, turn) = oneshot::channel();
        let mut state = self.lock();
        // Counted as out once its turn was given, whether or not the
        // holder has taken it yet.
        let out = state
            .lanes
            .get(&ticket.chat)
            .is_some_and(|lane| lane.busy == Some(ticket.ticket));
        if out {
            Self::answered(&mut state, ticket.chat);
        }
        let closed = state.closed;
        let limits = state.limits;
        let lane = state
            .lanes
            .entry(ticket.chat)
            .or_insert_with(|| Lane::new(ticket.chat, &limits));
        if lane.busy == Some(ticket.ticket) {
            lane.busy = None;
        }
        if !pause.is_zero() {
            let until = Instant::now() + pause;
            lane.paused_until = Some(lane.paused_until.map_or(until, |p| p.max(until)));
        }
        let waiting = Waiting {
            ticket: ticket.ticket,
            priority: ticket.priority,
            owner: ticket.owner,
            edit: ticket.edit,
            go,
        };
        let newer = ticket
            .edit
            .is_some_and(|m| lane.queue.iter().any(|w| w.edit == Some(m)));
        if closed {
            let _ = waiting.go.send(Turn::Closed);
        } else if newer {
            // A newer edit of the same message waits already: it goes in
            // this one's place.
            let _ = waiting.go.send(Turn::Superseded);
        } else {
            lane.queue.push_front(waiting);
        }
        state.mark(ticket.chat, Instant::now());
        drop(state);
        ticket.turn = Some(turn);
        ticket.granted = false;
        self.shared.wake.notify_one();
    }
}

#[cfg(test)]
mod tests;
