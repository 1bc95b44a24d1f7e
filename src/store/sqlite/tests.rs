//! The SQLite store's own tests, beside the suite every store passes: its files private to the bot, a reopened file, an unreadable row, another process's lock.

use std::fs;
use std::path::PathBuf;

use super::SqliteStore;
use crate::lang::Lang;
use crate::store::suite::{TempDb, at, within};
use crate::store::{SessionKey, Store, StoreError};

/// The store's folder is the bot's alone (0700) and its files too (0600),
/// whatever the umask lets through: they hold user ids and names.
#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_private_to_the_bot() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("icp-sms-doctor-private-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let path = dir.join("data").join("sessions.db");
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    within(async {
        let store = SqliteStore::open(&path).unwrap();
        store
            .save(
                SessionKey { chat: 1, user: 1 },
                &at("timeout", Lang::Zh),
                false,
                &[],
                1,
            )
            .await
            .unwrap();
        assert_eq!(mode(&dir.join("data")), 0o700);
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
    })
    .await;
    // A file left readable by an older version is closed up on opening.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    drop(SqliteStore::open(&path).unwrap());
    assert_eq!(mode(&path), 0o600);
    let _ = fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn sqlite_sessions_survive_reopening_the_file() {
    within(sqlite_reopened()).await;
}

async fn sqlite_reopened() {
    let db = TempDb::new("reopen");
    let key = SessionKey { chat: 1, user: 1 };
    SqliteStore::open(&db.0)
        .unwrap()
        .save(key, &at("mismatch", Lang::En), true, &[], 100)
        .await
        .unwrap();
    let store = SqliteStore::open(&db.0).unwrap();
    assert_eq!(
        store.load(key).await.unwrap(),
        Some(at("mismatch", Lang::En))
    );
    assert_eq!(store.person_lang(1).await.unwrap(), Some(Lang::En));
}

#[tokio::test]
async fn an_unreadable_row_is_reported_once_then_dropped() {
    within(unreadable_row()).await;
}

async fn unreadable_row() {
    let db = TempDb::new("corrupt");
    let store = SqliteStore::open(&db.0).unwrap();
    let key = SessionKey { chat: 5, user: 6 };
    store
        .execute("INSERT INTO sessions (chat_id, user_id, state) VALUES (5, 6, 'not json')")
        .await
        .unwrap();
    assert!(matches!(store.load(key).await, Err(StoreError::Corrupt(_))));
    assert_eq!(store.load(key).await.unwrap(), None);
}

/// Another process holding the file's write lock for a while: a read goes
/// on, and a write waits for the lock (off the async workers) and then
/// succeeds. (Calls made meanwhile queue behind that write.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_write_waits_out_another_process_lock() {
    within(locked_by_another()).await;
}

async fn locked_by_another() {
    let db = TempDb::new("locked");
    let store = SqliteStore::open(&db.0).unwrap();
    let (mine, theirs) = (
        SessionKey { chat: 1, user: 1 },
        SessionKey { chat: 2, user: 2 },
    );
    store
        .save(theirs, &at("reset", Lang::Zh), false, &[], 1)
        .await
        .unwrap();
    let other = rusqlite::Connection::open(&db.0).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Reading does not wait for the other process's lock.
    assert_eq!(
        store.load(theirs).await.unwrap(),
        Some(at("reset", Lang::Zh))
    );
    // (Read before the write starts: a read made while our own write holds
    // the connection, waiting for the lock, would wait behind it.)
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .save(mine, &at("timeout", Lang::En), false, &[], 2)
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!writer.is_finished(), "the write did not wait for the lock");
    other.execute_batch("COMMIT").unwrap();
    writer.await.unwrap().unwrap();
    assert_eq!(
        store.load(mine).await.unwrap(),
        Some(at("timeout", Lang::En))
    );
}
