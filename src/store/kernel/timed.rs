//! Every kernel call timed, for the store call latency histogram in /metrics.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant as Stopwatch};

use async_trait::async_trait;

use super::{Batch, Kernel, Record, Span, Window};
use crate::clock::Instant;
use crate::store::StoreError;

/// Where a call's name, its duration and whether it failed go.
pub type Timing = Arc<dyn Fn(&'static str, Duration, bool) + Send + Sync>;

/// A kernel whose every call is timed; what it answers is the inner
/// kernel's, unchanged.
pub(crate) struct Timed {
    inner: Arc<dyn Kernel>,
    timing: Timing,
}

impl Timed {
    pub(crate) fn new(inner: Arc<dyn Kernel>, timing: Timing) -> Timed {
        Timed { inner, timing }
    }

    async fn time<T>(
        &self,
        call: &'static str,
        work: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Stopwatch::now();
        let result = work.await;
        // A lost race is the store working as meant, not failing.
        let failed = matches!(&result, Err(e) if !matches!(e, StoreError::Conflict));
        (self.timing)(call, started.elapsed(), failed);
        result
    }
}

#[async_trait]
impl Kernel for Timed {
    async fn get(&self, keys: &[String], now: Instant) -> Result<Vec<Option<Record>>, StoreError> {
        self.time("get", self.inner.get(keys, now)).await
    }

    async fn commit(&self, batch: Batch) -> Result<usize, StoreError> {
        self.time("commit", self.inner.commit(batch)).await
    }

    async fn range(&self, index: &str, span: Span) -> Result<Vec<(String, i64)>, StoreError> {
        self.time("range", self.inner.range(index, span)).await
    }

    async fn count(&self, index: &str) -> Result<usize, StoreError> {
        self.time("count", self.inner.count(index)).await
    }

    async fn read_log(&self, log: &str, since: Instant) -> Result<Vec<String>, StoreError> {
        self.time("read_log", self.inner.read_log(log, since)).await
    }

    async fn next_id(&self, seq: &str) -> Result<i64, StoreError> {
        self.time("next_id", self.inner.next_id(seq)).await
    }

    async fn sweep(&self, now: Instant) -> Result<usize, StoreError> {
        self.time("sweep", self.inner.sweep(now)).await
    }

    async fn take(&self, windows: &[Window]) -> Result<Option<Duration>, StoreError> {
        self.time("take", self.inner.take(windows)).await
    }

    async fn hold(&self) -> Result<(), StoreError> {
        self.time("hold", self.inner.hold()).await
    }

    fn is_shared(&self) -> bool {
        self.inner.is_shared()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}
