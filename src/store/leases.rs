//! What several processes on one shared store agree through it: which one polls Telegram (a lease), and Telegram's limits on sending (a budget).
//!
//! The lease is the record `lease:poller`, holding a token of the
//! process's own, taken only if absent (or expired) and lasting the lease
//! period (`INSTANCE_LEASE_SECS`, 30 s by default) unless renewed, which
//! it is every third of it. The process polls Telegram only while it can
//! prove it holds the lease: its latest check found its own token, so
//! recently that what it wrote cannot have run out yet (`Holding`). A
//! check that finds another token steps it down at once; checks that fail
//! step it down a third of the period before the lease it last proved
//! could run out. Stepped down, it keeps trying to take the lease as it
//! did at start (every fifteenth of the period), and polls again once it
//! holds it. A store only one process can open (a file) holds it its own
//! way, and shares no budget.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Notify, watch};
use tokio::time::Instant as Monotonic;

use super::kernel::{Batch, Kernel, Window};
use super::{Store, StoreError};
use crate::clock::Instant;

const POLLER: &str = "lease:poller";

/// The lease period unless the caller says otherwise.
pub const DEFAULT_POLLER_LEASE: Duration = Duration::from_secs(30);

/// The leases this process holds.
#[derive(Default)]
pub(super) struct Leases {
    poller: tokio::sync::Mutex<Option<Held>>,
}

struct Held {
    token: String,
    renewing: tokio::task::JoinHandle<()>,
    lease: PollerLease,
}

/// The wall clock: a lease is between processes, whatever clock the bot
/// itself runs on.
fn wall_now() -> Instant {
    crate::clock::Clock::System.now()
}

/// A token no other process has: the process id, the time, and the
/// standard library's random hash keys.
fn token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(nanos);
    format!("{}-{nanos}-{:016x}", std::process::id(), hasher.finish())
}

/// The lease is renewed every `RENEW_PARTS`th of its period.
pub(crate) const RENEW_PARTS: u32 = 3;

/// A check that found the lease this process's is trusted until a
/// `TRUST_MARGIN_PARTS`th of the period before the lease could run out.
pub(crate) const TRUST_MARGIN_PARTS: u32 = 3;

/// A failed check is tried again, and a process that stepped down tries to
/// take the lease, every `RETRY_PARTS`th of the period.
pub(crate) const RETRY_PARTS: u32 = 15;

/// The lease's timings, from its period.
#[derive(Debug, Clone, Copy)]
struct Term {
    period: Duration,
}

impl Term {
    /// At least 3 s: the record's expiry is in whole seconds.
    fn new(period: Duration) -> Term {
        Term {
            period: period.max(Duration::from_secs(3)),
        }
    }

    /// The seconds the record lasts.
    fn secs(self) -> i64 {
        i64::try_from(self.period.as_secs()).unwrap_or(i64::MAX)
    }

    /// How often the lease is renewed.
    fn renew(self) -> Duration {
        self.period / RENEW_PARTS
    }

    /// How long a check that found the lease this process's is trusted,
    /// from the moment the check began: less than the period by a
    /// `TRUST_MARGIN_PARTS`th of it. The record's expiry is counted in
    /// whole seconds (so it may come up to a second early) on each
    /// process's own clock (so clocks that differ by a little must not
    /// matter).
    fn trust(self) -> Duration {
        self.period - self.period / TRUST_MARGIN_PARTS
    }

    /// How soon a check that failed is tried again, and how often a
    /// process that stepped down tries to take the lease: a successor
    /// polls soon after the holder gives the lease back.
    fn retry(self) -> Duration {
        (self.period / RETRY_PARTS).max(Duration::from_millis(100))
    }
}

/// What a check of the lease found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// This process's token: renewed.
    Ours,
    /// Nobody's (absent or expired): taken.
    Free,
    /// Another process's token.
    Theirs,
}

