//! Cases handed to the support team: opened one at a time per person, taken, closed, and the messages on both sides that belong to each.
//!
//! A case is the record `case:<id>` with the messages linked to it; the
//! person's open case is `case_open:<user>`, a linked message
//! `case_msg:<chat>:<message>`, a forum topic's latest case
//! `case_topic:<topic>`. The index `cases_waiting` holds the open cases
//! nobody has taken, scored by when they were opened, for /metrics. A
//! closed case and what points to it are kept 30
//! days.

use serde::{Deserialize, Serialize};

use super::{CLOSED_RETENTION_SECS, Case, NewCase, Opened};
use crate::clock::Instant;
use crate::store::kernel::Span;
use crate::store::{ANY_TIME, Batch, RETRIES, Store, StoreError, encode, kept_until};

/// A case as stored.
#[derive(Serialize, Deserialize)]
struct Filed {
    case: Case,
    #[serde(default)]
    closed_at: Option<Instant>,
    /// The messages linked to it, (chat, message).
    #[serde(default)]
    links: Vec<(i64, i32)>,
}

impl Filed {
    /// When it is forgotten: 30 days after it was closed.
    fn expires(&self) -> Option<Instant> {
        self.closed_at
            .map(|at| kept_until(at, CLOSED_RETENTION_SECS))
    }

    /// Adds the case and what points to it to a batch.
    fn file_into(&self, batch: &mut Batch) {
        let expires = self.expires();
        let id = self.case.id.to_string();
        batch.put_until(case_key(self.case.id), encode(self), expires);
        for (chat, message) in &self.links {
            batch.put_until(message_key(*chat, *message), &id, expires);
        }
        if let Some(topic) = self.case.topic {
            batch.put_until(topic_key(topic), &id, expires);
        }
    }
}

/// Adds a case to a batch: the case, the person's open case while it is
/// open, and the messages and topic that point to it.
pub(crate) fn case_into(
    batch: &mut Batch,
    case: Case,
    closed_at: Option<Instant>,
    links: Vec<(i64, i32)>,
) {
    if !case.closed {
        batch.put(open_key(case.user), case.id.to_string());
        if case.taken_by.is_none() {
            batch.index(WAITING, case.id.to_string(), case.opened_at);
        }
    }
    Filed {
        case,
        closed_at,
        links,
    }
    .file_into(batch);
}

/// The open cases not taken yet, scored by when they were opened.
const WAITING: &str = "cases_waiting";

fn case_key(id: i64) -> String {
    format!("case:{id}")
}

fn open_key(user: u64) -> String {
    format!("case_open:{user}")
}

fn message_key(chat: i64, message: i32) -> String {
    format!("case_msg:{chat}:{message}")
}

fn topic_key(topic: i32) -> String {
    format!("case_topic:{topic}")
}

impl Store {
    /// The case with its version.
    async fn filed(&self, id: i64) -> Result<Option<(Filed, u64)>, StoreError> {
        self.read(&case_key(id), ANY_TIME).await
    }

    /// A case id a record holds.
    async fn case_id(&self, key: String) -> Result<Option<i64>, StoreError> {
        let got = self.kernel().get(&[key], ANY_TIME).await?;
        Ok(got[0].as_ref().and_then(|r| r.value.parse().ok()))
    }

    /// Reads a case, lets `change` alter it (or say `None`: nothing to
    /// do), and files it again unless it changed meanwhile; the case as
    /// filed.
    async fn change_case(
        &self,
        id: i64,
        now: Instant,
        change: impl Fn(&mut Filed, &mut Batch) -> Option<()>,
    ) -> Result<Option<Case>, StoreError> {
        let key = case_key(id);
        self.update(&key, now, |filed: Option<Filed>, batch| {
            let mut filed = filed?;
            change(&mut filed, batch)?;
            filed.file_into(batch);
            Some(filed.case)
        })
        .await
    }

