//! A kernel in memory that fails on demand, for tests: every call while told to fail or hang, or the next commits as scripted.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::memory::MemoryKernel;
use super::{Batch, Kernel, Record, Span, Window};
use crate::clock::Instant;
use crate::store::StoreError;

/// A kernel in memory that says it is shared, as Redis does. While
/// `failing` or `hanging`, every read and write fails or never returns;
/// `commits` answers the next commits, one each in turn: `Some(error)`
/// instead of writing, `None` let through.
#[derive(Default)]
pub(crate) struct Flaky {
    pub(crate) inner: MemoryKernel,
    pub(crate) failing: AtomicBool,
    pub(crate) hanging: AtomicBool,
    pub(crate) commits: Mutex<VecDeque<Option<StoreError>>>,
}

impl Flaky {
    /// A kernel whose next commits go as `script` says.
    pub(crate) fn scripted(script: impl IntoIterator<Item = Option<StoreError>>) -> Flaky {
        Flaky {
            commits: Mutex::new(script.into_iter().collect()),
            ..Flaky::default()
        }
    }

    async fn call(&self) -> Result<(), StoreError> {
        if self.hanging.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("connection refused".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl Kernel for Flaky {
    async fn get(&self, keys: &[String], now: Instant) -> Result<Vec<Option<Record>>, StoreError> {
        self.call().await?;
        self.inner.get(keys, now).await
    }

    async fn commit(&self, batch: Batch) -> Result<usize, StoreError> {
        self.call().await?;
        let scripted = self
            .commits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
            .flatten();
        match scripted {
            Some(error) => Err(error),
            None => self.inner.commit(batch).await,
        }
    }

    async fn range(&self, index: &str, span: Span) -> Result<Vec<(String, i64)>, StoreError> {
        self.inner.range(index, span).await
    }

    async fn count(&self, index: &str) -> Result<usize, StoreError> {
        self.inner.count(index).await
    }

    async fn read_log(&self, log: &str, since: Instant) -> Result<Vec<String>, StoreError> {
        self.inner.read_log(log, since).await
    }

    async fn next_id(&self, seq: &str) -> Result<i64, StoreError> {
        self.inner.next_id(seq).await
    }

    async fn sweep(&self, now: Instant) -> Result<usize, StoreError> {
        self.inner.sweep(now).await
    }

    async fn take(&self, windows: &[Window]) -> Result<Option<Duration>, StoreError> {
        self.inner.take(windows).await
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        "flaky memory".into()
    }
}