/// Takes the lease for `token` if it holds it or nobody does.
async fn take(kernel: &dyn Kernel, token: &str, term: Term) -> Result<Found, StoreError> {
    let now = wall_now();
    let got = kernel.get(&[POLLER.to_string()], now).await?;
    let (version, found) = match &got[0] {
        Some(lease) if lease.value != token => return Ok(Found::Theirs),
        Some(lease) => (lease.version, Found::Ours),
        None => (0, Found::Free),
    };
    let mut batch = Batch::new(now);
    batch
        .check(POLLER, version)
        .put_until(POLLER, token, Some(now + term.secs()));
    match kernel.commit(batch).await {
        Ok(_) => Ok(found),
        Err(StoreError::Conflict) => Ok(Found::Theirs),
        Err(e) => Err(e),
    }
}

/// What this process can prove about the poller's lease, as its renewal
/// keeps it. Checks are numbered from 1, the one made at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holding {
    /// Whether it may poll: a check found the lease this process's, so
    /// recently that the lease cannot have run out since.
    pub held: bool,
    /// The latest check begun.
    pub begun: u64,
    /// The latest check ended, whatever it found.
    pub ended: u64,
    /// The latest check that found the lease this process's.
    pub proof: u64,
}

/// The poller's lease as the poller sees it: whether this process holds
/// it, and a way to have it checked at once.
#[derive(Clone)]
pub struct PollerLease {
    holding: watch::Receiver<Holding>,
    ask: Arc<Notify>,
}

impl PollerLease {
    /// Where it stands now.
    pub fn now(&self) -> Holding {
        *self.holding.borrow()
    }

    /// Asks for a check at once (as when Telegram says another getUpdates
    /// ended this process's); its number is above `now().begun`.
    pub fn recheck(&self) {
        self.ask.notify_one();
    }

    /// Waits until `ready` holds for where it stands; `None` once the lease
    /// is no longer kept (given back, or the store dropped).
    pub async fn until(&mut self, ready: impl FnMut(&Holding) -> bool) -> Option<Holding> {
        self.holding.wait_for(ready).await.ok().map(|h| *h)
    }
}

/// Why the poller stepped down.
enum Down {
    /// Another process's token was found.
    Taken,
    /// No check found the lease this process's for too long.
    Unreadable(String),
}

