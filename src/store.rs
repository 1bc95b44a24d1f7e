//! Session stores: where each person's conversation is kept between messages (SQLite file or memory).
//!
//! A session is one row holding the engine's `Session` as JSON, written in a
//! single statement inside a transaction, so a failure leaves the previous
//! row intact rather than half of a new one.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

use crate::engine::Session;
use crate::lang::Lang;

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

/// What the bot needs from a store. Calls are short and synchronous.
pub trait Store: Send + Sync {
    fn load(&self, key: SessionKey) -> Result<Option<Session>, StoreError>;

    /// Writes the session (a blank one deletes the row) and, with
    /// `remember_lang`, the person's language for their future sessions —
    /// both or neither.
    fn save(
        &self,
        key: SessionKey,
        session: &Session,
        remember_lang: bool,
    ) -> Result<(), StoreError>;

    /// The language a person chose with /lang, in any chat.
    fn person_lang(&self, user: u64) -> Result<Option<Lang>, StoreError>;

    /// Records whose a menu message in a group is, so only they can press
    /// its buttons even if the message it answered is deleted.
    fn remember_menu(&self, chat: i64, message: i32, owner: u64) -> Result<(), StoreError>;

    /// The member a group menu message belongs to, if recorded.
    fn menu_owner(&self, chat: i64, message: i32) -> Result<Option<u64>, StoreError>;

    /// How many sessions are stored.
    fn session_count(&self) -> Result<usize, StoreError>;

    /// A short description for the start-up log line.
    fn describe(&self) -> String;
}

/// A session with no position and no history holds nothing worth a row.
fn is_blank(session: &Session) -> bool {
    session.node.is_none() && session.history.is_empty()
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
    sessions: HashMap<SessionKey, Session>,
    people: HashMap<u64, Lang>,
    menus: HashMap<(i64, i32), u64>,
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
        Ok(self.lock().sessions.get(&key).cloned())
    }

    fn save(
        &self,
        key: SessionKey,
        session: &Session,
        remember_lang: bool,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if is_blank(session) {
            inner.sessions.remove(&key);
        } else {
            inner.sessions.insert(key, session.clone());
        }
        if remember_lang {
            inner.people.insert(key.user, session.lang);
        }
        Ok(())
    }

    fn person_lang(&self, user: u64) -> Result<Option<Lang>, StoreError> {
        Ok(self.lock().people.get(&user).copied())
    }

    fn remember_menu(&self, chat: i64, message: i32, owner: u64) -> Result<(), StoreError> {
        self.lock().menus.insert((chat, message), owner);
        Ok(())
    }

    fn menu_owner(&self, chat: i64, message: i32) -> Result<Option<u64>, StoreError> {
        Ok(self.lock().menus.get(&(chat, message)).copied())
    }

    fn session_count(&self) -> Result<usize, StoreError> {
        Ok(self.lock().sessions.len())
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
";

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
        conn.execute(
            "DELETE FROM menus WHERE created_at < unixepoch() - ?1",
            [MENU_RETENTION_SECS],
        )?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn
            .lock()
            .map_err(|_| StoreError::Unavailable("the connection lock was poisoned".into()))
    }
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
                 VALUES (?1, ?2, ?3, unixepoch())
                 ON CONFLICT (chat_id, user_id)
                 DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            )?
            .execute(params![key.chat, user_column(key.user), state])?;
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

    fn remember_menu(&self, chat: i64, message: i32, owner: u64) -> Result<(), StoreError> {
        self.conn()?
            .prepare_cached(
                "INSERT OR REPLACE INTO menus (chat_id, message_id, user_id) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![chat, message, user_column(owner)])?;
        Ok(())
    }

    fn menu_owner(&self, chat: i64, message: i32) -> Result<Option<u64>, StoreError> {
        let owner: Option<i64> = self
            .conn()?
            .prepare_cached("SELECT user_id FROM menus WHERE chat_id = ?1 AND message_id = ?2")?
            .query_row(params![chat, message], |row| row.get(0))
            .optional()?;
        Ok(owner.map(|o| o as u64))
    }

    fn session_count(&self) -> Result<usize, StoreError> {
        let conn = self.conn()?;
        let n: i64 = conn.query_row("SELECT count(*) FROM sessions", [], |row| row.get(0))?;
        Ok(usize::try_from(n).unwrap_or(0))
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
        store.save(key, &at("timeout", Lang::En), false).unwrap();
        assert_eq!(store.load(key).unwrap(), Some(at("timeout", Lang::En)));
        assert_eq!(store.person_lang(7).unwrap(), None);
        store.save(key, &at("reset", Lang::Zh), true).unwrap();
        assert_eq!(store.person_lang(7).unwrap(), Some(Lang::Zh));
        assert_eq!(store.session_count().unwrap(), 1);
        // Another person in the same chat is another session.
        let other = SessionKey {
            chat: -100,
            user: 8,
        };
        store.save(other, &at("menu", Lang::Zh), false).unwrap();
        assert_eq!(store.session_count().unwrap(), 2);
        // Group menus remember their owner.
        assert_eq!(store.menu_owner(-100, 55).unwrap(), None);
        store.remember_menu(-100, 55, 7).unwrap();
        assert_eq!(store.menu_owner(-100, 55).unwrap(), Some(7));
        // A blank session removes the row.
        store.save(key, &Session::new(Lang::Zh), false).unwrap();
        assert_eq!(store.load(key).unwrap(), None);
        assert_eq!(store.session_count().unwrap(), 1);
    }

    #[test]
    fn memory_store_keeps_sessions_per_chat_and_person() {
        exercise(&MemoryStore::default());
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
            .save(key, &at("mismatch", Lang::En), true)
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
