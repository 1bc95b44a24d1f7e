//! `DATABASE_URL`: which store a URL names, checked without side effects, then opened.

use std::path::{Path, PathBuf};

use super::memory::MemoryStore;
use super::redis::{RedisStore, redacted};
use super::sqlite::SqliteStore;
use super::{DEFAULT_URL, Store, StoreError};

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
pub fn open(url: &str) -> Result<Box<dyn Store>, StoreError> {
    open_for(url, crate::app::DEFAULT_SESSION_IDLE_SECS)
}

/// Opens the store a `DATABASE_URL` names. Sessions idle for
/// `session_idle_secs` are closed by the scheduler; Redis also lets a
/// session's key expire a day after that, in case nothing closes it.
/// Nothing is connected yet: a Redis that is down fails the first calls,
/// not the opening.
pub fn open_for(url: &str, session_idle_secs: i64) -> Result<Box<dyn Store>, StoreError> {
    Ok(match parse(url)? {
        Location::Memory => Box::new(MemoryStore::default()),
        Location::Sqlite(path) => Box::new(SqliteStore::open(&path)?),
        Location::Redis(url) => Box::new(RedisStore::open(&url, session_idle_secs)?),
    })
}
