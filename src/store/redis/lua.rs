//! The Lua the store's scripts share: the key prefix, always `ARGV[1]`, and steps several scripts take.

use std::sync::LazyLock;

use redis::Script;

/// Lua shared by the scripts: the key prefix (always `ARGV[1]`) and the
/// steps several of them take.
const PRELUDE: &str = r#"
local P = ARGV[1]
local function drop_reminder(id)
  local k = P .. 'r:' .. id
  local user = redis.call('HGET', k, 'user')
  if user then redis.call('SREM', P .. 'ur:' .. user, id) end
  redis.call('DEL', k)
  redis.call('ZREM', P .. 'due', id)
  redis.call('ZREM', P .. 'claimed', id)
end
local function add_facts(from)
  for i = from, #ARGV - 1, 2 do
    local seq = redis.call('INCR', P .. 'fact_seq')
    redis.call('ZADD', P .. 'facts', ARGV[i], string.format('%016d', seq) .. '|' .. ARGV[i + 1])
  end
end
"#;

/// A script with the prelude before `body`.
pub(super) fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

/// A lazily built script, for the `static`s of the submodules.
pub(super) type Lua = LazyLock<Script>;
