//! Whose a message with buttons is: the person a group menu belongs to, and each person's latest menu, edited when their session closes.
//!
//! An owner is the record `menu:<chat>:<message>`, kept 30 days; the
//! indexes `menus` and `notes` hold `<chat>:<message>` by when it was
//! recorded (to count and prune them), and `menus:<chat>:<user>` a
//! person's menus in a chat by message id, the latest last.

use serde::{Deserialize, Serialize};

use super::kernel::{Batch, Span};
use super::{ANY_TIME, SessionKey, Store, StoreError, decode, encode, kept_until};
use crate::clock::Instant;

/// How long a group menu's owner is remembered: 30 days.
pub const MENU_RETENTION_SECS: i64 = 30 * 24 * 3600;

/// The index of dialogue menus, and of other messages with buttons.
pub(super) const MENUS: &str = "menus";
pub(super) const NOTES: &str = "notes";

/// What a message with buttons that belongs to one person is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    /// A dialogue menu: the latest is edited when the session expires.
    Menu,
    /// Anything else with buttons — a reminder, a confirmation, a list:
    /// left as it is when the session expires.
    Note,
}

#[derive(Serialize, Deserialize)]
struct Owner {
    owner: u64,
}

fn owner_key(chat: i64, message: i32) -> String {
    format!("menu:{chat}:{message}")
}

fn person_index(key: SessionKey) -> String {
    format!("menus:{}", key.id())
}

/// Forgets owners recorded more than 30 days before `now` (their records
/// expire by themselves).
pub(super) fn prune(batch: &mut Batch, now: Instant) {
    let upto = now - MENU_RETENTION_SECS - 1;
    batch.trim(MENUS, upto).trim(NOTES, upto);
}

/// Adds to `batch` that `owner` posted `message` at `at`.
pub(crate) fn owner_into(
    batch: &mut Batch,
    chat: i64,
    message: i32,
    owner: u64,
    posted: Posted,
    at: Instant,
) {
    let member = format!("{chat}:{message}");
    batch.put_until(
        owner_key(chat, message),
        encode(&Owner { owner }),
        Some(kept_until(at, MENU_RETENTION_SECS)),
    );
    match posted {
        Posted::Menu => {
            let key = SessionKey { chat, user: owner };
            batch.index(MENUS, member, at).index(
                person_index(key),
                message.to_string(),
                i64::from(message),
            );
        }
        Posted::Note => {
            batch.index(NOTES, member, at);
        }
    }
}

impl Store {
    /// Records whose a message with buttons is: in groups, only they may
    /// press its buttons even if the message it answered is deleted; and
    /// the latest menu is edited when the session expires.
    pub async fn remember_menu(
        &self,
        chat: i64,
        message: i32,
        owner: u64,
        posted: Posted,
        now: Instant,
    ) -> Result<(), StoreError> {
        let mut batch = Batch::new(now);
        owner_into(&mut batch, chat, message, owner, posted, now);
        self.kernel.commit(batch).await.map(drop)
    }

    /// The member a group menu message belongs to, if recorded.
    pub async fn menu_owner(&self, chat: i64, message: i32) -> Result<Option<u64>, StoreError> {
        let got = self
            .kernel
            .get(&[owner_key(chat, message)], ANY_TIME)
            .await?;
        let owner = got.into_iter().next().flatten().map(decode::<Owner>);
        Ok(owner.transpose()?.map(|(o, _)| o.owner))
    }

    /// The person's latest menu in the chat.
    pub(super) async fn latest_menu(&self, key: SessionKey) -> Result<Option<i32>, StoreError> {
        let last = self.kernel.range(&person_index(key), Span::last()).await?;
        Ok(last.first().and_then(|(m, _)| m.parse().ok()))
    }

    /// Adds to `batch` the removal of every menu record of the person in
    /// the chat.
    pub(super) async fn forget_menus_into(
        &self,
        batch: &mut Batch,
        key: SessionKey,
    ) -> Result<(), StoreError> {
        let index = person_index(key);
        for (message, _) in self.kernel.range(&index, Span::all(usize::MAX)).await? {
            batch
                .delete(format!("menu:{}:{message}", key.chat))
                .unindex(MENUS, format!("{}:{message}", key.chat));
        }
        batch.trim(index, i64::MAX);
        Ok(())
    }
}
