//! The storage kernel: the few primitives a backend (memory, SQLite, Redis) provides, on which everything the bot stores is written once.
//!
//! A kernel holds four kinds of thing, each named by a string:
//!
//! - **records**: a value under a key, with a version and an optional
//!   expiry. Every write gives a record a version drawn from one counter,
//!   so no two writes the kernel serves share one (a store only one
//!   process opens may start again from the highest version it holds when
//!   reopened: no one holds an older one then); an expired record reads as
//!   absent (version 0).
//! - **indexes**: members ordered by an integer score (a time, an id),
//!   read in ranges; what is indexed is for the layer above to say.
//! - **logs**: values appended with a time, read from a time on.
//! - **windows**: sliding-window counters, for a budget that several
//!   processes share.
//!
//! A write is a `Batch`: version checks, then writes, all or nothing in
//! one round trip (one transaction on SQLite, one script on Redis). A
//! check that fails writes nothing and the commit fails with
//! `StoreError::Conflict`; the caller reads again and decides again.
//! Times are the bot's clock (seconds), so tests can move it by hand;
//! only the windows count on the kernel's own clock.

pub(crate) mod memory;
pub(crate) mod redis;
pub(crate) mod sqlite;
pub(crate) mod timed;

#[cfg(test)]
pub(crate) mod contract;
#[cfg(test)]
pub(crate) mod flaky;

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;
use crate::clock::Instant;

/// A stored value and the version of the write that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub value: String,
    pub version: u64,
}

/// One write of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Sets a record, with a new version, alive until `expires` (for good
    /// with `None`).
    Put {
        key: String,
        value: String,
        expires: Option<Instant>,
    },
    /// Removes a record.
    Delete { key: String },
    /// Adds a member to an index, or moves it to `score`.
    Index {
        index: String,
        member: String,
        score: i64,
    },
    /// Removes a member from an index.
    Unindex { index: String, member: String },
    /// Removes an index's members scored at or below `upto`.
    Trim { index: String, upto: i64 },
    /// Appends a value to a log at `at`.
    Append {
        log: String,
        at: Instant,
        value: String,
    },
    /// Removes a log's values appended before `before`.
    Cut { log: String, before: Instant },
}

/// Checks and writes that happen together or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Records that must still have these versions (0: absent or expired).
    pub checks: Vec<(String, u64)>,
    pub writes: Vec<Write>,
    /// When the batch is written, by the bot's clock: what has expired by
    /// then counts as absent.
    pub now: Instant,
    /// Whether the batch must be on disk before the commit returns, not
    /// only in the log (a claim made before something is sent).
    pub sync: bool,
}

impl Batch {
    pub fn new(now: Instant) -> Self {
        Batch {
            now,
            ..Batch::default()
        }
    }

    /// Only if `key` still has `version` (0: is absent).
    pub fn check(&mut self, key: impl Into<String>, version: u64) -> &mut Self {
        self.checks.push((key.into(), version));
        self
    }

    pub fn put(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.put_until(key, value, None)
    }

    pub fn put_until(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
        expires: Option<Instant>,
    ) -> &mut Self {
        self.writes.push(Write::Put {
            key: key.into(),
            value: value.into(),
            expires,
        });
        self
    }

    pub fn delete(&mut self, key: impl Into<String>) -> &mut Self {
        self.writes.push(Write::Delete { key: key.into() });
        self
    }

    pub fn index(
        &mut self,
        index: impl Into<String>,
        member: impl Into<String>,
        score: i64,
    ) -> &mut Self {
        self.writes.push(Write::Index {
            index: index.into(),
            member: member.into(),
            score,
        });
        self
    }

    pub fn unindex(&mut self, index: impl Into<String>, member: impl Into<String>) -> &mut Self {
        self.writes.push(Write::Unindex {
            index: index.into(),
            member: member.into(),
        });
        self
    }

    pub fn trim(&mut self, index: impl Into<String>, upto: i64) -> &mut Self {
        self.writes.push(Write::Trim {
            index: index.into(),
            upto,
        });
        self
    }

    pub fn append(
        &mut self,
        log: impl Into<String>,
        at: Instant,
        value: impl Into<String>,
    ) -> &mut Self {
        self.writes.push(Write::Append {
            log: log.into(),
            at,
            value: value.into(),
        });
        self
    }

    pub fn cut(&mut self, log: impl Into<String>, before: Instant) -> &mut Self {
        self.writes.push(Write::Cut {
            log: log.into(),
            before,
        });
        self
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

/// Which members of an index a range read returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Scores from `min` to `max`, both included.
    pub min: i64,
    pub max: i64,
    /// Members skipped first, then at most `limit` returned.
    pub offset: usize,
    pub limit: usize,
    /// Highest score first instead of lowest.
    pub rev: bool,
}

impl Span {
    /// Members scored at or below `max`, lowest first, at most `limit`.
    pub fn upto(max: i64, limit: usize) -> Self {
        Span {
            min: i64::MIN,
            max,
            offset: 0,
            limit,
            rev: false,
        }
    }

    /// Every member, lowest score first, at most `limit`.
    pub fn all(limit: usize) -> Self {
        Span::upto(i64::MAX, limit)
    }

    /// The highest-scored member alone.
    pub fn last() -> Self {
        Span {
            rev: true,
            ..Span::all(1)
        }
    }
}

/// A sliding window a budget counts in: at most `limit` takes in any
/// `span`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub name: String,
    pub limit: u32,
    pub span: Duration,
}

/// What a backend provides. Members and ties in a range come in the
/// order of their strings; log values at one time in the order they were
/// appended.
#[async_trait]
pub trait Kernel: Send + Sync {
    /// The records under `keys`, in their order (`None`: absent or expired
    /// at `now`). One round trip however many.
    async fn get(&self, keys: &[String], now: Instant) -> Result<Vec<Option<Record>>, StoreError>;

    /// Applies a batch: every check, then every write in order, or nothing
    /// (`Conflict` when a check fails). Returns how many records, index
    /// members and log values its deletions, trims and cuts removed.
    async fn commit(&self, batch: Batch) -> Result<usize, StoreError>;

    /// Members of an index with their scores.
    async fn range(&self, index: &str, span: Span) -> Result<Vec<(String, i64)>, StoreError>;

    /// How many members an index has.
    async fn count(&self, index: &str) -> Result<usize, StoreError>;

    /// A log's values appended at or after `since`, oldest first.
    async fn read_log(&self, log: &str, since: Instant) -> Result<Vec<String>, StoreError>;

    /// The next number of a sequence, from 1, never given twice.
    async fn next_id(&self, seq: &str) -> Result<i64, StoreError>;

    /// Removes the records expired at `now`; how many. A backend that
    /// expires them by itself has nothing to do.
    async fn sweep(&self, now: Instant) -> Result<usize, StoreError>;

    /// Takes one from every window, or none if any is full: `None` when
    /// taken, else how long until the fullest has room. Counted on the
    /// kernel's own clock, which every process sharing it sees alike.
    async fn take(&self, windows: &[Window]) -> Result<Option<Duration>, StoreError>;

    /// Makes sure this process alone serves the store, where only one
    /// may (a file): a second is refused with `StoreError::InUse`. The hold
    /// lasts as long as the kernel.
    async fn hold(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Whether several processes may use the store at once.
    fn is_shared(&self) -> bool {
        false
    }

    /// A short description for the start-up log line, with no secret.
    fn describe(&self) -> String;
}
