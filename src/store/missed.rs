//! Replies given up on: the record `missed:<chat>:<user>`, written when an answer to a person could not be delivered through the whole retry window, and read with their next step, which tells them so and removes it.

use super::kernel::Batch;
use super::{SessionKey, Store, StoreError};
use crate::clock::Instant;

/// How long a missed answer is remembered: a person back after a week
/// starts afresh anyway.
pub(crate) const MISSED_RETENTION_SECS: i64 = 7 * 24 * 3600;

/// The record that says an answer to `key` was given up on.
pub(crate) fn missed_key(key: SessionKey) -> String {
    format!("missed:{}", key.id())
}

impl Store {
    /// Records that an answer to `key` was given up on at `now`: their
    /// next step tells them.
    pub async fn mark_missed(&self, key: SessionKey, now: Instant) -> Result<(), StoreError> {
        let mut batch = Batch::new(now);
        batch.put_until(
            missed_key(key),
            now.to_string(),
            Some(now + MISSED_RETENTION_SECS),
        );
        self.kernel.commit(batch).await.map(|_| ())
    }
}
