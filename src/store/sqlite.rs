//! Sessions and reminders in an SQLite file, the default store: a person's calls made in place, slow work on threads of its own.
//!
//! A session is one row holding the engine's `Session` as JSON, written in a
//! single statement inside a transaction, so a failure leaves the previous
//! row intact rather than half of a new one.
//!
//! Reminders live beside the sessions. Sending one is bracketed by a claim
//! (pending → sending) and its removal, both durable: a reminder claimed by
//! a process that died before removing it may have been sent, so it is
//! never sent again. All times are UTC instants from the bot's clock.
//!
//! The calls an update makes (a session read and written, a menu's owner)
//! take tens of microseconds: the file is in WAL mode with `synchronous =
//! NORMAL`, so a commit appends to the log and never waits for the disk.
//! They run where they are called, under a lock, because handing each to
//! a thread and back cost two context switches, more than the call itself
//! (the delivery bench: about 80 µs of CPU per update). What can wait for
//! the disk runs on the blocking pool instead: the scheduler's calls,
//! among them the reminder claim that is synced before a reminder goes
//! out, and the checkpoints that move the log into the file, made by a
//! thread with a connection of its own.

mod calls;
mod inbox;
mod reminders;
mod team;
#[cfg(test)]
mod tests;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    Answer, Counts, Entry, IdleSession, Later, MENU_RETENTION_SECS, Posted, SessionKey, Store,
    StoreError, is_blank,
};
use crate::clock::Instant;
use crate::engine::Session;
use crate::handoff::{Case, NewCase, Opened};
use crate::lang::Lang;
use crate::reminders::{NewReminder, Reminder};
use crate::stats::Fact;
use calls::{BUSY_WAIT, Calls};

/// Sessions in an SQLite file, one row per (chat, person). Cloning the
/// handle shares the file.
#[derive(Clone)]
pub struct SqliteStore {
    path: PathBuf,
    calls: Calls,
    /// The lock that makes this process the file's only poller, once held.
    poller: std::sync::Arc<std::sync::Mutex<Option<fs::File>>>,
}

