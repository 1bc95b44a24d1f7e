//! The update inbox's Telegram side: each update recorded before its offset is confirmed, a receipt that marks it done once everything it caused has been delivered, and what a crash left open handled again at start.
//!
//! Long polling confirms a batch to Telegram by asking for the next one.
//! The door records every update of a batch before it lets the next
//! request go, so an update Telegram forgets is always in the store. The
//! order for each update is then: record → handle → save the session and
//! the replies together → deliver → done. A crash before the save leaves
//! an entry without replies: it is handled again at start, as if it had
//! just arrived. A crash after it leaves the replies: they are delivered
//! again (an edit of the same menu changes nothing the second time), and
//! the step is not taken twice. An update id recorded before is skipped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use teloxide::types::Update;
use tokio::sync::{mpsc, oneshot};

use crate::app::App;
use crate::conversation::Answering;
use crate::engine::Reply;

/// What the writer of done marks is told.
enum Mark {
    Done(i64),
    /// Answered once every mark sent before it is written.
    Flush(oneshot::Sender<()>),
}

/// The inbox of one running bot.
pub(super) struct Inbox {
    app: Arc<App>,
    marks: mpsc::UnboundedSender<Mark>,
    /// Updates posted to the webhook, recorded together when they arrive
    /// together.
    puts: mpsc::UnboundedSender<Put>,
    /// The replies saved before a crash for entries handled again.
    saved: Mutex<HashMap<i64, Vec<Reply>>>,
    /// Receipts still held: updates whose answers are not all delivered.
    held: std::sync::atomic::AtomicUsize,
    /// Signalled when a receipt is let go.
    released: tokio::sync::Notify,
    /// Reading what was left open fails (the store is down): said once,
    /// and once more when it reads again.
    unreadable: std::sync::atomic::AtomicBool,
}

/// Held by everything an update causes (its handler, the deliveries it
/// queues); when the last holder lets go, the update is done.
#[derive(Clone)]
pub(super) struct Receipt(Arc<Held>);

struct Held {
    id: i64,
    inbox: Arc<Inbox>,
}

impl Drop for Held {
    fn drop(&mut self) {
        // The writer may be gone only when the bot stopped; the entry is
        // then handled again after the restart, which is what is wanted
        // for something not finished.
        let _ = self.inbox.marks.send(Mark::Done(self.id));
        self.inbox
            .held
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        self.inbox.released.notify_waiters();
    }
}

impl Receipt {
    /// What the conversation needs to know to answer this update once.
    pub(super) fn answering(&self) -> Answering {
        let saved = self
            .0
            .inbox
            .saved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0.id);
        Answering {
            entry: self.0.id,
            saved,
        }
    }
}

/// How the door treats an update it fetched.
pub(super) enum Recorded {
    /// Recorded now: go on.
    New,
    /// Recorded before: Telegram sent it again; skip it.
    Repeat,
    /// The store could not record it. Polled, it is handled anyway,
    /// without the inbox's guarantee, rather than not at all (Telegram
    /// will not send it again); posted to the webhook, it is refused, so
    /// Telegram sends it again.
    Unrecorded,
}

impl Inbox {
    /// Where the bot's figures are counted.
    pub(super) fn metrics(&self) -> &crate::metrics::Metrics {
        &self.app.metrics
    }

    /// Starts the writer of done marks.
    pub(super) fn start(app: Arc<App>) -> Arc<Inbox> {
        let (marks, receiver) = mpsc::unbounded_channel();
        let (puts, put_receiver) = mpsc::unbounded_channel();
        tokio::spawn(write_puts(Arc::clone(&app), put_receiver));
        let inbox = Arc::new(Inbox {
            app: Arc::clone(&app),
            marks,
            puts,
            saved: Mutex::new(HashMap::new()),
            unreadable: std::sync::atomic::AtomicBool::new(false),
            held: std::sync::atomic::AtomicUsize::new(0),
            released: tokio::sync::Notify::new(),
        });
        tokio::spawn(write_marks(app, receiver));
        inbox
    }

