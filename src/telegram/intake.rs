//! The door for updates: each member's pace held to a limit before the dispatcher sees their updates, one note to a member who goes over it, and their extra updates dropped, so nobody's backlog holds up the rest.
//!
//! The dispatcher hands each (chat, person) their own worker with a queue
//! of its own; when one queue is full it waits, and everyone else waits
//! with it. Updates beyond a member's pace never reach it: the door drops
//! them first. And the door counts what waits in each worker's queue, so
//! that an update for a full one is dropped there too, instead of holding
//! up the dispatcher and everyone behind it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use tokio::time::Instant;

/// How fast one member may write or press: a burst, then a steady pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodLimits {
    /// Updates a member may send at once after being quiet.
    pub burst: u32,
    /// Updates a minute after that.
    pub per_minute: u32,
}

impl Default for FloodLimits {
    fn default() -> Self {
        FloodLimits {
            burst: 8,
            per_minute: 30,
        }
    }
}

/// What becomes of one update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Handle it.
    Yes,
    /// Over the pace for the first time since calming down: drop it and
    /// tell the member once.
    Warn,
    /// Over the pace again: drop it silently.
    No,
}

struct Member {
    tokens: f64,
    at: Instant,
    warned: bool,
}

/// Every member's pace, forgotten once they are back to a full burst.
pub struct Intake {
    limits: FloodLimits,
    members: HashMap<(i64, u64), Member>,
    since_prune: usize,
}

/// How many updates pass between two sweeps of members gone quiet.
const PRUNE_EVERY: usize = 1024;

impl Intake {
    pub fn new(limits: FloodLimits) -> Self {
        Intake {
            limits,
            members: HashMap::new(),
            since_prune: 0,
        }
    }

    fn refill(limits: &FloodLimits, member: &mut Member, now: Instant) {
        let per_second = f64::from(limits.per_minute.max(1)) / 60.0;
        let elapsed = (now - member.at).as_secs_f64();
        member.tokens = (member.tokens + elapsed * per_second).min(f64::from(limits.burst.max(1)));
        member.at = now;
    }

    /// Whether `user`'s update in `chat` may go on.
    pub fn admit(&mut self, chat: i64, user: u64, now: Instant) -> Admit {
        self.since_prune += 1;
        if self.since_prune >= PRUNE_EVERY {
            self.since_prune = 0;
            self.prune(now);
        }
        let limits = self.limits;
        let burst = f64::from(limits.burst.max(1));
        let member = self.members.entry((chat, user)).or_insert(Member {
            tokens: burst,
            at: now,
            warned: false,
        });
        Self::refill(&limits, member, now);
        // Calmed down: half the burst is back.
        if member.warned && member.tokens >= burst / 2.0 {
            member.warned = false;
        }
        if member.tokens >= 1.0 {
            member.tokens -= 1.0;
            Admit::Yes
        } else if !member.warned {
            member.warned = true;
            Admit::Warn
        } else {
            Admit::No
        }
    }

    /// Forgets members whose burst is whole again: they are as new.
    fn prune(&mut self, now: Instant) {
        let limits = self.limits;
        let burst = f64::from(limits.burst.max(1));
        self.members.retain(|_, member| {
            Self::refill(&limits, member, now);
            member.tokens < burst
        });
    }

    /// How many members the door remembers.
    pub fn remembered(&self) -> usize {
        self.members.len()
    }
}

/// The updates let through the door to each worker and not yet taken up
/// by it.
pub struct Backlog {
    room: usize,
    waiting: Vec<AtomicUsize>,
    /// Whether a worker's full queue was logged since it last emptied.
    told: Vec<AtomicBool>,
    /// When each worker last took an update up, in ms from `start`.
    took: Vec<AtomicU64>,
    start: std::time::Instant,
}

/// A worker that has taken nothing up for this long while its queue is
/// full is taken to be gone (its task ended in a panic): its count is
/// cleared, so its people are not turned away for good.
const STUCK: std::time::Duration = std::time::Duration::from_secs(60);