/// Keeps the lease, and `holding` true only while it is proven: renews it
/// every third of the period, checks it at once when asked, steps down
/// when it is taken or cannot be checked, and then tries every fifteenth
/// of the period to take it again.
/// `proof` is when the check at start began. Ends when the store is gone.
async fn renew(
    kernel: Weak<dyn Kernel>,
    token: String,
    term: Term,
    proof: Monotonic,
    holding: watch::Sender<Holding>,
    ask: Arc<Notify>,
) {
    let store = match kernel.upgrade() {
        Some(kernel) => kernel.describe(),
        None => return,
    };
    // While held: until when the latest proof is trusted.
    let mut trusted = Some(proof + term.trust());
    let mut last_proof = proof;
    let mut down_since = proof;
    let mut failure: Option<String> = None;
    let mut next = proof + term.renew();
    loop {
        tokio::select! {
            biased;
            () = tokio::time::sleep_until(trusted.unwrap_or(next)), if trusted.is_some() => {
                let why = failure.take().unwrap_or_else(|| "no answer".into());
                step_down(&store, Down::Unreadable(why), last_proof, &holding);
                trusted = None;
                down_since = Monotonic::now();
                next = Monotonic::now() + term.retry();
                continue;
            }
            () = ask.notified() => {}
            () = tokio::time::sleep_until(next) => {}
        }
        let Some(kernel) = kernel.upgrade() else {
            return;
        };
        let began = Monotonic::now();
        holding.send_modify(|h| h.begun += 1);
        // A store that hangs cannot keep the lease trusted past its time,
        // nor hold up the next check: an answer later than that would
        // prove nothing.
        let limit = trusted.unwrap_or(began + term.trust());
        let checked = tokio::select! {
            found = take(kernel.as_ref(), &token, term) => Some(found),
            () = tokio::time::sleep_until(limit) => None,
        };
        drop(kernel);
        let now = Monotonic::now();
        match checked {
            // No answer in time: while held, its time came, and it steps
            // down at the top of the loop.
            None => {
                failure.get_or_insert_with(|| "no answer in time".into());
                next = now + term.retry();
            }
            Some(Ok(found @ (Found::Ours | Found::Free))) if began + term.trust() > now => {
                if trusted.is_none() {
                    log::warn!(
                        "store: this process holds the poller's lease on {store} again and polls Telegram again, after {:.1} s",
                        (now - down_since).as_secs_f64()
                    );
                } else if found == Found::Free {
                    log::warn!(
                        "store: the poller's lease was gone from {store} (did it lose its data?) and is taken again"
                    );
                }
                trusted = Some(began + term.trust());
                last_proof = began;
                failure = None;
                next = began + term.renew();
                holding.send_modify(|h| {
                    h.held = true;
                    h.proof = h.begun;
                });
            }
            Some(Ok(Found::Ours | Found::Free)) => {
                failure = Some(format!(
                    "an answer that took {:.1} s",
                    (now - began).as_secs_f64()
                ));
                next = now + term.retry();
            }
            Some(Ok(Found::Theirs)) => {
                if trusted.take().is_some() {
                    step_down(&store, Down::Taken, last_proof, &holding);
                    down_since = now;
                }
                failure = None;
                next = now + term.retry();
            }
            Some(Err(e)) => {
                log::debug!("store: the poller's lease could not be checked: {e}");
                failure = Some(e.to_string());
                next = now + term.retry();
            }
        }
        holding.send_modify(|h| h.ended = h.begun);
    }
}

/// Stops the poller, and logs why (once it has stopped).
fn step_down(store: &str, why: Down, last_proof: Monotonic, holding: &watch::Sender<Holding>) {
    holding.send_modify(|h| h.held = false);
    match why {
        Down::Taken => log::error!(
            "store: another process holds the poller's lease on {store}; this process stops polling Telegram until it can take the lease"
        ),
        Down::Unreadable(e) => log::error!(
            "store: the poller's lease on {store} could not be renewed for {:.1} s ({e}); this process stops polling Telegram before the lease can run out, until it holds it again",
            last_proof.elapsed().as_secs_f64()
        ),
    }
}

impl Store {
    /// Makes sure this process alone polls Telegram with this store: a
    /// second process on the same store is refused with `InUse`. The hold
    /// lasts as long as the process, or until `release_poller`; on a
    /// shared store, with the default lease period.
    pub async fn hold_poller(&self) -> Result<(), StoreError> {
        self.hold_poller_for(DEFAULT_POLLER_LEASE).await
    }

    /// `hold_poller`, where a shared store's lease lasts `period` (at
    /// least 3 s) unless renewed. While the lease cannot be proven this
    /// process's, `poller_lease` says so, and polling waits.
    pub async fn hold_poller_for(&self, period: Duration) -> Result<(), StoreError> {
        if !self.is_shared() {
            return self.kernel.hold().await;
        }
        let mut held = self.leases.poller.lock().await;
        if held.is_some() {
            return Ok(());
        }
        let (term, token) = (Term::new(period), token());
        let began = Monotonic::now();
        if take(self.kernel.as_ref(), &token, term).await? == Found::Theirs {
            return Err(StoreError::InUse(PathBuf::from(self.describe())));
        }
        let (holding, receiver) = watch::channel(Holding {
            held: true,
            begun: 1,
            ended: 1,
            proof: 1,
        });
        let ask = Arc::new(Notify::new());
        let renewing = tokio::spawn(renew(
            Arc::downgrade(&self.kernel),
            token.clone(),
            term,
            began,
            holding,
            Arc::clone(&ask),
        ));
        *held = Some(Held {
            token,
            renewing,
            lease: PollerLease {
                holding: receiver,
                ask,
            },
        });
        Ok(())
    }

