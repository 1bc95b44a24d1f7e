//! Session stores: where each person's conversation is kept between messages (SQLite file or memory).
//!
//! A session is one row holding the engine's `Session` as JSON, written in a
//! single statement inside a transaction, so a failure leaves the previous
//! row intact rather than half of a new one.
//!
//! Reminders live beside the sessions. Sending one is bracketed by a claim
//! (pending → sending) and its removal, both durable: a reminder claimed by
//! a process that died before removing it may have been sent, so it is
//! never sent again. All times are UTC instants from the bot's clock.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

use crate::clock::Instant;
use crate::engine::Session;
use crate::lang::Lang;
use crate::reminders::{Kind, NewReminder, Reminder};

/// The default `DATABASE_URL`: an SQLite file under `data/`.
pub const DEFAULT_URL: &str = "sqlite://data/sessions.db";

/// How long the owner of a group menu is remembered: 30 days.
const MENU_RETENTION_SECS: i64 = 30 * 24 * 3600;

/// A conversation belongs to one person in one chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub chat: i64,
    pub user: u64,
}

impl SessionKey {
    /// Whether the conversation is in the person's private chat, where
    /// Telegram's chat id is their own id.
    pub fn is_private(self) -> bool {
        i64::try_from(self.user).is_ok_and(|user| user == self.chat)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("a stored session could not be read and was discarded: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("cannot create the folder {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("DATABASE_URL {0:?} is not supported: use sqlite://<file>, a file path, or memory")]
    Unsupported(String),
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

/// What a message with buttons that belongs to one person is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    /// A dialogue menu: the latest is edited when the session expires.
    Menu,
    /// Anything else with buttons — a reminder, a confirmation, a list:
    /// left as it is when the session expires.
    Note,
}

/// A session that has been idle long enough to be closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleSession {
    pub key: SessionKey,
    /// Its last activity, checked again when it is closed.
    pub updated_at: Instant,
    pub lang: Lang,
    /// The person's latest menu message in that chat, to be edited.
    pub menu: Option<i32>,
}

/// How many rows each table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub sessions: usize,
    pub reminders: usize,
    pub menus: usize,
    /// Other messages with buttons whose owner is remembered (for 30 days).
    pub notes: usize,
}

/// What the bot needs from a store. Calls are short and synchronous.
pub trait Store: Send + Sync {
    fn load(&self, key: SessionKey) -> Result<Option<Session>, StoreError>;

    /// Writes the session (a blank one deletes the row) as active at `now`
    /// and, with `remember_lang`, the person's language for their future
    /// sessions — both or neither. A session in a private chat also
    /// records that the person has started the bot there.
    fn save(
        &self,
        key: SessionKey,
        session: &Session,
        remember_lang: bool,
        now: Instant,
    ) -> Result<(), StoreError>;

    /// The language a person chose with /lang, in any chat.
    fn person_lang(&self, user: u64) -> Result<Option<Lang>, StoreError>;

    /// Records whose a message with buttons is: in groups, only they may
    /// press its buttons even if the message it answered is deleted; and
    /// the latest menu is edited when the session expires.
    fn remember_menu(
        &self,
        chat: i64,
        message: i32,
        owner: u64,
        posted: Posted,
        now: Instant,
    ) -> Result<(), StoreError>;

    /// The member a group menu message belongs to, if recorded.
    fn menu_owner(&self, chat: i64, message: i32) -> Result<Option<u64>, StoreError>;

    /// Whether the person has a private chat with the bot that it may use.
    fn has_private_chat(&self, user: u64) -> Result<bool, StoreError>;

    /// Forgets the private chat (the person blocked the bot).
    fn forget_private_chat(&self, user: u64) -> Result<(), StoreError>;

    /// Stores reminders set together, as one plan, in place of the
    /// person's pending reminders in the chat (a new SMS makes the old
    /// window moot); returns the plan's id, which is never reused.
    fn set_reminders(&self, chat: i64, user: u64, new: &[NewReminder]) -> Result<i64, StoreError>;

    /// The person's reminders still to be sent, by time: those set in
    /// `chat`, or with `None` all of them.
    fn pending_reminders(&self, chat: Option<i64>, user: u64) -> Result<Vec<Reminder>, StoreError>;

