//! The kernel's connection to Redis: made on the first call, remade by itself after a failure, and every call bounded in time.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, FromRedisValue, Script, ServerErrorKind};

use super::Shared;
use crate::store::StoreError;

/// How long Redis has to answer a command before the call fails.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a connection attempt may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

/// The bound on a whole call, reconnecting included: a Redis that is down
/// or hung fails the call instead of holding up the update.
const CALL_TIMEOUT: Duration = Duration::from_secs(6);

impl Shared {
    /// The connection, made the first time it is asked for. It is lazy: it
    /// connects on first use, so the bot starts while Redis is down.
    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        if let Some(made) = self.connection.get() {
            return Ok(made.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let client = self.client.clone();
        self.connection
            .get_or_try_init(
                || async move { ConnectionManager::new_lazy_with_config(client, config) },
            )
            .await
            .cloned()
            .map_err(failed)
    }

    /// Runs `call` on the connection, bounded by `CALL_TIMEOUT`.
    async fn run<T, F, Fut>(&self, call: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let connection = self.connection().await?;
        match tokio::time::timeout(CALL_TIMEOUT, call(connection)).await {
            Ok(done) => done.map_err(failed),
            Err(_) => Err(StoreError::Unavailable(format!(
                "{} did not answer within {} s",
                self.place,
                CALL_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Runs a script's call (`evalsha`'s command, filled): by its SHA,
    /// and only when the server does not have the script yet, its text
    /// first.
    pub(super) async fn eval<T: FromRedisValue>(
        &self,
        script: &Script,
        cmd: &redis::Cmd,
    ) -> Result<T, StoreError> {
        self.run(|mut c| async move {
            match cmd.query_async(&mut c).await {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    script.load_async(&mut c).await?;
                    cmd.query_async(&mut c).await
                }
                done => done,
            }
        })
        .await
    }

    /// Runs one command.
    pub(super) async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        self.run(|mut c| async move { cmd.query_async(&mut c).await })
            .await
    }

    /// Runs several commands, sent together and answered together: one
    /// round trip.
    pub(super) async fn pipeline<T: FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        self.run(|mut c| async move { pipe.query_async(&mut c).await })
            .await
    }
}

/// A Redis error as the store's: the server out of reach is `Unavailable`
/// (the caller may try again later), anything else is `Redis`. Neither
/// carries the URL, so no password reaches a message.
fn failed(e: redis::RedisError) -> StoreError {
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
        StoreError::Unavailable(format!("Redis: {e}"))
    } else {
        StoreError::Redis(e.to_string())
    }
}

/// The URL with its password, if any, replaced by `***`: for messages.
pub(crate) fn redacted(url: &str) -> std::borrow::Cow<'_, str> {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.into();
    };
    let authority_end = url[start..].find('/').map_or(url.len(), |i| start + i);
    let Some(at) = url[start..authority_end].rfind('@').map(|i| start + i) else {
        return url.into();
    };
    match url[start..at].find(':').map(|i| start + i) {
        Some(colon) => format!("{}***{}", &url[..=colon], &url[at..]).into(),
        // `redis://secret@host`: a password alone.
        None => format!("{}***{}", &url[..start], &url[at..]).into(),
    }
}
