//! Sessions, with the language each person chose and the private chats they opened: a step's read and its write, one round trip each.
//!
//! A session is the record `s:<chat>:<user>` holding the engine's
//! `Session` and its last activity; the index `sessions` ranks
//! `<chat>:<user>` by that activity, for the idle scan. A person's
//! language is `lang:<user>`, a private chat `pc:<user>` (kept a year
//! after they last wrote there).

use serde::{Deserialize, Serialize};

use super::kernel::{Batch, Record, Span};
use super::{ANY_TIME, RETRIES, SessionKey, Store, StoreError, decode, encode, inbox, kept_until};
use crate::clock::Instant;
use crate::engine::Session;
use crate::lang::Lang;

/// The index of sessions by their last activity.
pub(super) const BY_ACTIVITY: &str = "sessions";

/// How long a private chat is remembered after the person last wrote in
/// it: a year. Forgotten, the person is offered a link to the private chat
/// instead of being written to there, as before they first opened it.
pub const PRIVATE_CHAT_RETENTION_SECS: i64 = 365 * 24 * 3600;

fn session_key(key: SessionKey) -> String {
    format!("s:{}", key.id())
}

fn lang_key(user: u64) -> String {
    format!("lang:{user}")
}

fn private_key(user: u64) -> String {
    format!("pc:{user}")
}

/// A session as stored.
#[derive(Serialize, Deserialize)]
struct Stored {
    state: Session,
    at: Instant,
    /// The activity the index of sessions holds for it, which may lag
    /// `at` by up to `INDEX_EVERY_SECS` (the idle scan looks at `at`).
    #[serde(default)]
    indexed: Instant,
}

/// How far a session's place in the index of sessions may lag its last
/// activity: a person's steps a few minutes apart write it once, not with
/// every step. The idle scan passes over a session it finds there early.
const INDEX_EVERY_SECS: i64 = 600;

/// What a step read: the session, its version, and what its write must
/// know of the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    pub session: Option<Session>,
    /// The version every write changes: 0 when none is stored.
    pub version: u64,
    /// The records read with it, as `load_step_with` was asked.
    pub with: Vec<Option<Record>>,
    /// When the person was last seen in their private chat, if this is
    /// it and they were.
    seen: Option<Instant>,
    /// The activity the index of sessions holds for the stored session.
    indexed: Option<Instant>,
}

/// How stale the private chat's last sighting may grow before a step
/// writes it again: a day, against a year's retention.
const SEEN_EVERY_SECS: i64 = 24 * 3600;

/// A session that has been idle long enough to be closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleSession {
    pub key: SessionKey,
    /// Its last activity, checked again when it is closed.
    pub updated_at: Instant,
    pub lang: Lang,
    /// The person's latest menu message in that chat, to be edited.
    pub menu: Option<i32>,
}

/// What a session write carries besides the session.
pub struct Write<'a> {
    /// Also keep the session's language as the person's, for their
    /// future sessions.
    pub remember_lang: bool,
    pub now: Instant,
    /// The inbox entry the step answers, with its replies.
    pub answer: Option<&'a inbox::Answer>,
    /// What else the step changes, written with the session or not at
    /// all (its checks too); its own time is not used.
    pub also: Batch,
}

/// Adds a session active at `at` to a batch, kept `ttl` after.
pub(crate) fn session_into(
    batch: &mut Batch,
    key: SessionKey,
    session: Session,
    at: Instant,
    ttl: i64,
) {
    let stored = Stored {
        state: session,
        at,
        indexed: at,
    };
    batch
        .put_until(session_key(key), encode(&stored), Some(at + ttl))
        .index(BY_ACTIVITY, key.id(), at);
}

/// Adds a person's language to a batch.
pub(crate) fn lang_into(batch: &mut Batch, user: u64, lang: Lang) {
    batch.put(lang_key(user), encode(&lang));
}

/// Adds a private chat the person last wrote in at `at` to a batch.
pub(crate) fn private_into(batch: &mut Batch, user: u64, at: Instant) {
    batch.put_until(
        private_key(user),
        at.to_string(),
        Some(kept_until(at, PRIVATE_CHAT_RETENTION_SECS)),
    );
}

/// What keeps an idle session open, named by the feature that keeps it
/// beside the session: a record, or an index with members.
#[derive(Debug, Clone, Copy)]
pub enum Keep {
    Record(fn(SessionKey) -> String),
    Index(fn(SessionKey) -> String),
}

/// A session with no position and no history holds nothing worth a row.
fn is_blank(session: &Session) -> bool {
    session.node.is_none() && session.history.is_empty()
}

impl Store {
    pub async fn load(&self, key: SessionKey) -> Result<Option<Session>, StoreError> {
        Ok(self.load_step(key).await?.session)
    }

