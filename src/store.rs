//! Session stores: what the bot keeps between messages, behind one async interface (SQLite file, Redis, or memory).
//!
//! A store keeps each person's session (a position in the tree, never its
//! texts), the language they chose, who started a private chat, whose a
//! group menu is, and reminders. A write either happens whole or not at
//! all. Sending a reminder is bracketed by a claim (pending → sending) and
//! its removal: a reminder claimed by a process that died before removing
//! it may have been sent, so it is never sent again. All times are UTC
//! instants from the bot's clock.

pub mod kernel;
pub mod memory;
pub mod redis;
pub mod sqlite;
#[cfg(test)]
mod suite;
pub mod timed;
pub mod url;

use std::path::PathBuf;

use async_trait::async_trait;

use crate::clock::Instant;
use crate::engine::Session;
use crate::handoff::{Case, NewCase, Opened};
use crate::lang::Lang;
use crate::reminders::{NewReminder, Reminder};
use crate::stats::Fact;

/// The default `DATABASE_URL`: an SQLite file under `data/`.
pub const DEFAULT_URL: &str = "sqlite://data/sessions.db";

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
    #[error(
        "DATABASE_URL {0:?} is not supported: use sqlite://<file>, a file path, memory, or redis://host:port/db (rediss:// for TLS)"
    )]
    Unsupported(String),
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error(
        "another process is already running the bot on {0}; stop it first (one process polls Telegram per store)"
    )]
    InUse(PathBuf),
    #[error("Redis: {0}")]
    Redis(String),
    #[error("the session changed meanwhile")]
    Conflict,
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

/// What the bot needs from a store. Every call is async, so a backend may
/// reach over the network or hand work to a thread of its own; the ids it
/// hands out (reminders, plans) are its own business.
#[async_trait]
pub trait Store: Send + Sync {
    async fn load(&self, key: SessionKey) -> Result<Option<Session>, StoreError> {
        Ok(self.load_versioned(key).await?.0)
    }

    /// The session and its version, which every write changes: 0 when
    /// none is stored. A save that expects it fails with `Conflict` if
    /// another write came between.
    async fn load_versioned(&self, key: SessionKey) -> Result<(Option<Session>, u64), StoreError>;

    /// Writes the session (a blank one deletes the row) as active at `now`
    /// and, with `remember_lang`, the person's language for their future
    /// sessions, and records `facts` — all or nothing. A session in a
    /// private chat also records that the person has started the bot
    /// there. The person is back: a next-day question asked for them in
    /// this chat before `now` is dropped.
    async fn save(
        &self,
        key: SessionKey,
        session: &Session,
        remember_lang: bool,
        facts: &[Fact],
        now: Instant,
    ) -> Result<(), StoreError> {
        self.save_answering(key, session, remember_lang, facts, now, None, None)
            .await
    }

    /// `save`, and in the same write, when the step answers an entry of
    /// the inbox, the replies it gave, so that after a crash the entry is
    /// answered with them instead of being taken again. With `expected`,
    /// only if the stored session's version is still that one (compare
    /// and set): otherwise nothing is written and the call fails with
    /// `Conflict`, and the step is taken again on what is stored now.
    #[allow(clippy::too_many_arguments)]
    async fn save_answering(
        &self,
        key: SessionKey,
        session: &Session,
        remember_lang: bool,
        facts: &[Fact],
        now: Instant,
        answer: Option<&Answer>,
        expected: Option<u64>,
    ) -> Result<(), StoreError>;

    /// Records an update in the inbox before it is handled, as being
    /// handled by `owner` (this process); false if its id was recorded
    /// before (Telegram sent it again): it is skipped.
    async fn inbox_put(
        &self,
        id: i64,
        body: &str,
        owner: &str,
        now: Instant,
    ) -> Result<bool, StoreError>;

    /// Marks inbox entries as handled and answered. Their ids are kept a
    /// day, so a late repeat is still recognised.
    async fn inbox_done(&self, ids: &[i64], now: Instant) -> Result<(), StoreError>;

    /// The entries recorded and not done by a process that is gone,
    /// oldest first, taken over by `owner`: what a crash left to handle,
    /// or to answer. A store that only one process can use at a time
    /// takes every open entry; a shared one leaves those of processes
    /// whose `heartbeat` has not run out.
    async fn inbox_open(&self, owner: &str, now: Instant) -> Result<Vec<Entry>, StoreError>;

    /// Says that the process `owner` is alive until `until`: its inbox
    /// entries are not taken over before then. Only a shared store needs it.
    async fn heartbeat(&self, owner: &str, until: Instant) -> Result<(), StoreError> {
        let _ = (owner, until);
        Ok(())
    }

    /// Whether several processes may use the store at once (Redis): then
    /// each keeps a heartbeat, takes over what a stopped one left, and
    /// shares Telegram's limits through `budget`.
    fn is_shared(&self) -> bool {
        false
    }

