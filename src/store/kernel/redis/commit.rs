//! A batch as one Lua script (its checks, then its writes, or nothing), and the sweep of expired records.
//!
//! The batch travels flat, so every value reaches the script as the bytes
//! it is and no number passes through a JSON decoder: `KEYS` holds the
//! version counter, the log counter and the expiry index, then the key of
//! each check, then the key of each step; `ARGV` holds the batch's time
//! and the number of checks, the version each check expects, then each
//! step as a one-letter code followed by its arguments. Numbers are
//! decimal strings made here; versions are compared as strings, and a
//! range bound is given as Redis reads one (`+inf`, `(` for an open end),
//! so nothing is rounded on its way but what a sorted set's doubles round.
//!
//! What costs Redis time is the commands a script runs and the arguments
//! it is handed (each is read off the wire, then made a Lua string), so a
//! batch runs as few commands as its writes allow and carries no argument
//! it can leave out. The writes to one index or log that follow each
//! other with nothing else done to it between become one step, one `ZADD`
//! or `ZREM` for all their members (writes to different keys do not touch
//! each other, so the order between them is free); the versions of all
//! the batch's puts are drawn from the counter at once, as are the numbers
//! of its log values; the expiry index is written once at the end, with
//! the last word each record of the batch had; a step of one member says
//! so by its code rather than by a count; and a put with the expiry of the
//! put before it leaves the expiry out.
//!
//! A record is a hash: `v` its value, `n` its version, `x` its expiry by
//! the bot's clock, when it has one. Such a record is also in the expiry
//! index, scored by `x`, for the sweep to find (the scheduler sweeps with
//! every prune); and its key expires by Redis's clock a while after `x`
//! would come if the two clocks agreed, so a record no one sweeps does not
//! stay for good.

use std::collections::HashMap;
use std::sync::LazyLock;

use redis::Script;

use super::{Key, Keys, evalsha, upper};
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

/// How many steps a batch has before they are found by a map rather than
/// by looking through them.
const FEW: usize = 16;

/// What the commit script returns when a check fails.
const CONFLICT: i64 = -1;

/// Applies a batch (see the module's text for its layout): -1 when a check
/// fails, writing nothing; else how many records, index members and log
/// values the deletions, trims and cuts removed.
///
/// The steps, by code:
///
/// - `P` value, expiry, lifetime: a record put (the last two empty for
///   none); `Q` value: a record put with the expiry and lifetime of the put
///   before it.
/// - `D`: a record deleted.
/// - `I` count, then a score and a member each: members added to an index;
///   `i` score, member: one.
/// - `U` count, then members: members removed from an index; `u` member:
///   one.
/// - `T` bound: an index trimmed; `C` bound: a log cut.
/// - `A` count, then a time and a value each: values appended to a log;
///   `a` time, value: one.
///
/// A put or a delete in lower case (`p`, `q`, `d`) is not its record's
/// last in the batch, and leaves the expiry index to the one that is.
///
/// Every step is read before any is written, because Redis does not undo
/// a script that fails halfway; once the writes start, none of them can
/// fail (the prefix is the bot's alone: see `redis.rs`). A command takes
/// at most `CHUNK` members, well within what Lua passes to a call.
static COMMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local now = tonumber(ARGV[1])
local checks = tonumber(ARGV[2])
local CHUNK = 1000

for i = 1, checks do
  local got = redis.call('HMGET', KEYS[3 + i], 'n', 'x')
  local n = got[1]
  if n and got[2] and tonumber(got[2]) <= now then n = false end
  if (n or '0') ~= ARGV[2 + i] then return -1 end
end