    /// Cancels a plan's pending reminders, if they are the person's;
    /// returns how many.
    fn cancel_plan(&self, plan: i64, user: u64) -> Result<usize, StoreError>;

    /// Cancels all the person's pending reminders in a chat.
    fn cancel_reminders(&self, chat: i64, user: u64) -> Result<usize, StoreError>;

    /// Pending reminders due at `now` of at most `limit` plans, whole
    /// plans, by plan then time.
    fn due_reminders(&self, now: Instant, limit: usize) -> Result<Vec<Reminder>, StoreError>;

    /// The earliest time a pending reminder falls due.
    fn next_due(&self) -> Result<Option<Instant>, StoreError>;

    /// Marks pending reminders as being sent: all of them, or none if any
    /// is no longer pending (cancelled, or taken meanwhile).
    fn claim_reminders(&self, ids: &[i64]) -> Result<bool, StoreError>;

    /// Returns claimed reminders to pending: they were not sent.
    fn release_reminders(&self, ids: &[i64]) -> Result<(), StoreError>;

    /// Removes claimed reminders: they were sent, or are no longer wanted.
    fn finish_reminders(&self, ids: &[i64]) -> Result<(), StoreError>;

    /// At start: removes reminders a previous process claimed and never
    /// finished. They may have been sent, so they are not sent again.
    fn recover_claimed(&self) -> Result<usize, StoreError>;

    /// Sessions last active at or before `before` with no pending reminder
    /// in their chat, oldest first, at most `limit`.
    fn idle_sessions(&self, before: Instant, limit: usize) -> Result<Vec<IdleSession>, StoreError>;

    /// Deletes an idle session and its menu records, unless it was active
    /// after `updated_at`; returns whether it was deleted.
    fn expire_session(&self, key: SessionKey, updated_at: Instant) -> Result<bool, StoreError>;

    /// How many rows the tables hold.
    fn counts(&self) -> Result<Counts, StoreError>;

    /// How many sessions are stored.
    fn session_count(&self) -> Result<usize, StoreError> {
        Ok(self.counts()?.sessions)
    }

    /// A short description for the start-up log line.
    fn describe(&self) -> String;
}

/// A session with no position and no history holds nothing worth a row.
fn is_blank(session: &Session) -> bool {
    session.node.is_none() && session.history.is_empty()
}

fn stored(id: i64, plan: i64, n: &NewReminder) -> Reminder {
    Reminder {
        id,
        plan,
        chat: n.chat,
        user: n.user,
        name: n.name.clone(),
        lang: n.lang,
        kind: n.kind,
        due_at: n.due_at,
        deadline: n.deadline,
        thread: n.thread,
    }
}

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

/// Sessions in memory: for tests and for running without a disk.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<MemoryInner>,
}

#[derive(Default)]
struct MemoryInner {
    sessions: HashMap<SessionKey, (Session, Instant)>,
    people: HashMap<u64, Lang>,
    private_chats: HashSet<u64>,
    menus: HashMap<(i64, i32), u64>,
    notes: HashMap<(i64, i32), u64>,
    /// Reminders with whether they are claimed.
    reminders: Vec<(Reminder, bool)>,
    last_id: i64,
}

impl MemoryStore {
    fn lock(&self) -> MutexGuard<'_, MemoryInner> {
        // A panic elsewhere while holding the lock cannot leave the maps
        // half-updated (every update is a single insert or remove).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemoryStore {
    fn load(&self, key: SessionKey) -> Result<Option<Session>, StoreError> {
        Ok(self.lock().sessions.get(&key).map(|(s, _)| s.clone()))
    }

    fn save(
        &self,
        key: SessionKey,
        session: &Session,
        remember_lang: bool,
        now: Instant,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if is_blank(session) {
            inner.sessions.remove(&key);
        } else {
            inner.sessions.insert(key, (session.clone(), now));
        }
        if remember_lang {
            inner.people.insert(key.user, session.lang);
        }
        if key.is_private() {
            inner.private_chats.insert(key.user);
        }
        Ok(())
    }

    fn person_lang(&self, user: u64) -> Result<Option<Lang>, StoreError> {
        Ok(self.lock().people.get(&user).copied())
    }

