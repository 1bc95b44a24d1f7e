//! Reminders as stored: set as plans, listed and cancelled by their person, claimed before they are sent and removed after, so none is sent twice.
//!
//! A reminder is the record `rem:<id>`, with its claim once a process is
//! sending it. The index `due` holds the ids pending by when they fall
//! due, `claimed` those claimed by when the claim runs out; `rems:<user>`
//! and `rems:<chat>:<user>` a person's, everywhere and in one chat.

use serde::{Deserialize, Serialize};

use super::{NewReminder, Reminder};
use crate::clock::Instant;
use crate::store::kernel::Span;
use crate::store::{ANY_TIME, Batch, RETRIES, SessionKey, Store, StoreError, decode, encode};

const DUE: &str = "due";
const CLAIMED: &str = "claimed";

/// The most reminders looked at in one call.
const MOST: usize = 100_000;

/// A reminder as stored.
#[derive(Serialize, Deserialize)]
struct Held {
    reminder: Reminder,
    /// Who is sending it, until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claim: Option<Claim>,
}

#[derive(Serialize, Deserialize)]
struct Claim {
    owner: String,
    until: Instant,
}

fn reminder_key(id: i64) -> String {
    format!("rem:{id}")
}

fn person_index(user: u64) -> String {
    format!("rems:{user}")
}

pub(crate) fn chat_index(key: SessionKey) -> String {
    format!("rems:{}", key.id())
}

/// Adds a reminder to a batch, pending or claimed by `owner` until `until`.
pub(crate) fn reminder_into(
    batch: &mut Batch,
    reminder: Reminder,
    claim: Option<(String, Instant)>,
) {
    let claim = claim.map(|(owner, until)| Claim { owner, until });
    hold_into(batch, &Held { reminder, claim });
}

/// Adds a reminder's record and index members to a batch.
fn hold_into(batch: &mut Batch, held: &Held) {
    let r = &held.reminder;
    let id = r.id.to_string();
    let key = SessionKey {
        chat: r.chat,
        user: r.user,
    };
    batch
        .put(reminder_key(r.id), encode(held))
        .index(person_index(r.user), &id, r.due_at)
        .index(chat_index(key), &id, r.due_at);
    match &held.claim {
        None => batch.index(DUE, &id, r.due_at).unindex(CLAIMED, &id),
        Some(claim) => batch.unindex(DUE, &id).index(CLAIMED, &id, claim.until),
    };
}

/// Adds a reminder's removal, record and index members, to a batch.
fn drop_into(batch: &mut Batch, r: &Reminder) {
    let id = r.id.to_string();
    let key = SessionKey {
        chat: r.chat,
        user: r.user,
    };
    batch
        .delete(reminder_key(r.id))
        .unindex(person_index(r.user), &id)
        .unindex(chat_index(key), &id)
        .unindex(DUE, &id)
        .unindex(CLAIMED, &id);
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
        conv: n.conv,
        node: n.node.clone(),
    }
}

/// Pending reminders as they were read, each with its version: what a
/// step shows and cancels, checked unchanged when it is saved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending(Vec<(Reminder, u64)>);

impl Pending {
    /// Reminders read with their versions.
    pub fn from_read(mut read: Vec<(Reminder, u64)>) -> Pending {
        read.sort_by_key(|(r, _)| (r.due_at, r.id));
        Pending(read)
    }

    /// The reminders, by time.
    pub fn reminders(&self) -> impl Iterator<Item = &Reminder> {
        self.0.iter().map(|(r, _)| r)
    }

    pub fn into_reminders(self) -> Vec<Reminder> {
        self.0.into_iter().map(|(r, _)| r).collect()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds to a batch the removal of those `which` picks, each only if
    /// it is still as read; returns how many.
    pub fn cancel_into(&self, batch: &mut Batch, which: impl Fn(&Reminder) -> bool) -> usize {
        let mut count = 0;
        for (reminder, version) in self.0.iter().filter(|(r, _)| which(r)) {
            batch.check(reminder_key(reminder.id), *version);
            drop_into(batch, reminder);
            count += 1;
        }
        count
    }
}

/// New reminders with their ids, not yet stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fresh(Vec<Reminder>);

impl Fresh {
    /// Adds the reminders, pending, to a batch.
    pub fn into_batch(&self, batch: &mut Batch) {
        for reminder in &self.0 {
            let held = Held {
                reminder: reminder.clone(),
                claim: None,
            };
            hold_into(batch, &held);
        }
    }
}

impl Store {
    /// The reminders of an index (or the ids given), with their versions.
    async fn held(&self, ids: &[i64]) -> Result<Vec<(Held, u64)>, StoreError> {
        let keys: Vec<String> = ids.iter().map(|id| reminder_key(*id)).collect();
        let rows = self.kernel().get(&keys, ANY_TIME).await?;
        let mut held = Vec::with_capacity(rows.len());
        for record in rows.into_iter().flatten() {
            held.push(decode(record)?);
        }
        Ok(held)
    }