-- Every step read first: its code, its width, how many versions and log
-- numbers the batch needs. No write fails on its key's type: records,
-- indexes and logs live under prefixes of their own, which belong to the
-- bot alone.
local last = #ARGV
local puts, appended, steps = 0, 0, 0
local expiring = false
local a = 3 + checks
while a <= last do
  local op = ARGV[a]
  steps = steps + 1
  if op == 'P' or op == 'p' then
    puts = puts + 1
    expiring = true
    a = a + 4
  elseif op == 'Q' or op == 'q' then
    if not expiring then return redis.error_reply('a put with no put before it') end
    puts = puts + 1
    a = a + 2
  elseif op == 'D' or op == 'd' then
    a = a + 1
  elseif op == 'i' then
    a = a + 3
  elseif op == 'u' then
    a = a + 2
  elseif op == 'a' then
    appended = appended + 1
    a = a + 3
  elseif op == 'T' or op == 'C' then
    a = a + 2
  elseif op == 'I' or op == 'U' or op == 'A' then
    local count = tonumber(ARGV[a + 1])
    if not count or count < 1 then
      return redis.error_reply('a write of ' .. tostring(ARGV[a + 1]) .. ' members')
    end
    if op == 'U' then
      a = a + 2 + count
    else
      a = a + 2 + 2 * count
      if op == 'A' then appended = appended + count end
    end
  else
    return redis.error_reply('unknown write ' .. tostring(op))
  end
end
if a ~= last + 1 or 3 + checks + steps ~= #KEYS then
  return redis.error_reply('a batch whose writes do not match their keys')
end

local version = 0
if puts > 0 then version = redis.call('INCRBY', KEYS[1], puts) - puts end
local seq = 0
if appended > 0 then seq = redis.call('INCRBY', KEYS[2], appended) - appended end

