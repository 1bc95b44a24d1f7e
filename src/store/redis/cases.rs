//! Handoff cases in Redis: one open case per person, found by its messages and forum topic, taken and closed once each.
//!
//! A case is the hash `case:<id>`, its id from the counter `case_ids`.
//! `open_case:<user>` names the person's open case; `topic:<topic>` ranks
//! the cases posted in a forum topic by id; `cm:<chat>:<message>` names
//! the case a message belongs to, and `case_msgs:<id>` lists a case's
//! messages; `closed` ranks closed cases by when they closed, for `prune`.

use super::fields::{Row, or_empty};
use super::{Lua, RedisStore, script};
use crate::clock::Instant;
use crate::handoff::{CLOSED_RETENTION_SECS, Case, NewCase, Opened};
use crate::store::StoreError;

/// Opens a case for person `ARGV[2]` at `ARGV[3]` with the fields from
/// `ARGV[4]` (name, value…), unless they have an open one: `new` or
/// `existing`, then the case's fields.
static OPEN: Lua = Lua::new(|| {
    script(
        r#"
local ok = P .. 'open_case:' .. ARGV[2]
local id = redis.call('GET', ok)
if id then
  local row = redis.call('HGETALL', P .. 'case:' .. id)
  if #row > 0 then
    table.insert(row, 1, 'existing')
    return row
  end
end
id = tostring(redis.call('INCR', P .. 'case_ids'))
local k = P .. 'case:' .. id
redis.call('HSET', k, 'id', id, 'opened_at', ARGV[3], unpack(ARGV, 4))
redis.call('SET', ok, id)
local row = redis.call('HGETALL', k)
table.insert(row, 1, 'new')
return row
"#,
    )
});

/// Person `ARGV[2]`'s open case's fields, if any.
static OPEN_OF: Lua = Lua::new(|| {
    script(
        r#"
local id = redis.call('GET', P .. 'open_case:' .. ARGV[2])
if not id then return {} end
return redis.call('HGETALL', P .. 'case:' .. id)
"#,
    )
});

/// Records that case `ARGV[2]` was posted as message `ARGV[3]`, in forum
/// topic `ARGV[4]` (empty: none).
static POST: Lua = Lua::new(|| {
    script(
        r#"
local k = P .. 'case:' .. ARGV[2]
if redis.call('EXISTS', k) == 0 then return end
local old = redis.call('HGET', k, 'topic')
if old then redis.call('ZREM', P .. 'topic:' .. old, ARGV[2]) end
redis.call('HSET', k, 'post', ARGV[3])
if ARGV[4] == '' then
  redis.call('HDEL', k, 'topic')
else
  redis.call('HSET', k, 'topic', ARGV[4])
  redis.call('ZADD', P .. 'topic:' .. ARGV[4], ARGV[2], ARGV[2])
end
"#,
    )
});

/// Links message `ARGV[3]` in chat `ARGV[2]` to case `ARGV[4]`, in place
/// of any case it was linked to.
static LINK: Lua = Lua::new(|| {
    script(
        r#"
local place = ARGV[2] .. ':' .. ARGV[3]
local key = P .. 'cm:' .. place
local old = redis.call('GET', key)
if old and old ~= ARGV[4] then redis.call('SREM', P .. 'case_msgs:' .. old, place) end
redis.call('SET', key, ARGV[4])
redis.call('SADD', P .. 'case_msgs:' .. ARGV[4], place)
"#,
    )
});

/// Marks open case `ARGV[2]`, if nobody has taken it, as taken by
/// `ARGV[3]`: its fields, if that happened.
static TAKE: Lua = Lua::new(|| {
    script(
        r#"
local k = P .. 'case:' .. ARGV[2]
local row = redis.call('HMGET', k, 'id', 'closed_at', 'taken_by')
if not row[1] or row[2] or row[3] then return {} end
redis.call('HSET', k, 'taken_by', ARGV[3])
return redis.call('HGETALL', k)
"#,
    )
});

/// Closes case `ARGV[2]` at `ARGV[3]`: its fields, if it was open.
static CLOSE: Lua = Lua::new(|| {
    script(
        r#"
local k = P .. 'case:' .. ARGV[2]
local row = redis.call('HMGET', k, 'id', 'closed_at', 'user')
if not row[1] or row[2] then return {} end
redis.call('HSET', k, 'closed_at', ARGV[3])
local ok = P .. 'open_case:' .. row[3]
if redis.call('GET', ok) == ARGV[2] then redis.call('DEL', ok) end
redis.call('ZADD', P .. 'closed', ARGV[3], ARGV[2])
return redis.call('HGETALL', k)
"#,
    )
});

