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
use std::time::Duration;

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
    /// The same as what the member sent just before, whose answer is on
    /// its way or has just come: that answer is theirs, this adds none.
    Repeat,
}

struct Member {
    tokens: f64,
    at: Instant,
    warned: bool,
    /// When the member was last told to slow down.
    noted: Option<Instant>,
    /// What the member last sent that was let through, and when.
    last: Option<(Said, Instant)>,
}

/// What an update carries, for telling a repeat of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Said {
    /// A hash of it.
    pub what: u64,
    /// How long the same again counts as a repeat.
    pub fresh_for: Duration,
}

/// How long the same command from a member of a group counts as a
/// repeat: its first answer stands in the group for all to see.
pub const REPEAT_COMMAND: Duration = Duration::from_secs(60);
/// How long the same press does: a double tap's worth (the same button
/// may well be pressed again once the menu has moved on and back).
pub const REPEAT_PRESS: Duration = Duration::from_secs(3);
/// A member of a group is told to slow down at most once in this long.
pub(crate) const NOTE_IN_GROUP: Duration = Duration::from_secs(60);

impl Member {
    /// Whether the member is still remembered for a repeat or a note.
    fn recent(&self, group: bool, now: Instant) -> bool {
        let within = |at: Instant, span: Duration| now.saturating_duration_since(at) < span;
        self.last
            .is_some_and(|(said, at)| within(at, said.fresh_for))
            || (group && self.noted.is_some_and(|at| within(at, NOTE_IN_GROUP)))
    }
}

