//! Sessions in Redis: one hash per (chat, person) with the state, its last activity and version, and a sorted set of them by activity.
//!
//! A session's key is `s:<chat>:<user>`, holding `state` (the JSON the
//! SQLite row holds), `at` (its last activity, bot clock) and `v` (its
//! version, drawn from one counter, so a version is never given twice).
//! The set `sessions` ranks `<chat>:<user>` by `at`, for the idle scan.
//! A key expires a day after the session would be closed for idleness,
//! in case no scheduler closes it; the scan drops what is left of it.

use super::{Lua, RedisStore, script};
use crate::clock::Instant;
use crate::engine::Session;
use crate::lang::Lang;
use crate::stats::Fact;
use crate::store::{
    Answer, Counts, IdleSession, PRIVATE_CHAT_RETENTION_SECS, SessionKey, StoreError, is_blank,
};

/// What a session write carries besides the session.
#[derive(Clone, Copy)]
pub(super) struct Write<'a> {
    pub remember_lang: bool,
    pub facts: &'a [Fact],
    pub now: Instant,
    pub answer: Option<&'a Answer>,
    /// The version the session must still have (compare and set).
    pub expected: Option<u64>,
}

/// The whole of a step's write. ARGV: prefix, chat, user, expected
/// version (empty: none), state (empty: the session is blank, delete
/// it), now, the key's expiry, private chat (1/0), language to remember
/// (empty: none), the private chat's expiry, the inbox entry answered
/// (empty: none), its replies, then each fact's time and JSON. Returns 0
/// on a version conflict (nothing written), else 1.
static SAVE: Lua = Lua::new(|| {
    script(
        r#"
local who = ARGV[2] .. ':' .. ARGV[3]
local sk = P .. 's:' .. who
if ARGV[4] ~= '' then
  local v = redis.call('HGET', sk, 'v') or '0'
  if v ~= ARGV[4] then return 0 end
end
add_facts(13)
if ARGV[11] ~= '' then
  local ik = P .. 'in:' .. ARGV[11]
  if redis.call('EXISTS', ik) == 1 and redis.call('HEXISTS', ik, 'done') == 0 then
    redis.call('HSET', ik, 'replies', ARGV[12])
  end
end
local lk = P .. 'later:' .. who
local asked = redis.call('HGET', lk, 'asked_at')
if asked and tonumber(asked) < tonumber(ARGV[6]) then
  redis.call('DEL', lk)
  redis.call('ZREM', P .. 'later_due', who)
end
if ARGV[5] == '' then
  redis.call('DEL', sk)
  redis.call('ZREM', P .. 'sessions', who)
else
  local v = redis.call('INCR', P .. 'writes')
  redis.call('HSET', sk, 'state', ARGV[5], 'at', ARGV[6], 'v', v)
  redis.call('EXPIRE', sk, ARGV[7])
  redis.call('ZADD', P .. 'sessions', ARGV[6], who)
end
if ARGV[9] ~= '' then redis.call('HSET', P .. 'people', ARGV[3], ARGV[9]) end
if ARGV[8] == '1' then
  redis.call('SET', P .. 'pc:' .. ARGV[3], ARGV[6], 'EX', ARGV[10])
  redis.call('ZADD', P .. 'private', ARGV[6], ARGV[3])
end
return 1
"#,
    )
});