    /// What a step reads, in one round trip: the session with its
    /// version.
    pub async fn load_step(&self, key: SessionKey) -> Result<Loaded, StoreError> {
        self.load_step_with(key, &[]).await
    }

    /// `load_step`, with the records under `with` read in the same round
    /// trip (what a feature keeps beside the session).
    pub async fn load_step_with(
        &self,
        key: SessionKey,
        with: &[String],
    ) -> Result<Loaded, StoreError> {
        let mut keys = vec![session_key(key)];
        if key.is_private() {
            keys.push(private_key(key.user));
        }
        keys.extend(with.iter().cloned());
        let mut got = self.kernel.get(&keys, ANY_TIME).await?.into_iter();
        let mut indexed = None;
        let (session, version) = match got.next().flatten() {
            None => (None, 0),
            Some(record) => {
                let version = record.version;
                match decode::<Stored>(record) {
                    Ok((stored, _)) => {
                        indexed = Some(stored.indexed);
                        (Some(stored.state), version)
                    }
                    Err(e) => {
                        // Reported once, then dropped: the person starts
                        // afresh instead of meeting the error each time.
                        let mut batch = Batch::new(ANY_TIME);
                        batch
                            .check(&keys[0], version)
                            .delete(&keys[0])
                            .unindex(BY_ACTIVITY, key.id());
                        let _ = self.kernel.commit(batch).await;
                        return Err(e);
                    }
                }
            }
        };
        let seen = match key.is_private() {
            true => got.next().flatten().and_then(|r| r.value.parse().ok()),
            false => None,
        };
        Ok(Loaded {
            session,
            version,
            with: got.collect(),
            seen,
            indexed,
        })
    }

    /// The session and its version, which every write changes: 0 when
    /// none is stored.
    pub async fn load_versioned(
        &self,
        key: SessionKey,
    ) -> Result<(Option<Session>, u64), StoreError> {
        let loaded = self.load_step(key).await?;
        Ok((loaded.session, loaded.version))
    }

    /// Writes the session (a blank one deletes it) as active at `now`
    /// and, with `remember_lang`, the person's language for their future
    /// sessions — all or nothing. A session in a private chat also records
    /// that the person has started the bot there.
    pub async fn save(
        &self,
        key: SessionKey,
        session: &Session,
        remember_lang: bool,
        now: Instant,
    ) -> Result<(), StoreError> {
        self.save_answering(key, session, remember_lang, now, None, None)
            .await
    }

    /// `save`, with the replies of the inbox entry the step answers, and,
    /// with `expected`, only if the stored session still has that version
    /// (else `Conflict`). Two round trips: a step reads with `load_step`
    /// and writes with `save_step`, one each.
    pub async fn save_answering(
        &self,
        key: SessionKey,
        session: &Session,
        remember_lang: bool,
        now: Instant,
        answer: Option<&inbox::Answer>,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        for _ in 0..RETRIES {
            let loaded = self.load_step(key).await?;
            if expected.is_some_and(|v| v != loaded.version) {
                return Err(StoreError::Conflict);
            }
            let write = Write {
                remember_lang,
                now,
                answer,
                also: Batch::default(),
            };
            match self.save_step(key, session, write, &loaded, true).await {
                Err(StoreError::Conflict) if expected.is_none() => continue,
                done => return done,
            }
        }
        Err(StoreError::Conflict)
    }

    /// `save` of a step that read `loaded`, in one round trip, and in the
    /// same write, when the step answers an entry of the inbox, the
    /// replies it gave, so that after a crash the entry is answered with
    /// them instead of being taken again. With `compare`, only if the
    /// stored session's version is still the one read (compare and set):
    /// otherwise nothing is written and the call fails with `Conflict`,
    /// and the step is taken again on what is stored now.
    pub async fn save_step(
        &self,
        key: SessionKey,
        session: &Session,
        write: Write<'_>,
        loaded: &Loaded,
        compare: bool,
    ) -> Result<(), StoreError> {
        let now = write.now;
        // The step's other changes first, taken as they are (not copied).
        let mut batch = write.also;
        batch.now = now;
        let id = session_key(key);
        if compare {
            batch.check(&id, loaded.version);
        }
        if let Some(answer) = write.answer {
            inbox::answer_into(&mut batch, answer, now);
        }
        if is_blank(session) {
            batch.delete(&id).unindex(BY_ACTIVITY, key.id());
        } else {
            match loaded.indexed.filter(|at| now - at < INDEX_EVERY_SECS) {
                // Indexed a moment ago: the record alone changes.
                Some(indexed) => {
                    let stored = Stored {
                        state: session.clone(),
                        at: now,
                        indexed,
                    };
                    batch.put_until(&id, encode(&stored), Some(now + self.session_ttl));
                }
                None => session_into(&mut batch, key, session.clone(), now, self.session_ttl),
            }
        }
        if write.remember_lang {
            lang_into(&mut batch, key.user, session.lang);
        }
        if key.is_private() && loaded.seen.is_none_or(|seen| seen < now - SEEN_EVERY_SECS) {
            private_into(&mut batch, key.user, now);
        }
        self.kernel.commit(batch).await.map(drop)
    }

