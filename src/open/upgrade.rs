//! An SQLite file written before the kernel (a table per stored thing) brought over whole on opening: conversations, reminders, cases and figures go on where they were.
//!
//! Everything is read from the old tables and written as one batch, with
//! a mark that it was; only then are the old tables dropped. A process
//! stopped between the two finds the mark on the next start, and only
//! drops them.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use crate::cases::Case;
use crate::engine::Session;
use crate::lang::Lang;
use crate::reminders::{Kind, Reminder};
use crate::stats::{Fact, FactKind, Later};
use crate::store::{ANY_TIME, Batch, Posted, SessionKey, Store, StoreError};

/// The mark that a file's old tables were brought over.
const DONE: &str = "upgrade:sqlite-tables";

/// The old tables, dropped once brought over.
const OLD_TABLES: [&str; 11] = [
    "sessions",
    "people",
    "menus",
    "notes",
    "private_chats",
    "reminders",
    "facts",
    "later",
    "cases",
    "case_messages",
    "inbox",
];

/// Brings the old tables of the SQLite file at `path`, if it has any, into
/// `store` (the kernel on that same file).
pub(super) fn upgrade_sqlite(store: &Store, path: &Path) -> Result<(), StoreError> {
    let old = Connection::open(path)?;
    old.busy_timeout(std::time::Duration::from_secs(5))?;
    let has_old: bool = old.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'sessions'",
        [],
        |row| row.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has_old {
        return Ok(());
    }
    // The SQLite kernel answers these calls in place, so they are
    // waited for here, once, with nothing else running on the file.
    futures::executor::block_on(bring_over(store, &old))?;
    let drop: String = OLD_TABLES
        .iter()
        .map(|t| format!("DROP TABLE IF EXISTS {t};"))
        .collect();
    old.execute_batch(&format!("BEGIN IMMEDIATE; {drop} COMMIT;"))?;
    Ok(())
}

async fn bring_over(store: &Store, old: &Connection) -> Result<(), StoreError> {
    let kernel = store.kernel();
    let marked = kernel.get(&[DONE.to_string()], ANY_TIME).await?;
    if marked[0].is_none() {
        let (mut batch, counts) = read_old(old, store.session_ttl())?;
        // Ids handed out from now on follow the old ones.
        for (seq, highest) in [
            (
                "reminder",
                "SELECT max(coalesce(max(id), 0), coalesce(max(plan), 0)) FROM reminders",
            ),
            ("case", "SELECT coalesce(max(id), 0) FROM cases"),
        ] {
            let last: i64 = old.query_row(highest, [], |row| row.get(0))?;
            while kernel.next_id(seq).await? < last {}
        }
        batch.put(DONE, counts.clone());
        kernel.commit(batch).await?;
        log::info!("store: the file's old tables were brought over ({counts})");
    }
    Ok(())
}

/// Every old row as one batch, and how many of each there were.
fn read_old(old: &Connection, session_ttl: i64) -> Result<(Batch, String), StoreError> {
    let mut batch = Batch::new(ANY_TIME);
    let counts = [
        format!("{} sessions", sessions(old, &mut batch, session_ttl)?),
        format!("{} reminders", reminders(old, &mut batch)?),
        format!("{} facts", facts(old, &mut batch)?),
        format!("{} cases", cases(old, &mut batch)?),
    ];
    people(old, &mut batch)?;
    menus(old, &mut batch)?;
    questions(old, &mut batch)?;
    inbox(old, &mut batch)?;
    Ok((batch, counts.join(", ")))
}

