//! Whose a message with buttons is, and who has a private chat with the bot, in Redis.
//!
//! A menu's owner is the key `menu:<chat>:<message>` (a note's,
//! `note:<chat>:<message>`), expiring after `MENU_RETENTION_SECS`; the
//! sets `menus` and `notes` rank them by when they were recorded, for
//! `prune` and `counts`, and `mine:<chat>:<user>` holds a person's menu
//! messages in a chat, for the idle scan's latest menu. A private chat is
//! `pc:<user>` (when the person last wrote there), expiring after
//! `PRIVATE_CHAT_RETENTION_SECS`, and ranked in the set `private`.

use super::{Lua, RedisStore, script};
use crate::clock::Instant;
use crate::store::{MENU_RETENTION_SECS, PRIVATE_CHAT_RETENTION_SECS, Posted, StoreError};

/// Records the owner `ARGV[5]` of message `ARGV[4]` in chat `ARGV[3]`,
/// as a `menu` or a `note` (`ARGV[2]`), at `ARGV[6]`, kept `ARGV[7]`
/// seconds. A menu that changes hands leaves its former owner's list.
static REMEMBER: Lua = Lua::new(|| {
    script(
        r#"
local place = ARGV[3] .. ':' .. ARGV[4]
local key = P .. ARGV[2] .. ':' .. place
if ARGV[2] == 'menu' then
  local old = redis.call('GET', key)
  if old and old ~= ARGV[5] then
    redis.call('ZREM', P .. 'mine:' .. ARGV[3] .. ':' .. old, ARGV[4])
  end
  local mine = P .. 'mine:' .. ARGV[3] .. ':' .. ARGV[5]
  redis.call('ZADD', mine, ARGV[4], ARGV[4])
  redis.call('EXPIRE', mine, ARGV[7])
end
redis.call('SET', key, ARGV[5], 'EX', ARGV[7])
redis.call('ZADD', P .. ARGV[2] .. 's', ARGV[6], place)
"#,
    )
});

/// Forgets menus and notes recorded before `ARGV[2]`, and private chats
/// last written in before `ARGV[3]`; returns how many.
static PRUNE: Lua = Lua::new(|| {
    script(
        r#"
local gone = 0
for _, kind in ipairs({'menu', 'note'}) do
  local set = P .. kind .. 's'
  for _, place in ipairs(redis.call('ZRANGEBYSCORE', set, '-inf', '(' .. ARGV[2])) do
    local key = P .. kind .. ':' .. place
    local owner = redis.call('GET', key)
    if owner and kind == 'menu' then
      local chat, msg = string.match(place, '^(-?%d+):(-?%d+)$')
      if chat then redis.call('ZREM', P .. 'mine:' .. chat .. ':' .. owner, msg) end
    end
    redis.call('DEL', key)
    redis.call('ZREM', set, place)
    gone = gone + 1
  end
end
for _, user in ipairs(redis.call('ZRANGEBYSCORE', P .. 'private', '-inf', '(' .. ARGV[3])) do
  redis.call('DEL', P .. 'pc:' .. user)
  redis.call('ZREM', P .. 'private', user)
  gone = gone + 1
end
return gone
"#,
    )
});

impl RedisStore {
    pub(super) async fn put_menu(
        &self,
        chat: i64,
        message: i32,
        owner: u64,
        posted: Posted,
        now: Instant,
    ) -> Result<(), StoreError> {
        let kind = match posted {
            Posted::Menu => "menu",
            Posted::Note => "note",
        };
        let mut invocation = self.invoke(&REMEMBER);
        invocation
            .arg(kind)
            .arg(chat)
            .arg(message)
            .arg(owner)
            .arg(now)
            .arg(MENU_RETENTION_SECS);
        self.eval::<()>(&invocation).await
    }

    /// One round trip: the menu's owner, else the note's.
    pub(super) async fn owner_of(
        &self,
        chat: i64,
        message: i32,
    ) -> Result<Option<u64>, StoreError> {
        let p = self.prefix();
        let (menu, note): (Option<u64>, Option<u64>) = self
            .query(
                redis::cmd("MGET")
                    .arg(format!("{p}menu:{chat}:{message}"))
                    .arg(format!("{p}note:{chat}:{message}")),
            )
            .await?;
        Ok(menu.or(note))
    }

    pub(super) async fn private_chat(&self, user: u64) -> Result<bool, StoreError> {
        self.query(redis::cmd("EXISTS").arg(format!("{}pc:{user}", self.prefix())))
            .await
    }

    pub(super) async fn drop_private_chat(&self, user: u64) -> Result<(), StoreError> {
        let p = self.prefix();
        let mut forget = redis::pipe();
        forget
            .atomic()
            .del(format!("{p}pc:{user}"))
            .ignore()
            .zrem(format!("{p}private"), user)
            .ignore();
        self.shared
            .run(|mut c| async move { forget.query_async::<()>(&mut c).await })
            .await
    }

    pub(super) async fn prune_menus(&self, now: Instant) -> Result<usize, StoreError> {
        let mut invocation = self.invoke(&PRUNE);
        invocation
            .arg(now - MENU_RETENTION_SECS)
            .arg(now - PRIVATE_CHAT_RETENTION_SECS);
        self.eval(&invocation).await
    }
}
