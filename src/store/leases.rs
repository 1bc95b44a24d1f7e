//! What several processes on one shared store agree through it: which one polls Telegram (a lease), and Telegram's limits on sending (a budget).
//!
//! The lease is the record `lease:poller`, holding a token of the
//! process's own, taken only if absent and expiring after `LEASE_SECS`
//! unless renewed every `RENEW`. A store only one process can open (a
//! file) holds it its own way, and shares no budget.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;

use super::kernel::{Batch, Kernel, Window};
use super::{Store, StoreError};
use crate::clock::Instant;

const POLLER: &str = "lease:poller";

/// How long the lease lasts unless renewed.
const LEASE_SECS: i64 = 30;

/// How often it is renewed.
const RENEW: Duration = Duration::from_secs(10);

/// The leases this process holds.
#[derive(Default)]
pub(super) struct Leases {
    poller: tokio::sync::Mutex<Option<Held>>,
}

struct Held {
    token: String,
    renewing: tokio::task::JoinHandle<()>,
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

/// Takes the lease for `token` if it holds it or nobody does; whether it
/// is held now.
async fn take(kernel: &dyn Kernel, token: &str) -> Result<bool, StoreError> {
    let now = wall_now();
    let got = kernel.get(&[POLLER.to_string()], now).await?;
    let version = match &got[0] {
        Some(lease) if lease.value != token => return Ok(false),
        Some(lease) => lease.version,
        None => 0,
    };
    let mut batch = Batch::new(now);
    batch
        .check(POLLER, version)
        .put_until(POLLER, token, Some(now + LEASE_SECS));
    match kernel.commit(batch).await {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Renews the lease while the kernel is in use.
async fn renew(kernel: Weak<dyn Kernel>, token: String) {
    let mut ticks = tokio::time::interval(RENEW);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(kernel) = kernel.upgrade() else {
            return;
        };
        match take(kernel.as_ref(), &token).await {
            Ok(true) => {}
            Ok(false) => log::error!(
                "store: another process took the poller's lease on {}; both may poll Telegram",
                kernel.describe()
            ),
            Err(e) => log::warn!("store: the poller's lease could not be renewed: {e}"),
        }
    }
}

impl Store {
    /// Makes sure this process alone polls Telegram with this store: a
    /// second process on the same store is refused with `InUse`. The hold
    /// lasts as long as the process, or until `release_poller`.
    pub async fn hold_poller(&self) -> Result<(), StoreError> {
        if !self.is_shared() {
            return self.kernel.hold().await;
        }
        let mut held = self.leases.poller.lock().await;
        if held.is_some() {
            return Ok(());
        }
        let token = token();
        if !take(self.kernel.as_ref(), &token).await? {
            return Err(StoreError::InUse(PathBuf::from(self.describe())));
        }
        let renewing = tokio::spawn(renew(Arc::downgrade(&self.kernel), token.clone()));
        *held = Some(Held { token, renewing });
        Ok(())
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
