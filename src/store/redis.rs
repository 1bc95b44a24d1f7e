//! Sessions, reminders and the inbox in Redis, the store several bot processes can share (`DATABASE_URL=redis://…`).
//!
//! Every key is under one prefix (`icp:` unless told otherwise). A call
//! that touches more than one key runs as one Lua script, so it happens
//! whole or not at all and costs one round trip. The store is for one
//! Redis server, not a cluster: the scripts reach keys they compute.
//!
//! Times are the bot's clock, stored as values and scores and compared
//! in the scripts; Redis's own clock is used only for expiry (a bound on
//! what is left when nothing prunes it) and for the shared budget of
//! messages. The connection is made on the first call, so the bot starts
//! while Redis is down; then its calls fail, and it reconnects by itself.
//!
//! An ordinary update takes four round trips: `inbox_put`,
//! `load_versioned`, `save_answering` and `inbox_done`, one each. (A
//! script's first call on a server takes two more, to load it there.)

mod budget;
mod cases;
mod connection;
mod fields;
mod inbox;
mod lua;
mod menus;
mod poller;
mod reminders;
#[doc(hidden)]
pub mod server;
mod sessions;
mod team;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{FromRedisValue, Script, ScriptInvocation};
use tokio::sync::OnceCell;

use super::{
    Answer, Budget, Counts, Entry, IdleSession, Later, Posted, Rates, SessionKey, Store, StoreError,
};
use crate::clock::Instant;
use crate::engine::Session;
use crate::handoff::{Case, NewCase, Opened};
use crate::lang::Lang;
use crate::reminders::{NewReminder, Reminder};
use crate::stats::Fact;
pub use budget::RedisBudget;
pub use connection::redacted;
use lua::{Lua, script};

/// The prefix of every key, unless the store is opened with another.
pub const DEFAULT_PREFIX: &str = "icp:";

/// The store's handle on Redis. Cloning it shares the connection.
#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<Shared>,
}

/// What the handles (and the budget, and the poller's lease) share.
struct Shared {
    client: redis::Client,
    /// Made on the first call, inside the runtime.
    connection: OnceCell<ConnectionManager>,
    prefix: String,
    /// How long a session's key outlives its last write: the idle time
    /// after which the scheduler closes it, and a day more.
    session_ttl: i64,
    /// Where the store is, without the password.
    place: String,
    /// The token of the poller's lease, once held.
    lease: tokio::sync::Mutex<Option<String>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        poller::release(self);
    }
}

impl RedisStore {
    /// A store on the Redis a `redis://` or `rediss://` URL names; nothing
    /// is connected until the first call. Sessions idle for
    /// `session_idle_secs` are closed by the scheduler; their keys expire
    /// a day later in any case.
    pub fn open(url: &str, session_idle_secs: i64) -> Result<Self, StoreError> {
        Self::open_with_prefix(url, session_idle_secs, DEFAULT_PREFIX)
    }

    /// `open`, with every key under `prefix` instead of the default.
    pub fn open_with_prefix(
        url: &str,
        session_idle_secs: i64,
        prefix: &str,
    ) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|_| StoreError::Unsupported(redacted(url).into_owned()))?;
        let info = client.get_connection_info();
        let tls = matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
        let place = format!(
            "redis at {}/{}{}",
            info.addr(),
            info.redis_settings().db(),
            if tls { " (TLS)" } else { "" }
        );
        Ok(RedisStore {
            shared: Arc::new(Shared {
                client,
                connection: OnceCell::new(),
                prefix: prefix.to_string(),
                // A pending reminder (a window is a day long) or a next-day
                // question (asked a day later, answered within a day) keeps
                // a session open past its idle time; the key outlives them.
                session_ttl: session_idle_secs.max(0) + crate::stats::LATER_SECS + 3 * 24 * 3600,
                place,
                lease: Default::default(),
            }),
        })
    }

    fn prefix(&self) -> &str {
        &self.shared.prefix
    }

    /// A script invocation with the key prefix as `ARGV[1]`.
    fn invoke<'a>(&self, script: &'a Script) -> ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation.arg(self.prefix());
        invocation
    }

    async fn eval<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.shared.eval(invocation).await
    }

    async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        self.shared.query(cmd).await
    }
}

#[async_trait]
impl Store for RedisStore {
    /// One round trip.
    async fn load_versioned(&self, key: SessionKey) -> Result<(Option<Session>, u64), StoreError> {
        self.load_session(key).await
    }

