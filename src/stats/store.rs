//! The facts the figures are made of, and the next-day questions ("did it get solved in the end?") waiting to be asked.
//!
//! Facts are values of the log `facts`. A question is the record
//! `later:<chat>:<user>`, kept a day past when it is due; the index
//! `later_due` holds `<chat>:<user>` by when it is due, until it is asked.

use serde::{Deserialize, Serialize};

use super::{Fact, LATER_SECS, Later, MAX_DAYS};
use crate::clock::Instant;
use crate::store::kernel::{Record, Span};
use crate::store::{ANY_TIME, Batch, SessionKey, Store, StoreError, decode, encode, kept_until};

const FACTS: &str = "facts";
const LATER_DUE: &str = "later_due";

/// A question as stored: when it was asked for, and whether it has been
/// asked.
#[derive(Serialize, Deserialize)]
struct Question {
    later: Later,
    asked_at: Instant,
    asked: bool,
}

pub(crate) fn later_key(key: SessionKey) -> String {
    format!("later:{}", key.id())
}

/// A question a step found waiting for the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Waiting {
    version: u64,
    asked_at: Instant,
}

impl Waiting {
    pub(crate) fn of(record: Record) -> Option<Waiting> {
        let (question, version) = decode::<Question>(record).ok()?;
        Some(Waiting {
            version,
            asked_at: question.asked_at,
        })
    }

    /// The person is back: a question asked for before `now` is dropped
    /// (one asked for in this very step is not), if it is still the one
    /// the step read.
    pub(crate) fn drop_if_asked_before(&self, batch: &mut Batch, key: SessionKey, now: Instant) {
        if self.asked_at < now {
            let id = later_key(key);
            batch
                .check(&id, self.version)
                .delete(id)
                .unindex(LATER_DUE, key.id());
        }
    }
}

/// Adds facts to a batch, each marked with the dialogue `version` they
/// happened in.
pub(crate) fn record_into(batch: &mut Batch, version: &str, facts: &[Fact]) {
    for fact in facts {
        let fact = Fact {
            version: version.to_string(),
            ..fact.clone()
        };
        batch.append(FACTS, fact.at, encode(&fact));
    }
}

/// Forgets facts older than the longest period the figures show.
fn prune(batch: &mut Batch, now: Instant) {
    batch.cut(FACTS, now - i64::from(MAX_DAYS) * 24 * 3600);
}

/// Adds a next-day question to a batch, in place of an earlier one.
pub(crate) fn question_into(batch: &mut Batch, later: &Later, asked_at: Instant, asked: bool) {
    let key = SessionKey {
        chat: later.chat,
        user: later.user,
    };
    let question = Question {
        later: later.clone(),
        asked_at,
        asked,
    };
    let expires = kept_until(later.due_at, LATER_SECS);
    batch.put_until(later_key(key), encode(&question), Some(expires));
    if asked {
        batch.unindex(LATER_DUE, key.id());
    } else {
        batch.index(LATER_DUE, key.id(), later.due_at);
    }
}

/// Adds to a batch a question to ask the person again at `later.due_at`
/// whether their problem got solved, in place of an earlier one.
pub(crate) fn later_into(batch: &mut Batch, later: &Later) {
    question_into(batch, later, later.due_at - LATER_SECS, false);
}

impl Store {
    /// Forgets facts older than the longest period the figures show;
    /// returns how many went.
    pub async fn prune_facts(&self, now: Instant) -> Result<usize, StoreError> {
        let mut batch = Batch::new(now);
        prune(&mut batch, now);
        self.kernel().commit(batch).await
    }

    /// Records facts for the figures, as happening in the dialogue
    /// `version`.
    pub async fn record(&self, version: &str, facts: &[Fact]) -> Result<(), StoreError> {
        let mut batch = Batch::new(ANY_TIME);
        record_into(&mut batch, version, facts);
        if batch.is_empty() {
            return Ok(());
        }
        self.kernel().commit(batch).await.map(drop)
    }

    /// The facts recorded at or after `since`. One that cannot be read is
    /// left out, and said so in the log.
    pub async fn facts(&self, since: Instant) -> Result<Vec<Fact>, StoreError> {
        let values = self.kernel().read_log(FACTS, since).await?;
        Ok(values
            .iter()
            .filter_map(|v| match serde_json::from_str(v) {
                Ok(fact) => Some(fact),
                Err(e) => {
                    log::warn!("store: a fact could not be read and is left out: {e}");
                    None
                }
            })
            .collect())
    }

    /// Asks the person in `chat` again at `due_at` whether their problem
    /// at `node` got solved, unless they come back first; replaces an
    /// earlier question for them there.
    pub async fn ask_later(&self, later: &Later) -> Result<(), StoreError> {
        let mut batch = Batch::new(ANY_TIME);
        later_into(&mut batch, later);
        self.kernel().commit(batch).await.map(drop)
    }

    /// Next-day questions due at `now` and not yet asked, at most `limit`.
    pub async fn due_later(&self, now: Instant, limit: usize) -> Result<Vec<Later>, StoreError> {
        let members = self
            .kernel()
            .range(LATER_DUE, Span::upto(now, limit))
            .await?;
        let keys: Vec<String> = members.iter().map(|(m, _)| format!("later:{m}")).collect();
        let mut due = Vec::new();
        for record in self
            .kernel()
            .get(&keys, ANY_TIME)
            .await?
            .into_iter()
            .flatten()
        {
            match decode::<Question>(record) {
                Ok((q, _)) if !q.asked => due.push(q.later),
                Ok(_) => {}
                Err(e) => log::warn!("store: a next-day question could not be read: {e}"),
            }
        }
        due.sort_by_key(|l| (l.due_at, l.chat, l.user));
        Ok(due)
    }

    /// Marks a next-day question as asked, just before it is; false if it
    /// is gone or asked already (the person came back, or another pass
    /// took it), so it is asked at most once. An asked question stays
    /// until the person's next step (their answer) or a day after it was
    /// due, and keeps their session from closing meanwhile, so the answer
    /// finds the way they came.
    pub async fn take_later(&self, chat: i64, user: u64) -> Result<bool, StoreError> {
        let key = SessionKey { chat, user };
        let id = later_key(key);
        let taken = self
            .update(&id, ANY_TIME, |question: Option<Question>, batch| {
                let mut question = question.filter(|q| !q.asked)?;
                question.asked = true;
                let expires = kept_until(question.later.due_at, LATER_SECS);
                batch
                    .put_until(&id, encode(&question), Some(expires))
                    .unindex(LATER_DUE, key.id());
                Some(())
            })
            .await?;
        Ok(taken.is_some())
    }
}
