//! The update inbox in the SQLite file: each update recorded before Telegram is told it arrived, its replies saved with the step it made, and its id kept a day after it is done.

use rusqlite::params;

use super::Db;
use crate::clock::Instant;
use crate::store::{Answer, Entry, INBOX_RETENTION_SECS, StoreError};

/// The table, created beside the sessions' when the file opens.
pub(super) const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS inbox (
        update_id INTEGER PRIMARY KEY,
        body TEXT,
        replies TEXT,
        received_at INTEGER NOT NULL,
        done_at INTEGER
    );
    CREATE INDEX IF NOT EXISTS inbox_by_done ON inbox (done_at);
";

/// Saves a step's replies on its entry, inside the step's transaction.
pub(super) fn answer(tx: &rusqlite::Transaction<'_>, answer: &Answer) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE inbox SET replies = ?2 WHERE update_id = ?1 AND done_at IS NULL")?
        .execute(params![answer.entry, answer.replies])?;
    Ok(())
}

impl Db {
    pub(super) fn inbox_put(
        &mut self,
        id: i64,
        body: &str,
        now: Instant,
    ) -> Result<bool, StoreError> {
        let added = self
            .conn
            .prepare_cached(
                "INSERT INTO inbox (update_id, body, received_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (update_id) DO NOTHING",
            )?
            .execute(params![id, body, now])?;
        Ok(added == 1)
    }

    pub(super) fn inbox_done(&mut self, ids: &[i64], now: Instant) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for id in ids {
            // What the update said is not kept once it is answered.
            tx.prepare_cached(
                "UPDATE inbox SET done_at = ?2, body = NULL, replies = NULL WHERE update_id = ?1",
            )?
            .execute(params![id, now])?;
        }
        tx.commit()?;
        Ok(())
    }

    pub(super) fn inbox_open(&mut self) -> Result<Vec<Entry>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT update_id, body, replies FROM inbox
             WHERE done_at IS NULL AND body IS NOT NULL ORDER BY update_id",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(Entry {
                id: row.get(0)?,
                body: row.get(1)?,
                replies: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forgets done ids after a day, and entries that could not be
    /// handled in that time.
    pub(super) fn prune_inbox(
        tx: &rusqlite::Transaction<'_>,
        now: Instant,
    ) -> Result<usize, StoreError> {
        let before = now - INBOX_RETENTION_SECS;
        Ok(tx.execute(
            "DELETE FROM inbox WHERE done_at < ?1 OR (done_at IS NULL AND received_at < ?1)",
            params![before],
        )?)
    }
}
