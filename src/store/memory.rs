//! Sessions and reminders in memory: for tests and for running without a disk.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{Counts, IdleSession, Posted, SessionKey, Store, StoreError, is_blank};
use crate::clock::Instant;
use crate::engine::Session;
use crate::lang::Lang;
use crate::reminders::{NewReminder, Reminder};

/// Sessions in memory: for tests and for running without a disk.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<MemoryInner>,
}

#[derive(Default)]
struct MemoryInner {
    sessions: HashMap<SessionKey, (Session, Instant)>,
    people: HashMap<u64, Lang>,
    private_chats: HashSet<u64>,
    menus: HashMap<(i64, i32), u64>,
    notes: HashMap<(i64, i32), u64>,
    /// Reminders with whether they are claimed.
    reminders: Vec<(Reminder, bool)>,
    last_id: i64,
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
    async fn load(&self, key: SessionKey) -> Result<Option<Session>, StoreError> {
        Ok(self.lock().sessions.get(&key).map(|(s, _)| s.clone()))
    }

    async fn save(
        &self,
        key: SessionKey,
        session: &Session,
        remember_lang: bool,
        now: Instant,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if is_blank(session) {
            inner.sessions.remove(&key);
        } else {
            inner.sessions.insert(key, (session.clone(), now));
        }
        if remember_lang {
            inner.people.insert(key.user, session.lang);
        }
        if key.is_private() {
            inner.private_chats.insert(key.user);
        }
        Ok(())
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
        _now: Instant,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        match posted {
            Posted::Menu => inner.menus.insert((chat, message), owner),
            Posted::Note => inner.notes.insert((chat, message), owner),
        };
        Ok(())
    }

    async fn menu_owner(&self, chat: i64, message: i32) -> Result<Option<u64>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .menus
            .get(&(chat, message))
            .or_else(|| inner.notes.get(&(chat, message)))
            .copied())
    }

    async fn has_private_chat(&self, user: u64) -> Result<bool, StoreError> {
        Ok(self.lock().private_chats.contains(&user))
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

    async fn claim_reminders(&self, ids: &[i64]) -> Result<bool, StoreError> {
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
        }
        Ok(all_pending)
    }

    async fn release_reminders(&self, ids: &[i64]) -> Result<(), StoreError> {
        for (r, claimed) in &mut self.lock().reminders {
            if ids.contains(&r.id) {
                *claimed = false;
            }
        }
        Ok(())
    }

    async fn finish_reminders(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.lock().reminders.retain(|(r, _)| !ids.contains(&r.id));
        Ok(())
    }

    async fn recover_claimed(&self) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let before = inner.reminders.len();
        inner.reminders.retain(|(_, claimed)| !claimed);
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
            })
            .map(|(key, (session, at))| IdleSession {
                key: *key,
                updated_at: *at,
                lang: session.lang,
                menu: inner
                    .menus
                    .iter()
                    .filter(|((chat, _), owner)| *chat == key.chat && **owner == key.user)
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
        inner
            .menus
            .retain(|(chat, _), owner| *chat != key.chat || *owner != key.user);
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
