//! A batch as one Lua script (its checks, then its writes, or nothing), and the sweep of expired records.
//!
//! The batch travels flat, so every value reaches the script as the bytes
//! it is and no number passes through a JSON decoder: `KEYS` holds the
//! version counter, the log counter and the expiry index, then the key of
//! each check, then the key of each write; `ARGV` holds the batch's time
//! and the number of checks, the version each check expects, then each
//! write as a one-letter code followed by its arguments. Numbers are
//! decimal strings made here; versions are compared as strings, and a
//! range bound is given as Redis reads one (`+inf`, `(` for an open end),
//! so nothing is rounded on its way but what a sorted set's doubles round.
//!
//! A record is a hash: `v` its value, `n` its version, `x` its expiry by
//! the bot's clock, when it has one. Such a record is also in the expiry
//! index, scored by `x`, for the sweep to find (the scheduler sweeps with
//! every prune); and its key expires by Redis's clock a while after `x`
//! would come if the two clocks agreed, so a record no one sweeps does not
//! stay for good.

use std::sync::LazyLock;

use redis::{Script, ScriptInvocation};

use super::{Keys, upper};
use crate::clock::Instant;
use crate::store::StoreError;
use crate::store::kernel::{Batch, Write};

/// How long, in seconds, a record's key outlives its expiry by the clock
/// it was written with: Redis's clock and the bot's may differ by a little.
const MARGIN: i64 = 60;

/// The longest lifetime given to a key, in seconds: an expiry further off
/// than this (a century) is as good as none, and Redis refuses a lifetime
/// that does not fit its clock.
const LONGEST: i64 = 100 * 365 * 24 * 3600;

/// How many expired records one sweep script removes; a sweep runs it
/// again while it finds a full page.
const SWEEP_PAGE: usize = 500;

/// What the commit script returns when a check fails.
const CONFLICT: i64 = -1;

/// Applies a batch (see the module's text for its layout): -1 when a check
/// fails, writing nothing; else how many records, index members and log
/// values the deletions, trims and cuts removed.
///
/// Every write's code is read before any is made, because Redis does not
/// undo a script that fails halfway; once the writes start, none of them
/// can fail (the prefix is the bot's alone: see `redis.rs`).
static COMMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local E = KEYS[3]
local now = tonumber(ARGV[1])
local checks = tonumber(ARGV[2])

-- A record's version as stored, or nil when it is absent or expired.
local function live(key)
  local got = redis.call('HMGET', key, 'n', 'x')
  if not got[1] then return nil end
  if got[2] and tonumber(got[2]) <= now then return nil end
  return got[1]
end

for i = 1, checks do
  if (live(KEYS[3 + i]) or '0') ~= ARGV[2 + i] then return -1 end
end

-- Each write's arguments after its code. The codes are read before
-- anything is written, as Redis does not undo a script that fails
-- halfway. No write fails on its key's type: records, indexes and logs
-- live under prefixes of their own, which belong to the bot alone.
local width = {P = 3, D = 0, I = 2, U = 1, T = 1, A = 2, C = 1}
local a = 3 + checks
while a <= #ARGV do
  local op = ARGV[a]
  if not width[op] then return redis.error_reply('unknown write ' .. tostring(op)) end
  a = a + 1 + width[op]
end

local function put(key, value, x, ttl)
  local version = string.format('%d', redis.call('INCR', KEYS[1]))
  if x == '' then
    redis.call('HSET', key, 'v', value, 'n', version)
    redis.call('HDEL', key, 'x')
    redis.call('PERSIST', key)
    redis.call('ZREM', E, key)
    return
  end
  redis.call('HSET', key, 'v', value, 'n', version, 'x', x)
  if ttl ~= '' then
    redis.call('EXPIRE', key, ttl)
  else
    redis.call('PERSIST', key)
  end
  redis.call('ZADD', E, x, key)
end

local removed = 0
local k = 3 + checks
a = 3 + checks
while a <= #ARGV do
  k = k + 1
  local key, op = KEYS[k], ARGV[a]
  if op == 'P' then
    put(key, ARGV[a + 1], ARGV[a + 2], ARGV[a + 3])
  elseif op == 'D' then
    if live(key) then removed = removed + 1 end
    redis.call('DEL', key)
    redis.call('ZREM', E, key)
  elseif op == 'I' then
    redis.call('ZADD', key, ARGV[a + 2], ARGV[a + 1])
  elseif op == 'U' then
    redis.call('ZREM', key, ARGV[a + 1])
  elseif op == 'T' or op == 'C' then
    removed = removed + redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[a + 1])
  elseif op == 'A' then
    -- The number before the value keeps equal values apart, and values
    -- appended at one time in the order they came.
    local seq = redis.call('INCR', KEYS[2])
    redis.call('ZADD', key, ARGV[a + 1], string.format('%016d', seq) .. '|' .. ARGV[a + 2])
  end
  a = a + 1 + width[op]