    /// The poller's lease on a shared store, while this process keeps it:
    /// what polling waits on. `None` for a store only one process can
    /// open, or before `hold_poller`.
    pub async fn poller_lease(&self) -> Option<PollerLease> {
        let held = self.leases.poller.lock().await;
        held.as_ref().map(|held| held.lease.clone())
    }

    /// Gives the poller's lease back, so a successor need not wait for it
    /// to run out.
    pub async fn release_poller(&self) -> Result<(), StoreError> {
        let Some(held) = self.leases.poller.lock().await.take() else {
            return Ok(());
        };
        held.renewing.abort();
        let now = wall_now();
        let got = self.kernel.get(&[POLLER.to_string()], now).await?;
        if let Some(lease) = &got[0]
            && lease.value == held.token
        {
            let mut batch = Batch::new(now);
            batch.check(POLLER, lease.version).delete(POLLER);
            // Taken meanwhile by another: then it is theirs to keep.
            let _ = self.kernel.commit(batch).await;
        }
        Ok(())
    }

    /// The budget for messages sent that all processes on this store
    /// share, where they may be several.
    pub fn budget(&self, rates: Rates) -> Option<Arc<dyn Budget>> {
        self.is_shared().then(|| {
            Arc::new(Shared {
                kernel: Arc::clone(&self.kernel),
                rates,
            }) as Arc<dyn Budget>
        })
    }
}

/// Telegram's limits on messages sent, as a shared budget counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// For the bot as a whole, per second.
    pub per_second: u32,
    /// Per private chat: at most this many in any `private_burst` seconds.
    pub private_burst: u32,
    /// Per group, per second.
    pub group_per_second: u32,
    /// Per group, per minute.
    pub group_per_minute: u32,
    /// How long a second lasts, in milliseconds (shorter only in tests).
    pub second_ms: u64,
}

impl Rates {
    /// The windows a send to `chat` counts in; one with no limit (0) is
    /// left out.
    fn windows(&self, chat: i64) -> Vec<Window> {
        let second = Duration::from_millis(self.second_ms);
        let window = |name: String, limit: u32, span: Duration| Window { name, limit, span };
        let mut windows = vec![window("budget:bot".into(), self.per_second, second)];
        if chat > 0 {
            windows.push(window(
                format!("budget:chat:{chat}"),
                self.private_burst,
                second * self.private_burst,
            ));
        } else if chat < 0 {
            windows.push(window(
                format!("budget:second:{chat}"),
                self.group_per_second,
                second,
            ));
            windows.push(window(
                format!("budget:minute:{chat}"),
                self.group_per_minute,
                second * 60,
            ));
        }
        windows.retain(|w| w.limit > 0 && !w.span.is_zero());
        windows
    }
}

/// A budget of messages sent that several processes share.
#[async_trait]
pub trait Budget: Send + Sync {
    /// Takes one message for `chat` from the bot's budget and the chat's:
    /// `None` when taken, else how long to wait before asking again (and
    /// nothing was taken).
    async fn take(&self, chat: i64) -> Result<Option<Duration>, StoreError>;
}

/// The budget on a shared kernel's windows: one round trip a message.
struct Shared {
    kernel: Arc<dyn Kernel>,
    rates: Rates,
}