    async fn ids_in(&self, index: &str, span: Span) -> Result<Vec<i64>, StoreError> {
        let members = self.kernel().range(index, span).await?;
        Ok(members.iter().filter_map(|(m, _)| m.parse().ok()).collect())
    }

    /// The pending reminders of `index`, each with the version a cancel
    /// checks.
    async fn pending_in(&self, index: &str) -> Result<Pending, StoreError> {
        let ids = self.ids_in(index, Span::all(MOST)).await?;
        let found: Vec<(Reminder, u64)> = self
            .held(&ids)
            .await?
            .into_iter()
            .filter(|(h, _)| h.claim.is_none())
            .map(|(h, version)| (h.reminder, version))
            .collect();
        Ok(Pending::from_read(found))
    }

    /// The person's reminders still to be sent, by time, as a step reads
    /// them: those set in `chat`, or with `None` all of them.
    pub async fn read_pending(&self, chat: Option<i64>, user: u64) -> Result<Pending, StoreError> {
        let index = match chat {
            Some(chat) => chat_index(SessionKey { chat, user }),
            None => person_index(user),
        };
        self.pending_in(&index).await
    }

    /// A new plan's id, never reused.
    pub async fn new_plan(&self) -> Result<i64, StoreError> {
        self.kernel().next_id("reminder").await
    }

    /// New reminders of `plan`, each given its id, ready to be added to a
    /// batch with `Fresh::into_batch`.
    pub async fn fresh(&self, plan: i64, new: &[NewReminder]) -> Result<Fresh, StoreError> {
        let mut made = Vec::with_capacity(new.len());
        for n in new {
            made.push(stored(self.kernel().next_id("reminder").await?, plan, n));
        }
        Ok(Fresh(made))
    }

