//! The kernel on an SQLite file, the default store: the calls on every update's path made in place, slow ones on threads of their own.
//!
//! Records, index members, log values and sequences are rows of five
//! tables (`SCHEMA`); a batch is one transaction, so a failed check or
//! write leaves the file as it was rather than half of a batch in it.
//!
//! The calls an update makes (records read, a batch written) take tens of
//! microseconds: the file is in WAL mode with `synchronous = NORMAL`, so
//! a commit appends to the log and never waits for the disk. They run
//! where they are called, under a lock, because handing each to a thread
//! and back cost two context switches, more than the call itself. What
//! can wait for the disk runs on the blocking pool instead: a batch that
//! must be durable before it returns (a claim made before a reminder goes
//! out), sweeps, reads of whole logs, and the checkpoints that move the
//! log into the file, made by a thread with a connection of its own.
//!
//! Batches that are written while another commit is under way wait for
//! it, and are then written together in one transaction (a group
//! commit): a transaction's cost is mostly its COMMIT, which writes every
//! page it changed to the log, and pages that several batches change
//! (the trees' upper levels, the inbox's newest entries) are written once
//! for the group. Each batch of a group still has its own checks and its
//! own answer, as if it had been committed alone, one after the other.
//!
//! One process serves a file (`hold`), so the windows a budget counts in
//! are kept in that process's memory.

pub(crate) mod calls;
mod group;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::{Batch, Kernel, Record, Span, Window, Write};
use crate::clock::Instant;
use crate::store::StoreError;
use calls::{BUSY_WAIT, Calls, panicked};
use group::Queue;

/// The kernel on one SQLite file. Cloning the handle shares the file, the
/// hold on it and the windows.
#[derive(Clone)]
pub(crate) struct SqliteKernel {
    path: PathBuf,
    /// Declared before `held`: when the last handle goes, the connections
    /// close before the locked files do (see `Held`).
    calls: Calls,
    /// The locks that make this process the file's only user, once held.
    held: Arc<Mutex<Option<Held>>>,
    windows: Arc<Mutex<Windows>>,
    queue: Arc<Mutex<Queue>>,
}

impl SqliteKernel {
    /// `open`, held (`Kernel::hold`) before SQLite opens the file: a
    /// second bot on it is refused before it reads or writes anything of
    /// it, which matters when it reaches the file by another name (a hard
    /// link), as SQLite names the file's log after the name it was given.
    pub(crate) fn open_held(path: &Path) -> Result<Self, StoreError> {
        prepare(path)?;
        let held = Held::take(path)?;
        let kernel = Self::open(path)?;
        *kernel.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(held);
        Ok(kernel)
    }

    /// Opens (creating if needed, with its folder) the database file and
    /// starts the thread that checkpoints it.
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Db::open(path)?;
        Ok(SqliteKernel {
            path: path.to_path_buf(),
            calls: Calls::start(path, db)?,
            held: Arc::default(),
            windows: Arc::default(),
            queue: Arc::default(),
        })
    }

    /// The connection's `synchronous` setting, for tests that check a
    /// synced commit puts it back.
    #[cfg(test)]
    fn synchronous(&self) -> Result<i64, StoreError> {
        self.calls.now(|db| {
            Ok(db
                .conn
                .query_row("PRAGMA synchronous", [], |row| row.get(0))?)
        })
    }

    fn windows(&self) -> MutexGuard<'_, Windows> {
        // A take changes the windows only once it has decided: a poisoned
        // lock guards whole data.
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Kernel for SqliteKernel {
    async fn get(&self, keys: &[String], now: Instant) -> Result<Vec<Option<Record>>, StoreError> {
        self.calls.now(|db| db.get(keys, now))
    }

    async fn commit(&self, batch: Batch) -> Result<usize, StoreError> {
        if batch.sync {
            return self.calls.apart(move |db| db.commit_synced(&batch)).await;
        }
        self.commit_in_group(batch).await
    }

    async fn range(&self, index: &str, span: Span) -> Result<Vec<(String, i64)>, StoreError> {
        self.calls.now(|db| db.range(index, span))
    }

    async fn count(&self, index: &str) -> Result<usize, StoreError> {
        self.calls.now(|db| db.count(index))
    }

    /// Apart: a log read from far back may hold many values.
    async fn read_log(&self, log: &str, since: Instant) -> Result<Vec<String>, StoreError> {
        let log = log.to_string();
        self.calls.apart(move |db| db.read_log(&log, since)).await
    }

    async fn next_id(&self, seq: &str) -> Result<i64, StoreError> {
        self.calls.now(|db| db.next_id(seq))
    }

    /// Apart: a sweep may remove many rows, and it is the scheduler's.
    async fn sweep(&self, now: Instant) -> Result<usize, StoreError> {
        self.calls.apart(move |db| db.sweep(now)).await
    }

    async fn take(&self, windows: &[Window]) -> Result<Option<Duration>, StoreError> {
        let now = std::time::Instant::now();
        Ok(self.windows().take(windows, now))
    }

    async fn hold(&self) -> Result<(), StoreError> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.is_none() {
            *held = Some(Held::take(&self.path)?);
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("SQLite file {}", self.path.display())
    }
}