    /// The language a person chose with /lang, in any chat.
    pub async fn person_lang(&self, user: u64) -> Result<Option<Lang>, StoreError> {
        Ok(self
            .read(&lang_key(user), ANY_TIME)
            .await?
            .map(|(lang, _)| lang))
    }

    /// Whether the person has a private chat with the bot that it may use.
    pub async fn has_private_chat(&self, user: u64) -> Result<bool, StoreError> {
        let got = self.kernel.get(&[private_key(user)], ANY_TIME).await?;
        Ok(got[0].is_some())
    }

    /// Forgets the private chat (the person blocked the bot).
    pub async fn forget_private_chat(&self, user: u64) -> Result<(), StoreError> {
        let mut batch = Batch::new(ANY_TIME);
        batch.delete(private_key(user));
        self.kernel.commit(batch).await.map(drop)
    }

    /// Sessions last active at or before `before` that nothing in `keeps`
    /// holds open, oldest first, at most `limit`. Those passed over are
    /// looked past, a page at a time.
    pub async fn idle_sessions(
        &self,
        before: Instant,
        limit: usize,
        keeps: &[Keep],
    ) -> Result<Vec<IdleSession>, StoreError> {
        let mut idle = Vec::new();
        let page = limit.max(1) * 2;
        let mut offset = 0;
        while idle.len() < limit {
            let span = Span {
                offset,
                ..Span::upto(before, page)
            };
            let members = self.kernel.range(BY_ACTIVITY, span).await?;
            let keys: Vec<SessionKey> = members
                .iter()
                .filter_map(|(m, _)| SessionKey::parse(m))
                .collect();
            let records: Vec<_> = keeps
                .iter()
                .filter_map(|k| match k {
                    Keep::Record(name) => Some(name),
                    Keep::Index(_) => None,
                })
                .collect();
            let per_key = 1 + records.len();
            let mut wanted = Vec::with_capacity(keys.len() * per_key);
            for key in &keys {
                wanted.push(session_key(*key));
                wanted.extend(records.iter().map(|name| name(*key)));
            }
            let got = self.kernel.get(&wanted, ANY_TIME).await?;
            let mut stale = Batch::new(ANY_TIME);
            for (key, rows) in keys.iter().zip(got.chunks(per_key)) {
                let [session, held @ ..] = rows else {
                    continue;
                };
                let Some(Ok((stored, _))) = session.clone().map(decode::<Stored>) else {
                    // Expired, or removed without its index member.
                    if session.is_none() {
                        stale.unindex(BY_ACTIVITY, key.id());
                    }
                    continue;
                };
                if held.iter().any(Option::is_some) || stored.at > before || idle.len() >= limit {
                    continue;
                }
                if self.holds_index(*key, keeps).await? {
                    continue;
                }
                idle.push(IdleSession {
                    key: *key,
                    updated_at: stored.at,
                    lang: stored.state.lang,
                    menu: self.latest_menu(*key).await?,
                });
            }
            if !stale.is_empty() {
                self.kernel.commit(stale).await?;
            }
            if members.len() < page {
                break;
            }
            offset += page;
        }
        Ok(idle)
    }

    /// Whether an index in `keeps` has members for the session.
    async fn holds_index(&self, key: SessionKey, keeps: &[Keep]) -> Result<bool, StoreError> {
        for keep in keeps {
            if let Keep::Index(name) = keep
                && self.kernel.count(&name(key)).await? > 0
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Deletes an idle session and its menu records, unless it was active
    /// after `updated_at`; returns whether it was deleted.
    pub async fn expire_session(
        &self,
        key: SessionKey,
        updated_at: Instant,
    ) -> Result<bool, StoreError> {
        let id = session_key(key);
        let Some((stored, version)) = self.read::<Stored>(&id, ANY_TIME).await? else {
            return Ok(false);
        };
        if stored.at != updated_at {
            return Ok(false);
        }
        let mut batch = Batch::new(ANY_TIME);
        batch
            .check(&id, version)
            .delete(&id)
            .unindex(BY_ACTIVITY, key.id());
        self.forget_menus_into(&mut batch, key).await?;
        match self.kernel.commit(batch).await {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
