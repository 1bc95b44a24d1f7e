//! Screenshots a person sent in an open case, kept until they say whether the support team may see them.
//!
//! The case's waiting screenshots are one record, `case_photos:<case>`:
//! each with its number (drawn from one sequence, so a number is never
//! used twice and an old prompt's button can never pick a newer
//! screenshot), the person, Telegram's file id and the caption, already
//! redacted. Taking one out is a checked write, so two presses of one
//! prompt take it once. A screenshot waits a day at most; closing the
//! case forgets its screenshots at once.

use serde::{Deserialize, Serialize};

use crate::clock::Instant;
use crate::store::{ANY_TIME, Batch, Store, StoreError, encode, kept_until};

/// How long a screenshot waits for the person's answer.
pub(crate) const PENDING_SECS: i64 = 24 * 3600;

/// The most screenshots of one case that wait for an answer at once.
pub(crate) const MOST_PENDING: usize = 10;

/// A screenshot waiting for the person's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// Its number, as its prompt's buttons name it.
    pub id: i64,
    /// Who sent it: only they may answer for it.
    pub user: u64,
    /// Telegram's id of the picture, to send it on without downloading it.
    pub file_id: String,
    /// The caption as the staff would read it: numbers shaped like a
    /// code, a phone or an ID number already hidden.
    pub caption: Option<String>,
    /// When it was sent.
    pub at: Instant,
}

impl Pending {
    /// Whether it still waits at `now`.
    fn waits(&self, now: Instant) -> bool {
        now < kept_until(self.at, PENDING_SECS)
    }
}

/// What keeping a screenshot came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// It waits under this number.
    Waiting(i64),
    /// `MOST_PENDING` wait already: it is not kept.
    Full,
}

/// A case's waiting screenshots, as stored.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Waiting {
    photos: Vec<Pending>,
}

impl Waiting {
    /// Files what still waits at `now` (and nothing when none does), to
    /// expire with the last of them.
    fn file_into(mut self, key: &str, now: Instant, batch: &mut Batch) {
        self.photos.retain(|p| p.waits(now));
        match self.photos.iter().map(|p| p.at).max() {
            Some(latest) => {
                batch.put_until(key, encode(&self), Some(kept_until(latest, PENDING_SECS)));
            }
            None => {
                batch.delete(key);
            }
        }
    }
}

fn photos_key(case: i64) -> String {
    format!("case_photos:{case}")
}

impl Store {
    /// Keeps a screenshot of `user`'s in the case `case` until they answer
    /// for it, unless `MOST_PENDING` wait already.
    pub async fn keep_photo(
        &self,
        case: i64,
        user: u64,
        file_id: &str,
        caption: Option<&str>,
        now: Instant,
    ) -> Result<Kept, StoreError> {
        let id = self.kernel().next_id("case_photo").await?;
        let key = photos_key(case);
        let kept = self
            .update(&key, now, |waiting: Option<Waiting>, batch| {
                let mut waiting = waiting.unwrap_or_default();
                waiting.photos.retain(|p| p.waits(now));
                if waiting.photos.len() >= MOST_PENDING {
                    return None;
                }
                waiting.photos.push(Pending {
                    id,
                    user,
                    file_id: file_id.to_string(),
                    caption: caption.map(str::to_string),
                    at: now,
                });
                waiting.file_into(&key, now, batch);
                Some(Kept::Waiting(id))
            })
            .await?;
        Ok(kept.unwrap_or(Kept::Full))
    }

    /// Takes the screenshot `photo` of the case out of waiting, for
    /// sending or discarding: the screenshot, if it still waited and is
    /// `user`'s. Only one of any number of callers gets it.
    pub async fn take_photo(
        &self,
        case: i64,
        photo: i64,
        user: u64,
        now: Instant,
    ) -> Result<Option<Pending>, StoreError> {
        let key = photos_key(case);
        self.update(&key, now, |waiting: Option<Waiting>, batch| {
            let mut waiting = waiting?;
            let at = waiting
                .photos
                .iter()
                .position(|p| p.id == photo && p.user == user && p.waits(now))?;
            let taken = waiting.photos.remove(at);
            waiting.file_into(&key, now, batch);
            Some(taken)
        })
        .await
    }

    /// Puts a screenshot taken out back to wait (it could not be sent),
    /// with the time it was first sent: it waits no longer than it would
    /// have.
    pub async fn put_back_photo(
        &self,
        case: i64,
        photo: Pending,
        now: Instant,
    ) -> Result<(), StoreError> {
        let key = photos_key(case);
        self.update(&key, now, |waiting: Option<Waiting>, batch| {
            let mut waiting = waiting.unwrap_or_default();
            if !waiting.photos.iter().any(|p| p.id == photo.id) {
                waiting.photos.push(photo.clone());
            }
            waiting.file_into(&key, now, batch);
            Some(())
        })
        .await
        .map(drop)
    }

    /// Forgets every screenshot of a case still waiting: it closed.
    pub async fn forget_case_photos(&self, case: i64) -> Result<(), StoreError> {
        let mut batch = Batch::new(ANY_TIME);
        batch.delete(photos_key(case));
        self.kernel().commit(batch).await.map(drop)
    }

    /// The screenshots of a case still waiting at `now`, oldest first.
    pub async fn case_photos(&self, case: i64, now: Instant) -> Result<Vec<Pending>, StoreError> {
        let waiting: Option<(Waiting, u64)> = self.read(&photos_key(case), now).await?;
        let mut photos = waiting.map(|(w, _)| w.photos).unwrap_or_default();
        photos.retain(|p| p.waits(now));
        Ok(photos)
    }
}
