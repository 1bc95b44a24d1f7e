//! The poller's lease: one process polls Telegram per Redis store.
//!
//! The lease is the key `poller`, holding a token of the process's own,
//! set only if absent and expiring after `LEASE`. A task renews it every
//! `RENEW` while the store is open; a process that dies lets it run out,
//! and one that closes its store gives it back at once.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;

use redis::Script;

use super::Shared;
use crate::store::StoreError;

/// How long the lease lasts unless renewed.
const LEASE: Duration = Duration::from_secs(30);

/// How often it is renewed.
const RENEW: Duration = Duration::from_secs(10);

/// Renews the lease `KEYS[1]` if the token `ARGV[1]` holds it, or takes
/// it again if it ran out and nobody took it; 1 if held.
static RENEW_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"#,
    )
});

/// Gives the lease `KEYS[1]` back if the token `ARGV[1]` holds it.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"#,
    )
});

fn lease_key(shared: &Shared) -> String {
    format!("{}poller", shared.prefix)
}

/// A token no other process has: the process id, the time, and the
/// standard library's random hash keys.
fn token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(nanos);
    format!("{}-{nanos}-{:016x}", std::process::id(), hasher.finish())
}

/// Takes the lease for this store, or fails with `InUse` if another
/// process holds it. Held already, it succeeds at once.
pub(super) async fn hold(shared: &Arc<Shared>) -> Result<(), StoreError> {
    let mut held = shared.lease.lock().await;
    if held.is_some() {
        return Ok(());
    }
    let token = token();
    let key = lease_key(shared);
    let taken: Option<String> = shared
        .query(
            redis::cmd("SET")
                .arg(&key)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(LEASE.as_millis() as u64),
        )
        .await?;
    if taken.is_none() {
        return Err(StoreError::InUse(PathBuf::from(&shared.place)));
    }
    tokio::spawn(renew(Arc::downgrade(shared), key, token.clone()));
    *held = Some(token);
    Ok(())
}

/// Renews the lease until the store is closed.
async fn renew(shared: Weak<Shared>, key: String, token: String) {
    let mut ticks = tokio::time::interval(RENEW);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut invocation = RENEW_LEASE.key(&key);
        invocation.arg(&token).arg(LEASE.as_millis() as u64);
        match shared.eval::<i64>(&invocation).await {
            Ok(1) => {}
            Ok(_) => log::error!(
                "store: another process took the poller's lease on {}; both may poll Telegram",
                shared.place
            ),
            Err(e) => log::warn!("store: the poller's lease could not be renewed: {e}"),
        }
    }
}

/// Gives the lease back as the store closes, so a successor need not wait
/// for it to run out. A blocking call of at most a second or two: it runs
/// once, as the process ends.
pub(super) fn release(shared: &mut Shared) {
    let Some(token) = shared.lease.get_mut().take() else {
        return;
    };
    let wait = Duration::from_secs(1);
    let released = shared
        .client
        .get_connection_with_timeout(wait)
        .and_then(|mut connection| {
            connection.set_read_timeout(Some(wait))?;
            connection.set_write_timeout(Some(wait))?;
            RELEASE
                .key(lease_key(shared))
                .arg(&token)
                .invoke::<()>(&mut connection)
        });
    if let Err(e) = released {
        log::warn!("store: the poller's lease was not given back (it runs out by itself): {e}");
    }
}