/// Sessions active at or before `ARGV[2]` with no reminder and no
/// next-day question in their chat, oldest first, at most `ARGV[3]`:
/// each `{who, at, state, latest menu or ''}`. Index entries whose key
/// expired are dropped on the way.
static IDLE: Lua = Lua::new(|| {
    script(
        r#"
local limit = tonumber(ARGV[3])
local found = {}
local function has_reminder(chat, user)
  for _, id in ipairs(redis.call('SMEMBERS', P .. 'ur:' .. user)) do
    if redis.call('HGET', P .. 'r:' .. id, 'chat') == chat then return true end
  end
  return false
end
for _, who in ipairs(redis.call('ZRANGEBYSCORE', P .. 'sessions', '-inf', ARGV[2])) do
  if #found >= limit then break end
  local row = redis.call('HMGET', P .. 's:' .. who, 'state', 'at')
  local chat, user = string.match(who, '^(-?%d+):(%d+)$')
  if not row[1] or not chat then
    redis.call('ZREM', P .. 'sessions', who)
  elseif redis.call('EXISTS', P .. 'later:' .. who) == 0 and not has_reminder(chat, user) then
    local menu = redis.call('ZRANGE', P .. 'mine:' .. who, -1, -1)
    found[#found + 1] = {who, row[2], row[1], menu[1] or ''}
  end
end
return found
"#,
    )
});

/// Deletes the session `ARGV[2]:ARGV[3]` and its menu records if it was
/// last active at `ARGV[4]`; 1 if it did.
static EXPIRE: Lua = Lua::new(|| {
    script(
        r#"
local who = ARGV[2] .. ':' .. ARGV[3]
local sk = P .. 's:' .. who
if redis.call('HGET', sk, 'at') ~= ARGV[4] then return 0 end
redis.call('DEL', sk)
redis.call('ZREM', P .. 'sessions', who)
local mk = P .. 'mine:' .. who
for _, msg in ipairs(redis.call('ZRANGE', mk, 0, -1)) do
  local place = ARGV[2] .. ':' .. msg
  local key = P .. 'menu:' .. place
  local owner = redis.call('GET', key)
  if not owner or owner == ARGV[3] then
    redis.call('DEL', key)
    redis.call('ZREM', P .. 'menus', place)
  end
end
redis.call('DEL', mk)
return 1
"#,
    )
});

impl RedisStore {
    fn session_key(&self, key: SessionKey) -> String {
        format!("{}s:{}:{}", self.prefix(), key.chat, key.user)
    }

    pub(super) async fn load_session(
        &self,
        key: SessionKey,
    ) -> Result<(Option<Session>, u64), StoreError> {
        let sk = self.session_key(key);
        let (state, version): (Option<String>, Option<u64>) = self
            .query(redis::cmd("HMGET").arg(&sk).arg("state").arg("v"))
            .await?;
        let Some(state) = state else {
            return Ok((None, 0));
        };
        match serde_json::from_str(&state) {
            Ok(session) => Ok((Some(session), version.unwrap_or(0))),
            Err(e) => {
                // An unreadable session would block this person for good;
                // drop it so their next message starts afresh.
                let who = format!("{}:{}", key.chat, key.user);
                let mut drop = redis::pipe();
                drop.atomic()
                    .del(&sk)
                    .ignore()
                    .zrem(format!("{}sessions", self.prefix()), who)
                    .ignore();
                self.shared
                    .run(|mut c| async move { drop.query_async::<()>(&mut c).await })
                    .await?;
                Err(StoreError::Corrupt(e))
            }
        }
    }

    pub(super) async fn save_session(
        &self,
        key: SessionKey,
        session: &Session,
        write: Write<'_>,
    ) -> Result<(), StoreError> {
        let state = if is_blank(session) {
            String::new()
        } else {
            serde_json::to_string(session)?
        };
        let mut invocation = self.invoke(&SAVE);
        invocation
            .arg(key.chat)
            .arg(key.user)
            .arg(write.expected.map(|v| v.to_string()).unwrap_or_default())
            .arg(state)
            .arg(write.now)
            .arg(self.shared.session_ttl)
            .arg(if key.is_private() { "1" } else { "0" })
            .arg(if write.remember_lang {
                session.lang.code()
            } else {
                ""
            })
            .arg(PRIVATE_CHAT_RETENTION_SECS)
            .arg(
                write
                    .answer
                    .map(|a| a.entry.to_string())
                    .unwrap_or_default(),
            )
            .arg(write.answer.map_or("", |a| a.replies.as_str()));
        for fact in write.facts {
            invocation.arg(fact.at).arg(super::team::fact_json(fact)?);
        }
        match self.eval::<i64>(&invocation).await? {
            0 => Err(StoreError::Conflict),
            _ => Ok(()),
        }
    }

    pub(super) async fn idle(
        &self,
        before: Instant,
        limit: usize,
    ) -> Result<Vec<IdleSession>, StoreError> {
        let mut invocation = self.invoke(&IDLE);
        invocation.arg(before).arg(limit);
        let rows: Vec<(String, Instant, String, String)> = self.eval(&invocation).await?;
        let mut idle = Vec::with_capacity(rows.len());
        for (who, updated_at, state, menu) in rows {
            let Some(key) = parse_who(&who) else {
                continue;
            };
            // The language is all that is needed of the state; one that
            // cannot be read is closed in the default language.
            let lang = serde_json::from_str::<Session>(&state)
                .map(|s| s.lang)
                .unwrap_or_default();
            idle.push(IdleSession {
                key,
                updated_at,
                lang,
                menu: menu.parse().ok(),
            });
        }
        Ok(idle)
    }

    pub(super) async fn expire(
        &self,
        key: SessionKey,
        updated_at: Instant,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.invoke(&EXPIRE);
        invocation.arg(key.chat).arg(key.user).arg(updated_at);
        Ok(self.eval::<i64>(&invocation).await? == 1)
    }

    pub(super) async fn count_all(&self) -> Result<Counts, StoreError> {
        let p = self.prefix();
        let mut counts = redis::pipe();
        for set in ["sessions", "due", "claimed", "menus", "notes"] {
            counts.zcard(format!("{p}{set}"));
        }
        let (sessions, due, claimed, menus, notes): (usize, usize, usize, usize, usize) = self
            .shared
            .run(|mut c| async move { counts.query_async(&mut c).await })
            .await?;
        Ok(Counts {
            sessions,
            reminders: due + claimed,
            menus,
            notes,
        })
    }

    pub(super) async fn lang_of(&self, user: u64) -> Result<Option<Lang>, StoreError> {
        let code: Option<String> = self
            .query(
                redis::cmd("HGET")
                    .arg(format!("{}people", self.prefix()))
                    .arg(user),
            )
            .await?;
        Ok(code.and_then(|c| c.parse().ok()))
    }
}

/// A session key from its `<chat>:<user>` form.
fn parse_who(who: &str) -> Option<SessionKey> {
    let (chat, user) = who.split_once(':')?;
    Some(SessionKey {
        chat: chat.parse().ok()?,
        user: user.parse().ok()?,
    })
}
