//! Cases handed to the support team: opened one at a time per person, taken, closed, and the messages on both sides that belong to each.
//!
//! A case is the record `case:<id>` with the messages linked to it; the
//! person's open case is `case_open:<user>`, a linked message
//! `case_msg:<chat>:<message>`, a forum topic's latest case
//! `case_topic:<topic>`, the person's latest closed case (which their
//! next message may reopen) `case_last:<user>`. The index `cases_waiting`
//! holds the open cases nobody has taken, scored by when they were
//! opened, for /metrics; `cases_active` holds every open case, for the
//! nudges. A closed case and what points to it are kept 30 days.

use serde::{Deserialize, Serialize};

use super::{CLOSED_RETENTION_SECS, Case, NewCase, Opened, Side};
use crate::callback::RATINGS;
use crate::clock::Instant;
use crate::store::kernel::Span;
use crate::store::{ANY_TIME, Batch, RETRIES, Store, StoreError, decode, encode, kept_until};

/// A case as stored.
#[derive(Serialize, Deserialize)]
struct Filed {
    case: Case,
    #[serde(default)]
    closed_at: Option<Instant>,
    /// The messages linked to it, (chat, message), whose replies reach
    /// the person: the case's message, the person's words, screenshots.
    #[serde(default)]
    links: Vec<(i64, i32)>,
    /// The bot's notes about it in the staff chat (pings, what happened):
    /// a command replying to one is about the case, words are not relayed.
    #[serde(default)]
    notes: Vec<(i64, i32)>,
}

/// Messages linked to a case, (chat, message).
pub(crate) type Links = Vec<(i64, i32)>;

/// What a message in the staff chat is to a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linked {
    /// A reply to it reaches the person.
    Reaches(i64),
    /// One of the bot's notes about the case: a reply to it stays with
    /// the staff.
    Note(i64),
}

impl Linked {
    pub fn case(self) -> i64 {
        match self {
            Linked::Reaches(case) | Linked::Note(case) => case,
        }
    }
}

/// How a note's link is stored: the case's id and this mark.
const NOTE_MARK: &str = " note";

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
        let note = format!("{id}{NOTE_MARK}");
        for (chat, message) in &self.notes {
            batch.put_until(message_key(*chat, *message), &note, expires);
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
    (links, notes): (Links, Links),
) {
    if !case.closed {
        batch.put(open_key(case.user), case.id.to_string());
        batch.index(ACTIVE, case.id.to_string(), case.opened_at);
        if case.taken_by.is_none() {
            batch.index(WAITING, case.id.to_string(), case.opened_at);
        }
    }
    Filed {
        case,
        closed_at,
        links,
        notes,
    }
    .file_into(batch);
}

/// The open cases not taken yet, scored by when they were opened.
const WAITING: &str = "cases_waiting";

/// Every open case, scored by when it was opened.
const ACTIVE: &str = "cases_active";

/// At most this many open cases are looked at for nudges in one pass.
pub(crate) const ACTIVE_SHOWN: usize = 500;

/// A person's case, as their words find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonCase {
    Open(Case),
    /// Their latest case, closed at that time.
    Closed(Case, Instant),
    None,
}

/// What rating a case found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rated {
    /// Recorded: the case as it now is.
    Now(Box<Case>),
    /// It was rated before.
    Already,
    /// Not this person's case, not closed, gone, or not a rating.
    Refused,
}

