//! Reading a Redis hash (as `HGETALL` gives it) into the store's types.

use std::collections::HashMap;
use std::str::FromStr;

use crate::store::StoreError;

/// A hash's fields; a field that is absent or empty has no value.
pub(super) struct Row {
    /// What the row is, for errors.
    what: &'static str,
    fields: HashMap<String, String>,
}

impl Row {
    /// The fields of `flat` (name, value, name, value…); `None` when there
    /// are none (the key does not exist).
    pub(super) fn new(what: &'static str, flat: Vec<String>) -> Option<Row> {
        if flat.is_empty() {
            return None;
        }
        let mut fields = HashMap::with_capacity(flat.len() / 2);
        let mut flat = flat.into_iter();
        while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
            fields.insert(name, value);
        }
        Some(Row { what, fields })
    }

    /// A field that must be there, as text.
    pub(super) fn text(&self, name: &str) -> Result<String, StoreError> {
        self.fields
            .get(name)
            .cloned()
            .ok_or_else(|| self.unreadable(name))
    }

    /// A field that must be there and parse.
    pub(super) fn get<T: FromStr>(&self, name: &str) -> Result<T, StoreError> {
        self.opt(name)?.ok_or_else(|| self.unreadable(name))
    }

    /// A field that may be absent (or empty), and parses if present.
    pub(super) fn opt<T: FromStr>(&self, name: &str) -> Result<Option<T>, StoreError> {
        match self.fields.get(name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(value) => value.parse().map(Some).map_err(|_| self.unreadable(name)),
        }
    }

    /// A field that may be absent, kept as text.
    pub(super) fn opt_text(&self, name: &str) -> Option<String> {
        self.fields.get(name).filter(|v| !v.is_empty()).cloned()
    }

    /// A language; an unknown code reads as the default, as in SQLite.
    pub(super) fn lang(&self) -> crate::lang::Lang {
        self.fields
            .get("lang")
            .and_then(|code| code.parse().ok())
            .unwrap_or_default()
    }

    fn unreadable(&self, name: &str) -> StoreError {
        StoreError::Redis(format!("a stored {} has no readable {name}", self.what))
    }
}

/// `Some(value)` as the text a script stores, `None` as empty.
pub(super) fn or_empty<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}
