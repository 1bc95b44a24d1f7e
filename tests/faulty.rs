//! A store that fails on demand, as a broken disk or database would: a kernel that says no to the calls a rule picks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use icp_sms_doctor::clock::Instant;
use icp_sms_doctor::engine::Session;
use icp_sms_doctor::store::kernel::{Batch, Kernel, Record, Span, Window, Write};
use icp_sms_doctor::store::{SessionKey, Store, StoreError};
use tokio::sync::Notify;

/// A kernel call, as what it does for the bot, with the person it
/// concerns where its keys name one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A read of the person's session.
    Load(u64),
    /// A write of the person's session (a step's write).
    Save(u64),
    /// Removing reminders without a check: they were sent.
    Finish,
    /// Anything else: the kernel call, and the person if any.
    Other {
        call: &'static str,
        user: Option<u64>,
    },
}

impl Op {
    pub fn user(self) -> Option<u64> {
        match self {
            Op::Load(u) | Op::Save(u) => Some(u),
            Op::Other { user, .. } => user,
            Op::Finish => None,
        }
    }
}

/// The person a key or an index name is about, where it names one: the
/// last part of a session's, a question's, a person's menus or reminders,
/// the second of a language or a private chat.
fn user_of(name: &str) -> Option<u64> {
    let parts: Vec<&str> = name.split(':').collect();
    match parts.as_slice() {
        ["s" | "later" | "menus", _, user] | ["rems", _, user] => user.parse().ok(),
        ["lang" | "pc" | "rems", user] => user.parse().ok(),
        _ => None,
    }
}

fn session_user(key: &str) -> Option<u64> {
    key.starts_with("s:").then(|| user_of(key)).flatten()
}

/// What a batch's writes touch: keys and index names.
fn touched(write: &Write) -> &str {
    match write {
        Write::Put { key, .. } | Write::Delete { key } => key,
        Write::Index { index, .. } | Write::Unindex { index, .. } | Write::Trim { index, .. } => {
            index
        }
        Write::Append { log, .. } | Write::Cut { log, .. } => log,
    }
}

type Rule = Box<dyn Fn(Op) -> bool + Send + Sync>;

/// Wraps a store's kernel; calls the rule says fail return an error,
/// counted.
pub struct Faulty {
    inner: Store,
    rule: Mutex<Rule>,
    failures: AtomicUsize,
    failed: Notify,
    /// A session another process writes just before the next session
    /// write, as a step taken at the same moment elsewhere would.
    racing: Mutex<Option<Session>>,
    /// Writes that wait, as on a slow disk, until let go.
    hold: Mutex<Option<Hold>>,
}

/// Writes held back: those whose batch `matches`, from the moment the
/// hold is set until it is let go.
struct Hold {
    matches: Box<dyn Fn(&Batch) -> bool + Send + Sync>,
    /// Told when a matching write begins to wait.
    waiting: Arc<Notify>,
    go: Arc<tokio::sync::Semaphore>,
}

/// A hold on writes, from `Faulty::hold`.
pub struct Held {
    waiting: Arc<Notify>,
    go: Arc<tokio::sync::Semaphore>,
}

impl Held {
    /// Returns once a matching write waits.
    pub async fn waiting(&self) {
        self.waiting.notified().await;
    }

    /// Lets every held write go on, and those to come.
    pub fn release(&self) {
        self.go.close();
    }
}

impl Faulty {
    pub fn new(inner: Store, rule: impl Fn(Op) -> bool + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Faulty {
            inner,
            rule: Mutex::new(Box::new(rule)),
            failures: AtomicUsize::new(0),
            failed: Notify::new(),
            racing: Mutex::new(None),
            hold: Mutex::new(None),
        })
    }

    /// Holds back every write whose batch `matches` until the hold is let
    /// go.
    pub fn hold(&self, matches: impl Fn(&Batch) -> bool + Send + Sync + 'static) -> Held {
        let waiting = Arc::new(Notify::new());
        let go = Arc::new(tokio::sync::Semaphore::new(0));
        *self.hold.lock().expect("hold lock") = Some(Hold {
            matches: Box::new(matches),
            waiting: waiting.clone(),
            go: go.clone(),
        });
        Held { waiting, go }
    }

    /// The store on this kernel, as the bot uses it.
    pub fn store(self: &Arc<Self>) -> Store {
        Store::new(
            self.clone(),
            icp_sms_doctor::store::DEFAULT_SESSION_IDLE_SECS,
        )
    }

    /// Before the next session write, `session` is written to the same
    /// key, as by another process that read and wrote it meanwhile.
    pub fn race_next_save(&self, session: Session) {
        *self.racing.lock().expect("racing lock") = Some(session);
    }

    pub fn set_rule(&self, rule: impl Fn(Op) -> bool + Send + Sync + 'static) {
        *self.rule.lock().expect("rule lock") = Box::new(rule);
    }

    pub fn failures(&self) -> usize {
        self.failures.load(Ordering::SeqCst)
    }

    /// Returns once at least `n` calls have failed.
    pub async fn wait_failures(&self, n: usize) {
        loop {
            let notified = self.failed.notified();
            if self.failures() >= n {
                return;
            }
            notified.await;
        }
    }

    fn check(&self, op: Op) -> Result<(), StoreError> {
        if (self.rule.lock().expect("rule lock"))(op) {
            self.failures.fetch_add(1, Ordering::SeqCst);
            self.failed.notify_waiters();
            Err(StoreError::Unavailable("disk I/O error".into()))
        } else {
            Ok(())
        }
    }

    fn other(&self, call: &'static str, name: &str) -> Result<(), StoreError> {
        self.check(Op::Other {
            call,
            user: user_of(name),
        })
    }

    fn kernel(&self) -> &Arc<dyn Kernel> {
        self.inner.kernel()
    }
}