#[async_trait]
impl Budget for Shared {
    async fn take(&self, chat: i64) -> Result<Option<Duration>, StoreError> {
        self.kernel.take(&self.rates.windows(chat)).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::store::kernel::flaky::Flaky;

    const PERIOD: Duration = Duration::from_secs(30);

    /// A store on a flaky kernel whose poller's lease this process holds
    /// (for `PERIOD`), the kernel, and the lease.
    async fn holding() -> (Store, Arc<Flaky>, PollerLease) {
        let kernel = Arc::new(Flaky::default());
        let store = Store::new(kernel.clone(), 3600);
        store
            .hold_poller_for(PERIOD)
            .await
            .expect("the lease is free");
        let lease = store.poller_lease().await.expect("held");
        assert!(lease.now().held);
        (store, kernel, lease)
    }

    /// Writes `value` as the lease, whoever held it, as a process that
    /// took it after Redis lost its data would.
    async fn overwrite(kernel: &Flaky, value: Option<&str>) {
        let now = wall_now();
        let mut batch = Batch::new(now);
        match value {
            Some(value) => batch.put_until(POLLER, value, Some(now + 600)),
            None => batch.delete(POLLER),
        };
        kernel.inner.commit(batch).await.expect("written");
    }

    /// Waits (on the paused clock) until `ready` holds; how long it took.
    async fn until(
        lease: &mut PollerLease,
        ready: impl FnMut(&Holding) -> bool,
    ) -> (Duration, Holding) {
        let start = Monotonic::now();
        let held = tokio::time::timeout(PERIOD * 4, lease.until(ready))
            .await
            .expect("within four periods")
            .expect("the lease is kept");
        (start.elapsed(), held)
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_taken_by_another_stops_polling_at_the_next_renewal_and_resumes_soon_after_it_is_free()
     {
        let (store, kernel, mut lease) = holding().await;
        overwrite(&kernel, Some("another process")).await;
        let (took, now) = until(&mut lease, |h| !h.held).await;
        assert!(took <= PERIOD / 3, "{took:?}");
        // Stepped down, it takes the lease again soon after it is free.
        overwrite(&kernel, None).await;
        let (took, regained) = until(&mut lease, |h| h.held).await;
        assert!(took <= PERIOD / 15, "{took:?}");
        assert!(regained.proof > now.proof, "{regained:?}");
        store.release_poller().await.unwrap();
    }

    /// What the door does on a 409: a check at once, not at the next
    /// renewal.
    #[tokio::test(start_paused = true)]
    async fn a_recheck_finds_the_lease_taken_at_once() {
        let (store, kernel, mut lease) = holding().await;
        let (took, _) = until(&mut lease, |h| h.ended > 1).await;
        assert!(took >= PERIOD / 3, "no check before the renewal: {took:?}");
        overwrite(&kernel, Some("another process")).await;
        let asked = lease.now().begun;
        lease.recheck();
        let (took, after) = until(&mut lease, |h| h.ended > asked).await;
        assert_eq!(took, Duration::ZERO);
        assert!(!after.held, "{after:?}");
        store.release_poller().await.unwrap();
    }

    /// Checks that fail keep the lease trusted only as long as it
    /// cannot have run out: polling stops after the proof's trust (two
    /// thirds of the period), whether the store refuses or hangs, and
    /// resumes when a check succeeds again.
    #[tokio::test(start_paused = true)]
    async fn a_store_that_cannot_be_read_stops_polling_before_the_lease_can_run_out() {
        for hang in [false, true] {
            let (store, kernel, mut lease) = holding().await;
            // The lease was proven at start, just now.
            let proven = Monotonic::now();
            if hang {
                kernel.hanging.store(true, Ordering::SeqCst);
            } else {
                kernel.failing.store(true, Ordering::SeqCst);
            }
            let (_, down) = until(&mut lease, |h| !h.held).await;
            let held_for = proven.elapsed();
            // Not stepped down at the first failed renewal, and down
            // before the lease written at the proof could run out.
            assert!(held_for > PERIOD / 3, "{held_for:?}");
            assert!(held_for <= PERIOD - PERIOD / 3, "{held_for:?}");
            assert_eq!(down.proof, 1, "{down:?}");
            kernel.failing.store(false, Ordering::SeqCst);
            kernel.hanging.store(false, Ordering::SeqCst);
            let (took, back) = until(&mut lease, |h| h.held).await;
            assert!(took <= PERIOD / 15, "{took:?}");
            assert!(back.proof > 1, "{back:?}");
            store.release_poller().await.unwrap();
        }
    }
}