    /// One round trip: a single script.
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
        let write = sessions::Write {
            remember_lang,
            facts,
            now,
            answer,
            expected,
        };
        self.save_session(key, session, write).await
    }

    /// One round trip.
    async fn inbox_put(
        &self,
        id: i64,
        body: &str,
        owner: &str,
        now: Instant,
    ) -> Result<bool, StoreError> {
        self.put_entry(id, body, owner, now).await
    }

    /// One round trip.
    async fn inbox_done(&self, ids: &[i64], now: Instant) -> Result<(), StoreError> {
        self.done_entries(ids, now).await
    }

    async fn inbox_open(&self, owner: &str, now: Instant) -> Result<Vec<Entry>, StoreError> {
        self.take_over_entries(owner, now).await
    }

    async fn heartbeat(&self, owner: &str, until: Instant) -> Result<(), StoreError> {
        self.beat(owner, until).await
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn budget(&self, rates: Rates) -> Option<Arc<dyn Budget>> {
        Some(Arc::new(RedisBudget::new(Arc::clone(&self.shared), rates)))
    }

    async fn record(&self, facts: &[Fact]) -> Result<(), StoreError> {
        self.record_facts(facts).await
    }

    async fn facts(&self, since: Instant) -> Result<Vec<Fact>, StoreError> {
        self.facts_since(since).await
    }

    async fn prune(&self, now: Instant) -> Result<usize, StoreError> {
        Ok(self.prune_team(now).await?
            + self.prune_menus(now).await?
            + self.prune_inbox(now).await?)
    }

    async fn ask_later(&self, later: &Later) -> Result<(), StoreError> {
        self.put_later(later).await
    }

    async fn due_later(&self, now: Instant, limit: usize) -> Result<Vec<Later>, StoreError> {
        self.later_due(now, limit).await
    }

    async fn take_later(&self, chat: i64, user: u64) -> Result<bool, StoreError> {
        self.mark_later_asked(chat, user).await
    }

    async fn open_case(&self, new: &NewCase, now: Instant) -> Result<Opened, StoreError> {
        self.new_case(new, now).await
    }

    async fn case(&self, id: i64) -> Result<Option<Case>, StoreError> {
        self.case_by_id(id).await
    }

    async fn open_case_of(&self, user: u64) -> Result<Option<Case>, StoreError> {
        self.open_case_by_user(user).await
    }

    async fn set_case_post(
        &self,
        id: i64,
        message: i32,
        topic: Option<i32>,
    ) -> Result<(), StoreError> {
        self.case_post(id, message, topic).await
    }

    async fn link_case_message(
        &self,
        chat: i64,
        message: i32,
        case: i64,
    ) -> Result<(), StoreError> {
        self.link_message(chat, message, case).await
    }

    async fn case_of_message(&self, chat: i64, message: i32) -> Result<Option<i64>, StoreError> {
        self.linked_case(chat, message).await
    }

    async fn case_of_topic(&self, topic: i32) -> Result<Option<i64>, StoreError> {
        self.topic_case(topic).await
    }

    async fn take_case(&self, id: i64, by: &str) -> Result<Option<Case>, StoreError> {
        self.case_taken(id, by).await
    }

    async fn close_case(&self, id: i64, now: Instant) -> Result<Option<Case>, StoreError> {
        self.case_closed(id, now).await
    }

    async fn person_lang(&self, user: u64) -> Result<Option<Lang>, StoreError> {
        self.lang_of(user).await
    }

    async fn remember_menu(
        &self,
        chat: i64,
        message: i32,
        owner: u64,
        posted: Posted,
        now: Instant,
    ) -> Result<(), StoreError> {
        self.put_menu(chat, message, owner, posted, now).await
    }

    async fn menu_owner(&self, chat: i64, message: i32) -> Result<Option<u64>, StoreError> {
        self.owner_of(chat, message).await
    }

    async fn has_private_chat(&self, user: u64) -> Result<bool, StoreError> {
        self.private_chat(user).await
    }

    async fn forget_private_chat(&self, user: u64) -> Result<(), StoreError> {
        self.drop_private_chat(user).await
    }

    async fn set_reminders(
        &self,
        chat: i64,
        user: u64,
        new: &[NewReminder],
    ) -> Result<i64, StoreError> {
        self.put_plan(chat, user, new).await
    }

    async fn pending_reminders(
        &self,
        chat: Option<i64>,
        user: u64,
    ) -> Result<Vec<Reminder>, StoreError> {
        self.pending_of(chat, user).await
    }

    async fn cancel_plan(&self, plan: i64, user: u64) -> Result<usize, StoreError> {
        self.cancel_where(user, "plan", plan).await
    }

    async fn cancel_reminders(&self, chat: i64, user: u64) -> Result<usize, StoreError> {
        self.cancel_where(user, "chat", chat).await
    }

    async fn due_reminders(&self, now: Instant, limit: usize) -> Result<Vec<Reminder>, StoreError> {
        self.due_plans(now, limit).await
    }

    async fn next_due(&self) -> Result<Option<Instant>, StoreError> {
        self.earliest_due().await
    }

    async fn claim_reminders(
        &self,
        ids: &[i64],
        owner: &str,
        until: Instant,
    ) -> Result<bool, StoreError> {
        self.claim(ids, owner, until).await
    }

    async fn release_reminders(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.release(ids).await
    }

    async fn finish_reminders(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.finish(ids).await
    }

    async fn recover_claimed(&self, now: Instant) -> Result<usize, StoreError> {
        self.recover(now).await
    }

    async fn hold_poller(&self) -> Result<(), StoreError> {
        poller::hold(&self.shared).await
    }

    async fn idle_sessions(
        &self,
        before: Instant,
        limit: usize,
    ) -> Result<Vec<IdleSession>, StoreError> {
        self.idle(before, limit).await
    }

    async fn expire_session(
        &self,
        key: SessionKey,
        updated_at: Instant,
    ) -> Result<bool, StoreError> {
        self.expire(key, updated_at).await
    }

    /// One round trip. Sessions whose keys expired unclosed count until
    /// `idle_sessions` comes across them.
    async fn counts(&self) -> Result<Counts, StoreError> {
        self.count_all().await
    }

    fn describe(&self) -> String {
        self.shared.place.clone()
    }
}