end
return removed
"#,
    )
});

/// Removes up to `ARGV[2]` records of the expiry index `KEYS[1]` expired
/// at `ARGV[1]`: how many it removed, and how many entries it looked at.
/// The record keys come from the index, so this is for one server, not a
/// cluster.
static SWEEP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local now = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local removed = 0
for _, key in ipairs(due) do
  local x = redis.call('HGET', key, 'x')
  if x and tonumber(x) > now then
    redis.call('ZADD', KEYS[1], x, key)
  else
    if x then
      redis.call('DEL', key)
      removed = removed + 1
    end
    redis.call('ZREM', KEYS[1], key)
  end
end
return {removed, #due}
"#,
    )
});

/// How long a key written at `now` and expiring at `expires` is kept by
/// Redis, in seconds: `None` for good.
fn lifetime(expires: Instant, now: Instant) -> Option<i64> {
    let seconds = expires.saturating_sub(now).max(0).saturating_add(MARGIN);
    (seconds <= LONGEST).then_some(seconds)
}

/// The commit script's invocation for `batch`.
fn encode(keys: &Keys, batch: &Batch) -> ScriptInvocation<'static> {
    let mut invocation = COMMIT.prepare_invoke();
    invocation
        .key(keys.versions())
        .key(keys.appended())
        .key(keys.expiring())
        .arg(batch.now.to_string())
        .arg(batch.checks.len());
    for (key, version) in &batch.checks {
        invocation.key(keys.record(key)).arg(version.to_string());
    }
    for write in &batch.writes {
        match write {
            Write::Put {
                key,
                value,
                expires,
            } => {
                let (expires, ttl) = match expires {
                    Some(at) => (
                        at.to_string(),
                        lifetime(*at, batch.now).map_or_else(String::new, |s| s.to_string()),
                    ),
                    None => (String::new(), String::new()),
                };
                invocation
                    .key(keys.record(key))
                    .arg("P")
                    .arg(value)
                    .arg(expires)
                    .arg(ttl);
            }
            Write::Delete { key } => {
                invocation.key(keys.record(key)).arg("D");
            }
            Write::Index {
                index,
                member,
                score,
            } => {
                invocation
                    .key(keys.index(index))
                    .arg("I")
                    .arg(member)
                    .arg(score.to_string());
            }
            Write::Unindex { index, member } => {
                invocation.key(keys.index(index)).arg("U").arg(member);
            }
            Write::Trim { index, upto } => {
                invocation.key(keys.index(index)).arg("T").arg(upper(*upto));
            }
            Write::Append { log, at, value } => {
                invocation
                    .key(keys.log(log))
                    .arg("A")
                    .arg(at.to_string())
                    .arg(value);
            }
            Write::Cut { log, before } => {
                invocation
                    .key(keys.log(log))
                    .arg("C")
                    .arg(format!("({before}"));
            }
        }
    }
    invocation
}

impl super::RedisKernel {
    /// One round trip: the whole batch in one script.
    pub(super) async fn commit_batch(&self, batch: &Batch) -> Result<usize, StoreError> {
        if batch.checks.is_empty() && batch.writes.is_empty() {
            return Ok(0);
        }
        let removed: i64 = self.shared.eval(&encode(&self.keys, batch)).await?;
        if removed == CONFLICT {
            return Err(StoreError::Conflict);
        }
        usize::try_from(removed)
            .map_err(|_| StoreError::Redis(format!("the commit script returned {removed}")))
    }

    /// One round trip for every `SWEEP_PAGE` records expired.
    pub(super) async fn sweep_expired(&self, now: Instant) -> Result<usize, StoreError> {
        let mut removed = 0;
        loop {
            let mut invocation = SWEEP.prepare_invoke();
            invocation
                .key(self.keys.expiring())
                .arg(now.to_string())
                .arg(SWEEP_PAGE);
            let (gone, seen): (usize, usize) = self.shared.eval(&invocation).await?;
            removed += gone;
            if seen < SWEEP_PAGE {
                return Ok(removed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_follow_the_bots_clock() {
        assert_eq!(lifetime(110, 100), Some(10 + MARGIN));
        assert_eq!(lifetime(90, 100), Some(MARGIN), "expired already");
        assert_eq!(lifetime(i64::MAX, 0), None, "as good as for good");
        assert_eq!(lifetime(i64::MAX, i64::MIN), None);
    }
}
