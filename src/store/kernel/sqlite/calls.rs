//! How the SQLite kernel's calls are run: short ones in place under a lock, those that may wait off the async workers, and the checkpoints on a thread of their own.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, TryLockError, mpsc};
use std::time::Duration;

use rusqlite::Connection;

use super::Db;
use crate::store::StoreError;

/// How often the log is moved into the database file.
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// The connection, shared by the kernel's handles. Cloning it shares it.
#[derive(Clone)]
pub(super) struct Calls {
    shared: Arc<Shared>,
}

/// Dropped with the last handle: the checkpoints stop first, then the
/// connection closes, which moves what is left of the log into the file.
struct Shared {
    _checkpoints: Checkpoints,
    db: Mutex<Db>,
    /// Whether the connection is held by a call that may wait (for the
    /// disk, or for another process's lock).
    slow: AtomicBool,
}

/// The thread that checkpoints the log, so that its disk syncs never fall
/// on a call made in place.
struct Checkpoints {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpoints {
    fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".to_string())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    // A passive checkpoint waits for no one; what it cannot
                    // move now, the next one will.
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        log::warn!("store: a checkpoint failed: {e}");
                    }
                }
            })
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the checkpoint thread: {e}"))
            })?;
        Ok(Checkpoints {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            log::error!("the checkpoint thread ended in a panic");
        }
    }
}

pub(super) fn panicked() -> StoreError {
    StoreError::Unavailable("an SQLite call failed without an answer".into())
}

impl Calls {
    /// Serves `db`, and starts the thread that checkpoints its file.
    pub(super) fn start(path: &Path, db: Db) -> Result<Self, StoreError> {
        let checkpoints = Checkpoints::start(path)?;
        Ok(Calls {
            shared: Arc::new(Shared {
                _checkpoints: checkpoints,
                db: Mutex::new(db),
                slow: AtomicBool::new(false),
            }),
        })
    }

    /// Runs a short `call` here and now. If another process holds the
    /// file locked, the call is not left to wait on an async worker: it
    /// is made again where waiting is allowed, for up to `BUSY_WAIT`. A
    /// panic in it is an error for this call only, and leaves the
    /// connection usable.
    pub(super) fn now<T>(
        &self,
        call: impl Fn(&mut Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let first = match self.shared.db.try_lock() {
            Ok(mut db) => Some(guarded(&mut db, &call)),
            Err(TryLockError::Poisoned(poisoned)) => {
                Some(guarded(&mut poisoned.into_inner(), &call))
            }
            // Another call holds the connection. One made in place is
            // done in microseconds: wait for it here. One that may wait
            // for the disk or a lock is waited for off the async worker.
            Err(TryLockError::WouldBlock) if !self.shared.slow.load(Ordering::Acquire) => {
                Some(run(&self.shared, &call))
            }
            Err(TryLockError::WouldBlock) => None,
        };
        match first {
            Some(Err(StoreError::Sqlite(e))) if is_busy(&e) => {
                off_worker(|| run_waiting(&self.shared, &call))
            }
            Some(done) => done,
            None => off_worker(|| run_waiting(&self.shared, &call)),
        }
    }

    /// Runs a `call` that may wait for the disk on the blocking pool.
    pub(super) async fn apart<T, F>(&self, call: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T, StoreError> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || run_waiting(&shared, call))
            .await
            .map_err(|_| panicked())?
    }
}

/// How long a call waits for another process's lock on the file.
pub(super) const BUSY_WAIT: Duration = Duration::from_secs(5);

pub(super) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Runs `call` with the connection willing to wait `BUSY_WAIT` for a lock;
/// it fails at once otherwise.
fn run_waiting<T>(
    shared: &Shared,
    call: impl FnOnce(&mut Db) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    run(shared, |db| {
        shared.slow.store(true, Ordering::Release);
        let done = db
            .conn
            .busy_timeout(BUSY_WAIT)
            .map_err(StoreError::from)
            .and_then(|()| guarded(db, call));
        let reset = db.conn.busy_timeout(Duration::ZERO);
        shared.slow.store(false, Ordering::Release);
        reset?;
        done
    })
}

fn run<T>(
    shared: &Shared,
    call: impl FnOnce(&mut Db) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut db = shared
        .db
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    guarded(&mut db, call)
}

/// Runs `call`; a panic in it is an error for this call only.
fn guarded<T>(
    db: &mut Db,
    call: impl FnOnce(&mut Db) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    catch_unwind(AssertUnwindSafe(|| call(db))).unwrap_or_else(|_| Err(panicked()))
}

/// Runs `wait`, which may block, without holding up the async worker it
/// is called on: the runtime moves its other tasks elsewhere meanwhile.
/// A single-threaded runtime (tests) has nowhere to move them, and waits.
fn off_worker<T>(wait: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
        _ => wait(),
    }
}
