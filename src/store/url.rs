//! `DATABASE_URL`: which store a URL names, opened.

use std::path::Path;

use super::memory::MemoryStore;
use super::sqlite::SqliteStore;
use super::{DEFAULT_URL, Store, StoreError};

/// Opens the store a `DATABASE_URL` names.
pub fn open(url: &str) -> Result<Box<dyn Store>, StoreError> {
    let url = url.trim();
    if url.is_empty() {
        return open(DEFAULT_URL);
    }
    if url.eq_ignore_ascii_case("memory") {
        return Ok(Box::new(MemoryStore::default()));
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
    Ok(Box::new(SqliteStore::open(Path::new(path))?))
}
