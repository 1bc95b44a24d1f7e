//! Sliding windows several processes share, counted on Redis's clock: a take from every window in one script, or none.
//!
//! Each window is a sorted set of the takes it holds, scored by when they
//! were taken (milliseconds of Redis's `TIME`, the one clock every process
//! sees alike), expiring once its span has passed with nothing taken.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::evalsha;
use crate::store::StoreError;
use crate::store::kernel::Window;

/// The longest span a window is given, in milliseconds (a year): past
/// this, a span is of no use to a budget, and Redis refuses lifetimes
/// that do not fit its clock.
const LONGEST_MS: u64 = 365 * 24 * 3600 * 1000;

/// Takes one from every window in `KEYS[2..]` (limit `ARGV[2i-1]` in
/// `ARGV[2i]` ms for the `i`th), or none if any is full: 0 when taken,
/// else the milliseconds until the window that frees last has room.
/// `KEYS[1]` numbers the takes, so that two at one millisecond stay two.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
for i = 2, #KEYS do
  local key = KEYS[i]
  local span = tonumber(ARGV[2 * i - 2])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', now - span))
  if redis.call('ZCARD', key) >= tonumber(ARGV[2 * i - 3]) then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local left = span
    if oldest[2] then left = tonumber(oldest[2]) + span - now end
    if left > wait then wait = left end
  end
end
if wait > 0 then return wait end
local at = string.format('%d', now)
local member = string.format('%d-%d', now, redis.call('INCR', KEYS[1]))
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], at, member)
  redis.call('PEXPIRE', KEYS[i], ARGV[2 * i - 2])
end
return 0
"#,
    )
});

impl super::RedisKernel {
    /// One round trip: a single script.
    pub(super) async fn take_all(
        &self,
        windows: &[Window],
    ) -> Result<Option<Duration>, StoreError> {
        if windows.is_empty() {
            return Ok(None);
        }
        let mut cmd = evalsha(
            &TAKE,
            1 + windows.len(),
            (3 * windows.len() + 1, 64 * windows.len() + 32),
        );
        cmd.arg(self.keys.taken());
        for window in windows {
            cmd.arg(self.keys.window(&window.name));
        }
        for window in windows {
            let span =
                u64::try_from(window.span.as_millis()).map_or(LONGEST_MS, |ms| ms.min(LONGEST_MS));
            cmd.arg(window.limit).arg(span);
        }
        let wait: u64 = self.shared.eval(&TAKE, &cmd).await?;
        Ok((wait > 0).then(|| Duration::from_millis(wait)))
    }
}