    fn remember_menu(
        &self,
        chat: i64,
        message: i32,
        owner: u64,
        posted: Posted,
        _now: Instant,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        match posted {
            Posted::Menu => inner.menus.insert((chat, message), owner),
            Posted::Note => inner.notes.insert((chat, message), owner),
        };
        Ok(())
    }

    fn menu_owner(&self, chat: i64, message: i32) -> Result<Option<u64>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .menus
            .get(&(chat, message))
            .or_else(|| inner.notes.get(&(chat, message)))
            .copied())
    }

    fn has_private_chat(&self, user: u64) -> Result<bool, StoreError> {
        Ok(self.lock().private_chats.contains(&user))
    }

    fn forget_private_chat(&self, user: u64) -> Result<(), StoreError> {
        self.lock().private_chats.remove(&user);
        Ok(())
    }

    fn set_reminders(&self, chat: i64, user: u64, new: &[NewReminder]) -> Result<i64, StoreError> {
        let mut inner = self.lock();
        inner
            .reminders
            .retain(|(r, claimed)| *claimed || r.chat != chat || r.user != user);
        let plan = inner.last_id + 1;
        for n in new {
            inner.last_id += 1;
            let id = inner.last_id;
            inner.reminders.push((stored(id, plan, n), false));
        }
        inner.last_id = inner.last_id.max(plan);
        Ok(plan)
    }

    fn pending_reminders(&self, chat: Option<i64>, user: u64) -> Result<Vec<Reminder>, StoreError> {
        let mut found: Vec<Reminder> = self
            .lock()
            .reminders
            .iter()
            .filter(|(r, claimed)| {
                !claimed && chat.is_none_or(|chat| r.chat == chat) && r.user == user
            })
            .map(|(r, _)| r.clone())
            .collect();
        found.sort_by_key(|r| (r.due_at, r.id));
        Ok(found)
    }

    fn cancel_plan(&self, plan: i64, user: u64) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let before = inner.reminders.len();
        inner
            .reminders
            .retain(|(r, claimed)| *claimed || r.plan != plan || r.user != user);
        Ok(before - inner.reminders.len())
    }

    fn cancel_reminders(&self, chat: i64, user: u64) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let before = inner.reminders.len();
        inner
            .reminders
            .retain(|(r, claimed)| *claimed || r.chat != chat || r.user != user);
        Ok(before - inner.reminders.len())
    }

    fn due_reminders(&self, now: Instant, limit: usize) -> Result<Vec<Reminder>, StoreError> {
        let mut due: Vec<Reminder> = self
            .lock()
            .reminders
            .iter()
            .filter(|(r, claimed)| !claimed && r.due_at <= now)
            .map(|(r, _)| r.clone())
            .collect();
        due.sort_by_key(|r| (r.plan, r.due_at, r.id));
        let mut plans: Vec<i64> = due.iter().map(|r| r.plan).collect();
        plans.dedup();
        plans.truncate(limit);
        due.retain(|r| plans.contains(&r.plan));
        Ok(due)
    }

    fn next_due(&self) -> Result<Option<Instant>, StoreError> {
        Ok(self
            .lock()
            .reminders
            .iter()
            .filter(|(_, claimed)| !claimed)
            .map(|(r, _)| r.due_at)
            .min())
    }

    fn claim_reminders(&self, ids: &[i64]) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let all_pending = ids.iter().all(|id| {
            inner
                .reminders
                .iter()
                .any(|(r, claimed)| r.id == *id && !claimed)
        });
        if all_pending {
            for (r, claimed) in &mut inner.reminders {
                if ids.contains(&r.id) {
                    *claimed = true;
                }
            }
        }
        Ok(all_pending)
    }

    fn release_reminders(&self, ids: &[i64]) -> Result<(), StoreError> {
        for (r, claimed) in &mut self.lock().reminders {
            if ids.contains(&r.id) {
                *claimed = false;
            }
        }
        Ok(())
    }

    fn finish_reminders(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.lock().reminders.retain(|(r, _)| !ids.contains(&r.id));
        Ok(())
    }

    fn recover_claimed(&self) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let before = inner.reminders.len();
        inner.reminders.retain(|(_, claimed)| !claimed);
        Ok(before - inner.reminders.len())
    }

    fn idle_sessions(&self, before: Instant, limit: usize) -> Result<Vec<IdleSession>, StoreError> {
        let inner = self.lock();
        let mut idle: Vec<IdleSession> = inner
            .sessions
            .iter()
            .filter(|(key, (_, at))| {
                *at <= before
                    && !inner
                        .reminders
                        .iter()
                        .any(|(r, _)| r.chat == key.chat && r.user == key.user)
            })
            .map(|(key, (session, at))| IdleSession {
                key: *key,
                updated_at: *at,
                lang: session.lang,
                menu: inner
                    .menus
                    .iter()
                    .filter(|((chat, _), owner)| *chat == key.chat && **owner == key.user)
                    .map(|((_, message), _)| *message)
                    .max(),
            })
            .collect();
        idle.sort_by_key(|i| (i.updated_at, i.key.chat, i.key.user));
        idle.truncate(limit);
        Ok(idle)
    }

    fn expire_session(&self, key: SessionKey, updated_at: Instant) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if inner.sessions.get(&key).map(|(_, at)| *at) != Some(updated_at) {
            return Ok(false);
        }
        inner.sessions.remove(&key);
        inner
            .menus
            .retain(|(chat, _), owner| *chat != key.chat || *owner != key.user);
        Ok(true)
    }

    fn counts(&self) -> Result<Counts, StoreError> {
        let inner = self.lock();
        Ok(Counts {
            sessions: inner.sessions.len(),
            reminders: inner.reminders.len(),
            menus: inner.menus.len(),
            notes: inner.notes.len(),
        })
    }

    fn describe(&self) -> String {
        "memory (nothing survives a restart)".to_string()
    }
}

