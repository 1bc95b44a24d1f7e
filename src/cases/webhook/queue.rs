//! Case events waiting for the webhook, as stored: queued with one write, claimed by lease while one is posted, removed once delivered (or given up), pushed later after a failed try.
//!
//! An event is the record `case_event:<id>`: its body as it is posted,
//! when it was queued, how many tries failed, and who is posting it until
//! when. The index `case_events` holds every queued event scored by when
//! it is next due: when it was queued, after a failed try the time of the
//! next, and while it is claimed the time its claim runs out — so an event
//! whose poster died is due again by itself once the claim lapses, and no
//! two processes sharing a store post one at once. A record expires a week
//! after it was queued, long after it is given up, so a queue left behind
//! when the webhook is no longer configured is forgotten.

use serde::{Deserialize, Serialize};

use crate::cases::events::Kind;
use crate::clock::Instant;
use crate::store::kernel::Span;
use crate::store::{Batch, Store, StoreError, decode, encode, kept_until};

const QUEUE: &str = "case_events";

/// How long a queued event is kept in any case: a week.
pub(crate) const KEPT_SECS: i64 = 7 * 24 * 3600;

fn event_key(id: &str) -> String {
    format!("case_event:{id}")
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Held {
    case: i64,
    /// The body's `type`.
    kind: String,
    /// The exact bytes posted (and signed) at every try.
    body: String,
    queued_at: Instant,
    /// Tries that failed so far.
    #[serde(default)]
    tries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claim: Option<Claim>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Claim {
    owner: String,
    until: Instant,
}

impl Held {
    /// Adds the event, due at `due`, to a batch.
    fn file_into(&self, batch: &mut Batch, id: &str, due: Instant) {
        let expires = Some(kept_until(self.queued_at, KEPT_SECS));
        batch
            .put_until(event_key(id), encode(self), expires)
            .index(QUEUE, id, due);
    }
}

/// A queued event as the courier reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Queued {
    pub(crate) id: String,
    pub(crate) case: i64,
    pub(crate) kind: String,
    pub(crate) body: String,
    pub(crate) queued_at: Instant,
    pub(crate) tries: u32,
    held: Held,
    version: u64,
}

/// What a look at the queue found due.
#[derive(Debug, Default)]
pub(crate) struct Due {
    /// Oldest first.
    pub(crate) events: Vec<Queued>,
    /// More were due than one look takes.
    pub(crate) more: bool,
    /// Events forgotten unsent: their records had expired.
    pub(crate) expired: usize,
}

impl Store {
    /// Queues an event, due at once: one write.
    pub(crate) async fn queue_case_event(
        &self,
        id: &str,
        case: i64,
        kind: Kind,
        body: &str,
        now: Instant,
    ) -> Result<(), StoreError> {
        let held = Held {
            case,
            kind: kind.name().to_string(),
            body: body.to_string(),
            queued_at: now,
            tries: 0,
            claim: None,
        };
        let mut batch = Batch::new(now);
        held.file_into(&mut batch, id, now);
        self.kernel().commit(batch).await.map(drop)
    }

    /// At most `limit` events due at `now`, oldest first (in the order
    /// they were queued); index members whose record expired are removed.
    pub(crate) async fn due_case_events(
        &self,
        now: Instant,
        limit: usize,
    ) -> Result<Due, StoreError> {
        let members = self.kernel().range(QUEUE, Span::upto(now, limit)).await?;
        let ids: Vec<String> = members.into_iter().map(|(id, _)| id).collect();
        let keys: Vec<String> = ids.iter().map(|id| event_key(id)).collect();
        let records = self.kernel().get(&keys, now).await?;
        let mut due = Due {
            more: ids.len() == limit,
            ..Due::default()
        };
        let mut gone = Batch::new(now);
        for (id, record) in ids.into_iter().zip(records) {
            let Some(record) = record else {
                gone.unindex(QUEUE, &id);
                due.expired += 1;
                continue;
            };
            let (held, version): (Held, u64) = decode(record)?;
            // Claimed by a process still posting it (the index was read
            // before the claim was written).
            if held.claim.as_ref().is_some_and(|c| c.until > now) {
                continue;
            }
            due.events.push(Queued {
                id,
                case: held.case,
                kind: held.kind.clone(),
                body: held.body.clone(),
                queued_at: held.queued_at,
                tries: held.tries,
                held,
                version,
            });
        }
        if !gone.is_empty() {
            self.kernel().commit(gone).await?;
        }
        // Ids begin with the time they were made.
        due.events.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(due)
    }

    /// Claims an event as read for `owner` until `until`, unless it
    /// changed since (another process claimed it); whether it is ours.
    pub(crate) async fn claim_case_event(
        &self,
        event: &Queued,
        owner: &str,
        now: Instant,
        until: Instant,
    ) -> Result<bool, StoreError> {
        let mut held = event.held.clone();
        held.claim = Some(Claim {
            owner: owner.to_string(),
            until,
        });
        let mut batch = Batch::new(now);
        batch.check(event_key(&event.id), event.version);
        held.file_into(&mut batch, &event.id, until);
        match self.kernel().commit(batch).await {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes an event: delivered, or given up.
    pub(crate) async fn remove_case_event(&self, id: &str, now: Instant) -> Result<(), StoreError> {
        let mut batch = Batch::new(now);
        batch.delete(event_key(id)).unindex(QUEUE, id);
        self.kernel().commit(batch).await.map(drop)
    }

    /// Gives an event `owner` claimed back after a failed try, due again
    /// at `next`, one more try counted. An event no longer claimed by
    /// `owner` (its claim lapsed and another took it) is left alone.
    pub(crate) async fn retry_case_event(
        &self,
        id: &str,
        owner: &str,
        now: Instant,
        next: Instant,
    ) -> Result<(), StoreError> {
        let key = event_key(id);
        let Some((mut held, version)) = self.read::<Held>(&key, now).await? else {
            return Ok(());
        };
        if held.claim.as_ref().is_none_or(|c| c.owner != owner) {
            return Ok(());
        }
        held.claim = None;
        held.tries += 1;
        let mut batch = Batch::new(now);
        batch.check(&key, version);
        held.file_into(&mut batch, id, next);
        match self.kernel().commit(batch).await {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// When the next queued event is due (or its claim runs out).
    pub(crate) async fn next_case_event(&self) -> Result<Option<Instant>, StoreError> {
        let first = self.kernel().range(QUEUE, Span::all(1)).await?;
        Ok(first.first().map(|(_, due)| *due))
    }

    /// How many events are queued, being posted included.
    pub async fn case_events_queued(&self) -> Result<usize, StoreError> {
        self.kernel().count(QUEUE).await
    }
}
