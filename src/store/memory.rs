//! Sessions and reminders in memory: for tests and for running without a disk.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    Answer, Counts, Entry, INBOX_RETENTION_SECS, IdleSession, Later, MENU_RETENTION_SECS,
    PRIVATE_CHAT_RETENTION_SECS, Posted, SessionKey, Store, StoreError, is_blank,
};
use crate::clock::Instant;
use crate::engine::Session;
use crate::handoff::{CLOSED_RETENTION_SECS, Case, NewCase, Opened};
use crate::lang::Lang;
use crate::reminders::{NewReminder, Reminder};
use crate::stats::{Fact, LATER_SECS, MAX_DAYS};

/// Sessions in memory: for tests and for running without a disk.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<MemoryInner>,
}

#[derive(Default)]
struct MemoryInner {
    sessions: HashMap<SessionKey, (Session, Instant)>,
    /// Each stored session's version: the write that made it.
    versions: HashMap<SessionKey, u64>,
    writes: u64,
    people: HashMap<u64, Lang>,
    /// People with a private chat, with when they last wrote there.
    private_chats: HashMap<u64, Instant>,
    /// Owners of menus and of other messages with buttons, with when
    /// they were recorded.
    menus: HashMap<(i64, i32), (u64, Instant)>,
    notes: HashMap<(i64, i32), (u64, Instant)>,
    /// Reminders with whether they are claimed.
    reminders: Vec<(Reminder, bool)>,
    /// When each claimed reminder's claim runs out.
    claims: HashMap<i64, Instant>,
    last_id: i64,
    facts: Vec<Fact>,
    /// Next-day questions, with when they were asked for and whether
    /// they have been asked.
    later: HashMap<(i64, u64), (Later, Instant, bool)>,
    /// Cases with when they were closed.
    cases: Vec<(Case, Option<Instant>)>,
    case_messages: HashMap<(i64, i32), i64>,
    /// The update inbox, by update id.
    inbox: std::collections::BTreeMap<i64, InboxRow>,
}

/// One update in the inbox.
struct InboxRow {
    body: Option<String>,
    replies: Option<String>,
    received_at: Instant,
    done_at: Option<Instant>,
}

impl MemoryInner {
    fn case_mut(&mut self, id: i64) -> Option<&mut (Case, Option<Instant>)> {
        self.cases.iter_mut().find(|(c, _)| c.id == id)
    }
}

