//! The update inbox in Redis, shared by the processes: each update recorded once, by the process handling it, and taken over from a process whose heartbeat ran out.
//!
//! An entry is the hash `in:<id>` with `body`, `owner`, `at` (when it
//! arrived), then `replies` (saved with the step it made) and `done`
//! (when it was answered; `body` and `replies` go then). It expires
//! `INBOX_RETENTION_SECS` after it arrived, or after it was done. The
//! set `inbox_open` holds the ids not done, `inbox` every id by when it
//! arrived or was done, for `prune`. A process's heartbeat is `hb:<owner>`,
//! the bot-clock time it is alive until.

use super::{Lua, RedisStore, script};
use crate::clock::Instant;
use crate::store::{Entry, INBOX_RETENTION_SECS, StoreError};

/// Records update `ARGV[2]` (body `ARGV[3]`) as handled by `ARGV[4]`,
/// arrived at `ARGV[5]`, kept `ARGV[6]` seconds; 0 if its id is known.
static PUT: Lua = Lua::new(|| {
    script(
        r#"
local k = P .. 'in:' .. ARGV[2]
if redis.call('EXISTS', k) == 1 then return 0 end
redis.call('HSET', k, 'body', ARGV[3], 'owner', ARGV[4], 'at', ARGV[5])
redis.call('EXPIRE', k, ARGV[6])
redis.call('ZADD', P .. 'inbox_open', ARGV[2], ARGV[2])
redis.call('ZADD', P .. 'inbox', ARGV[5], ARGV[2])
return 1
"#,
    )
});

/// Marks the entries `ARGV[4..]` done at `ARGV[2]`, kept `ARGV[3]`
/// seconds more.
static DONE: Lua = Lua::new(|| {
    script(
        r#"
for i = 4, #ARGV do
  local id = ARGV[i]
  local k = P .. 'in:' .. id
  if redis.call('EXISTS', k) == 1 then
    redis.call('HDEL', k, 'body', 'replies')
    redis.call('HSET', k, 'done', ARGV[2])
    redis.call('EXPIRE', k, ARGV[3])
    redis.call('ZADD', P .. 'inbox', ARGV[2], id)
  end
  redis.call('ZREM', P .. 'inbox_open', id)
end
"#,
    )
});

/// The open entries of processes other than `ARGV[2]` whose heartbeat is
/// missing or before `ARGV[3]`, by id, each handed to `ARGV[2]`:
/// `{id, body, has replies (1/0), replies}`.
static TAKE_OVER: Lua = Lua::new(|| {
    script(
        r#"
local taken = {}
for _, id in ipairs(redis.call('ZRANGE', P .. 'inbox_open', 0, -1)) do
  local k = P .. 'in:' .. id
  local row = redis.call('HMGET', k, 'body', 'replies', 'owner', 'done')
  if not row[1] or row[4] then
    redis.call('ZREM', P .. 'inbox_open', id)
  elseif row[3] ~= ARGV[2] then
    local alive = row[3] and redis.call('GET', P .. 'hb:' .. row[3])
    if not alive or tonumber(alive) < tonumber(ARGV[3]) then
      redis.call('HSET', k, 'owner', ARGV[2])
      taken[#taken + 1] = {id, row[1], row[2] and '1' or '0', row[2] or ''}
    end
  end
end
return taken
"#,
    )
});

/// Forgets entries that arrived or were done before `ARGV[2]`; returns
/// how many.
static PRUNE: Lua = Lua::new(|| {
    script(
        r#"
local ids = redis.call('ZRANGEBYSCORE', P .. 'inbox', '-inf', '(' .. ARGV[2])
for _, id in ipairs(ids) do
  redis.call('DEL', P .. 'in:' .. id)
  redis.call('ZREM', P .. 'inbox', id)
  redis.call('ZREM', P .. 'inbox_open', id)
end
return #ids
"#,
    )
});

impl RedisStore {
    pub(super) async fn put_entry(
        &self,
        id: i64,
        body: &str,
        owner: &str,
        now: Instant,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.invoke(&PUT);
        invocation
            .arg(id)
            .arg(body)
            .arg(owner)
            .arg(now)
            .arg(INBOX_RETENTION_SECS);
        Ok(self.eval::<i64>(&invocation).await? == 1)
    }

    pub(super) async fn done_entries(&self, ids: &[i64], now: Instant) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut invocation = self.invoke(&DONE);
        invocation.arg(now).arg(INBOX_RETENTION_SECS).arg(ids);
        self.eval::<()>(&invocation).await
    }

    pub(super) async fn take_over_entries(
        &self,
        owner: &str,
        now: Instant,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut invocation = self.invoke(&TAKE_OVER);
        invocation.arg(owner).arg(now);
        let rows: Vec<(i64, String, String, String)> = self.eval(&invocation).await?;
        Ok(rows
            .into_iter()
            .map(|(id, body, has_replies, replies)| Entry {
                id,
                body,
                replies: (has_replies == "1").then_some(replies),
            })
            .collect())
    }

    /// Kept a day past the last beat: a process silent that long has
    /// nothing left in the inbox.
    pub(super) async fn beat(&self, owner: &str, until: Instant) -> Result<(), StoreError> {
        self.query(
            redis::cmd("SET")
                .arg(format!("{}hb:{owner}", self.prefix()))
                .arg(until)
                .arg("EX")
                .arg(INBOX_RETENTION_SECS),
        )
        .await
    }

    pub(super) async fn prune_inbox(&self, now: Instant) -> Result<usize, StoreError> {
        let mut invocation = self.invoke(&PRUNE);
        invocation.arg(now - INBOX_RETENTION_SECS);
        self.eval(&invocation).await
    }
}