impl SqliteStore {
    /// Opens (creating if needed, with its folder) the database file and
    /// starts the thread that checkpoints it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Db::open(path)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            calls: Calls::start(path, db)?,
            poller: Default::default(),
        })
    }

    /// Runs raw SQL, for tests that need a row no store call would write.
    #[cfg(test)]
    pub(super) async fn execute(&self, sql: &'static str) -> Result<usize, StoreError> {
        self.calls.now(move |db| Ok(db.conn.execute(sql, [])?))
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn load_versioned(&self, key: SessionKey) -> Result<(Option<Session>, u64), StoreError> {
        self.calls.now(|db| db.load(key))
    }

    async fn save_answering(
        &self,
        key: SessionKey,
        session: &Session,
        remember_lang: bool,
        facts: &[Fact],
        now: Instant,
        answer: Option<&Answer>,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        let write = Write {
            remember_lang,
            facts,
            now,
            answer,
            expected,
        };
        self.calls.now(|db| db.save(key, session, write))
    }

    async fn inbox_put(
        &self,
        id: i64,
        body: &str,
        _owner: &str,
        now: Instant,
    ) -> Result<bool, StoreError> {
        self.calls.now(|db| db.inbox_put(id, body, now))
    }

    async fn inbox_done(&self, ids: &[i64], now: Instant) -> Result<(), StoreError> {
        self.calls.now(|db| db.inbox_done(ids, now))
    }

    /// One process uses the file (`hold_poller`): every open entry is
    /// left over from the one before.
    async fn inbox_open(&self, _owner: &str, _now: Instant) -> Result<Vec<Entry>, StoreError> {
        self.calls.apart(Db::inbox_open).await
    }

    async fn record(&self, facts: &[Fact]) -> Result<(), StoreError> {
        self.calls.now(|db| db.record(facts))
    }

    async fn facts(&self, since: Instant) -> Result<Vec<Fact>, StoreError> {
        self.calls.apart(move |db| db.facts(since)).await
    }

    async fn prune(&self, now: Instant) -> Result<usize, StoreError> {
        self.calls.apart(move |db| db.prune(now)).await
    }

    async fn ask_later(&self, later: &Later) -> Result<(), StoreError> {
        self.calls.now(|db| db.ask_later(later))
    }

    async fn due_later(&self, now: Instant, limit: usize) -> Result<Vec<Later>, StoreError> {
        self.calls.apart(move |db| db.due_later(now, limit)).await
    }

    async fn take_later(&self, chat: i64, user: u64) -> Result<bool, StoreError> {
        self.calls.apart(move |db| db.take_later(chat, user)).await
    }

    async fn open_case(&self, new: &NewCase, now: Instant) -> Result<Opened, StoreError> {
        self.calls.now(|db| db.open_case(new, now))
    }

    async fn case(&self, id: i64) -> Result<Option<Case>, StoreError> {
        self.calls.now(|db| db.case_where("id = ?1", id))
    }

    async fn open_case_of(&self, user: u64) -> Result<Option<Case>, StoreError> {
        self.calls
            .now(|db| db.case_where("user_id = ?1 AND closed_at IS NULL", user_column(user)))
    }

    async fn set_case_post(
        &self,
        id: i64,
        message: i32,
        topic: Option<i32>,
    ) -> Result<(), StoreError> {
        self.calls.now(|db| db.set_case_post(id, message, topic))
    }

    async fn link_case_message(
        &self,
        chat: i64,
        message: i32,
        case: i64,
    ) -> Result<(), StoreError> {
        self.calls
            .now(|db| db.link_case_message(chat, message, case))
    }

    async fn case_of_message(&self, chat: i64, message: i32) -> Result<Option<i64>, StoreError> {
        self.calls.now(|db| db.case_of_message(chat, message))
    }

    async fn case_of_topic(&self, topic: i32) -> Result<Option<i64>, StoreError> {
        self.calls.now(|db| db.case_of_topic(topic))
    }

    async fn take_case(&self, id: i64, by: &str) -> Result<Option<Case>, StoreError> {
        self.calls.now(|db| db.take_case(id, by))
    }

    async fn close_case(&self, id: i64, now: Instant) -> Result<Option<Case>, StoreError> {
        self.calls.now(|db| db.close_case(id, now))
    }

    async fn person_lang(&self, user: u64) -> Result<Option<Lang>, StoreError> {
        self.calls.now(|db| db.person_lang(user))
    }

    async fn remember_menu(
        &self,
        chat: i64,
        message: i32,
        owner: u64,
        posted: Posted,
        now: Instant,
    ) -> Result<(), StoreError> {
        self.calls
            .now(|db| db.remember_menu(chat, message, owner, posted, now))
    }

    async fn menu_owner(&self, chat: i64, message: i32) -> Result<Option<u64>, StoreError> {
        self.calls.now(|db| db.menu_owner(chat, message))
    }

    async fn has_private_chat(&self, user: u64) -> Result<bool, StoreError> {
        self.calls.now(|db| db.has_private_chat(user))
    }

    async fn forget_private_chat(&self, user: u64) -> Result<(), StoreError> {
        self.calls.now(|db| db.forget_private_chat(user))
    }

    async fn set_reminders(
        &self,
        chat: i64,
        user: u64,
        new: &[NewReminder],
    ) -> Result<i64, StoreError> {
        self.calls.now(|db| db.set_reminders(chat, user, new))
    }

    async fn pending_reminders(
        &self,
        chat: Option<i64>,
        user: u64,
    ) -> Result<Vec<Reminder>, StoreError> {
        self.calls.now(|db| db.pending_reminders(chat, user))
    }

    async fn cancel_plan(&self, plan: i64, user: u64) -> Result<usize, StoreError> {
        self.calls.now(|db| db.cancel_plan(plan, user))
    }

    async fn cancel_reminders(&self, chat: i64, user: u64) -> Result<usize, StoreError> {
        self.calls.now(|db| db.cancel_reminders(chat, user))
    }

    async fn due_reminders(&self, now: Instant, limit: usize) -> Result<Vec<Reminder>, StoreError> {
        self.calls
            .apart(move |db| db.due_reminders(now, limit))
            .await
    }

    async fn next_due(&self) -> Result<Option<Instant>, StoreError> {
        self.calls.apart(Db::next_due).await
    }

    async fn claim_reminders(
        &self,
        ids: &[i64],
        owner: &str,
        until: Instant,
    ) -> Result<bool, StoreError> {
        let (ids, owner) = (ids.to_vec(), owner.to_string());
        self.calls
            .apart(move |db| db.claim_reminders(&ids, &owner, until))
            .await
    }

    async fn release_reminders(&self, ids: &[i64]) -> Result<(), StoreError> {
        let ids = ids.to_vec();
        self.calls.apart(move |db| db.release_reminders(&ids)).await
    }

    async fn finish_reminders(&self, ids: &[i64]) -> Result<(), StoreError> {
        let ids = ids.to_vec();
        self.calls.apart(move |db| db.finish_reminders(&ids)).await
    }

    async fn recover_claimed(&self, now: Instant) -> Result<usize, StoreError> {
        self.calls.apart(move |db| db.recover_claimed(now)).await
    }

    async fn hold_poller(&self) -> Result<(), StoreError> {
        let mut held = self.poller.lock().unwrap_or_else(|e| e.into_inner());
        if held.is_some() {
            return Ok(());
        }
        let path = PathBuf::from(format!("{}.poller", self.path.display()));
        let file = {
            let mut options = fs::OpenOptions::new();
            options.create(true).truncate(false).write(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options.open(&path)
        }
        .map_err(|source| StoreError::Folder {
            path: path.clone(),
            source,
        })?;
        // The operating system lets go of the lock when the process ends,
        // however it ends: a killed bot never blocks its successor.
        match file.try_lock() {
            Ok(()) => {
                *held = Some(file);
                Ok(())
            }
            Err(fs::TryLockError::WouldBlock) => Err(StoreError::InUse(self.path.clone())),
            Err(fs::TryLockError::Error(source)) => Err(StoreError::Folder { path, source }),
        }
    }

    async fn idle_sessions(
        &self,
        before: Instant,
        limit: usize,
    ) -> Result<Vec<IdleSession>, StoreError> {
        self.calls
            .apart(move |db| db.idle_sessions(before, limit))
            .await
    }

    async fn expire_session(
        &self,
        key: SessionKey,
        updated_at: Instant,
    ) -> Result<bool, StoreError> {
        self.calls
            .apart(move |db| db.expire_session(key, updated_at))
            .await
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        self.calls.apart(Db::counts).await
    }

    fn describe(&self) -> String {
        format!("SQLite file {}", self.path.display())
    }
}

/// The database connection: one call at a time, under the store's lock.
struct Db {
    conn: Connection,
}

const SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    PRAGMA wal_autocheckpoint = 10000;
    CREATE TABLE IF NOT EXISTS sessions (
        chat_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        state TEXT NOT NULL,
        updated_at INTEGER NOT NULL DEFAULT (unixepoch()),
        PRIMARY KEY (chat_id, user_id)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS people (
        user_id INTEGER PRIMARY KEY,
        lang TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS menus (
        chat_id INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        created_at INTEGER NOT NULL DEFAULT (unixepoch()),
        PRIMARY KEY (chat_id, message_id)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS menus_by_person ON menus (chat_id, user_id);
    CREATE TABLE IF NOT EXISTS notes (
        chat_id INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (chat_id, message_id)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS sessions_by_activity ON sessions (updated_at);
    CREATE TABLE IF NOT EXISTS private_chats (
        user_id INTEGER PRIMARY KEY,
        seen_at INTEGER
    );
    CREATE TABLE IF NOT EXISTS reminders (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        plan INTEGER NOT NULL,
        chat_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        lang TEXT NOT NULL,
        kind TEXT NOT NULL,
        due_at INTEGER NOT NULL,
        deadline INTEGER,
        thread_id INTEGER,
        claimed INTEGER NOT NULL DEFAULT 0,
        claimed_by TEXT,
        claimed_until INTEGER
    );
    CREATE INDEX IF NOT EXISTS reminders_by_due ON reminders (claimed, due_at);
    CREATE INDEX IF NOT EXISTS reminders_by_person ON reminders (chat_id, user_id);
";

impl Db {
    /// Opens (creating if needed, with its folder) the database file.
    fn open(path: &Path) -> Result<Self, StoreError> {
        let folder_error = |dir: &Path| {
            let path = dir.to_path_buf();
            move |source| StoreError::Folder { path, source }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_folder(dir).map_err(folder_error(dir))?;
        }
        private_files(path).map_err(folder_error(path))?;
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_WAIT)?;
        conn.execute_batch(SCHEMA)?;
        // Files made before claims had an owner and an end, and before
        // private chats were dated, gain the columns; an undated private
        // chat counts from now.
        for (table, column) in [
            ("reminders", "claimed_by TEXT"),
            ("reminders", "claimed_until INTEGER"),
            ("private_chats", "seen_at INTEGER"),
            ("sessions", "version INTEGER NOT NULL DEFAULT 0"),
        ] {
            let name = column.split(' ').next().unwrap_or(column);
            let has: bool = conn.query_row(
                "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
                [table, name],
                |row| row.get::<_, i64>(0).map(|n| n > 0),
            )?;
            if !has {
                conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column}"))?;
            }
        }
        conn.execute_batch(team::SCHEMA)?;
        conn.execute_batch(inbox::SCHEMA)?;
        // People who wrote in private before private chats were recorded.
        conn.execute(
            "INSERT OR IGNORE INTO private_chats (user_id)
             SELECT DISTINCT user_id FROM sessions WHERE chat_id = user_id",
            [],
        )?;
        conn.execute(
            "UPDATE private_chats SET seen_at = unixepoch() WHERE seen_at IS NULL",
            [],
        )?;
        // Owners of group menus older than the retention are forgotten
        // (their menus then answer "not yours"), so the tables stay bounded.
        for table in ["menus", "notes"] {
            conn.execute(
                &format!("DELETE FROM {table} WHERE created_at < unixepoch() - ?1"),
                [MENU_RETENTION_SECS],
            )?;
        }
        // From here on a call fails at once on another process's lock,
        // and is made again where it may wait (`SqliteStore::now`).
        conn.busy_timeout(Duration::ZERO)?;
        Ok(Db { conn })
    }

    /// Runs one statement for each id, all in one transaction.
    fn for_each_id(&mut self, sql: &str, ids: &[i64]) -> Result<(), StoreError> {
        let conn = &mut self.conn;
        let tx = conn.transaction()?;
        for id in ids {
            tx.prepare_cached(sql)?.execute(params![id])?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// Creates the store's folder (and those above it) readable by the bot's
/// user alone, whatever the umask; a folder that exists is left as it is.
fn private_folder(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
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
            .mode(0o600)
            .open(path)?;
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            if file.exists() {
                fs::set_permissions(&file, fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// What a session write carries besides the session.
#[derive(Clone, Copy)]
struct Write<'a> {
    remember_lang: bool,
    facts: &'a [Fact],
    now: Instant,
    answer: Option<&'a Answer>,
    /// The version the session must still have (compare and set).
    expected: Option<u64>,
}

/// Telegram ids fit in 52 bits; SQLite integers are signed 64-bit.
fn user_column(user: u64) -> i64 {
    user as i64
}

/// The store's operations, run on the store's thread.
impl Db {
    fn load(&mut self, key: SessionKey) -> Result<(Option<Session>, u64), StoreError> {
        let conn = &self.conn;
        let row: Option<(String, i64)> = conn
            .prepare_cached(
                "SELECT state, version FROM sessions WHERE chat_id = ?1 AND user_id = ?2",
            )?
            .query_row(params![key.chat, user_column(key.user)], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        let Some((state, version)) = row else {
            return Ok((None, 0));
        };
        match serde_json::from_str(&state) {
            Ok(session) => Ok((Some(session), version as u64)),
            Err(e) => {
                // An unreadable row would block this person for good; drop
                // it so their next message starts afresh.
                conn.prepare_cached("DELETE FROM sessions WHERE chat_id = ?1 AND user_id = ?2")?
                    .execute(params![key.chat, user_column(key.user)])?;
                Err(StoreError::Corrupt(e))
            }
        }
    }

    fn save(&mut self, key: SessionKey, session: &Session, write: Write) -> Result<(), StoreError> {
        let Write {
            remember_lang,
            facts,
            now,
            answer,
            expected,
        } = write;
        let conn = &mut self.conn;
        let tx = conn.transaction()?;
        if let Some(expected) = expected {
            let version: i64 = tx
                .prepare_cached("SELECT version FROM sessions WHERE chat_id = ?1 AND user_id = ?2")?
                .query_row(params![key.chat, user_column(key.user)], |row| row.get(0))
                .optional()?
                .unwrap_or(0);
            if version as u64 != expected {
                return Err(StoreError::Conflict);
            }
        }
        team::insert_facts(&tx, facts)?;
        if let Some(answer) = answer {
            inbox::answer(&tx, answer)?;
        }
        // The person is back: no need to ask them tomorrow.
        tx.prepare_cached(
            "DELETE FROM later WHERE chat_id = ?1 AND user_id = ?2 AND asked_at < ?3",
        )?
        .execute(params![key.chat, user_column(key.user), now])?;
        if is_blank(session) {
            tx.prepare_cached("DELETE FROM sessions WHERE chat_id = ?1 AND user_id = ?2")?
                .execute(params![key.chat, user_column(key.user)])?;
        } else {
            let state = serde_json::to_string(session)?;
            tx.prepare_cached(
                "INSERT INTO sessions (chat_id, user_id, state, updated_at, version)
                 VALUES (?1, ?2, ?3, ?4, 1)
                 ON CONFLICT (chat_id, user_id)
                 DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at,
                    version = version + 1",
            )?
            .execute(params![key.chat, user_column(key.user), state, now])?;
        }
        if key.is_private() {
            tx.prepare_cached(
                "INSERT INTO private_chats (user_id, seen_at) VALUES (?1, ?2)
                 ON CONFLICT (user_id) DO UPDATE SET seen_at = excluded.seen_at",
            )?
            .execute(params![user_column(key.user), now])?;
        }
        if remember_lang {
            tx.prepare_cached(
                "INSERT INTO people (user_id, lang) VALUES (?1, ?2)
                 ON CONFLICT (user_id) DO UPDATE SET lang = excluded.lang",
            )?
            .execute(params![user_column(key.user), session.lang.code()])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn person_lang(&mut self, user: u64) -> Result<Option<Lang>, StoreError> {
        let conn = &self.conn;
        let code: Option<String> = conn
            .prepare_cached("SELECT lang FROM people WHERE user_id = ?1")?
            .query_row(params![user_column(user)], |row| row.get(0))
            .optional()?;
        Ok(code.and_then(|c| c.parse().ok()))
    }

    fn remember_menu(
        &mut self,
        chat: i64,
        message: i32,
        owner: u64,
        posted: Posted,
        now: Instant,
    ) -> Result<(), StoreError> {
        let sql = match posted {
            Posted::Menu => {
                "INSERT OR REPLACE INTO menus (chat_id, message_id, user_id, created_at)
                 VALUES (?1, ?2, ?3, ?4)"
            }
            Posted::Note => {
                "INSERT OR REPLACE INTO notes (chat_id, message_id, user_id, created_at)
                 VALUES (?1, ?2, ?3, ?4)"
            }
        };
        self.conn
            .prepare_cached(sql)?
            .execute(params![chat, message, user_column(owner), now])?;
        Ok(())
    }

    fn menu_owner(&mut self, chat: i64, message: i32) -> Result<Option<u64>, StoreError> {
        let owner: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT user_id FROM menus WHERE chat_id = ?1 AND message_id = ?2
                 UNION ALL
                 SELECT user_id FROM notes WHERE chat_id = ?1 AND message_id = ?2
                 LIMIT 1",
            )?
            .query_row(params![chat, message], |row| row.get(0))
            .optional()?;
        Ok(owner.map(|o| o as u64))
    }

    fn has_private_chat(&mut self, user: u64) -> Result<bool, StoreError> {
        let found: Option<i64> = self
            .conn
            .prepare_cached("SELECT 1 FROM private_chats WHERE user_id = ?1")?
            .query_row(params![user_column(user)], |row| row.get(0))
            .optional()?;
        Ok(found.is_some())
    }

    fn forget_private_chat(&mut self, user: u64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM private_chats WHERE user_id = ?1")?
            .execute(params![user_column(user)])?;
        Ok(())
    }

    fn idle_sessions(
        &mut self,
        before: Instant,
        limit: usize,
    ) -> Result<Vec<IdleSession>, StoreError> {
        let conn = &self.conn;
        let mut stmt = conn.prepare_cached(
            "SELECT s.chat_id, s.user_id, s.updated_at, s.state,
                    (SELECT max(m.message_id) FROM menus m
                     WHERE m.chat_id = s.chat_id AND m.user_id = s.user_id)
             FROM sessions s
             WHERE s.updated_at <= ?1
               AND NOT EXISTS (SELECT 1 FROM reminders r
                               WHERE r.chat_id = s.chat_id AND r.user_id = s.user_id)
               AND NOT EXISTS (SELECT 1 FROM later l
                               WHERE l.chat_id = s.chat_id AND l.user_id = s.user_id)
             ORDER BY s.updated_at LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![before, limit], |row| {
            let state: String = row.get(3)?;
            // The language is all that is needed of the state; a row that
            // cannot be read is closed in the default language.
            let lang = serde_json::from_str::<Session>(&state)
                .map(|s| s.lang)
                .unwrap_or_default();
            Ok(IdleSession {
                key: SessionKey {
                    chat: row.get(0)?,
                    user: row.get::<_, i64>(1)? as u64,
                },
                updated_at: row.get(2)?,
                lang,
                menu: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn expire_session(&mut self, key: SessionKey, updated_at: Instant) -> Result<bool, StoreError> {
        let conn = &mut self.conn;
        let tx = conn.transaction()?;
        let deleted = tx
            .prepare_cached(
                "DELETE FROM sessions WHERE chat_id = ?1 AND user_id = ?2 AND updated_at = ?3",
            )?
            .execute(params![key.chat, user_column(key.user), updated_at])?;
        if deleted == 1 {
            tx.prepare_cached("DELETE FROM menus WHERE chat_id = ?1 AND user_id = ?2")?
                .execute(params![key.chat, user_column(key.user)])?;
        }
        tx.commit()?;
        Ok(deleted == 1)
    }

    fn counts(&mut self) -> Result<Counts, StoreError> {
        let conn = &self.conn;
        let count = |table: &str| -> Result<usize, StoreError> {
            let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                row.get(0)
            })?;
            Ok(usize::try_from(n).unwrap_or(0))
        };
        Ok(Counts {
            sessions: count("sessions")?,
            reminders: count("reminders")?,
            menus: count("menus")?,
            notes: count("notes")?,
        })
    }
}
