//! Every store call timed, for the store call latency histogram in /metrics.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant as Stopwatch;

use async_trait::async_trait;

use super::{
    Answer, Budget, Counts, Entry, IdleSession, Later, Posted, Rates, SessionKey, Store, StoreError,
};
use crate::clock::Instant;
use crate::engine::Session;
use crate::handoff::{Case, NewCase, Opened};
use crate::lang::Lang;
use crate::metrics::Metrics;
use crate::reminders::{NewReminder, Reminder};
use crate::stats::Fact;

/// A store whose every call is timed into `metrics`; what it answers is
/// the inner store's, unchanged.
pub struct Timed {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl Timed {
    pub fn new(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Timed {
        Timed { inner, metrics }
    }

    async fn time<T>(&self, call: &'static str, work: impl Future<Output = T>) -> T {
        let started = Stopwatch::now();
        let result = work.await;
        self.metrics.store_call(call, started.elapsed());
        result
    }
}

#[async_trait]
impl Store for Timed {
    async fn load(&self, key: SessionKey) -> Result<Option<Session>, StoreError> {
        self.time("load", self.inner.load(key)).await
    }

    async fn load_versioned(&self, key: SessionKey) -> Result<(Option<Session>, u64), StoreError> {
        self.time("load_versioned", self.inner.load_versioned(key))
            .await
    }

    async fn save(
        &self,
        key: SessionKey,
        session: &Session,
        remember_lang: bool,
        facts: &[Fact],
        now: Instant,
    ) -> Result<(), StoreError> {
        self.time(
            "save",
            self.inner.save(key, session, remember_lang, facts, now),
        )
        .await
    }

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
    ) -> Result<(), StoreError> {
        self.time(
            "save_answering",
            self.inner
                .save_answering(key, session, remember_lang, facts, now, answer, expected),
        )
        .await
    }

    async fn inbox_put(
        &self,
        id: i64,
        body: &str,
        owner: &str,
        now: Instant,
    ) -> Result<bool, StoreError> {
        self.time("inbox_put", self.inner.inbox_put(id, body, owner, now))
            .await
    }

    async fn inbox_done(&self, ids: &[i64], now: Instant) -> Result<(), StoreError> {
        self.time("inbox_done", self.inner.inbox_done(ids, now))
            .await
    }

    async fn inbox_open(&self, owner: &str, now: Instant) -> Result<Vec<Entry>, StoreError> {
        self.time("inbox_open", self.inner.inbox_open(owner, now))
            .await
    }

    async fn heartbeat(&self, owner: &str, until: Instant) -> Result<(), StoreError> {
        self.time("heartbeat", self.inner.heartbeat(owner, until))
            .await
    }

    fn is_shared(&self) -> bool {
        self.inner.is_shared()
    }

    fn budget(&self, rates: Rates) -> Option<std::sync::Arc<dyn Budget>> {
        self.inner.budget(rates)
    }

    async fn record(&self, facts: &[Fact]) -> Result<(), StoreError> {
        self.time("record", self.inner.record(facts)).await
    }

    async fn facts(&self, since: Instant) -> Result<Vec<Fact>, StoreError> {
        self.time("facts", self.inner.facts(since)).await
    }

    async fn prune(&self, now: Instant) -> Result<usize, StoreError> {
        self.time("prune", self.inner.prune(now)).await
    }

    async fn ask_later(&self, later: &Later) -> Result<(), StoreError> {
        self.time("ask_later", self.inner.ask_later(later)).await
    }

    async fn due_later(&self, now: Instant, limit: usize) -> Result<Vec<Later>, StoreError> {
        self.time("due_later", self.inner.due_later(now, limit))
            .await
    }

    async fn take_later(&self, chat: i64, user: u64) -> Result<bool, StoreError> {
        self.time("take_later", self.inner.take_later(chat, user))
            .await
    }

    async fn open_case(&self, new: &NewCase, now: Instant) -> Result<Opened, StoreError> {
        self.time("open_case", self.inner.open_case(new, now)).await
    }

    async fn case(&self, id: i64) -> Result<Option<Case>, StoreError> {
        self.time("case", self.inner.case(id)).await
    }

    async fn open_case_of(&self, user: u64) -> Result<Option<Case>, StoreError> {
        self.time("open_case_of", self.inner.open_case_of(user))
            .await
    }

    async fn set_case_post(
        &self,
        id: i64,
        message: i32,
        topic: Option<i32>,
    ) -> Result<(), StoreError> {
        self.time(
            "set_case_post",
            self.inner.set_case_post(id, message, topic),
        )
        .await
    }

