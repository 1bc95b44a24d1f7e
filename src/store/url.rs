//! `DATABASE_URL`: which store a URL names, checked without side effects (`crate::open` opens it).

use std::path::{Path, PathBuf};

use super::kernel::redis::redacted;
use super::{DEFAULT_URL, StoreError};

/// A store a `DATABASE_URL` names.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Location {
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
pub(crate) fn parse(url: &str) -> Result<Location, StoreError> {
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
