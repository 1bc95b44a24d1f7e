//! Facts for the figures and next-day questions in Redis.
//!
//! Facts are members of the sorted set `facts`, scored by their time:
//! each a sequence number (so equal facts stay apart, and read back in
//! the order they were recorded) and the fact as JSON. A next-day
//! question is the hash `later:<chat>:<user>`, the set `later_due` ranking
//! them by when they fall due.

use serde::{Deserialize, Serialize};

use super::fields::{Row, or_empty};
use super::{Lua, RedisStore, script};
use crate::clock::Instant;
use crate::stats::{Fact, FactKind, LATER_SECS, MAX_DAYS};
use crate::store::{Later, StoreError};

/// A fact as stored.
#[derive(Serialize, Deserialize)]
struct StoredFact {
    at: Instant,
    kind: String,
    conv: u64,
    node: String,
    detail: String,
    lang: String,
}

/// A fact as the JSON of its member in `facts`.
pub(super) fn fact_json(fact: &Fact) -> Result<String, StoreError> {
    Ok(serde_json::to_string(&StoredFact {
        at: fact.at,
        kind: fact.kind.code().to_string(),
        conv: fact.conv,
        node: fact.node.clone(),
        detail: fact.detail.clone(),
        lang: fact.lang.code().to_string(),
    })?)
}

/// A member of `facts` read back; `None` for a kind this version does not
/// know (written by a newer one), left out rather than miscounted.
fn fact(member: &str) -> Option<Fact> {
    let (_, json) = member.split_once('|')?;
    let stored: StoredFact = serde_json::from_str(json).ok()?;
    Some(Fact {
        at: stored.at,
        kind: FactKind::from_code(&stored.kind)?,
        conv: stored.conv,
        node: stored.node,
        detail: stored.detail,
        lang: stored.lang.parse().unwrap_or_default(),
    })
}

/// Records facts: each its time and JSON, from `ARGV[2]`.
static RECORD: Lua = Lua::new(|| script("add_facts(2)"));

/// Asks person `ARGV[3]` in chat `ARGV[2]` again at `ARGV[4]` (asked for
/// at `ARGV[5]`), in place of any earlier question.
static ASK: Lua = Lua::new(|| {
    script(
        r#"
local who = ARGV[2] .. ':' .. ARGV[3]
local k = P .. 'later:' .. who
redis.call('DEL', k)
redis.call('HSET', k, 'chat', ARGV[2], 'user', ARGV[3], 'due', ARGV[4], 'asked_at', ARGV[5],
  'asked', '0', 'thread', ARGV[6], 'name', ARGV[7], 'lang', ARGV[8], 'node', ARGV[9],
  'conv', ARGV[10])
redis.call('ZADD', P .. 'later_due', ARGV[4], who)
"#,
    )
});

/// The questions due at `ARGV[2]` not yet asked.
static DUE: Lua = Lua::new(|| {
    script(
        r#"
local found = {}
for _, who in ipairs(redis.call('ZRANGEBYSCORE', P .. 'later_due', '-inf', ARGV[2])) do
  local k = P .. 'later:' .. who
  if redis.call('HGET', k, 'asked') == '0' then found[#found + 1] = redis.call('HGETALL', k) end
end
return found
"#,
    )
});

/// Marks the question for `ARGV[2]:ARGV[3]` as asked; 1 if it was not.
static TAKE: Lua = Lua::new(|| {
    script(
        r#"
local k = P .. 'later:' .. ARGV[2] .. ':' .. ARGV[3]
if redis.call('HGET', k, 'asked') ~= '0' then return 0 end
redis.call('HSET', k, 'asked', '1')
return 1
"#,
    )
});

/// Forgets facts before `ARGV[2]` and questions due before `ARGV[3]`;
/// returns how many.
static PRUNE: Lua = Lua::new(|| {
    script(
        r#"
local gone = redis.call('ZREMRANGEBYSCORE', P .. 'facts', '-inf', '(' .. ARGV[2])
for _, who in ipairs(redis.call('ZRANGEBYSCORE', P .. 'later_due', '-inf', '(' .. ARGV[3])) do
  redis.call('DEL', P .. 'later:' .. who)
  redis.call('ZREM', P .. 'later_due', who)
  gone = gone + 1
end
return gone
"#,
    )
});

fn later(flat: Vec<String>) -> Result<Option<Later>, StoreError> {
    let Some(row) = Row::new("next-day question", flat) else {
        return Ok(None);
    };
    Ok(Some(Later {
        chat: row.get("chat")?,
        user: row.get("user")?,
        thread: row.opt("thread")?,
        name: row.text("name")?,
        lang: row.lang(),
        node: row.text("node")?,
        conv: row.get("conv")?,
        due_at: row.get("due")?,
    }))
}

impl RedisStore {
    pub(super) async fn record_facts(&self, facts: &[Fact]) -> Result<(), StoreError> {
        if facts.is_empty() {
            return Ok(());
        }
        let mut invocation = self.invoke(&RECORD);
        for fact in facts {
            invocation.arg(fact.at).arg(fact_json(fact)?);
        }
        self.eval(&invocation).await
    }

    pub(super) async fn facts_since(&self, since: Instant) -> Result<Vec<Fact>, StoreError> {
        let members: Vec<String> = self
            .query(
                redis::cmd("ZRANGEBYSCORE")
                    .arg(format!("{}facts", self.prefix()))
                    .arg(since)
                    .arg("+inf"),
            )
            .await?;
        Ok(members.iter().filter_map(|m| fact(m)).collect())
    }

    pub(super) async fn put_later(&self, later: &Later) -> Result<(), StoreError> {
        let mut invocation = self.invoke(&ASK);
        invocation
            .arg(later.chat)
            .arg(later.user)
            .arg(later.due_at)
            .arg(later.due_at - LATER_SECS)
            .arg(or_empty(later.thread))
            .arg(&later.name)
            .arg(later.lang.code())
            .arg(&later.node)
            .arg(later.conv);
        self.eval(&invocation).await
    }

    pub(super) async fn later_due(
        &self,
        now: Instant,
        limit: usize,
    ) -> Result<Vec<Later>, StoreError> {
        let mut invocation = self.invoke(&DUE);
        invocation.arg(now);
        let rows: Vec<Vec<String>> = self.eval(&invocation).await?;
        let mut due = Vec::with_capacity(rows.len());
        for flat in rows {
            due.extend(later(flat)?);
        }
        due.sort_by_key(|l| (l.due_at, l.chat, l.user));
        due.truncate(limit);
        Ok(due)
    }

    pub(super) async fn mark_later_asked(&self, chat: i64, user: u64) -> Result<bool, StoreError> {
        let mut invocation = self.invoke(&TAKE);
        invocation.arg(chat).arg(user);
        Ok(self.eval::<i64>(&invocation).await? == 1)
    }

    /// Facts past the longest period the figures show, questions a day
    /// after they were due, closed cases after their retention.
    pub(super) async fn prune_team(&self, now: Instant) -> Result<usize, StoreError> {
        let mut invocation = self.invoke(&PRUNE);
        invocation
            .arg(now - i64::from(MAX_DAYS) * 24 * 3600)
            .arg(now - LATER_SECS);
        let gone: usize = self.eval(&invocation).await?;
        Ok(gone + self.prune_cases(now).await?)
    }
}
