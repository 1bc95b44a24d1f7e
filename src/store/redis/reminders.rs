//! Reminders in Redis: plans set and cancelled, due ones found, and each send bracketed by a claim (with its owner and end) and its removal.
//!
//! A reminder is the hash `r:<id>`, its id from the counter
//! `reminder_ids` (a plan is named by its first reminder's id, so neither
//! is ever given twice). A pending one is in the set `due`, by due time;
//! a claimed one in `claimed`, by when its claim runs out; `ur:<user>`
//! holds a person's reminders, claimed or not.

use super::fields::{Row, or_empty};
use super::{Lua, RedisStore, script};
use crate::clock::Instant;
use crate::reminders::{Kind, NewReminder, Reminder};
use crate::store::StoreError;

/// How many arguments each new reminder takes in `SET_PLAN`.
const FIELDS: usize = 8;

/// Lua that cancels the pending reminders of `user` whose `field` is
/// `value` and returns how many (shared by the scripts below). A list
/// entry whose reminder is gone is dropped on the way.
const CANCEL_WHERE: &str = r#"
local function cancel_where(user, field, value)
  local gone = 0
  for _, id in ipairs(redis.call('SMEMBERS', P .. 'ur:' .. user)) do
    local row = redis.call('HMGET', P .. 'r:' .. id, field, 'claimed')
    if not row[2] then
      redis.call('SREM', P .. 'ur:' .. user, id)
    elseif row[2] == '0' and row[1] == value then
      drop_reminder(id)
      gone = gone + 1
    end
  end
  return gone
end
"#;

/// Cancels person `ARGV[2]`'s pending reminders whose `ARGV[3]` is
/// `ARGV[4]`; returns how many.
static CANCEL: Lua = Lua::new(|| {
    script(&format!(
        "{CANCEL_WHERE}\nreturn cancel_where(ARGV[2], ARGV[3], ARGV[4])"
    ))
});

/// Replaces person `ARGV[3]`'s pending reminders in chat `ARGV[2]` with
/// the new ones (`FIELDS` arguments each, from `ARGV[4]`); returns the
/// plan's id, 0 if there were none.
static SET_PLAN: Lua = Lua::new(|| {
    script(&format!(
        r#"{CANCEL_WHERE}
cancel_where(ARGV[3], 'chat', ARGV[2])
local plan = nil
for i = 4, #ARGV - 7, 8 do
  local id = tostring(redis.call('INCR', P .. 'reminder_ids'))
  plan = plan or id
  redis.call('HSET', P .. 'r:' .. id, 'id', id, 'plan', plan, 'chat', ARGV[i],
    'user', ARGV[i + 1], 'name', ARGV[i + 2], 'lang', ARGV[i + 3], 'kind', ARGV[i + 4],
    'due', ARGV[i + 5], 'deadline', ARGV[i + 6], 'thread', ARGV[i + 7], 'claimed', '0')
  redis.call('SADD', P .. 'ur:' .. ARGV[i + 1], id)
  redis.call('ZADD', P .. 'due', ARGV[i + 5], id)
end
return plan or '0'
"#
    ))
});

/// Person `ARGV[3]`'s pending reminders, in chat `ARGV[2]` (empty: any).
static PENDING: Lua = Lua::new(|| {
    script(
        r#"
local found = {}
for _, id in ipairs(redis.call('SMEMBERS', P .. 'ur:' .. ARGV[3])) do
  local k = P .. 'r:' .. id
  local row = redis.call('HMGET', k, 'claimed', 'chat')
  if row[1] == '0' and (ARGV[2] == '' or row[2] == ARGV[2]) then
    found[#found + 1] = redis.call('HGETALL', k)
  end
end
return found
"#,
    )
});

/// The pending reminders due at `ARGV[2]`.
static DUE: Lua = Lua::new(|| {
    script(
        r#"
local found = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'due', '-inf', ARGV[2])) do
  local row = redis.call('HGETALL', P .. 'r:' .. id)
  if #row > 0 then found[#found + 1] = row else redis.call('ZREM', P .. 'due', id) end
end
return found
"#,
    )
});

/// Claims the reminders `ARGV[4..]` for `ARGV[2]` until `ARGV[3]`: all,
/// if every one is pending, else none; 1 if claimed.
static CLAIM: Lua = Lua::new(|| {
    script(
        r#"
for i = 4, #ARGV do
  if redis.call('HGET', P .. 'r:' .. ARGV[i], 'claimed') ~= '0' then return 0 end
end
for i = 4, #ARGV do
  redis.call('HSET', P .. 'r:' .. ARGV[i], 'claimed', '1', 'by', ARGV[2], 'until', ARGV[3])
  redis.call('ZREM', P .. 'due', ARGV[i])
  redis.call('ZADD', P .. 'claimed', ARGV[3], ARGV[i])
end
return 1
"#,
    )
});

/// Returns the claimed reminders `ARGV[2..]` to pending.
static RELEASE: Lua = Lua::new(|| {
    script(
        r#"
for i = 2, #ARGV do
  local k = P .. 'r:' .. ARGV[i]
  local row = redis.call('HMGET', k, 'claimed', 'due')
  if row[1] == '1' then
    redis.call('HSET', k, 'claimed', '0')
    redis.call('HDEL', k, 'by', 'until')
    redis.call('ZREM', P .. 'claimed', ARGV[i])
    redis.call('ZADD', P .. 'due', row[2], ARGV[i])
  end
end
"#,
    )
});

