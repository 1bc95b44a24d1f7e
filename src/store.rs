//! What the bot keeps between messages — sessions, the update inbox, reminders, cases, figures — written once on a small storage kernel that memory, an SQLite file or Redis provides.
//!
//! Each stored thing is a few records, index members or log values of the
//! kernel (`kernel.rs`), laid out by the module that keeps it. Here:
//! sessions, languages and private chats (`sessions.rs`), menu owners
//! (`menus.rs`), the inbox and heartbeats (`inbox.rs`), the poller's lease
//! and the shared budget (`leases.rs`). The features keep their own on the
//! same kernel, in their own folders: reminders (`reminders/store.rs`),
//! cases (`cases/store.rs`), facts and next-day questions
//! (`stats/store.rs`). A write either happens whole or not at all. All
//! times are UTC instants from the bot's clock.

pub(crate) mod health;
mod inbox;
pub mod kernel;
pub(crate) mod leases;
mod menus;
pub(crate) mod missed;
mod sessions;
pub(crate) mod url;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::Instant;
pub use kernel::Batch;
use kernel::{Kernel, Record};

pub use health::PROBE_EVERY;
pub use kernel::timed::Timing;
pub use leases::{Budget, DEFAULT_POLLER_LEASE, Holding, PollerLease, Rates};

/// The default idle time after which a conversation is closed: 24 hours.
pub const DEFAULT_SESSION_IDLE_SECS: i64 = 24 * 3600;

/// The default `DATABASE_URL`: an SQLite file under `data/`.
pub const DEFAULT_URL: &str = "sqlite://data/sessions.db";

/// A conversation belongs to one person in one chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub chat: i64,
    pub user: u64,
}

impl SessionKey {
    /// Whether the conversation is in the person's private chat, where
    /// Telegram's chat id is their own id.
    pub fn is_private(self) -> bool {
        i64::try_from(self.user).is_ok_and(|user| user == self.chat)
    }

    /// How the pair is written in keys and index members.
    pub(crate) fn id(self) -> String {
        format!("{}:{}", self.chat, self.user)
    }

    pub(crate) fn parse(id: &str) -> Option<SessionKey> {
        let (chat, user) = id.split_once(':')?;
        Some(SessionKey {
            chat: chat.parse().ok()?,
            user: user.parse().ok()?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("a stored session could not be read and was discarded: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("cannot create the folder {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the database's folder {path} lets other users in (mode {mode:04o}) and cannot be made 0700 ({source}): chmod 700 it, or move the database"
    )]
    Exposed {
        path: PathBuf,
        mode: u32,
        source: std::io::Error,
    },
    #[error(
        "DATABASE_URL {0:?} is not supported: use sqlite://<file>, a file path, memory, or redis://host:port/db (rediss:// for TLS)"
    )]
    Unsupported(String),
    #[error(
        "DATABASE_URL {0:?}: {1}. Use memory, a file path (data/sessions.db, sqlite:///var/lib/bot/sessions.db), or redis://host:port/db (rediss:// for TLS)"
    )]
    BadUrl(String, String),
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error(
        "another process is already running the bot on {0}; stop it first (one process polls Telegram per store)"
    )]
    InUse(PathBuf),
    #[error("Redis: {0}")]
    Redis(String),
    #[error("the session changed meanwhile")]
    Conflict,
}

impl StoreError {
    /// Whether this is the store being out of reach, which the store's
    /// health logs once when it starts and once when it ends: the callers
    /// that would otherwise log it at every try leave it to that.
    pub fn is_outage(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// How many of each kind of thing the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub sessions: usize,
    pub menus: usize,
    /// Other messages with buttons whose owner is remembered (for 30 days).
    pub notes: usize,
}

/// A read that is not about expiry: whatever is still stored counts
/// (what has expired goes at the next prune, or by itself on Redis).
pub(crate) const ANY_TIME: Instant = i64::MIN;

/// How often a read-decide-write is taken again when another write came
/// between its read and its write, before it gives up.
pub(crate) const RETRIES: usize = 16;

/// How long a session is kept past its idle time in any case. A pending
/// reminder (a window is a day long) or a next-day question (asked a day
/// later, answered within a day) keeps a session open past its idle time;
/// the session outlives them.
pub(crate) const KEPT_PAST_IDLE_SECS: i64 = 4 * 24 * 3600;

/// What the bot stores, on a kernel. Cloning it shares the kernel.
#[derive(Clone)]
pub struct Store {
    kernel: Arc<dyn Kernel>,
    /// How long a session outlives its last write in any case: the idle
    /// time after which the scheduler closes it, plus what can keep it
    /// open past that (a pending reminder, a next-day question).
    session_ttl: i64,
    leases: Arc<leases::Leases>,
    /// What the latest writes said: whether the store takes them.
    writes: Arc<health::Writes>,
}

impl Store {
    /// A store on `kernel`, whose sessions are closed by the scheduler
    /// after `session_idle_secs` idle.
    pub fn new(kernel: Arc<dyn Kernel>, session_idle_secs: i64) -> Store {
        // Every write is noted, so the store's health is what its writes
        // last said (`health.rs`).
        let writes = Arc::<health::Writes>::default();
        Store {
            kernel: Arc::new(health::Watched::new(kernel, Arc::clone(&writes))),
            session_ttl: session_idle_secs.max(0) + KEPT_PAST_IDLE_SECS,
            leases: Arc::default(),
            writes,
        }
    }

