//! Opening the store a `DATABASE_URL` names: its kernel made, and an SQLite file written before the kernel brought over once.

mod upgrade;

use std::path::Path;
use std::sync::Arc;

use crate::store::kernel::Kernel;
use crate::store::kernel::memory::MemoryKernel;
use crate::store::kernel::redis::RedisKernel;
use crate::store::kernel::sqlite::SqliteKernel;
use crate::store::url::{Location, parse};
use crate::store::{DEFAULT_SESSION_IDLE_SECS, Store, StoreError};

/// Opens the store a `DATABASE_URL` names, with sessions closed after the
/// default idle time.
pub fn open(url: &str) -> Result<Store, StoreError> {
    open_for(url, DEFAULT_SESSION_IDLE_SECS)
}

/// Opens the store a `DATABASE_URL` names. Sessions idle for
/// `session_idle_secs` are closed by the scheduler, and are forgotten a
/// few days after that in any case. Nothing is connected yet: a Redis
/// that is down fails the first calls, not the opening.
pub fn open_for(url: &str, session_idle_secs: i64) -> Result<Store, StoreError> {
    opened(url, session_idle_secs, false)
}

/// `open_for`, for the bot to run on: an SQLite file is held (locked
/// for this process alone) before SQLite reads or writes anything of it,
/// so a second bot on the same file, by whatever path, is refused with
/// `StoreError::InUse` before it touches it. Other stores are held, where
/// they need it, by `Store::hold_poller`.
pub fn open_to_run(url: &str, session_idle_secs: i64) -> Result<Store, StoreError> {
    opened(url, session_idle_secs, true)
}

fn opened(url: &str, session_idle_secs: i64, held: bool) -> Result<Store, StoreError> {
    let kernel: Arc<dyn Kernel> = match parse(url)? {
        Location::Memory => Arc::new(MemoryKernel::default()),
        Location::Sqlite(path) => {
            let kernel = if held {
                SqliteKernel::open_held(&path)?
            } else {
                SqliteKernel::open(&path)?
            };
            let store = Store::new(Arc::new(kernel), session_idle_secs);
            upgrade::upgrade_sqlite(&store, &path)?;
            return Ok(store);
        }
        Location::Redis(url) => Arc::new(RedisKernel::open(&url)?),
    };
    Ok(Store::new(kernel, session_idle_secs))
}

impl Store {
    /// A store on an SQLite file, with the default idle time.
    pub fn sqlite(path: &Path) -> Result<Store, StoreError> {
        let store = Store::new(
            Arc::new(SqliteKernel::open(path)?),
            DEFAULT_SESSION_IDLE_SECS,
        );
        upgrade::upgrade_sqlite(&store, path)?;
        Ok(store)
    }

    /// A store on Redis, with the default idle time; nothing is connected
    /// until the first call.
    pub fn redis(url: &str) -> Result<Store, StoreError> {
        Ok(Store::new(
            Arc::new(RedisKernel::open(url)?),
            DEFAULT_SESSION_IDLE_SECS,
        ))
    }
}
