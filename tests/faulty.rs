//! A store that fails on demand, as a broken disk or database would.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use icp_sms_doctor::clock::Instant;
use icp_sms_doctor::engine::Session;
use icp_sms_doctor::handoff::{Case, NewCase, Opened};
use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::reminders::{NewReminder, Reminder};
use icp_sms_doctor::stats::Fact;
use icp_sms_doctor::store::{
    Answer, Counts, Entry, IdleSession, Later, Posted, SessionKey, Store, StoreError,
};
use tokio::sync::Notify;

/// A store call, with the person it concerns where there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Load(u64),
    Save(u64),
    PersonLang(u64),
    RememberMenu(u64),
    MenuOwner,
    HasPrivateChat(u64),
    ForgetPrivateChat(u64),
    SetReminders(u64),
    PendingReminders(u64),
    CancelPlan(u64),
    CancelReminders(u64),
    DueReminders,
    NextDue,
    Claim,
    Release,
    Finish,
    Recover,
    IdleSessions,
    Expire(u64),
    Counts,
    Record,
    Facts,
    Prune,
    Later,
    Case,
    Inbox,
}

impl Op {
    pub fn user(self) -> Option<u64> {
        match self {
            Op::Load(u)
            | Op::Save(u)
            | Op::PersonLang(u)
            | Op::RememberMenu(u)
            | Op::HasPrivateChat(u)
            | Op::ForgetPrivateChat(u)
            | Op::SetReminders(u)
            | Op::PendingReminders(u)
            | Op::CancelPlan(u)
            | Op::CancelReminders(u)
            | Op::Expire(u) => Some(u),
            _ => None,
        }
    }
}

type Rule = Box<dyn Fn(Op) -> bool + Send + Sync>;

/// Wraps a store; calls the rule says fail return an error, counted.
pub struct Faulty {
    inner: Arc<dyn Store>,
    rule: Mutex<Rule>,
    failures: AtomicUsize,
    failed: Notify,
    /// A session another process writes just before the next session
    /// write, as a step taken at the same moment elsewhere would.
    racing: Mutex<Option<Session>>,
}

impl Faulty {
    pub fn new(inner: Arc<dyn Store>, rule: impl Fn(Op) -> bool + Send + Sync + 'static) -> Self {
        Faulty {
            inner,
            rule: Mutex::new(Box::new(rule)),
            failures: AtomicUsize::new(0),
            failed: Notify::new(),
            racing: Mutex::new(None),
        }
    }

    /// Before the next session write, `session` is written to the same
    /// key, as by another process that read and wrote it meanwhile.
    pub fn race_next_save(&self, session: Session) {
        *self.racing.lock().expect("racing lock") = Some(session);
    }

    pub fn set_rule(&self, rule: impl Fn(Op) -> bool + Send + Sync + 'static) {
        *self.rule.lock().expect("rule lock") = Box::new(rule);
    }

    pub fn failures(&self) -> usize {
        self.failures.load(Ordering::SeqCst)
    }

    /// Returns once at least `n` calls have failed.
    pub async fn wait_failures(&self, n: usize) {
        loop {
            let notified = self.failed.notified();
            if self.failures() >= n {
                return;
            }
            notified.await;
        }
    }

