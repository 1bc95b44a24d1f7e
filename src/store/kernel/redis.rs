//! The kernel on Redis, the backend several bot processes can share (`DATABASE_URL=redis://…`).
//!
//! Every key is under one prefix (`icp:` unless told otherwise), then a
//! letter for what it holds: `r:` a record (a hash), `i:` an index and
//! `l:` a log (sorted sets), `q:` a sequence, `w:` a window; beside them
//! the counters of versions, of log values and of takes, and the index of
//! records that expire. A read of any number of records is one pipeline,
//! a batch one Lua script: each costs one round trip (a script's first
//! call on a server costs two more, to load it there). The store is for
//! one Redis server, not a cluster: the sweep reaches keys it reads from
//! the expiry index. The prefix is the bot's alone: a key of another
//! kind written under it (a string where an index should be) would make
//! a batch fail halfway, as Redis does not undo a script.
//!
//! Times are the bot's clock, stored and compared as numbers, so tests
//! can move it by hand; Redis's own clock only bounds how long an expired
//! record's key stays when no one sweeps it, and counts the windows. The
//! connection is made on the first call, so the bot starts while Redis is
//! down; then its calls fail, and it reconnects by itself.
//!
//! A batch's `sync` asks nothing more of Redis: how soon a write is on
//! disk is the server's own setting (`appendfsync`).

mod commit;
mod connection;
#[cfg(test)]
mod tests;
mod windows;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

use super::{Batch, Kernel, Record, Span, Window};
use crate::clock::Instant;
use crate::store::StoreError;
pub(crate) use connection::redacted;

/// The prefix of every key, unless the kernel is opened with another.
pub(crate) const DEFAULT_PREFIX: &str = "icp:";

/// The kernel's handle on Redis. Cloning it shares the connection.
#[derive(Clone)]
pub(crate) struct RedisKernel {
    shared: Arc<Shared>,
    keys: Arc<Keys>,
}

/// What the clones share.
struct Shared {
    client: redis::Client,
    /// Made on the first call, inside the runtime.
    connection: OnceCell<ConnectionManager>,
    /// Where the store is, without the password.
    place: String,
}

/// The names of the kernel's keys, all under its prefix.
struct Keys {
    prefix: String,
}

/// One of the kernel's keys: its prefix, the letter of what it holds, its
/// name. It goes into a command as one argument, written there in place,
/// with no string made for it on the way.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Key<'a> {
    prefix: &'a str,
    kind: &'static str,
    name: &'a str,
}

impl redis::ToRedisArgs for Key<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + redis::RedisWrite,
    {
        use std::io::Write as _;
        let mut arg = out.writer_for_next_arg();
        // A command's buffer takes every byte it is given: these writes
        // cannot fail.
        let _ = arg.write_all(self.prefix.as_bytes());
        let _ = arg.write_all(self.kind.as_bytes());
        let _ = arg.write_all(self.name.as_bytes());
    }
}

impl Keys {
    fn key<'a>(&'a self, kind: &'static str, name: &'a str) -> Key<'a> {
        Key {
            prefix: &self.prefix,
            kind,
            name,
        }
    }

    fn record<'a>(&'a self, key: &'a str) -> Key<'a> {
        self.key("r:", key)
    }

    fn index<'a>(&'a self, name: &'a str) -> Key<'a> {
        self.key("i:", name)
    }

    fn log<'a>(&'a self, name: &'a str) -> Key<'a> {
        self.key("l:", name)
    }

    fn sequence<'a>(&'a self, name: &'a str) -> Key<'a> {
        self.key("q:", name)
    }

    fn window<'a>(&'a self, name: &'a str) -> Key<'a> {
        self.key("w:", name)
    }

    /// The counter every version is drawn from.
    fn versions(&self) -> Key<'_> {
        self.key("versions", "")
    }

    /// The counter that numbers log values.
    fn appended(&self) -> Key<'_> {
        self.key("appended", "")
    }

    /// The records that expire, scored by when.
    fn expiring(&self) -> Key<'_> {
        self.key("expiring", "")
    }

    /// The counter that numbers the windows' takes.
    fn taken(&self) -> Key<'_> {
        self.key("taken", "")
    }
}

