//! The kernel in memory: for tests and for running without a disk.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use super::{Batch, Kernel, Record, Span, Window, Write};
use crate::clock::Instant;
use crate::store::StoreError;

/// Everything in one map per kind, under one lock.
#[derive(Default)]
pub(crate) struct MemoryKernel {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Each record with its expiry.
    records: HashMap<String, (Record, Option<Instant>)>,
    /// The last version given.
    versions: u64,
    indexes: HashMap<String, Index>,
    /// Each log's values with their time and the order they came in.
    logs: HashMap<String, BTreeSet<(Instant, u64, String)>>,
    appended: u64,
    seqs: HashMap<String, i64>,
    /// Each window's takes, oldest first.
    windows: HashMap<String, Vec<std::time::Instant>>,
}

/// Members by score, and each member's score.
#[derive(Default)]
struct Index {
    ordered: BTreeSet<(i64, String)>,
    scores: HashMap<String, i64>,
}

impl Index {
    fn set(&mut self, member: &str, score: i64) {
        if let Some(old) = self.scores.insert(member.to_string(), score) {
            self.ordered.remove(&(old, member.to_string()));
        }
        self.ordered.insert((score, member.to_string()));
    }

    fn remove(&mut self, member: &str) {
        if let Some(old) = self.scores.remove(member) {
            self.ordered.remove(&(old, member.to_string()));
        }
    }
}

impl Inner {
    fn version(&self, key: &str, now: Instant) -> u64 {
        self.live(key, now).map_or(0, |r| r.version)
    }

    fn live(&self, key: &str, now: Instant) -> Option<&Record> {
        self.records
            .get(key)
            .filter(|(_, expires)| expires.is_none_or(|at| at > now))
            .map(|(record, _)| record)
    }

    fn apply(&mut self, write: Write, now: Instant) -> usize {
        match write {
            Write::Put {
                key,
                value,
                expires,
            } => {
                self.versions += 1;
                let version = self.versions;
                self.records
                    .insert(key, (Record { value, version }, expires));
                0
            }
            Write::Delete { key } => {
                let live = self.live(&key, now).is_some();
                self.records.remove(&key);
                usize::from(live)
            }
            Write::Index {
                index,
                member,
                score,
            } => {
                self.indexes.entry(index).or_default().set(&member, score);
                0
            }
            Write::Unindex { index, member } => {
                if let Some(index) = self.indexes.get_mut(&index) {
                    index.remove(&member);
                }
                0
            }
            Write::Trim { index, upto } => {
                let Some(index) = self.indexes.get_mut(&index) else {
                    return 0;
                };
                let gone: Vec<String> = index
                    .ordered
                    .iter()
                    .take_while(|(score, _)| *score <= upto)
                    .map(|(_, member)| member.clone())
                    .collect();
                for member in &gone {
                    index.remove(member);
                }
                gone.len()
            }
            Write::Append { log, at, value } => {
                self.appended += 1;
                let seq = self.appended;
                self.logs.entry(log).or_default().insert((at, seq, value));
                0
            }
            Write::Cut { log, before } => {
                let Some(log) = self.logs.get_mut(&log) else {
                    return 0;
                };
                let kept = log.split_off(&(before, 0, String::new()));
                std::mem::replace(log, kept).len()
            }
        }
    }
}

impl MemoryKernel {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A batch is checked whole before any of it is written, and a
        // write cannot panic halfway: a poisoned lock guards whole data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Kernel for MemoryKernel {
    async fn get(&self, keys: &[String], now: Instant) -> Result<Vec<Option<Record>>, StoreError> {
        let inner = self.lock();
        Ok(keys.iter().map(|k| inner.live(k, now).cloned()).collect())
    }

    async fn commit(&self, batch: Batch) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let now = batch.now;
        if batch
            .checks
            .iter()
            .any(|(key, version)| inner.version(key, now) != *version)
        {
            return Err(StoreError::Conflict);
        }
        Ok(batch.writes.into_iter().map(|w| inner.apply(w, now)).sum())
    }

    async fn range(&self, index: &str, span: Span) -> Result<Vec<(String, i64)>, StoreError> {
        let inner = self.lock();
        let Some(index) = inner.indexes.get(index) else {
            return Ok(Vec::new());
        };
        let within = index
            .ordered
            .range((span.min, String::new())..)
            .take_while(|(score, _)| *score <= span.max)
            .map(|(score, member)| (member.clone(), *score));
        Ok(if span.rev {
            let all: Vec<_> = within.collect();
            all.into_iter()
                .rev()
                .skip(span.offset)
                .take(span.limit)
                .collect()
        } else {
            within.skip(span.offset).take(span.limit).collect()
        })
    }

    async fn count(&self, index: &str) -> Result<usize, StoreError> {
        Ok(self.lock().indexes.get(index).map_or(0, |i| i.scores.len()))
    }

    async fn read_log(&self, log: &str, since: Instant) -> Result<Vec<String>, StoreError> {
        let inner = self.lock();
        Ok(inner.logs.get(log).map_or_else(Vec::new, |log| {
            log.range((since, 0, String::new())..)
                .map(|(_, _, value)| value.clone())
                .collect()
        }))
    }

    async fn next_id(&self, seq: &str) -> Result<i64, StoreError> {
        let mut inner = self.lock();
        let next = inner.seqs.entry(seq.to_string()).or_insert(0);
        *next += 1;
        Ok(*next)
    }

    async fn sweep(&self, now: Instant) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let before = inner.records.len();
        inner
            .records
            .retain(|_, (_, expires)| expires.is_none_or(|at| at > now));
        Ok(before - inner.records.len())
    }

    async fn take(&self, windows: &[Window]) -> Result<Option<Duration>, StoreError> {
        let now = std::time::Instant::now();
        let mut inner = self.lock();
        let mut wait = Duration::ZERO;
        for window in windows {
            let takes = inner.windows.entry(window.name.clone()).or_default();
            takes.retain(|at| now.duration_since(*at) < window.span);
            if takes.len() >= window.limit as usize
                && let Some(oldest) = takes.first()
            {
                wait = wait.max(window.span.saturating_sub(now.duration_since(*oldest)));
            }
        }
        if !wait.is_zero() {
            return Ok(Some(wait));
        }
        for window in windows {
            inner
                .windows
                .entry(window.name.clone())
                .or_default()
                .push(now);
        }
        Ok(None)
    }

    fn describe(&self) -> String {
        "memory (nothing survives a restart)".to_string()
    }
}
