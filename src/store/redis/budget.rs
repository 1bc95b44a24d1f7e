//! The budget of messages all processes on one Redis share: Telegram's limits counted in sliding windows, on Redis's clock.
//!
//! Each window is a sorted set of the sends it holds, scored by when they
//! were taken (milliseconds of Redis's `TIME`, the one clock every process
//! sees alike), expiring once its span has passed with nothing taken.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Lua, Shared, script};
use crate::store::{Budget, Rates, StoreError};

/// Takes one send from every window in `KEYS` (limit `ARGV[2i]` in
/// `ARGV[2i+1]` ms each), or none if any is full: 0 when taken, else the
/// milliseconds until the window that frees last has room.
static TAKE: Lua = Lua::new(|| {
    script(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i])
  local span = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', now - span))
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local left = span
    if oldest[2] then left = tonumber(oldest[2]) + span - now end
    if left > wait then wait = left end
  end
end
if wait > 0 then return wait end
local member = string.format('%d-%d', now, redis.call('INCR', P .. 'budget:seq'))
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, string.format('%d', now), member)
  redis.call('PEXPIRE', key, ARGV[2 * i + 1])
end
return 0
"#,
    )
});

/// Telegram's limits on sending, shared through Redis.
pub struct RedisBudget {
    shared: Arc<Shared>,
    rates: Rates,
}

impl RedisBudget {
    pub(super) fn new(shared: Arc<Shared>, rates: Rates) -> Self {
        RedisBudget { shared, rates }
    }

    /// The windows a send to `chat` counts in: key, limit, span in ms.
    /// One with no limit (0) is left out.
    fn windows(&self, chat: i64) -> Vec<(String, u32, u64)> {
        let Rates {
            per_second,
            private_burst,
            group_per_second,
            group_per_minute,
            second_ms,
        } = self.rates;
        let p = &self.shared.prefix;
        let mut windows = vec![(format!("{p}budget:bot"), per_second, second_ms)];
        if chat > 0 {
            windows.push((
                format!("{p}budget:chat:{chat}"),
                private_burst,
                u64::from(private_burst) * second_ms,
            ));
        } else if chat < 0 {
            windows.push((
                format!("{p}budget:second:{chat}"),
                group_per_second,
                second_ms,
            ));
            windows.push((
                format!("{p}budget:minute:{chat}"),
                group_per_minute,
                60 * second_ms,
            ));
        }
        windows.retain(|(_, limit, span)| *limit > 0 && *span > 0);
        windows
    }
}

#[async_trait]
impl Budget for RedisBudget {
    /// One round trip: a single script.
    async fn take(&self, chat: i64) -> Result<Option<Duration>, StoreError> {
        let mut invocation = TAKE.prepare_invoke();
        invocation.arg(&self.shared.prefix);
        for (key, limit, span) in self.windows(chat) {
            invocation.key(key).arg(limit).arg(span);
        }
        let wait: u64 = self.shared.eval(&invocation).await?;
        Ok((wait > 0).then(|| Duration::from_millis(wait)))
    }
}