    /// The budget for messages sent that all processes on this store
    /// share, where they may be several.
    fn budget(&self, rates: Rates) -> Option<std::sync::Arc<dyn Budget>> {
        let _ = rates;
        None
    }

    /// Records facts for the figures.
    async fn record(&self, facts: &[Fact]) -> Result<(), StoreError>;

    /// The facts recorded at or after `since`.
    async fn facts(&self, since: Instant) -> Result<Vec<Fact>, StoreError>;

    /// Forgets what is past its retention: facts older than the longest
    /// period the figures show, closed cases after 30 days, menu owners
    /// after 30 days, next-day questions a day after they were due, inbox
    /// ids after a day, private chats a year after the person last wrote.
    /// Returns how many rows went.
    async fn prune(&self, now: Instant) -> Result<usize, StoreError>;

    /// Asks the person in `chat` again at `due_at` whether their problem
    /// at `node` got solved, unless they come back first; replaces an
    /// earlier question for them there.
    async fn ask_later(&self, later: &Later) -> Result<(), StoreError>;

    /// Next-day questions due at `now` and not yet asked, at most `limit`.
    async fn due_later(&self, now: Instant, limit: usize) -> Result<Vec<Later>, StoreError>;

    /// Marks a next-day question as asked, just before it is; false if it
    /// is gone or asked already (the person came back, or another pass
    /// took it), so it is asked at most once. An asked question stays
    /// until the person's next step (their answer) or a day after it was
    /// due, and keeps their session from closing meanwhile, so the answer
    /// finds the way they came.
    async fn take_later(&self, chat: i64, user: u64) -> Result<bool, StoreError>;

    /// Opens a case for the person, unless they have an open one.
    async fn open_case(&self, new: &NewCase, now: Instant) -> Result<Opened, StoreError>;

    async fn case(&self, id: i64) -> Result<Option<Case>, StoreError>;

    /// The person's open case, if any.
    async fn open_case_of(&self, user: u64) -> Result<Option<Case>, StoreError>;

    /// Records where the case was posted in the staff chat.
    async fn set_case_post(
        &self,
        id: i64,
        message: i32,
        topic: Option<i32>,
    ) -> Result<(), StoreError>;

    /// Links a message (in the staff chat or the person's chat) to a case,
    /// so a reply to it reaches the other side.
    async fn link_case_message(&self, chat: i64, message: i32, case: i64)
    -> Result<(), StoreError>;

    /// The case a message belongs to.
    async fn case_of_message(&self, chat: i64, message: i32) -> Result<Option<i64>, StoreError>;

    /// The latest case whose forum topic `topic` is, open or closed.
    async fn case_of_topic(&self, topic: i32) -> Result<Option<i64>, StoreError>;

    /// Marks an open case nobody has taken as taken by `by`; the case, if
    /// that happened.
    async fn take_case(&self, id: i64, by: &str) -> Result<Option<Case>, StoreError>;

    /// Closes a case; the case, if it was open until now.
    async fn close_case(&self, id: i64, now: Instant) -> Result<Option<Case>, StoreError>;

    /// The language a person chose with /lang, in any chat.
    async fn person_lang(&self, user: u64) -> Result<Option<Lang>, StoreError>;

    /// Records whose a message with buttons is: in groups, only they may
    /// press its buttons even if the message it answered is deleted; and
    /// the latest menu is edited when the session expires.
    async fn remember_menu(
        &self,
        chat: i64,
        message: i32,
        owner: u64,
        posted: Posted,
        now: Instant,
    ) -> Result<(), StoreError>;

    /// The member a group menu message belongs to, if recorded.
    async fn menu_owner(&self, chat: i64, message: i32) -> Result<Option<u64>, StoreError>;

    /// Whether the person has a private chat with the bot that it may use.
    async fn has_private_chat(&self, user: u64) -> Result<bool, StoreError>;

    /// Forgets the private chat (the person blocked the bot).
    async fn forget_private_chat(&self, user: u64) -> Result<(), StoreError>;

    /// Stores reminders set together, as one plan, in place of the
    /// person's pending reminders in the chat (a new SMS makes the old
    /// window moot); returns the plan's id, which is never reused.
    async fn set_reminders(
        &self,
        chat: i64,
        user: u64,
        new: &[NewReminder],
    ) -> Result<i64, StoreError>;

    /// The person's reminders still to be sent, by time: those set in
    /// `chat`, or with `None` all of them.
    async fn pending_reminders(
        &self,
        chat: Option<i64>,
        user: u64,
    ) -> Result<Vec<Reminder>, StoreError>;

    /// Cancels a plan's pending reminders, if they are the person's;
    /// returns how many.
    async fn cancel_plan(&self, plan: i64, user: u64) -> Result<usize, StoreError>;