/// Removes the reminders `ARGV[2..]`.
static FINISH: Lua = Lua::new(|| {
    script(
        r#"
for i = 2, #ARGV do drop_reminder(ARGV[i]) end
"#,
    )
});

/// Removes the reminders whose claim ran out before `ARGV[2]`; returns
/// how many.
static RECOVER: Lua = Lua::new(|| {
    script(
        r#"
local gone = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'claimed', '-inf', '(' .. ARGV[2])) do
  if redis.call('HGET', P .. 'r:' .. id, 'claimed') == '1' then
    drop_reminder(id)
    gone = gone + 1
  else
    redis.call('ZREM', P .. 'claimed', id)
  end
end
return gone
"#,
    )
});

fn reminder(flat: Vec<String>) -> Result<Option<Reminder>, StoreError> {
    let Some(row) = Row::new("reminder", flat) else {
        return Ok(None);
    };
    Ok(Some(Reminder {
        id: row.get("id")?,
        plan: row.get("plan")?,
        chat: row.get("chat")?,
        user: row.get("user")?,
        name: row.text("name")?,
        lang: row.lang(),
        kind: Kind::from_code(&row.text("kind")?).unwrap_or(Kind::Window),
        due_at: row.get("due")?,
        deadline: row.opt("deadline")?,
        thread: row.opt("thread")?,
    }))
}

fn reminders(rows: Vec<Vec<String>>) -> Result<Vec<Reminder>, StoreError> {
    let mut found = Vec::with_capacity(rows.len());
    for flat in rows {
        found.extend(reminder(flat)?);
    }
    Ok(found)
}

impl RedisStore {
    pub(super) async fn put_plan(
        &self,
        chat: i64,
        user: u64,
        new: &[NewReminder],
    ) -> Result<i64, StoreError> {
        let mut invocation = self.invoke(&SET_PLAN);
        invocation.arg(chat).arg(user);
        for n in new {
            let fields: [String; FIELDS] = [
                n.chat.to_string(),
                n.user.to_string(),
                n.name.clone(),
                n.lang.code().to_string(),
                n.kind.code().to_string(),
                n.due_at.to_string(),
                or_empty(n.deadline),
                or_empty(n.thread),
            ];
            invocation.arg(&fields[..]);
        }
        self.eval(&invocation).await
    }

    pub(super) async fn pending_of(
        &self,
        chat: Option<i64>,
        user: u64,
    ) -> Result<Vec<Reminder>, StoreError> {
        let mut invocation = self.invoke(&PENDING);
        invocation.arg(or_empty(chat)).arg(user);
        let mut found = reminders(self.eval(&invocation).await?)?;
        found.sort_by_key(|r| (r.due_at, r.id));
        Ok(found)
    }

    /// Cancels the person's pending reminders whose `field` is `value`.
    pub(super) async fn cancel_where(
        &self,
        user: u64,
        field: &str,
        value: i64,
    ) -> Result<usize, StoreError> {
        let mut invocation = self.invoke(&CANCEL);
        invocation.arg(user).arg(field).arg(value);
        self.eval(&invocation).await
    }

    /// Whole plans, the first `limit` by plan, each by time.
    pub(super) async fn due_plans(
        &self,
        now: Instant,
        limit: usize,
    ) -> Result<Vec<Reminder>, StoreError> {
        let mut invocation = self.invoke(&DUE);
        invocation.arg(now);
        let mut due = reminders(self.eval(&invocation).await?)?;
        due.sort_by_key(|r| (r.plan, r.due_at, r.id));
        let mut plans: Vec<i64> = due.iter().map(|r| r.plan).collect();
        plans.dedup();
        plans.truncate(limit);
        due.retain(|r| plans.contains(&r.plan));
        Ok(due)
    }

    pub(super) async fn earliest_due(&self) -> Result<Option<Instant>, StoreError> {
        let first: Vec<(String, Instant)> = self
            .query(
                redis::cmd("ZRANGE")
                    .arg(format!("{}due", self.prefix()))
                    .arg(0)
                    .arg(0)
                    .arg("WITHSCORES"),
            )
            .await?;
        Ok(first.first().map(|(_, due)| *due))
    }

    pub(super) async fn claim(
        &self,
        ids: &[i64],
        owner: &str,
        until: Instant,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.invoke(&CLAIM);
        invocation.arg(owner).arg(until).arg(ids);
        Ok(self.eval::<i64>(&invocation).await? == 1)
    }

    pub(super) async fn release(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.for_each_id(&RELEASE, ids).await
    }

    pub(super) async fn finish(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.for_each_id(&FINISH, ids).await
    }

    async fn for_each_id(&self, script: &redis::Script, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut invocation = self.invoke(script);
        invocation.arg(ids);
        self.eval(&invocation).await
    }

    pub(super) async fn recover(&self, now: Instant) -> Result<usize, StoreError> {
        let mut invocation = self.invoke(&RECOVER);
        invocation.arg(now);
        self.eval(&invocation).await
    }
}