impl Backlog {
    /// `workers` queues of `room` updates each.
    pub fn new(workers: usize, room: usize) -> Self {
        Backlog {
            room,
            waiting: (0..workers).map(|_| AtomicUsize::new(0)).collect(),
            told: (0..workers).map(|_| AtomicBool::new(false)).collect(),
            took: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            start: std::time::Instant::now(),
        }
    }

    fn millis(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Takes a place in `worker`'s queue; false when it is full. The
    /// first refusal since the queue last emptied says so in the log.
    pub fn enter(&self, worker: usize) -> bool {
        let Some(waiting) = self.waiting.get(worker) else {
            return true;
        };
        let entered = waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.room).then_some(n + 1)
            })
            .is_ok();
        if entered {
            return true;
        }
        let idle = self
            .millis()
            .saturating_sub(self.took[worker].load(Ordering::Acquire));
        if idle > STUCK.as_millis() as u64 {
            log::error!(
                "worker {worker}: nothing taken up for {} s with a full queue; its count is cleared",
                idle / 1000
            );
            waiting.store(1, Ordering::Release);
            self.took[worker].store(self.millis(), Ordering::Release);
            return true;
        }
        if !self.told[worker].swap(true, Ordering::AcqRel) {
            log::warn!(
                "worker {worker}: its queue is full ({} updates); updates for it are dropped until it has room",
                self.room
            );
        }
        false
    }

    /// The worker took an update up: its place is free.
    pub fn leave(&self, worker: usize) {
        let Some(waiting) = self.waiting.get(worker) else {
            return;
        };
        self.took[worker].store(self.millis(), Ordering::Release);
        let before =
            waiting.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        if before == Ok(1) {
            self.told[worker].store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const LIMITS: FloodLimits = FloodLimits {
        burst: 5,
        per_minute: 60,
    };

    #[test]
    fn a_burst_passes_then_one_note_then_silence() {
        let mut intake = Intake::new(LIMITS);
        let now = Instant::now();
        let seen: Vec<Admit> = (0..9).map(|_| intake.admit(-1, 7, now)).collect();
        assert_eq!(seen[..5], [Admit::Yes; 5]);
        assert_eq!(seen[5], Admit::Warn);
        assert_eq!(seen[6..], [Admit::No; 3]);
        // Others in the same chat are not held back.
        assert_eq!(intake.admit(-1, 8, now), Admit::Yes);
    }

    #[test]
    fn the_pace_comes_back_and_so_does_the_note_after_calming_down() {
        let mut intake = Intake::new(LIMITS);
        let start = Instant::now();
        for _ in 0..7 {
            intake.admit(1, 1, start);
        }
        // One a second comes back.
        let later = start + Duration::from_secs(1);
        assert_eq!(intake.admit(1, 1, later), Admit::Yes);
        assert_eq!(intake.admit(1, 1, later), Admit::No);
        // Quiet long enough, a new flood gets a new note.
        let calm = later + Duration::from_secs(10);
        for _ in 0..5 {
            assert_eq!(intake.admit(1, 1, calm), Admit::Yes);
        }
        assert_eq!(intake.admit(1, 1, calm), Admit::Warn);
    }

    #[test]
    fn a_full_worker_queue_refuses_until_one_is_taken_up() {
        let backlog = Backlog::new(2, 3);
        assert!((0..3).all(|_| backlog.enter(0)));
        assert!(!backlog.enter(0));
        // Other workers are not held up.
        assert!(backlog.enter(1));
        backlog.leave(0);
        assert!(backlog.enter(0));
        assert!(!backlog.enter(0));
    }

    #[test]
    fn members_gone_quiet_are_forgotten() {
        let mut intake = Intake::new(LIMITS);
        let start = Instant::now();
        for user in 0..(PRUNE_EVERY as u64 - 1) {
            intake.admit(1, user, start);
        }
        assert_eq!(intake.remembered(), PRUNE_EVERY - 1);
        let later = start + Duration::from_secs(60);
        intake.admit(2, 1, later);
        assert!(intake.remembered() <= 1, "{}", intake.remembered());
    }
}