/// Whether an old table has a column.
fn has(old: &Connection, table: &str, column: &str) -> Result<bool, StoreError> {
    Ok(old
        .query_row(
            "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2",
            [table, column],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

fn sessions(old: &Connection, batch: &mut Batch, session_ttl: i64) -> Result<usize, StoreError> {
    let mut n = 0;
    let mut rows = old.prepare("SELECT chat_id, user_id, state, updated_at FROM sessions")?;
    let mut rows = rows.query([])?;
    while let Some(row) = rows.next()? {
        let key = SessionKey {
            chat: row.get(0)?,
            user: row.get::<_, i64>(1)? as u64,
        };
        // A row that cannot be read was never usable: left behind.
        if let Ok(session) = serde_json::from_str::<Session>(&row.get::<_, String>(2)?) {
            crate::store::session_into(batch, key, session, row.get(3)?, session_ttl);
            n += 1;
        }
    }
    Ok(n)
}

/// Languages chosen, and private chats opened.
fn people(old: &Connection, batch: &mut Batch) -> Result<(), StoreError> {
    let mut rows = old.prepare("SELECT user_id, lang FROM people")?;
    let mut rows = rows.query([])?;
    while let Some(row) = rows.next()? {
        let lang: String = row.get(1)?;
        let user = row.get::<_, i64>(0)? as u64;
        crate::store::lang_into(batch, user, lang.parse().unwrap_or_default());
    }
    if has(old, "private_chats", "seen_at")? {
        let now = crate::clock::Clock::System.now();
        let mut rows = old.prepare("SELECT user_id, seen_at FROM private_chats")?;
        let mut rows = rows.query([])?;
        while let Some(row) = rows.next()? {
            let seen: Option<i64> = row.get(1)?;
            let user = row.get::<_, i64>(0)? as u64;
            crate::store::private_into(batch, user, seen.unwrap_or(now));
        }
    }
    Ok(())
}

fn menus(old: &Connection, batch: &mut Batch) -> Result<(), StoreError> {
    for (table, posted) in [("menus", Posted::Menu), ("notes", Posted::Note)] {
        let mut rows = old.prepare(&format!(
            "SELECT chat_id, message_id, user_id, created_at FROM {table}"
        ))?;
        let mut rows = rows.query([])?;
        while let Some(row) = rows.next()? {
            let (chat, message) = (row.get(0)?, row.get(1)?);
            let user = row.get::<_, i64>(2)? as u64;
            crate::store::owner_into(batch, chat, message, user, posted, row.get(3)?);
        }
    }
    Ok(())
}

fn reminders(old: &Connection, batch: &mut Batch) -> Result<usize, StoreError> {
    let claims = has(old, "reminders", "claimed_until")?;
    let mut rows = old.prepare(&format!(
        "SELECT id, plan, chat_id, user_id, name, lang, kind, due_at, deadline, thread_id,
                claimed, {} FROM reminders",
        if claims {
            "claimed_by, claimed_until"
        } else {
            "NULL, NULL"
        }
    ))?;
    let mut rows = rows.query([])?;
    let mut n = 0;
    while let Some(row) = rows.next()? {
        let (lang, kind): (String, String) = (row.get(5)?, row.get(6)?);
        let reminder = Reminder {
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
            // Not kept before: the figures count these without a place.
            conv: 0,
            node: String::new(),
        };
        // A claim with no end (from before claims had one) ran out long
        // ago: recovered at the first pass, never sent twice.
        let claim = (row.get::<_, i64>(10)? != 0).then(|| {
            let owner: Option<String> = row.get(11).ok().flatten();
            let until: Option<i64> = row.get(12).ok().flatten();
            (owner.unwrap_or_default(), until.unwrap_or(0))
        });
        crate::reminders::store::reminder_into(batch, reminder, claim);
        n += 1;
    }
    Ok(n)
}

fn facts(old: &Connection, batch: &mut Batch) -> Result<usize, StoreError> {
    let mut rows = old.prepare("SELECT at, kind, conv, node, detail, lang FROM facts")?;
    let mut rows = rows.query([])?;
    let mut all = Vec::new();
    while let Some(row) = rows.next()? {
        let (kind, lang): (String, String) = (row.get(1)?, row.get(5)?);
        let Some(kind) = FactKind::from_code(&kind) else {
            continue;
        };
        all.push(Fact {
            at: row.get(0)?,
            kind,
            conv: row.get::<_, i64>(2)? as u64,
            node: row.get(3)?,
            detail: row.get(4)?,
            lang: lang.parse::<Lang>().unwrap_or_default(),
            version: String::new(),
        });
    }
    // Facts from before versions carry none.
    crate::stats::store::record_into(batch, "", &all);
    Ok(all.len())
}

/// Next-day questions.
fn questions(old: &Connection, batch: &mut Batch) -> Result<(), StoreError> {
    let mut rows = old.prepare(
        "SELECT chat_id, user_id, thread_id, name, lang, node, conv, due_at, asked_at, asked
         FROM later",
    )?;
    let mut rows = rows.query([])?;
    while let Some(row) = rows.next()? {
        let lang: String = row.get(4)?;
        let later = Later {
            chat: row.get(0)?,
            user: row.get::<_, i64>(1)? as u64,
            thread: row.get(2)?,
            name: row.get(3)?,
            lang: lang.parse().unwrap_or_default(),
            node: row.get(5)?,
            conv: row.get::<_, i64>(6)? as u64,
            due_at: row.get(7)?,
        };
        let asked = row.get::<_, i64>(9)? != 0;
        crate::stats::store::question_into(batch, &later, row.get(8)?, asked);
    }
    Ok(())
}

fn cases(old: &Connection, batch: &mut Batch) -> Result<usize, StoreError> {
    let mut n = 0;
    let mut rows = old.prepare(
        "SELECT id, user_id, chat_id, thread_id, name, username, lang, node, summary,
                opened_at, taken_by, closed_at, post, topic, place FROM cases",
    )?;
    let mut rows = rows.query([])?;
    let mut links =
        old.prepare("SELECT chat_id, message_id FROM case_messages WHERE case_id = ?1")?;
    while let Some(row) = rows.next()? {
        let (lang, closed_at): (String, Option<i64>) = (row.get(6)?, row.get(11)?);
        let case = Case {
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
            in_hours: true,
            first_answer_at: None,
            desk: Default::default(),
        };
        let linked = links
            .query_map([case.id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        crate::cases::store::case_into(batch, case, closed_at, (linked, Vec::new()));
        n += 1;
    }
    Ok(n)
}

fn inbox(old: &Connection, batch: &mut Batch) -> Result<(), StoreError> {
    let mut rows =
        old.prepare("SELECT update_id, body, replies, received_at, done_at FROM inbox")?;
    let mut rows = rows.query([])?;
    while let Some(row) = rows.next()? {
        let (id, body, replies) = (row.get(0)?, row.get(1)?, row.get(2)?);
        crate::store::entry_into(batch, id, body, replies, row.get(3)?, row.get(4)?);
    }
    Ok(())
}