-- The expiry index's changes, made at the end: its records' last word.
local adds, drops = {}, {}
local x, ttl
local removed = 0
local k = 3 + checks
a = 3 + checks
while a <= last do
  k = k + 1
  local key, op = KEYS[k], ARGV[a]
  local put = op == 'P' or op == 'p'
  if put or op == 'Q' or op == 'q' then
    if put then
      x, ttl = ARGV[a + 2], ARGV[a + 3]
    end
    version = version + 1
    local n = string.format('%d', version)
    if x == '' then
      -- Written anew, so no expiry field and no lifetime is left over.
      redis.call('DEL', key)
      redis.call('HSET', key, 'v', ARGV[a + 1], 'n', n)
      if op == 'P' or op == 'Q' then drops[#drops + 1] = key end
    else
      redis.call('HSET', key, 'v', ARGV[a + 1], 'n', n, 'x', x)
      if ttl ~= '' then
        redis.call('EXPIRE', key, ttl)
      else
        redis.call('PERSIST', key)
      end
      if op == 'P' or op == 'Q' then
        adds[#adds + 1] = x
        adds[#adds + 1] = key
      end
    end
    a = a + (put and 4 or 2)
  elseif op == 'D' or op == 'd' then
    local dx = redis.call('HGET', key, 'x')
    if redis.call('DEL', key) == 1 and not (dx and tonumber(dx) <= now) then
      removed = removed + 1
    end
    if op == 'D' then drops[#drops + 1] = key end
    a = a + 1
  elseif op == 'i' then
    redis.call('ZADD', key, ARGV[a + 1], ARGV[a + 2])
    a = a + 3
  elseif op == 'u' then
    redis.call('ZREM', key, ARGV[a + 1])
    a = a + 2
  elseif op == 'a' then
    -- The number before the value keeps equal values apart, and values
    -- appended at one time in the order they came.
    seq = seq + 1
    redis.call('ZADD', key, ARGV[a + 1], string.format('%016d', seq) .. '|' .. ARGV[a + 2])
    a = a + 3
  elseif op == 'I' or op == 'U' then
    local count = tonumber(ARGV[a + 1])
    local width = op == 'I' and 2 or 1
    local from = a + 2
    local stop = from + width * count - 1
    while from <= stop do
      local to = math.min(stop, from + width * CHUNK - 1)
      redis.call(op == 'I' and 'ZADD' or 'ZREM', key, unpack(ARGV, from, to))
      from = to + 1
    end
    a = stop + 1
  elseif op == 'T' or op == 'C' then
    removed = removed + redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[a + 1])
    a = a + 2
  elseif op == 'A' then
    local count = tonumber(ARGV[a + 1])
    local done = 0
    while done < count do
      local args = {}
      for i = done + 1, math.min(count, done + CHUNK) do
        seq = seq + 1
        local at = a + 2 * i
        args[#args + 1] = ARGV[at]
        args[#args + 1] = string.format('%016d', seq) .. '|' .. ARGV[at + 1]
      end
      redis.call('ZADD', key, unpack(args))
      done = done + #args / 2
    end
    a = a + 2 + 2 * count
  end
end

local E = KEYS[3]
local from = 1
while from <= #adds do
  local to = math.min(#adds, from + 2 * CHUNK - 1)
  redis.call('ZADD', E, unpack(adds, from, to))
  from = to + 1
end
from = 1
while from <= #drops do
  local to = math.min(#drops, from + CHUNK - 1)
  redis.call('ZREM', E, unpack(drops, from, to))
  from = to + 1
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

/// One step of the commit script: a write, or several to one index or
/// log that follow each other.
enum Step<'a> {
    /// `last`: the record's last put or delete in the batch, which says
    /// where it stands in the expiry index.
    Put {
        value: &'a str,
        expires: Option<Instant>,
        last: bool,
    },
    Delete {
        last: bool,
    },
    /// Scores and members.
    Index(Vec<(i64, &'a str)>),
    Unindex(Vec<&'a str>),
    Trim(i64),
    /// Times and values.
    Append(Vec<(Instant, &'a str)>),
    Cut(Instant),
}

/// A batch's writes as the script's steps, each with its key. A write to
/// an index or log joins the step before it on that key when that step is
/// of its kind: nothing else was done to the key between them, and writes
/// to other keys do not touch it, so the outcome is the same.
fn steps<'a>(keys: &'a Keys, writes: &'a [Write]) -> Vec<(Key<'a>, Step<'a>)> {
    let mut steps: Vec<(Key<'a>, Step<'a>)> = Vec::with_capacity(writes.len());
    // The last step on each key, where a write may join it: looked for
    // among the steps themselves while they are few, in a map once they
    // are many.
    let mut latest: HashMap<Key<'a>, usize> = HashMap::new();
    for write in writes {
        let (key, step) = match write {
            Write::Put {
                key,
                value,
                expires,
            } => (
                keys.record(key),
                Step::Put {
                    value: value.as_str(),
                    expires: *expires,
                    last: true,
                },
            ),
            Write::Delete { key } => (keys.record(key), Step::Delete { last: true }),
            Write::Index {
                index,
                member,
                score,
            } => (
                keys.index(index),
                Step::Index(vec![(*score, member.as_str())]),
            ),
            Write::Unindex { index, member } => {
                (keys.index(index), Step::Unindex(vec![member.as_str()]))
            }
            Write::Trim { index, upto } => (keys.index(index), Step::Trim(*upto)),
            Write::Append { log, at, value } => {
                (keys.log(log), Step::Append(vec![(*at, value.as_str())]))
            }
            Write::Cut { log, before } => (keys.log(log), Step::Cut(*before)),
        };
        let at = if steps.len() <= FEW {
            steps.iter().rposition(|(k, _)| *k == key)
        } else {
            if latest.is_empty() {
                latest.extend(steps.iter().enumerate().map(|(at, (k, _))| (*k, at)));
            }
            latest.get(&key).copied()
        };
        let joined = match at.map(|at| &mut steps[at].1) {
            Some(Step::Index(pairs)) => match step {
                Step::Index(more) => {
                    pairs.extend(more);
                    None
                }
                step => Some(step),
            },
            Some(Step::Unindex(members)) => match step {
                Step::Unindex(more) => {
                    members.extend(more);
                    None
                }
                step => Some(step),
            },
            Some(Step::Append(values)) => match step {
                Step::Append(more) => {
                    values.extend(more);
                    None
                }
                step => Some(step),
            },
            // A record written again: its earlier step has no say in the
            // expiry index.
            Some(Step::Put { last, .. } | Step::Delete { last }) => {
                *last = false;
                Some(step)
            }
            _ => Some(step),
        };
        if let Some(step) = joined {
            if steps.len() > FEW {
                latest.insert(key, steps.len());
            }
            steps.push((key, step));
        }
    }
    steps
}

/// About how many arguments and bytes `batch`'s call holds, so that its
/// command is made the right size at once rather than grown while it is
/// filled.
fn size(keys: &Keys, batch: &Batch) -> (usize, usize) {
    // A key's prefix and letter, a number, a code: a few bytes each.
    let key = keys.prefix.len() + 12;
    let mut size = (8 + 2 * batch.checks.len(), 64 + 32 * batch.checks.len());
    for write in &batch.writes {
        let (args, bytes) = match write {
            Write::Put { key: k, value, .. } => (5, k.len() + value.len() + 40),
            Write::Delete { key: k } => (2, k.len()),
            Write::Index { index, member, .. } => (3, index.len() + member.len() + 20),
            Write::Unindex { index, member } => (2, index.len() + member.len()),
            Write::Trim { index, .. } | Write::Cut { log: index, .. } => (2, index.len() + 20),
            Write::Append { log, value, .. } => (3, log.len() + value.len() + 20),
        };
        size.0 += args;
        size.1 += bytes + key;
    }
    size
}

/// The commit script's call for `batch`: the keys of its checks and
/// steps, then their arguments.
fn encode(keys: &Keys, batch: &Batch) -> redis::Cmd {
    let steps = steps(keys, &batch.writes);
    let mut cmd = evalsha(
        &COMMIT,
        3 + batch.checks.len() + steps.len(),
        size(keys, batch),
    );
    cmd.arg(keys.versions())
        .arg(keys.appended())
        .arg(keys.expiring());
    for (key, _) in &batch.checks {
        cmd.arg(keys.record(key));
    }
    for (key, _) in &steps {
        cmd.arg(*key);
    }
    cmd.arg(batch.now).arg(batch.checks.len());
    for (_, version) in &batch.checks {
        cmd.arg(*version);
    }
    // The expiry and lifetime of the put before, which a put that has the
    // same leaves out.
    let mut previous: Option<(Option<Instant>, Option<i64>)> = None;
    for (_, step) in steps {
        match step {
            Step::Put {
                value,
                expires,
                last,
            } => {
                let expiry = (expires, expires.and_then(|at| lifetime(at, batch.now)));
                if previous == Some(expiry) {
                    cmd.arg(if last { "Q" } else { "q" }).arg(value);
                } else {
                    cmd.arg(if last { "P" } else { "p" }).arg(value);
                    // An empty argument for none.
                    match expiry {
                        (Some(at), Some(ttl)) => cmd.arg(at).arg(ttl),
                        (Some(at), None) => cmd.arg(at).arg(""),
                        (None, _) => cmd.arg("").arg(""),
                    };
                    previous = Some(expiry);
                }
            }
            Step::Delete { last } => {
                cmd.arg(if last { "D" } else { "d" });
            }
            Step::Index(pairs) => {
                if let [(score, member)] = pairs[..] {
                    cmd.arg("i").arg(score).arg(member);
                } else {
                    cmd.arg("I").arg(pairs.len());
                    for (score, member) in pairs {
                        cmd.arg(score).arg(member);
                    }
                }
            }
            Step::Unindex(members) => {
                if let [member] = members[..] {
                    cmd.arg("u").arg(member);
                } else {
                    cmd.arg("U").arg(members.len());
                    for member in members {
                        cmd.arg(member);
                    }
                }
            }
            Step::Trim(upto) => {
                cmd.arg("T").arg(upper(upto));
            }
            Step::Append(values) => {
                if let [(at, value)] = values[..] {
                    cmd.arg("a").arg(at).arg(value);
                } else {
                    cmd.arg("A").arg(values.len());
                    for (at, value) in values {
                        cmd.arg(at).arg(value);
                    }
                }
            }
            Step::Cut(before) => {
                cmd.arg("C").arg(format!("({before}"));
            }
        }
    }
    cmd
}

impl super::RedisKernel {
    /// One round trip: the whole batch in one script.
    pub(super) async fn commit_batch(&self, batch: &Batch) -> Result<usize, StoreError> {
        if batch.checks.is_empty() && batch.writes.is_empty() {
            return Ok(0);
        }
        let removed: i64 = self
            .shared
            .eval(&COMMIT, &encode(&self.keys, batch))
            .await?;
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
            let mut cmd = evalsha(&SWEEP, 1, (3, 128));
            cmd.arg(self.keys.expiring()).arg(now).arg(SWEEP_PAGE);
            let (gone, seen): (usize, usize) = self.shared.eval(&SWEEP, &cmd).await?;
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