#[async_trait]
impl Kernel for Faulty {
    async fn get(&self, keys: &[String], now: Instant) -> Result<Vec<Option<Record>>, StoreError> {
        let op = match keys.iter().find_map(|k| session_user(k)) {
            Some(user) => Op::Load(user),
            None => Op::Other {
                call: "get",
                user: keys.iter().find_map(|k| user_of(k)),
            },
        };
        self.check(op)?;
        self.kernel().get(keys, now).await
    }

    async fn commit(&self, batch: Batch) -> Result<usize, StoreError> {
        let session = batch.writes.iter().find_map(|w| match w {
            Write::Put { key, .. } | Write::Delete { key } => session_user(key),
            _ => None,
        });
        let finish = batch.checks.is_empty()
            && batch
                .writes
                .iter()
                .any(|w| matches!(w, Write::Delete { key } if key.starts_with("rem:")));
        let op = match session {
            Some(user) => Op::Save(user),
            None if finish => Op::Finish,
            None => Op::Other {
                call: "commit",
                user: batch.writes.iter().find_map(|w| user_of(touched(w))),
            },
        };
        self.check(op)?;
        let held = self
            .hold
            .lock()
            .expect("hold lock")
            .as_ref()
            .and_then(|hold| {
                (hold.matches)(&batch).then(|| (hold.waiting.clone(), hold.go.clone()))
            });
        if let Some((waiting, go)) = held {
            waiting.notify_one();
            // Closed when let go: the wait ends then.
            let _ = go.acquire().await;
        }
        if let Some(user) = session {
            let racing = self.racing.lock().expect("racing lock").take();
            if let Some(theirs) = racing {
                let key = batch.writes.iter().find_map(|w| match w {
                    Write::Put { key, .. } | Write::Delete { key } if key.starts_with("s:") => {
                        key.split(':').nth(1)?.parse().ok()
                    }
                    _ => None,
                });
                if let Some(chat) = key {
                    let key = SessionKey { chat, user };
                    self.inner.save(key, &theirs, true, batch.now).await?;
                }
            }
        }
        self.kernel().commit(batch).await
    }

    async fn range(&self, index: &str, span: Span) -> Result<Vec<(String, i64)>, StoreError> {
        self.other("range", index)?;
        self.kernel().range(index, span).await
    }

    async fn count(&self, index: &str) -> Result<usize, StoreError> {
        self.other("count", index)?;
        self.kernel().count(index).await
    }

    async fn read_log(&self, log: &str, since: Instant) -> Result<Vec<String>, StoreError> {
        self.other("read_log", log)?;
        self.kernel().read_log(log, since).await
    }

    async fn next_id(&self, seq: &str) -> Result<i64, StoreError> {
        self.other("next_id", seq)?;
        self.kernel().next_id(seq).await
    }

    async fn sweep(&self, now: Instant) -> Result<usize, StoreError> {
        self.other("sweep", "")?;
        self.kernel().sweep(now).await
    }

    async fn take(&self, windows: &[Window]) -> Result<Option<Duration>, StoreError> {
        self.other("take", "")?;
        self.kernel().take(windows).await
    }

    async fn hold(&self) -> Result<(), StoreError> {
        self.kernel().hold().await
    }

    fn is_shared(&self) -> bool {
        self.kernel().is_shared()
    }

    fn describe(&self) -> String {
        format!("faulty {}", self.kernel().describe())
    }
}