    async fn link_case_message(
        &self,
        chat: i64,
        message: i32,
        case: i64,
    ) -> Result<(), StoreError> {
        self.time(
            "link_case_message",
            self.inner.link_case_message(chat, message, case),
        )
        .await
    }

    async fn case_of_message(&self, chat: i64, message: i32) -> Result<Option<i64>, StoreError> {
        self.time("case_of_message", self.inner.case_of_message(chat, message))
            .await
    }

    async fn case_of_topic(&self, topic: i32) -> Result<Option<i64>, StoreError> {
        self.time("case_of_topic", self.inner.case_of_topic(topic))
            .await
    }

    async fn take_case(&self, id: i64, by: &str) -> Result<Option<Case>, StoreError> {
        self.time("take_case", self.inner.take_case(id, by)).await
    }

    async fn close_case(&self, id: i64, now: Instant) -> Result<Option<Case>, StoreError> {
        self.time("close_case", self.inner.close_case(id, now))
            .await
    }

    async fn person_lang(&self, user: u64) -> Result<Option<Lang>, StoreError> {
        self.time("person_lang", self.inner.person_lang(user)).await
    }

    async fn remember_menu(
        &self,
        chat: i64,
        message: i32,
        owner: u64,
        posted: Posted,
        now: Instant,
    ) -> Result<(), StoreError> {
        self.time(
            "remember_menu",
            self.inner.remember_menu(chat, message, owner, posted, now),
        )
        .await
    }

    async fn menu_owner(&self, chat: i64, message: i32) -> Result<Option<u64>, StoreError> {
        self.time("menu_owner", self.inner.menu_owner(chat, message))
            .await
    }

    async fn has_private_chat(&self, user: u64) -> Result<bool, StoreError> {
        self.time("has_private_chat", self.inner.has_private_chat(user))
            .await
    }

    async fn forget_private_chat(&self, user: u64) -> Result<(), StoreError> {
        self.time("forget_private_chat", self.inner.forget_private_chat(user))
            .await
    }

    async fn set_reminders(
        &self,
        chat: i64,
        user: u64,
        new: &[NewReminder],
    ) -> Result<i64, StoreError> {
        self.time("set_reminders", self.inner.set_reminders(chat, user, new))
            .await
    }

    async fn pending_reminders(
        &self,
        chat: Option<i64>,
        user: u64,
    ) -> Result<Vec<Reminder>, StoreError> {
        self.time(
            "pending_reminders",
            self.inner.pending_reminders(chat, user),
        )
        .await
    }

    async fn cancel_plan(&self, plan: i64, user: u64) -> Result<usize, StoreError> {
        self.time("cancel_plan", self.inner.cancel_plan(plan, user))
            .await
    }

    async fn cancel_reminders(&self, chat: i64, user: u64) -> Result<usize, StoreError> {
        self.time("cancel_reminders", self.inner.cancel_reminders(chat, user))
            .await
    }

    async fn due_reminders(&self, now: Instant, limit: usize) -> Result<Vec<Reminder>, StoreError> {
        self.time("due_reminders", self.inner.due_reminders(now, limit))
            .await
    }

    async fn next_due(&self) -> Result<Option<Instant>, StoreError> {
        self.time("next_due", self.inner.next_due()).await
    }

    async fn claim_reminders(
        &self,
        ids: &[i64],
        owner: &str,
        until: Instant,
    ) -> Result<bool, StoreError> {
        self.time(
            "claim_reminders",
            self.inner.claim_reminders(ids, owner, until),
        )
        .await
    }

    async fn release_reminders(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.time("release_reminders", self.inner.release_reminders(ids))
            .await
    }

    async fn finish_reminders(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.time("finish_reminders", self.inner.finish_reminders(ids))
            .await
    }

    async fn recover_claimed(&self, now: Instant) -> Result<usize, StoreError> {
        self.time("recover_claimed", self.inner.recover_claimed(now))
            .await
    }

    async fn hold_poller(&self) -> Result<(), StoreError> {
        self.time("hold_poller", self.inner.hold_poller()).await
    }

    async fn idle_sessions(
        &self,
        before: Instant,
        limit: usize,
    ) -> Result<Vec<IdleSession>, StoreError> {
        self.time("idle_sessions", self.inner.idle_sessions(before, limit))
            .await
    }

    async fn expire_session(
        &self,
        key: SessionKey,
        updated_at: Instant,
    ) -> Result<bool, StoreError> {
        self.time("expire_session", self.inner.expire_session(key, updated_at))
            .await
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        self.time("counts", self.inner.counts()).await
    }

    async fn session_count(&self) -> Result<usize, StoreError> {
        self.time("session_count", self.inner.session_count()).await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}