    fn check(&self, op: Op) -> Result<(), StoreError> {
        if (self.rule.lock().expect("rule lock"))(op) {
            self.failures.fetch_add(1, Ordering::SeqCst);
            self.failed.notify_waiters();
            Err(StoreError::Unavailable("disk I/O error".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Store for Faulty {
    async fn load_versioned(&self, key: SessionKey) -> Result<(Option<Session>, u64), StoreError> {
        self.check(Op::Load(key.user))?;
        self.inner.load_versioned(key).await
    }
    async fn save_answering(
        &self,
        key: SessionKey,
        session: &Session,
        remember: bool,
        facts: &[Fact],
        now: Instant,
        answer: Option<&Answer>,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        self.check(Op::Save(key.user))?;
        let racing = self.racing.lock().expect("racing lock").take();
        if let Some(theirs) = racing {
            self.inner.save(key, &theirs, true, &[], now).await?;
        }
        self.inner
            .save_answering(key, session, remember, facts, now, answer, expected)
            .await
    }
    async fn inbox_put(
        &self,
        id: i64,
        body: &str,
        owner: &str,
        now: Instant,
    ) -> Result<bool, StoreError> {
        self.check(Op::Inbox)?;
        self.inner.inbox_put(id, body, owner, now).await
    }
    async fn inbox_done(&self, ids: &[i64], now: Instant) -> Result<(), StoreError> {
        self.check(Op::Inbox)?;
        self.inner.inbox_done(ids, now).await
    }
    async fn inbox_open(&self, owner: &str, now: Instant) -> Result<Vec<Entry>, StoreError> {
        self.check(Op::Inbox)?;
        self.inner.inbox_open(owner, now).await
    }
    async fn record(&self, facts: &[Fact]) -> Result<(), StoreError> {
        self.check(Op::Record)?;
        self.inner.record(facts).await
    }
    async fn facts(&self, since: Instant) -> Result<Vec<Fact>, StoreError> {
        self.check(Op::Facts)?;
        self.inner.facts(since).await
    }
    async fn prune(&self, now: Instant) -> Result<usize, StoreError> {
        self.check(Op::Prune)?;
        self.inner.prune(now).await
    }
    async fn ask_later(&self, later: &Later) -> Result<(), StoreError> {
        self.check(Op::Later)?;
        self.inner.ask_later(later).await
    }
    async fn due_later(&self, now: Instant, limit: usize) -> Result<Vec<Later>, StoreError> {
        self.check(Op::Later)?;
        self.inner.due_later(now, limit).await
    }
    async fn take_later(&self, chat: i64, user: u64) -> Result<bool, StoreError> {
        self.check(Op::Later)?;
        self.inner.take_later(chat, user).await
    }
    async fn open_case(&self, new: &NewCase, now: Instant) -> Result<Opened, StoreError> {
        self.check(Op::Case)?;
        self.inner.open_case(new, now).await
    }
    async fn case(&self, id: i64) -> Result<Option<Case>, StoreError> {
        self.check(Op::Case)?;
        self.inner.case(id).await
    }
    async fn open_case_of(&self, user: u64) -> Result<Option<Case>, StoreError> {
        self.check(Op::Case)?;
        self.inner.open_case_of(user).await
    }
    async fn set_case_post(
        &self,
        id: i64,
        message: i32,
        topic: Option<i32>,
    ) -> Result<(), StoreError> {
        self.check(Op::Case)?;
        self.inner.set_case_post(id, message, topic).await
    }
    async fn link_case_message(
        &self,
        chat: i64,
        message: i32,
        case: i64,
    ) -> Result<(), StoreError> {
        self.check(Op::Case)?;
        self.inner.link_case_message(chat, message, case).await
    }
    async fn case_of_message(&self, chat: i64, message: i32) -> Result<Option<i64>, StoreError> {
        self.check(Op::Case)?;
        self.inner.case_of_message(chat, message).await
    }
    async fn case_of_topic(&self, topic: i32) -> Result<Option<i64>, StoreError> {
        self.check(Op::Case)?;
        self.inner.case_of_topic(topic).await
    }
    async fn take_case(&self, id: i64, by: &str) -> Result<Option<Case>, StoreError> {
        self.check(Op::Case)?;
        self.inner.take_case(id, by).await
    }
    async fn close_case(&self, id: i64, now: Instant) -> Result<Option<Case>, StoreError> {
        self.check(Op::Case)?;
        self.inner.close_case(id, now).await
    }
    async fn person_lang(&self, user: u64) -> Result<Option<Lang>, StoreError> {
        self.check(Op::PersonLang(user))?;
        self.inner.person_lang(user).await
    }
    async fn remember_menu(
        &self,
        chat: i64,
        message: i32,
        owner: u64,
        posted: Posted,
        now: Instant,
    ) -> Result<(), StoreError> {
        self.check(Op::RememberMenu(owner))?;
        self.inner
            .remember_menu(chat, message, owner, posted, now)
            .await
    }
    async fn menu_owner(&self, chat: i64, message: i32) -> Result<Option<u64>, StoreError> {
        self.check(Op::MenuOwner)?;
        self.inner.menu_owner(chat, message).await
    }
    async fn has_private_chat(&self, user: u64) -> Result<bool, StoreError> {
        self.check(Op::HasPrivateChat(user))?;
        self.inner.has_private_chat(user).await
    }
    async fn forget_private_chat(&self, user: u64) -> Result<(), StoreError> {
        self.check(Op::ForgetPrivateChat(user))?;
        self.inner.forget_private_chat(user).await
    }
    async fn set_reminders(
        &self,
        chat: i64,
        user: u64,
        new: &[NewReminder],
    ) -> Result<i64, StoreError> {
        self.check(Op::SetReminders(user))?;
        self.inner.set_reminders(chat, user, new).await
    }
    async fn pending_reminders(
        &self,
        chat: Option<i64>,
        user: u64,
    ) -> Result<Vec<Reminder>, StoreError> {
        self.check(Op::PendingReminders(user))?;
        self.inner.pending_reminders(chat, user).await
    }
    async fn cancel_plan(&self, plan: i64, user: u64) -> Result<usize, StoreError> {
        self.check(Op::CancelPlan(user))?;
        self.inner.cancel_plan(plan, user).await
    }
    async fn cancel_reminders(&self, chat: i64, user: u64) -> Result<usize, StoreError> {
        self.check(Op::CancelReminders(user))?;
        self.inner.cancel_reminders(chat, user).await
    }
    async fn due_reminders(&self, now: Instant, limit: usize) -> Result<Vec<Reminder>, StoreError> {
        self.check(Op::DueReminders)?;
        self.inner.due_reminders(now, limit).await
    }
    async fn next_due(&self) -> Result<Option<Instant>, StoreError> {
        self.check(Op::NextDue)?;
        self.inner.next_due().await
    }
    async fn claim_reminders(
        &self,
        ids: &[i64],
        owner: &str,
        until: Instant,
    ) -> Result<bool, StoreError> {
        self.check(Op::Claim)?;
        self.inner.claim_reminders(ids, owner, until).await
    }
    async fn release_reminders(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.check(Op::Release)?;
        self.inner.release_reminders(ids).await
    }
    async fn finish_reminders(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.check(Op::Finish)?;
        self.inner.finish_reminders(ids).await
    }
    async fn recover_claimed(&self, now: Instant) -> Result<usize, StoreError> {
        self.check(Op::Recover)?;
        self.inner.recover_claimed(now).await
    }
    async fn idle_sessions(
        &self,
        before: Instant,
        limit: usize,
    ) -> Result<Vec<IdleSession>, StoreError> {
        self.check(Op::IdleSessions)?;
        self.inner.idle_sessions(before, limit).await
    }
    async fn expire_session(
        &self,
        key: SessionKey,
        updated_at: Instant,
    ) -> Result<bool, StoreError> {
        self.check(Op::Expire(key.user))?;
        self.inner.expire_session(key, updated_at).await
    }
    async fn counts(&self) -> Result<Counts, StoreError> {
        self.check(Op::Counts)?;
        self.inner.counts().await
    }
    fn describe(&self) -> String {
        "faulty".into()
    }
}