/// Sessions in an SQLite file, one row per (chat, person).
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
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
        user_id INTEGER PRIMARY KEY
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
        claimed INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX IF NOT EXISTS reminders_by_due ON reminders (claimed, due_at);
    CREATE INDEX IF NOT EXISTS reminders_by_person ON reminders (chat_id, user_id);
";

const REMINDER_COLUMNS: &str =
    "id, plan, chat_id, user_id, name, lang, kind, due_at, deadline, thread_id";

fn reminder_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Reminder> {
    let lang: String = row.get(5)?;
    let kind: String = row.get(6)?;
    Ok(Reminder {
        id: row.get(0)?,
        plan: row.get(1)?,
        chat: row.get(2)?,
        user: row.get::<_, i64>(3)? as u64,
        name: row.get(4)?,
        lang: lang.parse().unwrap_or_default(),
        kind: Kind::from_code(&kind).unwrap_or(Kind::Window),
        due_at: row.get(7)?,
        deadline: row.get(8)?,
        thread: row.get(9)?,
    })
}

impl SqliteStore {
    /// Opens (creating if needed, with its folder) the database file.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        // Owners of group menus older than this are forgotten (their menus
        // then answer "not yours"), so the table stays bounded.
        // People who wrote in private before private chats were recorded.
        conn.execute(
            "INSERT OR IGNORE INTO private_chats (user_id)
             SELECT DISTINCT user_id FROM sessions WHERE chat_id = user_id",
            [],
        )?;
        for table in ["menus", "notes"] {
            conn.execute(
                &format!("DELETE FROM {table} WHERE created_at < unixepoch() - ?1"),
                [MENU_RETENTION_SECS],
            )?;
        }
        Ok(SqliteStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    /// Runs one statement for each id, all in one transaction.
    fn for_each_id(&self, sql: &str, ids: &[i64]) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        for id in ids {
            tx.prepare_cached(sql)?.execute(params![id])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn
            .lock()
            .map_err(|_| StoreError::Unavailable("the connection lock was poisoned".into()))
    }
}

/// Claims all of `ids` in one transaction, or none.
fn claim(conn: &mut Connection, ids: &[i64]) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    for id in ids {
        let claimed = tx
            .prepare_cached("UPDATE reminders SET claimed = 1 WHERE id = ?1 AND claimed = 0")?
            .execute(params![id])?;
        if claimed != 1 {
            // Dropping the transaction rolls the others back.
            return Ok(false);
        }
    }
    tx.commit()?;
    Ok(true)
}

/// Telegram ids fit in 52 bits; SQLite integers are signed 64-bit.
fn user_column(user: u64) -> i64 {
    user as i64
}