    /// An inbox for updates fed by hand, never recorded: nothing is
    /// marked done in the store, as nothing there is theirs.
    pub(super) fn unrecorded(app: Arc<App>) -> Arc<Inbox> {
        let (marks, _) = mpsc::unbounded_channel();
        let (puts, _) = mpsc::unbounded_channel();
        Arc::new(Inbox {
            app,
            marks,
            puts,
            saved: Mutex::new(HashMap::new()),
            unreadable: std::sync::atomic::AtomicBool::new(false),
            held: std::sync::atomic::AtomicUsize::new(0),
            released: tokio::sync::Notify::new(),
        })
    }

    /// A receipt for update `id`.
    pub(super) fn receipt(self: &Arc<Self>, id: i64) -> Receipt {
        self.held.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Receipt(Arc::new(Held {
            id,
            inbox: Arc::clone(self),
        }))
    }

    /// Records the updates of one fetched batch, in one write, before
    /// their offset is confirmed: how each went, in their order.
    pub(super) async fn record_all(&self, updates: &[&Update]) -> Vec<Recorded> {
        let bodies: Vec<Option<(i64, String)>> = updates.iter().map(|u| body_of(u)).collect();
        let entries: Vec<(i64, &str)> = bodies
            .iter()
            .flatten()
            .map(|(id, body)| (*id, body.as_str()))
            .collect();
        let written = if entries.is_empty() {
            Ok(Vec::new())
        } else {
            let (app, now) = (&self.app, self.app.clock.now());
            app.store.inbox_put_many(&entries, &app.instance, now).await
        };
        let mut each = entries.iter().enumerate().map(|(i, _)| match &written {
            Ok(new) => new
                .get(i)
                .copied()
                .ok_or_else(|| "the store gave no answer for it".to_string()),
            Err(failed) => failed.outcome(i),
        });
        bodies
            .iter()
            .map(|body| match body {
                Some((id, _)) => recorded(*id, each.next().unwrap_or(Ok(true))),
                None => Recorded::Unrecorded,
            })
            .collect()
    }

    /// `record_all` for updates that arrive one by one, side by side
    /// (webhook posts): those waiting together are recorded in one write.
    pub(super) async fn record_together(&self, update: &Update) -> Recorded {
        let Some((id, body)) = body_of(update) else {
            return Recorded::Unrecorded;
        };
        let (reply, written) = oneshot::channel();
        if self.puts.send(Put { id, body, reply }).is_err() {
            return Recorded::Unrecorded;
        }
        match written.await {
            Ok(put) => recorded(id, put),
            Err(_) => Recorded::Unrecorded,
        }
    }

    /// Marks an update done at once: it needs no handling.
    pub(super) fn done(&self, id: i64) {
        let _ = self.marks.send(Mark::Done(id));
    }