/// A script's call, as a command to fill: its SHA, then how many keys
/// follow; the keys and the arguments, about `size` of them (a count and
/// bytes), are the caller's to add.
fn evalsha(script: &redis::Script, keys: usize, size: (usize, usize)) -> redis::Cmd {
    let mut cmd = redis::Cmd::with_capacity(3 + size.0, 64 + size.1);
    cmd.arg("EVALSHA").arg(script.get_hash()).arg(keys);
    cmd
}

/// A lower score bound as Redis reads one: `i64::MIN` is the end of the
/// line. Any other bound is the number itself, which Redis rounds to a
/// double just as it rounded the scores it is compared with.
fn lower(score: i64) -> String {
    match score {
        i64::MIN => "-inf".to_string(),
        score => score.to_string(),
    }
}

/// An upper score bound as Redis reads one: `i64::MAX` is the end of the
/// line.
fn upper(score: i64) -> String {
    match score {
        i64::MAX => "+inf".to_string(),
        score => score.to_string(),
    }
}

/// A score as Redis gives it back (a double, which holds every time and
/// small id exactly): out of `i64`'s range it is the nearest end.
fn score(stored: f64) -> i64 {
    // `as` saturates, which is the nearest end.
    stored as i64
}

impl RedisKernel {
    /// A kernel on the Redis a `redis://` or `rediss://` URL names;
    /// nothing is connected until the first call.
    pub(crate) fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with_prefix(url, DEFAULT_PREFIX)
    }

    /// `open`, with every key under `prefix` instead of the default.
    pub(crate) fn open_with_prefix(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|_| StoreError::Unsupported(redacted(url).into_owned()))?;
        let info = client.get_connection_info();
        let tls = matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
        let place = format!(
            "redis at {}/{}{}",
            info.addr(),
            info.redis_settings().db(),
            if tls { " (TLS)" } else { "" }
        );
        Ok(RedisKernel {
            shared: Arc::new(Shared {
                client,
                connection: OnceCell::new(),
                place,
            }),
            keys: Arc::new(Keys {
                prefix: prefix.to_string(),
            }),
        })
    }
}

/// A record's fields: value, version, expiry.
type Fields = (Option<String>, Option<String>, Option<String>);

/// A record's fields out of what `HGETALL` gives, each field's name then
/// its value (none for a key that is not there). Fields of other names
/// are not the kernel's and are passed over.
fn fields(key: &str, all: Vec<String>) -> Result<Fields, StoreError> {
    if !all.len().is_multiple_of(2) {
        return Err(StoreError::Redis(format!(
            "the record {key:?} is malformed"
        )));
    }
    let mut fields: Fields = (None, None, None);
    let mut all = all.into_iter();
    while let (Some(name), Some(value)) = (all.next(), all.next()) {
        match name.as_str() {
            "v" => fields.0 = Some(value),
            "n" => fields.1 = Some(value),
            "x" => fields.2 = Some(value),
            _ => {}
        }
    }
    Ok(fields)
}

/// Several records' fields as `HGETALL` gives them, read by a script: for
/// when Redis will not take the same reads as a transaction.
static GET: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
        local out = {}
        for i, key in ipairs(KEYS) do
            out[i] = redis.call('HGETALL', key)
        end
        return out
        ",
    )
});

/// The record `fields` hold, if it is there and alive at `now`.
fn record(key: &str, fields: Fields, now: Instant) -> Result<Option<Record>, StoreError> {
    let malformed = || StoreError::Redis(format!("the record {key:?} is malformed"));
    match fields {
        (None, None, None) => Ok(None),
        (Some(value), Some(version), expires) => {
            let version = version.parse::<u64>().map_err(|_| malformed())?;
            if let Some(expires) = expires {
                let expires = expires.parse::<Instant>().map_err(|_| malformed())?;
                if expires <= now {
                    return Ok(None);
                }
            }
            Ok(Some(Record { value, version }))
        }
        _ => Err(malformed()),
    }
}

