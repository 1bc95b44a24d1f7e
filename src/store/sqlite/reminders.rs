//! Reminders in the SQLite file: plans set and cancelled, due ones found, and each send bracketed by a claim (with its owner and end) and its removal.

use std::panic::{AssertUnwindSafe, catch_unwind};

use rusqlite::{Connection, params};

use super::calls::panicked;
use super::{Db, user_column};
use crate::clock::Instant;
use crate::reminders::{Kind, NewReminder, Reminder};
use crate::store::StoreError;

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

/// Claims all of `ids` in one transaction, or none.
fn claim(
    conn: &mut Connection,
    ids: &[i64],
    owner: &str,
    until: Instant,
) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    for id in ids {
        let claimed = tx
            .prepare_cached(
                "UPDATE reminders SET claimed = 1, claimed_by = ?2, claimed_until = ?3
                 WHERE id = ?1 AND claimed = 0",
            )?
            .execute(params![id, owner, until])?;
        if claimed != 1 {
            // Dropping the transaction rolls the others back.
            return Ok(false);
        }
    }
    tx.commit()?;
    Ok(true)
}

impl Db {
    pub(super) fn set_reminders(
        &mut self,
        chat: i64,
        user: u64,
        new: &[NewReminder],
    ) -> Result<i64, StoreError> {
        let conn = &mut self.conn;
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

    pub(super) fn pending_reminders(
        &mut self,
        chat: Option<i64>,
        user: u64,
    ) -> Result<Vec<Reminder>, StoreError> {
        let conn = &self.conn;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {REMINDER_COLUMNS} FROM reminders
             WHERE (?1 IS NULL OR chat_id = ?1) AND user_id = ?2 AND claimed = 0
             ORDER BY due_at, id"
        ))?;
        let rows = stmt.query_map(params![chat, user_column(user)], reminder_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(super) fn cancel_plan(&mut self, plan: i64, user: u64) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "DELETE FROM reminders WHERE plan = ?1 AND user_id = ?2 AND claimed = 0",
            )?
            .execute(params![plan, user_column(user)])?)
    }

    pub(super) fn cancel_reminders(&mut self, chat: i64, user: u64) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "DELETE FROM reminders WHERE chat_id = ?1 AND user_id = ?2 AND claimed = 0",
            )?
            .execute(params![chat, user_column(user)])?)
    }

    pub(super) fn due_reminders(
        &mut self,
        now: Instant,
        limit: usize,
    ) -> Result<Vec<Reminder>, StoreError> {
        let conn = &self.conn;
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

    pub(super) fn next_due(&mut self) -> Result<Option<Instant>, StoreError> {
        let conn = &self.conn;
        Ok(conn.query_row(
            "SELECT min(due_at) FROM reminders WHERE claimed = 0",
            [],
            |row| row.get(0),
        )?)
    }

    pub(super) fn claim_reminders(
        &mut self,
        ids: &[i64],
        owner: &str,
        until: Instant,
    ) -> Result<bool, StoreError> {
        let conn = &mut self.conn;
        // A claim must reach the disk before the send it guards, even
        // through a power cut: this one commit is synced in full.
        conn.execute_batch("PRAGMA synchronous = FULL")?;
        // Back to NORMAL whatever happens, or every later commit would
        // wait for the disk.
        let claimed = catch_unwind(AssertUnwindSafe(|| claim(conn, ids, owner, until)))
            .unwrap_or_else(|_| Err(panicked()));
        conn.execute_batch("PRAGMA synchronous = NORMAL")?;
        claimed
    }

    pub(super) fn release_reminders(&mut self, ids: &[i64]) -> Result<(), StoreError> {
        self.for_each_id("UPDATE reminders SET claimed = 0 WHERE id = ?1", ids)
    }

    pub(super) fn finish_reminders(&mut self, ids: &[i64]) -> Result<(), StoreError> {
        self.for_each_id("DELETE FROM reminders WHERE id = ?1", ids)
    }

    pub(super) fn recover_claimed(&mut self, now: Instant) -> Result<usize, StoreError> {
        // A claim from before claims ran out has no end: its process is gone.
        Ok(self.conn.execute(
            "DELETE FROM reminders
             WHERE claimed = 1 AND (claimed_until IS NULL OR claimed_until < ?1)",
            [now],
        )?)
    }
}
