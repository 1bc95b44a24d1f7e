//! The update inbox: each update recorded once before it is handled, the replies its step gave, and what a stopped process left, taken over.
//!
//! An entry is the record `in:<id>` with the update, the process handling
//! it (its owner) and when it came, then when it was done (the update goes
//! then); it is kept `INBOX_RETENTION_SECS` after it came, or after it was
//! done, so a late repeat is still known. The index `inbox_open` holds the
//! ids not done; `ans:<id>` the replies saved with its step. A process's
//! heartbeat is `beat:<owner>`, the time it is alive until.

use super::kernel::{Batch, Span};
use super::{ANY_TIME, Store, StoreError, kept_until};
use crate::clock::Instant;

/// How long a done inbox entry's id is kept to recognise a repeat, and an
/// entry never done at all (it could not be handled) is kept to be tried.
pub const INBOX_RETENTION_SECS: i64 = 24 * 3600;

const OPEN: &str = "inbox_open";

/// The most open entries looked at in one pass.
const MOST_OPEN: usize = 100_000;

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

/// An entry as stored: `<at> <done or -> <owner's length> <owner><update>`,
/// the update last and as it came, so that recording one (on every
/// update's path) copies it once and escapes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stored {
    body: Option<String>,
    owner: String,
    at: Instant,
    done: Option<Instant>,
}

impl Stored {
    fn encode(&self) -> String {
        let body = self.body.as_deref().unwrap_or_default();
        let done = self.done.map_or_else(|| "-".to_string(), |d| d.to_string());
        let mut value = String::with_capacity(body.len() + self.owner.len() + 48);
        value.push_str(&format!("{} {done} {} ", self.at, self.owner.len()));
        value.push_str(&self.owner);
        value.push_str(body);
        value
    }

    fn decode(value: &str) -> Option<Stored> {
        let mut fields = value.splitn(4, ' ');
        let at = fields.next()?.parse().ok()?;
        let done = match fields.next()? {
            "-" => None,
            done => Some(done.parse().ok()?),
        };
        let owner_len: usize = fields.next()?.parse().ok()?;
        let rest = fields.next()?;
        let owner = rest.get(..owner_len)?.to_string();
        let body = rest.get(owner_len..)?;
        Some(Stored {
            body: done.is_none().then(|| body.to_string()),
            owner,
            at,
            done,
        })
    }
}

fn entry_key(id: i64) -> String {
    format!("in:{id}")
}

fn answer_key(id: i64) -> String {
    format!("ans:{id}")
}

fn beat_key(owner: &str) -> String {
    format!("beat:{owner}")
}

/// Adds an entry recorded at `at` to a batch: open with its update (and
/// the replies its step gave, if any), or done at `done`.
pub(crate) fn entry_into(
    batch: &mut Batch,
    id: i64,
    body: Option<String>,
    replies: Option<String>,
    at: Instant,
    done: Option<Instant>,
) {
    let kept = kept_until(done.unwrap_or(at), INBOX_RETENTION_SECS);
    let stored = Stored {
        body,
        owner: String::new(),
        at,
        done,
    };
    batch.put_until(entry_key(id), stored.encode(), Some(kept));
    if done.is_none() {
        batch.index(OPEN, id.to_string(), id);
        if let Some(replies) = replies {
            batch.put_until(answer_key(id), replies, Some(kept));
        }
    }
}

/// Adds the replies a step gave to its batch.
pub(super) fn answer_into(batch: &mut Batch, answer: &Answer, now: Instant) {
    batch.put_until(
        answer_key(answer.entry),
        answer.replies.as_str(),
        Some(kept_until(now, INBOX_RETENTION_SECS)),
    );
}

/// Adds to a batch update `id` recorded by `owner` at `now`, open, on the
/// condition that it was not recorded before.
fn recorded_into(batch: &mut Batch, id: i64, body: &str, owner: &str, now: Instant) {
    let stored = Stored {
        body: Some(body.to_string()),
        owner: owner.to_string(),
        at: now,
        done: None,
    };
    let key = entry_key(id);
    batch
        .check(&key, 0)
        .put_until(
            &key,
            stored.encode(),
            Some(kept_until(now, INBOX_RETENTION_SECS)),
        )
        .index(OPEN, id.to_string(), id);
}