#[async_trait]
impl Kernel for RedisKernel {
    /// One round trip: a pipeline of one `HGETALL` a key, in a transaction
    /// when there are several, so that they are read at one moment (an
    /// entry and its replies, say, never one from before a write and the
    /// other from after it). Redis takes a transaction of plain reads for
    /// a third of the work of a script making the same reads, and
    /// `HGETALL`, with no field names to read, for less than `HMGET`. But
    /// Redis at its memory limit refuses to queue any command in a
    /// transaction, reads too: then the reads are made by a script, which
    /// it still runs, so that the store reads while it refuses writes.
    async fn get(&self, keys: &[String], now: Instant) -> Result<Vec<Option<Record>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        if keys.len() > 1 {
            pipe.atomic();
        }
        for key in keys {
            pipe.cmd("HGETALL").arg(self.keys.record(key));
        }
        let rows: Vec<Vec<String>> = match self.shared.pipeline(&pipe).await {
            Err(StoreError::Redis(_)) if keys.len() > 1 => {
                let mut cmd = evalsha(&GET, keys.len(), (keys.len(), 32 * keys.len()));
                for key in keys {
                    cmd.arg(self.keys.record(key));
                }
                self.shared.eval(&GET, &cmd).await?
            }
            done => done?,
        };
        if rows.len() != keys.len() {
            return Err(StoreError::Redis(format!(
                "{} records asked for, {} given",
                keys.len(),
                rows.len()
            )));
        }
        keys.iter()
            .zip(rows)
            .map(|(key, all)| record(key, fields(key, all)?, now))
            .collect()
    }

    /// One round trip: one script.
    async fn commit(&self, batch: Batch) -> Result<usize, StoreError> {
        self.commit_batch(&batch).await
    }

    async fn range(&self, index: &str, span: Span) -> Result<Vec<(String, i64)>, StoreError> {
        if span.limit == 0 || span.min > span.max {
            return Ok(Vec::new());
        }
        // Redis takes the offset and the count as signed numbers.
        let offset = i64::try_from(span.offset).unwrap_or(i64::MAX);
        let limit = i64::try_from(span.limit).unwrap_or(i64::MAX);
        let (name, from, to) = if span.rev {
            ("ZREVRANGEBYSCORE", upper(span.max), lower(span.min))
        } else {
            ("ZRANGEBYSCORE", lower(span.min), upper(span.max))
        };
        let mut cmd = redis::cmd(name);
        cmd.arg(self.keys.index(index))
            .arg(from)
            .arg(to)
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(offset)
            .arg(limit);
        let got: Vec<(String, f64)> = self.shared.query(&cmd).await?;
        Ok(got
            .into_iter()
            .map(|(member, stored)| (member, score(stored)))
            .collect())
    }

    async fn count(&self, index: &str) -> Result<usize, StoreError> {
        let mut cmd = redis::cmd("ZCARD");
        cmd.arg(self.keys.index(index));
        self.shared.query(&cmd).await
    }

    async fn read_log(&self, log: &str, since: Instant) -> Result<Vec<String>, StoreError> {
        let mut cmd = redis::cmd("ZRANGEBYSCORE");
        cmd.arg(self.keys.log(log)).arg(lower(since)).arg("+inf");
        let members: Vec<String> = self.shared.query(&cmd).await?;
        members
            .into_iter()
            .map(|member| match member.split_once('|') {
                Some((_, value)) => Ok(value.to_string()),
                None => Err(StoreError::Redis(format!(
                    "the log {log:?} holds {member:?}, with no number before it"
                ))),
            })
            .collect()
    }

    async fn next_id(&self, seq: &str) -> Result<i64, StoreError> {
        let mut cmd = redis::cmd("INCR");
        cmd.arg(self.keys.sequence(seq));
        self.shared.query(&cmd).await
    }

    /// Redis expires a record's key by itself, a little after its time if
    /// the two clocks agree; the sweep removes at once what has expired by
    /// the bot's clock, which tests move by hand. One round trip unless
    /// hundreds have expired.
    async fn sweep(&self, now: Instant) -> Result<usize, StoreError> {
        self.sweep_expired(now).await
    }

    /// One round trip: a single script, on Redis's clock.
    async fn take(&self, windows: &[Window]) -> Result<Option<Duration>, StoreError> {
        self.take_all(windows).await
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        self.shared.place.clone()
    }
}