    /// Removes the reminders of `index` that `which` picks, all that were
    /// still pending when read, and adds `fresh`; returns how many were
    /// removed.
    async fn replace(
        &self,
        index: &str,
        which: impl Fn(&Reminder) -> bool,
        fresh: Option<&Fresh>,
    ) -> Result<usize, StoreError> {
        for _ in 0..RETRIES {
            let pending = self.pending_in(index).await?;
            let mut batch = Batch::new(ANY_TIME);
            let count = pending.cancel_into(&mut batch, &which);
            if let Some(fresh) = fresh {
                fresh.into_batch(&mut batch);
            }
            if batch.is_empty() {
                return Ok(0);
            }
            match self.kernel().commit(batch).await {
                Ok(_) => return Ok(count),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }

    /// Stores reminders set together, as one plan, in place of the
    /// person's pending reminders in the chat (a new SMS makes the old
    /// window moot); returns the plan's id, which is never reused.
    pub async fn set_reminders(
        &self,
        chat: i64,
        user: u64,
        new: &[NewReminder],
    ) -> Result<i64, StoreError> {
        let plan = self.new_plan().await?;
        let fresh = self.fresh(plan, new).await?;
        let key = SessionKey { chat, user };
        self.replace(&chat_index(key), |_| true, Some(&fresh))
            .await?;
        Ok(plan)
    }

    /// The person's reminders still to be sent, by time: those set in
    /// `chat`, or with `None` all of them.
    pub async fn pending_reminders(
        &self,
        chat: Option<i64>,
        user: u64,
    ) -> Result<Vec<Reminder>, StoreError> {
        Ok(self.read_pending(chat, user).await?.into_reminders())
    }

    /// Cancels a plan's pending reminders, if they are the person's;
    /// returns how many.
    pub async fn cancel_plan(&self, plan: i64, user: u64) -> Result<usize, StoreError> {
        self.replace(&person_index(user), |r| r.plan == plan, None)
            .await
    }

    /// Cancels all the person's pending reminders in a chat.
    pub async fn cancel_reminders(&self, chat: i64, user: u64) -> Result<usize, StoreError> {
        let key = SessionKey { chat, user };
        self.replace(&chat_index(key), |_| true, None).await
    }

    /// Pending reminders due at `now` of at most `limit` plans, whole
    /// plans, by plan then time.
    pub async fn due_reminders(
        &self,
        now: Instant,
        limit: usize,
    ) -> Result<Vec<Reminder>, StoreError> {
        let ids = self.ids_in(DUE, Span::upto(now, MOST)).await?;
        let mut due: Vec<Reminder> = self
            .held(&ids)
            .await?
            .into_iter()
            .filter(|(h, _)| h.claim.is_none() && h.reminder.due_at <= now)
            .map(|(h, _)| h.reminder)
            .collect();
        due.sort_by_key(|r| (r.plan, r.due_at, r.id));
        let mut plans: Vec<i64> = due.iter().map(|r| r.plan).collect();
        plans.dedup();
        plans.truncate(limit);
        due.retain(|r| plans.contains(&r.plan));
        Ok(due)
    }

    /// The earliest time a pending reminder falls due.
    pub async fn next_due(&self) -> Result<Option<Instant>, StoreError> {
        let first = self.kernel().range(DUE, Span::all(1)).await?;
        Ok(first.first().map(|(_, due)| *due))
    }

    /// Marks pending reminders as being sent by `owner` until `until`: all
    /// of them, or none if any is no longer pending (cancelled, or taken
    /// meanwhile, by this process or another). The claim is on disk
    /// before this returns.
    pub async fn claim_reminders(
        &self,
        ids: &[i64],
        owner: &str,
        until: Instant,
    ) -> Result<bool, StoreError> {
        let held = self.held(ids).await?;
        if held.len() != ids.len() || held.iter().any(|(h, _)| h.claim.is_some()) {
            return Ok(false);
        }
        let mut batch = Batch::new(ANY_TIME);
        batch.sync = true;
        for (mut h, version) in held {
            batch.check(reminder_key(h.reminder.id), version);
            h.claim = Some(Claim {
                owner: owner.to_string(),
                until,
            });
            hold_into(&mut batch, &h);
        }
        match self.kernel().commit(batch).await {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Returns claimed reminders to pending: they were not sent.
    pub async fn release_reminders(&self, ids: &[i64]) -> Result<(), StoreError> {
        let mut batch = Batch::new(ANY_TIME);
        for (mut h, _) in self.held(ids).await? {
            h.claim = None;
            hold_into(&mut batch, &h);
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.kernel().commit(batch).await.map(drop)
    }

    /// Removes claimed reminders: they were sent, or are no longer wanted.
    pub async fn finish_reminders(&self, ids: &[i64]) -> Result<(), StoreError> {
        let mut batch = Batch::new(ANY_TIME);
        for (h, _) in self.held(ids).await? {
            drop_into(&mut batch, &h.reminder);
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.kernel().commit(batch).await.map(drop)
    }

    /// Removes reminders whose claim ran out before `now` unfinished: the
    /// process that claimed them died, and they may have been sent, so
    /// they are not sent again. A claim still running is left alone,
    /// whoever holds it.
    pub async fn recover_claimed(&self, now: Instant) -> Result<usize, StoreError> {
        let ids = self.ids_in(CLAIMED, Span::upto(now - 1, MOST)).await?;
        let mut batch = Batch::new(ANY_TIME);
        let mut count = 0;
        for (h, version) in self.held(&ids).await? {
            if h.claim.as_ref().is_some_and(|c| c.until < now) {
                batch.check(reminder_key(h.reminder.id), version);
                drop_into(&mut batch, &h.reminder);
                count += 1;
            }
        }
        if batch.is_empty() {
            return Ok(0);
        }
        match self.kernel().commit(batch).await {
            Ok(_) => Ok(count),
            // A claim changed meanwhile (released, finished or renewed):
            // the next pass looks again.
            Err(StoreError::Conflict) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// How many reminders are stored, pending or being sent.
    pub async fn reminder_count(&self) -> Result<usize, StoreError> {
        Ok(self.kernel().count(DUE).await? + self.kernel().count(CLAIMED).await?)
    }
}