/// One batch of the entries not `recorded` (by their place in `entries`),
/// each id once, and whether each entry is in it.
fn unrecorded_into_batch(
    entries: &[(i64, &str)],
    recorded: impl Fn(usize) -> bool,
    owner: &str,
    now: Instant,
) -> (Vec<bool>, Batch) {
    let mut seen = std::collections::HashSet::new();
    let mut batch = Batch::new(now);
    let new = entries
        .iter()
        .enumerate()
        .map(|(i, (id, body))| {
            let is_new = !recorded(i) && seen.insert(*id);
            if is_new {
                recorded_into(&mut batch, *id, body, owner, now);
            }
            is_new
        })
        .collect();
    (new, batch)
}

/// A group of updates the store failed to record: how the first ones
/// went (recorded one by one before the failure: new, or a repeat), and
/// the error that left the rest unrecorded. Each of the first is as
/// recorded as if the group had been written whole, so it is handled,
/// or skipped as a repeat, like any other.
#[derive(Debug)]
pub struct PutFailed {
    pub recorded: Vec<bool>,
    pub error: StoreError,
}

impl From<StoreError> for PutFailed {
    /// Nothing recorded.
    fn from(error: StoreError) -> Self {
        PutFailed {
            recorded: Vec::new(),
            error,
        }
    }
}

impl PutFailed {
    /// How entry `i` of the group went: recorded (new or not), or the
    /// error that kept it out.
    pub fn outcome(&self, i: usize) -> Result<bool, String> {
        self.recorded
            .get(i)
            .copied()
            .ok_or_else(|| self.error.to_string())
    }
}

