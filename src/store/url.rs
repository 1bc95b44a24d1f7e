//! `DATABASE_URL`: which store a URL names, checked without side effects, then opened.

use std::path::{Path, PathBuf};

use super::memory::MemoryStore;
use super::sqlite::SqliteStore;
use super::{DEFAULT_URL, Store, StoreError};

/// A store a `DATABASE_URL` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Memory,
    Sqlite(PathBuf),
}

/// Reads a `DATABASE_URL` (empty for the default file) without touching
/// the disk, so a configuration check can report it beside other problems.
pub fn parse(url: &str) -> Result<Location, StoreError> {
    let url = url.trim();
    if url.is_empty() {
        return parse(DEFAULT_URL);
    }
    if url.eq_ignore_ascii_case("memory") {
        return Ok(Location::Memory);
    }
    let path = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if url.contains("://") {
        return Err(StoreError::Unsupported(url.to_string()));
    } else {
        url
    };
    if path.is_empty() {
        return Err(StoreError::Unsupported(url.to_string()));
    }
    Ok(Location::Sqlite(Path::new(path).to_path_buf()))
}

/// Opens the store a `DATABASE_URL` names.
pub fn open(url: &str) -> Result<Box<dyn Store>, StoreError> {
    Ok(match parse(url)? {
        Location::Memory => Box::new(MemoryStore::default()),
        Location::Sqlite(path) => Box::new(SqliteStore::open(&path)?),
    })
}
