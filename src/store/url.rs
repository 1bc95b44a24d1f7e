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
            Err(e) => Err(StoreError::BadUrl(
                redacted(url).into_owned(),
                format!("not a Redis URL ({})", e.detail().unwrap_or(e.category())),
            )),
        };
    }
    let path = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if let Some(scheme) = scheme_of(url) {
        // `redis:/host`, `mysql://…`, `file:…`: meant as a URL, and not
        // one of this bot's; never a file of that name.
        return Err(StoreError::BadUrl(
            redacted(url).into_owned(),
            format!("{scheme}: is not a store this bot knows"),
        ));
    } else if !url.contains('/') && !url.contains('.') {
        // `mem`, `sqlite`, `redis`: a word, most likely a store's name
        // mistyped, rather than a database file in the working folder.
        return Err(StoreError::BadUrl(
            url.to_string(),
            "a bare word is taken for a typo; a file needs a path or an extension (sessions.db, ./sessions)".into(),
        ));
    } else {
        url
    };
    if path.is_empty() {
        return Err(StoreError::BadUrl(url.to_string(), "no file named".into()));
    }
    Ok(Location::Sqlite(Path::new(path).to_path_buf()))
}

/// The scheme `url` begins with, if it begins with one (`name:` before
/// any `/`), as a URL does and a file path does not.
fn scheme_of(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    (chars.next()?.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `parse` says of `url`, which must be refused.
    fn refusal(url: &str) -> String {
        match parse(url) {
            Err(e) => e.to_string(),
            Ok(location) => panic!("{url} was taken for {location:?}"),
        }
    }

    #[test]
    fn typos_are_refused_by_name_and_never_become_a_file() {
        let said = refusal("redis:/127.0.0.1:6379");
        assert!(
            said.contains("\"redis:/127.0.0.1:6379\": redis: is not a store"),
            "{said}"
        );
        for word in ["mem", "sqlite", "redis", "Memroy"] {
            let said = refusal(word);
            assert!(said.contains(&format!("{word:?}: a bare word")), "{said}");
        }
        let said = refusal("file:sessions.db");
        assert!(said.contains("file: is not a store"), "{said}");
        assert!(refusal("sqlite://").contains("no file named"));
    }

    #[test]
    fn a_malformed_redis_url_says_what_is_wrong_and_hides_its_password() {
        let said = refusal("redis://:hunter2@localhost:notaport/0");
        assert!(said.contains("not a Redis URL ("), "{said}");
        assert!(!said.contains("hunter2"), "{said}");
    }

    #[test]
    fn paths_memory_and_redis_are_taken() {
        assert_eq!(parse("memory").unwrap(), Location::Memory);
        for path in [
            "sessions.db",
            "data/sessions.db",
            "./sessions",
            "/var/lib/bot/s.db",
        ] {
            assert_eq!(
                parse(path).unwrap(),
                Location::Sqlite(PathBuf::from(path)),
                "{path}"
            );
        }
        assert_eq!(
            parse("sqlite:///var/lib/bot/s.db").unwrap(),
            Location::Sqlite(PathBuf::from("/var/lib/bot/s.db"))
        );
        assert!(matches!(
            parse("redis://localhost:6379/0"),
            Ok(Location::Redis(_))
        ));
    }
}