    /// A store in memory, with the default idle time: nothing survives
    /// the process.
    pub fn memory() -> Store {
        Store::new(
            Arc::new(kernel::memory::MemoryKernel::default()),
            DEFAULT_SESSION_IDLE_SECS,
        )
    }

    /// The same store with every kernel call timed into `timing`.
    pub fn timed(&self, timing: Timing) -> Store {
        Store {
            kernel: Arc::new(kernel::timed::Timed::new(Arc::clone(&self.kernel), timing)),
            ..self.clone()
        }
    }

    /// The kernel underneath, for what is written on it elsewhere.
    pub fn kernel(&self) -> &Arc<dyn Kernel> {
        &self.kernel
    }

    /// How long a session outlives its last write in any case.
    pub fn session_ttl(&self) -> i64 {
        self.session_ttl
    }

    /// Whether several processes may use the store at once (Redis): then
    /// each keeps a heartbeat, takes over what a stopped one left, and
    /// shares Telegram's limits through `budget`.
    pub fn is_shared(&self) -> bool {
        self.kernel.is_shared()
    }

    /// A short description for the start-up log line.
    pub fn describe(&self) -> String {
        self.kernel.describe()
    }

    /// How many of each thing the store holds.
    pub async fn counts(&self) -> Result<Counts, StoreError> {
        Ok(Counts {
            sessions: self.kernel.count(sessions::BY_ACTIVITY).await?,
            menus: self.kernel.count(menus::MENUS).await?,
            notes: self.kernel.count(menus::NOTES).await?,
        })
    }

    /// How many sessions are stored.
    pub async fn session_count(&self) -> Result<usize, StoreError> {
        self.kernel.count(sessions::BY_ACTIVITY).await
    }

    /// Forgets what is past its retention: menu owners after 30 days,
    /// and every record past its expiry (closed cases after 30 days,
    /// next-day questions a day after they were due, inbox ids after a
    /// day, private chats a year after the person last wrote). Most of it
    /// expires by itself; this removes it for good. Returns how many
    /// records and index members went. (Facts: `Store::prune_facts`.)
    pub async fn prune(&self, now: Instant) -> Result<usize, StoreError> {
        let mut batch = Batch::new(now);
        menus::prune(&mut batch, now);
        let trimmed = self.kernel.commit(batch).await?;
        Ok(trimmed + self.kernel.sweep(now).await?)
    }

    /// One record, decoded; `None` when absent. A record that cannot be
    /// read is an error, not a silent absence.
    pub(crate) async fn read<T: DeserializeOwned>(
        &self,
        key: &str,
        now: Instant,
    ) -> Result<Option<(T, u64)>, StoreError> {
        let mut got = self.kernel.get(&[key.to_string()], now).await?;
        got.pop().flatten().map(decode).transpose()
    }

    /// Reads the record under `key`, lets `change` decide what to write
    /// (it adds to the batch, or returns `None` to write nothing), and
    /// commits on the condition that the record did not change meanwhile;
    /// if it did, reads and decides again.
    pub(crate) async fn update<T, R>(
        &self,
        key: &str,
        now: Instant,
        mut change: impl FnMut(Option<T>, &mut Batch) -> Option<R>,
    ) -> Result<Option<R>, StoreError>
    where
        T: DeserializeOwned,
    {
        for _ in 0..RETRIES {
            let (value, version) = match self.read::<T>(key, now).await? {
                Some((value, version)) => (Some(value), version),
                None => (None, 0),
            };
            let mut batch = Batch::new(now);
            batch.check(key, version);
            let Some(result) = change(value, &mut batch) else {
                return Ok(None);
            };
            match self.kernel.commit(batch).await {
                Ok(_) => return Ok(Some(result)),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }
}

/// A stored value as JSON.
pub(crate) fn encode<T: Serialize>(value: &T) -> String {
    // The stored types are plain structs of strings and numbers, which
    // always serialize.
    serde_json::to_string(value).unwrap_or_default()
}

pub(crate) fn decode<T: DeserializeOwned>(record: Record) -> Result<(T, u64), StoreError> {
    Ok((serde_json::from_str(&record.value)?, record.version))
}

/// When something kept `secs` after `at` expires: it is still there at
/// `at + secs`, gone a second later.
pub(crate) fn kept_until(at: Instant, secs: i64) -> Instant {
    at.saturating_add(secs).saturating_add(1)
}

pub use inbox::{Answer, Entry, INBOX_RETENTION_SECS, PutFailed};
pub use menus::{MENU_RETENTION_SECS, Posted};
pub(crate) use missed::missed_key;

pub(crate) use inbox::entry_into;
pub(crate) use menus::owner_into;
pub use sessions::{IdleSession, Keep, Loaded, PRIVATE_CHAT_RETENTION_SECS, Write};
pub(crate) use sessions::{lang_into, private_into, session_into};