/// The files locked while this process holds the database. The operating
/// system lets go of the locks when the process ends, however it ends: a
/// killed bot never blocks its successor.
///
/// The database file is open here beside SQLite's own handles on it, and
/// closing any handle on a file lets go of the `fcntl` locks the process
/// holds on it: SQLite's. So it is closed only after the connections are
/// (the kernel's fields drop in order), never while they are in use.
struct Held {
    _database: fs::File,
    _poller: fs::File,
}

impl Held {
    /// Locks the database file at `path` (which exists) and its side file
    /// for this process, or fails with `InUse` when another holds either.
    fn take(path: &Path) -> Result<Held, StoreError> {
        // The database file itself is locked, so the lock goes with the
        // file, not with the name it was opened by: a second process that
        // reaches it by another path (a hard link, a symlink, another
        // mount of the folder) finds it locked too. The lock is `flock`'s,
        // which SQLite's own locks (`fcntl`'s) neither see nor disturb.
        let database = fs::File::open(path).map_err(|source| StoreError::Folder {
            path: path.to_path_buf(),
            source,
        })?;
        lock(&database, path, path)?;
        // The side file is the one the SQLite store before the kernel
        // locked (by path alone), so a bot of either kind refuses to share
        // a file with one of the other.
        let side = PathBuf::from(format!("{}.poller", path.display()));
        let poller = {
            let mut options = fs::OpenOptions::new();
            options.create(true).truncate(false).write(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
            options.open(&side)
        }
        .map_err(|source| StoreError::Folder {
            path: side.clone(),
            source,
        })?;
        lock(&poller, &side, path)?;
        Ok(Held {
            _database: database,
            _poller: poller,
        })
    }
}

/// Takes `file`'s lock without waiting: `InUse` (naming the `database`)
/// when another process holds it.
fn lock(file: &fs::File, path: &Path, database: &Path) -> Result<(), StoreError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(fs::TryLockError::WouldBlock) => Err(StoreError::InUse(database.to_path_buf())),
        Err(fs::TryLockError::Error(source)) => Err(StoreError::Folder {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The database connection: one call at a time, under the kernel's lock.
struct Db {
    conn: Connection,
    /// The last version given. Versions come from this one counter, never
    /// from the record, so a record deleted and written again never gets
    /// an old one back. It is kept here, not written with every batch: one
    /// process holds the file, and at opening it goes on from the highest
    /// version stored (a version only matters while a record has it).
    versions: u64,
    /// The last log value's number: values appended at one time keep the
    /// order they came in.
    appended: i64,
}

/// The kernel's tables. Members and ties sort by SQLite's default BINARY
/// collation, which compares the strings' bytes: the order of Rust's
/// strings, and of Redis's sorted sets. Each write of a batch touches as
/// few trees as it can (every one is a page more in the log per commit):
/// a record is one row and its key's index, an index member two (by name
/// and member, by score), a log value one. A sweep reads the whole of
/// `records`, once in a while.
const SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    PRAGMA wal_autocheckpoint = 10000;
    CREATE TABLE IF NOT EXISTS records (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        version INTEGER NOT NULL,
        expires INTEGER
    );
    CREATE TABLE IF NOT EXISTS index_members (
        name TEXT NOT NULL,
        member TEXT NOT NULL,
        score INTEGER NOT NULL,
        PRIMARY KEY (name, member)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS index_members_by_score
        ON index_members (name, score, member);
    CREATE TABLE IF NOT EXISTS log_values (
        name TEXT NOT NULL,
        at INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (name, at, seq)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS sequences (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
";

impl Db {
    /// Opens (creating if needed, with its folder) the database file.
    fn open(path: &Path) -> Result<Self, StoreError> {
        prepare(path)?;
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_WAIT)?;
        conn.execute_batch(SCHEMA)?;
        // From here on a call fails at once on another process's lock,
        // and is made again where it may wait (`Calls::now`).
        conn.busy_timeout(Duration::ZERO)?;
        let versions: i64 =
            conn.query_row("SELECT coalesce(max(version), 0) FROM records", [], |row| {
                row.get(0)
            })?;
        let appended =
            conn.query_row("SELECT coalesce(max(seq), 0) FROM log_values", [], |row| {
                row.get(0)
            })?;
        Ok(Db {
            conn,
            versions: u64::try_from(versions).unwrap_or(0),
            appended,
        })
    }

    fn get(&mut self, keys: &[String], now: Instant) -> Result<Vec<Option<Record>>, StoreError> {
        match keys {
            [] => return Ok(Vec::new()),
            [key] => return Ok(vec![live(&self.conn, key, now)?]),
            _ => {}
        }
        // Several keys in one statement, so that they come from one state
        // of the file even if another process writes to it. A step's few
        // keys are a lookup each, joined by UNION ALL: `key IN (…)` builds
        // a temporary tree of the keys on every call, which costs more
        // than the lookups themselves when there are only a few.
        let sql = if keys.len() <= FEW_KEYS {
            (0..keys.len())
                .map(|i| {
                    format!(
                        "SELECT key, value, version FROM records
                         WHERE key = ?{} AND (expires IS NULL OR expires > ?1)",
                        i + 2
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ")
        } else {
            let marks: Vec<String> = (0..keys.len()).map(|i| format!("?{}", i + 2)).collect();
            format!(
                "SELECT key, value, version FROM records
                 WHERE key IN ({}) AND (expires IS NULL OR expires > ?1)",
                marks.join(", ")
            )
        };
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut found = HashMap::with_capacity(keys.len());
        let params = std::iter::once(&now as &dyn rusqlite::ToSql)
            .chain(keys.iter().map(|k| k as &dyn rusqlite::ToSql));
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            let key: String = row.get(0)?;
            let record = Record {
                value: row.get(1)?,
                version: row.get(2)?,
            };
            found.insert(key, record);
        }
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    /// Checks and writes a batch in one transaction. A failed check or
    /// write returns early, and dropping the transaction rolls back what
    /// was written of it.
    fn commit(&mut self, batch: &Batch) -> Result<usize, StoreError> {
        // A batch that writes takes the write lock first: one that took it
        // only after its checks could find another process had written
        // meanwhile, and fail where waiting would have done.
        let tx = Tx::begin(&self.conn, !batch.writes.is_empty())?;
        let mut counters = (self.versions, self.appended);
        let removed = checked(&tx, batch, &mut counters)?;
        tx.commit()?;
        // Numbers of a batch that was rolled back are never kept, so none
        // is lost or given twice.
        (self.versions, self.appended) = counters;
        Ok(removed)
    }

    /// Commits several batches in one transaction, each checked and
    /// written in turn as if committed alone: a batch whose check fails is
    /// answered `Conflict` and writes nothing, and the others go on. An
    /// error of the group (the file locked, a write that failed partway)
    /// rolls all of it back.
    fn commit_group(
        &mut self,
        batches: &[Batch],
    ) -> Result<Vec<Result<usize, StoreError>>, StoreError> {
        if let [batch] = batches {
            return match self.commit(batch) {
                // Made again by `Calls::now`, where it may wait.
                Err(StoreError::Sqlite(e)) if calls::is_busy(&e) => Err(StoreError::Sqlite(e)),
                done => Ok(vec![done]),
            };
        }
        let writes = batches.iter().any(|b| !b.writes.is_empty());
        let tx = Tx::begin(&self.conn, writes)?;
        let mut counters = (self.versions, self.appended);
        let mut each = Vec::with_capacity(batches.len());
        for batch in batches {
            each.push(match checked(&tx, batch, &mut counters) {
                Err(StoreError::Conflict) => Err(StoreError::Conflict),
                Err(e) => return Err(e),
                Ok(removed) => Ok(removed),
            });
        }
        tx.commit()?;
        (self.versions, self.appended) = counters;
        Ok(each)
    }

    /// Commits a batch that must be on disk when this returns, even
    /// through a power cut: this one commit is synced in full.
    fn commit_synced(&mut self, batch: &Batch) -> Result<usize, StoreError> {
        self.conn.execute_batch("PRAGMA synchronous = FULL")?;
        // Back to NORMAL whatever happens, or every later commit would
        // wait for the disk.
        let done = catch_unwind(AssertUnwindSafe(|| self.commit(batch)))
            .unwrap_or_else(|_| Err(panicked()));
        if let Err(e) = self.conn.execute_batch("PRAGMA synchronous = NORMAL") {
            // The batch's own outcome is what the caller must know: a
            // commit that is on disk is not reported as failed.
            log::warn!("store: cannot set synchronous back to NORMAL: {e}");
        }
        done
    }

    fn range(&mut self, index: &str, span: Span) -> Result<Vec<(String, i64)>, StoreError> {
        let sql = if span.rev {
            "SELECT member, score FROM index_members
             WHERE name = ?1 AND score BETWEEN ?2 AND ?3
             ORDER BY score DESC, member DESC LIMIT ?4 OFFSET ?5"
        } else {
            "SELECT member, score FROM index_members
             WHERE name = ?1 AND score BETWEEN ?2 AND ?3
             ORDER BY score, member LIMIT ?4 OFFSET ?5"
        };
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(
            params![
                index,
                span.min,
                span.max,
                sql_count(span.limit),
                sql_count(span.offset)
            ],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn count(&mut self, index: &str) -> Result<usize, StoreError> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM index_members WHERE name = ?1")?
            .query_row(params![index], |row| row.get(0))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn read_log(&mut self, log: &str, since: Instant) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT value FROM log_values WHERE name = ?1 AND at >= ?2 ORDER BY at, seq",
        )?;
        let rows = stmt.query_map(params![log, since], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn next_id(&mut self, seq: &str) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "INSERT INTO sequences (name, value) VALUES (?1, 1)
                 ON CONFLICT (name) DO UPDATE SET value = value + 1
                 RETURNING value",
            )?
            .query_row(params![seq], |row| row.get(0))?)
    }

    fn sweep(&mut self, now: Instant) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .prepare_cached("DELETE FROM records WHERE expires <= ?1")?
            .execute(params![now])?)
    }
}

/// The record under `key`, unless it is absent or has expired by `now`.
fn live(conn: &Connection, key: &str, now: Instant) -> rusqlite::Result<Option<Record>> {
    conn.prepare_cached(
        "SELECT value, version FROM records
         WHERE key = ?1 AND (expires IS NULL OR expires > ?2)",
    )?
    .query_row(params![key, now], |row| {
        Ok(Record {
            value: row.get(0)?,
            version: row.get(1)?,
        })
    })
    .optional()
}

/// A transaction whose BEGIN, COMMIT and ROLLBACK are cached statements,
/// parsed once per connection rather than on every commit; dropped
/// without `commit`, it rolls back.
struct Tx<'a> {
    conn: &'a Connection,
    open: bool,
}

impl<'a> Tx<'a> {
    /// Begins one; `write` takes the write lock at once.
    fn begin(conn: &'a Connection, write: bool) -> rusqlite::Result<Tx<'a>> {
        let begin = if write { "BEGIN IMMEDIATE" } else { "BEGIN" };
        conn.prepare_cached(begin)?.execute([])?;
        Ok(Tx { conn, open: true })
    }

    fn commit(mut self) -> rusqlite::Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.open = false;
        Ok(())
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open && !self.conn.is_autocommit() {
            let rolled = self.conn.prepare_cached("ROLLBACK");
            if let Err(e) = rolled.and_then(|mut s| s.execute([])) {
                log::error!("store: rolling a transaction back failed: {e}");
            }
        }
    }
}

/// A batch's checks, then, if they hold, its writes, in a transaction
/// begun by the caller; how many things its writes removed. A failed
/// check returns before anything of the batch is written.
fn checked(tx: &Tx<'_>, batch: &Batch, counters: &mut (u64, i64)) -> Result<usize, StoreError> {
    for (key, version) in &batch.checks {
        let found = live_version(tx, key, batch.now)?.unwrap_or(0);
        if found != *version {
            return Err(StoreError::Conflict);
        }
    }
    let mut removed = 0;
    for write in &batch.writes {
        removed += apply(tx, write, batch.now, counters)?;
    }
    Ok(removed)
}

/// Up to this many keys are read as a lookup each in one statement.
const FEW_KEYS: usize = 4;

/// The version of the record under `key`, unless it is absent or has
/// expired by `now` (its value is not read).
fn live_version(conn: &Connection, key: &str, now: Instant) -> rusqlite::Result<Option<u64>> {
    conn.prepare_cached(
        "SELECT version FROM records WHERE key = ?1 AND (expires IS NULL OR expires > ?2)",
    )?
    .query_row(params![key, now], |row| row.get(0))
    .optional()
}

/// Makes one write of a batch; how many records, index members or log
/// values it removed (counted for deletions, trims and cuts alone).
fn apply(
    conn: &Connection,
    write: &Write,
    now: Instant,
    (versions, appended): &mut (u64, i64),
) -> Result<usize, StoreError> {
    match write {
        Write::Put {
            key,
            value,
            expires,
        } => {
            *versions += 1;
            let version = i64::try_from(*versions).unwrap_or(i64::MAX);
            conn.prepare_cached(
                "INSERT INTO records (key, value, version, expires) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                    version = excluded.version, expires = excluded.expires",
            )?
            .execute(params![key, value, version, expires])?;
            Ok(0)
        }
        Write::Delete { key } => {
            // An expired record is removed too, but was already absent: it
            // does not count. (Read, then deleted: a `RETURNING` clause
            // would open a temporary tree for every deletion.)
            let gone: Option<Option<Instant>> = conn
                .prepare_cached("SELECT expires FROM records WHERE key = ?1")?
                .query_row(params![key], |row| row.get(0))
                .optional()?;
            if gone.is_some() {
                conn.prepare_cached("DELETE FROM records WHERE key = ?1")?
                    .execute(params![key])?;
            }
            Ok(usize::from(
                gone.is_some_and(|expires| expires.is_none_or(|at| at > now)),
            ))
        }
        Write::Index {
            index,
            member,
            score,
        } => {
            conn.prepare_cached(
                "INSERT INTO index_members (name, member, score) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name, member) DO UPDATE SET score = excluded.score",
            )?
            .execute(params![index, member, score])?;
            Ok(0)
        }
        Write::Unindex { index, member } => {
            conn.prepare_cached("DELETE FROM index_members WHERE name = ?1 AND member = ?2")?
                .execute(params![index, member])?;
            Ok(0)
        }
        Write::Trim { index, upto } => Ok(conn
            .prepare_cached("DELETE FROM index_members WHERE name = ?1 AND score <= ?2")?
            .execute(params![index, upto])?),
        Write::Append { log, at, value } => {
            *appended += 1;
            conn.prepare_cached(
                "INSERT INTO log_values (name, at, seq, value) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![log, at, *appended, value])?;
            Ok(0)
        }
        Write::Cut { log, before } => Ok(conn
            .prepare_cached("DELETE FROM log_values WHERE name = ?1 AND at < ?2")?
            .execute(params![log, before])?),
    }
}

/// A count for `LIMIT` or `OFFSET`: SQLite's integers are signed, and a
/// count beyond them means "all" anyway.
fn sql_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The windows' takes, in this process's memory.
#[derive(Default)]
struct Windows {
    takes: HashMap<String, Takes>,
    /// How many windows are kept before those whose takes have all left
    /// them are dropped: one window per chat would otherwise pile up.
    mark: usize,
}

/// One window's takes, oldest first, and the span they were taken in.
struct Takes {
    span: Duration,
    at: VecDeque<std::time::Instant>,
}

impl Windows {
    /// Takes one from every window at `now`, or none if any is full: `None`
    /// when taken, else how long until the fullest has room.
    fn take(&mut self, windows: &[Window], now: std::time::Instant) -> Option<Duration> {
        let mut wait = Duration::ZERO;
        for window in windows {
            let takes = self
                .takes
                .entry(window.name.clone())
                .or_insert_with(|| Takes {
                    span: window.span,
                    at: VecDeque::new(),
                });
            takes.span = window.span;
            while takes
                .at
                .front()
                .is_some_and(|at| now.duration_since(*at) >= window.span)
            {
                takes.at.pop_front();
            }
            if takes.at.len() >= window.limit as usize
                && let Some(oldest) = takes.at.front()
            {
                wait = wait.max(window.span.saturating_sub(now.duration_since(*oldest)));
            }
        }
        if !wait.is_zero() {
            return Some(wait);
        }
        for window in windows {
            if let Some(takes) = self.takes.get_mut(&window.name) {
                takes.at.push_back(now);
            }
        }
        if self.takes.len() > self.mark {
            self.takes.retain(|_, takes| {
                takes
                    .at
                    .back()
                    .is_some_and(|at| now.duration_since(*at) < takes.span)
            });
            self.mark = (self.takes.len() * 2).max(64);
        }
        None
    }
}

/// Makes the database's folder and files private (creating the folder and
/// an empty file if needed), before SQLite opens the file.
fn prepare(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        private_folder(dir)?;
    }
    private_files(path).map_err(|source| StoreError::Folder {
        path: path.to_path_buf(),
        source,
    })
}

/// The database's folder: its owner's alone.
pub(crate) const FOLDER_MODE: u32 = 0o700;

/// The database file, the side file and SQLite's journal files: readable
/// and writable by their owner alone.
pub(crate) const FILE_MODE: u32 = 0o600;

/// Creates the kernel's folder (and those above it) readable by the bot's
/// user alone, whatever the umask. A folder that exists and lets others in
/// is closed up to 0700, with a line in the log, unless it is a shared
/// folder (the sticky bit, as on /tmp), which is not the bot's to close:
/// then the log says so and the folder stays as it is (the files in it are
/// 0600 in any case). A folder the bot may not change (another user's)
/// fails the opening, saying so.
fn private_folder(dir: &Path) -> Result<(), StoreError> {
    let folder_error = |source| StoreError::Folder {
        path: dir.to_path_buf(),
        source,
    };
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, FOLDER_MODE);
    builder.create(dir).map_err(folder_error)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir)
            .map_err(folder_error)?
            .permissions()
            .mode()
            & 0o7777;
        if mode & 0o077 == 0 {
            return Ok(());
        }
        if mode & 0o1000 != 0 {
            log::warn!(
                "store: the database's folder {} is shared (mode {mode:04o}) and is left so; give the database a folder of its own",
                dir.display()
            );
            return Ok(());
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(FOLDER_MODE)).map_err(|source| {
            StoreError::Exposed {
                path: dir.to_path_buf(),
                mode,
                source,
            }
        })?;
        log::warn!(
            "store: the database's folder {} let others in (mode {mode:04o}); it is now {FOLDER_MODE:04o}",
            dir.display()
        );
    }
    Ok(())
}

/// The database file and its journal files, readable and writable by the
/// bot's user alone (0600) whatever the umask: they hold user ids, names
/// and where people stand. The file is created so before SQLite opens
/// it; SQLite gives the `-wal` and `-shm` files the same mode.
fn private_files(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(FILE_MODE)
            .open(path)?;
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            if file.exists() {
                fs::set_permissions(&file, fs::Permissions::from_mode(FILE_MODE))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
