//! `DATABASE_URL`: which store a URL names, checked without side effects, then opened.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::kernel::Kernel;
use super::kernel::memory::MemoryKernel;
use super::kernel::redis::{RedisKernel, redacted};
use super::kernel::sqlite::SqliteKernel;
use super::{DEFAULT_SESSION_IDLE_SECS, DEFAULT_URL, Store, StoreError};

/// A store a `DATABASE_URL` names.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    Memory,
    Sqlite(PathBuf),
    /// A `redis://` or `rediss://` URL, which may hold a password.
    Redis(String),
}

/// Never shows a Redis URL's password.
impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Memory => f.write_str("Memory"),
            Location::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Location::Redis(url) => f.debug_tuple("Redis").field(&redacted(url)).finish(),
        }
    }
}

/// Reads a `DATABASE_URL` (empty for the default file) without touching
/// the disk or the network, so a configuration check can report it beside
/// other problems.
pub fn parse(url: &str) -> Result<Location, StoreError> {
    let url = url.trim();
    if url.is_empty() {
        return parse(DEFAULT_URL);
    }
    if url.eq_ignore_ascii_case("memory") {
        return Ok(Location::Memory);
    }
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        return match redis::Client::open(url) {
            Ok(_) => Ok(Location::Redis(url.to_string())),
            Err(_) => Err(StoreError::Unsupported(redacted(url).into_owned())),
        };
    }
    let path = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if url.contains("://") {
        return Err(StoreError::Unsupported(redacted(url).into_owned()));
    } else {
        url
    };
    if path.is_empty() {
        return Err(StoreError::Unsupported(url.to_string()));
    }
    Ok(Location::Sqlite(Path::new(path).to_path_buf()))
}

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
    let kernel: Arc<dyn Kernel> = match parse(url)? {
        Location::Memory => Arc::new(MemoryKernel::default()),
        Location::Sqlite(path) => {
            let store = Store::new(Arc::new(SqliteKernel::open(&path)?), session_idle_secs);
            store.upgrade_sqlite(&path)?;
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
        store.upgrade_sqlite(path)?;
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