impl Store for SqliteStore {
    fn load(&self, key: SessionKey) -> Result<Option<Session>, StoreError> {
        let conn = self.conn()?;
        let state: Option<String> = conn
            .prepare_cached("SELECT state FROM sessions WHERE chat_id = ?1 AND user_id = ?2")?
            .query_row(params![key.chat, user_column(key.user)], |row| row.get(0))
            .optional()?;
        let Some(state) = state else {
            return Ok(None);
        };
        match serde_json::from_str(&state) {
            Ok(session) => Ok(Some(session)),
            Err(e) => {
                // An unreadable row would block this person for good; drop
                // it so their next message starts afresh.
                conn.prepare_cached("DELETE FROM sessions WHERE chat_id = ?1 AND user_id = ?2")?
                    .execute(params![key.chat, user_column(key.user)])?;
                Err(StoreError::Corrupt(e))
            }
        }
    }

    fn save(
        &self,
        key: SessionKey,
        session: &Session,
        remember_lang: bool,
        now: Instant,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        if is_blank(session) {
            tx.prepare_cached("DELETE FROM sessions WHERE chat_id = ?1 AND user_id = ?2")?
                .execute(params![key.chat, user_column(key.user)])?;
        } else {
            let state = serde_json::to_string(session)?;
            tx.prepare_cached(
                "INSERT INTO sessions (chat_id, user_id, state, updated_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (chat_id, user_id)
                 DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            )?
            .execute(params![key.chat, user_column(key.user), state, now])?;
        }
        if key.is_private() {
            tx.prepare_cached("INSERT OR IGNORE INTO private_chats (user_id) VALUES (?1)")?
                .execute(params![user_column(key.user)])?;
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

    fn person_lang(&self, user: u64) -> Result<Option<Lang>, StoreError> {
        let conn = self.conn()?;
        let code: Option<String> = conn
            .prepare_cached("SELECT lang FROM people WHERE user_id = ?1")?
            .query_row(params![user_column(user)], |row| row.get(0))
            .optional()?;
        Ok(code.and_then(|c| c.parse().ok()))
    }

    fn remember_menu(
        &self,
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
        self.conn()?.prepare_cached(sql)?.execute(params![
            chat,
            message,
            user_column(owner),
            now
        ])?;
        Ok(())
    }

    fn menu_owner(&self, chat: i64, message: i32) -> Result<Option<u64>, StoreError> {
        let owner: Option<i64> = self
            .conn()?
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

    fn has_private_chat(&self, user: u64) -> Result<bool, StoreError> {
        let found: Option<i64> = self
            .conn()?
            .prepare_cached("SELECT 1 FROM private_chats WHERE user_id = ?1")?
            .query_row(params![user_column(user)], |row| row.get(0))
            .optional()?;
        Ok(found.is_some())
    }

    fn forget_private_chat(&self, user: u64) -> Result<(), StoreError> {
        self.conn()?
            .prepare_cached("DELETE FROM private_chats WHERE user_id = ?1")?
            .execute(params![user_column(user)])?;
        Ok(())
    }

    fn set_reminders(&self, chat: i64, user: u64, new: &[NewReminder]) -> Result<i64, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        tx.prepare_cached(
            "DELETE FROM reminders WHERE chat_id = ?1 AND user_id = ?2 AND claimed = 0",
        )?
        .execute(params![chat, user_column(user)])?;
        let mut plan = 0;
        for n in new {
            tx.prepare_cached(
                "INSERT INTO reminders
                 (plan, chat_id, user_id, name, lang, kind, due_at, deadline, thread_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                plan,
                n.chat,
                user_column(n.user),
                n.name,
                n.lang.code(),
                n.kind.code(),
                n.due_at,
                n.deadline,
                n.thread
            ])?;
            // The first reminder's id names the plan: AUTOINCREMENT never
            // hands an id out twice, so an old button cannot reach a new plan.
            if plan == 0 {
                plan = tx.last_insert_rowid();
                tx.prepare_cached("UPDATE reminders SET plan = ?1 WHERE id = ?1")?
                    .execute(params![plan])?;
            }
        }
        tx.commit()?;
        Ok(plan)
    }

    fn pending_reminders(&self, chat: Option<i64>, user: u64) -> Result<Vec<Reminder>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {REMINDER_COLUMNS} FROM reminders
             WHERE (?1 IS NULL OR chat_id = ?1) AND user_id = ?2 AND claimed = 0
             ORDER BY due_at, id"
        ))?;
        let rows = stmt.query_map(params![chat, user_column(user)], reminder_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn cancel_plan(&self, plan: i64, user: u64) -> Result<usize, StoreError> {
        Ok(self
            .conn()?
            .prepare_cached(
                "DELETE FROM reminders WHERE plan = ?1 AND user_id = ?2 AND claimed = 0",
            )?
            .execute(params![plan, user_column(user)])?)
    }

    fn cancel_reminders(&self, chat: i64, user: u64) -> Result<usize, StoreError> {
        Ok(self
            .conn()?
            .prepare_cached(
                "DELETE FROM reminders WHERE chat_id = ?1 AND user_id = ?2 AND claimed = 0",
            )?
            .execute(params![chat, user_column(user)])?)
    }

    fn due_reminders(&self, now: Instant, limit: usize) -> Result<Vec<Reminder>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {REMINDER_COLUMNS} FROM reminders
             WHERE claimed = 0 AND due_at <= ?1 AND plan IN (
                 SELECT DISTINCT plan FROM reminders
                 WHERE claimed = 0 AND due_at <= ?1 ORDER BY plan LIMIT ?2)
             ORDER BY plan, due_at, id"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![now, limit], reminder_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn next_due(&self) -> Result<Option<Instant>, StoreError> {
        let conn = self.conn()?;
        Ok(conn.query_row(
            "SELECT min(due_at) FROM reminders WHERE claimed = 0",
            [],
            |row| row.get(0),
        )?)
    }