impl MemoryStore {
    fn lock(&self) -> MutexGuard<'_, MemoryInner> {
        // A panic elsewhere while holding the lock cannot leave the maps
        // half-updated (every update is a single insert or remove).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn load_versioned(&self, key: SessionKey) -> Result<(Option<Session>, u64), StoreError> {
        let inner = self.lock();
        let session = inner.sessions.get(&key).map(|(s, _)| s.clone());
        Ok((session, inner.versions.get(&key).copied().unwrap_or(0)))
    }

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
        let mut inner = self.lock();
        if expected.is_some_and(|v| inner.versions.get(&key).copied().unwrap_or(0) != v) {
            return Err(StoreError::Conflict);
        }
        inner.facts.extend_from_slice(facts);
        if let Some(answer) = answer
            && let Some(row) = inner.inbox.get_mut(&answer.entry)
            && row.done_at.is_none()
        {
            row.replies = Some(answer.replies.clone());
        }
        if inner
            .later
            .get(&(key.chat, key.user))
            .is_some_and(|(_, asked, _)| *asked < now)
        {
            inner.later.remove(&(key.chat, key.user));
        }
        if is_blank(session) {
            inner.sessions.remove(&key);
            inner.versions.remove(&key);
        } else {
            inner.sessions.insert(key, (session.clone(), now));
            inner.writes += 1;
            let version = inner.writes;
            inner.versions.insert(key, version);
        }
        if remember_lang {
            inner.people.insert(key.user, session.lang);
        }
        if key.is_private() {
            inner.private_chats.insert(key.user, now);
        }
        Ok(())
    }

    async fn inbox_put(
        &self,
        id: i64,
        body: &str,
        _owner: &str,
        now: Instant,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if inner.inbox.contains_key(&id) {
            return Ok(false);
        }
        inner.inbox.insert(
            id,
            InboxRow {
                body: Some(body.to_string()),
                replies: None,
                received_at: now,
                done_at: None,
            },
        );
        Ok(true)
    }

    async fn inbox_done(&self, ids: &[i64], now: Instant) -> Result<(), StoreError> {
        let mut inner = self.lock();
        for id in ids {
            if let Some(row) = inner.inbox.get_mut(id) {
                *row = InboxRow {
                    body: None,
                    replies: None,
                    received_at: row.received_at,
                    done_at: Some(now),
                };
            }
        }
        Ok(())
    }

    /// One process uses a memory store: every open entry is left over.
    async fn inbox_open(&self, _owner: &str, _now: Instant) -> Result<Vec<Entry>, StoreError> {
        Ok(self
            .lock()
            .inbox
            .iter()
            .filter(|(_, row)| row.done_at.is_none())
            .filter_map(|(id, row)| {
                Some(Entry {
                    id: *id,
                    body: row.body.clone()?,
                    replies: row.replies.clone(),
                })
            })
            .collect())
    }

    async fn person_lang(&self, user: u64) -> Result<Option<Lang>, StoreError> {
        Ok(self.lock().people.get(&user).copied())
    }

    async fn remember_menu(
        &self,
        chat: i64,
        message: i32,
        owner: u64,
        posted: Posted,
        now: Instant,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        match posted {
            Posted::Menu => inner.menus.insert((chat, message), (owner, now)),
            Posted::Note => inner.notes.insert((chat, message), (owner, now)),
        };
        Ok(())
    }

    async fn menu_owner(&self, chat: i64, message: i32) -> Result<Option<u64>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .menus
            .get(&(chat, message))
            .or_else(|| inner.notes.get(&(chat, message)))
            .map(|(owner, _)| *owner))
    }

    async fn has_private_chat(&self, user: u64) -> Result<bool, StoreError> {
        Ok(self.lock().private_chats.contains_key(&user))
    }

    async fn forget_private_chat(&self, user: u64) -> Result<(), StoreError> {
        self.lock().private_chats.remove(&user);
        Ok(())
    }

    async fn set_reminders(
        &self,
        chat: i64,
        user: u64,
        new: &[NewReminder],
    ) -> Result<i64, StoreError> {
        let mut inner = self.lock();
        inner
            .reminders
            .retain(|(r, claimed)| *claimed || r.chat != chat || r.user != user);
        let plan = inner.last_id + 1;
        for n in new {
            inner.last_id += 1;
            let id = inner.last_id;
            inner.reminders.push((stored(id, plan, n), false));
        }
        inner.last_id = inner.last_id.max(plan);
        Ok(plan)
    }

    async fn pending_reminders(
        &self,
        chat: Option<i64>,
        user: u64,
    ) -> Result<Vec<Reminder>, StoreError> {
        let mut found: Vec<Reminder> = self
            .lock()
            .reminders
            .iter()
            .filter(|(r, claimed)| {
                !claimed && chat.is_none_or(|chat| r.chat == chat) && r.user == user
            })
            .map(|(r, _)| r.clone())
            .collect();
        found.sort_by_key(|r| (r.due_at, r.id));
        Ok(found)
    }

    async fn cancel_plan(&self, plan: i64, user: u64) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let before = inner.reminders.len();
        inner
            .reminders
            .retain(|(r, claimed)| *claimed || r.plan != plan || r.user != user);
        Ok(before - inner.reminders.len())
    }

    async fn cancel_reminders(&self, chat: i64, user: u64) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let before = inner.reminders.len();
        inner
            .reminders
            .retain(|(r, claimed)| *claimed || r.chat != chat || r.user != user);
        Ok(before - inner.reminders.len())
    }

    async fn due_reminders(&self, now: Instant, limit: usize) -> Result<Vec<Reminder>, StoreError> {
        let mut due: Vec<Reminder> = self
            .lock()
            .reminders
            .iter()
            .filter(|(r, claimed)| !claimed && r.due_at <= now)
            .map(|(r, _)| r.clone())
            .collect();
        due.sort_by_key(|r| (r.plan, r.due_at, r.id));
        let mut plans: Vec<i64> = due.iter().map(|r| r.plan).collect();
        plans.dedup();
        plans.truncate(limit);
        due.retain(|r| plans.contains(&r.plan));
        Ok(due)
    }

    async fn next_due(&self) -> Result<Option<Instant>, StoreError> {
        Ok(self
            .lock()
            .reminders
            .iter()
            .filter(|(_, claimed)| !claimed)
            .map(|(r, _)| r.due_at)
            .min())
    }

    async fn claim_reminders(
        &self,
        ids: &[i64],
        _owner: &str,
        until: Instant,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let all_pending = ids.iter().all(|id| {
            inner
                .reminders
                .iter()
                .any(|(r, claimed)| r.id == *id && !claimed)
        });
        if all_pending {
            for (r, claimed) in &mut inner.reminders {
                if ids.contains(&r.id) {
                    *claimed = true;
                }
            }
            inner.claims.extend(ids.iter().map(|id| (*id, until)));
        }
        Ok(all_pending)
    }

    async fn release_reminders(&self, ids: &[i64]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        for (r, claimed) in &mut inner.reminders {
            if ids.contains(&r.id) {
                *claimed = false;
            }
        }
        inner.claims.retain(|id, _| !ids.contains(id));
        Ok(())
    }

    async fn finish_reminders(&self, ids: &[i64]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.reminders.retain(|(r, _)| !ids.contains(&r.id));
        inner.claims.retain(|id, _| !ids.contains(id));
        Ok(())
    }

    async fn recover_claimed(&self, now: Instant) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let before = inner.reminders.len();
        let MemoryInner {
            reminders, claims, ..
        } = &mut *inner;
        reminders.retain(|(r, claimed)| {
            !claimed || claims.get(&r.id).is_some_and(|&until| until >= now)
        });
        claims.retain(|id, _| reminders.iter().any(|(r, _)| r.id == *id));
        Ok(before - inner.reminders.len())
    }

    async fn idle_sessions(
        &self,
        before: Instant,
        limit: usize,
    ) -> Result<Vec<IdleSession>, StoreError> {
        let inner = self.lock();
        let mut idle: Vec<IdleSession> = inner
            .sessions
            .iter()
            .filter(|(key, (_, at))| {
                *at <= before
                    && !inner
                        .reminders
                        .iter()
                        .any(|(r, _)| r.chat == key.chat && r.user == key.user)
                    && !inner.later.contains_key(&(key.chat, key.user))
            })
            .map(|(key, (session, at))| IdleSession {
                key: *key,
                updated_at: *at,
                lang: session.lang,
                menu: inner
                    .menus
                    .iter()
                    .filter(|((chat, _), (owner, _))| *chat == key.chat && *owner == key.user)
                    .map(|((_, message), _)| *message)
                    .max(),
            })
            .collect();
        idle.sort_by_key(|i| (i.updated_at, i.key.chat, i.key.user));
        idle.truncate(limit);
        Ok(idle)
    }

    async fn expire_session(
        &self,
        key: SessionKey,
        updated_at: Instant,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if inner.sessions.get(&key).map(|(_, at)| *at) != Some(updated_at) {
            return Ok(false);
        }
        inner.sessions.remove(&key);
        inner.versions.remove(&key);
        inner
            .menus
            .retain(|(chat, _), (owner, _)| *chat != key.chat || *owner != key.user);
        Ok(true)
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        let inner = self.lock();
        Ok(Counts {
            sessions: inner.sessions.len(),
            reminders: inner.reminders.len(),
            menus: inner.menus.len(),
            notes: inner.notes.len(),
        })
    }

    async fn record(&self, facts: &[Fact]) -> Result<(), StoreError> {
        self.lock().facts.extend_from_slice(facts);
        Ok(())
    }

    async fn facts(&self, since: Instant) -> Result<Vec<Fact>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .facts
            .iter()
            .filter(|f| f.at >= since)
            .cloned()
            .collect())
    }

    async fn prune(&self, now: Instant) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let size =
            |i: &MemoryInner| i.facts.len() + i.later.len() + i.cases.len() + i.case_messages.len();
        let before = size(&inner);
        let oldest = now - i64::from(MAX_DAYS) * 24 * 3600;
        inner.facts.retain(|f| f.at >= oldest);
        inner
            .later
            .retain(|_, (later, _, _)| later.due_at >= now - LATER_SECS);
        inner
            .cases
            .retain(|(_, closed)| closed.is_none_or(|at| at >= now - CLOSED_RETENTION_SECS));
        let kept: HashSet<i64> = inner.cases.iter().map(|(c, _)| c.id).collect();
        inner.case_messages.retain(|_, case| kept.contains(case));
        let forgotten = now - MENU_RETENTION_SECS;
        inner.menus.retain(|_, (_, at)| *at >= forgotten);
        inner.notes.retain(|_, (_, at)| *at >= forgotten);
        let chats_before = inner.private_chats.len();
        let quiet_since = now - PRIVATE_CHAT_RETENTION_SECS;
        inner.private_chats.retain(|_, seen| *seen >= quiet_since);
        let chats_gone = chats_before - inner.private_chats.len();
        let inbox_before = inner.inbox.len();
        let kept_since = now - INBOX_RETENTION_SECS;
        inner
            .inbox
            .retain(|_, row| row.done_at.unwrap_or(row.received_at) >= kept_since);
        Ok(before - size(&inner) + inbox_before - inner.inbox.len() + chats_gone)
    }

    async fn ask_later(&self, later: &Later) -> Result<(), StoreError> {
        let asked = later.due_at - LATER_SECS;
        self.lock()
            .later
            .insert((later.chat, later.user), (later.clone(), asked, false));
        Ok(())
    }

    async fn due_later(&self, now: Instant, limit: usize) -> Result<Vec<Later>, StoreError> {
        let inner = self.lock();
        let mut due: Vec<Later> = inner
            .later
            .values()
            .filter(|(l, _, asked)| l.due_at <= now && !asked)
            .map(|(l, _, _)| l.clone())
            .collect();
        due.sort_by_key(|l| (l.due_at, l.chat, l.user));
        due.truncate(limit);
        Ok(due)
    }

    async fn take_later(&self, chat: i64, user: u64) -> Result<bool, StoreError> {
        Ok(match self.lock().later.get_mut(&(chat, user)) {
            Some((_, _, asked)) if !*asked => {
                *asked = true;
                true
            }
            _ => false,
        })
    }

    async fn open_case(&self, new: &NewCase, now: Instant) -> Result<Opened, StoreError> {
        let mut inner = self.lock();
        if let Some((case, _)) = inner
            .cases
            .iter()
            .find(|(c, _)| c.user == new.user && !c.closed)
        {
            return Ok(Opened::Existing(case.clone()));
        }
        inner.last_id += 1;
        let case = Case {
            id: inner.last_id,
            user: new.user,
            chat: new.chat,
            thread: new.thread,
            name: new.name.clone(),
            username: new.username.clone(),
            lang: new.lang,
            node: new.node.clone(),
            place: new.place.clone(),
            summary: new.summary.clone(),
            opened_at: now,
            taken_by: None,
            closed: false,
            post: None,
            topic: None,
        };
        inner.cases.push((case.clone(), None));
        Ok(Opened::New(case))
    }

    async fn case(&self, id: i64) -> Result<Option<Case>, StoreError> {
        Ok(self.lock().case_mut(id).map(|(c, _)| c.clone()))
    }

    async fn open_case_of(&self, user: u64) -> Result<Option<Case>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .cases
            .iter()
            .find(|(c, _)| c.user == user && !c.closed)
            .map(|(c, _)| c.clone()))
    }

    async fn set_case_post(
        &self,
        id: i64,
        message: i32,
        topic: Option<i32>,
    ) -> Result<(), StoreError> {
        if let Some((case, _)) = self.lock().case_mut(id) {
            case.post = Some(message);
            case.topic = topic;
        }
        Ok(())
    }

    async fn link_case_message(
        &self,
        chat: i64,
        message: i32,
        case: i64,
    ) -> Result<(), StoreError> {
        self.lock().case_messages.insert((chat, message), case);
        Ok(())
    }

    async fn case_of_message(&self, chat: i64, message: i32) -> Result<Option<i64>, StoreError> {
        Ok(self.lock().case_messages.get(&(chat, message)).copied())
    }

    async fn case_of_topic(&self, topic: i32) -> Result<Option<i64>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .cases
            .iter()
            .filter(|(c, _)| c.topic == Some(topic))
            .map(|(c, _)| c.id)
            .max())
    }

    async fn take_case(&self, id: i64, by: &str) -> Result<Option<Case>, StoreError> {
        let mut inner = self.lock();
        Ok(inner
            .case_mut(id)
            .filter(|(c, _)| !c.closed && c.taken_by.is_none())
            .map(|(case, _)| {
                case.taken_by = Some(by.to_string());
                case.clone()
            }))
    }

    async fn close_case(&self, id: i64, now: Instant) -> Result<Option<Case>, StoreError> {
        let mut inner = self.lock();
        Ok(inner
            .case_mut(id)
            .filter(|(c, _)| !c.closed)
            .map(|(case, closed)| {
                case.closed = true;
                *closed = Some(now);
                case.clone()
            }))
    }

    fn describe(&self) -> String {
        "memory (nothing survives a restart)".to_string()
    }
}

/// A new reminder as stored, with the ids it was given.
fn stored(id: i64, plan: i64, n: &NewReminder) -> Reminder {
    Reminder {
        id,
        plan,
        chat: n.chat,
        user: n.user,
        name: n.name.clone(),
        lang: n.lang,
        kind: n.kind,
        due_at: n.due_at,
        deadline: n.deadline,
        thread: n.thread,
    }
}