impl Store {
    /// Records an update in the inbox before it is handled, as being
    /// handled by `owner` (this process); false if its id was recorded
    /// before (Telegram sent it again): it is skipped.
    pub async fn inbox_put(
        &self,
        id: i64,
        body: &str,
        owner: &str,
        now: Instant,
    ) -> Result<bool, StoreError> {
        let mut batch = Batch::new(now);
        recorded_into(&mut batch, id, body, owner, now);
        match self.kernel.commit(batch).await {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `inbox_put` of several updates in one write: whether each was new.
    /// An id given twice is new the first time only. They are written
    /// together on the condition that none was recorded before, with no
    /// read first: Telegram sends an update again only after a failure, so
    /// a repeat is rare. When one is there, the write fails whole; then
    /// which ones were recorded is read, and the others written together
    /// (a batch sent again whole, after a crash or a handover, costs one
    /// read and no write). Should another process record one of them
    /// meanwhile, each is recorded on its own; a failure then says which
    /// of them were recorded before it (`PutFailed`).
    pub async fn inbox_put_many(
        &self,
        entries: &[(i64, &str)],
        owner: &str,
        now: Instant,
    ) -> Result<Vec<bool>, PutFailed> {
        match entries {
            [] => return Ok(Vec::new()),
            [(id, body)] => return Ok(vec![self.inbox_put(*id, body, owner, now).await?]),
            _ => {}
        }
        let (new, batch) = unrecorded_into_batch(entries, |_| false, owner, now);
        match self.kernel.commit(batch).await {
            Ok(_) => Ok(new),
            Err(StoreError::Conflict) => self.inbox_put_unseen(entries, owner, now).await,
            Err(e) => Err(e.into()),
        }
    }

    /// `inbox_put_many` of a batch with a repeat in it: the entries read
    /// first, and those not recorded written together.
    async fn inbox_put_unseen(
        &self,
        entries: &[(i64, &str)],
        owner: &str,
        now: Instant,
    ) -> Result<Vec<bool>, PutFailed> {
        let keys: Vec<String> = entries.iter().map(|(id, _)| entry_key(*id)).collect();
        let found = self.kernel.get(&keys, now).await?;
        let (new, batch) = unrecorded_into_batch(entries, |i| found[i].is_some(), owner, now);
        if batch.is_empty() {
            return Ok(new);
        }
        match self.kernel.commit(batch).await {
            Ok(_) => Ok(new),
            Err(StoreError::Conflict) => {
                let mut each = Vec::with_capacity(entries.len());
                for ((id, body), was_new) in entries.iter().zip(new) {
                    let recorded = if was_new {
                        match self.inbox_put(*id, body, owner, now).await {
                            Ok(recorded) => recorded,
                            // Those recorded so far stay recorded: said,
                            // so that they are handled rather than found
                            // as repeats when Telegram sends them again.
                            Err(error) => {
                                return Err(PutFailed {
                                    recorded: each,
                                    error,
                                });
                            }
                        }
                    } else {
                        false
                    };
                    each.push(recorded);
                }
                Ok(each)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Marks inbox entries as handled and answered, in one round trip.
    /// Their ids are kept a day, so a late repeat is still recognised.
    pub async fn inbox_done(&self, ids: &[i64], now: Instant) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::new(now);
        for &id in ids {
            entry_into(&mut batch, id, None, None, now, Some(now));
            batch.delete(answer_key(id)).unindex(OPEN, id.to_string());
        }
        self.kernel.commit(batch).await.map(drop)
    }

    /// The entries recorded and not done by a process that is gone,
    /// oldest first, taken over by `owner`: what a crash left to handle,
    /// or to answer. A store that only one process can use at a time
    /// takes every open entry; a shared one leaves those of processes
    /// whose `heartbeat` has not run out, and this process's own.
    pub async fn inbox_open(&self, owner: &str, now: Instant) -> Result<Vec<Entry>, StoreError> {
        let shared = self.is_shared();
        let open = self.kernel.range(OPEN, Span::all(MOST_OPEN)).await?;
        let ids: Vec<i64> = open.iter().filter_map(|(m, _)| m.parse().ok()).collect();
        let mut keys = Vec::with_capacity(ids.len() * 2);
        for &id in &ids {
            keys.push(entry_key(id));
            keys.push(answer_key(id));
        }
        let rows = self.kernel.get(&keys, ANY_TIME).await?;
        let mut stale = Batch::new(now);
        let mut left = Vec::new();
        for (&id, pair) in ids.iter().zip(rows.chunks(2)) {
            let [entry, replies] = pair else { continue };
            let Some(entry) = entry else {
                // Gone after its day, or done: no longer open.
                stale.unindex(OPEN, id.to_string());
                continue;
            };
            match Stored::decode(&entry.value) {
                Some(stored) if stored.done.is_none() => {
                    let Some(body) = stored.body.clone() else {
                        continue;
                    };
                    let replies = replies.as_ref().map(|r| r.value.clone());
                    left.push((id, stored, entry.version, Entry { id, body, replies }));
                }
                Some(_) => {
                    stale.unindex(OPEN, id.to_string());
                }
                None => {
                    log::warn!("inbox: entry {id} could not be read and is dropped");
                    stale.unindex(OPEN, id.to_string());
                }
            }
        }
        if !stale.is_empty() {
            self.kernel.commit(stale).await?;
        }
        if !shared {
            return Ok(left.into_iter().map(|(_, _, _, entry)| entry).collect());
        }
        let mut owners: Vec<String> = left.iter().map(|(_, s, _, _)| s.owner.clone()).collect();
        owners.sort_unstable();
        owners.dedup();
        let beats = self
            .kernel
            .get(
                &owners.iter().map(|o| beat_key(o)).collect::<Vec<_>>(),
                ANY_TIME,
            )
            .await?;
        let alive: Vec<String> = owners
            .into_iter()
            .zip(&beats)
            .filter(|(_, beat)| {
                beat.as_ref()
                    .and_then(|b| b.value.parse::<Instant>().ok())
                    .is_some_and(|until| until >= now)
            })
            .map(|(o, _)| o)
            .collect();
        let mut taken = Vec::new();
        for (id, mut stored, version, entry) in left {
            if stored.owner == owner || alive.contains(&stored.owner) {
                continue;
            }
            stored.owner = owner.to_string();
            let key = entry_key(id);
            let expires = kept_until(stored.at, INBOX_RETENTION_SECS);
            let mut batch = Batch::new(now);
            batch
                .check(&key, version)
                .put_until(&key, stored.encode(), Some(expires));
            match self.kernel.commit(batch).await {
                Ok(_) => taken.push(entry),
                // Another process took it over (or finished it) first.
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(taken)
    }

    /// How many updates are recorded and not done, for /metrics: those
    /// in hand and those waiting, by every process sharing the store.
    pub async fn inbox_backlog(&self) -> Result<usize, StoreError> {
        self.kernel.count(OPEN).await
    }

    /// Says that the process `owner` is alive until `until`: its inbox
    /// entries are not taken over before then. Kept a day past, as a
    /// process silent that long has nothing left in the inbox.
    pub async fn heartbeat(&self, owner: &str, until: Instant) -> Result<(), StoreError> {
        if !self.is_shared() {
            return Ok(());
        }
        let mut batch = Batch::new(ANY_TIME);
        batch.put_until(
            beat_key(owner),
            until.to_string(),
            Some(kept_until(until, INBOX_RETENTION_SECS)),
        );
        self.kernel.commit(batch).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::Stored;
    use crate::store::kernel::flaky::Flaky;
    use crate::store::{Store, StoreError};

    /// An entry's update is kept as it came, whatever it holds, beside
    /// an owner with spaces in it.
    #[test]
    fn entries_read_back_as_written() {
        let open = Stored {
            body: Some("{\"text\": \"a b\\n c\"}".to_string()),
            owner: "host pid 7 started 1".to_string(),
            at: 1_700_000_000,
            done: None,
        };
        assert_eq!(Stored::decode(&open.encode()), Some(open));
        let done = Stored {
            body: None,
            owner: String::new(),
            at: 5,
            done: Some(6),
        };
        assert_eq!(Stored::decode(&done.encode()), Some(done));
        assert_eq!(Stored::decode("not an entry"), None);
        assert_eq!(Stored::decode("1 - 99 short"), None);
    }

    /// The store's calls (`get`, `commit` …) a piece of work made.
    fn counted() -> (Store, Arc<Mutex<Vec<&'static str>>>) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&calls);
        let store = Store::memory().timed(Arc::new(move |call, _, _| {
            seen.lock().unwrap().push(call);
        }));
        (store, calls)
    }

    #[tokio::test]
    async fn a_new_batch_is_one_write_and_a_batch_sent_again_one_read() {
        crate::suite::within(async {
            let (store, calls) = counted();
            let batch = [(1, "{}"), (2, "{}"), (3, "{}")];
            let new = store.inbox_put_many(&batch, "p", 1000).await.unwrap();
            assert_eq!(new, [true, true, true]);
            assert_eq!(*calls.lock().unwrap(), ["commit"]);
            // Sent again whole (after a crash before it was confirmed): the
            // refused write, one read, and nothing written one by one.
            calls.lock().unwrap().clear();
            let again = store.inbox_put_many(&batch, "p", 1001).await.unwrap();
            assert_eq!(again, [false, false, false]);
            assert_eq!(*calls.lock().unwrap(), ["commit", "get"]);
            // One repeat among new ones: the others are written together.
            calls.lock().unwrap().clear();
            let mixed = [(3, "{}"), (4, "{}"), (5, "{}")];
            let new = store.inbox_put_many(&mixed, "p", 1002).await.unwrap();
            assert_eq!(new, [false, true, true]);
            assert_eq!(*calls.lock().unwrap(), ["commit", "get", "commit"]);
        })
        .await;
    }

    /// The last way to record a group, one update at a time (two writes of
    /// it refused), failing midway: the ones recorded before the failure
    /// are said to be, so they are handled and not later skipped as
    /// repeats; the rest are said to have failed, and are not recorded.
    #[tokio::test]
    async fn a_failure_while_recording_one_by_one_keeps_what_was_recorded() {
        crate::suite::within(async {
            let conflict = || Some(StoreError::Conflict);
            let down = Some(StoreError::Unavailable("the disk is gone".into()));
            let kernel = Flaky::scripted([conflict(), conflict(), None, down]);
            let store = Store::new(Arc::new(kernel), 3600);
            let group = [(1, "{}"), (2, "{}"), (3, "{}")];
            let failed = store.inbox_put_many(&group, "p", 1000).await.unwrap_err();
            assert_eq!(failed.recorded, [true]);
            assert_eq!(failed.outcome(0), Ok(true));
            assert!(failed.outcome(1).unwrap_err().contains("the disk is gone"));
            assert!(failed.outcome(2).is_err());
            let open: Vec<i64> = store
                .inbox_open("q", 2000)
                .await
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect();
            assert_eq!(open, [1]);
            // Sent again (a webhook refused them): the one recorded is a
            // repeat, the others are new.
            let again = store.inbox_put_many(&group, "p", 1001).await.unwrap();
            assert_eq!(again, [false, true, true]);
        })
        .await;
    }
}