    /// The updates a crash left open, to be handled first, in order; the
    /// replies saved for those whose step was taken are kept for them.
    pub(super) async fn reopen(&self) -> Vec<Update> {
        let store = &self.app.store;
        let entries = match store
            .inbox_open(&self.app.instance, self.app.clock.now())
            .await
        {
            Ok(entries) => {
                if self
                    .unreadable
                    .swap(false, std::sync::atomic::Ordering::Relaxed)
                {
                    log::warn!("the inbox can be read again: updates left open are taken up");
                }
                entries
            }
            Err(e) => {
                if !self
                    .unreadable
                    .swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    log::warn!(
                        "the inbox cannot be read ({e}); updates left open by a stop or a crash wait until it can, and nothing is lost"
                    );
                }
                return Vec::new();
            }
        };
        let mut updates = Vec::new();
        let mut saved = self.saved.lock().unwrap_or_else(|e| e.into_inner());
        for entry in entries {
            let Ok(update) = serde_json::from_str::<Update>(&entry.body) else {
                log::warn!("update {}: its record cannot be read; dropped", entry.id);
                self.done(entry.id);
                continue;
            };
            if let Some(replies) = entry.replies {
                match serde_json::from_str::<Vec<Reply>>(&replies) {
                    Ok(replies) => {
                        saved.insert(entry.id, replies);
                    }
                    Err(e) => {
                        log::warn!(
                            "update {}: its saved replies cannot be read ({e})",
                            entry.id
                        );
                        self.done(entry.id);
                        continue;
                    }
                }
            }
            updates.push(update);
        }
        if !updates.is_empty() {
            log::info!(
                "inbox: {} update(s) left open when the bot last stopped are handled first ({} already answered, their replies sent again)",
                updates.len(),
                saved.len()
            );
        }
        updates
    }

    /// Waits until every receipt is let go (the last deliveries finish
    /// after the queue is empty: recording a menu's owner, dropping what
    /// they held), or until `deadline`; then writes the done marks. An
    /// update marked done only after the process ended would be answered
    /// again after the restart.
    pub(super) async fn settle(&self, deadline: tokio::time::Instant) {
        use std::sync::atomic::Ordering;
        loop {
            let released = self.released.notified();
            if self.held.load(Ordering::Acquire) == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, released).await.is_err() {
                log::warn!(
                    "stopping with {} update(s) not finished; they are handled again after the restart",
                    self.held.load(Ordering::Acquire)
                );
                break;
            }
        }
        self.flush().await;
    }

    /// Waits until every done mark sent so far is written.
    pub(super) async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.marks.send(Mark::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// An update's id and its body as recorded; `None`, said in the log, for
/// one that cannot be written out.
fn body_of(update: &Update) -> Option<(i64, String)> {
    let id = i64::from(update.id.0);
    match serde_json::to_string(update) {
        Ok(body) => Some((id, body)),
        Err(e) => {
            log::warn!("update {id}: cannot be recorded ({e})");
            None
        }
    }
}

/// What recording update `id` came to.
fn recorded(id: i64, put: Result<bool, String>) -> Recorded {
    match put {
        Ok(true) => Recorded::New,
        Ok(false) => Recorded::Repeat,
        Err(e) => {
            // The store's health has already said, once, that writes fail
            // and why; one line per update Telegram sends again would bury
            // it.
            log::debug!("update {id}: recording it in the inbox failed: {e}");
            Recorded::Unrecorded
        }
    }
}

/// An update to record, and who waits for the answer.
struct Put {
    id: i64,
    body: String,
    reply: oneshot::Sender<Result<bool, String>>,
}

/// The most updates recorded in one write.
const PUTS_AT_ONCE: usize = 256;

/// Records updates in groups: whatever arrived while the last write was
/// made goes in the next, and each is answered once its group is written.
async fn write_puts(app: Arc<App>, mut receiver: mpsc::UnboundedReceiver<Put>) {
    while let Some(first) = receiver.recv().await {
        let mut group = vec![first];
        while group.len() < PUTS_AT_ONCE {
            match receiver.try_recv() {
                Ok(put) => group.push(put),
                Err(_) => break,
            }
        }
        let entries: Vec<(i64, &str)> = group.iter().map(|p| (p.id, p.body.as_str())).collect();
        let now = app.clock.now();
        let written = app.store.inbox_put_many(&entries, &app.instance, now).await;
        match written {
            Ok(new) => {
                for (put, new) in group.into_iter().zip(new) {
                    let _ = put.reply.send(Ok(new));
                }
            }
            Err(failed) => {
                for (i, put) in group.into_iter().enumerate() {
                    let _ = put.reply.send(failed.outcome(i));
                }
            }
        }
    }
}

/// How many times writing a batch of done marks is tried.
const MARK_ATTEMPTS: u32 = 5;

/// Writes done marks in batches: whatever arrived while the last write
/// was made goes in the next.
async fn write_marks(app: Arc<App>, mut receiver: mpsc::UnboundedReceiver<Mark>) {
    let mut batch = Vec::new();
    let mut flushes = Vec::new();
    while let Some(first) = receiver.recv().await {
        let mut next = Some(first);
        while let Some(mark) = next {
            match mark {
                Mark::Done(id) => batch.push(id),
                Mark::Flush(tx) => flushes.push(tx),
            }
            next = receiver.try_recv().ok();
        }
        if !batch.is_empty() {
            let mut attempt = 1;
            loop {
                match app.store.inbox_done(&batch, app.clock.now()).await {
                    Ok(()) => break,
                    Err(e) if attempt < MARK_ATTEMPTS => {
                        log::warn!(
                            "inbox: marking {} update(s) done failed ({e}); trying again",
                            batch.len()
                        );
                        tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                        attempt += 1;
                    }
                    Err(e) => {
                        log::error!(
                            "inbox: marking {} update(s) done failed ({e}); they are handled again after a restart",
                            batch.len()
                        );
                        break;
                    }
                }
            }
            batch.clear();
        }
        for tx in flushes.drain(..) {
            let _ = tx.send(());
        }
    }
}