    /// Opens a case for the person, unless they have an open one.
    pub async fn open_case(&self, new: &NewCase, now: Instant) -> Result<Opened, StoreError> {
        for _ in 0..RETRIES {
            let open = open_key(new.user);
            let got = self
                .kernel()
                .get(std::slice::from_ref(&open), ANY_TIME)
                .await?;
            let version = got[0].as_ref().map_or(0, |r| r.version);
            if let Some(id) = got[0].as_ref().and_then(|r| r.value.parse().ok())
                && let Some((filed, _)) = self.filed(id).await?
                && !filed.case.closed
            {
                return Ok(Opened::Existing(filed.case));
            }
            let id = self.kernel().next_id("case").await?;
            let filed = Filed {
                case: Case {
                    id,
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
                    in_hours: new.in_hours,
                    first_answer_at: None,
                },
                closed_at: None,
                links: Vec::new(),
            };
            let mut batch = Batch::new(ANY_TIME);
            batch.check(&open, version).put(&open, id.to_string());
            batch.index(WAITING, id.to_string(), now);
            filed.file_into(&mut batch);
            match self.kernel().commit(batch).await {
                Ok(_) => return Ok(Opened::New(filed.case)),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }

    pub async fn case(&self, id: i64) -> Result<Option<Case>, StoreError> {
        Ok(self.filed(id).await?.map(|(filed, _)| filed.case))
    }

    /// The person's open case, if any.
    pub async fn open_case_of(&self, user: u64) -> Result<Option<Case>, StoreError> {
        let Some(id) = self.case_id(open_key(user)).await? else {
            return Ok(None);
        };
        Ok(self.case(id).await?.filter(|case| !case.closed))
    }

    /// Records where the case was posted in the staff chat.
    pub async fn set_case_post(
        &self,
        id: i64,
        message: i32,
        topic: Option<i32>,
    ) -> Result<(), StoreError> {
        self.change_case(id, ANY_TIME, |filed, _| {
            filed.case.post = Some(message);
            filed.case.topic = topic;
            Some(())
        })
        .await
        .map(drop)
    }

    /// Links a message (in the staff chat or the person's chat) to a case,
    /// so a reply to it reaches the other side.
    pub async fn link_case_message(
        &self,
        chat: i64,
        message: i32,
        case: i64,
    ) -> Result<(), StoreError> {
        self.change_case(case, ANY_TIME, |filed, _| {
            if !filed.links.contains(&(chat, message)) {
                filed.links.push((chat, message));
            }
            Some(())
        })
        .await
        .map(drop)
    }

    /// The case a message belongs to.
    pub async fn case_of_message(
        &self,
        chat: i64,
        message: i32,
    ) -> Result<Option<i64>, StoreError> {
        self.case_id(message_key(chat, message)).await
    }

    /// The latest case whose forum topic `topic` is, open or closed.
    pub async fn case_of_topic(&self, topic: i32) -> Result<Option<i64>, StoreError> {
        self.case_id(topic_key(topic)).await
    }

    /// Marks an open case nobody has taken as taken by `by`; the case, if
    /// that happened.
    pub async fn take_case(&self, id: i64, by: &str) -> Result<Option<Case>, StoreError> {
        self.change_case(id, ANY_TIME, |filed, batch| {
            if filed.case.closed || filed.case.taken_by.is_some() {
                return None;
            }
            filed.case.taken_by = Some(by.to_string());
            batch.unindex(WAITING, id.to_string());
            Some(())
        })
        .await
    }

    /// Notes that staff answered the person at `now`, the first time only;
    /// the case, if this was its first answer.
    pub async fn first_answer(&self, id: i64, now: Instant) -> Result<Option<Case>, StoreError> {
        self.change_case(id, ANY_TIME, |filed, _| {
            if filed.case.first_answer_at.is_some() {
                return None;
            }
            filed.case.first_answer_at = Some(now);
            Some(())
        })
        .await
    }

    /// Closes a case; the case, if it was open until now.
    pub async fn close_case(&self, id: i64, now: Instant) -> Result<Option<Case>, StoreError> {
        let user = match self.case(id).await? {
            Some(case) => case.user,
            None => return Ok(None),
        };
        let open = open_key(user);
        let still_open = self.case_id(open.clone()).await? == Some(id);
        self.change_case(id, ANY_TIME, |filed, batch| {
            if filed.case.closed {
                return None;
            }
            filed.case.closed = true;
            filed.closed_at = Some(now);
            batch.unindex(WAITING, id.to_string());
            if still_open {
                batch.delete(&open);
            }
            Some(())
        })
        .await
    }

    /// The open cases nobody has taken yet, for /metrics: how many, and
    /// when the oldest was opened.
    pub async fn cases_waiting(&self) -> Result<(usize, Option<Instant>), StoreError> {
        let count = self.kernel().count(WAITING).await?;
        let oldest = self.kernel().range(WAITING, Span::all(1)).await?;
        Ok((count, oldest.first().map(|(_, opened)| *opened)))
    }
}