fn last_key(user: u64) -> String {
    format!("case_last:{user}")
}

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
        Ok(got[0].as_ref().and_then(|r| {
            let id = r.value.strip_suffix(NOTE_MARK).unwrap_or(&r.value);
            id.parse().ok()
        }))
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
                    desk: super::Desk {
                        person_at: Some(now),
                        ..Default::default()
                    },
                },
                closed_at: None,
                links: Vec::new(),
                notes: Vec::new(),
            };
            let mut batch = Batch::new(ANY_TIME);
            batch.check(&open, version).put(&open, id.to_string());
            batch.index(WAITING, id.to_string(), now);
            batch.index(ACTIVE, id.to_string(), now);
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
        self.link_case(chat, message, case, false).await
    }

    /// Links one of the bot's notes in the staff chat to a case: a command
    /// replying to it is about the case, words replying to it stay with
    /// the staff.
    pub async fn link_case_note(
        &self,
        chat: i64,
        message: i32,
        case: i64,
    ) -> Result<(), StoreError> {
        self.link_case(chat, message, case, true).await
    }

    async fn link_case(
        &self,
        chat: i64,
        message: i32,
        case: i64,
        note: bool,
    ) -> Result<(), StoreError> {
        self.change_case(case, ANY_TIME, |filed, _| {
            let links = if note {
                &mut filed.notes
            } else {
                &mut filed.links
            };
            if !links.contains(&(chat, message)) {
                links.push((chat, message));
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

    /// The case a message belongs to, and whether a reply to it reaches
    /// the person.
    pub async fn case_link(&self, chat: i64, message: i32) -> Result<Option<Linked>, StoreError> {
        let got = self
            .kernel()
            .get(&[message_key(chat, message)], ANY_TIME)
            .await?;
        Ok(got[0]
            .as_ref()
            .and_then(|r| match r.value.strip_suffix(NOTE_MARK) {
                Some(id) => id.parse().ok().map(Linked::Note),
                None => r.value.parse().ok().map(Linked::Reaches),
            }))
    }

    /// The latest case whose forum topic `topic` is, open or closed.
    pub async fn case_of_topic(&self, topic: i32) -> Result<Option<i64>, StoreError> {
        self.case_id(topic_key(topic)).await
    }

    /// Marks an open case nobody has taken as taken by `by`; the case, if
    /// that happened.
    pub async fn take_case(
        &self,
        id: i64,
        by: &str,
        by_id: u64,
        now: Instant,
    ) -> Result<Option<Case>, StoreError> {
        self.change_case(id, ANY_TIME, |filed, batch| {
            if filed.case.closed || filed.case.taken_by.is_some() {
                return None;
            }
            filed.case.taken_by = Some(by.to_string());
            filed.case.desk.taken_by_id = Some(by_id);
            filed.case.desk.taken_at = Some(now);
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
            batch.unindex(ACTIVE, id.to_string());
            if still_open {
                batch.delete(&open);
            }
            batch.put_until(last_key(user), id.to_string(), filed.expires());
            Some(())
        })
        .await
    }

    /// The person's open case, or else their latest closed one with when
    /// it closed (while it is kept): both pointers read in one round trip,
    /// so a person with neither costs one read.
    pub async fn person_case(&self, user: u64) -> Result<PersonCase, StoreError> {
        let keys = [open_key(user), last_key(user)];
        let got = self.kernel().get(&keys, ANY_TIME).await?;
        let id = |at: usize| got[at].as_ref().and_then(|r| r.value.parse::<i64>().ok());
        if let Some(id) = id(0)
            && let Some(case) = self.case(id).await?.filter(|case| !case.closed)
        {
            return Ok(PersonCase::Open(case));
        }
        let Some(id) = id(1) else {
            return Ok(PersonCase::None);
        };
        Ok(match self.filed(id).await? {
            Some((filed, _)) if filed.case.closed => match filed.closed_at {
                Some(at) => PersonCase::Closed(filed.case, at),
                None => PersonCase::None,
            },
            _ => PersonCase::None,
        })
    }

    /// Opens a closed case again for its person, who wrote at `now`,
    /// unless they have another case open meanwhile; the case, if it was
    /// reopened.
    pub async fn reopen_case(&self, id: i64, now: Instant) -> Result<Option<Case>, StoreError> {
        let Some(case) = self.case(id).await? else {
            return Ok(None);
        };
        let open = open_key(case.user);
        for _ in 0..RETRIES {
            let got = self
                .kernel()
                .get(std::slice::from_ref(&open), ANY_TIME)
                .await?;
            if got[0].is_some() {
                return Ok(None);
            }
            let Some((mut filed, version)) = self.filed(id).await? else {
                return Ok(None);
            };
            if !filed.case.closed {
                return Ok(None);
            }
            let desk = &mut filed.case.desk;
            desk.reopened += 1;
            desk.person_at = Some(now);
            desk.awaiting_person = false;
            desk.nudged = false;
            desk.idle_nudged = None;
            filed.case.closed = false;
            filed.closed_at = None;
            let mut batch = Batch::new(ANY_TIME);
            batch.check(&open, 0).check(case_key(id), version);
            batch.delete(last_key(filed.case.user));
            let Filed {
                case, links, notes, ..
            } = filed;
            case_into(&mut batch, case.clone(), None, (links, notes));
            match self.kernel().commit(batch).await {
                Ok(_) => return Ok(Some(case)),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }

    /// Notes that one side wrote at `now`: the person's words leave the
    /// case waiting for staff, a staff answer leaves it waiting for the
    /// person. The case as it now is.
    pub async fn case_written(
        &self,
        id: i64,
        side: Side,
        now: Instant,
    ) -> Result<Option<Case>, StoreError> {
        self.change_case(id, ANY_TIME, |filed, _| {
            if filed.case.closed {
                return None;
            }
            let desk = &mut filed.case.desk;
            match side {
                Side::Person => {
                    desk.person_at = Some(now);
                    desk.awaiting_person = false;
                }
                Side::Staff => {
                    desk.staff_at = Some(now);
                    desk.awaiting_person = true;
                }
            }
            Some(())
        })
        .await
    }

    /// Records the person's rating of their closed case, once.
    pub async fn rate_case(&self, id: i64, user: u64, stars: u8) -> Result<Rated, StoreError> {
        if !RATINGS.contains(&stars) {
            return Ok(Rated::Refused);
        }
        let before = match self.case(id).await? {
            Some(case) if case.user == user && case.closed => case,
            _ => return Ok(Rated::Refused),
        };
        if before.desk.rating.is_some() {
            return Ok(Rated::Already);
        }
        let rated = self
            .change_case(id, ANY_TIME, |filed, _| {
                if !filed.case.closed || filed.case.desk.rating.is_some() {
                    return None;
                }
                filed.case.desk.rating = Some(stars);
                Some(())
            })
            .await?;
        Ok(rated.map_or(Rated::Already, |case| Rated::Now(Box::new(case))))
    }

    /// Marks a nudge about an open case as sent: `idle` names the
    /// person's message an idle case was pinged about, else it is the
    /// ping about a case nobody answered. Whether this call marked it, so
    /// of several instances one pings.
    pub async fn mark_nudged(&self, id: i64, idle: Option<Instant>) -> Result<bool, StoreError> {
        let marked = self
            .change_case(id, ANY_TIME, |filed, _| {
                let desk = &mut filed.case.desk;
                if filed.case.closed {
                    return None;
                }
                // Still due as it was read: nobody answered or took it
                // meanwhile, or the person still waits on whoever took it.
                let taken = filed.case.taken_by.is_some();
                match idle {
                    Some(at) if desk.idle_nudged != Some(at) && taken && !desk.awaiting_person => {
                        desk.idle_nudged = Some(at);
                    }
                    None if !desk.nudged && !taken && desk.staff_at.is_none() => desk.nudged = true,
                    _ => return None,
                }
                Some(())
            })
            .await?;
        Ok(marked.is_some())
    }

    /// The open cases, oldest first, at most `ACTIVE_SHOWN`: the index,
    /// then every case in one read.
    pub async fn active_cases(&self) -> Result<Vec<Case>, StoreError> {
        let ids = self.kernel().range(ACTIVE, Span::all(ACTIVE_SHOWN)).await?;
        let keys: Vec<String> = ids
            .iter()
            .filter_map(|(id, _)| id.parse().ok().map(case_key))
            .collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut cases = Vec::with_capacity(keys.len());
        for record in self
            .kernel()
            .get(&keys, ANY_TIME)
            .await?
            .into_iter()
            .flatten()
        {
            let (filed, _): (Filed, u64) = decode(record)?;
            if !filed.case.closed {
                cases.push(filed.case);
            }
        }
        Ok(cases)
    }

    /// The open cases nobody has taken yet, for /metrics: how many, and
    /// when the oldest was opened.
    pub async fn cases_waiting(&self) -> Result<(usize, Option<Instant>), StoreError> {
        let count = self.kernel().count(WAITING).await?;
        let oldest = self.kernel().range(WAITING, Span::all(1)).await?;
        Ok((count, oldest.first().map(|(_, opened)| *opened)))
    }
}
