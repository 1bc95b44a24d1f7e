//! The tables the support team's features keep in the SQLite file: facts for the figures, next-day questions, cases and their messages.

use rusqlite::{OptionalExtension, params};

use super::{Db, MENU_RETENTION_SECS, user_column};
use crate::clock::Instant;
use crate::handoff::{CLOSED_RETENTION_SECS, Case, NewCase, Opened};
use crate::stats::{Fact, FactKind, LATER_SECS, MAX_DAYS};
use crate::store::{Later, PRIVATE_CHAT_RETENTION_SECS, StoreError};

/// The tables, created beside the sessions' when the file opens.
pub(super) const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS facts (
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        conv INTEGER NOT NULL,
        node TEXT NOT NULL,
        detail TEXT NOT NULL,
        lang TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS facts_by_time ON facts (at);
    CREATE TABLE IF NOT EXISTS later (
        chat_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        thread_id INTEGER,
        name TEXT NOT NULL,
        lang TEXT NOT NULL,
        node TEXT NOT NULL,
        conv INTEGER NOT NULL,
        due_at INTEGER NOT NULL,
        asked_at INTEGER NOT NULL,
        asked INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (chat_id, user_id)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS later_by_due ON later (due_at);
    CREATE TABLE IF NOT EXISTS cases (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id INTEGER NOT NULL,
        chat_id INTEGER NOT NULL,
        thread_id INTEGER,
        name TEXT NOT NULL,
        username TEXT,
        lang TEXT NOT NULL,
        node TEXT NOT NULL,
        place TEXT NOT NULL,
        summary TEXT NOT NULL,
        opened_at INTEGER NOT NULL,
        taken_by TEXT,
        closed_at INTEGER,
        post INTEGER,
        topic INTEGER
    );
    CREATE UNIQUE INDEX IF NOT EXISTS cases_open_per_person ON cases (user_id)
        WHERE closed_at IS NULL;
    CREATE INDEX IF NOT EXISTS cases_by_topic ON cases (topic);
    CREATE TABLE IF NOT EXISTS case_messages (
        chat_id INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        case_id INTEGER NOT NULL,
        PRIMARY KEY (chat_id, message_id)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS case_messages_by_case ON case_messages (case_id);
";

const CASE_COLUMNS: &str = "id, user_id, chat_id, thread_id, name, username, lang, node, summary,
    opened_at, taken_by, closed_at, post, topic, place";

fn case_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Case> {
    let lang: String = row.get(6)?;
    let closed_at: Option<i64> = row.get(11)?;
    Ok(Case {
        id: row.get(0)?,
        user: row.get::<_, i64>(1)? as u64,
        chat: row.get(2)?,
        thread: row.get(3)?,
        name: row.get(4)?,
        username: row.get(5)?,
        lang: lang.parse().unwrap_or_default(),
        node: row.get(7)?,
        summary: row.get(8)?,
        opened_at: row.get(9)?,
        taken_by: row.get(10)?,
        closed: closed_at.is_some(),
        post: row.get(12)?,
        topic: row.get(13)?,
        place: row.get(14)?,
    })
}

/// Conversation numbers are drawn below 2^63, so they fit as they are.
fn conv_column(conv: u64) -> i64 {
    conv as i64
}

pub(super) fn insert_facts(
    tx: &rusqlite::Transaction<'_>,
    facts: &[Fact],
) -> Result<(), StoreError> {
    for fact in facts {
        tx.prepare_cached(
            "INSERT INTO facts (at, kind, conv, node, detail, lang)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            fact.at,
            fact.kind.code(),
            conv_column(fact.conv),
            fact.node,
            fact.detail,
            fact.lang.code()
        ])?;
    }
    Ok(())
}

impl Db {
    pub(super) fn record(&mut self, facts: &[Fact]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        insert_facts(&tx, facts)?;
        tx.commit()?;
        Ok(())
    }

    pub(super) fn ask_later(&mut self, later: &Later) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO later
                 (chat_id, user_id, thread_id, name, lang, node, conv, due_at, asked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                later.chat,
                user_column(later.user),
                later.thread,
                later.name,
                later.lang.code(),
                later.node,
                conv_column(later.conv),
                later.due_at,
                later.due_at - LATER_SECS
            ])?;
        Ok(())
    }

    pub(super) fn due_later(
        &mut self,
        now: Instant,
        limit: usize,
    ) -> Result<Vec<Later>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare_cached(
            "SELECT chat_id, user_id, thread_id, name, lang, node, conv, due_at
             FROM later WHERE asked = 0 AND due_at <= ?1
             ORDER BY due_at, chat_id, user_id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now, limit], |row| {
            let lang: String = row.get(4)?;
            Ok(Later {
                chat: row.get(0)?,
                user: row.get::<_, i64>(1)? as u64,
                thread: row.get(2)?,
                name: row.get(3)?,
                lang: lang.parse().unwrap_or_default(),
                node: row.get(5)?,
                conv: row.get::<_, i64>(6)? as u64,
                due_at: row.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(super) fn take_later(&mut self, chat: i64, user: u64) -> Result<bool, StoreError> {
        let taken = self
            .conn
            .prepare_cached(
                "UPDATE later SET asked = 1
                 WHERE chat_id = ?1 AND user_id = ?2 AND asked = 0",
            )?
            .execute(params![chat, user_column(user)])?;
        Ok(taken == 1)
    }

    pub(super) fn set_case_post(
        &mut self,
        id: i64,
        message: i32,
        topic: Option<i32>,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE cases SET post = ?2, topic = ?3 WHERE id = ?1")?
            .execute(params![id, message, topic])?;
        Ok(())
    }

    pub(super) fn link_case_message(
        &mut self,
        chat: i64,
        message: i32,
        case: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO case_messages (chat_id, message_id, case_id)
                 VALUES (?1, ?2, ?3)",
            )?
            .execute(params![chat, message, case])?;
        Ok(())
    }

    pub(super) fn case_of_message(
        &mut self,
        chat: i64,
        message: i32,
    ) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT case_id FROM case_messages WHERE chat_id = ?1 AND message_id = ?2",
            )?
            .query_row(params![chat, message], |row| row.get(0))
            .optional()?)
    }

    pub(super) fn case_of_topic(&mut self, topic: i32) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT max(id) FROM cases WHERE topic = ?1")?
            .query_row(params![topic], |row| row.get::<_, Option<i64>>(0))?)
    }

    /// Runs `sql` (an update of an open case, `?2` its value); the case
    /// after it, if it changed.
    fn change_case(
        &mut self,
        id: i64,
        sql: &str,
        value: &dyn rusqlite::ToSql,
    ) -> Result<Option<Case>, StoreError> {
        let changed = self.conn.prepare_cached(sql)?.execute(params![id, value])?;
        if changed == 0 {
            return Ok(None);
        }
        self.case_where("id = ?1", id)
    }

    pub(super) fn take_case(&mut self, id: i64, by: &str) -> Result<Option<Case>, StoreError> {
        self.change_case(
            id,
            "UPDATE cases SET taken_by = ?2
             WHERE id = ?1 AND closed_at IS NULL AND taken_by IS NULL",
            &by,
        )
    }

    pub(super) fn close_case(&mut self, id: i64, now: Instant) -> Result<Option<Case>, StoreError> {
        self.change_case(
            id,
            "UPDATE cases SET closed_at = ?2 WHERE id = ?1 AND closed_at IS NULL",
            &now,
        )
    }

    pub(super) fn facts(&mut self, since: Instant) -> Result<Vec<Fact>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT at, kind, conv, node, detail, lang FROM facts WHERE at >= ?1 ORDER BY at, rowid",
        )?;
        let rows = stmt.query_map(params![since], |row| {
            let kind: String = row.get(1)?;
            let lang: String = row.get(5)?;
            Ok((
                kind,
                Fact {
                    at: row.get(0)?,
                    kind: FactKind::Started,
                    conv: row.get::<_, i64>(2)? as u64,
                    node: row.get(3)?,
                    detail: row.get(4)?,
                    lang: lang.parse().unwrap_or_default(),
                },
            ))
        })?;
        let mut facts = Vec::new();
        for row in rows {
            let (kind, mut fact) = row?;
            // A kind this version does not know (written by a newer one)
            // is left out rather than miscounted.
            if let Some(kind) = FactKind::from_code(&kind) {
                fact.kind = kind;
                facts.push(fact);
            }
        }
        Ok(facts)
    }

    pub(super) fn prune(&mut self, now: Instant) -> Result<usize, StoreError> {
        let tx = self.conn.transaction()?;
        let mut gone = tx.execute(
            "DELETE FROM facts WHERE at < ?1",
            params![now - i64::from(MAX_DAYS) * 24 * 3600],
        )?;
        gone += tx.execute(
            "DELETE FROM case_messages WHERE case_id IN
             (SELECT id FROM cases WHERE closed_at < ?1)",
            params![now - CLOSED_RETENTION_SECS],
        )?;
        gone += tx.execute(
            "DELETE FROM cases WHERE closed_at < ?1",
            params![now - CLOSED_RETENTION_SECS],
        )?;
        for table in ["menus", "notes"] {
            gone += tx.execute(
                &format!("DELETE FROM {table} WHERE created_at < ?1"),
                params![now - MENU_RETENTION_SECS],
            )?;
        }
        gone += tx.execute(
            "DELETE FROM later WHERE due_at < ?1",
            params![now - LATER_SECS],
        )?;
        gone += Db::prune_inbox(&tx, now)?;
        gone += tx.execute(
            "DELETE FROM private_chats WHERE seen_at < ?1",
            params![now - PRIVATE_CHAT_RETENTION_SECS],
        )?;
        tx.commit()?;
        Ok(gone)
    }

    pub(super) fn open_case(&mut self, new: &NewCase, now: Instant) -> Result<Opened, StoreError> {
        let tx = self.conn.transaction()?;
        let existing = tx
            .prepare_cached(&format!(
                "SELECT {CASE_COLUMNS} FROM cases WHERE user_id = ?1 AND closed_at IS NULL"
            ))?
            .query_row(params![user_column(new.user)], case_row)
            .optional()?;
        if let Some(case) = existing {
            return Ok(Opened::Existing(case));
        }
        tx.prepare_cached(
            "INSERT INTO cases
             (user_id, chat_id, thread_id, name, username, lang, node, summary, opened_at, place)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            user_column(new.user),
            new.chat,
            new.thread,
            new.name,
            new.username,
            new.lang.code(),
            new.node,
            new.summary,
            now,
            new.place
        ])?;
        let id = tx.last_insert_rowid();
        let case = tx
            .prepare_cached(&format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = ?1"))?
            .query_row(params![id], case_row)?;
        tx.commit()?;
        Ok(Opened::New(case))
    }

    pub(super) fn case_where(
        &mut self,
        condition: &str,
        value: i64,
    ) -> Result<Option<Case>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {CASE_COLUMNS} FROM cases WHERE {condition}"
            ))?
            .query_row(params![value], case_row)
            .optional()?)
    }
}
