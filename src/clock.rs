//! Time for the bot: the system clock when it runs, a clock tests move by hand.
//!
//! Every instant is a count of seconds since the Unix epoch, in UTC; time
//! zones matter only when a time is shown to someone.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// The default time zone times are shown in.
pub const DEFAULT_TIMEZONE: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

/// Seconds since the Unix epoch, UTC.
pub type Instant = i64;

/// The longest a wait on the system clock sleeps before looking again, so a
/// wall clock set forward (or a suspended machine) delays nothing for long.
const MAX_NAP: Duration = Duration::from_secs(60);

/// Where "now" comes from.
#[derive(Clone, Default)]
pub enum Clock {
    #[default]
    System,
    /// A clock that moves only when told to.
    Manual(Arc<watch::Sender<Instant>>),
}

impl Clock {
    /// A hand-moved clock that starts at `start`.
    pub fn manual(start: Instant) -> Clock {
        Clock::Manual(Arc::new(watch::Sender::new(start)))
    }

    pub fn now(&self) -> Instant {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            Clock::Manual(now) => *now.borrow(),
        }
    }

    /// Moves a manual clock forward by `secs`; the system clock cannot be moved.
    pub fn advance(&self, secs: i64) {
        if let Clock::Manual(now) = self {
            now.send_modify(|t| *t += secs);
        }
    }

    /// Returns once the clock reads `at` or later, or, for a manual clock,
    /// once it reads anything but `seen` (the time the caller last acted
    /// on), so every move of it is looked at. On the system clock it may
    /// return a little early (it naps at most a minute); callers look at
    /// the time again, so that only costs a loop.
    pub async fn sleep_until(&self, at: Instant, seen: Instant) {
        match self {
            Clock::System => {
                let left = u64::try_from(at.saturating_sub(self.now())).unwrap_or(0);
                if left > 0 {
                    tokio::time::sleep(Duration::from_secs(left).min(MAX_NAP)).await;
                }
            }
            Clock::Manual(now) => {
                let mut rx = now.subscribe();
                // The sender lives as long as the clock, which `self` holds.
                let _ = rx.wait_for(|t| *t >= at || *t != seen).await;
            }
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Clock::System => f.write_str("Clock::System"),
            Clock::Manual(now) => write!(f, "Clock::Manual({})", *now.borrow()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_wakes_sleepers_when_moved() {
        let clock = Clock::manual(1_000);
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(1_100, 1_000).await }
        });
        clock.advance(100);
        tokio::time::timeout(Duration::from_secs(10), sleeper)
            .await
            .expect("woken")
            .expect("joined");
        assert_eq!(clock.now(), 1_100);
    }
}