    /// Cancels all the person's pending reminders in a chat.
    async fn cancel_reminders(&self, chat: i64, user: u64) -> Result<usize, StoreError>;

    /// Pending reminders due at `now` of at most `limit` plans, whole
    /// plans, by plan then time.
    async fn due_reminders(&self, now: Instant, limit: usize) -> Result<Vec<Reminder>, StoreError>;

    /// The earliest time a pending reminder falls due.
    async fn next_due(&self) -> Result<Option<Instant>, StoreError>;

    /// Marks pending reminders as being sent by `owner` until `until`: all
    /// of them, or none if any is no longer pending (cancelled, or taken
    /// meanwhile, by this process or another).
    async fn claim_reminders(
        &self,
        ids: &[i64],
        owner: &str,
        until: Instant,
    ) -> Result<bool, StoreError>;

    /// Returns claimed reminders to pending: they were not sent.
    async fn release_reminders(&self, ids: &[i64]) -> Result<(), StoreError>;

    /// Removes claimed reminders: they were sent, or are no longer wanted.
    async fn finish_reminders(&self, ids: &[i64]) -> Result<(), StoreError>;

    /// Removes reminders whose claim ran out before `now` unfinished: the
    /// process that claimed them died, and they may have been sent, so
    /// they are not sent again. A claim still running is left alone,
    /// whoever holds it.
    async fn recover_claimed(&self, now: Instant) -> Result<usize, StoreError>;

    /// Makes sure this process alone polls Telegram with this store: a
    /// second process on the same file is refused. The hold lasts as long
    /// as the process; a store only one process can open needs none.
    async fn hold_poller(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Sessions last active at or before `before` with no pending reminder
    /// and no next-day question in their chat, oldest first, at most
    /// `limit`.
    async fn idle_sessions(
        &self,
        before: Instant,
        limit: usize,
    ) -> Result<Vec<IdleSession>, StoreError>;

    /// Deletes an idle session and its menu records, unless it was active
    /// after `updated_at`; returns whether it was deleted.
    async fn expire_session(
        &self,
        key: SessionKey,
        updated_at: Instant,
    ) -> Result<bool, StoreError>;

    /// How many rows the tables hold.
    async fn counts(&self) -> Result<Counts, StoreError>;

    /// How many sessions are stored.
    async fn session_count(&self) -> Result<usize, StoreError> {
        Ok(self.counts().await?.sessions)
    }

    /// A short description for the start-up log line.
    fn describe(&self) -> String;
}

/// Telegram's limits on messages sent, as a shared budget counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// For the bot as a whole, per second.
    pub per_second: u32,
    /// Per private chat: at most this many in any `private_burst` seconds.
    pub private_burst: u32,
    /// Per group, per second.
    pub group_per_second: u32,
    /// Per group, per minute.
    pub group_per_minute: u32,
    /// How long a second lasts, in milliseconds (shorter only in tests).
    pub second_ms: u64,
}

/// A budget of messages sent that several processes share.
#[async_trait]
pub trait Budget: Send + Sync {
    /// Takes one message for `chat` from the bot's budget and the chat's:
    /// `None` when taken, else how long to wait before asking again (and
    /// nothing was taken).
    async fn take(&self, chat: i64) -> Result<Option<std::time::Duration>, StoreError>;
}

/// A question for tomorrow: did it get solved in the end?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Later {
    pub chat: i64,
    pub user: u64,
    pub thread: Option<i32>,
    /// For the mention when it goes to a group.
    pub name: String,
    pub lang: Lang,
    /// The end the person stood at when they asked.
    pub node: String,
    pub conv: u64,
    pub due_at: Instant,
}

/// The replies a step gave to an inbox entry, as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub entry: i64,
    pub replies: String,
}

/// An update in the inbox, not yet done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: i64,
    /// The update as Telegram sent it, as JSON.
    pub body: String,
    /// The replies already saved with the step it made, if it made one.
    pub replies: Option<String>,
}

/// How long a done inbox entry's id is kept to recognise a repeat, and an
/// entry never done at all (it could not be handled) is kept to be tried.
pub const INBOX_RETENTION_SECS: i64 = 24 * 3600;

/// How long a private chat is remembered after the person last wrote in
/// it: a year. Forgotten, the person is offered a link to the private chat
/// instead of being written to there, as before they first opened it.
pub const PRIVATE_CHAT_RETENTION_SECS: i64 = 365 * 24 * 3600;

/// How long a group menu's owner is remembered: 30 days.
pub const MENU_RETENTION_SECS: i64 = 30 * 24 * 3600;

/// A session with no position and no history holds nothing worth a row.
fn is_blank(session: &Session) -> bool {
    session.node.is_none() && session.history.is_empty()
}