/// Forgets cases closed before `ARGV[2]`, with their message links;
/// returns how many cases and links went.
static PRUNE: Lua = Lua::new(|| {
    script(
        r#"
local gone = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'closed', '-inf', '(' .. ARGV[2])) do
  local k = P .. 'case:' .. id
  local topic = redis.call('HGET', k, 'topic')
  if topic then redis.call('ZREM', P .. 'topic:' .. topic, id) end
  local messages = P .. 'case_msgs:' .. id
  for _, place in ipairs(redis.call('SMEMBERS', messages)) do
    local key = P .. 'cm:' .. place
    if redis.call('GET', key) == id then
      redis.call('DEL', key)
      gone = gone + 1
    end
  end
  redis.call('DEL', messages, k)
  redis.call('ZREM', P .. 'closed', id)
  gone = gone + 1
end
return gone
"#,
    )
});

fn case(flat: Vec<String>) -> Result<Option<Case>, StoreError> {
    let Some(row) = Row::new("case", flat) else {
        return Ok(None);
    };
    Ok(Some(Case {
        id: row.get("id")?,
        user: row.get("user")?,
        chat: row.get("chat")?,
        thread: row.opt("thread")?,
        name: row.text("name")?,
        username: row.opt_text("username"),
        lang: row.lang(),
        node: row.text("node")?,
        place: row.text("place")?,
        summary: row.text("summary")?,
        opened_at: row.get("opened_at")?,
        taken_by: row.opt_text("taken_by"),
        closed: row.opt::<Instant>("closed_at")?.is_some(),
        post: row.opt("post")?,
        topic: row.opt("topic")?,
    }))
}

/// A case the script found, or an error if the script found none.
fn found(flat: Vec<String>) -> Result<Case, StoreError> {
    case(flat)?.ok_or_else(|| StoreError::Redis("a case was opened but not found".into()))
}

impl RedisStore {
    pub(super) async fn new_case(&self, new: &NewCase, now: Instant) -> Result<Opened, StoreError> {
        let mut invocation = self.invoke(&OPEN);
        invocation.arg(new.user).arg(now);
        invocation
            .arg("user")
            .arg(new.user)
            .arg("chat")
            .arg(new.chat)
            .arg("thread")
            .arg(or_empty(new.thread))
            .arg("name")
            .arg(&new.name)
            .arg("username")
            .arg(new.username.as_deref().unwrap_or(""))
            .arg("lang")
            .arg(new.lang.code())
            .arg("node")
            .arg(&new.node)
            .arg("place")
            .arg(&new.place)
            .arg("summary")
            .arg(&new.summary);
        let mut flat: Vec<String> = self.eval(&invocation).await?;
        let new = !flat.is_empty() && flat.remove(0) == "new";
        let case = found(flat)?;
        Ok(if new {
            Opened::New(case)
        } else {
            Opened::Existing(case)
        })
    }

    pub(super) async fn case_by_id(&self, id: i64) -> Result<Option<Case>, StoreError> {
        case(
            self.query(redis::cmd("HGETALL").arg(format!("{}case:{id}", self.prefix())))
                .await?,
        )
    }

    pub(super) async fn open_case_by_user(&self, user: u64) -> Result<Option<Case>, StoreError> {
        let mut invocation = self.invoke(&OPEN_OF);
        invocation.arg(user);
        case(self.eval(&invocation).await?)
    }

    pub(super) async fn case_post(
        &self,
        id: i64,
        message: i32,
        topic: Option<i32>,
    ) -> Result<(), StoreError> {
        let mut invocation = self.invoke(&POST);
        invocation.arg(id).arg(message).arg(or_empty(topic));
        self.eval(&invocation).await
    }

    pub(super) async fn link_message(
        &self,
        chat: i64,
        message: i32,
        case: i64,
    ) -> Result<(), StoreError> {
        let mut invocation = self.invoke(&LINK);
        invocation.arg(chat).arg(message).arg(case);
        self.eval(&invocation).await
    }

    pub(super) async fn linked_case(
        &self,
        chat: i64,
        message: i32,
    ) -> Result<Option<i64>, StoreError> {
        self.query(redis::cmd("GET").arg(format!("{}cm:{chat}:{message}", self.prefix())))
            .await
    }

    pub(super) async fn topic_case(&self, topic: i32) -> Result<Option<i64>, StoreError> {
        let latest: Vec<i64> = self
            .query(
                redis::cmd("ZRANGE")
                    .arg(format!("{}topic:{topic}", self.prefix()))
                    .arg(-1)
                    .arg(-1),
            )
            .await?;
        Ok(latest.first().copied())
    }

    pub(super) async fn case_taken(&self, id: i64, by: &str) -> Result<Option<Case>, StoreError> {
        let mut invocation = self.invoke(&TAKE);
        invocation.arg(id).arg(by);
        case(self.eval(&invocation).await?)
    }

    pub(super) async fn case_closed(
        &self,
        id: i64,
        now: Instant,
    ) -> Result<Option<Case>, StoreError> {
        let mut invocation = self.invoke(&CLOSE);
        invocation.arg(id).arg(now);
        case(self.eval(&invocation).await?)
    }

    pub(super) async fn prune_cases(&self, now: Instant) -> Result<usize, StoreError> {
        let mut invocation = self.invoke(&PRUNE);
        invocation.arg(now - CLOSED_RETENTION_SECS);
        self.eval(&invocation).await
    }
}