    fn claim_reminders(&self, ids: &[i64]) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        // A claim must reach the disk before the send it guards, even
        // through a power cut: this one commit is synced in full.
        conn.execute_batch("PRAGMA synchronous = FULL")?;
        let claimed = claim(&mut conn, ids);
        conn.execute_batch("PRAGMA synchronous = NORMAL")?;
        claimed
    }

    fn release_reminders(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.for_each_id("UPDATE reminders SET claimed = 0 WHERE id = ?1", ids)
    }

    fn finish_reminders(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.for_each_id("DELETE FROM reminders WHERE id = ?1", ids)
    }

    fn recover_claimed(&self) -> Result<usize, StoreError> {
        Ok(self
            .conn()?
            .execute("DELETE FROM reminders WHERE claimed = 1", [])?)
    }

    fn idle_sessions(&self, before: Instant, limit: usize) -> Result<Vec<IdleSession>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT s.chat_id, s.user_id, s.updated_at, s.state,
                    (SELECT max(m.message_id) FROM menus m
                     WHERE m.chat_id = s.chat_id AND m.user_id = s.user_id)
             FROM sessions s
             WHERE s.updated_at <= ?1
               AND NOT EXISTS (SELECT 1 FROM reminders r
                               WHERE r.chat_id = s.chat_id AND r.user_id = s.user_id)
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

    fn expire_session(&self, key: SessionKey, updated_at: Instant) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
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

    fn counts(&self) -> Result<Counts, StoreError> {
        let conn = self.conn()?;
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

    fn describe(&self) -> String {
        format!("SQLite file {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(node: &str, lang: Lang) -> Session {
        Session {
            node: Some(node.to_string()),
            lang,
            history: vec!["menu".to_string()],
            picks: vec![0],
            asking: None,
        }
    }

    /// A database file of its own for one test, removed afterwards.
    struct TempDb(PathBuf);

    impl TempDb {
        fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "icp-sms-doctor-test-{}-{name}.db",
                std::process::id()
            ));
            let db = TempDb(path);
            db.clean();
            db
        }

        fn clean(&self) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = fs::remove_file(format!("{}{suffix}", self.0.display()));
            }
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            self.clean();
        }
    }

    fn exercise(store: &dyn Store) {
        let key = SessionKey {
            chat: -100,
            user: 7,
        };
        assert_eq!(store.load(key).unwrap(), None);
        store
            .save(key, &at("timeout", Lang::En), false, 100)
            .unwrap();
        assert_eq!(store.load(key).unwrap(), Some(at("timeout", Lang::En)));
        assert_eq!(store.person_lang(7).unwrap(), None);
        store.save(key, &at("reset", Lang::Zh), true, 100).unwrap();
        assert_eq!(store.person_lang(7).unwrap(), Some(Lang::Zh));
        assert_eq!(store.session_count().unwrap(), 1);
        // Another person in the same chat is another session.
        let other = SessionKey {
            chat: -100,
            user: 8,
        };
        store
            .save(other, &at("menu", Lang::Zh), false, 100)
            .unwrap();
        assert_eq!(store.session_count().unwrap(), 2);
        // Group menus remember their owner.
        assert_eq!(store.menu_owner(-100, 55).unwrap(), None);
        store.remember_menu(-100, 55, 7, Posted::Menu, 100).unwrap();
        assert_eq!(store.menu_owner(-100, 55).unwrap(), Some(7));
        store.remember_menu(-100, 56, 8, Posted::Note, 100).unwrap();
        assert_eq!(store.menu_owner(-100, 56).unwrap(), Some(8));
        // A blank session removes the row.
        store
            .save(key, &Session::new(Lang::Zh), false, 100)
            .unwrap();
        assert_eq!(store.load(key).unwrap(), None);
        assert_eq!(store.session_count().unwrap(), 1);
    }

    #[test]
    fn memory_store_keeps_sessions_per_chat_and_person() {
        exercise(&MemoryStore::default());
    }

    fn window(chat: i64, user: u64, due_at: Instant) -> NewReminder {
        NewReminder {
            chat,
            user,
            name: "Li".to_string(),
            lang: Lang::Zh,
            kind: Kind::Window,
            due_at,
            deadline: Some(due_at + 7200),
            thread: None,
        }
    }

    fn exercise_reminders(store: &dyn Store) {
        let plan = store
            .set_reminders(-5, 7, &[window(-5, 7, 1_000), window(-5, 7, 2_000)])
            .unwrap();
        let pending = store.pending_reminders(Some(-5), 7).unwrap();
        assert_eq!(pending.len(), 2);
        assert_eq!(store.pending_reminders(None, 7).unwrap(), pending);
        assert!(store.pending_reminders(Some(-6), 7).unwrap().is_empty());
        assert!(pending.iter().all(|r| r.plan == plan && r.name == "Li"));
        assert_eq!(store.next_due().unwrap(), Some(1_000));
        assert!(store.due_reminders(999, 10).unwrap().is_empty());
        let due = store.due_reminders(1_500, 10).unwrap();
        assert_eq!(due.len(), 1);
        // Someone else cannot cancel the plan.
        assert_eq!(store.cancel_plan(plan, 8).unwrap(), 0);
        // A claim is all or nothing, and only once.
        let ids = [due[0].id];
        assert!(store.claim_reminders(&ids).unwrap());
        assert!(!store.claim_reminders(&ids).unwrap());
        assert_eq!(store.pending_reminders(Some(-5), 7).unwrap().len(), 1);
        store.release_reminders(&ids).unwrap();
        assert!(store.claim_reminders(&ids).unwrap());
        // A claimed reminder left behind by a dead process is not resent.
        assert_eq!(store.recover_claimed().unwrap(), 1);
        assert!(store.due_reminders(1_500, 10).unwrap().is_empty());
        // Plans are never numbered twice, even after their rows are gone.
        assert_eq!(store.cancel_plan(plan, 7).unwrap(), 1);
        let next = store.set_reminders(-5, 7, &[window(-5, 7, 3_000)]).unwrap();
        assert!(next > plan);
        // Setting a new plan replaces the pending one.
        let newest = store.set_reminders(-5, 7, &[window(-5, 7, 4_000)]).unwrap();
        let pending = store.pending_reminders(Some(-5), 7).unwrap();
        assert_eq!((pending.len(), pending[0].plan), (1, newest));
        assert_eq!(store.cancel_reminders(-5, 7).unwrap(), 1);
        assert_eq!(store.counts().unwrap().reminders, 0);
    }

    fn exercise_expiry(store: &dyn Store) {
        let quiet = SessionKey { chat: 3, user: 3 };
        let busy = SessionKey { chat: -9, user: 4 };
        let waiting = SessionKey { chat: -9, user: 5 };
        store
            .save(quiet, &at("timeout", Lang::En), false, 100)
            .unwrap();
        store.remember_menu(3, 40, 3, Posted::Menu, 100).unwrap();
        store.remember_menu(3, 41, 3, Posted::Menu, 100).unwrap();
        // A reminder is not the menu to close.
        store.remember_menu(3, 42, 3, Posted::Note, 100).unwrap();
        store
            .save(busy, &at("timeout", Lang::Zh), false, 100)
            .unwrap();
        store
            .save(waiting, &at("to_new_sms", Lang::Zh), false, 100)
            .unwrap();
        store.set_reminders(-9, 5, &[window(-9, 5, 9_000)]).unwrap();
        // The person in their private chat is known to have started the bot.
        assert!(store.has_private_chat(3).unwrap());
        assert!(!store.has_private_chat(4).unwrap());
        let idle = store.idle_sessions(100, 10).unwrap();
        let keys: Vec<SessionKey> = idle.iter().map(|i| i.key).collect();
        assert_eq!(keys.len(), 2, "a pending reminder keeps a session alive");
        assert!(keys.contains(&quiet) && keys.contains(&busy));
        let quiet_idle = idle.iter().find(|i| i.key == quiet).unwrap();
        assert_eq!((quiet_idle.menu, quiet_idle.lang), (Some(41), Lang::En));
        // Activity after the scan keeps the session.
        store
            .save(busy, &at("reset", Lang::Zh), false, 150)
            .unwrap();
        assert!(!store.expire_session(busy, 100).unwrap());
        assert!(store.expire_session(quiet, 100).unwrap());
        assert_eq!(store.load(quiet).unwrap(), None);
        assert_eq!(store.counts().unwrap().menus, 0);
        assert_eq!(store.counts().unwrap().sessions, 2);
        store.forget_private_chat(3).unwrap();
        assert!(!store.has_private_chat(3).unwrap());
    }

    #[test]
    fn memory_store_keeps_reminders_and_expires_sessions() {
        exercise_reminders(&MemoryStore::default());
        exercise_expiry(&MemoryStore::default());
    }

    #[test]
    fn sqlite_store_keeps_reminders_and_expires_sessions() {
        let db = TempDb::new("reminders");
        exercise_reminders(&SqliteStore::open(&db.0).unwrap());
        let db = TempDb::new("expiry");
        exercise_expiry(&SqliteStore::open(&db.0).unwrap());
    }

    #[test]
    fn sqlite_store_keeps_sessions_per_chat_and_person() {
        let db = TempDb::new("exercise");
        exercise(&SqliteStore::open(&db.0).unwrap());
    }

    #[test]
    fn sqlite_sessions_survive_reopening_the_file() {
        let db = TempDb::new("reopen");
        let key = SessionKey { chat: 1, user: 1 };
        SqliteStore::open(&db.0)
            .unwrap()
            .save(key, &at("mismatch", Lang::En), true, 100)
            .unwrap();
        let store = SqliteStore::open(&db.0).unwrap();
        assert_eq!(store.load(key).unwrap(), Some(at("mismatch", Lang::En)));
        assert_eq!(store.person_lang(1).unwrap(), Some(Lang::En));
    }

    #[test]
    fn an_unreadable_row_is_reported_once_then_dropped() {
        let db = TempDb::new("corrupt");
        let store = SqliteStore::open(&db.0).unwrap();
        let key = SessionKey { chat: 5, user: 6 };
        store
            .conn()
            .unwrap()
            .execute(
                "INSERT INTO sessions (chat_id, user_id, state) VALUES (5, 6, 'not json')",
                [],
            )
            .unwrap();
        assert!(matches!(store.load(key), Err(StoreError::Corrupt(_))));
        assert_eq!(store.load(key).unwrap(), None);
    }

    #[test]
    fn urls_pick_the_store() {
        assert!(open("memory").unwrap().describe().starts_with("memory"));
        assert!(matches!(
            open("redis://localhost:6379"),
            Err(StoreError::Unsupported(_))
        ));
        let db = TempDb::new("url");
        let store = open(&format!("sqlite://{}", db.0.display())).unwrap();
        assert!(store.describe().contains("url.db"));
    }
}