/// Every member's pace, forgotten once they are back to a full burst and
/// nothing they sent lately is still remembered.
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

    /// Whether `user`'s update in `chat` may go on; `said` is what it
    /// carries, if a repeat of it may be let go.
    pub fn admit(&mut self, chat: i64, user: u64, said: Option<Said>, now: Instant) -> Admit {
        self.since_prune += 1;
        if self.since_prune >= PRUNE_EVERY {
            self.since_prune = 0;
            self.prune(now);
        }
        let limits = self.limits;
        let burst = f64::from(limits.burst.max(1));
        let group = chat < 0;
        let member = self.members.entry((chat, user)).or_insert(Member {
            tokens: burst,
            at: now,
            warned: false,
            noted: None,
            last: None,
        });
        Self::refill(&limits, member, now);
        // Calmed down: half the burst is back.
        if member.warned && member.tokens >= burst / 2.0 {
            member.warned = false;
        }
        if member.tokens < 1.0 {
            let noted_lately = group
                && member
                    .noted
                    .is_some_and(|at| now.saturating_duration_since(at) < NOTE_IN_GROUP);
            if member.warned || noted_lately {
                member.warned = true;
                return Admit::No;
            }
            member.warned = true;
            member.noted = Some(now);
            return Admit::Warn;
        }
        member.tokens -= 1.0;
        if let (Some(said), Some((last, at))) = (said, member.last)
            && said == last
            && now.saturating_duration_since(at) < said.fresh_for
        {
            return Admit::Repeat;
        }
        if let Some(said) = said {
            member.last = Some((said, now));
        }
        Admit::Yes
    }

    /// Forgets members whose burst is whole again and who sent nothing
    /// lately that a repeat or a note is measured from: they are as new.
    fn prune(&mut self, now: Instant) {
        let limits = self.limits;
        let burst = f64::from(limits.burst.max(1));
        self.members.retain(|(chat, _), member| {
            Self::refill(&limits, member, now);
            member.tokens < burst || member.recent(*chat < 0, now)
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
        let seen: Vec<Admit> = (0..9).map(|_| intake.admit(-1, 7, None, now)).collect();
        assert_eq!(seen[..5], [Admit::Yes; 5]);
        assert_eq!(seen[5], Admit::Warn);
        assert_eq!(seen[6..], [Admit::No; 3]);
        // Others in the same chat are not held back.
        assert_eq!(intake.admit(-1, 8, None, now), Admit::Yes);
    }

    #[test]
    fn the_pace_comes_back_and_so_does_the_note_after_calming_down() {
        let mut intake = Intake::new(LIMITS);
        let start = Instant::now();
        for _ in 0..7 {
            intake.admit(1, 1, None, start);
        }
        // One a second comes back.
        let later = start + Duration::from_secs(1);
        assert_eq!(intake.admit(1, 1, None, later), Admit::Yes);
        assert_eq!(intake.admit(1, 1, None, later), Admit::No);
        // Quiet long enough, a new flood gets a new note.
        let calm = later + Duration::from_secs(10);
        for _ in 0..5 {
            assert_eq!(intake.admit(1, 1, None, calm), Admit::Yes);
        }
        assert_eq!(intake.admit(1, 1, None, calm), Admit::Warn);
    }

    const COMMAND: Said = Said {
        what: 7,
        fresh_for: REPEAT_COMMAND,
    };

    #[test]
    fn the_same_again_is_a_repeat_for_a_while() {
        let mut intake = Intake::new(LIMITS);
        let now = Instant::now();
        assert_eq!(intake.admit(-1, 1, Some(COMMAND), now), Admit::Yes);
        assert_eq!(intake.admit(-1, 1, Some(COMMAND), now), Admit::Repeat);
        // Something else is no repeat, and is now what a repeat is of.
        let other = Said { what: 8, ..COMMAND };
        assert_eq!(intake.admit(-1, 1, Some(other), now), Admit::Yes);
        assert_eq!(intake.admit(-1, 1, Some(COMMAND), now), Admit::Yes);
        // What carries nothing to compare (a photo) never is one.
        assert_eq!(intake.admit(-1, 1, None, now), Admit::Yes);
        // A command's answer stands for a minute; a press's for a moment.
        let a_while = now + REPEAT_PRESS;
        assert_eq!(intake.admit(-1, 1, Some(COMMAND), a_while), Admit::Repeat);
        let a_minute = now + REPEAT_COMMAND;
        assert_eq!(intake.admit(-1, 1, Some(COMMAND), a_minute), Admit::Yes);
        let press = Said {
            what: 9,
            fresh_for: REPEAT_PRESS,
        };
        assert_eq!(intake.admit(-1, 2, Some(press), now), Admit::Yes);
        assert_eq!(intake.admit(-1, 2, Some(press), now), Admit::Repeat);
        assert_eq!(intake.admit(-1, 2, Some(press), a_while), Admit::Yes);
    }

    #[test]
    fn a_flooder_in_a_group_gets_one_answer_and_one_note_a_minute() {
        let mut intake = Intake::new(LIMITS);
        let start = Instant::now();
        let mut seen = Vec::new();
        // Ten a second for two minutes, all the same command; quiet spells
        // of a few seconds between bursts do not bring a second note.
        for tenth in 0..1200u64 {
            let now = start + Duration::from_millis(100 * tenth);
            if (300..400).contains(&tenth) {
                continue;
            }
            seen.push((tenth / 600, intake.admit(-1, 9, Some(COMMAND), now)));
        }
        for minute in 0..2 {
            let of = |verdict: Admit| {
                seen.iter()
                    .filter(|(m, v)| *m == minute && *v == verdict)
                    .count()
            };
            assert_eq!(of(Admit::Yes), 1, "minute {minute}: {seen:?}");
            assert!(of(Admit::Warn) <= 1, "minute {minute}");
        }
        assert_eq!(seen.iter().filter(|(_, v)| *v == Admit::Warn).count(), 1);
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
            intake.admit(1, user, None, start);
        }
        assert_eq!(intake.remembered(), PRUNE_EVERY - 1);
        let later = start + Duration::from_secs(60);
        intake.admit(2, 1, None, later);
        assert!(intake.remembered() <= 1, "{}", intake.remembered());
    }
}
